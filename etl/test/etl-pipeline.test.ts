import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GOLD_SPLITS } from '../gold-schema';
import { readGoldManifest, readGoldSplit } from '../gold';
import { LocalLake } from '../lake/local';
import { runEtl, type EtlReport } from '../pipeline';
import { splitOf } from '../split';
import { synthesize, type SynthManifest } from '../synth/generate';
import { classProbabilities, labelFeaturesOfGoldRow } from '../synth/label';

describe('etl pipeline on a synthetic drop', () => {
  let dir: string;
  let lake: LocalLake;
  let synth: SynthManifest;
  let first: EtlReport;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-etl-'));
    lake = new LocalLake(path.join(dir, 'a'));
    synth = await synthesize(lake, { baskets: 2500, weeks: 3, seed: 11, malformedRate: 0.0005 });
    first = await runEtl(lake, { threads: 2 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('rejects exactly the malformed lines and keeps every labelled basket', () => {
    expect(first.silver.lines).toBe(synth.lines.total);
    expect(first.silver.rejected).toBe(synth.lines.malformed);
    expect(first.silver.accepted).toBe(synth.lines.valid);
    const goldRows = GOLD_SPLITS.reduce((n, s) => n + first.gold.rows[s], 0);
    expect(goldRows).toBe(synth.labelledBaskets);
    expect(first.gold.unlabelledBaskets).toBe(synth.basketPriceSensitivity.XX);
    expect(first.validation.ok).toBe(true);
  });

  it('gold reproduces the generator features exactly: the Bayes accuracy recomputed from gold matches the report', async () => {
    let sum = 0;
    let n = 0;
    for (const split of GOLD_SPLITS) {
      const t = await readGoldSplit(lake, split);
      for (let i = 0; i < t.rows; i++) {
        const p = classProbabilities(labelFeaturesOfGoldRow(t, i));
        sum += Math.max(...p);
        n++;
      }
    }
    expect(n).toBe(synth.labelledBaskets);
    expect(Math.abs(sum / n - synth.bayesAccuracy)).toBeLessThan(1e-6);
  });

  it('splits by the documented hash of BASKET_ID, about 80/10/10', async () => {
    const manifest = await readGoldManifest(lake);
    for (const split of GOLD_SPLITS) {
      const t = await readGoldSplit(lake, split, manifest);
      expect(t.manifestSha256).toBe(manifest.sha256);
      expect(t.basketIds.every((id) => splitOf(id) === split)).toBe(true);
      expect([...t.basketIds].sort((a, b) => Number(a) - Number(b))).toEqual(t.basketIds);
    }
    const total = synth.labelledBaskets;
    expect(first.gold.rows.train / total).toBeGreaterThan(0.75);
    expect(first.gold.rows.validation / total).toBeGreaterThan(0.07);
    expect(first.gold.rows.test / total).toBeGreaterThan(0.07);
  });

  it('the manifest records schema, rows, class balance and per-feature statistics', async () => {
    const { manifest } = await readGoldManifest(lake);
    expect(manifest.meta.rows).toEqual(first.gold.rows);
    const spend = manifest.meta.stats.train.SPEND;
    expect(spend.kind).toBe('numeric');
    if (spend.kind === 'numeric') {
      expect(spend.fractions.length).toBe(spend.edges.length + 1);
      expect(spend.fractions.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    }
    const fmt = manifest.meta.stats.train.STORE_FORMAT;
    expect(fmt.kind === 'categorical' && Object.keys(fmt.frequencies).sort()).toEqual(['LS', 'MS', 'SS', 'XLS']);
    const cps = manifest.meta.stats.train.CUST_PRICE_SENSITIVITY;
    expect(cps.missing).toBeGreaterThan(0); // anonymous baskets
  });

  it('a rerun on the same input produces byte-identical gold and an identical manifest', async () => {
    const goldBefore = await Promise.all((await lake.list('gold/')).map(async (o) => [o.key, await lake.read(o.key)] as const));
    const again = await runEtl(lake, { threads: 2 });
    expect(again.gold.manifestSha256).toBe(first.gold.manifestSha256);
    expect(again.gold.unchanged).toBe(true);
    const goldAfter = await Promise.all((await lake.list('gold/')).map(async (o) => [o.key, await lake.read(o.key)] as const));
    expect(goldAfter.map(([k]) => k)).toEqual(goldBefore.map(([k]) => k));
    goldAfter.forEach(([, body], i) => expect(body.equals(goldBefore[i][1])).toBe(true));
    // No scratch left; only the (released) lease record.
    expect((await lake.list('tmp/')).map((o) => o.key)).toEqual([expect.stringMatching(/^tmp\/etl-lease\/\d{12}\.json$/)]);
  });

  it('gold does not depend on how the input is partitioned into files or ordered', async () => {
    const other = new LocalLake(path.join(dir, 'b'));
    const header = (await readFile(lake.uri(synth.files[0].key), 'utf8')).split('\n')[0];
    const lines: string[] = [];
    for (const f of synth.files) lines.push(...(await readFile(lake.uri(f.key), 'utf8')).split('\n').slice(1).filter(Boolean));
    lines.reverse();
    const cut = Math.floor(lines.length / 3);
    await other.write('raw/part_a.csv', `${header}\n${lines.slice(0, cut).join('\n')}\n`);
    await other.write('raw/part_b.csv', `${header}\n${lines.slice(cut).join('\n')}\n`);
    await runEtl(other, { threads: 1 });
    const data = async (l: LocalLake) => (await readGoldManifest(l)).manifest.files;
    expect(await data(other)).toEqual(await data(lake));
    expect((await readGoldManifest(other)).manifest.meta.stats).toEqual((await readGoldManifest(lake)).manifest.meta.stats);
  });
});
