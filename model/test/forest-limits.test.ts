/**
 * Every limit in FOREST_LIMITS, crossed by one: the loader refuses the file with a
 * ForestFormatError naming that limit (issue 14, "Hostile artifacts"), in format v1 and
 * in format v2 where a file past the limit is cheap to build. The files are what someone
 * with registry write access could register: small on disk, huge or endless to load.
 * A limit added to FOREST_LIMITS without a case here fails the first test.
 */
import { ForestFormatError } from '../forest-error';
import { forestDigest, forestJson, sealForest, upgradeForest } from '../forest-file';
import { loadForest, loadForestInWorker } from '../forest-loader';
import { FOREST_LIMITS, type ForestLimits } from '../forest-limits';
import type { FeatureSpec, ForestFileV1, TreeV1 } from '../format';
import { randomForest } from './random-forest-fixture';

type Mutable = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const base = randomForest(5, { trees: 1, maxDepth: 1, classes: 3 });
const numeric = (n: number): FeatureSpec[] => Array.from({ length: n }, (_, i) => ({ name: `n${i}`, kind: 'numeric' as const }));
const categorical = (name: string, n: number): FeatureSpec => ({ name, kind: 'categorical', categories: Array.from({ length: n }, (_, c) => `v${c}`) });

function doc(classes: number, features: FeatureSpec[], trees: TreeV1[]): ForestFileV1 {
  return sealForest({ ...base, classes: Array.from({ length: classes }, (_, k) => `c${k}`), features, trees, featureStats: {} });
}

const oneHot = (K: number, hot = 0) => Array.from({ length: K }, (_, k) => (k === hot ? 1 : 0));

/** A tree of `internal` splits in heap order (children of i at 2i+1, 2i+2): depth ⌊log2(2·internal+1)⌋. Its rightmost leaf votes class 1, the others class 0. */
function heapTree(internal: number, K: number, split: (i: number) => { feature: number; threshold: number }, catBits: number[] = []): TreeV1 {
  const n = 2 * internal + 1;
  const t: TreeV1 = { feature: [], threshold: [], left: [], right: [], defaultLeft: [], value: [], count: [], catBits };
  for (let i = 0; i < n; i++) {
    const inner = i < internal;
    const s = inner ? split(i) : { feature: -1, threshold: 0 };
    t.feature.push(s.feature);
    t.threshold.push(s.threshold);
    t.left.push(inner ? 2 * i + 1 : -1);
    t.right.push(inner ? 2 * i + 2 : -1);
    t.defaultLeft.push(0);
    // On the rightmost path, i + 2 is a power of two.
    t.value.push(...oneHot(K, !inner && ((i + 2) & (i + 1)) === 0 ? 1 : 0));
    t.count.push(1);
  }
  return t;
}

/** A spine of `depth` splits on feature 0, each with a leaf on its left; the leaf at its end votes class 1, the others class 0. */
function chainTree(depth: number, K: number): TreeV1 {
  const t: TreeV1 = { feature: [], threshold: [], left: [], right: [], defaultLeft: [], value: [], count: [], catBits: [] };
  for (let i = 0; i <= 2 * depth; i++) {
    const inner = i % 2 === 0 && i < 2 * depth;
    t.feature.push(inner ? 0 : -1);
    t.threshold.push(inner ? i : 0);
    t.left.push(inner ? i + 1 : -1);
    t.right.push(inner ? i + 2 : -1);
    t.defaultLeft.push(0);
    t.value.push(...oneHot(K, i === 2 * depth ? 1 : 0));
    t.count.push(1);
  }
  return t;
}

const leaf = (K: number) => heapTree(0, K, () => ({ feature: -1, threshold: 0 }));
/** A file, and its digest as the registry would have verified it (the API's loads then skip the re-hash). */
type Case = [form: string, bytes: Buffer, sha256?: string];
const v1 = (d: ForestFileV1): Case => ['v1', Buffer.from(forestJson(d)), d.sha256];
const v2 = (d: ForestFileV1) => Buffer.from(forestJson(upgradeForest(d)));

/**
 * A v2 file of a small valid forest, rewritten (encoded arrays as they are unless replaced)
 * and sealed anew: pricesense's own writer refuses a forest past a limit, so a hostile v2
 * file is written by hand, with a digest that matches (hashing encoded trees decodes nothing).
 */
function v2Mutated(d: ForestFileV1, mutate: (trees: Mutable, doc: Mutable) => void): Case {
  const parsed = JSON.parse(forestJson(upgradeForest(d))) as Mutable;
  mutate(parsed.trees, parsed);
  parsed.sha256 = forestDigest(parsed as ForestFileV1);
  return ['v2', Buffer.from(JSON.stringify(parsed)), parsed.sha256 as string];
}
const small = (K = 2) => doc(K, numeric(1), [leaf(K)]);
const uint32s = (values: number[]) => {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
  return { dtype: 'uint32', length: values.length, base64: b.toString('base64') };
};

/** A categorical feature of 65,535 categories: 2,048 words a subset. */
const WIDE = categorical('wide', FOREST_LIMITS.categoriesPerFeature);
const WORDS = Math.ceil(FOREST_LIMITS.categoriesPerFeature / 32);
/** Splits needed to materialize more than subsetWords words of distinct subsets. */
const SUBSET_SPLITS = Math.floor(FOREST_LIMITS.subsetWords / WORDS) + 1;

/** Files one past each limit: v1 and, where cheap, v2 (a v1 file of ~10⁶ nodes is tens of MB: its v2 form claims them instead). */
const past: Record<keyof ForestLimits, () => Case[]> = {
  // Zero-filled and never touched: refused on its length before a byte is read.
  documentBytes: () => [['bytes', Buffer.alloc(FOREST_LIMITS.documentBytes + 1)]],
  classes: () => {
    const classes = Array.from({ length: FOREST_LIMITS.classes + 1 }, (_, k) => `c${k}`);
    return [v1(doc(classes.length, numeric(1), [leaf(classes.length)])), v2Mutated(small(), (_t, d) => (d.classes = classes))];
  },
  features: () => {
    const features = numeric(FOREST_LIMITS.features + 1);
    return [v1(doc(2, features, [leaf(2)])), v2Mutated(small(), (_t, d) => (d.features = features))];
  },
  categoriesPerFeature: () => {
    const features = [categorical('n0', FOREST_LIMITS.categoriesPerFeature + 1)];
    return [v1(doc(2, features, [leaf(2)])), v2Mutated(small(), (_t, d) => (d.features = features))];
  },
  categories: () => {
    // Each feature within its own limit, their sum one past the total.
    const per = FOREST_LIMITS.categoriesPerFeature;
    const n = Math.floor(FOREST_LIMITS.categories / per);
    const features = [...Array.from({ length: n }, (_, i) => categorical(`c${i}`, per)), categorical('rest', FOREST_LIMITS.categories - n * per + 1)];
    return [v1(doc(2, features, [leaf(2)])), v2Mutated(small(), (_t, d) => (d.features = features))];
  },
  trees: () => {
    const count = FOREST_LIMITS.trees + 1;
    return [v1(doc(2, numeric(1), Array.from({ length: count }, () => leaf(2)))), v2Mutated(small(), (t) => ((t.count = count), (t.nodes = count), (t.sizes = uint32s(new Array<number>(count).fill(1)))))];
  },
  nodesPerTree: () => {
    const n = FOREST_LIMITS.nodesPerTree + 1;
    return [v2Mutated(small(), (t) => ((t.nodes = n), (t.sizes = uint32s([n]))))];
  },
  nodes: () => [v2Mutated(small(), (t) => (t.nodes = FOREST_LIMITS.nodes + 1))],
  nodeClassCells: () => {
    // Within the node limit; with 3 classes past the cells' (distributions are allocated by it).
    const nodes = Math.floor(FOREST_LIMITS.nodeClassCells / 3) + 1;
    return [v2Mutated(small(3), (t) => (t.nodes = nodes))];
  },
  depth: () => {
    const d = doc(2, numeric(1), [chainTree(FOREST_LIMITS.depth + 1, 2)]);
    return [v1(d), v2Mutated(doc(2, numeric(1), [chainTree(FOREST_LIMITS.depth, 2)]), (t) => {
      // The same spine one split longer: [split, leaf] × (depth + 1), then the last leaf.
      const n = 2 * (FOREST_LIMITS.depth + 1) + 1;
      const split = Buffer.alloc(n);
      for (let i = 0; i < n - 1; i += 2) split[i] = 1;
      t.nodes = n;
      t.sizes = uint32s([n]);
      t.split = { dtype: 'uint8', length: n, base64: split.toString('base64') };
    })];
  },
  pathSteps: () => {
    // Trees at the depth limit, one more of them than the steps allow (a v1 file of them is ~70 MB).
    const count = Math.floor(FOREST_LIMITS.pathSteps / FOREST_LIMITS.depth) + 1;
    return [v2Mutated(doc(2, numeric(1), [chainTree(FOREST_LIMITS.depth, 2)]), (t) => {
      const one = Buffer.from(t.split.base64 as string, 'base64');
      t.count = count;
      t.nodes = count * one.length;
      t.sizes = uint32s(Array.from({ length: count }, () => one.length));
      t.split = { dtype: 'uint8', length: t.nodes, base64: Buffer.concat(Array.from({ length: count }, () => one)).toString('base64') };
    })];
  },
  headerValues: () => {
    // A drift baseline as large as the header may be, on top of the rest of the header (a property or an item is a value).
    const bins = FOREST_LIMITS.headerValues;
    const frequencies = Object.fromEntries(Array.from({ length: bins }, (_, i) => [`v${i}`, 0]));
    const featureStats = { n0: { kind: 'categorical', count: 1, missing: 0, frequencies } };
    return [v1(sealForest({ ...small(), featureStats } as ForestFileV1)), v2Mutated(small(), (_t, d) => (d.featureStats = featureStats))];
  },
  headerStringChars: () => {
    // A class name one character too long (class names go into every answer and metric label).
    const classes = ['c0', 'x'.repeat(FOREST_LIMITS.headerStringChars + 1)];
    return [v1(sealForest({ ...small(), classes })), v2Mutated(small(), (_t, d) => (d.classes = classes))];
  },
  headerChars: () => {
    // Notes of names each within their own limit, one character past the total.
    const each = FOREST_LIMITS.headerStringChars;
    const notes = Array.from({ length: Math.floor(FOREST_LIMITS.headerChars / each) + 1 }, () => 'n'.repeat(each));
    return [v1(sealForest({ ...small(), metrics: { notes } }))];
  },
  headerDepth: () => {
    // One level past the limit in metrics (an open object), and 100,000 levels: hashing or cloning that
    // recursively overflows the stack, so its digest is the registry's (the document's own, unchecked).
    const nested = (levels: number) => `${'{"a":'.repeat(levels)}0${'}'.repeat(levels)}`;
    const deep = (levels: number): Case => {
      const d = small();
      const text = forestJson(d).replace('"metrics":{}', `"metrics":${nested(levels)}`);
      if (text === forestJson(d)) throw new Error('the fixture has no empty metrics to replace');
      return ['v1', Buffer.from(text), d.sha256];
    };
    // metrics is at depth 1: its levels reach one past the limit.
    return [deep(FOREST_LIMITS.headerDepth + 1), deep(100_000)];
  },
  subsetWords: () => {
    // v1: one tree whose splits each read their subset at another offset of one short catBits
    // array (overlapping windows): a 675 kB file (most of it the 65,535 category names), 2,048 words materialized per split.
    const catBits = new Array<number>(SUBSET_SPLITS + WORDS).fill(0);
    const d = doc(2, [WIDE], [heapTree(SUBSET_SPLITS, 2, (i) => ({ feature: 0, threshold: i }), catBits)]);
    // v2: the table of distinct subsets itself one subset past the limit.
    const few = doc(2, [WIDE], [heapTree(3, 2, () => ({ feature: 0, threshold: 0 }), new Array<number>(WORDS).fill(0))]);
    return [v1(d), v2Mutated(few, (t) => (t.subsets = [new Array<number>(SUBSET_SPLITS * WORDS).fill(0)]))];
  },
};

/** Each limit's files, built once for both the in-thread and the worker-thread test. */
const built = new Map<keyof ForestLimits, Case[]>();
const casesPast = (limit: keyof ForestLimits): Case[] => built.get(limit) ?? (built.set(limit, past[limit]()), built.get(limit)!);

function refusal(bytes: Buffer, registryVerifiedSha256?: string): ForestFormatError {
  try {
    loadForest(bytes, 'models/limits.json', { registryVerifiedSha256 });
  } catch (e) {
    expect(e).toBeInstanceOf(ForestFormatError);
    return e as ForestFormatError;
  }
  throw new Error('expected the load to be refused');
}

describe('forest limits (model/forest-limits.ts)', () => {
  it('has a file past every limit below', () => {
    expect(Object.keys(past).sort()).toEqual(Object.keys(FOREST_LIMITS).sort());
  });

  it.each(Object.keys(FOREST_LIMITS) as (keyof ForestLimits)[])('refuses a file one past FOREST_LIMITS.%s, naming the limit', (limit) => {
    for (const [form, bytes, sha] of casesPast(limit)) {
      // The file as it is (its digest checked) where its digest can be computed; else as the registry hands it over.
      const err = refusal(bytes, limit === 'headerDepth' ? sha : undefined);
      expect([form, err.message]).toEqual([form, expect.stringContaining(`exceeds the limit on`)]);
      expect([form, err.message]).toEqual([form, expect.stringContaining(`FOREST_LIMITS.${limit},`)]);
      expect(err.message).toMatch(/^models\/limits\.json: invalid forest file: /);
    }
  }, 60_000);

  // The API's path: a worker thread, a registry-verified digest (no re-hash), the reply cloned back to this thread.
  // documentBytes is not reachable there: an artifact inflates to 256 MiB at most, and the load budget refuses first.
  it.each((Object.keys(FOREST_LIMITS) as (keyof ForestLimits)[]).filter((l) => l !== 'documentBytes'))('refuses the same files in the loader\'s worker thread, registry-verified: FOREST_LIMITS.%s', async (limit) => {
    for (const [form, bytes, sha] of casesPast(limit)) {
      const err = await loadForestInWorker({ bytes }, 'models/limits.json', { registryVerifiedSha256: sha }).then(() => undefined, (e: unknown) => e);
      expect([form, err]).toEqual([form, expect.any(ForestFormatError)]);
      expect([form, (err as Error).message]).toEqual([form, expect.stringContaining(`FOREST_LIMITS.${limit},`)]);
    }
  }, 60_000);

  it('loads what is at the limits that bound a single tree (depth, categories of a feature) and scores it', () => {
    const deep = doc(2, numeric(1), [chainTree(FOREST_LIMITS.depth, 2)]);
    for (const bytes of [v1(deep)[1], v2(deep)]) {
      // A row past every threshold walks the whole spine to its last leaf.
      const { forest } = loadForest(bytes, 'models/deep.json');
      expect(Array.from(forest.predict({ n0: 1e9 }).probabilities)).toEqual([0, 1]);
      expect(Array.from(forest.predict({ n0: -1 }).probabilities)).toEqual([1, 0]);
    }
    const wide = doc(2, [WIDE], [leaf(2)]);
    for (const bytes of [v1(wide)[1], v2(wide)]) expect(loadForest(bytes, 'models/wide.json').summary.features[0]).toMatchObject({ name: 'wide' });
  });

  it('materializes a subset once per (tree, offset): many splits sharing one catBits offset cost one subset, not a copy each', () => {
    // The v1 attack of the issue: every split of a tree at one offset of a 2,048-word subset.
    // Copied per split, these 4,097 splits would be 8.4M words (32 MiB) from a 750 kB file;
    // read once per offset, they are 2,048 and load within every limit.
    const shared = doc(2, [WIDE], [heapTree(2 * SUBSET_SPLITS - 1, 2, () => ({ feature: 0, threshold: 0 }), new Array<number>(WORDS).fill(0))]);
    const { forest } = loadForest(v1(shared)[1], 'models/shared.json');
    // Every category goes right (an empty subset): the row ends at the rightmost leaf.
    expect(Array.from(forest.predict({ wide: 'v7' }).probabilities)).toEqual([0, 1]);
    expect(Array.from(forest.predict({ wide: `v${FOREST_LIMITS.categoriesPerFeature - 1}` }).probabilities)).toEqual([0, 1]);
  });
});
