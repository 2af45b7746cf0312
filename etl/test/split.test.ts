import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Duck } from '../duck';
import { splitBucket, splitOf, splitSql } from '../split';

describe('split', () => {
  it('is the same function in TypeScript and in DuckDB SQL, and close to 80/10/10', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-split-'));
    const duck = await Duck.open({ tempDirectory: dir, threads: 1 });
    try {
      const rows = await duck.all(`SELECT (994100100000000 + i)::VARCHAR AS id, ${splitSql('(994100100000000 + i)::VARCHAR')} AS split FROM range(20000) t(i)`);
      const counts = { train: 0, validation: 0, test: 0 };
      for (const r of rows) {
        expect(r.split).toBe(splitOf(String(r.id)));
        counts[r.split as keyof typeof counts]++;
      }
      expect(counts.train / 20000).toBeCloseTo(0.8, 1);
      expect(counts.validation / 20000).toBeCloseTo(0.1, 1);
    } finally {
      duck.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('depends on the id only: pinned values, so a change to the function (and so to every split) cannot pass unnoticed', () => {
    // md5(id)[0..8] as an integer, mod 100: documented in docs/etl.md.
    expect(['994100100000123', '1', 'abc'].map(splitBucket)).toEqual([10, 60, 72]);
    expect(['994100100000123', '1', 'abc'].map(splitOf)).toEqual(['train', 'train', 'train']);
    expect(new Set(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'].map(splitBucket)).size).toBeGreaterThan(5);
  });
});
