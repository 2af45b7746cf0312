/**
 * Test-only generator of random, valid forests and awkward raw rows: mixed numeric
 * and categorical features (up to 70 categories, so bitsets span several words),
 * random shapes and depths (or deep "spines": one path of a given depth with shallow
 * side subtrees), defaultLeft both ways, and rows with missing, unknown, mistyped and
 * boundary values (exactly on thresholds).
 */
import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION, type Aggregation, type FeatureSpec, type ForestFileV1, type ForestFormatVersion, type TreeV1, type VoteTieBreak } from '../format';
import { sealForest } from '../forest-file';
import { mulberry32 } from '../../etl/synth/rng';

/** Deterministic PRNG for fixtures. */
export const rng = mulberry32;


export const THRESHOLD_POOL = [-3.5, -1, 0, 0.25, 0.5, 1, 2.75, 10, 1e6];

export interface RandomForestOptions {
  trees?: number;
  maxDepth?: number;
  classes?: number;
  aggregation?: Aggregation;
  voteTieBreak?: VoteTieBreak;
  /** Every tree has one root-to-leaf path of exactly this depth; its side subtrees are at most 2 deep. */
  spineDepth?: number;
  formatVersion?: ForestFormatVersion;
}

export function randomFeatures(rand: () => number): FeatureSpec[] {
  const n = 2 + Math.floor(rand() * 6);
  const out: FeatureSpec[] = [];
  for (let i = 0; i < n; i++) {
    if (rand() < 0.4) {
      const cats = 1 + Math.floor(rand() * 70);
      out.push({ name: `c${i}`, kind: 'categorical', categories: Array.from({ length: cats }, (_, c) => (c % 7 === 3 ? String(c) : `v${c}`)) });
    } else {
      out.push({ name: `n${i}`, kind: 'numeric' });
    }
  }
  return out;
}

function randomDistribution(rand: () => number, K: number): number[] {
  const w: number[] = Array.from({ length: K }, () => (rand() < 0.2 ? 0 : rand()));
  if (!w.some((x) => x > 0)) w[Math.floor(rand() * K)] = 1;
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
}

export function randomTree(rand: () => number, features: FeatureSpec[], K: number, maxDepth: number, distributions: 'random' | 'ties', spineDepth?: number): TreeV1 {
  const t = { feature: [] as number[], threshold: [] as number[], left: [] as number[], right: [] as number[], defaultLeft: [] as number[], value: [] as number[], count: [] as number[], catBits: [] as number[] };
  const queue: number[] = [0]; // depths, breadth-first
  // With a spine: the node on it at each depth, and how deep side subtrees may go.
  const onSpine: boolean[] = [true];
  const sideLimit: number[] = [0];
  for (let head = 0; head < queue.length; head++) {
    const depth = queue[head];
    // Hard-vote fixtures: one-hot leaves, so many trees vote alike and votes tie often.
    const hot = distributions === 'ties' ? Math.floor(rand() * K) : -1;
    const d = distributions === 'ties' ? Array.from({ length: K }, (_, k) => (k === hot ? 1 : 0)) : randomDistribution(rand, K);
    t.value.push(...d);
    t.count.push(1 + Math.floor(rand() * 100));
    const leaf = spineDepth === undefined ? depth >= maxDepth || (depth > 0 && rand() < 0.25) : onSpine[head] ? depth >= spineDepth : depth >= sideLimit[head] || rand() < 0.3;
    if (leaf) {
      t.feature.push(-1);
      t.threshold.push(0);
      t.left.push(-1);
      t.right.push(-1);
      t.defaultLeft.push(0);
      continue;
    }
    const f = Math.floor(rand() * features.length);
    const spec = features[f];
    t.feature.push(f);
    t.defaultLeft.push(rand() < 0.5 ? 1 : 0);
    if (spec.kind === 'categorical') {
      const off = t.catBits.length;
      const words = Math.ceil(spec.categories.length / 32);
      for (let w = 0; w < words; w++) t.catBits.push(0);
      for (let c = 0; c < spec.categories.length; c++) if (rand() < 0.5) t.catBits[off + (c >>> 5)] |= 1 << (c & 31);
      t.threshold.push(off);
    } else {
      t.threshold.push(THRESHOLD_POOL[Math.floor(rand() * THRESHOLD_POOL.length)]);
    }
    const spineLeft = spineDepth !== undefined && rand() < 0.5;
    for (const side of [t.left, t.right]) {
      side.push(queue.length);
      queue.push(depth + 1);
      if (spineDepth !== undefined) {
        const continues = onSpine[head] && (side === t.left) === spineLeft;
        onSpine.push(continues);
        sideLimit.push(onSpine[head] && !continues ? depth + 3 : sideLimit[head]);
      }
    }
  }
  return t;
}

export function randomForest(seed: number, opts: RandomForestOptions = {}): ForestFileV1 {
  const rand = rng(seed);
  const K = opts.classes ?? 2 + Math.floor(rand() * 3);
  const features = randomFeatures(rand);
  const T = opts.trees ?? 1 + Math.floor(rand() * 12);
  const aggregation = opts.aggregation ?? 'soft';
  const trees = Array.from({ length: T }, () => randomTree(rand, features, K, opts.maxDepth ?? 1 + Math.floor(rand() * 8), aggregation === 'hard' ? 'ties' : 'random', opts.spineDepth));
  return sealForest({
    format: FOREST_FORMAT_ID,
    formatVersion: opts.formatVersion ?? FOREST_FORMAT_VERSION,
    classes: Array.from({ length: K }, (_, k) => `class${k}`),
    features,
    aggregation,
    ...(opts.voteTieBreak ? { voteTieBreak: opts.voteTieBreak } : {}),
    trees,
    training: { trainer: 'random-fixture', hyperparameters: {}, seed, datasetManifestSha256: null, rows: 0, createdAt: '2024-01-01T00:00:00.000Z' },
    featureStats: {},
    metrics: {},
  });
}

export function randomRow(rand: () => number, features: FeatureSpec[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const f of features) {
    const u = rand();
    if (u < 0.06) continue; // absent
    if (u < 0.1) row[f.name] = null;
    else if (u < 0.13) row[f.name] = f.kind === 'numeric' ? NaN : 'no-such-category';
    else if (u < 0.16) row[f.name] = f.kind === 'numeric' ? '1.5' : { weird: true };
    else if (f.kind === 'numeric') {
      const v = rand();
      row[f.name] = v < 0.4 ? THRESHOLD_POOL[Math.floor(rand() * THRESHOLD_POOL.length)] : v < 0.45 ? (rand() < 0.5 ? Infinity : -Infinity) : (rand() - 0.5) * 20;
    } else {
      const code = Math.floor(rand() * f.categories.length);
      const cat = f.categories[code];
      // Categories that look numeric ("3", "10", ...) are also sent as numbers.
      row[f.name] = /^\d+$/.test(cat) && rand() < 0.5 ? Number(cat) : cat;
    }
  }
  return row;
}
