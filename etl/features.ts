/**
 * silver → gold: one row per labelled basket with the features a model can know at
 * checkout (GOLD_FEATURES), the label, and the split. Only baskets whose
 * BASKET_PRICE_SENSITIVITY is LA/MM/UM on every line reach gold: XX baskets are
 * unlabelled, and a basket whose lines disagree has no trustworthy label.
 */
import path from 'node:path';
import { Duck, sqlList, sqlString } from './duck';
import { GOLD_FEATURES, GOLD_SPLITS, type GoldSplit } from './gold-schema';
import { splitSql } from './split';

/** Gold file columns, in order. Numeric features are DOUBLE (NaN-free; missing is NULL). */
export const GOLD_COLUMNS: readonly { name: string; type: 'VARCHAR' | 'INTEGER' | 'DOUBLE' }[] = [
  { name: 'BASKET_ID', type: 'VARCHAR' },
  { name: 'SHOP_WEEK', type: 'INTEGER' },
  { name: 'LABEL', type: 'VARCHAR' },
  ...GOLD_FEATURES.map((f) => ({ name: f.name, type: f.kind === 'numeric' ? ('DOUBLE' as const) : ('VARCHAR' as const) })),
];

/** How each gold feature is computed from a basket's silver lines. */
export const FEATURE_SQL: Readonly<Record<string, string>> = {
  SPEND: 'sum(SPEND)::DOUBLE',
  QUANTITY: 'sum(QUANTITY)::DOUBLE',
  LINES: 'count(*)::DOUBLE',
  DISTINCT_PRODUCTS: 'count(DISTINCT PROD_CODE)::DOUBLE',
  DISTINCT_CATEGORIES: 'count(DISTINCT PROD_CODE_10)::DOUBLE',
  DISTINCT_DEPARTMENTS: 'count(DISTINCT PROD_CODE_20)::DOUBLE',
  AVG_UNIT_PRICE: 'sum(SPEND)::DOUBLE / NULLIF(sum(QUANTITY)::DOUBLE, 0)',
  MAX_UNIT_PRICE: 'max(SPEND::DOUBLE / NULLIF(QUANTITY::DOUBLE, 0))',
  SHOP_HOUR: 'min(SHOP_HOUR)::DOUBLE',
  SHOP_WEEKDAY: 'min(SHOP_WEEKDAY)::DOUBLE',
  BASKET_SIZE: 'min(BASKET_SIZE)::VARCHAR',
  BASKET_TYPE: 'min(BASKET_TYPE)::VARCHAR',
  BASKET_DOMINANT_MISSION: 'min(BASKET_DOMINANT_MISSION)::VARCHAR',
  STORE_FORMAT: 'min(STORE_FORMAT)::VARCHAR',
  STORE_REGION: 'min(STORE_REGION)::VARCHAR',
  CUST_LIFESTAGE: 'min(CUST_LIFESTAGE)::VARCHAR',
  CUST_PRICE_SENSITIVITY: 'min(CUST_PRICE_SENSITIVITY)::VARCHAR',
};

export interface BasketCounts {
  /** Baskets in silver. */
  readonly baskets: number;
  /** Labelled, consistent baskets: the gold rows. */
  readonly labelled: number;
  /** Baskets coded XX (excluded). */
  readonly unlabelled: number;
  /** Baskets whose lines disagree on BASKET_PRICE_SENSITIVITY (excluded). */
  readonly inconsistent: number;
}

/** Aggregate silver Parquet files into the temp table gold_all (one row per basket, all baskets). */
export async function buildGoldTable(duck: Duck, silverFiles: readonly string[]): Promise<BasketCounts> {
  const missing = GOLD_FEATURES.filter((f) => !(f.name in FEATURE_SQL));
  if (missing.length) throw new Error(`no SQL for gold feature(s) ${missing.map((f) => f.name).join(', ')}`);
  const features = GOLD_FEATURES.map((f) => `${FEATURE_SQL[f.name]} AS ${f.name}`).join(',\n    ');
  const source = silverFiles.length
    ? `read_parquet(${sqlList(silverFiles)}, hive_partitioning = false)`
    : `(SELECT NULL::BIGINT AS BASKET_ID WHERE false)`;
  await duck.run(`CREATE TEMP TABLE gold_all AS
  SELECT BASKET_ID AS _ID,
    BASKET_ID::VARCHAR AS BASKET_ID,
    min(SHOP_WEEK)::INTEGER AS SHOP_WEEK,
    min(BASKET_PRICE_SENSITIVITY)::VARCHAR AS _CODE,
    min(BASKET_PRICE_SENSITIVITY) IS DISTINCT FROM max(BASKET_PRICE_SENSITIVITY) AS _INCONSISTENT,
    ${features}
  FROM ${source}
  GROUP BY BASKET_ID`);
  await duck.run(`CREATE TEMP TABLE gold AS
  SELECT *, CASE _CODE WHEN 'LA' THEN 'High' WHEN 'MM' THEN 'Medium' WHEN 'UM' THEN 'Low' END AS LABEL,
         ${splitSql('BASKET_ID')} AS SPLIT
  FROM gold_all WHERE NOT _INCONSISTENT AND _CODE IN ('LA', 'MM', 'UM')`);
  const [c] = await duck.all(`SELECT
      count(*)::BIGINT AS baskets,
      count(*) FILTER (WHERE NOT _INCONSISTENT AND _CODE IN ('LA', 'MM', 'UM'))::BIGINT AS labelled,
      count(*) FILTER (WHERE NOT _INCONSISTENT AND _CODE = 'XX')::BIGINT AS unlabelled,
      count(*) FILTER (WHERE _INCONSISTENT)::BIGINT AS inconsistent
    FROM gold_all`);
  await duck.run('DROP TABLE gold_all');
  return { baskets: Number(c.baskets), labelled: Number(c.labelled), unlabelled: Number(c.unlabelled), inconsistent: Number(c.inconsistent) };
}

/**
 * Write one Parquet file per split, rows ordered by BASKET_ID, single-threaded so the
 * bytes depend only on the rows (reruns produce byte-identical files).
 */
export async function writeGoldSplits(duck: Duck, dir: string): Promise<Record<GoldSplit, { path: string; rows: number }>> {
  const out = {} as Record<GoldSplit, { path: string; rows: number }>;
  const cols = GOLD_COLUMNS.map((c) => `${c.name}::${c.type} AS ${c.name}`).join(', ');
  await duck.deterministic(async () => {
    for (const split of GOLD_SPLITS) {
      const file = path.join(dir, `${split}.parquet`);
      const [r] = await duck.all(`COPY (SELECT ${cols} FROM gold WHERE SPLIT = ${sqlString(split)} ORDER BY _ID)
        TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`);
      out[split] = { path: file, rows: Number(r.Count) };
    }
  });
  return out;
}
