/**
 * Single-row and batch scoring over a packed forest: walk (model/walker/kernels.ts),
 * combine the trees' leaves in tree order, and pick the label by ONE rule shared by
 * both paths (and the reference scorer): probabilities are the sums divided by the
 * tree count, and the label is the first class with the largest probability —
 * compared after the division, which can make two different sums equal — or, for
 * hard votes under 'first-to-reach', ml-random-forest's rule (the class that first
 * reached the final top count, scanning trees in order).
 */
import { walkRows, walkTrees } from './kernels';
import type { PackedForest } from './layout';

/** The first index of the largest of out[o .. o+K) (lowest index on ties). */
export function argmaxAt(out: Float64Array, o: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (out[o + k] > out[o + best]) best = k;
  return best;
}

/**
 * Scores one encoded row (V at offset 0): fills out[0..K) with probabilities and
 * returns the class index. pos needs one entry per tree.
 */
export function scoreRow(p: PackedForest, firstToReach: boolean, V: Int32Array, pos: Int32Array, out: Float64Array): number {
  const K = p.classes;
  const T = p.roots.length;
  const nodes = p.nodes;
  const values = p.values;
  walkTrees(nodes, p.wideBits, V, p.roots, p.depths, pos);
  out.fill(0, 0, K);
  let winner = 0;
  let winnerCount = 0;
  if (p.soft) {
    for (let t = 0; t < T; t++) {
      const v = ~nodes[2 * pos[t]] * K;
      for (let k = 0; k < K; k++) out[k] += values[v + k];
    }
  } else {
    for (let t = 0; t < T; t++) {
      const vote = ~nodes[2 * pos[t]];
      const count = ++out[vote];
      if (count > winnerCount) {
        winnerCount = count;
        winner = vote;
      }
    }
  }
  for (let k = 0; k < K; k++) out[k] /= T;
  return firstToReach ? winner : argmaxAt(out, 0, K);
}

/**
 * Scores `count` encoded rows (V row-major, `stride` ints per row) into probabilities[(first + r)
 * * K ..] and classIndex[first + r]. Tree-major: each tree's nodes are reused by the
 * whole block while the block's encodings stay in cache. pos and winnerCount need
 * `count` entries.
 */
export function scoreBlock(
  p: PackedForest,
  firstToReach: boolean,
  V: Int32Array,
  stride: number,
  count: number,
  pos: Int32Array,
  winnerCount: Float64Array,
  first: number,
  probabilities: Float64Array,
  classIndex: Int32Array,
): void {
  const K = p.classes;
  const T = p.roots.length;
  const nodes = p.nodes;
  const values = p.values;
  const base = first * K;
  if (!p.soft) winnerCount.fill(0, 0, count);
  for (let t = 0; t < T; t++) {
    walkRows(nodes, p.wideBits, V, stride, pos, p.roots[t], p.depths[t], count);
    if (p.soft) {
      for (let r = 0; r < count; r++) {
        const v = ~nodes[2 * pos[r]] * K;
        const o = base + r * K;
        for (let k = 0; k < K; k++) probabilities[o + k] += values[v + k];
      }
    } else {
      for (let r = 0; r < count; r++) {
        const vote = ~nodes[2 * pos[r]];
        const c = ++probabilities[base + r * K + vote];
        if (c > winnerCount[r]) {
          winnerCount[r] = c;
          // ml-array-mode's rule: the first class to reach a new maximum count leads.
          if (firstToReach) classIndex[first + r] = vote;
        }
      }
    }
  }
  for (let r = 0; r < count; r++) {
    const o = base + r * K;
    for (let k = 0; k < K; k++) probabilities[o + k] /= T;
    if (!firstToReach) classIndex[first + r] = argmaxAt(probabilities, o, K);
  }
}
