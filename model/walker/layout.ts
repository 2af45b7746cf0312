/**
 * Layout packing: a forest's pre-order form (model/forest-flat.ts) → the typed arrays
 * the kernels walk. Everything here is plain typed arrays and numbers, so a packed
 * forest built in a worker thread moves to the main thread by transferring buffers.
 *
 * Node record, 8 bytes: two int32 words per node, trees one after another. Within a
 * tree the two children of a node are adjacent (left, then right), and the nodes are
 * laid out in small blocks (blockTrees below): a path down a tree touches few cache
 * lines and pages.
 *   word 0 (t)  internal numeric: the threshold's index j in the feature's sorted table
 *               (a row goes right when its bin, the count of thresholds below its
 *               value, exceeds j); internal narrow categorical (≤ 31 categories):
 *               (~mask + MISSING_BIN) | 0, where mask has bit c set for category codes
 *               going left and bit 31 set when missing goes left; internal wide
 *               categorical: offset of its bitset in `wideBits` (bit c: code c goes
 *               left; bit C, C = category count: missing goes left); leaf: ~payload
 *               (soft: row of its distribution in `values`; hard: its vote).
 *   word 1      bits 0-8 feature, 9 WIDE, 10 DEFAULT_LEFT (numeric splits), 11-31 the
 *               offset of the left child, signed: the children are node + offset and
 *               node + offset + 1. A leaf's is -1 with the feature slot past the last
 *               feature, whose encoding is constant, so that a step from a leaf (always
 *               "right") lands on the leaf itself (kernels.ts): walks need no test for
 *               leaves.
 *
 * Class distributions live outside the node records: `values` holds each distinct
 * leaf distribution once (so the rows scoring reads are few and packed together),
 * then one row per internal node (only explanations read those); `valueIndex` maps
 * every node to its row.
 */
import type { FlatForest } from '../forest-flat';
import { subsetWords } from '../forest-flat';
import { CHILD_SHIFT, DEFAULT_LEFT_SHIFT, MISSING_BIN, WIDE } from './kernels';

/** Feature kinds in PackedForest.featureKind. */
export const NUMERIC = 0;
/** Categorical with at most 31 categories: its code is a shift into the node's mask. */
export const NARROW = 1;
/** Categorical with more: the node's bitset is in wideBits. */
export const WIDE_CATEGORICAL = 2;

/** The most categories a feature may have to be tested in the node record itself (code 31 is "missing"). */
export const NARROW_CATEGORIES = 31;

export interface PackedForest {
  readonly classes: number;
  readonly featureCount: number;
  readonly soft: boolean;
  readonly nodes: Int32Array;
  /** Per tree: global index of its root. */
  readonly roots: Int32Array;
  /** Per tree: the steps from its root to its deepest leaf. */
  readonly depths: Int32Array;
  /** Class distributions, K per row: the leaves' distinct ones, then one per internal node. */
  readonly values: Float64Array;
  /** Per node: its distribution's row in values. */
  readonly valueIndex: Int32Array;
  /** Every numeric feature's sorted thresholds, concatenated. */
  readonly thresholds: Float64Array;
  /** Per feature f: its thresholds are thresholds[thresholdStart[f] .. thresholdStart[f + 1]). */
  readonly thresholdStart: Int32Array;
  readonly wideBits: Int32Array;
  /** Per feature: NUMERIC, NARROW or WIDE_CATEGORICAL. */
  readonly featureKind: Uint8Array;
}

/** The transferable buffers of a packed forest (for postMessage). */
export function packedBuffers(p: PackedForest): ArrayBuffer[] {
  const arrays = [p.nodes, p.roots, p.depths, p.values, p.valueIndex, p.thresholds, p.thresholdStart, p.wideBits, p.featureKind];
  return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))];
}

/** Total bytes of a packed forest's arrays. */
export function packedBytes(p: PackedForest): number {
  return packedBuffers(p).reduce((a, b) => a + b.byteLength, 0);
}

/**
 * Told, before each stage of packing allocates, the most bytes of typed arrays packing will
 * hold at once during that stage; throws to refuse the forest (the loader checks its memory
 * budget, model/forest-loader.ts). Packing's arrays are ArrayBuffers, outside a worker's
 * heap limit, so this is their bound. Stage 1 (leaves): the pre-order records and value rows
 * (12 bytes a node) and the distinct-distribution table at its largest (every leaf distinct).
 * Stage 2 (the rest), once the table's real size and the distinct distributions are known:
 * the pre-order arrays, the class distributions as they will be, the wide bitsets at their
 * largest, the table (garbage by then, maybe not collected), and blocking's order,
 * left-child positions, records and value rows (20 bytes a node) and its stack (8 bytes a
 * node of the largest tree). The thresholds' table is in both; what is left (roots, depths,
 * feature kinds) is a few bytes a tree or feature.
 */
export type PackBudget = (bytes: number) => void;

/*
 * Packing runs once per load, usually in a fresh worker thread whose code is not yet
 * optimized: each pass over the nodes is its own small loop in its own small function,
 * which V8 optimizes (on-stack) within a few thousand iterations, where one large
 * function would run most of a million nodes in the interpreter.
 */

export function packForest(flat: FlatForest, aggregation: 'soft' | 'hard', budget?: PackBudget): PackedForest {
  const K = flat.classes;
  const F = flat.features.length;
  const T = flat.treeSizes.length;
  const N = flat.split.length;
  const featureKind = new Uint8Array(F);
  const thresholdStart = new Int32Array(F + 1);
  flat.features.forEach((spec, f) => {
    featureKind[f] = spec.kind === 'numeric' ? NUMERIC : spec.categories.length <= NARROW_CATEGORIES ? NARROW : WIDE_CATEGORICAL;
    thresholdStart[f + 1] = thresholdStart[f] + flat.thresholds[f].length;
  });
  const thresholdBytes = 8 * thresholdStart[F];
  budget?.(thresholdBytes + 12 * N + DistributionTable.maxBytes(flat.leaves));
  const thresholds = new Float64Array(thresholdStart[F]);
  flat.thresholds.forEach((t, f) => thresholds.set(t, thresholdStart[f]));

  const nodes = new Int32Array(2 * N);
  const valueIndex = new Int32Array(N);
  const wideMax = WideBitsBuilder.maxBytes(flat, featureKind);
  let largest = 0;
  for (let t = 0; t < T; t++) largest = Math.max(largest, flat.treeSizes[t]);
  // Blocking's arrays: 20 bytes a node, and its stack, 8 a node of the largest tree (blockOrder).
  const blocking = 20 * N + 8 * (largest + 1);
  const { values, leafRows } = packLeaves(flat, aggregation === 'soft', nodes, valueIndex, (tableBytes, valuesBytes) =>
    // The table is garbage once the distributions are copied out, but may not be collected yet.
    budget?.(thresholdBytes + 12 * N + valuesBytes + wideMax + tableBytes + blocking),
  );
  const d = flat.distributions;
  const wide = new WideBitsBuilder(flat, featureKind);
  packSplits(flat, featureKind, wide, leafRows, nodes, valueIndex);
  let maxDepth = 0;
  for (let t = 0; t < T; t++) maxDepth = Math.max(maxDepth, flat.depths[t]);
  if (d.kind === 'counts') packLeftSizesAndCounts(flat.split, d.leafCounts, K, maxDepth, nodes, values, valueIndex);
  else {
    packLeftSizes(flat.split, maxDepth, nodes);
    copyInternalValues(flat.split, d.value, K, values, valueIndex);
  }

  const roots = new Int32Array(T);
  for (let t = 1; t < T; t++) roots[t] = roots[t - 1] + flat.treeSizes[t - 1];
  const blocked = blockTrees(nodes, valueIndex, roots, flat.treeSizes);
  return {
    classes: K,
    featureCount: F,
    soft: aggregation === 'soft',
    nodes: blocked.nodes,
    roots: blocked.roots,
    depths: Int32Array.from(flat.depths),
    values,
    valueIndex: blocked.valueIndex,
    thresholds,
    thresholdStart,
    wideBits: wide.build(),
    featureKind,
  };
}

/**
 * The leaves' records and their distributions, each distinct one once, first in `values`:
 * scoring reads only these, and a trained forest's leaves share few (24k distinct among
 * 456k leaves in the 100k-row production forest), so they stay in cache. Then one row per
 * internal node, in node order (only explanations read them; packSplits assigns them).
 * The table lives only in here, so it is garbage before blocking allocates; `check` is
 * told its bytes and the distributions' before these are allocated.
 */
function packLeaves(flat: FlatForest, soft: boolean, nodes: Int32Array, valueIndex: Int32Array, check: (tableBytes: number, valuesBytes: number) => void): { values: Float64Array; leafRows: number } {
  const K = flat.classes;
  const F = flat.features.length;
  const d = flat.distributions;
  // A row's distribution is read back from the source: a leaf's counts normalized, or node g's values.
  let table: DistributionTable;
  if (d.kind === 'counts') {
    table = new DistributionTable(K, flat.leaves, (leaf, out) => normalize(d.leafCounts, leaf * K, K, out, 0));
    packLeavesFromCounts(flat.split, d.leafCounts, K, soft, F, table, nodes, valueIndex);
  } else {
    table = new DistributionTable(K, flat.leaves, (g, out) => {
      for (let k = 0; k < K; k++) out[k] = d.value[g * K + k];
    });
    packLeavesFromValues(flat.split, d.value, K, soft, F, table, nodes, valueIndex);
  }
  const leafRows = table.size;
  const rows = leafRows + flat.split.length - flat.leaves;
  check(table.bytes, 8 * rows * K);
  const values = new Float64Array(rows * K);
  table.copyTo(values);
  return { values, leafRows };
}

/** A leaf's node record: ~payload, and word 1 pointing at the constant slot after the F features. */
function putLeaf(nodes: Int32Array, g: number, payload: number, F: number): void {
  nodes[2 * g] = ~payload;
  nodes[2 * g + 1] = (-1 << CHILD_SHIFT) | F;
}

function packLeavesFromCounts(split: ArrayLike<number>, leafCounts: Uint32Array, K: number, soft: boolean, F: number, table: DistributionTable, nodes: Int32Array, valueIndex: Int32Array): void {
  const dist = new Float64Array(K);
  const bits = new Int32Array(dist.buffer);
  let leaf = 0;
  for (let g = 0; g < split.length; g++) {
    if (split[g] !== 0) continue;
    normalize(leafCounts, leaf * K, K, dist, 0);
    const row = table.intern(bits, 0, leaf);
    leaf++;
    valueIndex[g] = row;
    putLeaf(nodes, g, soft ? row : argmax(dist, 0, K), F);
  }
}

function packLeavesFromValues(split: ArrayLike<number>, value: Float64Array, K: number, soft: boolean, F: number, table: DistributionTable, nodes: Int32Array, valueIndex: Int32Array): void {
  const bits = new Int32Array(value.buffer, value.byteOffset, value.length * 2);
  for (let g = 0; g < split.length; g++) {
    if (split[g] !== 0) continue;
    const row = table.intern(bits, 2 * g * K, g);
    valueIndex[g] = row;
    putLeaf(nodes, g, soft ? row : argmax(value, g * K, K), F);
  }
}

/** Internal nodes' words (but the left subtree size) and their distribution rows, in node order after the leaves' rows. */
function packSplits(flat: FlatForest, featureKind: Uint8Array, wide: WideBitsBuilder, leafRows: number, nodes: Int32Array, valueIndex: Int32Array): void {
  const split = flat.split;
  let internal = 0;
  for (let g = 0; g < split.length; g++) {
    const s = split[g];
    if (s === 0) continue;
    const f = s - 1;
    const dl = flat.defaultLeft[internal];
    const index = flat.splitIndex[internal];
    valueIndex[g] = leafRows + internal++;
    const kind = featureKind[f];
    if (kind === NUMERIC) {
      nodes[2 * g] = index;
      nodes[2 * g + 1] = f | (dl << DEFAULT_LEFT_SHIFT);
    } else if (kind === NARROW) {
      nodes[2 * g] = (~((flat.subsets[f][index] | (dl << 31)) >>> 0) + MISSING_BIN) | 0;
      nodes[2 * g + 1] = f;
    } else {
      nodes[2 * g] = wide.offset(f, index, dl);
      nodes[2 * g + 1] = f | WIDE;
    }
  }
}

/**
 * Sets each internal node's left subtree size (pre-order numbering, where the left child
 * is the next node; blockTrees turns it into a child offset): a stack of the open internal nodes;
 * a leaf ends the left subtree of the nearest one still waiting for it (whose right
 * child is the next node) and closes every one whose right subtree it ends.
 */
function packLeftSizes(split: ArrayLike<number>, maxDepth: number, nodes: Int32Array): void {
  const open = new Int32Array(maxDepth + 2);
  const done = new Uint8Array(maxDepth + 2);
  let top = -1;
  for (let g = 0; g < split.length; g++) {
    if (split[g] !== 0) {
      open[++top] = g;
      done[top] = 0;
      continue;
    }
    while (top >= 0) {
      if (++done[top] === 1) {
        nodes[2 * open[top] + 1] |= (g - open[top]) << CHILD_SHIFT;
        break;
      }
      top--;
    }
  }
}

/** packLeftSizes, plus each internal node's class counts summed as its subtrees close, normalized into its row. */
function packLeftSizesAndCounts(split: ArrayLike<number>, leafCounts: Uint32Array, K: number, maxDepth: number, nodes: Int32Array, values: Float64Array, valueIndex: Int32Array): void {
  const open = new Int32Array(maxDepth + 2);
  const done = new Uint8Array(maxDepth + 2);
  const sums = new Float64Array((maxDepth + 2) * K);
  // The counts of the subtree that just closed, going up to its parent.
  const up = new Float64Array(K);
  let top = -1;
  let leaf = 0;
  for (let g = 0; g < split.length; g++) {
    if (split[g] !== 0) {
      open[++top] = g;
      done[top] = 0;
      sums.fill(0, top * K, top * K + K);
      continue;
    }
    for (let k = 0; k < K; k++) up[k] = leafCounts[leaf * K + k];
    leaf++;
    while (top >= 0) {
      for (let k = 0; k < K; k++) sums[top * K + k] += up[k];
      if (++done[top] === 1) {
        nodes[2 * open[top] + 1] |= (g - open[top]) << CHILD_SHIFT;
        break;
      }
      normalize(sums, top * K, K, values, valueIndex[open[top]] * K);
      for (let k = 0; k < K; k++) up[k] = sums[top * K + k];
      top--;
    }
  }
}

function copyInternalValues(split: ArrayLike<number>, value: Float64Array, K: number, values: Float64Array, valueIndex: Int32Array): void {
  for (let g = 0; g < split.length; g++) if (split[g] !== 0) values.set(value.subarray(g * K, g * K + K), valueIndex[g] * K);
}

/** counts[o .. o+K) divided by their sum, into out[at ..]: the distribution the trainer wrote. */
function normalize(counts: ArrayLike<number>, o: number, K: number, out: Float64Array, at: number): void {
  let total = 0;
  for (let k = 0; k < K; k++) total += counts[o + k];
  for (let k = 0; k < K; k++) out[at + k] = counts[o + k] / total;
}

/** The lowest index among the largest entries of value[o .. o+K): a hard-vote tree's vote. */
function argmax(value: Float64Array, o: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (value[o + k] > value[o + best]) best = k;
  return best;
}

/**
 * Bitsets of wide categorical splits, one per distinct (feature, subset, missing direction),
 * in typed arrays sized from the parsed subsets (a crafted forest with millions of distinct
 * subsets must cost bytes the loader's budget counts, not heap it cannot see).
 */
class WideBitsBuilder {
  /** Per wide feature: the offset of (subset index, default left) at 2 × index + dl, -1 until placed. */
  private readonly placed: (Int32Array | undefined)[];
  private readonly words: Int32Array;
  private used = 0;

  constructor(
    private readonly flat: FlatForest,
    featureKind: Uint8Array,
  ) {
    const shapes = WideBitsBuilder.shapes(flat, featureKind);
    this.placed = shapes.map((shape) => (shape ? new Int32Array(2 * shape.subsets).fill(-1) : undefined));
    this.words = new Int32Array(shapes.reduce((a, shape) => a + (shape ? shape.words : 0), 0));
  }

  /** Per feature, if wide: its subsets, and the words their bitsets take at most (each subset with either default direction). */
  private static shapes(flat: FlatForest, featureKind: Uint8Array): ({ subsets: number; words: number } | undefined)[] {
    return flat.features.map((spec, f) => {
      if (featureKind[f] !== WIDE_CATEGORICAL) return undefined;
      const C = (spec as { categories: string[] }).categories.length;
      const subsets = flat.subsets[f].length / subsetWords(C);
      return { subsets, words: 2 * subsets * subsetWords(C + 1) };
    });
  }

  /** The most bytes a builder for this forest holds, its built copy included. */
  static maxBytes(flat: FlatForest, featureKind: Uint8Array): number {
    return WideBitsBuilder.shapes(flat, featureKind).reduce((a, shape) => a + (shape ? 4 * 2 * shape.subsets + 2 * 4 * shape.words : 0), 0);
  }

  offset(f: number, index: number, dl: number): number {
    const placed = this.placed[f]!;
    const at = placed[2 * index + dl];
    if (at >= 0) return at;
    const C = (this.flat.features[f] as { categories: string[] }).categories.length;
    const W = subsetWords(C);
    const start = this.used;
    const subsets = this.flat.subsets[f];
    for (let w = 0; w < W; w++) this.words[start + w] = subsets[index * W + w] | 0;
    // Code C stands for missing and unknown values: its bit is the default direction.
    if (dl) this.words[start + (C >>> 5)] |= 1 << (C & 31);
    this.used += subsetWords(C + 1);
    placed[2 * index + dl] = start;
    return start;
  }

  build(): Int32Array {
    return this.words.slice(0, this.used);
  }
}

/**
 * Each distinct class distribution once: an open-addressing hash over the doubles'
 * bits. A row keeps only which leaf it came from (`load` puts that leaf's distribution
 * into a scratch row when a probe compares it, or when rows are rehashed or copied out),
 * not a copy of its doubles: the table holds 4 bytes a leaf plus its slots, which grow
 * with the distinct distributions, not with the nodes, so it stays cache-sized.
 */
class DistributionTable {
  private rows = 0;
  private capacity = 1024;
  private slots = new Int32Array(this.capacity).fill(-1);
  /** Per row: the id whose distribution it is (a leaf's ordinal for counts, its node for values). */
  private readonly ids: Int32Array;
  private readonly scratch: Float64Array;
  private readonly scratchBits: Int32Array;

  constructor(
    private readonly K: number,
    expected: number,
    /** Writes the K doubles of `id`'s distribution to out[0 ..]. */
    private readonly load: (id: number, out: Float64Array) => void,
  ) {
    // One row per leaf at most (intern is called once a leaf): sized for that, it never grows.
    this.ids = new Int32Array(Math.max(1, expected));
    this.scratch = new Float64Array(K);
    this.scratchBits = new Int32Array(this.scratch.buffer);
  }

  /**
   * The most bytes a table for `leaves` leaves holds: a row id a leaf, and its slots, a
   * power of two above twice the rows (at most 4 a row, at least 1,024), twice that with
   * the smaller arrays it outgrew, which may not be collected yet.
   */
  static maxBytes(leaves: number): number {
    return 4 * Math.max(1, leaves) + 8 * Math.max(1024, 4 * leaves);
  }

  /** Its bytes, counting the slots it outgrew (together at most its slots' again) as not yet collected. */
  get bytes(): number {
    return this.ids.byteLength + 2 * this.slots.byteLength;
  }

  private hash(b: Int32Array, at: number): number {
    let h = 0;
    for (let i = at; i < at + 2 * this.K; i++) h = Math.imul(h ^ b[i], 0x9e3779b1) ^ (h >>> 15);
    // murmur3's finalizer: the doubles' low words are mostly zero, so mix the high ones down.
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** The row of `id`'s distribution, whose K doubles are the 2K words key[at ..]: added if new. */
  intern(key: Int32Array, at: number, id: number): number {
    const W = 2 * this.K;
    const mask = this.capacity - 1;
    const bits = this.scratchBits;
    let slot = this.hash(key, at) & mask;
    for (;;) {
      const row = this.slots[slot];
      if (row < 0) break;
      this.load(this.ids[row], this.scratch);
      let same = true;
      for (let i = 0; i < W; i++) {
        if (bits[i] !== key[at + i]) {
          same = false;
          break;
        }
      }
      if (same) return row;
      slot = (slot + 1) & mask;
    }
    const row = this.rows++;
    if (this.rows > this.ids.length) throw new Error(`internal: more distinct leaf distributions than the ${this.ids.length} leaves the table was sized for`);
    this.ids[row] = id;
    this.slots[slot] = row;
    if (this.rows * 2 > this.capacity) this.grow();
    return row;
  }

  private grow(): void {
    this.capacity *= 2;
    this.slots = new Int32Array(this.capacity).fill(-1);
    const mask = this.capacity - 1;
    for (let r = 0; r < this.rows; r++) {
      this.load(this.ids[r], this.scratch);
      let s = this.hash(this.scratchBits, 0) & mask;
      while (this.slots[s] >= 0) s = (s + 1) & mask;
      this.slots[s] = r;
    }
  }

  get size(): number {
    return this.rows;
  }

  /** Writes the distinct distributions, K per row in the order they were added, to the start of out. */
  copyTo(out: Float64Array): void {
    const K = this.K;
    for (let r = 0; r < this.rows; r++) {
      this.load(this.ids[r], this.scratch);
      out.set(this.scratch, r * K);
    }
  }
}

/*
 * Blocking. In pre-order a path down a depth-16 tree jumps across the tree's whole span
 * at every right turn near the top: a row's walk through 100 trees touches some 1,400
 * cache lines on hundreds of 4 KiB pages. A server's request path (the kernel's network
 * stack, the HTTP parser, other processes on the core) evicts them and, on a kernel
 * without PCID, flushes the TLB at every system call, so a single-row request walks
 * mostly cold memory. Blocks of BLOCK_NODES nodes (a node's subtree, breadth-first, a
 * few levels deep: 8 cache lines), each followed by the blocks below it (depth-first),
 * keep a path within a handful of lines and pages; on the production forest they cut a
 * cold single-row walk by about a fifth (docs/model-format.md, "Blocked node order").
 */
const BLOCK_NODES = 64;

/**
 * Re-lays each tree of a pre-order packing (left child next, word 1 holding the left
 * subtree's size) into blocks, children adjacent, word 1 holding the left child's
 * offset. Leaves keep their records. Returns the new node records, valueIndex and roots.
 */
export function blockTrees(pre: Int32Array, preValueIndex: Int32Array, preRoots: Int32Array, treeSizes: ArrayLike<number>): { nodes: Int32Array; valueIndex: Int32Array; roots: Int32Array } {
  const N = preValueIndex.length;
  const { order, leftAt, roots } = blockOrder(pre, preRoots, treeSizes, N);
  return { nodes: blockedRecords(pre, order, leftAt), valueIndex: permuted(preValueIndex, order), roots };
}

/** The node records in blocked order, word 1's left subtree size replaced by the left child's offset. */
function blockedRecords(pre: Int32Array, order: Int32Array, leftAt: Int32Array): Int32Array {
  const N = order.length;
  const nodes = new Int32Array(2 * N);
  const low = (1 << CHILD_SHIFT) - 1;
  for (let q = 0; q < N; q++) {
    const p = order[q];
    const w1 = pre[2 * p + 1];
    nodes[2 * q] = pre[2 * p];
    nodes[2 * q + 1] = w1 >> CHILD_SHIFT === -1 ? w1 : (w1 & low) | ((leftAt[q] - q) << CHILD_SHIFT);
  }
  return nodes;
}

function permuted(values: Int32Array, order: Int32Array): Int32Array {
  const out = new Int32Array(order.length);
  for (let q = 0; q < order.length; q++) out[q] = values[order[q]];
  return out;
}

/**
 * The blocked order (new position → pre-order node), each internal node's left child's new
 * position, and the roots' new positions. A block starts from a root or a pair of
 * siblings and takes whole levels of their subtrees, breadth-first (so siblings stay
 * adjacent), while they fit in BLOCK_NODES; the sibling pairs below its last level start
 * the next blocks, depth-first (the leftmost next), each tree after the one before.
 */
function blockOrder(pre: Int32Array, preRoots: Int32Array, treeSizes: ArrayLike<number>, N: number): { order: Int32Array; leftAt: Int32Array; roots: Int32Array } {
  const order = new Int32Array(N);
  const leftAt = new Int32Array(N);
  const roots = new Int32Array(preRoots.length);
  let largest = 0;
  for (let t = 0; t < treeSizes.length; t++) largest = Math.max(largest, treeSizes[t]);
  // Pending blocks: their first node (a root, or a left child whose sibling follows it in
  // pre-order at first + leftSize of the parent) and the new position of their parent (-1
  // for a root). A node starts at most one, so a tree's size bounds them.
  const first = new Int32Array(largest + 1);
  const parentAt = new Int32Array(largest + 1);
  let n = 0;
  for (let t = 0; t < preRoots.length; t++) {
    first[0] = preRoots[t];
    parentAt[0] = -1;
    let top = 1;
    roots[t] = n;
    while (top > 0) {
      top--;
      const start = n;
      const pa = parentAt[top];
      order[n++] = first[top];
      if (pa >= 0) {
        leftAt[pa] = start;
        const parent = order[pa];
        order[n++] = parent + 1 + (pre[2 * parent + 1] >> CHILD_SHIFT);
      }
      let level = start;
      for (;;) {
        const end = n;
        // The next level, tentatively; over the block's size it is taken back and its pairs start blocks of their own.
        for (let i = level; i < end; i++) {
          const p = order[i];
          const leftSize = pre[2 * p + 1] >> CHILD_SHIFT;
          if (leftSize === -1) continue;
          leftAt[i] = n;
          order[n++] = p + 1;
          order[n++] = p + 1 + leftSize;
        }
        if (n === end) break;
        if (n - start > BLOCK_NODES) {
          n = end;
          for (let i = end - 1; i >= level; i--) {
            const p = order[i];
            if (pre[2 * p + 1] >> CHILD_SHIFT === -1) continue;
            first[top] = p + 1;
            parentAt[top] = i;
            top++;
          }
          break;
        }
        level = end;
      }
    }
  }
  if (n !== N) throw new Error(`internal: blockTrees placed ${n} of ${N} nodes`);
  return { order, leftAt, roots };
}
