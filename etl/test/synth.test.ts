import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalLake } from '../lake/local';
import { RAW_COLUMNS } from '../schema';
import { generateDrop, synthesize, SYNTH_MANIFEST_KEY, type SynthManifest } from '../synth/generate';
import { classProbabilities } from '../synth/label';

function digestOf(opts: Parameters<typeof generateDrop>[0]): { sha: string; summary: ReturnType<typeof generateDrop>; text: string } {
  const hash = createHash('sha256');
  let text = '';
  const summary = generateDrop(opts, {
    begin: (week) => hash.update(`#${week}`),
    write: (chunk) => {
      hash.update(chunk);
      if (text.length < 200_000) text += chunk;
    },
    end: () => undefined,
  });
  return { sha: hash.digest('hex'), summary, text };
}

describe('synthetic generator', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = digestOf({ baskets: 3000, weeks: 2, seed: 5 });
    const b = digestOf({ baskets: 3000, weeks: 2, seed: 5 });
    const c = digestOf({ baskets: 3000, weeks: 2, seed: 6 });
    expect(b.sha).toBe(a.sha);
    expect(c.sha).not.toBe(a.sha);
  });

  it('writes the 22 dunnhumby columns in order, dunnhumby codes, and some dirt', () => {
    const { text, summary } = digestOf({ baskets: 4000, weeks: 1, seed: 1, malformedRate: 0.002 });
    const lines = text.split('\n').filter(Boolean);
    expect(lines[0]).toBe(RAW_COLUMNS.join(','));
    const rows = lines.slice(1).map((l) => l.split(','));
    const full = rows.filter((r) => r.length === 22);
    expect(full.length / rows.length).toBeGreaterThan(0.99);
    const col = (name: string): string[] => full.map((r) => r[RAW_COLUMNS.indexOf(name as (typeof RAW_COLUMNS)[number])]);
    expect(new Set(col('BASKET_PRICE_SENSITIVITY'))).toEqual(new Set(['LA', 'MM', 'UM', 'XX']));
    expect(new Set(col('BASKET_SIZE'))).toEqual(new Set(['S', 'M', 'L']));
    expect([...new Set(col('STORE_FORMAT'))].every((f) => ['SS', 'MS', 'LS', 'XLS', 'ZZ'].includes(f))).toBe(true);
    expect(col('STORE_REGION').every((r) => /^[NESW]\d{2}$/.test(r))).toBe(true);
    expect(col('PROD_CODE_40').some((v) => v === '')).toBe(true);
    expect(col('SPEND').some((v) => v === 'N/A')).toBe(true); // a deliberately bad line
    expect(summary.lines.malformed).toBeGreaterThan(0);
  });

  it('with defaults: Bayes-optimal accuracy in 0.82-0.90, Medium most common, about 3% XX', () => {
    const { summary } = digestOf({ baskets: 20_000, weeks: 4, seed: 42 });
    expect(summary.bayesAccuracy).toBeGreaterThanOrEqual(0.82);
    expect(summary.bayesAccuracy).toBeLessThanOrEqual(0.9);
    // The realised accuracy of the Bayes rule on the drawn labels agrees with the expectation.
    expect(Math.abs(summary.bayesAccuracyRealized - summary.bayesAccuracy)).toBeLessThan(0.015);
    const { Low, Medium, High } = summary.classBalance;
    expect(Medium).toBeGreaterThan(Math.max(Low, High));
    expect(Math.min(Low, High)).toBeGreaterThan(0.15);
    const xx = summary.basketPriceSensitivity.XX / summary.baskets;
    expect(xx).toBeGreaterThan(0.02);
    expect(xx).toBeLessThan(0.04);
    // Every leaf of the label function is populated.
    expect(Object.keys(summary.rules).length).toBe(7);
  });

  it('the label function uses interactions: the same average price means different classes by store format', () => {
    const base = { MAX_UNIT_PRICE: 3, LINES: 5, DISTINCT_DEPARTMENTS: 3, SHOP_HOUR: 12, BASKET_TYPE: 'Top Up', BASKET_DOMINANT_MISSION: 'Fresh', CUST_PRICE_SENSITIVITY: null };
    const argmax = (p: number[]): number => p.indexOf(Math.max(...p));
    expect(argmax(classProbabilities({ ...base, AVG_UNIT_PRICE: 1.5, STORE_FORMAT: 'SS' }))).toBe(2); // High in a convenience store
    expect(argmax(classProbabilities({ ...base, AVG_UNIT_PRICE: 1.5, STORE_FORMAT: 'XLS' }))).toBe(1); // Medium in a hypermarket
    expect(argmax(classProbabilities({ ...base, AVG_UNIT_PRICE: 3.5, STORE_FORMAT: 'LS' }))).toBe(0);
    expect(argmax(classProbabilities({ ...base, AVG_UNIT_PRICE: 3.5, STORE_FORMAT: 'LS', SHOP_HOUR: 21 }))).toBe(1);
    for (const p of [classProbabilities({ ...base, AVG_UNIT_PRICE: 2, STORE_FORMAT: 'MS' })]) expect(p.reduce((a, b) => a + b)).toBeCloseTo(1, 12);
  });

  it('writes weekly files and a manifest beside them, and refuses to mix with foreign raw files', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-synth-'));
    try {
      const lake = new LocalLake(dir);
      const m = await synthesize(lake, { baskets: 1500, weeks: 3, seed: 9 });
      expect(m.files.map((f) => f.key)).toEqual(['raw/transactions_200607.csv', 'raw/transactions_200608.csv', 'raw/transactions_200609.csv']);
      const onDisk = JSON.parse((await lake.read(SYNTH_MANIFEST_KEY)).toString()) as SynthManifest;
      expect(onDisk).toEqual(m);
      for (const f of m.files) expect(createHash('sha256').update(await lake.read(f.key)).digest('hex')).toBe(f.sha256);
      // Rerun with fewer weeks: the stale synthetic week is removed.
      await synthesize(lake, { baskets: 1000, weeks: 2, seed: 9 });
      expect((await lake.list('raw/')).map((o) => o.key)).toEqual(['raw/_synth.json', 'raw/transactions_200607.csv', 'raw/transactions_200608.csv']);
      await lake.write('raw/real_dunnhumby.csv', 'x');
      await expect(synthesize(lake, { baskets: 100, weeks: 1, seed: 1 })).rejects.toThrow(/synth did not write/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
