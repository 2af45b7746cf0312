import { RandomForestClassifier } from 'ml-random-forest';
import type { FeatureSpec } from '../format';
import { canonicalJson, parseForest } from '../forest-file';
import { importMlRandomForest, nextDown } from '../import-ml-rf';
import { CompiledForest } from '../walker';
import { rng } from './random-forest-fixture';

const FORMATS = ['SS', 'MS', 'LS', 'XLS'];
const FEATURES: FeatureSpec[] = [
  { name: 'SPEND', kind: 'numeric' },
  { name: 'STORE_FORMAT', kind: 'categorical', categories: FORMATS },
  { name: 'SHOP_HOUR', kind: 'numeric' },
  { name: 'LINES', kind: 'numeric' },
];

/** Rows as ml-random-forest sees them (categorical as codes) and as the walker does (raw values). */
function data(seed: number, n: number, classes: number, withMissing: boolean) {
  const rand = rng(seed);
  const matrix: number[][] = [];
  const rows: Record<string, unknown>[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const spend = Math.round(rand() * 2000) / 10;
    const fmt = Math.floor(rand() * FORMATS.length);
    const hour = Math.floor(rand() * 24);
    const lines = Math.floor(rand() * 40);
    const score = spend / 50 + fmt * 0.8 - hour / 12 + rand() * 2;
    labels.push(Math.max(0, Math.min(classes - 1, Math.floor((score / 6) * classes))));
    const r = [spend, fmt, hour, lines];
    if (withMissing && rand() < 0.1) r[Math.floor(rand() * 4)] = NaN;
    matrix.push(r);
    rows.push({ SPEND: r[0], STORE_FORMAT: Number.isNaN(r[1]) ? (rand() < 0.5 ? null : 'unknown-format') : FORMATS[r[1]], SHOP_HOUR: r[2], LINES: r[3] });
  }
  return { matrix, rows, labels };
}

function parity(rf: RandomForestClassifier, modelJson: unknown, classes: string[], seed: number, n = 1200) {
  const forest = parseForest(canonicalJson(importMlRandomForest(modelJson, { features: FEATURES, classes })), 'imported');
  const cf = CompiledForest.compile(forest);
  const { matrix, rows } = data(seed, n, classes.length, true);
  const want = rf.predict(matrix) as number[];
  const batch = cf.predictBatch(rows);
  const single = rows.map((r) => cf.predict(r).classIndex);
  expect(single).toEqual(want);
  expect(Array.from(batch.classIndex)).toEqual(want);
  expect(batch.labels).toEqual(want.map((c) => classes[c]));
  return { forest, cf, matrix, rows };
}

describe('nextDown', () => {
  it('returns the largest double below s, so x < s ⇔ x <= nextDown(s)', () => {
    for (const s of [1, -1, 0.1, 1e-300, -1e-300, 123456.789, -1e300, Number.MIN_VALUE]) {
      const d = nextDown(s);
      expect(d).toBeLessThan(s);
      expect((d + s) / 2 === d || (d + s) / 2 === s).toBe(true); // nothing representable in between
    }
    expect(nextDown(0)).toBe(-Number.MIN_VALUE);
    expect(nextDown(-0)).toBe(-Number.MIN_VALUE);
    expect(nextDown(Infinity)).toBe(Number.MAX_VALUE);
    expect(nextDown(Number.MAX_VALUE)).toBe(Number.MAX_VALUE - 2 ** 971);
  });
});

describe('ml-random-forest import', () => {
  const classes3 = ['Low', 'Medium', 'High'];
  const train3 = data(1, 400, 3, false);
  const rf3 = new RandomForestClassifier({ nEstimators: 25, seed: 7, noOOB: true, maxFeatures: 0.75, treeOptions: { maxDepth: 10 } });
  rf3.train(train3.matrix, train3.labels);

  it('predicts exactly what ml-random-forest predicts on 1,200 rows, with missing and unknown values', () => {
    const { forest } = parity(rf3, rf3.toJSON(), classes3, 2);
    expect(forest.aggregation).toBe('hard');
    expect(forest.voteTieBreak).toBe('first-to-reach');
    expect(forest.trees).toHaveLength(25);
    expect(forest.training.trainer).toBe('ml-random-forest');
  });

  it('keeps parity on rows sitting exactly on split values', () => {
    const forest = importMlRandomForest(rf3.toJSON(), { features: FEATURES, classes: classes3 });
    const cf = CompiledForest.compile(forest);
    const splits = new Set<number>();
    const json = JSON.parse(JSON.stringify(rf3.toJSON()));
    const walk = (n: Record<string, unknown>): void => {
      if (n.left && n.right) {
        splits.add(n.splitValue as number);
        walk(n.left as Record<string, unknown>);
        walk(n.right as Record<string, unknown>);
      }
    };
    json.baseModel.estimators.forEach((e: { root: Record<string, unknown> }) => walk(e.root));
    const values = [...splits];
    const rand = rng(5);
    const matrix = Array.from({ length: 1000 }, () => [0, 1, 2, 3].map((c) => (c === 1 ? Math.floor(rand() * 4) : values[Math.floor(rand() * values.length)])));
    const rows = matrix.map((r) => ({ SPEND: r[0], STORE_FORMAT: FORMATS[r[1]], SHOP_HOUR: r[2], LINES: r[3] }));
    expect(Array.from(cf.predictBatch(rows).classIndex)).toEqual(rf3.predict(matrix));
  });

  it('reproduces its tie rule (first class to reach the winning count) on an even number of trees', () => {
    const train = data(3, 300, 2, false);
    const rf = new RandomForestClassifier({ nEstimators: 6, seed: 11, noOOB: true, maxFeatures: 0.5, treeOptions: { maxDepth: 4 } });
    rf.train(train.matrix, train.labels);
    const { cf, rows } = parity(rf, rf.toJSON(), ['Low', 'High'], 4, 1500);
    // The test must exercise ties, and some must be won by the higher class index.
    const batch = cf.predictBatch(rows);
    let ties = 0;
    let wonByHigher = 0;
    for (let r = 0; r < rows.length; r++) {
      if (batch.probabilities[2 * r] === 0.5) {
        ties++;
        if (batch.classIndex[r] === 1) wonByHigher++;
      }
    }
    expect(ties).toBeGreaterThan(20);
    expect(wonByHigher).toBeGreaterThan(0);
  });

  it('imports a model round-tripped through JSON and load(), which loses the row counts', () => {
    const reloaded = RandomForestClassifier.load(JSON.parse(JSON.stringify(rf3.toJSON())));
    const json = JSON.parse(JSON.stringify(reloaded.toJSON()));
    expect(JSON.stringify(json)).not.toContain('numberSamples');
    const { forest } = parity(reloaded, json, classes3, 6, 1000);
    // Same tree shapes and leaves; internal distributions are rebuilt from inferred counts.
    const withCounts = importMlRandomForest(rf3.toJSON(), { features: FEATURES, classes: classes3 });
    forest.trees.forEach((t, i) => {
      expect(t.feature).toEqual(withCounts.trees[i].feature);
      expect(t.threshold).toEqual(withCounts.trees[i].threshold);
      t.feature.forEach((f, n) => {
        if (f === -1) expect(t.value.slice(3 * n, 3 * n + 3)).toEqual(withCounts.trees[i].value.slice(3 * n, 3 * n + 3));
      });
    });
  });

  it('gives explanations whose root distribution is the bootstrap sample class mix', () => {
    const forest = importMlRandomForest(rf3.toJSON(), { features: FEATURES, classes: classes3 });
    for (const tree of forest.trees) {
      expect(tree.count[0]).toBe(400);
      const counts = [0, 1, 2].map((k) => tree.value[k] * 400);
      counts.forEach((c) => expect(Math.abs(c - Math.round(c))).toBeLessThan(1e-6));
    }
    const e = CompiledForest.compile(forest).explain(train3.rows[0]);
    expect(e.explains).toBe('mean-leaf-distribution');
  });

  it('rejects inputs that are not ml-random-forest classifiers, and mismatched specs, clearly', () => {
    expect(() => importMlRandomForest({ name: 'RFRegression' }, { features: FEATURES, classes: classes3 })).toThrow(/not a RandomForestClassifier model/);
    expect(() => importMlRandomForest(rf3.toJSON(), { features: FEATURES.slice(0, 1), classes: classes3 })).toThrow(/indexes\[\d+\]\[\d+\] is \d, but 1 feature specs were given/);
    expect(() => importMlRandomForest(rf3.toJSON(), { features: FEATURES, classes: ['Low', 'High'] })).toThrow(/distribution has 3 classes, but 2 class labels were given/);
  });
});
