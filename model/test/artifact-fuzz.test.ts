/**
 * Hostile model artifacts (someone with write access to the registry's bucket): the
 * SageMaker artifact reader must refuse, in bounded time and memory, crafted PAX
 * headers (negative, huge or malformed sizes and record lengths), base-256 sizes, a
 * gzip bomb and thousands of random mutations of a valid model.tar.gz. The reader runs
 * in a fresh child process (bundled with esbuild), so a hang is caught by a watchdog
 * that names the case; the bomb runs again alone, to measure what the reader holds.
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

interface Retained {
  refusal: string;
  retainedMiB: number;
  samples: number;
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

  it('streams a gzip bomb to the output cap without ever holding the capped output', async () => {
    // What the reader holds, not the process's peak RSS: garbage collected before every 1 KiB of compressed input, so a
    // busy host's late collector cannot count (in the whole suite the bomb's peak RSS rose by 253 MiB once, alone by
    // 45-60 MiB). Streaming holds a few chunks in flight: 0.13-0.25 MiB measured (Node 24, Node 20). A reader that
    // keeps every decompressed chunk holds 390-480 MiB by its last sample; a quarter of the cap sits far from both.
    const report = await runFuzzChild<Retained>(path.join(__dirname, 'artifact-fuzz-worker.ts'), dir, ['retained'], WATCHDOG_MS, [], ['--expose-gc', '--single-threaded-gc']);

    expect(report.refusal).toBe('refused');
    expect(report.samples).toBeGreaterThan(200);
    expect(report.retainedMiB).toBeLessThan(MAX_ARTIFACT_BYTES / 2 ** 20 / 4);
  });
});
