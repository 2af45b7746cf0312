/**
 * Converts an ml-random-forest RandomForestClassifier model (model.toJSON(), live or
 * round-tripped through JSON) into forest format v1, so that CompiledForest scores it
 * exactly as ml-random-forest's own predict() does. Its conventions, from the
 * ml-random-forest 2.x / ml-cart 2.x sources:
 *
 * - a node sends x to the left when `x < splitValue`. For doubles, x < s ⇔ x <= nextDown(s),
 *   so thresholds become the next lower double; NaN fails `<` and goes right, which is
 *   defaultLeft = 0. A split whose value is NaN or −∞ sends everything right, so the
 *   node is replaced by its right subtree.
 * - splitColumn indexes the tree's bagged columns: the feature is indexes[tree][splitColumn].
 * - a leaf's distribution has one entry per class up to the largest class seen in the
 *   leaf; a tree votes for its first maximum (ml-matrix maxRowIndex).
 * - the forest's vote is ml-array-mode: the class that first reaches the winning count,
 *   scanning trees in order — voteTieBreak 'first-to-reach', aggregation 'hard'.
 *
 * ml-random-forest only sees a numeric matrix, so the caller supplies the feature spec.
 * For a categorical feature the matrix column must hold the category's code (its index
 * in categories) and NaN for missing; a split `code < s` becomes a bitset of the codes
 * below s, and unknown categories go right like NaN does.
 *
 * ml-cart keeps no class distribution on internal nodes; the importer rebuilds them
 * (for Saabas explanations) from the leaves, weighted by the row counts the training
 * recorded (numberSamples), inferring counts the model does not carry.
 */
import { UserError } from '../core/errors';
import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION, type FeatureSpec, type ForestFileV1, type TreeV1 } from './format';
import { sealForest } from './forest-file';

export interface ImportMlRfOptions {
  /** One spec per column of the numeric matrix ml-random-forest was trained on, in order. */
  readonly features: FeatureSpec[];
  /** Class labels; ml-random-forest predicts class indexes 0..K-1 into this list. */
  readonly classes: string[];
  readonly datasetManifestSha256?: string | null;
  /** Training rows (lineage); defaults to the root's sample count when the model has it. */
  readonly rows?: number;
  readonly createdAt?: string;
  readonly codeVersion?: string;
  /** The gold feature-definition version the model was trained on (only when trained on pricesense gold). */
  readonly featureDefinitions?: string;
  readonly featureStats?: ForestFileV1['featureStats'];
  readonly metrics?: Record<string, unknown>;
}

interface MlCartNode {
  splitValue?: number | null;
  splitColumn?: number;
  numberSamples?: number;
  distribution?: unknown;
  left?: MlCartNode;
  right?: MlCartNode;
}

const scratch = new Float64Array(1);
const scratchBits = new BigInt64Array(scratch.buffer);

/** The largest double below s (s finite or +∞). */
export function nextDown(s: number): number {
  if (Number.isNaN(s) || s === -Infinity) return s;
  if (s === 0) return -Number.MIN_VALUE;
  scratch[0] = s;
  scratchBits[0] += s > 0 ? -1n : 1n;
  return scratch[0];
}

function bad(where: string, problem: string): never {
  throw new UserError(`ml-random-forest model: ${where} ${problem}`);
}

function distributionOf(node: MlCartNode, where: string): number[] {
  let d = node.distribution as unknown;
  if (d && typeof d === 'object' && typeof (d as { to2DArray?: unknown }).to2DArray === 'function') {
    d = (d as { to2DArray: () => number[][] }).to2DArray();
  }
  if (Array.isArray(d) && d.length === 1 && Array.isArray(d[0])) d = d[0];
  if (!Array.isArray(d) || d.length === 0 || !d.every((p) => typeof p === 'number' && Number.isFinite(p))) {
    bad(`${where}.distribution`, 'must be a non-empty row of class probabilities');
  }
  return d as number[];
}

function isInternal(node: MlCartNode): boolean {
  return node.distribution === undefined && typeof node.left === 'object' && node.left !== null && typeof node.right === 'object' && node.right !== null;
}

/** Smallest row count n ≤ 100000 for which every probability is a multiple of 1/n. */
function inferLeafCount(dist: number[]): number {
  for (let n = 1; n <= 100_000; n++) {
    if (dist.every((p) => Math.abs(p * n - Math.round(p * n)) < 1e-6)) return n;
  }
  return 1;
}

function fitsCount(dist: number[], n: number): boolean {
  return dist.every((p) => Math.abs(p * n - Math.round(p * n)) < 1e-6);
}

function convertTree(root: MlCartNode, usedIndex: number[], t: number, features: FeatureSpec[], K: number): TreeV1 {
  const feature: number[] = [];
  const threshold: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  const defaultLeft: number[] = [];
  const leafDist: (number[] | null)[] = [];
  const count: number[] = [];
  const catBits: number[] = [];

  // Breadth-first, so every child's index is greater than its parent's.
  const queue: { node: MlCartNode; where: string }[] = [{ node: root, where: `estimators[${t}].root` }];
  for (let head = 0; head < queue.length; head++) {
    let { node, where } = queue[head];
    // A split that sends every value right (NaN or -Infinity) is its right subtree.
    while (isInternal(node) && (typeof node.splitValue !== 'number' || Number.isNaN(node.splitValue) || node.splitValue === -Infinity)) {
      if (node.splitValue === null) bad(`${where}.splitValue`, 'is null: a NaN or infinite split value was lost in JSON; import model.toJSON() directly');
      node = node.right!;
      where = `${where}.right`;
    }
    count.push(typeof node.numberSamples === 'number' ? node.numberSamples : NaN);
    if (!isInternal(node)) {
      const dist = distributionOf(node, where);
      if (dist.length > K) bad(`${where}.distribution`, `has ${dist.length} classes, but ${K} class labels were given`);
      feature.push(-1);
      threshold.push(0);
      left.push(-1);
      right.push(-1);
      defaultLeft.push(0);
      leafDist.push(dist);
      continue;
    }
    const col = node.splitColumn;
    if (typeof col !== 'number' || !Number.isInteger(col) || col < 0 || col >= usedIndex.length) {
      bad(`${where}.splitColumn`, `is ${String(col)}, expected an index into indexes[${t}] (length ${usedIndex.length})`);
    }
    const f = usedIndex[col];
    if (!Number.isInteger(f) || f < 0 || f >= features.length) {
      bad(`indexes[${t}][${col}]`, `is ${String(f)}, but ${features.length} feature specs were given`);
    }
    const s = node.splitValue as number;
    const spec = features[f];
    feature.push(f);
    defaultLeft.push(0);
    leafDist.push(null);
    if (spec.kind === 'categorical') {
      const words = Math.ceil(spec.categories.length / 32);
      const offset = catBits.length;
      for (let w = 0; w < words; w++) catBits.push(0);
      for (let c = 0; c < spec.categories.length && c < s; c++) catBits[offset + (c >>> 5)] |= 1 << (c & 31);
      threshold.push(offset);
    } else {
      const th = s === Infinity ? Number.MAX_VALUE : nextDown(s);
      if (!Number.isFinite(th)) bad(`${where}.splitValue`, `is ${s}, whose next lower double is not finite`);
      threshold.push(th);
    }
    left.push(queue.length);
    queue.push({ node: node.left!, where: `${where}.left` });
    right.push(queue.length);
    queue.push({ node: node.right!, where: `${where}.right` });
  }

  const n = feature.length;
  // Fill in counts the model did not record: a child from its parent and sibling, a
  // pair of small leaves by the split of the parent consistent with both distributions.
  for (let i = 0; i < n; i++) {
    if (feature[i] < 0 || Number.isNaN(count[i])) continue;
    const l = left[i];
    const r = right[i];
    if (Number.isNaN(count[l]) && !Number.isNaN(count[r])) count[l] = count[i] - count[r];
    else if (Number.isNaN(count[r]) && !Number.isNaN(count[l])) count[r] = count[i] - count[l];
    else if (Number.isNaN(count[l]) && Number.isNaN(count[r]) && feature[l] < 0 && feature[r] < 0) {
      let nl = 1;
      while (nl < count[i] - 1 && !(fitsCount(leafDist[l]!, nl) && fitsCount(leafDist[r]!, count[i] - nl))) nl++;
      count[l] = nl;
      count[r] = count[i] - nl;
    }
  }
  const value = new Array<number>(n * K).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    if (feature[i] < 0) {
      const dist = leafDist[i]!;
      for (let k = 0; k < dist.length; k++) value[i * K + k] = dist[k];
      if (Number.isNaN(count[i]) || count[i] <= 0) count[i] = inferLeafCount(dist);
    } else {
      const l = left[i];
      const r = right[i];
      if (Number.isNaN(count[i])) count[i] = count[l] + count[r];
      const total = count[l] + count[r];
      const wl = total > 0 ? count[l] / total : 0.5;
      for (let k = 0; k < K; k++) value[i * K + k] = wl * value[l * K + k] + (1 - wl) * value[r * K + k];
    }
  }
  return { feature, threshold, left, right, defaultLeft, value, count, catBits };
}

/** Converts ml-random-forest's RandomForestClassifier toJSON() into a sealed forest document. */
export function importMlRandomForest(model: unknown, options: ImportMlRfOptions): ForestFileV1 {
  const m = model as { name?: unknown; baseModel?: Record<string, unknown> };
  if (!m || typeof m !== 'object' || m.name !== 'RFClassifier' || typeof m.baseModel !== 'object' || m.baseModel === null) {
    bad('', "is not a RandomForestClassifier model (expected model.toJSON() with name 'RFClassifier' and a baseModel)");
  }
  const base = m.baseModel;
  const estimators = base.estimators as { name?: unknown; root?: MlCartNode }[] | undefined;
  const indexes = base.indexes as number[][] | undefined;
  if (!Array.isArray(estimators) || estimators.length === 0) bad('baseModel.estimators', 'must be a non-empty array');
  if (!Array.isArray(indexes) || indexes.length !== estimators.length) bad('baseModel.indexes', 'must have one column list per estimator');
  const K = options.classes.length;
  const trees = estimators.map((est, t) => {
    if (!est || est.name !== 'DTClassifier' || typeof est.root !== 'object') bad(`estimators[${t}]`, "is not a DTClassifier (expected name 'DTClassifier' and a root)");
    if (!Array.isArray(indexes[t])) bad(`indexes[${t}]`, 'must be an array of column indexes');
    return convertTree(est.root!, indexes[t], t, options.features, K);
  });
  const seed = typeof base.seed === 'number' && Number.isInteger(base.seed) ? base.seed : 0;
  return sealForest({
    format: FOREST_FORMAT_ID,
    formatVersion: FOREST_FORMAT_VERSION,
    classes: options.classes.slice(),
    features: options.features.map((f) => (f.kind === 'categorical' ? { name: f.name, kind: f.kind, categories: f.categories.slice() } : { name: f.name, kind: f.kind })),
    aggregation: 'hard',
    voteTieBreak: 'first-to-reach',
    trees,
    training: {
      trainer: 'ml-random-forest',
      hyperparameters: {
        nEstimators: estimators.length,
        maxFeatures: base.maxFeatures ?? null,
        featuresPerTree: base.n ?? null,
        replacement: base.replacement ?? null,
        useSampleBagging: base.useSampleBagging ?? null,
        treeOptions: JSON.parse(JSON.stringify(base.treeOptions ?? {})),
      },
      seed,
      datasetManifestSha256: options.datasetManifestSha256 ?? null,
      rows: options.rows ?? (Number.isFinite(trees[0].count[0]) ? Math.round(trees[0].count[0]) : 0),
      createdAt: options.createdAt ?? new Date().toISOString(),
      ...(options.codeVersion !== undefined ? { codeVersion: options.codeVersion } : {}),
      ...(options.featureDefinitions !== undefined ? { featureDefinitions: options.featureDefinitions } : {}),
    },
    featureStats: options.featureStats ?? {},
    metrics: options.metrics ?? {},
  });
}
