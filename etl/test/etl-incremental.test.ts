import { mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalLake } from '../lake/local';
import type { Lake } from '../lake/types';
import { FEATURE_DEFINITIONS, type FeatureDefinition } from '../feature-definitions';
import { runEtl } from '../pipeline';
import { csv, lines, range , goldIds } from './drop-fixtures';

async function move(lake: Lake, from: string, to: string): Promise<void> {
  await lake.write(to, await lake.read(from));
  await lake.delete(from);
}

/** Gold of a lake that sees raw/ as it is now, from scratch. */
async function freshGold(lake: Lake, dir: string): Promise<string> {
  const fresh = new LocalLake(dir);
  for (const o of await lake.list('raw/')) await fresh.write(o.key, await lake.read(o.key));
  return (await runEtl(fresh, { threads: 1, rejectThreshold: 0.1 })).gold.manifestSha256;
}

// Several full ETL runs per test on a loaded 2-core machine: generous, still bounded.
jest.setTimeout(180_000);

describe('ETL when raw files are renamed or their content moves between names', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-renames-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a renamed file whose baskets span files keeps gold buildable on every later run; rejects name the current file', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const all = lines(range(0, 20));
    await lake.write('raw/a.csv', csv([...all.filter((_, i) => i % 2 === 0), '200607,20060411']));
    await lake.write('raw/b.csv', csv(all.filter((_, i) => i % 2 === 1)));
    await runEtl(lake, { threads: 1, rejectThreshold: 0.1 });

    await move(lake, 'raw/a.csv', 'raw/a2.csv');
    const r2 = await runEtl(lake, { threads: 1, rejectThreshold: 0.1 });
    expect(r2.silver.parsed).toBe(0);
    await lake.write('raw/c.csv', csv(lines(range(20, 30))));
    const r3 = await runEtl(lake, { threads: 1, rejectThreshold: 0.1 });
    expect(r3.gold.splitBaskets).toBe(20);
    expect(await goldIds(lake)).toEqual(range(0, 30));
    expect(r3.gold.manifestSha256).toBe(await freshGold(lake, path.join(dir, 'fresh')));
    const rejects = (await lake.list('silver/_rejects/')).map((o) => o.key);
    const text = (await Promise.all(rejects.map(async (k) => (await lake.read(k)).toString()))).join('');
    expect(text).toContain('raw/a2.csv');
    expect(text).not.toContain('raw/a.csv');
  });

  it('content moved from one name to another (and new content under the old name) is found by its hash', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const all = lines(range(0, 20));
    const a = csv(all.filter((_, i) => i % 2 === 0));
    await lake.write('raw/a.csv', a);
    await lake.write('raw/b.csv', csv(all.filter((_, i) => i % 2 === 1)));
    await runEtl(lake, { threads: 1 });

    await lake.write('raw/a.csv', csv(lines(range(40, 45))));
    await lake.write('raw/z.csv', a);
    for (let run = 0; run < 2; run++) {
      const r = await runEtl(lake, { threads: 1 });
      expect(r.gold.splitBaskets).toBe(20);
    }
    expect(await goldIds(lake)).toEqual([...range(0, 20), ...range(40, 45)]);
  });

  it('silver computed by other feature SQL is not reused: a changed feature reaches every gold row', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    for (const w of [0, 1]) await lake.write(`raw/w${w}.csv`, csv(lines(range(w * 20, w * 20 + 20))));
    await runEtl(lake, { threads: 1 });
    const features = FEATURE_DEFINITIONS as FeatureDefinition[];
    const original = features[0];
    expect(original.name).toBe('SPEND');
    features[0] = { ...original, value: { max: { column: 'SPEND' } } };
    try {
      const r = await runEtl(lake, { threads: 1 });
      expect(r.silver.parsed).toBe(2);
      expect(r.gold.manifestSha256).toBe(await freshGold(lake, path.join(dir, 'fresh')));
    } finally {
      features[0] = original;
    }
  });

  it('a raw file rewritten in place with the same size and mtime (cp -p) is read again', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await lake.write('raw/w.csv', csv(lines(range(0, 20))));
    const file = lake.uri('raw/w.csv');
    // A whole-second mtime, so that restoring it below is exact to the nanosecond (as cp -p on most file systems).
    await utimes(file, 1_700_000_000, 1_700_000_000);
    await runEtl(lake, { threads: 1 });
    const before = await stat(file);
    const changed = csv(lines(range(0, 20)).map((l) => l.replace(/,CL00011,/, ',CL00012,')));
    expect(changed.length).toBe(before.size);
    await writeFile(file, changed);
    await utimes(file, 1_700_000_000, 1_700_000_000);
    const r = await runEtl(lake, { threads: 1 });
    expect(r.silver.parsed).toBe(1);
    expect(r.gold.manifestSha256).toBe(await freshGold(lake, path.join(dir, 'fresh')));
  });
});
