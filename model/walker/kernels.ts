/**
 * The hot loops: walking encoded rows (model/walker/encoding.ts) down packed trees
 * (model/walker/layout.ts). A row holds one int32 per feature, v = (b << 5) | s; a
 * split test is a handful of integer operations with no data-dependent branch:
 *
 *   b = v >> 5
 *   right = (((t - b) & (b - L)) >>> v) & 1        (>>> shifts by v & 31 = s)
 *
 * with t the node's word 0 and L = MISSING_BIN + 1 - defaultLeft. Numeric (s = 31):
 * the sign of (t - b) & (b - L) is set when b > t (the value is above the threshold)
 * and b < L (not missing, or missing with missing going right). Narrow categorical
 * (b = MISSING_BIN, L = MISSING_BIN + 1): t - b = ~mask and b - L = -1, so the result
 * is bit s of ~mask — 1 when the code's bit (or, for missing, bit 31) is clear. A leaf
 * tests the encoding's constant last slot (b = 0, s = 31) against t = ~payload < 0, so
 * it always goes "right": the next node is node + offset + right (a node's children are
 * adjacent), and a leaf, whose offset is -1, steps onto itself. Wide categorical splits
 * (more than 31 categories) read their bitset word instead: the only branch, never
 * taken by a forest without them.
 *
 * Several walks go at once — four rows of a block down one tree (batch), four trees for
 * one row (single) — each all the way down, in registers: independent chains of loads
 * the CPU overlaps, stopping as soon as all four stand on leaves.
 */
/*
 * The node record's bit layout (layout.ts builds it). Literal constants: the kernels
 * read them on every step, and V8 folds a literal but re-reads an imported binding.
 */
/** The bin of a missing or unknown value: above every threshold index (a forest has at most 2^25 nodes). */
export const MISSING_BIN = 33554432; // 1 << 25
export const FEATURE_MASK = 0x1ff;
export const WIDE = 0x200;
export const DEFAULT_LEFT_SHIFT = 10;
export const CHILD_SHIFT = 11;
const MISSING_BIN_PLUS_1 = 33554433;

/** The node after p for the row whose encoding starts at o, in a forest without wide categorical splits. */
function step(nodes: Int32Array, V: Int32Array, o: number, p: number): number {
  const w1 = nodes[2 * p + 1];
  const v = V[o + (w1 & 0x1ff)];
  const b = v >> 5;
  const right = (((nodes[2 * p] - b) & (b - (MISSING_BIN_PLUS_1 - ((w1 >>> 10) & 1)))) >>> v) & 1;
  return p + (w1 >> 11) + right;
}

/** step() for any forest: wide categorical splits read their bitset word. */
function stepWide(nodes: Int32Array, wideBits: Int32Array, V: Int32Array, o: number, p: number): number {
  const w1 = nodes[2 * p + 1];
  const v = V[o + (w1 & 0x1ff)];
  const b = v >> 5;
  const t = nodes[2 * p];
  let right: number;
  if ((w1 & 0x200) === 0) right = (((t - b) & (b - (MISSING_BIN_PLUS_1 - ((w1 >>> 10) & 1)))) >>> v) & 1;
  else right = (~wideBits[t + (b >>> 5)] >>> v) & 1;
  return p + (w1 >> 11) + right;
}

/*
 * The walks below come in two copies, one per step function: the check for wide
 * splits costs a forest without them ~20% (its inlined code keeps fewer chains in
 * registers), and V8 would share one generic copy's type feedback between both.
 */

/**
 * Walks rows [0, count) of an encoded block (`stride` ints per row) down the tree at
 * `root`; pos[r] ends on row r's leaf. `depth` bounds the steps (the tree's depth).
 */
export function walkRows(nodes: Int32Array, wideBits: Int32Array, V: Int32Array, stride: number, pos: Int32Array, root: number, depth: number, count: number): void {
  if (wideBits.length > 0) {
    walkRowsWide(nodes, wideBits, V, stride, pos, root, depth, count);
    return;
  }
  let r = 0;
  for (; r + 4 <= count; r += 4) {
    const o = r * stride;
    let a = root;
    let b = root;
    let c = root;
    let e = root;
    for (let d = 0; d < depth; d++) {
      const na = step(nodes, V, o, a);
      const nb = step(nodes, V, o + stride, b);
      const nc = step(nodes, V, o + 2 * stride, c);
      const ne = step(nodes, V, o + 3 * stride, e);
      if (((na ^ a) | (nb ^ b) | (nc ^ c) | (ne ^ e)) === 0) break;
      a = na;
      b = nb;
      c = nc;
      e = ne;
    }
    pos[r] = a;
    pos[r + 1] = b;
    pos[r + 2] = c;
    pos[r + 3] = e;
  }
  for (; r < count; r++) {
    let a = root;
    for (let d = 0; d < depth; d++) a = step(nodes, V, r * stride, a);
    pos[r] = a;
  }
}

function walkRowsWide(nodes: Int32Array, wideBits: Int32Array, V: Int32Array, stride: number, pos: Int32Array, root: number, depth: number, count: number): void {
  let r = 0;
  for (; r + 4 <= count; r += 4) {
    const o = r * stride;
    let a = root;
    let b = root;
    let c = root;
    let e = root;
    for (let d = 0; d < depth; d++) {
      const na = stepWide(nodes, wideBits, V, o, a);
      const nb = stepWide(nodes, wideBits, V, o + stride, b);
      const nc = stepWide(nodes, wideBits, V, o + 2 * stride, c);
      const ne = stepWide(nodes, wideBits, V, o + 3 * stride, e);
      if (((na ^ a) | (nb ^ b) | (nc ^ c) | (ne ^ e)) === 0) break;
      a = na;
      b = nb;
      c = nc;
      e = ne;
    }
    pos[r] = a;
    pos[r + 1] = b;
    pos[r + 2] = c;
    pos[r + 3] = e;
  }
  for (; r < count; r++) {
    let a = root;
    for (let d = 0; d < depth; d++) a = stepWide(nodes, wideBits, V, r * stride, a);
    pos[r] = a;
  }
}

/**
 * Walks one encoded row (at offset 0 of V) down every tree, four trees at a time;
 * pos[t] ends on tree t's leaf.
 */
export function walkTrees(nodes: Int32Array, wideBits: Int32Array, V: Int32Array, roots: Int32Array, depths: Int32Array, pos: Int32Array): void {
  if (wideBits.length > 0) {
    walkTreesWide(nodes, wideBits, V, roots, depths, pos);
    return;
  }
  const T = roots.length;
  let t = 0;
  for (; t + 4 <= T; t += 4) {
    let a = roots[t];
    let b = roots[t + 1];
    let c = roots[t + 2];
    let e = roots[t + 3];
    const depth = Math.max(depths[t], depths[t + 1], depths[t + 2], depths[t + 3]);
    for (let d = 0; d < depth; d++) {
      const na = step(nodes, V, 0, a);
      const nb = step(nodes, V, 0, b);
      const nc = step(nodes, V, 0, c);
      const ne = step(nodes, V, 0, e);
      if (((na ^ a) | (nb ^ b) | (nc ^ c) | (ne ^ e)) === 0) break;
      a = na;
      b = nb;
      c = nc;
      e = ne;
    }
    pos[t] = a;
    pos[t + 1] = b;
    pos[t + 2] = c;
    pos[t + 3] = e;
  }
  for (; t < T; t++) {
    let a = roots[t];
    for (let d = 0; d < depths[t]; d++) a = step(nodes, V, 0, a);
    pos[t] = a;
  }
}

function walkTreesWide(nodes: Int32Array, wideBits: Int32Array, V: Int32Array, roots: Int32Array, depths: Int32Array, pos: Int32Array): void {
  const T = roots.length;
  let t = 0;
  for (; t + 4 <= T; t += 4) {
    let a = roots[t];
    let b = roots[t + 1];
    let c = roots[t + 2];
    let e = roots[t + 3];
    const depth = Math.max(depths[t], depths[t + 1], depths[t + 2], depths[t + 3]);
    for (let d = 0; d < depth; d++) {
      const na = stepWide(nodes, wideBits, V, 0, a);
      const nb = stepWide(nodes, wideBits, V, 0, b);
      const nc = stepWide(nodes, wideBits, V, 0, c);
      const ne = stepWide(nodes, wideBits, V, 0, e);
      if (((na ^ a) | (nb ^ b) | (nc ^ c) | (ne ^ e)) === 0) break;
      a = na;
      b = nb;
      c = nc;
      e = ne;
    }
    pos[t] = a;
    pos[t + 1] = b;
    pos[t + 2] = c;
    pos[t + 3] = e;
  }
  for (; t < T; t++) {
    let a = roots[t];
    for (let d = 0; d < depths[t]; d++) a = stepWide(nodes, wideBits, V, 0, a);
    pos[t] = a;
  }
}

/**
 * Walks one encoded row down one tree, recording the path: path[0] is the root,
 * path[steps] the leaf. Returns steps (the leaf's depth). For explanations.
 */
export function walkPath(nodes: Int32Array, wideBits: Int32Array, V: Int32Array, root: number, depth: number, path: Int32Array): number {
  let p = root;
  path[0] = p;
  let steps = 0;
  for (let d = 0; d < depth; d++) {
    const next = stepWide(nodes, wideBits, V, 0, p);
    if (next === p) break;
    p = next;
    path[++steps] = p;
  }
  return steps;
}
