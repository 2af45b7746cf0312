/**
 * @jest-environment ./bench/ort-jest-environment.js
 */
import { againstOrt, ortForForest, ortScorer, ortSession } from '../../bench/onnx-peer';
import type { ForestFileV1 } from '../format';
import { exportForestToOnnx, forestToOnnx, UNUSED_CLASS_LABEL } from '../onnx/export';
import { META } from '../onnx/metadata';
import { decodeModel } from '../onnx/proto';
import { CompiledForest, type RawRow } from '../walker';
import { nextDown } from '../import-ml-rf';
import { nextUp, probeRows, trainedForest } from './onnx-fixtures';
import { randomForest, randomRow, rng } from './random-forest-fixture';

interface Parity {
  rows: number;
  labelMismatches: number;
  maxProbDiff: number;
}

/** Scores the same encoded rows with the walker and with ORT on the exported forest. */
async function parity(forest: ForestFileV1, rows: RawRow[]): Promise<Parity> {
  const cf = CompiledForest.compile(forest);
  const { x, n } = cf.encodeBatch(rows);
  const scorer = await ortForForest(forest);
  const { mine, theirs, labelMismatches, maxProbDiff } = await againstOrt(cf, scorer, x, n);
  await scorer.release();
  expect(theirs.probabilities.length).toBe(mine.probabilities.length);
  return { rows: n, labelMismatches, maxProbDiff };
}

describe('ONNX export, checked by ONNX Runtime', () => {
  it.each([1, 7, 60, 200])('a trained %i-tree forest (numeric + categorical, missing values): same labels, probabilities within 1e-6, on 10,000+ rows', async (trees) => {
    const forest = await trainedForest(trees, trees);
    const rows = probeRows(forest, 10_000, trees);
    const p = await parity(forest, rows);
    expect(p.rows).toBeGreaterThanOrEqual(10_000);
    expect({ labelMismatches: p.labelMismatches, close: p.maxProbDiff <= 1e-6 }).toEqual({ labelMismatches: 0, close: true });
  });

  it('probe rows exercise what float32 would get wrong: values on and beside thresholds that float32 rounding moves across a split', async () => {
    const forest = await trainedForest(7, 7);
    const rows = probeRows(forest, 10_000, 7);
    const thresholds = new Map<string, Set<number>>();
    for (const tree of forest.trees) {
      for (let i = 0; i < tree.feature.length; i++) {
        const f = forest.features[tree.feature[i]];
        if (f && f.kind === 'numeric') thresholds.set(f.name, (thresholds.get(f.name) ?? new Set()).add(tree.threshold[i]));
      }
    }
    // Rows whose value and a threshold compare one way in double and the other in float32.
    let moved = 0;
    for (const row of rows) {
      for (const [name, ts] of thresholds) {
        const v = row[name];
        if (typeof v !== 'number' || Number.isNaN(v)) continue;
        for (const t of [v, nextUp(v), nextDown(v)]) if (ts.has(t) && v <= t !== Math.fround(v) <= Math.fround(t)) moved++;
      }
    }
    expect(moved).toBeGreaterThan(100);
    const p = await parity(forest, rows);
    expect(p.labelMismatches).toBe(0);
  });

  it('random forests: soft and hard voting, 2 to 4 classes, up to 70 categories, exact ties, awkward rows', async () => {
    let rowsChecked = 0;
    let ties = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const hard = seed % 2 === 0;
      const forest = randomForest(seed, hard ? { aggregation: 'hard', voteTieBreak: 'lowest-index', trees: 2 + (seed % 7) } : {});
      const rand = rng(seed * 31);
      const rows = Array.from({ length: 400 }, () => randomRow(rand, forest.features));
      const p = await parity(forest, rows);
      expect({ seed, ...p, maxProbDiff: p.maxProbDiff <= 1e-6 }).toEqual({ seed, rows: 400, labelMismatches: 0, maxProbDiff: true });
      rowsChecked += p.rows;
      const cf = CompiledForest.compile(forest);
      for (const row of rows) {
        const pr = Array.from(cf.predictProba(row));
        if (pr.filter((v) => v === Math.max(...pr)).length > 1) ties++;
      }
    }
    expect(rowsChecked).toBe(16_000);
    expect(ties).toBeGreaterThan(100);
  });

  it('codes outside the category list (-1, C, C+5, 1.5, ±∞) are scored as the walker scores an unknown category', async () => {
    // pandas .cat.codes and OrdinalEncoder(unknown_value=-1) write -1, a grown category list writes C.
    for (const forest of [await trainedForest(7, 7), randomForest(21, { trees: 6, classes: 3 }), randomForest(22, { trees: 6, classes: 2 })]) {
      const cf = CompiledForest.compile(forest);
      const rows = forest === (await trainedForest(7, 7)) ? probeRows(forest, 2000, 3) : Array.from({ length: 500 }, ((r) => () => randomRow(r, forest.features))(rng(9)));
      const { x, n } = cf.encodeBatch(rows);
      const F = forest.features.length;
      const K = forest.classes.length;
      const scorer = await ortForForest(forest);
      const checked: string[] = [];
      for (let f = 0; f < F; f++) {
        const spec = forest.features[f];
        if (spec.kind !== 'categorical') continue;
        const C = spec.categories.length;
        for (const code of [-1, C, C + 5, 1.5, Infinity, -Infinity]) {
          const sent = x.slice();
          const unknown = x.slice();
          for (let r = 0; r < n; r++) {
            sent[r * F + f] = code;
            unknown[r * F + f] = NaN;
          }
          const want = cf.predictBatchEncoded(unknown, n);
          const got = await scorer.score(sent, n);
          let labelMismatches = 0;
          let maxProbDiff = 0;
          for (let r = 0; r < n; r++) if (got.labels[r] !== want.labels[r]) labelMismatches++;
          for (let i = 0; i < n * K; i++) maxProbDiff = Math.max(maxProbDiff, Math.abs(got.probabilities[i] - want.probabilities[i]));
          expect({ feature: spec.name, code, labelMismatches, close: maxProbDiff <= 1e-6 }).toEqual({ feature: spec.name, code, labelMismatches: 0, close: true });
          checked.push(`${spec.name}=${code}`);
        }
      }
      await scorer.release();
      expect(checked.length).toBeGreaterThanOrEqual(6);
    }
  });

  it('writes one TreeEnsembleClassifier with double thresholds and the input contract in metadata_props', async () => {
    const forest = await trainedForest(3, 11);
    const { bytes, summary } = exportForestToOnnx(forest, { registry: { uri: '/r', version: 4, status: 'Approved', artifactSha256: 'ab'.repeat(32) } });
    const model = decodeModel(bytes);
    const ops = model.graph!.node!.map((n) => n.op_type);
    expect(ops).toEqual(['TreeEnsembleClassifier', 'Div']);
    const tec = model.graph!.node![0];
    const attr = (name: string) => tec.attribute!.find((a) => a.name === name);
    expect(attr('nodes_values_as_tensor')!.t!.data_type).toBe(11);
    expect(attr('nodes_values')).toBeUndefined();
    expect(model.graph!.input![0].type!.tensor_type!.elem_type).toBe(11);
    const meta = Object.fromEntries(model.metadata_props!.map((p) => [p.key, p.value]));
    expect(JSON.parse(meta[META.features])).toEqual(forest.features.map((f) => f.name));
    expect(JSON.parse(meta[META.categoricalCodes])).toEqual({ cat: (forest.features[3] as { categories: string[] }).categories, cat2: (forest.features[4] as { categories: string[] }).categories });
    expect(meta[META.missingEncodedAs]).toBe('NaN');
    expect(meta[META.forestSha256]).toBe(forest.sha256);
    expect(JSON.parse(meta[META.lineage])).toEqual(forest.training);
    expect(JSON.parse(meta[META.registry])).toMatchObject({ version: 4, status: 'Approved' });
    expect(summary.onnxNodes).toBeGreaterThanOrEqual(summary.forestNodes);
    // Deterministic bytes: the same forest exports identically.
    expect(Buffer.from(forestToOnnx(forest, { registry: { uri: '/r', version: 4, status: 'Approved', artifactSha256: 'ab'.repeat(32) } })).equals(Buffer.from(bytes))).toBe(true);
  });

  it('two-class forests: the unused padding class never wins and is sliced off', async () => {
    const forest = randomForest(5, { classes: 2, trees: 9 });
    const session = await ortSession(forestToOnnx(forest));
    const scorer = ortScorer(session, forest.features.length, 2);
    const rand = rng(77);
    const rows = Array.from({ length: 500 }, () => randomRow(rand, forest.features));
    const cf = CompiledForest.compile(forest);
    const { x, n } = cf.encodeBatch(rows);
    const got = await scorer.score(x, n);
    await scorer.release();
    expect(got.labels).not.toContain(UNUSED_CLASS_LABEL);
    expect(got.probabilities.length).toBe(n * 2);
    expect(got.labels).toEqual(cf.predictBatchEncoded(x, n).labels);
    expect(decodeModel(forestToOnnx(forest)).metadata_props!.find((p) => p.key === META.paddingClass)?.value).toMatch(/^__pricesense_unused__: /);
  });

  it('4 intra-op threads, one row per call (ORT then splits > 80 trees across threads and adds partial sums): same labels', async () => {
    for (let seed = 1; seed <= 6; seed++) {
      const forest = randomForest(seed, seed % 2 === 0 ? { aggregation: 'hard', voteTieBreak: 'lowest-index', trees: 90, classes: 2 + (seed % 4 === 0 ? 1 : 0) } : { trees: 81 + seed });
      const cf = CompiledForest.compile(forest);
      const rows = Array.from({ length: 150 }, ((r) => () => randomRow(r, forest.features))(rng(seed * 7)));
      const { x, n } = cf.encodeBatch(rows);
      const want = cf.predictBatchEncoded(x, n);
      const F = forest.features.length;
      const scorer = ortScorer(await ortSession(forestToOnnx(forest), 4), F, forest.classes.length);
      const labels: string[] = [];
      for (let r = 0; r < n; r++) labels.push(...(await scorer.score(x.slice(r * F, r * F + F), 1)).labels);
      await scorer.release();
      expect({ seed, labels }).toEqual({ seed, labels: want.labels });
    }
  });

  it("refuses hard voting with 'first-to-reach' ties, naming the rule, unless lowest-index ties are accepted", async () => {
    const forest = randomForest(9, { aggregation: 'hard', voteTieBreak: 'first-to-reach', trees: 4, classes: 3 });
    expect(() => forestToOnnx(forest)).toThrow(/first-to-reach.*cannot be expressed.*--hard-vote-ties lowest-index/s);
    const model = decodeModel(forestToOnnx(forest, { hardVoteTies: 'lowest-index' }));
    expect(model.metadata_props!.find((p) => p.key === META.labelTieBreak)?.value).toMatch(/lowest-index/);
  });
});
