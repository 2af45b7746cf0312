/**
 * The gold table: one row per labelled basket, with only what is known at checkout.
 * This is the contract between the ETL (which writes it), the trainer (which reads
 * it) and the forest file's feature spec (which serving validates requests against).
 */
import { FEATURE_DEFINITIONS } from './feature-definitions';
import type { ClassLabel } from './schema';

export type FeatureKind = 'numeric' | 'categorical';

export interface GoldFeature {
  readonly name: string;
  readonly kind: FeatureKind;
  readonly description: string;
}

/** The gold features, in column order: name, kind and description of each entry of FEATURE_DEFINITIONS. */
export const GOLD_FEATURES: readonly GoldFeature[] = FEATURE_DEFINITIONS.map(({ name, kind, description }) => ({ name, kind, description }));

export const GOLD_SPLITS = ['train', 'validation', 'test'] as const;
export type GoldSplit = (typeof GOLD_SPLITS)[number];

/**
 * A gold split loaded into memory, column-wise. Numeric columns use NaN for
 * missing; categorical columns use null for missing.
 */
export interface GoldTable {
  readonly rows: number;
  readonly basketIds: string[];
  readonly labels: ClassLabel[];
  readonly numeric: Record<string, Float64Array>;
  readonly categorical: Record<string, (string | null)[]>;
  /** SHA-256 of the gold manifest this table was read from (lineage). */
  readonly manifestSha256: string;
}

/**
 * Per-feature statistics of a data set. The gold manifest records them for every
 * split; the trainer copies the training split's into the forest file, where they
 * become the serving drift baseline (population stability index).
 */
export interface NumericStats {
  readonly kind: 'numeric';
  readonly count: number;
  readonly missing: number;
  readonly mean: number;
  readonly std: number;
  readonly min: number;
  readonly max: number;
  /**
   * PSI baseline: ascending cut points (deciles of the non-missing values, duplicates
   * removed). Bin i holds values v with edges[i-1] < v <= edges[i]; the last bin holds
   * v > edges[edges.length-1]. fractions has edges.length + 1 entries summing to 1.
   */
  readonly edges: number[];
  readonly fractions: number[];
}

export interface CategoricalStats {
  readonly kind: 'categorical';
  readonly count: number;
  readonly missing: number;
  /** Fraction of the non-missing values taking each category; sums to 1. */
  readonly frequencies: Record<string, number>;
}

export type FeatureStats = NumericStats | CategoricalStats;
