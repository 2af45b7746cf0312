import { UserError } from '../../core/errors';
import { canonicalJson, parseForest } from '../forest-file';
import type { ForestFileV1, TreeV1 } from '../format';
import { trainForest, HISTOGRAM_TRAINER } from '../trainer';
import { trainMlRandomForest } from '../trainer/ml-random-forest';
import { CompiledForest } from '../walker';
import { NOISY_FEATURES, RULE_FEATURES, fakeManifestSha, noisyTable, ruleLabel, ruleTable } from './trainer-fixtures';

const CREATED_AT = '2024-01-01T00:00:00.000Z';

/** Routes a row through one tree by the format's rules, recording the nodes it visits. */
function route(forest: ForestFileV1, tree: TreeV1, row: Record<string, unknown>, visit: (node: number) => void): number {
  let i = 0;
  for (;;) {
    visit(i);
    const f = tree.feature[i];
    if (f < 0) return i;
    const spec = forest.features[f];
    const v = row[spec.name];
    let left: boolean;
    if (spec.kind === 'numeric') {
      left = typeof v === 'number' && !Number.isNaN(v) ? v <= tree.threshold[i] : tree.defaultLeft[i] === 1;
    } else {
      const code = typeof v === 'string' ? spec.categories.indexOf(v) : -1;
      left = code < 0 ? tree.defaultLeft[i] === 1 : ((tree.catBits[tree.threshold[i] + (code >>> 5)] >>> (code & 31)) & 1) === 1;
    }
    i = left ? tree.left[i] : tree.right[i];
  }
}

function rowOf(table: ReturnType<typeof noisyTable>, i: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const [k, col] of Object.entries(table.numeric)) row[k] = col[i];
  for (const [k, col] of Object.entries(table.categorical)) row[k] = col[i];
  return row;
}

function depthOf(tree: TreeV1): number {
  const depth = new Int32Array(tree.feature.length);
  let max = 0;
  for (let i = 0; i < tree.feature.length; i++) {
    if (tree.feature[i] >= 0) {
      depth[tree.left[i]] = depth[i] + 1;
      depth[tree.right[i]] = depth[i] + 1;
      max = Math.max(max, depth[i] + 1);
    }
  }
  return max;
}

describe('histogram RandomForest trainer', () => {
  it('learns an axis-aligned rule exactly: a numeric threshold, a categorical subset and a missing-value rule', async () => {
    const forest = await trainForest(ruleTable(3000), { features: RULE_FEATURES, trees: 8, maxFeatures: 'all', minSamplesLeaf: 1, threads: 1, progress: false, seed: 3 });
    const compiled = CompiledForest.compile(forest);
    const fresh = ruleTable(2000, 99);
    for (let i = 0; i < fresh.rows; i++) {
      const row = { x: fresh.numeric.x[i], m: fresh.numeric.m[i], noise: fresh.numeric.noise[i], c: fresh.categorical.c[i] };
      expect(compiled.predict(row).label).toBe(fresh.labels[i]);
    }
    // Leaves are pure: the rule is learned, not approximated.
    for (const tree of forest.trees) {
      for (let i = 0; i < tree.feature.length; i++) {
        if (tree.feature[i] < 0) expect(Math.max(tree.value[i * 3], tree.value[i * 3 + 1], tree.value[i * 3 + 2])).toBe(1);
      }
    }
    // The x split sits midway between the training values 50 and 51.
    const xThresholds = forest.trees.flatMap((t) => t.feature.map((f, i) => (f === 0 ? t.threshold[i] : null)).filter((v) => v !== null));
    expect(xThresholds).toContain(50.5);
    // Unseen categories and missing values follow the learned default direction without failing.
    expect(compiled.predict({ x: 80, m: 1, noise: 0.5, c: 'Z' }).label).toBe(ruleLabel(80, 1, 'Z'));
    expect(compiled.predict({ x: 10, m: NaN, noise: 0.5, c: 'A' }).label).toBe('Low');
    expect(forest.features.find((f) => f.name === 'c')).toEqual({ name: 'c', kind: 'categorical', categories: ['A', 'B', 'C', 'D'] });
  });

  it('produces an identical forest on 1 and 2 threads, and a different one for another seed', async () => {
    const table = noisyTable(4000);
    const opts = { features: NOISY_FEATURES, trees: 6, maxDepth: 10, seed: 11, createdAt: CREATED_AT, progress: false } as const;
    const one = await trainForest(table, { ...opts, threads: 1 });
    const two = await trainForest(table, { ...opts, threads: 2 });
    expect(canonicalJson(two)).toBe(canonicalJson(one));
    expect(two.sha256).toBe(one.sha256);
    const other = await trainForest(table, { ...opts, threads: 1, seed: 12 });
    expect(other.sha256).not.toBe(one.sha256);
  });

  it('writes a valid, sealed document whose thresholds reproduce the training partition exactly (no bootstrap)', async () => {
    const table = noisyTable(5000, 21);
    const forest = await trainForest(table, { features: NOISY_FEATURES, trees: 3, maxDepth: 8, minSamplesLeaf: 3, bootstrap: false, seed: 5, threads: 1, progress: false });
    expect(parseForest(JSON.stringify(forest)).sha256).toBe(forest.sha256);
    expect(forest.aggregation).toBe('soft');
    expect(forest.training.trainer).toBe(HISTOGRAM_TRAINER);
    expect(forest.training.rows).toBe(5000);
    expect(forest.training.datasetManifestSha256).toBe(fakeManifestSha('noisy'));
    for (const tree of forest.trees) {
      const visits = new Float64Array(tree.feature.length);
      for (let i = 0; i < table.rows; i++) route(forest, tree, rowOf(table, i), (node) => visits[node]++);
      // Every node's recorded training count is what routing the raw rows through the file gives.
      expect(Array.from(visits)).toEqual(tree.count);
      expect(depthOf(tree)).toBeLessThanOrEqual(8);
      tree.feature.forEach((f, i) => {
        if (f < 0) expect(tree.count[i]).toBeGreaterThanOrEqual(3);
      });
    }
    // A categorical feature with 40 levels was split by subsets at least once.
    expect(forest.trees.some((t) => t.feature.includes(3))).toBe(true);
  });

  it('draws bootstrap samples of the training size and honours class weights', async () => {
    const table = noisyTable(3000, 8);
    const forest = await trainForest(table, { features: NOISY_FEATURES, trees: 3, threads: 1, progress: false });
    for (const tree of forest.trees) expect(tree.count[0]).toBe(3000);
    const balanced = await trainForest(table, { features: NOISY_FEATURES, trees: 1, maxDepth: 2, bootstrap: false, classWeight: 'balanced', threads: 1, progress: false });
    const root = balanced.trees[0].value.slice(0, 3);
    root.forEach((p) => expect(p).toBeCloseTo(1 / 3, 12));
    const explicit = await trainForest(table, { features: NOISY_FEATURES, trees: 1, maxDepth: 0, bootstrap: false, classWeight: { High: 2 }, threads: 1, progress: false });
    const counts = { Low: 0, Medium: 0, High: 0 };
    for (const l of table.labels) counts[l]++;
    const w = counts.Low + counts.Medium + 2 * counts.High;
    expect(explicit.trees[0].value[2]).toBeCloseTo((2 * counts.High) / w, 12);
    expect(explicit.trees[0].feature).toEqual([-1]);
  });

  it('stops at minImpurityDecrease and maxDepth 0', async () => {
    const table = noisyTable(2000, 9);
    const stump = await trainForest(table, { features: NOISY_FEATURES, trees: 2, maxDepth: 0, threads: 1, progress: false });
    for (const t of stump.trees) expect(t.feature).toEqual([-1]);
    const pruned = await trainForest(table, { features: NOISY_FEATURES, trees: 2, minImpurityDecrease: 0.5, threads: 1, progress: false });
    for (const t of pruned.trees) expect(t.feature).toEqual([-1]);
  });

  it('rejects bad options and tables with a UserError naming the problem', async () => {
    const table = ruleTable(100);
    await expect(trainForest(table, { features: RULE_FEATURES, trees: 0, progress: false })).rejects.toThrow(/trees must be an integer/);
    await expect(trainForest(table, { features: RULE_FEATURES, maxFeatures: 1.5, progress: false })).rejects.toThrow(UserError);
    await expect(trainForest(table, { features: [{ name: 'nope', kind: 'numeric' }], progress: false })).rejects.toThrow(/no numeric column nope/);
    const badLabel = { ...table, labels: table.labels.map((l, i) => (i === 7 ? ('Huge' as never) : l)) };
    await expect(trainForest(badLabel, { features: RULE_FEATURES, progress: false })).rejects.toThrow(/row 7 .* label "Huge"/);
  });

  it('--trainer ml-random-forest: trains on the encoded matrix and imports the model (missing values go right)', async () => {
    const table = ruleTable(400, 5);
    const forest = await trainMlRandomForest(table, { features: RULE_FEATURES, trees: 5, seed: 4, progress: false });
    expect(forest.training.trainer).toBe('ml-random-forest');
    expect(forest.aggregation).toBe('hard');
    const compiled = CompiledForest.compile(forest);
    const fresh = ruleTable(1000, 77);
    let correct = 0;
    for (let i = 0; i < fresh.rows; i++) {
      const row = { x: fresh.numeric.x[i], m: fresh.numeric.m[i], noise: fresh.numeric.noise[i], c: fresh.categorical.c[i] };
      if (compiled.predict(row).label === fresh.labels[i]) correct++;
    }
    expect(correct / fresh.rows).toBeGreaterThan(0.95);
  });
});
