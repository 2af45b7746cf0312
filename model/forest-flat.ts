/**
 * The forest in canonical pre-order form: what format v2 serializes
 * (model/forest-codec.ts) and what the scorer packs (model/walker/layout.ts).
 *
 * Every tree is laid out in pre-order (a node, its left subtree, its right subtree),
 * trees one after another, so a node's left child is the next node and the tree's
 * shape is fully given by which nodes are leaves. Split thresholds are interned per
 * feature: a numeric split stores the index of its threshold in the feature's sorted
 * table of distinct thresholds, a categorical split the index of its subset in the
 * feature's table of distinct subsets. Scoring semantics are exactly format v1's
 * (docs/model-format.md); only the numbering of nodes differs.
 */
import type { CategoricalFeatureSpec, FeatureSpec, ForestFileV1, TreeV1 } from './format';
import { ForestFormatError } from './forest-error';
import { checkLimit } from './forest-limits';

/**
 * Class distributions, as v2 stores them (model/forest-codec.ts): every node's
 * probabilities and count, or per leaf its training rows per class, from which every
 * node's are derived (an internal node's counts are its children's summed; its
 * probabilities are counts / Σ counts). nodeDistributions() gives the first form.
 */
export type FlatDistributions =
  | { readonly kind: 'values'; readonly value: Float64Array; readonly count: Float64Array }
  | { readonly kind: 'counts'; readonly leafCounts: Uint32Array };

export interface FlatForest {
  readonly classes: number;
  readonly features: readonly FeatureSpec[];
  /** Nodes per tree; tree t's nodes follow tree t-1's. */
  readonly treeSizes: Uint32Array;
  /** Per node: 0 for a leaf, else the split feature's index + 1. */
  readonly split: Uint8Array | Uint16Array;
  /** Per internal node, in node order: 1 when missing/unknown values go left. */
  readonly defaultLeft: Uint8Array;
  /** Per internal node: index into its feature's `thresholds` (numeric) or `subsets` (categorical). */
  readonly splitIndex: Uint8Array | Uint16Array | Uint32Array;
  /** Per feature: the distinct thresholds of its splits, ascending (empty for categorical features). */
  readonly thresholds: readonly Float64Array[];
  /**
   * Per feature: its distinct split subsets, subsetWords(feature) 32-bit words each
   * (bit c set: category code c goes left), bits at or above the category count clear.
   */
  readonly subsets: readonly Uint32Array[];
  readonly distributions: FlatDistributions;
  /** Per tree: edges on its longest root-to-leaf path. */
  readonly depths: Int32Array;
  /** Number of leaves. */
  readonly leaves: number;
}

export function nodeCount(flat: FlatForest): number {
  return flat.split.length;
}

/** Words of one categorical subset of a feature with `categories` categories (v1's rule). */
export function subsetWords(categories: number): number {
  return Math.ceil(categories / 32);
}

/** Mask of the valid bits of word w of a subset over `categories` categories. */
function wordMask(categories: number, w: number): number {
  const bits = categories - 32 * w;
  return bits >= 32 ? 0xffffffff : bits <= 0 ? 0 : (2 ** bits - 1) >>> 0;
}

/** Limits every forest shape must pass before anything is allocated by its size. */
export function checkForestShape(source: string, classes: number, features: readonly FeatureSpec[], trees: number): void {
  checkLimit(source, 'classes', 'classes', classes);
  checkLimit(source, 'features', 'features', features.length);
  checkLimit(source, 'trees', 'trees', trees);
  let categories = 0;
  features.forEach((f, i) => {
    if (f.kind !== 'categorical') return;
    checkLimit(source, `features[${i}].categories`, 'categoriesPerFeature', f.categories.length);
    categories += f.categories.length;
  });
  checkLimit(source, 'features', 'categories', categories);
}

/**
 * Builds the pre-order form of a forest's v1 trees. The trees must be trees (each
 * node reached once from the root; parseForest checks this with precise messages);
 * a document that is not still fails here, cleanly, as do the limits.
 */
export function flattenForest(doc: Pick<ForestFileV1, 'classes' | 'features' | 'trees'>, source = '<forest>'): FlatForest {
  const K = doc.classes.length;
  const F = doc.features.length;
  const T = doc.trees.length;
  checkForestShape(source, K, doc.features, T);
  let N = 0;
  let maxTree = 0;
  doc.trees.forEach((tree, t) => {
    const n = tree.feature.length;
    checkLimit(source, `trees[${t}]`, 'nodesPerTree', n);
    N += n;
    maxTree = Math.max(maxTree, n);
  });
  checkLimit(source, 'trees', 'nodes', N);
  checkLimit(source, 'trees', 'nodeClassCells', N * K);

  const treeSizes = new Uint32Array(T);
  const split = new Uint16Array(N);
  const value = new Float64Array(N * K);
  const count = new Float64Array(N);
  const depths = new Int32Array(T);
  // Internal nodes number at most (N - T) / 2; sized exactly after the walk.
  const internalMax = Math.max(0, (N - T) >>> 1);
  const defaultLeft = new Uint8Array(internalMax);
  const splitIndex = new Uint32Array(internalMax);
  // Raw split parameters per internal node, interned once every tree is walked.
  const rawThreshold = new Float64Array(internalMax);
  const rawTree = new Uint32Array(internalMax);

  // A tree's walk keeps at most depth + 1 entries; a malformed one at most 2 per node visited.
  const stack = new Int32Array(2 * maxTree + 2);
  const depthStack = new Int32Array(2 * maxTree + 2);
  const seen = new Uint8Array(maxTree);
  let g = 0;
  let internal = 0;
  let pathSteps = 0;
  for (let t = 0; t < T; t++) {
    const tree = doc.trees[t];
    const n = tree.feature.length;
    const start = g;
    seen.fill(0, 0, n);
    let top = 0;
    stack[top] = 0;
    depthStack[top++] = 0;
    let depth = 0;
    while (top > 0) {
      const i = stack[--top];
      const d = depthStack[top];
      if (i < 0 || i >= n || seen[i] === 1) throw new ForestFormatError(source, `trees[${t}]`, `is not a tree (node ${i} is out of range or reached twice); validate the document with parseForest`);
      seen[i] = 1;
      if (d > depth) depth = d;
      for (let k = 0; k < K; k++) value[g * K + k] = tree.value[i * K + k];
      count[g] = tree.count[i];
      const f = tree.feature[i];
      if (f < 0) {
        split[g++] = 0;
        continue;
      }
      if (f >= F || internal >= internalMax) throw new ForestFormatError(source, `trees[${t}].feature[${i}]`, `is ${f}: not a valid split (there are ${F} features)`);
      split[g++] = f + 1;
      defaultLeft[internal] = tree.defaultLeft[i] ? 1 : 0;
      rawThreshold[internal] = tree.threshold[i];
      rawTree[internal] = t;
      internal++;
      stack[top] = tree.right[i];
      depthStack[top++] = d + 1;
      stack[top] = tree.left[i];
      depthStack[top++] = d + 1;
    }
    if (g - start !== n) throw new ForestFormatError(source, `trees[${t}]`, `is not a tree (${n - (g - start)} node(s) unreachable from the root); validate the document with parseForest`);
    checkLimit(source, `trees[${t}]`, 'depth', depth);
    treeSizes[t] = n;
    depths[t] = depth;
    pathSteps += depth;
  }
  checkLimit(source, 'trees', 'pathSteps', pathSteps);

  const features = doc.features;
  const { thresholds, subsets } = internSplits(doc, split, rawThreshold, rawTree, splitIndex, internal, source);
  return {
    classes: K,
    features,
    treeSizes,
    split,
    defaultLeft: defaultLeft.subarray(0, internal),
    splitIndex: splitIndex.subarray(0, internal),
    thresholds,
    subsets,
    distributions: { kind: 'values', value, count },
    depths,
    leaves: N - internal,
  };
}

/**
 * Visits a flat forest's nodes in post-order (children before their parent), with
 * each node's class counts: from leafCounts at leaves, summed at internal nodes.
 * `visit(g, counts, o)` reads counts[o .. o+K). One forward pass, with a stack of
 * the open internal nodes' sums (depth + 1 frames).
 */
export function forEachNodeCounts(flat: FlatForest, leafCounts: Uint32Array, visit: (g: number, counts: Float64Array, o: number) => void): void {
  const K = flat.classes;
  const split = flat.split;
  let maxDepth = 0;
  for (let t = 0; t < flat.depths.length; t++) maxDepth = Math.max(maxDepth, flat.depths[t]);
  const frameNode = new Int32Array(maxDepth + 2);
  const frameDone = new Uint8Array(maxDepth + 2);
  const sums = new Float64Array((maxDepth + 2) * K);
  const leaf = new Float64Array(K);
  let top = -1;
  let l = 0;
  for (let g = 0; g < split.length; g++) {
    if (split[g] !== 0) {
      top++;
      frameNode[top] = g;
      frameDone[top] = 0;
      sums.fill(0, top * K, top * K + K);
      continue;
    }
    for (let k = 0; k < K; k++) leaf[k] = leafCounts[l * K + k];
    l++;
    visit(g, leaf, 0);
    // A finished subtree adds its counts to its parent; a parent with both finished is finished.
    let from = leaf;
    let fromAt = 0;
    while (top >= 0) {
      for (let k = 0; k < K; k++) sums[top * K + k] += from[fromAt + k];
      if (++frameDone[top] < 2) break;
      visit(frameNode[top], sums, top * K);
      from = sums;
      fromAt = top * K;
      top--;
    }
  }
}

/** Every node's probabilities and count (K + 1 doubles per node), whichever form the forest holds. */
export function nodeDistributions(flat: FlatForest): { value: Float64Array; count: Float64Array } {
  const d = flat.distributions;
  if (d.kind === 'values') return d;
  const K = flat.classes;
  const value = new Float64Array(flat.split.length * K);
  const count = new Float64Array(flat.split.length);
  forEachNodeCounts(flat, d.leafCounts, (g, counts, o) => {
    let total = 0;
    for (let k = 0; k < K; k++) total += counts[o + k];
    count[g] = total;
    for (let k = 0; k < K; k++) value[g * K + k] = counts[o + k] / total;
  });
  return { value, count };
}

/**
 * Interns the split parameters: numeric thresholds into sorted distinct tables,
 * categorical offsets into distinct subsets (each distinct (tree, offset) read once,
 * so splits sharing catBits words cost nothing extra), and fills splitIndex.
 */
function internSplits(
  doc: Pick<ForestFileV1, 'features' | 'trees'>,
  split: Uint16Array,
  rawThreshold: Float64Array,
  rawTree: Uint32Array,
  splitIndex: Uint32Array,
  internal: number,
  source: string,
): { thresholds: Float64Array[]; subsets: Uint32Array[] } {
  const F = doc.features.length;
  const numericCount = new Int32Array(F);
  let j = 0;
  const featureOf = new Uint16Array(internal);
  for (let g = 0; g < split.length; g++) {
    if (split[g] === 0) continue;
    const f = split[g] - 1;
    featureOf[j++] = f;
    if (doc.features[f].kind === 'numeric') numericCount[f]++;
  }

  const thresholds: Float64Array[] = doc.features.map((f, i) => (f.kind === 'numeric' ? new Float64Array(numericCount[i]) : new Float64Array(0)));
  const fill = new Int32Array(F);
  for (let i = 0; i < internal; i++) {
    const f = featureOf[i];
    // + 0 turns -0 into 0: the two compare alike, and JSON prints both as 0.
    if (doc.features[f].kind === 'numeric') thresholds[f][fill[f]++] = rawThreshold[i] + 0;
  }
  for (let f = 0; f < F; f++) {
    if (doc.features[f].kind !== 'numeric') continue;
    const sorted = thresholds[f].sort();
    let u = 0;
    for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[u - 1]) sorted[u++] = sorted[i];
    thresholds[f] = sorted.slice(0, u);
  }

  const subsetLists: number[][] = doc.features.map(() => []);
  const subsetIds: Map<string, number>[] = doc.features.map(() => new Map());
  const byOffset = new Map<string, number>();
  let materialized = 0;
  for (let i = 0; i < internal; i++) {
    const f = featureOf[i];
    const spec = doc.features[f];
    if (spec.kind === 'numeric') {
      splitIndex[i] = lowerBound(thresholds[f], rawThreshold[i] + 0);
      continue;
    }
    const t = rawTree[i];
    const offset = rawThreshold[i];
    const place = `${f}:${t}:${offset}`;
    const known = byOffset.get(place);
    if (known !== undefined) {
      splitIndex[i] = known;
      continue;
    }
    const C = (spec as CategoricalFeatureSpec).categories.length;
    const W = subsetWords(C);
    const catBits = doc.trees[t].catBits;
    if (!Number.isInteger(offset) || offset < 0 || offset + W > catBits.length) {
      throw new ForestFormatError(source, `trees[${t}]`, `has a categorical split whose catBits offset ${offset} leaves no room for ${W} word(s) (catBits length ${catBits.length})`);
    }
    materialized += W;
    checkLimit(source, `trees[${t}].catBits`, 'subsetWords', materialized);
    const words: number[] = [];
    for (let w = 0; w < W; w++) words.push((catBits[offset + w] & wordMask(C, w)) >>> 0);
    const key = words.join(',');
    let id = subsetIds[f].get(key);
    if (id === undefined) {
      id = subsetIds[f].size;
      subsetIds[f].set(key, id);
      subsetLists[f].push(...words);
    }
    byOffset.set(place, id);
    splitIndex[i] = id;
  }
  return { thresholds, subsets: subsetLists.map((l) => Uint32Array.from(l)) };
}

/** Index of the first entry of `sorted` that is >= x (sorted.length if none). */
export function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The v1 trees of a flat forest, nodes numbered in pre-order, each categorical split
 * pointing at its own copy of its subset in its tree's catBits (one copy per distinct
 * subset per tree).
 */
export function treesOfFlat(flat: FlatForest): TreeV1[] {
  const K = flat.classes;
  const { value: values, count: counts } = nodeDistributions(flat);
  const trees: TreeV1[] = [];
  let g = 0;
  let internal = 0;
  for (let t = 0; t < flat.treeSizes.length; t++) {
    const n = flat.treeSizes[t];
    const feature = new Array<number>(n);
    const threshold = new Array<number>(n);
    const left = new Array<number>(n);
    const right = new Array<number>(n);
    const defaultLeft = new Array<number>(n);
    const value = Array.from(values.subarray(g * K, (g + n) * K));
    const count = Array.from(counts.subarray(g, g + n));
    const catBits: number[] = [];
    const catOffsets = new Map<string, number>();
    // Right children are found by a stack of nodes whose left subtree is being laid out.
    const open: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = flat.split[g + i];
      if (i > 0) {
        // Node i is the left child of node i-1 when i-1 is internal, else the right child of the latest open node.
        if (flat.split[g + i - 1] !== 0) left[i - 1] = i;
        else right[open.pop()!] = i;
      }
      if (s === 0) {
        feature[i] = -1;
        threshold[i] = 0;
        left[i] = -1;
        right[i] = -1;
        defaultLeft[i] = 0;
        continue;
      }
      const f = s - 1;
      feature[i] = f;
      defaultLeft[i] = flat.defaultLeft[internal];
      const index = flat.splitIndex[internal++];
      const spec = flat.features[f];
      if (spec.kind === 'numeric') {
        threshold[i] = flat.thresholds[f][index];
      } else {
        const key = `${f}:${index}`;
        let offset = catOffsets.get(key);
        if (offset === undefined) {
          offset = catBits.length;
          const W = subsetWords(spec.categories.length);
          for (let w = 0; w < W; w++) catBits.push(flat.subsets[f][index * W + w]);
          catOffsets.set(key, offset);
        }
        threshold[i] = offset;
      }
      open.push(i);
    }
    trees.push({ feature, threshold, left, right, defaultLeft, value, count, catBits });
    g += n;
  }
  return trees;
}
