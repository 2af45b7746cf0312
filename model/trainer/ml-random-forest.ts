/**
 * `--trainer ml-random-forest`: trains ml-random-forest (the design's original
 * library) on the encoded matrix and converts the model to format v1 with the
 * importer. Its exact split search is quadratic in the rows at each node, so it is
 * for small data only (a few thousand rows); docs/training.md has the figures.
 *
 * Encoding: numeric columns as they are; categorical columns as the category code
 * (the same sorted-distinct encoding as the histogram trainer). ml-random-forest has
 * no notion of missing values, and NaN breaks its split search, so a missing value is
 * encoded as a value above every real one in its column (max + 1 for numerics, the
 * category count for categoricals). Any split then sends it right, which is exactly
 * where the imported forest sends missing and unknown values (defaultLeft = 0).
 */
import { RandomForestClassifier } from 'ml-random-forest';
import { UserError } from '../../core/errors';
import { GOLD_FEATURES, type FeatureStats, type GoldTable } from '../../etl/gold-schema';
import { Progress, logEvent } from '../../core/progress';
import { CLASS_LABELS } from '../../etl/schema';
import { codeVersion } from '../../core/version';
import { sealForest } from '../forest-file';
import type { ForestFileV1 } from '../format';
import { importMlRandomForest } from '../import-ml-rf';
import { binTable, type FeatureRef } from './binning';
import { DEFAULT_HYPERPARAMETERS, DEFAULT_SEED } from './options';

/** Above this many rows ml-random-forest takes minutes; we warn. */
export const ML_RF_ROW_WARNING = 5_000;

export interface MlRandomForestOptions {
  readonly trees?: number;
  readonly maxDepth?: number;
  readonly minSamplesLeaf?: number;
  /** Fraction of the features each tree sees (ml-random-forest samples features per tree, not per node). */
  readonly maxFeatures?: number;
  readonly seed?: number;
  readonly features?: readonly FeatureRef[];
  readonly featureStats?: Record<string, FeatureStats>;
  readonly datasetManifestSha256?: string | null;
  /** The gold manifest's feature-definition version (recorded in the forest's training section). */
  readonly featureDefinitions?: string;
  readonly createdAt?: string;
  readonly progress?: boolean;
}

/** The numeric matrix ml-random-forest trains on, and the feature spec that decodes it. */
export function encodeMatrix(table: GoldTable, features: readonly FeatureRef[]): { matrix: number[][]; specs: ReturnType<typeof binTable>['specs']; labels: number[] } {
  const { specs } = binTable(table, features);
  const n = table.rows;
  const matrix: number[][] = Array.from({ length: n }, () => new Array<number>(specs.length));
  specs.forEach((spec, j) => {
    if (spec.kind === 'numeric') {
      const col = table.numeric[spec.name];
      let max = -Infinity;
      for (let i = 0; i < n; i++) if (col[i] > max) max = col[i];
      const sentinel = Number.isFinite(max) ? max + Math.max(1, Math.abs(max)) : 1;
      for (let i = 0; i < n; i++) matrix[i][j] = Number.isNaN(col[i]) ? sentinel : col[i];
    } else {
      const col = table.categorical[spec.name];
      const code = new Map(spec.categories.map((c, i) => [c, i]));
      const missing = spec.categories.length;
      for (let i = 0; i < n; i++) {
        const v = col[i];
        matrix[i][j] = v === null ? missing : (code.get(v) ?? missing);
      }
    }
  });
  const classIndex = new Map<string, number>(CLASS_LABELS.map((c, i) => [c, i]));
  const labels = table.labels.map((l) => classIndex.get(l)!);
  return { matrix, specs, labels };
}

export async function trainMlRandomForest(table: GoldTable, options: MlRandomForestOptions = {}): Promise<ForestFileV1> {
  const trees = options.trees ?? DEFAULT_HYPERPARAMETERS.trees;
  const maxDepth = options.maxDepth ?? DEFAULT_HYPERPARAMETERS.maxDepth;
  const minSamplesLeaf = options.minSamplesLeaf ?? DEFAULT_HYPERPARAMETERS.minSamplesLeaf;
  const maxFeatures = options.maxFeatures ?? 1.0;
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0x7fffffff) throw new UserError(`ml-random-forest needs a seed from 0 to 2^31-1, got ${seed}`);
  if (options.progress !== false && table.rows > ML_RF_ROW_WARNING) {
    logEvent('ml_random_forest_slow', {
      level: 'warn',
      msg: `ml-random-forest on ${table.rows} rows: its split search is quadratic in the rows per node and may take many minutes; use the histogram trainer for more than ~${ML_RF_ROW_WARNING} rows`,
    });
  }
  const { matrix, specs, labels } = encodeMatrix(table, options.features ?? GOLD_FEATURES);
  const hyperparameters = {
    trees,
    maxDepth,
    minSamplesLeaf,
    maxFeatures,
    replacement: false,
    useSampleBagging: true,
    missingEncoding: 'above-max (goes right)',
  };
  const progress = options.progress === false ? null : new Progress({ stage: 'train ml-random-forest', total: trees, unit: 'trees' });
  const rf = new RandomForestClassifier({
    nEstimators: trees,
    maxFeatures,
    replacement: false,
    seed,
    useSampleBagging: true,
    noOOB: true,
    treeOptions: { maxDepth, minNumSamples: minSamplesLeaf },
  });
  rf.train(matrix, labels);
  progress?.update(trees);
  progress?.finish();
  const imported = importMlRandomForest(rf.toJSON(), {
    features: specs,
    classes: [...CLASS_LABELS],
    datasetManifestSha256: options.datasetManifestSha256 !== undefined ? options.datasetManifestSha256 : table.manifestSha256 || null,
    rows: table.rows,
    createdAt: options.createdAt,
    featureStats: options.featureStats,
    codeVersion: codeVersion(),
    featureDefinitions: options.featureDefinitions,
  });
  return sealForest({ ...imported, training: { ...imported.training, seed, hyperparameters: { ...imported.training.hyperparameters, ...hyperparameters } } });
}
