/**
 * The skew guarantee, proven on every gold row: the ETL runs on a synthetic drop with the
 * dirt real exports have (blank PROD_CODE_40 and PROD_CODE, XX codes, quantities of zero,
 * product lines repeated, SPEND with a third decimal, zero-padded hours, codes that
 * disagree within a basket, a basket spread over two files, CRLF line endings, lines the
 * ETL rejects); then every labelled basket of gold is sent as its raw lines through the
 * API's request path, and the features it computes must equal the gold row exactly (the
 * same doubles, the same nulls), and so must the predictions — in process for every
 * basket, over HTTP for a sample.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { FEATURE_DEFINITIONS_VERSION } from '../../etl/feature-definitions';
import { readGoldManifest, readGoldSplit } from '../../etl/gold';
import { GOLD_FEATURES, GOLD_SPLITS } from '../../etl/gold-schema';
import { LocalLake } from '../../etl/lake/local';
import { runEtl, type EtlReport } from '../../etl/pipeline';
import { RAW_COLUMNS } from '../../etl/schema';
import { synthesize } from '../../etl/synth/generate';
import { writeForestFile } from '../../model/forest-file';
import type { ForestFileV1 } from '../../model/format';
import { LocalRegistry } from '../../model/registry/local';
import { runTraining } from '../../model/training-run';
import { CompiledForest } from '../../model/walker';
import { createService, type Service } from '../server';
import { RequestValidator } from '../validation';
import { silentLogger, testConfig } from './fixtures';

type Line = Record<string, string | number>;

/**
 * Rewrites the drop's CSVs with dirt, line by line (deterministically). Returns the raw
 * lines of every basket as a client would send them (JSON numbers where a POS would
 * send numbers), whatever the ETL will make of them.
 */
async function dirty(lake: LocalLake): Promise<Map<string, Line[]>> {
  const keys = (await lake.list('raw/')).map((o) => o.key).filter((k) => k.endsWith('.csv')).sort();
  const texts = await Promise.all(keys.map(async (k) => (await lake.read(k)).toString('utf8').split('\n').filter((l) => l.length > 0)));
  const header = texts[0][0].split(',');
  const idx = (c: string) => header.indexOf(c);
  const [Q, S, H, P, P40, ID, BT] = ['QUANTITY', 'SPEND', 'SHOP_HOUR', 'PROD_CODE', 'PROD_CODE_40', 'BASKET_ID', 'BASKET_TYPE'].map(idx);
  const out: string[][] = texts.map((t) => [t[0]]);
  const moved = new Set<string>();
  let n = 0;
  for (const [f, text] of texts.entries()) {
    for (const raw of text.slice(1)) {
      const v = raw.split(',');
      n++;
      if (v.length === header.length) {
        const id = Number(v[ID]);
        if (id % 97 === 0 || n % 37 === 0) v[Q] = '0'; // every line of some baskets, and single lines of others
        if (n % 41 === 0) v[S] = `${v[S]}5`; // a third decimal: 1.23 → 1.235 rounds to 1.24
        if (n % 43 === 0 && Number(v[H]) < 10) v[H] = `0${v[H]}`;
        if (n % 101 === 0) v[P] = '';
        if (n % 59 === 0) v[P40] = '';
        if (n % 61 === 0) v[BT] = 'XX'; // disagrees with the basket's other lines: min in domain order
      }
      const line = v.join(',');
      // The first line of some baskets goes to the next file: the basket spans two files.
      const spread = f + 1 < texts.length && v.length === header.length && Number(v[ID]) % 89 === 0 && !moved.has(v[ID]);
      if (spread) moved.add(v[ID]);
      const target = spread ? f + 1 : f;
      out[target].push(line);
      if (n % 53 === 0) out[target].push(line); // a product line repeated
    }
  }
  const baskets = new Map<string, Line[]>();
  for (const [f, lines] of out.entries()) {
    // One file with Windows line endings.
    await lake.write(keys[f], Buffer.from(`${lines.join(f === 0 ? '\r\n' : '\n')}\n`, 'utf8'));
    for (const line of lines.slice(1)) {
      const v = line.split(',');
      const obj: Line = {};
      header.forEach((c, i) => {
        if (i >= v.length) return;
        // Numbers as a POS would send them, where the CSV text is a plain number.
        obj[c] = (c === 'QUANTITY' || c === 'SPEND') && /^\d+(\.\d{1,2})?$/.test(v[i]) ? Number(v[i]) : v[i];
      });
      const id = v[ID];
      if (id === undefined) continue;
      const list = baskets.get(id) ?? [];
      list.push(obj);
      baskets.set(id, list);
    }
  }
  return baskets;
}

jest.setTimeout(240_000);

describe('raw-line requests compute exactly the gold features (every labelled basket)', () => {
  let dir: string;
  let lake: LocalLake;
  let report: EtlReport;
  let baskets: Map<string, Line[]>;
  let forest: ForestFileV1;
  let service: Service;
  let validator: RequestValidator;
  const gold: { id: string; row: Record<string, number | string | null> }[] = [];

  const accepted = (l: Line): boolean => {
    try {
      validator.parsePredict({ lines: [l] });
      return true;
    } catch {
      return false;
    }
  };
  /** The basket's lines the API accepts: the API refuses a basket with a bad line, where the ETL drops the line and keeps the basket. */
  const kept = (id: string): Line[] => baskets.get(id)!.filter(accepted);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-parity-'));
    lake = new LocalLake(path.join(dir, 'lake'));
    await synthesize(lake, { baskets: 2000, weeks: 2, seed: 15, malformedRate: 1 / 400 });
    baskets = await dirty(lake);
    report = await runEtl(lake, { threads: 1, rejectThreshold: 0.1 });
    const manifest = await readGoldManifest(lake);
    expect(manifest.manifest.meta.featureDefinitions).toEqual({ version: FEATURE_DEFINITIONS_VERSION });
    for (const split of GOLD_SPLITS) {
      const t = await readGoldSplit(lake, split, manifest);
      for (let i = 0; i < t.rows; i++) {
        const row: Record<string, number | string | null> = {};
        for (const f of GOLD_FEATURES) row[f.name] = f.kind === 'numeric' ? (Number.isNaN(t.numeric[f.name][i]) ? null : t.numeric[f.name][i]) : t.categorical[f.name][i];
        gold.push({ id: t.basketIds[i], row });
      }
    }
    forest = (await runTraining(lake, { trees: 20, maxDepth: 8, seed: 3, threads: 1 })).forest;
    const registry = new LocalRegistry(path.join(dir, 'registry'));
    await writeForestFile(path.join(dir, 'forest.json'), forest);
    const v = await registry.register(path.join(dir, 'forest.json'), { by: 'test', force: true });
    // A 2,000-basket drop trains below the accuracy gate: parity does not depend on accuracy, so the approval overrides it.
    await registry.approve(v.version, 'parity test', 'test', { overrideGates: { reason: 'parity test on a small dirty drop' } });
    validator = new RequestValidator(forest.features, 1, 'missing', { featureDefinitions: forest.training.featureDefinitions, label: 'test' });
    service = await createService(testConfig(), { registry, logger: silentLogger() });
    await service.manager.start();
  });
  afterAll(async () => {
    service?.manager.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the drop has the dirt, and the ETL kept and rejected lines as the API rules do', () => {
    expect(report.gold.splitBaskets).toBeGreaterThan(0);
    expect(report.silver.rejected).toBeGreaterThan(0);
    expect(report.gold.unlabelledBaskets).toBeGreaterThan(0);
    expect(gold.length).toBeGreaterThan(1500);
    const all = [...baskets.values()].flat();
    expect(all.some((l) => l.QUANTITY === 0)).toBe(true);
    expect(all.some((l) => l.PROD_CODE_40 === '')).toBe(true);
    expect(all.some((l) => typeof l.SPEND === 'string' && /\.\d{3}$/.test(l.SPEND))).toBe(true);
    expect(forest.training.featureDefinitions).toBe(FEATURE_DEFINITIONS_VERSION);
  });

  it('every gold row equals the features the API computes from the basket\'s raw lines, and scores the same', () => {
    const compiled = CompiledForest.compile(forest);
    const differences: string[] = [];
    let compared = 0;
    for (const { id, row } of gold) {
      const computed = validator.parsePredict({ lines: kept(id) }).rows[0];
      for (const f of GOLD_FEATURES) {
        if (!Object.is(computed[f.name], row[f.name])) differences.push(`${id} ${f.name}: API ${String(computed[f.name])}, gold ${String(row[f.name])}`);
      }
      const a = compiled.predict(computed);
      const b = compiled.predict(row);
      if (a.label !== b.label || a.probabilities.some((p, k) => p !== b.probabilities[k])) differences.push(`${id}: prediction differs`);
      compared++;
    }
    expect(differences.slice(0, 20)).toEqual([]);
    expect(compared).toBe(gold.length);
    // Nulls are part of the guarantee: gold has baskets with no unit price (every quantity zero).
    expect(gold.some((g) => g.row.AVG_UNIT_PRICE === null)).toBe(true);
    // The API's line rules accept exactly the lines the ETL accepted.
    expect([...baskets.values()].flat().filter(accepted).length).toBe(report.silver.accepted);
  });

  it('over HTTP: /predict on the lines answers what /predict on the gold row answers, for a sample', async () => {
    const api = () => request(service.handler);
    const sample = gold.filter((_, i) => i % 50 === 0);
    for (const { id, row } of sample) {
      const byRow = await api().post('/predict').send(row).expect(200);
      const byLines = await api().post('/predict?features=true').send({ lines: kept(id) }).expect(200);
      expect({ id, label: byLines.body.label, probabilities: byLines.body.probabilities }).toEqual({ id, label: byRow.body.label, probabilities: byRow.body.probabilities });
      expect(byLines.body.features).toEqual(row);
    }
    // Batch form, with basket-level fields given once.
    const [first, second] = sample;
    const strip = (l: Line): Line => Object.fromEntries(Object.entries(l).filter(([k]) => ['PROD_CODE', 'PROD_CODE_10', 'PROD_CODE_20', 'QUANTITY', 'SPEND'].includes(k)));
    const byBasket = (id: string) => {
      const lines = kept(id);
      // Basket-level fields once, from the first line; lines that disagree with it keep their own value.
      return { ...lines[0], lines: lines.map((l) => (RAW_COLUMNS.every((c) => l[c] === lines[0][c] || ['PROD_CODE', 'PROD_CODE_10', 'PROD_CODE_20', 'PROD_CODE_30', 'PROD_CODE_40', 'QUANTITY', 'SPEND'].includes(c)) ? strip(l) : l)) };
    };
    const batch = await api().post('/predict?features=true').send({ instances: [first.row, byBasket(first.id), second.row, byBasket(second.id)] }).expect(200);
    expect(batch.body.predictions[1]).toEqual({ ...batch.body.predictions[0], features: first.row });
    expect(batch.body.predictions[3]).toEqual({ ...batch.body.predictions[2], features: second.row });
  });

  it('refuses a bad line naming its index and field, with the ETL\'s message', async () => {
    const lines = baskets.get(gold[0].id)!.slice(0, 2).map((l) => ({ ...l }));
    lines[1].SPEND = 'N/A';
    const res = await request(service.handler).post('/predict').send({ lines }).expect(422);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.message).toContain('/lines/1/SPEND: SPEND is "N/A"; expected an amount like 1.50');
    expect(res.body.error.details[0]).toMatchObject({ where: '/lines/1/SPEND', field: 'SPEND', got: 'N/A' });
  });

  it('refuses raw lines for a model without this feature-definition version (409 naming both), and /model shows it', async () => {
    const model = (await request(service.handler).get('/model').expect(200)).body;
    expect(model.champion.featureDefinitions).toEqual({ version: FEATURE_DEFINITIONS_VERSION, server: FEATURE_DEFINITIONS_VERSION, rawLines: true });
    const old = new RequestValidator(forest.features, 10, 'missing', { featureDefinitions: undefined, label: 'version 9' });
    expect(() => old.parsePredict({ lines: baskets.get(gold[0].id)! })).toThrow(
      expect.objectContaining({ status: 409, code: 'feature_definitions_mismatch', message: expect.stringContaining(FEATURE_DEFINITIONS_VERSION) }),
    );
    // Feature rows still work for it.
    expect(old.parsePredict(gold[0].row).rows).toHaveLength(1);
  });
});
