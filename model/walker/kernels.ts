/**
 * The hot loops: walking encoded rows (model/walker/encoding.ts) down packed trees
 * (model/walker/layout.ts). One split test is a handful of integer operations with no
 * data-dependent branch:
 *
 *   right = (((t - b) & (b - L)) >>> s) & 1
 *
 * with t the node's word 0, (b, s) the row's two integers for the node's feature, and
 * L = MISSING_BIN + 1 - defaultLeft. Numeric (s = 31): the sign of (t - b) & (b - L)
 * is set when b > t (the value is above the threshold) and b < L (not missing, or
 * missing with missing going right). Narrow categorical (b = MISSING_BIN, L =
 * MISSING_BIN + 1): t - b = ~mask and b - L = -1, so the result is bit s of ~mask —
 * 1 when the code's bit (or, for missing, bit 31) is clear. Wide categorical splits
 * first fetch the mask word holding the code's bit (the only branch, never taken by a
 * forest without such features). The next node is node + INTERNAL + (leftSize & -right):
 * a leaf's word 1 is 0, so a walk takes a fixed number of steps.
 *
 * Many walks go at once: a block of rows down one tree (batch), or one row down every
 * tree level by level (single row). Their steps are independent, so the CPU overlaps
 * their memory latency instead of waiting on one chain of loads.
 */
import { DEFAULT_LEFT_SHIFT, FEATURE_MASK, INTERNAL_SHIFT, LEFT_SIZE_SHIFT, MISSING_BIN, WIDE } from './layout';

const MISSING_BIN_PLUS_1 = MISSING_BIN + 1;

/** The node after p for the row whose encoding starts at o. */
function step(nodes: Int32Array, wideBits: Int32Array, B: Int32Array, S: Int32Array, o: number, p: number): number {
  const w1 = nodes[2 * p + 1];
  const i = o + (w1 & FEATURE_MASK);
  const b = B[i];
  const s = S[i];
  let t = nodes[2 * p];
  if ((w1 & WIDE) !== 0) t = (~wideBits[t + (s >>> 5)] + MISSING_BIN) | 0;
  const right = (((t - b) & (b - (MISSING_BIN_PLUS_1 - ((w1 >>> DEFAULT_LEFT_SHIFT) & 1)))) >>> s) & 1;
  return p + ((w1 >>> INTERNAL_SHIFT) & 1) + ((w1 >>> LEFT_SIZE_SHIFT) & -right);
}

/**
 * Walks rows [0, count) of an encoded block (F integers per row) down the tree at
 * `root` for `depth` steps; pos[r] ends on row r's leaf.
 */
export function walkRows(nodes: Int32Array, wideBits: Int32Array, B: Int32Array, S: Int32Array, F: number, pos: Int32Array, root: number, depth: number, count: number): void {
  for (let r = 0; r < count; r++) pos[r] = root;
  for (let d = 0; d < depth; d++) {
    let o = 0;
    for (let r = 0; r < count; r++) {
      pos[r] = step(nodes, wideBits, B, S, o, pos[r]);
      o += F;
    }
  }
}

/**
 * Walks one encoded row (at offset 0 of B/S) down every tree, level by level: at level
 * d only the levelWidth[d] deepest trees (a prefix of byDepth) still have steps to
 * take. pos[i] ends on the leaf of tree byDepth[i].
 */
export function walkTrees(nodes: Int32Array, wideBits: Int32Array, B: Int32Array, S: Int32Array, roots: Int32Array, byDepth: Int32Array, levelWidth: Int32Array, pos: Int32Array): void {
  const T = byDepth.length;
  for (let i = 0; i < T; i++) pos[i] = roots[byDepth[i]];
  for (let d = 0; d < levelWidth.length; d++) {
    const width = levelWidth[d];
    for (let i = 0; i < width; i++) pos[i] = step(nodes, wideBits, B, S, 0, pos[i]);
  }
}

/**
 * Walks one encoded row down one tree, recording the path: path[0] is the root,
 * path[steps] the leaf. Returns steps (the leaf's depth). For explanations.
 */
export function walkPath(nodes: Int32Array, wideBits: Int32Array, B: Int32Array, S: Int32Array, root: number, depth: number, path: Int32Array): number {
  let p = root;
  path[0] = p;
  let steps = 0;
  for (let d = 0; d < depth; d++) {
    const next = step(nodes, wideBits, B, S, 0, p);
    if (next === p) break;
    p = next;
    path[++steps] = p;
  }
  return steps;
}
