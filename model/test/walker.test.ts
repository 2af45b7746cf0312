import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION, type ForestFileV1 } from '../format';
import { parseForest, canonicalJson, sealForest } from '../forest-file';
import { CompiledForest } from '../walker';
import { referenceProba } from './reference-scorer';
import { randomForest, randomRow, rng } from './random-forest-fixture';

/** Walker (single, proba, batch of objects, columnar batch) vs the reference, compared in one assertion per forest. */
function check(forest: ForestFileV1, rows: Record<string, unknown>[]): void {
  const cf = CompiledForest.compile(forest);
  const K = forest.classes.length;
  const batch = cf.predictBatch(rows);
  const columns: Record<string, unknown[]> = {};
  for (const f of forest.features) columns[f.name] = rows.map((r) => r[f.name]);
  const columnar = cf.predictBatch({ columns, rows: rows.length });
  const got: unknown[] = [];
  const want: unknown[] = [];
  rows.forEach((row, r) => {
    const ref = referenceProba(forest, row);
    const expected = { p: ref.probabilities, c: ref.classIndex, label: forest.classes[ref.classIndex] };
    const single = cf.predict(row);
    got.push(
      { p: Array.from(single.probabilities), c: single.classIndex, label: single.label },
      { p: Array.from(cf.predictProba(row)), c: ref.classIndex, label: expected.label },
      { p: Array.from(batch.probabilities.subarray(r * K, r * K + K)), c: batch.classIndex[r], label: batch.labels[r] },
      { p: Array.from(columnar.probabilities.subarray(r * K, r * K + K)), c: columnar.classIndex[r], label: columnar.labels[r] },
    );
    want.push(expected, expected, expected, expected);
  });
  expect(got).toEqual(want);
}

describe('CompiledForest vs the recursive reference scorer', () => {
  it('gives exactly equal probabilities and labels on random soft forests and awkward rows', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const forest = randomForest(seed);
      const rand = rng(seed * 7919);
      check(forest, Array.from({ length: 300 }, () => randomRow(rand, forest.features)));
    }
  });

  it('matches on hard-vote forests with both tie rules, where ties are frequent', () => {
    let ties = 0;
    for (let seed = 100; seed < 125; seed++) {
      for (const voteTieBreak of ['lowest-index', 'first-to-reach'] as const) {
        const forest = randomForest(seed, { aggregation: 'hard', voteTieBreak, trees: 2 + (seed % 5), classes: 2 + (seed % 2) });
        const rand = rng(seed);
        const rows = Array.from({ length: 300 }, () => randomRow(rand, forest.features));
        check(forest, rows);
        const cf = CompiledForest.compile(forest);
        for (const row of rows) {
          const p = Array.from(cf.predictProba(row));
          if (p.filter((x) => x === Math.max(...p)).length > 1) ties++;
        }
      }
    }
    expect(ties).toBeGreaterThan(50);
  });

  it('scores deep forests with batches larger than one block', () => {
    const forest = randomForest(7, { trees: 12, maxDepth: 16 });
    const rand = rng(99);
    check(forest, Array.from({ length: 700 }, () => randomRow(rand, forest.features)));
  });
});

describe('CompiledForest semantics on a hand-built forest', () => {
  // Root: STORE_FORMAT in {LS, XLS} (codes 2, 3) or category code 33 → left; missing → right.
  // Left: SPEND <= 10 → leaf 3, else leaf 4; missing SPEND → left (leaf 3).
  const categories = ['SS', 'MS', 'LS', 'XLS', ...Array.from({ length: 30 }, (_, i) => `k${i + 4}`)];
  const forest = sealForest({
    format: FOREST_FORMAT_ID,
    formatVersion: FOREST_FORMAT_VERSION,
    classes: ['Low', 'Medium', 'High'],
    features: [
      { name: 'SPEND', kind: 'numeric' },
      { name: 'STORE_FORMAT', kind: 'categorical', categories },
    ],
    aggregation: 'soft',
    trees: [
      {
        feature: [1, 0, -1, -1, -1],
        threshold: [0, 10, 0, 0, 0],
        left: [1, 3, -1, -1, -1],
        right: [2, 4, -1, -1, -1],
        defaultLeft: [0, 1, 0, 0, 0],
        value: [0.4, 0.3, 0.3, 0.5, 0.25, 0.25, 0, 0, 1, 1, 0, 0, 0, 1, 0],
        count: [100, 60, 40, 30, 30],
        catBits: [0b1100, 0b10],
      },
    ],
    training: { trainer: 'hand', hyperparameters: {}, seed: 0, datasetManifestSha256: null, rows: 100, createdAt: '2024-01-01T00:00:00Z' },
    featureStats: {},
    metrics: {},
  });
  const cf = CompiledForest.compile(parseForest(canonicalJson(forest), 'hand-built'));

  it.each([
    [{ STORE_FORMAT: 'LS', SPEND: 5 }, 'Low'],
    [{ STORE_FORMAT: 'XLS', SPEND: 10 }, 'Low'], // x <= threshold goes left
    [{ STORE_FORMAT: 'XLS', SPEND: 10.000001 }, 'Medium'],
    [{ STORE_FORMAT: 'k33', SPEND: 50 }, 'Medium'], // bit 1 of the second word
    [{ STORE_FORMAT: 'LS', SPEND: null }, 'Low'], // missing numeric → defaultLeft
    [{ STORE_FORMAT: 'LS', SPEND: '50' }, 'Low'], // strings are missing for numeric features
    [{ STORE_FORMAT: 'SS', SPEND: 5 }, 'High'],
    [{ STORE_FORMAT: 'nope', SPEND: 5 }, 'High'], // unknown → defaultLeft (right here)
    [{ SPEND: 5 }, 'High'],
    [{}, 'High'],
  ])('%j → %s', (row, label) => {
    expect(cf.predict(row).label).toBe(label);
  });

  it('encodes raw values as documented and never throws', () => {
    const out = new Float64Array(2);
    cf.encode({ SPEND: 3.5, STORE_FORMAT: 'MS' }, out);
    expect(Array.from(out)).toEqual([3.5, 1]);
    for (const weird of [{ SPEND: {}, STORE_FORMAT: [] }, { SPEND: Symbol('x'), STORE_FORMAT: 12n }, null, undefined, { SPEND: true, STORE_FORMAT: undefined }]) {
      cf.encode(weird as unknown as Record<string, unknown>, out);
      expect(Number.isNaN(out[0]) && Number.isNaN(out[1])).toBe(true);
    }
  });

  it('explains a row along its path: bias is the root, contributions are the steps', () => {
    const e = cf.explain({ STORE_FORMAT: 'LS', SPEND: 20 });
    expect(Array.from(e.bias)).toEqual([0.4, 0.3, 0.3]);
    expect(Array.from(e.probabilities)).toEqual([0, 1, 0]);
    expect(e.contributions.STORE_FORMAT[0]).toBeCloseTo(0.1, 15);
    expect(e.contributions.SPEND[0]).toBeCloseTo(-0.5, 15);
    expect(e.contributions.SPEND[1]).toBeCloseTo(0.75, 15);
    expect(e.explains).toBe('probabilities');
  });
});

describe('Saabas explanations', () => {
  it('are additive: bias + Σ contributions equals the probabilities (soft) to 1e-12', () => {
    for (let seed = 200; seed < 230; seed++) {
      const forest = randomForest(seed, { maxDepth: 9 });
      const cf = CompiledForest.compile(forest);
      const rand = rng(seed);
      let worst = 0;
      const probaGot: number[][] = [];
      const probaWant: number[][] = [];
      for (let i = 0; i < 100; i++) {
        const row = randomRow(rand, forest.features);
        const e = cf.explain(row);
        const proba = cf.predictProba(row);
        probaGot.push(Array.from(e.probabilities));
        probaWant.push(Array.from(proba));
        expect(Object.keys(e.contributions)).toEqual(forest.features.map((f) => f.name));
        for (let k = 0; k < forest.classes.length; k++) {
          let total = e.bias[k];
          for (const c of Object.values(e.contributions)) total += c[k];
          worst = Math.max(worst, Math.abs(total - proba[k]));
        }
      }
      expect(probaGot).toEqual(probaWant);
      expect(worst).toBeLessThanOrEqual(1e-12);
    }
  });

  it('explain the mean leaf distribution for hard-vote forests, and say so', () => {
    const forest = randomForest(5, { aggregation: 'hard', trees: 9 });
    const cf = CompiledForest.compile(forest);
    const row = randomRow(rng(1), forest.features);
    const e = cf.explain(row);
    expect(e.explains).toBe('mean-leaf-distribution');
    const soft = CompiledForest.compile(sealForest({ ...forest, aggregation: 'soft' }));
    expect(Array.from(e.probabilities)).toEqual(Array.from(soft.predictProba(row)));
  });
});
