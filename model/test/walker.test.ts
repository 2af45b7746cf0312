import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION, type ForestFileV1 } from '../format';
import { canonicalJson, forestJson, parseForest, sealForest, upgradeForest } from '../forest-file';
import { CompiledForest } from '../walker';
import { CHILD_SHIFT } from '../walker/kernels';
import { blockTrees } from '../walker/layout';
import { referenceProba } from './reference-scorer';
import { randomForest, randomRow, rng, type RandomForestOptions } from './random-forest-fixture';

/**
 * The differential check: every scoring path of the walker (single row, proba, batch
 * of objects, columnar batch, encoded batch, explain) against the recursive reference scorer, on the
 * forest as built in memory and as read back from its v2 file. One assertion per
 * forest, so a failure shows every disagreeing row.
 */
function check(forest: ForestFileV1, rows: Record<string, unknown>[]): void {
  const v2 = parseForest(forestJson(upgradeForest(forest)), 'upgraded');
  // Small batch blocks on the v2 copy: batches span several blocks, ending in a partial one.
  const K = forest.classes.length;
  const columns: Record<string, unknown[]> = {};
  for (const f of forest.features) columns[f.name] = rows.map((r) => r[f.name]);
  const want: unknown[] = [];
  const got: unknown[] = [];
  for (const cf of [CompiledForest.compile(forest), CompiledForest.compile(v2, { blockRows: 64 })]) {
    const batch = cf.predictBatch(rows);
    const columnar = cf.predictBatch({ columns, rows: rows.length });
    const { x, n } = cf.encodeBatch(rows);
    const encoded = cf.predictBatchEncoded(x, n);
    rows.forEach((row, r) => {
      const ref = referenceProba(forest, row);
      const expected = { p: ref.probabilities, label: forest.classes[ref.classIndex] };
      const single = cf.predict(row);
      const explained = cf.explain(row);
      got.push(
        { p: Array.from(single.probabilities), label: single.label },
        { p: Array.from(cf.predictProba(row)), label: expected.label },
        { p: Array.from(batch.probabilities.subarray(r * K, r * K + K)), label: batch.labels[r] },
        { p: Array.from(columnar.probabilities.subarray(r * K, r * K + K)), label: columnar.labels[r] },
        { p: Array.from(explained.probabilities), label: explained.label },
        { p: Array.from(encoded.probabilities.subarray(r * K, r * K + K)), label: encoded.labels[r] },
      );
      want.push(expected, expected, expected, expected, expected, expected);
    });
  }
  expect(got).toEqual(want);
}

function rowsFor(forest: ForestFileV1, seed: number, n: number): Record<string, unknown>[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => randomRow(rand, forest.features));
}

describe('CompiledForest vs the recursive reference scorer', () => {
  it('gives exactly equal probabilities and labels on random soft forests and awkward rows', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const forest = randomForest(seed);
      check(forest, rowsFor(forest, seed * 7919, 150));
    }
  });

  it('matches on hard-vote forests with both tie rules, where ties are frequent', () => {
    let ties = 0;
    for (let seed = 100; seed < 115; seed++) {
      for (const voteTieBreak of ['lowest-index', 'first-to-reach'] as const) {
        const forest = randomForest(seed, { aggregation: 'hard', voteTieBreak, trees: 2 + (seed % 5), classes: 2 + (seed % 2) });
        const rows = rowsFor(forest, seed, 150);
        check(forest, rows);
        for (const row of rows) {
          const p = referenceProba(forest, row).probabilities;
          if (p.filter((x) => x === Math.max(...p)).length > 1) ties++;
        }
      }
    }
    expect(ties).toBeGreaterThan(50);
  });

  it.each<[string, RandomForestOptions]>([
    ['one tree', { trees: 1, maxDepth: 12 }],
    ['300 shallow trees', { trees: 300, maxDepth: 3 }],
    ['deep trees (depth 40)', { trees: 9, spineDepth: 40 }],
    ['deep hard-vote trees (depth 40)', { trees: 7, spineDepth: 40, aggregation: 'hard', voteTieBreak: 'first-to-reach', classes: 2 }],
    ['depth-16 trees', { trees: 12, maxDepth: 16 }],
  ])('%s', (_name, options) => {
    for (let seed = 500; seed < 503; seed++) {
      const forest = randomForest(seed, options);
      check(forest, rowsFor(forest, seed, 150));
    }
  });

  it('labels a near tie the same way on every path: by the probabilities after dividing by the tree count', () => {
    // Class sums 1.5+2^-52 < 1.5+2^-51, whose quotients by 3 are the same double: a tie
    // the lowest class index wins. Comparing sums before dividing would pick class 1.
    const near = [0.5 + 2 ** -52, 0.5 + 2 ** -51];
    expect(near[0] + 1 < near[1] + 1 && (near[0] + 1) / 3 === (near[1] + 1) / 3).toBe(true);
    const leaf = (value: number[]) => ({ feature: [-1], threshold: [0], left: [-1], right: [-1], defaultLeft: [0], value, count: [10], catBits: [] });
    const forest = sealForest({
      format: FOREST_FORMAT_ID,
      formatVersion: FOREST_FORMAT_VERSION,
      classes: ['a', 'b'],
      features: [{ name: 'x', kind: 'numeric' }],
      aggregation: 'soft',
      trees: [leaf([0.5, 0.5]), leaf([0.5, 0.5]), leaf(near)],
      training: { trainer: 'hand', hyperparameters: {}, seed: 0, datasetManifestSha256: null, rows: 10, createdAt: '2024-01-01T00:00:00Z' },
      featureStats: {},
      metrics: {},
    });
    expect(referenceProba(forest, {}).classIndex).toBe(0);
    check(parseForest(canonicalJson(forest), 'near-tie'), [{}, { x: 1 }]);
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
    [{ STORE_FORMAT: 'LS', SPEND: -Infinity }, 'Low'],
    [{ STORE_FORMAT: 'LS', SPEND: Infinity }, 'Medium'],
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
      expect(cf.predict(weird as unknown as Record<string, unknown>).label).toBe('High');
    }
  });

  it('explains a row along its path: bias is the root, contributions are the steps', () => {
    const e = cf.explain({ STORE_FORMAT: 'LS', SPEND: 20 });
    expect(Array.from(e.bias)).toEqual([0.4, 0.3, 0.3]);
    expect(Array.from(e.probabilities)).toEqual([0, 1, 0]);
    expect(e.label).toBe('Medium');
    expect(e.contributions.STORE_FORMAT[0]).toBeCloseTo(0.1, 15);
    expect(e.contributions.SPEND[0]).toBeCloseTo(-0.5, 15);
    expect(e.contributions.SPEND[1]).toBeCloseTo(0.75, 15);
    expect(e.explains).toBe('probabilities');
  });
});

describe('Saabas explanations', () => {
  it('are additive: bias + Σ contributions equals the probabilities (soft) to 1e-12', () => {
    for (let seed = 200; seed < 220; seed++) {
      const forest = randomForest(seed, { maxDepth: 9 });
      const cf = CompiledForest.compile(forest);
      const rand = rng(seed);
      let worst = 0;
      for (let i = 0; i < 100; i++) {
        const row = randomRow(rand, forest.features);
        const e = cf.explain(row);
        expect(Object.keys(e.contributions)).toEqual(forest.features.map((f) => f.name));
        expect(Array.from(e.explained)).toEqual(Array.from(e.probabilities));
        for (let k = 0; k < forest.classes.length; k++) {
          let total = e.bias[k];
          for (const c of Object.values(e.contributions)) total += c[k];
          worst = Math.max(worst, Math.abs(total - e.probabilities[k]));
        }
      }
      expect(worst).toBeLessThanOrEqual(1e-12);
    }
  });

  it('report a hard-vote forest\'s own label and vote fractions, and explain the mean leaf distribution separately', () => {
    // Leaves with mixed distributions, so votes and mean distributions differ.
    const soft = randomForest(5, { trees: 9 });
    const cf = CompiledForest.compile(sealForest({ ...soft, aggregation: 'hard', voteTieBreak: 'first-to-reach' }));
    const forest = soft;
    const rand = rng(1);
    let differs = 0;
    for (let i = 0; i < 200; i++) {
      const row = randomRow(rand, forest.features);
      const e = cf.explain(row);
      const p = cf.predict(row);
      expect(e.explains).toBe('mean-leaf-distribution');
      expect([e.label, e.classIndex, Array.from(e.probabilities)]).toEqual([p.label, p.classIndex, Array.from(p.probabilities)]);
      expect(Array.from(e.explained)).toEqual(referenceProba(soft, row).probabilities);
      if (Array.from(e.explained).join() !== Array.from(e.probabilities).join()) differs++;
    }
    // The two quantities differ on most rows, so the test tells them apart.
    expect(differs).toBeGreaterThan(100);
  });
});

describe('blocked node layout', () => {
  /** A pre-order packing (left child next, word 1 = left subtree size << 11) of a complete tree; node i's payload is i. */
  function completePreOrder(depth: number): Int32Array {
    const words: number[] = [];
    const build = (d: number): number => {
      const at = words.length / 2;
      words.push(0, 0);
      if (d === depth) {
        words[2 * at] = ~at;
        words[2 * at + 1] = (-1 << CHILD_SHIFT) | 1;
        return 1;
      }
      words[2 * at] = at;
      const left = build(d + 1);
      const right = build(d + 1);
      words[2 * at + 1] = left << CHILD_SHIFT;
      return 1 + left + right;
    };
    build(0);
    return Int32Array.from(words);
  }

  it('keeps every node once, children adjacent, and a root-to-leaf path within a few blocks', () => {
    const depth = 14;
    const pre = completePreOrder(depth);
    const N = pre.length / 2;
    // Two trees, the second one's nodes after the first's.
    const twice = new Int32Array(4 * N);
    twice.set(pre);
    twice.set(pre, 2 * N);
    for (let i = N; i < 2 * N; i++) if (twice[2 * i] < 0) twice[2 * i] = ~(~twice[2 * i] + N);
    else twice[2 * i] += N;
    const valueIndex = Int32Array.from({ length: 2 * N }, (_, i) => i);
    const b = blockTrees(twice, valueIndex, Int32Array.of(0, N), [N, N]);
    const seen = new Uint8Array(2 * N);
    const wrong: string[] = [];
    let worstFar = 0;
    const walk = (q: number, far: number, lo: number, hi: number): void => {
      const original = b.valueIndex[q];
      if (q < lo || q >= hi || seen[original]) return void wrong.push(`position ${q} (node ${original}) outside its tree or reached twice`);
      seen[original] = 1;
      const offset = b.nodes[2 * q + 1] >> CHILD_SHIFT;
      if (offset === -1) {
        if (~b.nodes[2 * q] !== original) wrong.push(`leaf ${original} lost its payload`);
        worstFar = Math.max(worstFar, far);
        return;
      }
      // The left child is the original's next node; the right one directly follows it.
      if (b.nodes[2 * q] !== original || b.valueIndex[q + offset] !== original + 1) wrong.push(`node ${original}: record or left child moved apart`);
      const jump = Math.abs(offset) >= 64 ? 1 : 0;
      walk(q + offset, far + jump, lo, hi);
      walk(q + offset + 1, far + jump, lo, hi);
    };
    walk(b.roots[0], 0, 0, N);
    walk(b.roots[1], 0, N, 2 * N);
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(seen.every((s) => s === 1)).toBe(true);
    // Pre-order jumps further than 64 nodes at every right turn in the top 8 levels; blocks
    // of 64 hold 6 levels under a root and 5 under a sibling pair, so a path leaves 2 here.
    expect(worstFar).toBeLessThanOrEqual(Math.ceil((depth - 5) / 5));
  });
});
