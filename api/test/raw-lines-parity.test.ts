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
import { dirty, type Line } from './dirty-drop';
import { silentLogger, testConfig } from './fixtures';

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
