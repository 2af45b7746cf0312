/**
 * The dunnhumby "Let's Get Sort-of-Real" transaction schema, as pricesense reads it
 * (raw/), and the label mapping. This module is the shared contract between the
 * synthetic generator, the ETL and everything downstream.
 */

/** The 22 raw columns, in file order. */
export const RAW_COLUMNS = [
  'SHOP_WEEK',
  'SHOP_DATE',
  'SHOP_WEEKDAY',
  'SHOP_HOUR',
  'QUANTITY',
  'SPEND',
  'PROD_CODE',
  'PROD_CODE_10',
  'PROD_CODE_20',
  'PROD_CODE_30',
  'PROD_CODE_40',
  'CUST_CODE',
  'CUST_PRICE_SENSITIVITY',
  'CUST_LIFESTAGE',
  'BASKET_ID',
  'BASKET_SIZE',
  'BASKET_PRICE_SENSITIVITY',
  'BASKET_TYPE',
  'BASKET_DOMINANT_MISSION',
  'STORE_CODE',
  'STORE_FORMAT',
  'STORE_REGION',
] as const;
export type RawColumn = (typeof RAW_COLUMNS)[number];

/** Code domains as they appear in dunnhumby. XX means "unclassified" wherever it appears. */
export const DOMAINS = {
  PRICE_SENSITIVITY: ['LA', 'MM', 'UM', 'XX'],
  BASKET_SIZE: ['S', 'M', 'L'],
  BASKET_TYPE: ['Small Shop', 'Top Up', 'Full Shop', 'XX'],
  BASKET_DOMINANT_MISSION: ['Fresh', 'Grocery', 'Mixed', 'Non Food', 'XX'],
  STORE_FORMAT: ['SS', 'MS', 'LS', 'XLS'],
  CUST_LIFESTAGE: ['YA', 'OA', 'YF', 'OF', 'PE', 'OT', 'XX'],
} as const;

/** Store regions look like E01, W02, N03, S01: a compass letter and two digits. */
export const STORE_REGION_PATTERN = /^[NESW]\d{2}$/;

/** Model classes, in the fixed order used for probability vectors everywhere. */
export const CLASS_LABELS = ['Low', 'Medium', 'High'] as const;
export type ClassLabel = (typeof CLASS_LABELS)[number];

/**
 * dunnhumby codes basket price sensitivity as LA (less affluent: most price
 * sensitive), MM (mid market) and UM (up market: least price sensitive).
 * XX is unclassified: such baskets are unlabelled and never reach gold.
 */
export const LABEL_BY_CODE: Readonly<Record<string, ClassLabel>> = {
  LA: 'High',
  MM: 'Medium',
  UM: 'Low',
};
