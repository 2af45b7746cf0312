/**
 * Saabas explanations: along each tree's path, value(child) − value(parent) is
 * credited to the parent's split feature; contributions are averaged over trees and
 * bias is the mean root distribution, so bias + Σ contributions equals the mean of
 * the leaf distributions reached (up to rounding) — the soft probabilities. Vote
 * fractions of a hard forest are not additive along paths; there the same quantity
 * (the soft-vote surrogate) is explained, and the caller reports the forest's own
 * prediction next to it.
 */
import { FEATURE_MASK, walkPath } from './kernels';
import type { PackedForest } from './layout';

export interface Attribution {
  /** Mean over trees of the root's class distribution (K). */
  readonly bias: Float64Array;
  /** F × K, row-major: feature f's summed contribution to class k at f * K + k. */
  readonly contributions: Float64Array;
  /** bias + Σ contributions: the mean leaf distribution (K). */
  readonly explained: Float64Array;
}

/** Attribution of one encoded row (V at offset 0). path needs max tree depth + 1 entries. */
export function attribute(p: PackedForest, V: Int32Array, path: Int32Array): Attribution {
  const K = p.classes;
  const F = p.featureCount;
  const T = p.roots.length;
  const nodes = p.nodes;
  const values = p.values;
  const vi = p.valueIndex;
  const bias = new Float64Array(K);
  const contributions = new Float64Array(F * K);
  const explained = new Float64Array(K);
  for (let t = 0; t < T; t++) {
    const steps = walkPath(nodes, p.wideBits, V, p.roots[t], p.depths[t], path);
    const root = vi[path[0]] * K;
    for (let k = 0; k < K; k++) bias[k] += values[root + k];
    for (let j = 0; j < steps; j++) {
      const f = nodes[2 * path[j] + 1] & FEATURE_MASK;
      const parent = vi[path[j]] * K;
      const child = vi[path[j + 1]] * K;
      for (let k = 0; k < K; k++) contributions[f * K + k] += values[child + k] - values[parent + k];
    }
    const leaf = vi[path[steps]] * K;
    for (let k = 0; k < K; k++) explained[k] += values[leaf + k];
  }
  for (let k = 0; k < K; k++) {
    bias[k] /= T;
    explained[k] /= T;
  }
  for (let i = 0; i < contributions.length; i++) contributions[i] /= T;
  return { bias, contributions, explained };
}
