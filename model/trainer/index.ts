/**
 * The histogram RandomForest trainer: gold table in, sealed forest file (format v1)
 * out. docs/training.md describes the algorithm, the hyperparameters and why the
 * result is the same for any thread count.
 */
import { UserError } from '../../core/errors';
import { GOLD_FEATURES, type FeatureStats, type GoldTable } from '../../etl/gold-schema';
import { Progress, logEvent } from '../../core/progress';
import { CLASS_LABELS } from '../../etl/schema';
import { codeVersion } from '../../core/version';
import { sealForest } from '../forest-file';
import { FOREST_FORMAT_ID, LATEST_FOREST_FORMAT_VERSION, type ForestFileV1, type TreeV1 } from '../format';
import { binTable, type FeatureRef } from './binning';
import {
  DEFAULT_HYPERPARAMETERS,
  DEFAULT_SEED,
  defaultThreads,
  resolveClassWeight,
  resolveMaxFeatures,
  resolveSampleSize,
  validateHyperparameters,
  type Hyperparameters,
} from './options';
import { growTrees } from './pool';
import type { BuiltTree, TreeParams } from './tree-builder';

export { DEFAULT_HYPERPARAMETERS, DEFAULT_SEED, defaultThreads, type Hyperparameters, type MaxFeatures, type ClassWeightOption } from './options';
export type { FeatureRef } from './binning';

export const HISTOGRAM_TRAINER = 'pricesense-histogram-rf';

export interface TrainOptions extends Partial<Hyperparameters> {
  /** Forest seed (an integer 0 .. 2^53-1); per-tree streams derive from it and the tree index. */
  readonly seed?: number;
  /** Worker threads; default os.availableParallelism(). Does not change the result. */
  readonly threads?: number;
  /** Features to train on, in forest order; default GOLD_FEATURES. */
  readonly features?: readonly FeatureRef[];
  /** The training split's statistics from the gold manifest (the serving drift baseline). */
  readonly featureStats?: Record<string, FeatureStats>;
  /** Lineage; default the table's manifestSha256. */
  readonly datasetManifestSha256?: string | null;
  /** The gold manifest's feature-definition version (recorded in the forest's training section). */
  readonly featureDefinitions?: string;
  /** ISO timestamp to record; default now. */
  readonly createdAt?: string;
  readonly metrics?: Record<string, unknown>;
  /** Progress display (trees done, ETA); default true (core/progress.ts decides the form). */
  readonly progress?: boolean;
  /** Called after each finished tree. */
  readonly onTree?: (done: number, total: number) => void;
  /**
   * Train only trees [start, end) of the `trees`-tree forest (a partial forest, e.g. one
   * host's share of a multi-host job). Each tree's random stream depends on its global
   * index, so the partial forests concatenated in range order equal the whole forest.
   * Recorded as training.treeRange. Default: the whole forest.
   */
  readonly treeRange?: { readonly start: number; readonly end: number };
}

/** Checks a tree range against the forest size; returns it, or the whole forest when absent. */
export function resolveTreeRange(range: TrainOptions['treeRange'], trees: number): { start: number; end: number } {
  if (range === undefined) return { start: 0, end: trees };
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start || end > trees) {
    throw new UserError(`treeRange must satisfy 0 <= start < end <= trees (${trees}), got [${start}, ${end})`);
  }
  return { start, end };
}

export function resolveHyperparameters(options: Partial<Hyperparameters>): Hyperparameters {
  const h: Hyperparameters = { ...DEFAULT_HYPERPARAMETERS };
  for (const key of Object.keys(DEFAULT_HYPERPARAMETERS) as (keyof Hyperparameters)[]) {
    if (options[key] !== undefined) (h as unknown as Record<string, unknown>)[key] = options[key];
  }
  return validateHyperparameters(h);
}

function toTreeV1(t: BuiltTree): TreeV1 {
  return {
    feature: Array.from(t.feature),
    threshold: Array.from(t.threshold),
    left: Array.from(t.left),
    right: Array.from(t.right),
    defaultLeft: Array.from(t.defaultLeft),
    value: Array.from(t.value),
    count: Array.from(t.count),
    catBits: Array.from(t.catBits),
  };
}

export async function trainForest(table: GoldTable, options: TrainOptions = {}): Promise<ForestFileV1> {
  const h = resolveHyperparameters(options);
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UserError(`seed must be an integer from 0 to 2^53-1, got ${seed}`);
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new UserError(`threads must be an integer >= 1, got ${threads}`);
  const features = options.features ?? GOLD_FEATURES;
  const range = resolveTreeRange(options.treeRange, h.trees);
  const count = range.end - range.start;

  const binStart = process.hrtime.bigint();
  const { data, specs, classCounts } = binTable(table, features, h.maxBins);
  const binSeconds = Number(process.hrtime.bigint() - binStart) / 1e9;
  const classWeight = resolveClassWeight(h.classWeight, classCounts);
  const params: TreeParams = {
    maxDepth: h.maxDepth,
    minSamplesSplit: h.minSamplesSplit,
    minSamplesLeaf: h.minSamplesLeaf,
    minImpurityDecrease: h.minImpurityDecrease,
    maxFeatures: resolveMaxFeatures(h.maxFeatures, specs.length),
    classWeight,
    bootstrap: h.bootstrap,
    sampleSize: resolveSampleSize(h.maxSamples, table.rows),
    seed,
  };
  if (options.progress !== false) {
    logEvent('train_start', {
      rows: table.rows,
      features: specs.length,
      trees: h.trees,
      ...(options.treeRange ? { tree_range: [range.start, range.end] } : {}),
      threads,
      bin_s: Math.round(binSeconds * 1000) / 1000,
    });
  }
  const progress = options.progress === false ? null : new Progress({ stage: 'train', total: count, unit: 'trees' });
  const built = await growTrees(
    data,
    params,
    count,
    threads,
    (done) => {
      progress?.update(done);
      options.onTree?.(done, count);
    },
    range.start,
  );
  progress?.finish();

  const hyperparameters: Record<string, unknown> = {
    ...h,
    maxFeaturesResolved: params.maxFeatures,
    classWeight: h.classWeight === null ? null : Object.fromEntries(CLASS_LABELS.map((c, k) => [c, classWeight[k]])),
    classWeightOption: h.classWeight,
  };
  const forest: Omit<ForestFileV1, 'sha256'> = {
    format: FOREST_FORMAT_ID,
    formatVersion: LATEST_FOREST_FORMAT_VERSION,
    classes: [...CLASS_LABELS],
    features: specs,
    aggregation: 'soft',
    trees: built.map(toTreeV1),
    training: {
      trainer: HISTOGRAM_TRAINER,
      hyperparameters,
      seed,
      datasetManifestSha256: options.datasetManifestSha256 !== undefined ? options.datasetManifestSha256 : table.manifestSha256 || null,
      rows: table.rows,
      createdAt: options.createdAt ?? new Date().toISOString(),
      codeVersion: codeVersion(),
      ...(options.featureDefinitions ? { featureDefinitions: options.featureDefinitions } : {}),
      ...(options.treeRange ? { treeRange: { start: range.start, end: range.end, trees: h.trees } } : {}),
    },
    featureStats: options.featureStats ?? {},
    metrics: options.metrics ?? {},
  };
  return sealForest(forest);
}
