/**
 * Hostile forest files (someone with write access to the registry): a thousand mutated
 * format v2 documents, sealed anew so they reach the decoder, loaded in a fresh child
 * process with a small heap (model/test/forest-fuzz-worker.ts). Each one loads as a
 * forest that scores, or is refused with a UserError naming the file — never another
 * error, a hang (a watchdog) or memory taken by a count the file states.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runFuzzChild } from './fuzz-child';

const MUTATIONS = 1000;
/** A hang, not a speed limit: the run takes a few seconds. */
const WATCHDOG_MS = 60_000;

interface Report {
  outcomes: Record<string, { loaded: number; refused: number }>;
  rowsScored: number;
  unexpected: string[];
  maxRssMiB: number;
}

describe('forest loader under hostile files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-forest-fuzz-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads or refuses every mutated file with a clear error, in bounded time and memory', async () => {
    const report = await runFuzzChild<Report>(path.join(__dirname, 'forest-fuzz-worker.ts'), dir, [String(MUTATIONS)], WATCHDOG_MS);
    expect(report.unexpected).toEqual([]);
    const kinds = Object.entries(report.outcomes);
    expect(kinds).toHaveLength(5);
    expect(kinds.reduce((n, [, o]) => n + o.loaded + o.refused, 0)).toBe(MUTATIONS);
    // Every kind of damage gets refused; some of it is another valid forest (a changed threshold index), which scores.
    for (const [kind, o] of kinds) expect([kind, o.refused > 0]).toEqual([kind, true]);
    expect(report.rowsScored).toBeGreaterThan(0);
    // The files state counts up to 2^53 and lengths up to 2^32: allocating by any of them would take GiBs. The run peaks
    // at ~150 MiB (a 96 MiB old space, the code, 65,535-category encoders); the bound leaves room for a late collector.
    expect(report.maxRssMiB).toBeLessThan(256);
  }, WATCHDOG_MS + 10_000);
});
