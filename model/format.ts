/**
 * Forest file: the in-memory types. One self-describing JSON document holding
 * everything needed to score raw inputs (feature spec with the categorical
 * encodings learned at training time), the trees as flat arrays, and the lineage
 * and metrics needed to govern it. docs/model-format.md is the human reference;
 * model/forest-schema.ts validates documents against it on load.
 *
 * In memory a forest is always this shape (ForestFileV1, trees as TreeV1 arrays);
 * `formatVersion` says how it is serialized: v1 writes the trees as JSON arrays,
 * v2 as compact base64 arrays in pre-order (model/forest-codec.ts). Both hash their
 * serialized canonical content.
 */
import type { FeatureKind, FeatureStats } from '../etl/gold-schema';

export const FOREST_FORMAT_ID = 'pricesense.forest';
/** Format v1: trees as JSON arrays of numbers, one entry per node. */
export const FOREST_FORMAT_VERSION = 1;
/** Format v2: the same forest with its trees encoded compactly (docs/model-format.md, "Format v2"). */
export const FOREST_FORMAT_V2 = 2;
/** The version pricesense writes new forests in (the trainer, the importer, `model upgrade`). */
export const LATEST_FOREST_FORMAT_VERSION = FOREST_FORMAT_V2;
export type ForestFormatVersion = typeof FOREST_FORMAT_VERSION | typeof FOREST_FORMAT_V2;

export interface NumericFeatureSpec {
  readonly name: string;
  readonly kind: Extract<FeatureKind, 'numeric'>;
}

export interface CategoricalFeatureSpec {
  readonly name: string;
  readonly kind: Extract<FeatureKind, 'categorical'>;
  /** The encoding: a category's code is its index here. Values not listed are "unknown". */
  readonly categories: string[];
}

export type FeatureSpec = NumericFeatureSpec | CategoricalFeatureSpec;

/**
 * One tree, struct-of-arrays. Node 0 is the root; every array has one entry per
 * node (catBits aside). A v2 file is read into this shape with its nodes numbered
 * in pre-order (a node's left child follows it). For node i:
 * - feature[i]: index into the forest's features, or -1 for a leaf (a leaf has
 *   left[i] = right[i] = -1; its threshold and defaultLeft are not used: write 0).
 * - numeric split: x <= threshold[i] goes to left[i], otherwise right[i].
 * - categorical split: threshold[i] is an offset into catBits; the category with
 *   code c goes left when bit c of the words catBits[offset ..] is set
 *   (word c >>> 5, bit c & 31), otherwise right. The feature's word count is
 *   ceil(categories.length / 32).
 * - missing (null, undefined, NaN) or unknown categorical values go left when
 *   defaultLeft[i] is 1, right when 0: the direction the training rows with
 *   missing values took, or the larger child when there were none.
 * - value[i*K .. i*K+K): class distribution of the training rows that reached the
 *   node (K classes, sums to 1); at a leaf it is the leaf's prediction. Internal
 *   values make Saabas explanations possible.
 * - count[i]: training rows (bootstrap weight) that reached the node.
 */
export interface TreeV1 {
  readonly feature: number[];
  readonly threshold: number[];
  readonly left: number[];
  readonly right: number[];
  readonly defaultLeft: number[];
  readonly value: number[];
  readonly count: number[];
  readonly catBits: number[];
}

/**
 * How per-tree outputs combine:
 * - 'soft': mean of the trees' leaf class distributions (pricesense's own forests);
 * - 'hard': each tree votes for its leaf's argmax class; probabilities are vote
 *   fractions, ties go to the lowest class index (imported ml-random-forest models,
 *   to reproduce its predict()).
 */
export type Aggregation = 'soft' | 'hard';

/**
 * Which class wins a tied 'hard' vote (ignored for 'soft'):
 * - 'lowest-index' (the default when absent): the tied class listed first in classes;
 * - 'first-to-reach': the tied class whose vote count reached the winning count first,
 *   scanning trees in file order. This is ml-random-forest's rule (ml-array-mode), so
 *   imported models reproduce its predict() exactly.
 */
export type VoteTieBreak = 'lowest-index' | 'first-to-reach';

export interface ClassMetrics {
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  readonly support: number;
}

export interface EvaluationMetrics {
  readonly split: string;
  readonly rows: number;
  readonly accuracy: number;
  readonly macroF1: number;
  readonly logLoss: number;
  readonly perClass: Record<string, ClassMetrics>;
  /** confusion[actual][predicted], in class order. */
  readonly confusion: number[][];
  readonly [extra: string]: unknown;
}

export interface ForestFileV1 {
  readonly format: typeof FOREST_FORMAT_ID;
  /** How the document is serialized (and so what its sha256 is computed over): 1 or 2. */
  readonly formatVersion: ForestFormatVersion;
  readonly classes: string[];
  readonly features: FeatureSpec[];
  readonly aggregation: Aggregation;
  /** Tie rule for 'hard' aggregation; absent means 'lowest-index'. */
  readonly voteTieBreak?: VoteTieBreak;
  readonly trees: TreeV1[];
  readonly training: {
    readonly trainer: string;
    readonly hyperparameters: Record<string, unknown>;
    readonly seed: number;
    /** SHA-256 of the gold manifest the forest was trained on (lineage). */
    readonly datasetManifestSha256: string | null;
    readonly rows: number;
    readonly createdAt: string;
    readonly codeVersion?: string;
    /**
     * The feature-definition version of the gold the forest was trained on
     * (etl/feature-definitions.ts). The API computes features from raw lines only for a
     * forest whose version is its own; absent (older or imported forests): raw lines refused.
     */
    readonly featureDefinitions?: string;
    /**
     * Present on a partial forest only: it holds trees [start, end) of a `trees`-tree
     * forest (one host's share of a multi-host training job; see docs/sagemaker.md).
     */
    readonly treeRange?: { readonly start: number; readonly end: number; readonly trees: number };
  };
  /** Per-feature statistics of the training data: the serving drift baseline. */
  readonly featureStats: Record<string, FeatureStats>;
  /** Evaluation results (test split, gates) when the forest has been evaluated. */
  readonly metrics: Record<string, unknown>;
  /** SHA-256 (hex) of the canonical JSON of every field but this one. */
  readonly sha256: string;
}
