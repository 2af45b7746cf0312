/**
 * The gold table: one row per labelled basket, with only what is known at checkout.
 * This is the contract between the ETL (which writes it), the trainer (which reads
 * it) and the forest file's feature spec (which serving validates requests against).
 */
import type { ClassLabel } from './schema';

export type FeatureKind = 'numeric' | 'categorical';

export interface GoldFeature {
  readonly name: string;
  readonly kind: FeatureKind;
  readonly description: string;
}

export const GOLD_FEATURES: readonly GoldFeature[] = [
  { name: 'SPEND', kind: 'numeric', description: 'basket total spend (sum of line SPEND)' },
  { name: 'QUANTITY', kind: 'numeric', description: 'basket total units (sum of line QUANTITY)' },
  { name: 'LINES', kind: 'numeric', description: 'number of transaction lines in the basket' },
  { name: 'DISTINCT_PRODUCTS', kind: 'numeric', description: 'distinct PROD_CODE' },
  { name: 'DISTINCT_CATEGORIES', kind: 'numeric', description: 'distinct PROD_CODE_10 (lowest category level)' },
  { name: 'DISTINCT_DEPARTMENTS', kind: 'numeric', description: 'distinct PROD_CODE_20' },
  { name: 'AVG_UNIT_PRICE', kind: 'numeric', description: 'SPEND / QUANTITY' },
  { name: 'MAX_UNIT_PRICE', kind: 'numeric', description: 'highest line unit price (line SPEND / line QUANTITY)' },
  { name: 'SHOP_HOUR', kind: 'numeric', description: 'hour of day, 0-23' },
  { name: 'SHOP_WEEKDAY', kind: 'numeric', description: 'day of week, 1 (Sunday) - 7 (Saturday), as dunnhumby codes it' },
  { name: 'BASKET_SIZE', kind: 'categorical', description: 'S / M / L' },
  { name: 'BASKET_TYPE', kind: 'categorical', description: 'Small Shop / Top Up / Full Shop / XX' },
  { name: 'BASKET_DOMINANT_MISSION', kind: 'categorical', description: 'Fresh / Grocery / Mixed / Non Food / XX' },
  { name: 'STORE_FORMAT', kind: 'categorical', description: 'SS / MS / LS / XLS' },
  { name: 'STORE_REGION', kind: 'categorical', description: 'e.g. E01, W02' },
  { name: 'CUST_LIFESTAGE', kind: 'categorical', description: 'customer lifestage; missing for anonymous baskets' },
  { name: 'CUST_PRICE_SENSITIVITY', kind: 'categorical', description: "customer's own LA / MM / UM / XX; missing for anonymous baskets" },
];

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
