/**
 * Trainer hyperparameters: defaults, validation (UserError naming the option) and
 * resolution into the numbers the tree builder uses.
 */
import os from 'node:os';
import { UserError } from '../../core/errors';
import { CLASS_LABELS, type ClassLabel } from '../../etl/schema';
import { MAX_VALUE_BINS } from './binning';

export type MaxFeatures = 'sqrt' | 'log2' | 'all' | number;
export type ClassWeightOption = 'balanced' | Partial<Record<ClassLabel, number>> | null;

export interface Hyperparameters {
  /** Trees in the forest. */
  readonly trees: number;
  /** Deepest level a node may have (the root is depth 0). */
  readonly maxDepth: number;
  /** A node is split only when it holds at least this many rows (bootstrap weight). */
  readonly minSamplesSplit: number;
  /** Every leaf holds at least this many rows (bootstrap weight). */
  readonly minSamplesLeaf: number;
  /** A split must lower weighted Gini impurity by at least this (sklearn's definition). */
  readonly minImpurityDecrease: number;
  /** Features examined per node: 'sqrt' (default), 'log2', 'all', an integer count, or a fraction in (0, 1). */
  readonly maxFeatures: MaxFeatures;
  /** Sample rows with replacement per tree (as integer weights). */
  readonly bootstrap: boolean;
  /** Rows drawn per tree: a fraction in (0, 1] of the training rows, or a count > 1; null = all. */
  readonly maxSamples: number | null;
  /** 'balanced' (n / (K * n_k)), explicit weights per class label, or null for none. */
  readonly classWeight: ClassWeightOption;
  /** Quantile bins per numeric feature, at most 255 (plus one for missing). */
  readonly maxBins: number;
}

export const DEFAULT_HYPERPARAMETERS: Hyperparameters = {
  trees: 100,
  maxDepth: 16,
  minSamplesSplit: 2,
  minSamplesLeaf: 5,
  minImpurityDecrease: 0,
  maxFeatures: 'sqrt',
  bootstrap: true,
  maxSamples: null,
  classWeight: null,
  maxBins: MAX_VALUE_BINS,
};

export const DEFAULT_SEED = 42;

export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

function int(name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new UserError(`${name} must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, got ${v}`);
  }
  return v;
}

export function validateHyperparameters(h: Hyperparameters): Hyperparameters {
  int('trees', h.trees, 1, 100_000);
  int('maxDepth', h.maxDepth, 0, 1000);
  int('minSamplesSplit', h.minSamplesSplit, 2);
  int('minSamplesLeaf', h.minSamplesLeaf, 1);
  if (!(h.minImpurityDecrease >= 0) || !Number.isFinite(h.minImpurityDecrease)) {
    throw new UserError(`minImpurityDecrease must be a finite number >= 0, got ${h.minImpurityDecrease}`);
  }
  if (typeof h.maxFeatures === 'number') {
    if (!(h.maxFeatures > 0) || (h.maxFeatures >= 1 && !Number.isInteger(h.maxFeatures))) {
      throw new UserError(`maxFeatures must be 'sqrt', 'log2', 'all', an integer >= 1 or a fraction in (0, 1), got ${h.maxFeatures}`);
    }
  } else if (!['sqrt', 'log2', 'all'].includes(h.maxFeatures)) {
    throw new UserError(`maxFeatures must be 'sqrt', 'log2', 'all' or a number, got ${JSON.stringify(h.maxFeatures)}`);
  }
  if (h.maxSamples !== null && !(h.maxSamples > 0 && (h.maxSamples <= 1 || Number.isInteger(h.maxSamples)))) {
    throw new UserError(`maxSamples must be a fraction in (0, 1] or an integer row count, got ${h.maxSamples}`);
  }
  int('maxBins', h.maxBins, 2, MAX_VALUE_BINS);
  if (h.classWeight !== null && h.classWeight !== 'balanced') {
    if (typeof h.classWeight !== 'object') throw new UserError(`classWeight must be 'balanced', an object of per-class weights, or null`);
    for (const [label, w] of Object.entries(h.classWeight)) {
      if (!(CLASS_LABELS as readonly string[]).includes(label)) {
        throw new UserError(`classWeight names class ${JSON.stringify(label)}; classes are ${CLASS_LABELS.join(', ')}`);
      }
      if (typeof w !== 'number' || !(w > 0) || !Number.isFinite(w)) throw new UserError(`classWeight.${label} must be a finite number > 0, got ${String(w)}`);
    }
  }
  return h;
}

export function resolveMaxFeatures(option: MaxFeatures, F: number): number {
  let m: number;
  if (option === 'sqrt') m = Math.round(Math.sqrt(F));
  else if (option === 'log2') m = Math.round(Math.log2(F));
  else if (option === 'all') m = F;
  else if (option < 1) m = Math.round(option * F);
  else m = option;
  return Math.min(F, Math.max(1, m));
}

/** Per-class weights in CLASS_LABELS order. */
export function resolveClassWeight(option: ClassWeightOption, classCounts: readonly number[]): number[] {
  const K = CLASS_LABELS.length;
  if (option === null) return new Array<number>(K).fill(1);
  if (option === 'balanced') {
    const n = classCounts.reduce((a, b) => a + b, 0);
    // Absent classes get weight 1: they have no rows to weigh.
    return classCounts.map((c) => (c > 0 ? n / (K * c) : 1));
  }
  return CLASS_LABELS.map((label) => option[label] ?? 1);
}

export function resolveSampleSize(maxSamples: number | null, rows: number): number {
  if (maxSamples === null) return rows;
  if (maxSamples <= 1) return Math.max(1, Math.round(maxSamples * rows));
  return maxSamples;
}
