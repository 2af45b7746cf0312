/**
 * Format v2's `trees` object: a forest in pre-order form (model/forest-flat.ts) with
 * its per-node arrays as base64 of little-endian typed arrays, each with its dtype and
 * length, and its threshold and subset tables as JSON arrays. docs/model-format.md,
 * "Format v2", is the reference.
 *
 * Class distributions take most of a forest; v2 stores them one of two ways:
 * - `counts`: per leaf, its training rows per class (unsigned LEB128 varints). An
 *   internal node's counts are the sum of its children's, and a node's distribution
 *   is count[k] / Σ count — exactly the division pricesense's trainer does (without
 *   class weights), so the doubles come back bit for bit. The encoder uses this form
 *   only when that reproduces every node's distribution and count exactly.
 * - `values`: every node's distribution and count as float64 (any other forest:
 *   imported models, class-weighted training).
 *
 * Decoding checks everything the arrays can get wrong — lengths, the tree shapes,
 * index ranges, the limits of model/forest-limits.ts — before it allocates by any
 * count the file states, and refuses with a ForestFormatError naming the field.
 */
import { endianness } from 'node:os';
import type { FeatureSpec, TreeV1 } from './format';
import { ForestFormatError } from './forest-error';
import { checkForestShape, forEachNodeCounts, nodeDistributions, subsetWords, type FlatDistributions, type FlatForest } from './forest-flat';
import { checkLimit, FOREST_LIMITS } from './forest-limits';

export type Dtype = 'uint8' | 'uint16' | 'uint32' | 'float64' | 'bits' | 'varuint';

export interface EncodedArray {
  readonly dtype: Dtype;
  /** Number of values (bits: number of bits; varuint: number of integers). */
  readonly length: number;
  readonly base64: string;
}

export type EncodedDistributions =
  | { readonly kind: 'counts'; readonly leafCounts: EncodedArray }
  | { readonly kind: 'values'; readonly value: EncodedArray; readonly count: EncodedArray };

/** The `trees` field of a format v2 document. */
export interface TreesV2 {
  /** Number of trees. */
  readonly count: number;
  /** Number of nodes over all trees. */
  readonly nodes: number;
  /** uint32 per tree: its node count. */
  readonly sizes: EncodedArray;
  /** Per node, in pre-order: 0 for a leaf, else split feature index + 1 (uint8, or uint16 beyond 254 features). */
  readonly split: EncodedArray;
  /** One bit per internal node (bit i of byte i >> 3 for internal node i): 1 = missing goes left. */
  readonly defaultLeft: EncodedArray;
  /** Per internal node: its threshold's index in thresholds[feature], or its subset's in subsets[feature]. */
  readonly splitIndex: EncodedArray;
  /** Per feature: ascending distinct thresholds (numeric features), [] otherwise. */
  readonly thresholds: number[][];
  /** Per feature: distinct subsets, ceil(categories / 32) uint32 words each (categorical features), [] otherwise. */
  readonly subsets: number[][];
  readonly distributions: EncodedDistributions;
}

if (endianness() !== 'LE') throw new Error('pricesense forest format v2 is implemented for little-endian hosts only');

const SIZES: Record<Exclude<Dtype, 'bits' | 'varuint'>, number> = { uint8: 1, uint16: 2, uint32: 4, float64: 8 };

function toBase64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
}

function encodeUnsigned(values: ArrayLike<number>, max: number): EncodedArray {
  if (max < 256) return { dtype: 'uint8', length: values.length, base64: toBase64(Uint8Array.from(values)) };
  if (max < 65536) return { dtype: 'uint16', length: values.length, base64: toBase64(Uint16Array.from(values)) };
  return { dtype: 'uint32', length: values.length, base64: toBase64(Uint32Array.from(values)) };
}

function encodeBits(bits: Uint8Array): EncodedArray {
  const packed = new Uint8Array((bits.length + 7) >>> 3);
  for (let i = 0; i < bits.length; i++) if (bits[i]) packed[i >>> 3] |= 1 << (i & 7);
  return { dtype: 'bits', length: bits.length, base64: toBase64(packed) };
}

function encodeVarUint(values: ArrayLike<number>): EncodedArray {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    let v = values[i];
    while (v >= 128) {
      out.push((v % 128) | 128);
      v = Math.floor(v / 128);
    }
    out.push(v);
  }
  return { dtype: 'varuint', length: values.length, base64: toBase64(Uint8Array.from(out)) };
}

/**
 * Class counts per leaf when every node's distribution and count are those counts
 * divided by their sum (and the sums), else undefined.
 */
function leafCountsIfExact(flat: FlatForest, value: Float64Array, count: Float64Array): Uint32Array | undefined {
  const K = flat.classes;
  const out = new Uint32Array(flat.leaves * K);
  let leaf = 0;
  for (let g = 0; g < flat.split.length; g++) {
    if (flat.split[g] !== 0) continue;
    const total = count[g];
    if (!Number.isSafeInteger(total) || total <= 0 || total > 0xffffffff) return undefined;
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const c = Math.round(value[g * K + k] * total);
      out[leaf * K + k] = c;
      sum += c;
    }
    leaf++;
    if (sum !== total) return undefined;
  }
  let exact = true;
  forEachNodeCounts(flat, out, (g, counts, o) => {
    let total = 0;
    for (let k = 0; k < K; k++) total += counts[o + k];
    if (total !== count[g]) exact = false;
    for (let k = 0; k < K; k++) if (counts[o + k] / total !== value[g * K + k]) exact = false;
  });
  return exact ? out : undefined;
}

function encodeValues(d: { value: Float64Array; count: Float64Array }, values: number, nodes: number): EncodedDistributions {
  return { kind: 'values', value: { dtype: 'float64', length: values, base64: toBase64(d.value) }, count: { dtype: 'float64', length: nodes, base64: toBase64(d.count) } };
}

/** The v2 `trees` object of a flat forest. Deterministic: the same forest always gives the same object. */
export function encodeTrees(flat: FlatForest): TreesV2 {
  const N = flat.split.length;
  let maxIndex = 0;
  for (let i = 0; i < flat.splitIndex.length; i++) if (flat.splitIndex[i] > maxIndex) maxIndex = flat.splitIndex[i];
  const d = flat.distributions;
  const leafCounts = d.kind === 'counts' ? d.leafCounts : leafCountsIfExact(flat, d.value, d.count);
  return {
    count: flat.treeSizes.length,
    nodes: N,
    sizes: { dtype: 'uint32', length: flat.treeSizes.length, base64: toBase64(flat.treeSizes) },
    split: encodeUnsigned(flat.split, flat.features.length),
    defaultLeft: encodeBits(flat.defaultLeft),
    splitIndex: encodeUnsigned(flat.splitIndex, maxIndex),
    thresholds: flat.thresholds.map((t) => Array.from(t)),
    subsets: flat.subsets.map((s) => Array.from(s)),
    distributions: leafCounts
      ? { kind: 'counts', leafCounts: encodeVarUint(leafCounts) }
      : encodeValues(nodeDistributions(flat), N * flat.classes, N),
  };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes one array's bytes, checking dtype, declared length and byte count. */
function bytesOf(source: string, at: string, a: EncodedArray, dtypes: readonly Dtype[], length: number): Buffer {
  if (!dtypes.includes(a.dtype)) throw new ForestFormatError(source, `${at}.dtype`, `is ${JSON.stringify(a.dtype)}, expected ${dtypes.map((d) => JSON.stringify(d)).join(' or ')}`);
  if (a.length !== length) throw new ForestFormatError(source, `${at}.length`, `is ${a.length}, expected ${length}`);
  const expected = a.dtype === 'bits' ? (length + 7) >>> 3 : a.dtype === 'varuint' ? -1 : length * SIZES[a.dtype];
  // base64 holds 3 bytes per 4 characters: refuse before decoding what cannot be the right size.
  const max = a.dtype === 'varuint' ? length * 5 : expected;
  if (a.base64.length % 4 !== 0 || Math.floor(a.base64.length / 4) * 3 > max + 2 || !BASE64.test(a.base64)) {
    throw new ForestFormatError(source, `${at}.base64`, `is not the base64 of ${a.dtype === 'varuint' ? `${length} varuint(s)` : `${expected} byte(s)`} (its length ${a.base64.length} or characters are wrong)`);
  }
  const bytes = Buffer.from(a.base64, 'base64');
  if (expected >= 0 && bytes.length !== expected) throw new ForestFormatError(source, `${at}.base64`, `decodes to ${bytes.length} byte(s), expected ${expected} (${length} × ${a.dtype})`);
  return bytes;
}

/** The bytes as the typed array of the dtype: a view when aligned (large decodes are), else a copy. */
function typed(bytes: Buffer, dtype: Dtype): Uint8Array | Uint16Array | Uint32Array | Float64Array {
  const size = dtype === 'uint16' ? 2 : dtype === 'uint32' ? 4 : dtype === 'float64' ? 8 : 1;
  let b: Uint8Array = bytes;
  if (b.byteOffset % size !== 0) b = Uint8Array.from(bytes);
  switch (dtype) {
    case 'uint16':
      return new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
    case 'uint32':
      return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
    case 'float64':
      return new Float64Array(b.buffer, b.byteOffset, b.length / 8);
    default:
      return new Uint8Array(b.buffer, b.byteOffset, b.length);
  }
}

function decodeVarUint(source: string, at: string, bytes: Buffer, length: number): Uint32Array {
  const out = new Uint32Array(length);
  let p = 0;
  for (let i = 0; i < length; i++) {
    let v = 0;
    let scale = 1;
    for (;;) {
      if (p >= bytes.length) throw new ForestFormatError(source, at, `ends after ${i} of ${length} varuint(s)`);
      const b = bytes[p++];
      v += (b & 127) * scale;
      if (b < 128) break;
      scale *= 128;
      if (scale > 2 ** 28) throw new ForestFormatError(source, at, `holds a varuint longer than 5 bytes at value ${i}: class counts must be below 2^32`);
    }
    if (v > 0xffffffff) throw new ForestFormatError(source, at, `value ${i} is ${v}: class counts must be below 2^32`);
    out[i] = v;
  }
  if (p !== bytes.length) throw new ForestFormatError(source, at, `has ${bytes.length - p} byte(s) after its ${length} varuint(s)`);
  return out;
}

/**
 * Checks that each tree's leaf/internal sequence is one binary tree in pre-order of
 * exactly its size (each internal node opens two child slots, every node fills one,
 * the tree ends when none is open) and measures its depth, refusing a depth over the
 * limit as soon as it is reached.
 */
function treeShapes(split: Uint8Array | Uint16Array, treeSizes: Uint32Array, F: number, source: string): { depths: Int32Array; internal: number } {
  const T = treeSizes.length;
  const depths = new Int32Array(T);
  const maxDepth = FOREST_LIMITS.depth;
  // Depths of the open child slots; a valid tree never has more than depth + 1.
  const open = new Int32Array(maxDepth + 2);
  let g = 0;
  let internal = 0;
  let pathSteps = 0;
  for (let t = 0; t < T; t++) {
    const end = g + treeSizes[t];
    open[0] = 0;
    let top = 1;
    let depth = 0;
    for (; g < end; g++) {
      if (top === 0) throw new ForestFormatError(source, 'trees.split', `tree ${t} is complete after ${g - (end - treeSizes[t])} node(s), but trees.sizes says ${treeSizes[t]}`);
      const d = open[--top];
      if (d > depth) depth = d;
      const s = split[g];
      if (s === 0) continue;
      if (s > F) throw new ForestFormatError(source, `trees.split[${g}]`, `is ${s}: a split on feature ${s - 1}, but there are only ${F} features`);
      if (d + 1 > maxDepth) checkLimit(source, `trees (tree ${t})`, 'depth', d + 1);
      internal++;
      open[top++] = d + 1;
      open[top++] = d + 1;
    }
    if (top !== 0) throw new ForestFormatError(source, 'trees.split', `tree ${t} has ${top} missing node(s): its ${treeSizes[t]} nodes do not form a binary tree`);
    depths[t] = depth;
    pathSteps += depth;
  }
  checkLimit(source, 'trees', 'pathSteps', pathSteps);
  return { depths, internal };
}

function unpackBits(bytes: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bytes[i >>> 3] >>> (i & 7)) & 1;
  return out;
}

/**
 * Decodes and validates a v2 `trees` object into the pre-order form. `classes` and
 * `features` are the document's (already schema-checked).
 */
export function decodeTrees(trees: TreesV2, classes: number, features: readonly FeatureSpec[], source = '<forest>'): FlatForest {
  const K = classes;
  const F = features.length;
  const T = trees.count;
  const N = trees.nodes;
  checkForestShape(source, K, features, T);
  checkLimit(source, 'trees.nodes', 'nodes', N);
  checkLimit(source, 'trees.nodes', 'nodeClassCells', N * K);

  const treeSizes = typed(bytesOf(source, 'trees.sizes', trees.sizes, ['uint32'], T), 'uint32') as Uint32Array;
  let total = 0;
  for (let t = 0; t < T; t++) {
    if (treeSizes[t] < 1) throw new ForestFormatError(source, 'trees.sizes', `tree ${t} has no nodes`);
    checkLimit(source, `trees.sizes[${t}]`, 'nodesPerTree', treeSizes[t]);
    total += treeSizes[t];
  }
  if (total !== N) throw new ForestFormatError(source, 'trees.sizes', `adds up to ${total} nodes, but trees.nodes is ${N}`);

  const split = typed(bytesOf(source, 'trees.split', trees.split, ['uint8', 'uint16'], N), trees.split.dtype) as Uint8Array | Uint16Array;
  const { depths, internal } = treeShapes(split, treeSizes, F, source);

  const defaultLeft = unpackBits(bytesOf(source, 'trees.defaultLeft', trees.defaultLeft, ['bits'], internal), internal);
  const splitIndex = typed(bytesOf(source, 'trees.splitIndex', trees.splitIndex, ['uint8', 'uint16', 'uint32'], internal), trees.splitIndex.dtype) as Uint8Array | Uint16Array | Uint32Array;

  if (trees.thresholds.length !== F) throw new ForestFormatError(source, 'trees.thresholds', `has ${trees.thresholds.length} entries, expected one per feature (${F})`);
  if (trees.subsets.length !== F) throw new ForestFormatError(source, 'trees.subsets', `has ${trees.subsets.length} entries, expected one per feature (${F})`);
  const thresholds: Float64Array[] = [];
  const subsets: Uint32Array[] = [];
  const tableSize = new Float64Array(F);
  let subsetWordsTotal = 0;
  features.forEach((spec, f) => {
    const th = trees.thresholds[f];
    const su = trees.subsets[f];
    if (spec.kind === 'numeric') {
      if (su.length !== 0) throw new ForestFormatError(source, `trees.subsets[${f}]`, `must be empty: feature ${JSON.stringify(spec.name)} is numeric`);
      for (let i = 0; i < th.length; i++) {
        if (!Number.isFinite(th[i]) || (i > 0 && !(th[i] > th[i - 1]))) {
          throw new ForestFormatError(source, `trees.thresholds[${f}][${i}]`, `is ${th[i]}: thresholds must be finite, distinct and ascending`);
        }
      }
      thresholds.push(Float64Array.from(th));
      subsets.push(new Uint32Array(0));
      tableSize[f] = th.length;
    } else {
      if (th.length !== 0) throw new ForestFormatError(source, `trees.thresholds[${f}]`, `must be empty: feature ${JSON.stringify(spec.name)} is categorical`);
      const C = spec.categories.length;
      const W = subsetWords(C);
      if (W === 0 ? su.length !== 0 : su.length % W !== 0) throw new ForestFormatError(source, `trees.subsets[${f}]`, `has ${su.length} words, not a multiple of ${W} (words per subset of ${C} categories)`);
      subsetWordsTotal += su.length;
      checkLimit(source, `trees.subsets[${f}]`, 'subsetWords', subsetWordsTotal);
      for (let i = 0; i < su.length; i++) {
        const w = i % W;
        const bits = C - 32 * w;
        const valid = bits >= 32 ? 0xffffffff : (2 ** bits - 1) >>> 0;
        if (!Number.isInteger(su[i]) || su[i] < 0 || su[i] > 0xffffffff || (su[i] & ~valid) !== 0) {
          throw new ForestFormatError(source, `trees.subsets[${f}][${i}]`, `is ${su[i]}: a subset word must be a 32-bit unsigned integer with no bits at or above the category count (${C})`);
        }
      }
      thresholds.push(new Float64Array(0));
      subsets.push(Uint32Array.from(su));
      tableSize[f] = W === 0 ? 0 : su.length / W;
    }
  });
  let j = 0;
  for (let n = 0; n < N; n++) {
    const s = split[n];
    if (s === 0) continue;
    if (splitIndex[j] >= tableSize[s - 1]) {
      throw new ForestFormatError(source, `trees.splitIndex[${j}]`, `is ${splitIndex[j]}, but feature ${s - 1}'s ${features[s - 1].kind === 'numeric' ? 'threshold' : 'subset'} table has ${tableSize[s - 1]} entries`);
    }
    j++;
  }

  const distributions = decodeDistributions(trees.distributions, N, K, N - internal, source);
  return { classes: K, features, treeSizes, split, defaultLeft, splitIndex, thresholds, subsets, distributions, depths, leaves: N - internal };
}

const SUM_TOLERANCE = 1e-9;

function decodeDistributions(d: EncodedDistributions, N: number, K: number, leaves: number, source: string): FlatDistributions {
  if (d.kind === 'counts') {
    const at = 'trees.distributions.leafCounts';
    const leafCounts = decodeVarUint(source, at, bytesOf(source, at, d.leafCounts, ['varuint'], leaves * K), leaves * K);
    for (let l = 0; l < leaves; l++) {
      let total = 0;
      for (let k = 0; k < K; k++) total += leafCounts[l * K + k];
      // Every node's counts then sum to at least 1; a tree's at most 2^20 nodes keep its sums exact.
      if (total === 0) throw new ForestFormatError(source, at, `gives leaf ${l} no training rows (its class counts sum to 0): every leaf needs at least one`);
    }
    return { kind: 'counts', leafCounts };
  }
  const value = typed(bytesOf(source, 'trees.distributions.value', d.value, ['float64'], N * K), 'float64') as Float64Array;
  const count = typed(bytesOf(source, 'trees.distributions.count', d.count, ['float64'], N), 'float64') as Float64Array;
  for (let g = 0; g < N; g++) {
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const v = value[g * K + k];
      if (!(v >= 0) || !Number.isFinite(v)) throw new ForestFormatError(source, 'trees.distributions.value', `node ${g}'s probability of class ${k} is ${v}: it must be a finite number >= 0`);
      sum += v;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE) throw new ForestFormatError(source, 'trees.distributions.value', `node ${g}'s class distribution sums to ${sum}, expected 1`);
    if (!(count[g] >= 0) || !Number.isFinite(count[g])) throw new ForestFormatError(source, 'trees.distributions.count', `node ${g}'s count is ${count[g]}: it must be a finite number >= 0`);
  }
  return { kind: 'values', value, count };
}

/**
 * The encoded `trees` of in-memory tree arrays, remembered per array: a document read
 * from a v2 file keeps the exact object it was read from, and a sealed document is
 * encoded once for its digest and reused when written.
 */
const encodedTrees = new WeakMap<readonly TreeV1[], TreesV2>();

export function rememberEncoding(trees: readonly TreeV1[], encoded: TreesV2): void {
  encodedTrees.set(trees, encoded);
}

export function rememberedEncoding(trees: readonly TreeV1[]): TreesV2 | undefined {
  return encodedTrees.get(trees);
}

