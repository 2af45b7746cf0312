/**
 * Hostile model artifacts (someone with write access to the registry's bucket): the
 * SageMaker artifact reader must refuse, in bounded time and memory, crafted PAX
 * headers (negative, huge or malformed sizes and record lengths), base-256 sizes, a
 * gzip bomb and thousands of random mutations of a valid model.tar.gz. The reader runs
 * in a fresh child process (bundled with esbuild), so a hang is caught by a watchdog
 * that names the case; the bomb runs again alone, to measure what the reader holds.
 * (See artifact-fuzz-worker.ts for how.)
 */
import path from 'node:path';
import { MAX_ARTIFACT_BYTES } from '../sagemaker/tar';
import type { Held } from './artifact-fuzz-worker';
import { runFuzzChild } from './fuzz-child';
import { SKIPPED_MEMBER_FOREST } from './hostile-artifacts';

const MUTATIONS = 2000;
/** A hang, not a speed limit: the whole run takes a few seconds. */
const WATCHDOG_MS = 45_000;

interface Report {
  outcomes: { ok: number; refused: number };
  named: Record<string, string>;
  unexpected: string[];
  maxRssMiB: number;
}

const WORKER = path.join(__dirname, 'artifact-fuzz-worker.ts');
/** Garbage collected on this thread, finished when gc() returns: what is held is then what the reader holds. */
const HELD_CHILD = { watchdogMs: WATCHDOG_MS, nodeFlags: ['--expose-gc', '--single-threaded-gc'] };
type HeldReport = { bomb: Held; skipped: Held };
/** A quarter of the cap: a reader holds under 0.25 MiB; one that keeps the output or a skipped member, 128 MiB and more. */
const HELD_BOUND_MIB = MAX_ARTIFACT_BYTES / 2 ** 20 / 4;

describe('SageMaker artifact reader under hostile input', () => {
  it('refuses every crafted or mutated archive with a clear error, in bounded time', async () => {
    const report = await runFuzzChild<Report>(WORKER, [String(MUTATIONS)], { watchdogMs: WATCHDOG_MS });

    expect(report.unexpected).toEqual([]);
    // Every hand-made hostile archive is refused (none parses into a "forest").
    for (const [name, outcome] of Object.entries(report.named)) expect(`${name}: ${outcome}`).toBe(`${name}: refused`);
    expect(report.outcomes.ok + report.outcomes.refused).toBe(MUTATIONS + Object.keys(report.named).length);
  });

  it('streams a gzip bomb to the output cap, and skips a member it does not keep, without holding either', async () => {
    // What the reader holds, not a process's peak RSS, which follows when the collector ran (in the whole suite the
    // bomb's peak RSS rose by 253 and 258 MiB, alone by 45-60 MiB). Collected before every 1 KiB of compressed input, a
    // streaming reader holds under 0.25 MiB (Node 20 and 24). Readers that keep every decompressed chunk, concatenate
    // them, or keep the skipped member hold 128-256 MiB by their last sample; a quarter of the cap sits below. What is
    // still held once a read has ended is bounded the same way.
    // A streaming reader pulls 257 of the bomb's 2,041 slices (it stops at the cap); one that takes its whole input
    // before inflating pulls all of them, and then holds nothing at any sample.
    const report = await runFuzzChild<HeldReport>(WORKER, ['retained'], HELD_CHILD);

    expect(report.bomb.outcome).toBe('refused');
    expect(report.bomb.samples).toBeGreaterThan(200);
    expect(report.bomb.samples).toBeLessThan(report.bomb.slices / 2);
    expect(report.skipped).toMatchObject({ outcome: 'read', samples: report.skipped.slices, forest: `forest.json: ${SKIPPED_MEMBER_FOREST}` });
    for (const held of [report.bomb, report.skipped]) expect(Math.max(held.heldMiB, held.afterMiB)).toBeLessThan(HELD_BOUND_MIB);
  });

  it('reads a gzip bomb and a skipped member given as one Buffer, as production does, without holding either', async () => {
    // No input slices to sample between: the child samples at the reader's gunzip output instead, every MiB. A reader
    // that inflates the whole Buffer in one call, or builds its stream other than by zlib.createGunzip, makes no sample
    // (samples 0: refused below); one that keeps every member (readTarGz, then pick forest.json) holds the 192 MiB member.
    // Each read starts from a settled baseline, so the bomb's leftovers cannot hide what the second read holds.
    const report = await runFuzzChild<HeldReport>(WORKER, ['buffer-path'], HELD_CHILD);

    expect(report.bomb.outcome).toBe('refused');
    expect(report.bomb.samples).toBeGreaterThan(200);
    expect(report.skipped).toMatchObject({ outcome: 'read', forest: SKIPPED_MEMBER_FOREST });
    expect(report.skipped.samples).toBeGreaterThan(150);
    for (const held of [report.bomb, report.skipped]) expect(Math.max(held.heldMiB, held.afterMiB)).toBeLessThan(HELD_BOUND_MIB);
  });
});
