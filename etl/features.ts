/**
 * silver → gold: one row per labelled basket with the features a model can know at
 * checkout (GOLD_FEATURES), the label, and the split. Only baskets whose
 * BASKET_PRICE_SENSITIVITY is LA/MM/UM on every line reach gold: XX baskets are
 * unlabelled, and a basket whose lines disagree has no trustworthy label.
 */
import path from 'node:path';
import { type Duck, sqlString } from './duck';
import { FEATURE_DEFINITIONS, type BasketExpr, type FeatureDefinition, type LineExpr } from './feature-definitions';
import { GOLD_FEATURES, GOLD_SPLITS, type GoldSplit } from './gold-schema';
import { splitSql } from './split';

/** Gold file columns, in order. Numeric features are DOUBLE (NaN-free; missing is NULL). */
export const GOLD_COLUMNS: readonly { name: string; type: 'VARCHAR' | 'INTEGER' | 'DOUBLE' }[] = [
  { name: 'BASKET_ID', type: 'VARCHAR' },
  { name: 'SHOP_WEEK', type: 'INTEGER' },
  { name: 'LABEL', type: 'VARCHAR' },
  ...GOLD_FEATURES.map((f) => ({ name: f.name, type: f.kind === 'numeric' ? ('DOUBLE' as const) : ('VARCHAR' as const) })),
];

/** The SQL of a line or basket expression, and whether DuckDB types it DOUBLE (exact values are cast only where a double is needed). */
function exprSql(e: LineExpr | BasketExpr): { sql: string; double: boolean } {
  if ('column' in e) return { sql: e.column, double: false };
  if ('ratio' in e) return { sql: `${asDouble(e.ratio[0])} / NULLIF(${asDouble(e.ratio[1])}, 0)`, double: true };
  if ('count' in e) return { sql: 'count(*)', double: false };
  // Each basket collects its codes in a list and counts the distinct entries (see distinct below).
  if ('distinct' in e) return { sql: `len(list_distinct(list(${exprSql(e.distinct).sql})))`, double: false };
  const [fn, arg] = 'sum' in e ? ['sum', e.sum] : 'min' in e ? ['min', e.min] : ['max', e.max];
  const inner = exprSql(arg);
  return { sql: `${fn}(${inner.sql})`, double: inner.double };
}

function asDouble(e: LineExpr | BasketExpr): string {
  const { sql, double } = exprSql(e);
  return double ? sql : `${sql}::DOUBLE`;
}

/**
 * A gold feature's aggregate over a basket's typed lines (the columns and types of
 * SILVER_SCHEMA), derived from its definition (etl/feature-definitions.ts). DuckDB's
 * semantics are the definitions': sum/min/max skip NULLs, min/max of an ENUM column
 * follow its domain order, a DECIMAL sum is exact until the final ::DOUBLE. Distinct
 * counts use len(list_distinct(list(code))): exact (no hashing), NULL-free, and 2–3×
 * cheaper than count(DISTINCT code), for which DuckDB builds a separate (basket, code)
 * hash table per column (≈ 1 CPU-s per column per 2.7M lines).
 */
export function featureSql(definition: FeatureDefinition): string {
  return definition.kind === 'numeric' ? asDouble(definition.value) : `${exprSql(definition.value).sql}::VARCHAR`;
}

/**
 * Lines the basket aggregation may hold at once, per byte of DuckDB memory limit. The
 * distinct counts keep each basket's codes in list states, which DuckDB cannot spill
 * (2.7M lines ran out of memory at a 150MB limit and fit in 250MB, so 250 B per line leaves
 * room for the rest of the aggregate). Past this the ingest parses in several batches, or
 * aggregates one large file in several passes, each over one BASKET_ID hash bucket.
 */
export const LIST_BYTES_PER_LINE = 250;

/**
 * The per-basket aggregate over typed lines (the columns and types of SILVER_SCHEMA):
 * one row per BASKET_ID — and per `groupBy` column, which the ingest uses to keep each
 * raw file's baskets apart — with every gold feature, SHOP_WEEK, the lowest and highest
 * BASKET_PRICE_SENSITIVITY code (equal unless the lines disagree) and the date range.
 * The ingest runs it on each file's lines; the gold build unions its results, and runs it
 * again only for baskets whose lines are spread over several files.
 */
export function basketAggregateSql(lines: string, opts: { groupBy?: readonly string[]; where?: string } = {}): string {
  const features = FEATURE_DEFINITIONS.map((f) => `${featureSql(f)} AS ${f.name}`).join(',\n    ');
  const keys = [...(opts.groupBy ?? []), 'BASKET_ID'];
  return `SELECT ${keys.join(', ')},
    min(SHOP_WEEK)::INTEGER AS SHOP_WEEK,
    min(BASKET_PRICE_SENSITIVITY)::VARCHAR AS _CODE_MIN,
    max(BASKET_PRICE_SENSITIVITY)::VARCHAR AS _CODE_MAX,
    min(SHOP_DATE) AS _FIRST_DATE,
    max(SHOP_DATE) AS _LAST_DATE,
    ${features}
  FROM ${lines}${opts.where ? ` WHERE ${opts.where}` : ''}
  GROUP BY ${keys.join(', ')}`;
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

/**
 * Label and split the per-basket rows `baskets` (SQL yielding basketAggregateSql's
 * columns, one row per basket) into the temp table gold_all (all baskets, with LABEL and
 * SPLIT) and the view gold (the labelled, consistent baskets).
 */
export async function buildGoldTable(duck: Duck, baskets: string): Promise<BasketCounts> {
  await duck.run(`CREATE OR REPLACE TEMP TABLE gold_all AS SELECT *,
    CASE WHEN NOT _INCONSISTENT THEN CASE _CODE WHEN 'LA' THEN 'High' WHEN 'MM' THEN 'Medium' WHEN 'UM' THEN 'Low' END END AS LABEL,
    CASE WHEN NOT _INCONSISTENT AND _CODE IN ('LA', 'MM', 'UM') THEN ${splitSql('BASKET_ID')} END AS SPLIT
  FROM (SELECT BASKET_ID AS _ID, BASKET_ID::VARCHAR AS BASKET_ID, SHOP_WEEK, _CODE_MIN AS _CODE, _CODE_MIN IS DISTINCT FROM _CODE_MAX AS _INCONSISTENT,
    ${GOLD_FEATURES.map((f) => f.name).join(', ')}
    FROM ${baskets})`);
  await duck.run(`CREATE OR REPLACE TEMP VIEW gold AS SELECT * FROM gold_all WHERE SPLIT IS NOT NULL`);
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
  };
}

/**
 * Write one Parquet file per split (zstd level 1: level 3, the default, cost about twice
 * the CPU of the whole write for files a few % smaller), rows ordered by BASKET_ID, single-threaded so the
 * bytes depend only on the rows (reruns produce byte-identical files).
 */
export async function writeGoldSplits(duck: Duck, dir: string): Promise<Record<GoldSplit, { path: string; rows: number }>> {
  const out = {} as Record<GoldSplit, { path: string; rows: number }>;
  const cols = GOLD_COLUMNS.map((c) => `${c.name}::${c.type} AS ${c.name}`).join(', ');
  await duck.deterministic(async () => {
    for (const split of GOLD_SPLITS) {
      const file = path.join(dir, `${split}.parquet`);
      const [r] = await duck.all(`COPY (SELECT ${cols} FROM gold WHERE SPLIT = ${sqlString(split)} ORDER BY _ID)
        TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)`);
      out[split] = { path: file, rows: Number(r.Count) };
    }
  });
  return out;
}
