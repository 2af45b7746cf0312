/**
 * Hostile model artifacts (someone with write access to the registry's bucket): the
 * SageMaker artifact reader must refuse, in bounded time and memory, crafted PAX
 * headers (negative, huge or malformed sizes and record lengths), base-256 sizes, a
 * gzip bomb and thousands of random mutations of a valid model.tar.gz. The reader runs
 * in a fresh child process (bundled with esbuild), so a hang is caught by a watchdog
 * that names the case; the bomb runs again alone, to measure what the reader holds.
 * (See artifact-fuzz-worker.ts for how.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MAX_ARTIFACT_BYTES } from '../sagemaker/tar';
import { runFuzzChild } from './fuzz-child';

const MUTATIONS = 2000;
/** A hang, not a speed limit: the whole run takes a few seconds. */
const WATCHDOG_MS = 45_000;

interface Report {
  outcomes: { ok: number; refused: number };
  named: Record<string, string>;
  unexpected: string[];
  maxRssMiB: number;
}

interface Held {
  outcome: string;
  heldMiB: number;
  samples: number;
  slices: number;
}

interface Retained {
  bomb: Held;
  skipped: Held;
}

describe('SageMaker artifact reader under hostile input', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-artifact-fuzz-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses every crafted or mutated archive with a clear error, in bounded time', async () => {
    const report = await runFuzzChild<Report>(path.join(__dirname, 'artifact-fuzz-worker.ts'), dir, [String(MUTATIONS)], WATCHDOG_MS);

    expect(report.unexpected).toEqual([]);
    // Every hand-made hostile archive is refused (none parses into a "forest").
    for (const [name, outcome] of Object.entries(report.named)) expect(`${name}: ${outcome}`).toBe(`${name}: refused`);
    expect(report.outcomes.ok + report.outcomes.refused).toBe(MUTATIONS + Object.keys(report.named).length);
  });

  it('streams a gzip bomb to the output cap, and skips a member it does not keep, without holding either', async () => {
    // What the reader holds, not a process's peak RSS, which follows when the collector ran: in the whole suite the
    // bomb's peak RSS once rose by 253 MiB, alone by 45-60 MiB. Collected before every 1 KiB of compressed input, a
    // streaming reader holds 0.06-0.25 MiB (Node 20 and 24). Readers that keep every decompressed chunk, concatenate
    // them, or keep the skipped member hold 190-250 MiB by their last sample. A quarter of the cap sits far from both.
    // A streaming reader pulls 257 of the bomb's 2,041 slices (it stops at the cap); one that takes its whole input
    // before inflating pulls all of them, and then holds nothing at any sample.
    const gcFlags = ['--expose-gc', '--single-threaded-gc'];
    const report = await runFuzzChild<Retained>(path.join(__dirname, 'artifact-fuzz-worker.ts'), dir, ['retained'], WATCHDOG_MS, [], gcFlags);

    expect(report.bomb.outcome).toBe('refused');
    expect(report.bomb.samples).toBeGreaterThan(200);
    expect(report.bomb.samples).toBeLessThan(report.bomb.slices / 2);
    expect(report.bomb.heldMiB).toBeLessThan(MAX_ARTIFACT_BYTES / 2 ** 20 / 4);
    expect(report.skipped).toMatchObject({ outcome: 'read', samples: report.skipped.slices });
    expect(report.skipped.heldMiB).toBeLessThan(MAX_ARTIFACT_BYTES / 2 ** 20 / 4);
  });

  it('reads a gzip bomb given as one Buffer, as production does, without inflating it whole', async () => {
    // A reader that gunzips the whole Buffer in one call leaves no point to sample: only the process's peak shows it.
    // Alone in a fresh process, collections on its own thread, the peak rises 32-60 MiB (Node 20 and 24, also on a busy
    // host); gunzipSync of the whole archive: 270-285 MiB. Half the cap sits between.
    const report = await runFuzzChild<{ outcome: string; rssRiseMiB: number }>(path.join(__dirname, 'artifact-fuzz-worker.ts'), dir, ['buffer-path'], WATCHDOG_MS, [], ['--single-threaded-gc']);

    expect(report.outcome).toBe('refused');
    expect(report.rssRiseMiB).toBeLessThan(MAX_ARTIFACT_BYTES / 2 ** 20 / 2);
  });
});
