/**
 * The synthetic data's ground truth: the probability of each class given a basket's
 * gold features. It reads only features that survive into gold (etl/gold-schema.ts), is
 * piecewise constant over axis-aligned regions (so a tree ensemble can represent it
 * exactly), and is full of interactions and thresholds that a linear model cannot
 * express: the price bands move with the store format, and each band has exceptions
 * that depend on a second or third feature. docs/synthetic-data.md shows it as a tree.
 */
import type { GoldTable } from '../gold-schema';
import type { ClassLabel } from '../schema';

export const LABEL_FUNCTION_VERSION = 'pricesense-synth-label/1';

/** The gold features the label function reads (names as in GOLD_FEATURES). */
export interface LabelFeatures {
  readonly AVG_UNIT_PRICE: number;
  readonly MAX_UNIT_PRICE: number;
  readonly LINES: number;
  readonly DISTINCT_DEPARTMENTS: number;
  readonly SHOP_HOUR: number;
  readonly BASKET_TYPE: string;
  readonly BASKET_DOMINANT_MISSION: string;
  readonly STORE_FORMAT: string;
  /** null for anonymous baskets. */
  readonly CUST_PRICE_SENSITIVITY: string | null;
}

/** Below this average unit price (GBP) a basket is a value basket; convenience formats price higher. */
export const VALUE_PRICE: Readonly<Record<string, number>> = { SS: 1.55, MS: 1.42, LS: 1.25, XLS: 1.15 };
/** At or above this average unit price (GBP) a basket is a premium basket. */
export const PREMIUM_PRICE: Readonly<Record<string, number>> = { SS: 3.2, MS: 2.95, LS: 2.6, XLS: 2.45 };

export interface LabelRegion {
  /** Short rule name, as in docs/synthetic-data.md. */
  readonly rule: string;
  readonly dominant: ClassLabel;
  /** Probability of the dominant class. */
  readonly confidence: number;
}

/** Which leaf of the label tree a basket falls in. */
export function labelRegion(f: LabelFeatures): LabelRegion {
  const value = VALUE_PRICE[f.STORE_FORMAT] ?? VALUE_PRICE.LS;
  const premium = PREMIUM_PRICE[f.STORE_FORMAT] ?? PREMIUM_PRICE.LS;
  if (f.AVG_UNIT_PRICE < value) {
    if (f.BASKET_TYPE === 'Full Shop' && f.DISTINCT_DEPARTMENTS >= 9) return { rule: 'value-basket/family-full-shop', dominant: 'Medium', confidence: 0.8 };
    return { rule: 'value-basket', dominant: 'High', confidence: 0.91 };
  }
  if (f.AVG_UNIT_PRICE >= premium) {
    if (f.SHOP_HOUR >= 20 && (f.BASKET_TYPE === 'Small Shop' || f.BASKET_TYPE === 'Top Up')) {
      return { rule: 'premium-basket/late-top-up', dominant: 'Medium', confidence: 0.82 };
    }
    return { rule: 'premium-basket', dominant: 'Low', confidence: 0.89 };
  }
  if (f.LINES >= 15 && f.DISTINCT_DEPARTMENTS >= 12 && f.MAX_UNIT_PRICE >= 6) {
    return { rule: 'mid-basket/broad-with-premium', dominant: 'Low', confidence: 0.84 };
  }
  if (f.CUST_PRICE_SENSITIVITY === 'LA' && f.BASKET_DOMINANT_MISSION === 'Grocery') {
    return { rule: 'mid-basket/value-customer-grocery', dominant: 'High', confidence: 0.83 };
  }
  return { rule: 'mid-basket', dominant: 'Medium', confidence: 0.86 };
}

/**
 * Class probabilities in CLASS_LABELS order [Low, Medium, High]. The dominant class
 * gets its leaf's confidence; of the rest, an extreme class gives 3/4 to Medium and
 * 1/4 to the opposite extreme, and Medium splits it evenly.
 */
export function classProbabilities(f: LabelFeatures): [number, number, number] {
  const { dominant, confidence } = labelRegion(f);
  const rest = 1 - confidence;
  if (dominant === 'Low') return [confidence, rest * 0.75, rest * 0.25];
  if (dominant === 'High') return [rest * 0.25, rest * 0.75, confidence];
  return [rest / 2, confidence, rest / 2];
}

/**
 * The label function's inputs read back from gold row i: lets tests and tools compute
 * the true class probabilities of gold data (and so the Bayes-optimal accuracy).
 */
export function labelFeaturesOfGoldRow(t: GoldTable, i: number): LabelFeatures {
  return {
    AVG_UNIT_PRICE: t.numeric.AVG_UNIT_PRICE[i],
    MAX_UNIT_PRICE: t.numeric.MAX_UNIT_PRICE[i],
    LINES: t.numeric.LINES[i],
    DISTINCT_DEPARTMENTS: t.numeric.DISTINCT_DEPARTMENTS[i],
    SHOP_HOUR: t.numeric.SHOP_HOUR[i],
    BASKET_TYPE: t.categorical.BASKET_TYPE[i] ?? '',
    BASKET_DOMINANT_MISSION: t.categorical.BASKET_DOMINANT_MISSION[i] ?? '',
    STORE_FORMAT: t.categorical.STORE_FORMAT[i] ?? '',
    CUST_PRICE_SENSITIVITY: t.categorical.CUST_PRICE_SENSITIVITY[i],
  };
}
