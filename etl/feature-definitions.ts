/**
 * The gold features, each defined once: what it aggregates over a basket's typed lines.
 * Everything else is derived from this list — the ETL's SQL (etl/features.ts,
 * featureSql), the TypeScript computation the API runs on a raw-line request
 * (etl/basket-features.ts), the gold column list (GOLD_FEATURES) and the definition
 * version recorded in gold's manifest and in every forest trained on it. Adding a
 * feature is adding one entry here.
 *
 * Semantics, the same on both sides (docs/etl.md, "Feature definitions"):
 * - a line expression reads typed columns (etl/raw-line.ts): whole numbers and SPEND
 *   (exact cents) are exact, codes are strings, blanks are null;
 * - `ratio` divides as doubles and is null when the denominator is 0 or null;
 * - `sum`, `min`, `max` are exact over the basket's non-null values (null when there are
 *   none); `min`/`max` of a code follow its domain order (DuckDB's ENUM order), not
 *   alphabetical order; `count` counts lines; `distinct` counts distinct non-null values;
 * - a numeric feature is rounded once, at the end, to the nearest double (an exact sum
 *   of cents becomes cents / 100); a categorical feature is the code as text.
 *
 * Partial aggregates are never combined: silver keeps one aggregate per (file, basket),
 * and a basket whose lines are spread over files is aggregated again from all its lines
 * (etl/pipeline.ts), because distinct counts and ratios cannot be combined from parts.
 *
 * Dependency-free apart from node:crypto and the schema modules.
 */
import { createHash } from 'node:crypto';
import type { FeatureKind } from './gold-schema';
import { RAW_TYPES, ENUM_DOMAINS } from './raw-line';
import type { RawColumn } from './schema';

/** A value per line. */
export type LineExpr = { readonly column: RawColumn } | { readonly ratio: readonly [LineExpr, LineExpr] };

/** A value per basket, from its lines. */
export type BasketExpr =
  | { readonly count: 'lines' }
  | { readonly sum: LineExpr }
  | { readonly min: LineExpr }
  | { readonly max: LineExpr }
  | { readonly distinct: LineExpr }
  | { readonly ratio: readonly [BasketExpr, BasketExpr] };

export interface FeatureDefinition {
  readonly name: string;
  readonly kind: FeatureKind;
  readonly description: string;
  readonly value: BasketExpr;
}

const col = (column: RawColumn): LineExpr => ({ column });

export const FEATURE_DEFINITIONS: readonly FeatureDefinition[] = [
  { name: 'SPEND', kind: 'numeric', description: 'basket total spend (sum of line SPEND)', value: { sum: col('SPEND') } },
  { name: 'QUANTITY', kind: 'numeric', description: 'basket total units (sum of line QUANTITY)', value: { sum: col('QUANTITY') } },
  { name: 'LINES', kind: 'numeric', description: 'number of transaction lines in the basket', value: { count: 'lines' } },
  { name: 'DISTINCT_PRODUCTS', kind: 'numeric', description: 'distinct PROD_CODE', value: { distinct: col('PROD_CODE') } },
  { name: 'DISTINCT_CATEGORIES', kind: 'numeric', description: 'distinct PROD_CODE_10 (lowest category level)', value: { distinct: col('PROD_CODE_10') } },
  { name: 'DISTINCT_DEPARTMENTS', kind: 'numeric', description: 'distinct PROD_CODE_20', value: { distinct: col('PROD_CODE_20') } },
  { name: 'AVG_UNIT_PRICE', kind: 'numeric', description: 'SPEND / QUANTITY', value: { ratio: [{ sum: col('SPEND') }, { sum: col('QUANTITY') }] } },
  {
    name: 'MAX_UNIT_PRICE',
    kind: 'numeric',
    description: 'highest line unit price (line SPEND / line QUANTITY)',
    value: { max: { ratio: [col('SPEND'), col('QUANTITY')] } },
  },
  { name: 'SHOP_HOUR', kind: 'numeric', description: 'hour of day, 0-23', value: { min: col('SHOP_HOUR') } },
  { name: 'SHOP_WEEKDAY', kind: 'numeric', description: 'day of week, 1 (Sunday) - 7 (Saturday), as dunnhumby codes it', value: { min: col('SHOP_WEEKDAY') } },
  { name: 'BASKET_SIZE', kind: 'categorical', description: 'S / M / L', value: { min: col('BASKET_SIZE') } },
  { name: 'BASKET_TYPE', kind: 'categorical', description: 'Small Shop / Top Up / Full Shop / XX', value: { min: col('BASKET_TYPE') } },
  { name: 'BASKET_DOMINANT_MISSION', kind: 'categorical', description: 'Fresh / Grocery / Mixed / Non Food / XX', value: { min: col('BASKET_DOMINANT_MISSION') } },
  { name: 'STORE_FORMAT', kind: 'categorical', description: 'SS / MS / LS / XLS', value: { min: col('STORE_FORMAT') } },
  { name: 'STORE_REGION', kind: 'categorical', description: 'e.g. E01, W02', value: { min: col('STORE_REGION') } },
  { name: 'CUST_LIFESTAGE', kind: 'categorical', description: 'customer lifestage; missing for anonymous baskets', value: { min: col('CUST_LIFESTAGE') } },
  {
    name: 'CUST_PRICE_SENSITIVITY',
    kind: 'categorical',
    description: "customer's own LA / MM / UM / XX; missing for anonymous baskets",
    value: { min: col('CUST_PRICE_SENSITIVITY') },
  },
];

/** The raw columns an expression reads. */
export function columnsOf(e: LineExpr | BasketExpr): RawColumn[] {
  if ('column' in e) return [e.column];
  if ('ratio' in e) return [...columnsOf(e.ratio[0] as LineExpr | BasketExpr), ...columnsOf(e.ratio[1] as LineExpr | BasketExpr)];
  if ('count' in e) return [];
  return columnsOf('sum' in e ? e.sum : 'min' in e ? e.min : 'max' in e ? e.max : e.distinct);
}

/** The raw columns the features read, in raw-schema order. */
export const FEATURE_SOURCE_COLUMNS: readonly RawColumn[] = (Object.keys(RAW_TYPES) as RawColumn[]).filter((c) =>
  FEATURE_DEFINITIONS.some((d) => columnsOf(d.value).includes(c)),
);

/**
 * The definition version: a hash of what decides a feature's value — every definition
 * (name, kind, expression) and the types and domains of the raw columns they read.
 * Descriptions are left out. Recorded in gold's manifest and copied into the forest; the
 * API computes features from raw lines only for a forest trained with this version.
 */
export const FEATURE_DEFINITIONS_VERSION: string = (() => {
  const types = Object.fromEntries(FEATURE_SOURCE_COLUMNS.map((c) => [c, { type: RAW_TYPES[c], domain: ENUM_DOMAINS[RAW_TYPES[c]] ?? null }]));
  const definitions = FEATURE_DEFINITIONS.map((d) => ({ name: d.name, kind: d.kind, value: d.value }));
  const canonical = JSON.stringify({ semantics: 'pricesense.features/1', definitions, types });
  return `sha256:${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`;
})();
