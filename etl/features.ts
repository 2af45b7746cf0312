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

/**
 * How each gold feature is computed from a basket's silver lines. The DISTINCT_* features
 * are not listed here: they are computed by distinctCountSql() (see buildGoldTable).
 */
export const FEATURE_SQL: Readonly<Record<string, string>> = {
  SPEND: 'sum(SPEND)::DOUBLE',
  QUANTITY: 'sum(QUANTITY)::DOUBLE',
  LINES: 'count(*)::DOUBLE',
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

/** Distinct-count features: gold feature → the silver code column whose distinct non-null values it counts. */
export const DISTINCT_FEATURES: Readonly<Record<string, string>> = {
  DISTINCT_PRODUCTS: 'PROD_CODE',
  DISTINCT_CATEGORIES: 'PROD_CODE_10',
  DISTINCT_DEPARTMENTS: 'PROD_CODE_20',
};

/**
 * Silver lines the basket aggregation may hold per pass, per byte of DuckDB memory
 * limit. The fast distinct count keeps each basket's code hashes in list states, which
 * DuckDB cannot spill (2.7M lines ran out of memory at a 150MB limit and fit in 250MB,
 * so 250 B per line leaves room for the rest of the aggregate); past this the aggregation runs in
 * several passes, each over the baskets of one BASKET_ID hash bucket, so memory stays
 * bounded however large the drop.
 */
const LIST_BYTES_PER_LINE = 250;

/**
 * The distinct-count expression for one code column.
 *
 * count(DISTINCT code) per basket was the most expensive part of silver → gold (DuckDB
 * builds a separate hash table of (basket, code) pairs per distinct aggregate: ≈ 1 CPU-s
 * per column per 2.7M lines). Per basket the lines are few, so collecting 64-bit hashes
 * of the codes into a list and de-duplicating it is 2–3× cheaper (bench figures in
 * docs/etl.md). It is exact, not
 * approximate, because the caller first checks that hash() is injective on the codes
 * actually present (hashesInjective); otherwise it falls back to count(DISTINCT code).
 */
function distinctCountSql(column: string, viaHash: boolean): string {
  return viaHash
    ? `len(list_distinct(list(CASE WHEN ${column} IS NOT NULL THEN hash(${column}) END)))::DOUBLE` // list_distinct drops the NULLs
    : `count(DISTINCT ${column})::DOUBLE`;
}

/** True when hash() maps the distinct non-null values of each column to distinct hashes. */
async function hashesInjective(duck: Duck, source: string, columns: readonly string[]): Promise<boolean> {
  const checks = columns.map((c, i) => `count(DISTINCT ${c}) = count(DISTINCT hash(${c})) FILTER (WHERE ${c} IS NOT NULL) AS ok${i}`);
  const [row] = await duck.all(`SELECT ${checks.join(', ')} FROM ${source}`);
  return columns.every((_, i) => row[`ok${i}`] === true);
}

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

export interface GoldBuildOptions {
  /** Silver rows (for sizing the passes); when unknown, one pass. */
  readonly silverRows?: number;
  /** DuckDB memory limit in bytes (Duck.memoryLimitBytes); sizes the passes. */
  readonly memoryLimitBytes?: number;
  /** Override the silver rows per aggregation pass (default: from memoryLimitBytes). */
  readonly rowsPerPass?: number;
  /** 'exact' always uses count(DISTINCT code); 'auto' (default) uses the hash lists when they are provably exact. */
  readonly distinct?: 'auto' | 'exact';
}

export interface GoldBuildPlan {
  /** Whether DISTINCT_* used hash lists (true) or count(DISTINCT) (false). */
  readonly viaHash: boolean;
  readonly passes: number;
}

/**
 * Aggregate silver Parquet files into the temp table gold_all (one row per basket, all
 * baskets, with LABEL and SPLIT) and the view gold (the labelled, consistent baskets).
 * One GROUP BY over silver; the split hash is computed in the same statement.
 */
export async function buildGoldTable(duck: Duck, silverFiles: readonly string[], opts: GoldBuildOptions = {}): Promise<BasketCounts & { plan: GoldBuildPlan }> {
  const missing = GOLD_FEATURES.filter((f) => !(f.name in FEATURE_SQL) && !(f.name in DISTINCT_FEATURES));
  if (missing.length) throw new Error(`no SQL for gold feature(s) ${missing.map((f) => f.name).join(', ')}`);
  const source = silverFiles.length
    ? `read_parquet(${sqlList(silverFiles)}, hive_partitioning = false)`
    : `(SELECT NULL::BIGINT AS BASKET_ID, NULL::VARCHAR AS PROD_CODE, NULL::VARCHAR AS PROD_CODE_10, NULL::VARCHAR AS PROD_CODE_20 WHERE false)`;
  const codeColumns = Object.values(DISTINCT_FEATURES);
  const viaHash = silverFiles.length > 0 && opts.distinct !== 'exact' && (await hashesInjective(duck, source, codeColumns));
  const features = GOLD_FEATURES.map((f) =>
    f.name in DISTINCT_FEATURES ? `${distinctCountSql(DISTINCT_FEATURES[f.name], viaHash)} AS ${f.name}` : `${FEATURE_SQL[f.name]} AS ${f.name}`,
  ).join(',\n    ');
  const rowsPerPass = opts.rowsPerPass ?? (opts.memoryLimitBytes ? Math.max(1_000_000, Math.floor(opts.memoryLimitBytes / LIST_BYTES_PER_LINE)) : Infinity);
  const passes = viaHash && opts.silverRows ? Math.max(1, Math.ceil(opts.silverRows / rowsPerPass)) : 1;
  for (let pass = 0; pass < passes; pass++) {
    const where = passes > 1 ? `WHERE hash(BASKET_ID) % ${passes} = ${pass}` : '';
    const select = `SELECT *,
    CASE WHEN NOT _INCONSISTENT THEN CASE _CODE WHEN 'LA' THEN 'High' WHEN 'MM' THEN 'Medium' WHEN 'UM' THEN 'Low' END END AS LABEL,
    CASE WHEN NOT _INCONSISTENT AND _CODE IN ('LA', 'MM', 'UM') THEN ${splitSql('BASKET_ID')} END AS SPLIT
  FROM (SELECT BASKET_ID AS _ID,
    BASKET_ID::VARCHAR AS BASKET_ID,
    min(SHOP_WEEK)::INTEGER AS SHOP_WEEK,
    min(BASKET_PRICE_SENSITIVITY)::VARCHAR AS _CODE,
    min(BASKET_PRICE_SENSITIVITY) IS DISTINCT FROM max(BASKET_PRICE_SENSITIVITY) AS _INCONSISTENT,
    ${features}
  FROM ${source} ${where}
  GROUP BY BASKET_ID)`;
    await duck.run(pass === 0 ? `CREATE TEMP TABLE gold_all AS ${select}` : `INSERT INTO gold_all ${select}`);
  }
  await duck.run(`CREATE TEMP VIEW gold AS SELECT * FROM gold_all WHERE SPLIT IS NOT NULL`);
  const [c] = await duck.all(`SELECT
      count(*)::BIGINT AS baskets,
      count(*) FILTER (WHERE SPLIT IS NOT NULL)::BIGINT AS labelled,
      count(*) FILTER (WHERE NOT _INCONSISTENT AND _CODE = 'XX')::BIGINT AS unlabelled,
      count(*) FILTER (WHERE _INCONSISTENT)::BIGINT AS inconsistent
    FROM gold_all`);
  return {
    baskets: Number(c.baskets),
    labelled: Number(c.labelled),
    unlabelled: Number(c.unlabelled),
    inconsistent: Number(c.inconsistent),
    plan: { viaHash, passes },
  };
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
