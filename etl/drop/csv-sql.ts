/**
 * How DuckDB types the lines of a raw CSV: code columns are read straight into ENUM
 * types, so an unknown code, a non-numeric SPEND or a short line fails *that line*, with
 * DuckDB recording file, line, column and reason (store_rejects).
 */
import { Duck, sqlList, sqlString } from '../duck';
import { DOMAINS, RAW_COLUMNS, type RawColumn } from '../schema';

const HOURS = [...Array.from({ length: 24 }, (_, h) => String(h)), ...Array.from({ length: 10 }, (_, h) => `0${h}`)];
const REGIONS = [...'NESW'].flatMap((c) => Array.from({ length: 100 }, (_, i) => `${c}${String(i).padStart(2, '0')}`));

/** Raw column → type DuckDB parses it as. '' is allowed only where dunnhumby leaves a field blank. */
const RAW_TYPES: Record<(typeof RAW_COLUMNS)[number], string> = {
  SHOP_WEEK: 'INTEGER',
  SHOP_DATE: 'DATE',
  SHOP_WEEKDAY: 'ps_weekday',
  SHOP_HOUR: 'ps_hour',
  QUANTITY: 'UINTEGER',
  SPEND: 'DECIMAL(18,2)',
  PROD_CODE: 'VARCHAR',
  PROD_CODE_10: 'VARCHAR',
  PROD_CODE_20: 'VARCHAR',
  PROD_CODE_30: 'VARCHAR',
  PROD_CODE_40: 'VARCHAR',
  CUST_CODE: 'VARCHAR',
  CUST_PRICE_SENSITIVITY: 'ps_cust_sensitivity',
  CUST_LIFESTAGE: 'ps_lifestage',
  BASKET_ID: 'BIGINT',
  BASKET_SIZE: 'ps_basket_size',
  BASKET_PRICE_SENSITIVITY: 'ps_sensitivity',
  BASKET_TYPE: 'ps_basket_type',
  BASKET_DOMINANT_MISSION: 'ps_mission',
  STORE_CODE: 'VARCHAR',
  STORE_FORMAT: 'ps_store_format',
  STORE_REGION: 'ps_region',
};

/** The values of each ENUM type. */
const ENUM_DOMAINS: Record<string, readonly string[]> = {
  ps_weekday: ['1', '2', '3', '4', '5', '6', '7'],
  ps_hour: HOURS,
  ps_sensitivity: DOMAINS.PRICE_SENSITIVITY,
  ps_cust_sensitivity: ['', ...DOMAINS.PRICE_SENSITIVITY],
  ps_lifestage: ['', ...DOMAINS.CUST_LIFESTAGE],
  ps_basket_size: DOMAINS.BASKET_SIZE,
  ps_basket_type: DOMAINS.BASKET_TYPE,
  ps_mission: DOMAINS.BASKET_DOMINANT_MISSION,
  ps_store_format: DOMAINS.STORE_FORMAT,
  ps_region: REGIONS,
};

/** Whether DuckDB can cast the text to the column's type (the same rules, restated to name the failing column). */
const VALID: Record<string, (v: string) => boolean> = {
  INTEGER: (v) => /^\s*[+-]?\d+\s*$/.test(v) && Math.abs(Number(v)) < 2 ** 31,
  UINTEGER: (v) => /^\s*\+?\d+\s*$/.test(v) && Number(v) < 2 ** 32,
  BIGINT: (v) => /^\s*[+-]?\d+\s*$/.test(v) && v.trim().replace(/^[+-]/, '').length <= 18,
  'DECIMAL(18,2)': (v) => /^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$/.test(v) && v.trim().split('.')[0].replace(/^[+-]/, '').length <= 16,
  DATE: (v) => /^\d{8}$/.test(v) && !Number.isNaN(Date.parse(`${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6, 8)}T00:00:00Z`)),
  VARCHAR: () => true,
};

/**
 * The first column of a rejected line whose value does not fit its type. DuckDB 1.5
 * reports the wrong column for a failed cast when a query reads only some columns, so the
 * rejects say which column from this instead.
 */
export function firstInvalidColumn(rawLine: string, layout: readonly (RawColumn | null)[]): RawColumn | null {
  const values = rawLine.split(',').map((v) => v.replace(/^"(.*)"$/, '$1'));
  for (const [i, c] of layout.entries()) {
    if (c === null || i >= values.length) continue;
    const type = RAW_TYPES[c];
    const ok = ENUM_DOMAINS[type] ? ENUM_DOMAINS[type].includes(values[i]) : (VALID[type] ?? VALID.VARCHAR)(values[i]);
    if (!ok) return c;
  }
  return null;
}

const TYPE_DEFINITIONS: Record<string, string> = Object.fromEntries(
  Object.entries(ENUM_DOMAINS).map(([name, values]) => [name, `ENUM (${values.map(sqlString).join(', ')})`]),
);

/**
 * Silver columns: typed, code columns as VARCHAR-compatible dictionaries, blanks as NULL.
 * (Codes stay ENUMs on the way to Parquet, which stores them as dictionary strings.)
 */
export const TYPED_LINE_COLUMNS = RAW_COLUMNS.map((c) => {
  const t = RAW_TYPES[c];
  // ENUM position → number without a round trip through text ('1'..'7'; '0'..'23' then '00'..'09').
  if (c === 'SHOP_WEEKDAY') return `(enum_code(${c}) + 1)::UTINYINT AS ${c}`;
  if (c === 'SHOP_HOUR') return `(enum_code(${c}) % 24)::UTINYINT AS ${c}`;
  if (c === 'CUST_PRICE_SENSITIVITY' || c === 'CUST_LIFESTAGE') return `NULLIF(${c}, '') AS ${c}`;
  if (t === 'VARCHAR') return `NULLIF(${c}, '') AS ${c}`;
  return c;
}).join(',\n  ');

/** Typed lines (SILVER_SCHEMA's columns, plus the local file name) of a read_csv() source. */
export function typedLinesSql(csvSource: string): string {
  return `(SELECT filename, ${TYPED_LINE_COLUMNS} FROM ${csvSource})`;
}

export const SILVER_SCHEMA: { name: string; type: string }[] = RAW_COLUMNS.map((c) => {
  const t = RAW_TYPES[c];
  return { name: c, type: c === 'SHOP_WEEKDAY' || c === 'SHOP_HOUR' ? 'UTINYINT' : t.startsWith('ps_') ? 'VARCHAR' : t };
});

/** The SQL that defines the raw types (part of what silver's outputs depend on). */
export function rawTypesSql(): string {
  return Object.entries(TYPE_DEFINITIONS).map(([name, def]) => `CREATE TYPE ${name} AS ${def};`).join('\n');
}

export async function defineRawTypes(duck: Duck): Promise<void> {
  for (const [name, def] of Object.entries(TYPE_DEFINITIONS)) await duck.run(`CREATE TYPE ${name} AS ${def}`);
}

/**
 * The read_csv() call for uniform CSVs (see normalize.ts) of one column layout: exact
 * schema in the file's column order (extra columns read as text and dropped by
 * typedLinesSql), no sniffing, strict parsing, blanks kept as '' so required numerics
 * reject. Every line that does not fit is recorded in the rejects tables.
 */
export function rawCsvSource(
  localPaths: readonly string[],
  opts: { layout?: readonly (RawColumn | null)[]; rejects?: { table: string; scan: string }; ignoreErrors?: boolean } = {},
): string {
  const { layout = RAW_COLUMNS, rejects } = opts;
  const columns = `{${layout.map((c, i) => `${sqlString(c ?? `_EXTRA_${i}`)}: ${sqlString(c ? RAW_TYPES[c] : 'VARCHAR')}`).join(', ')}}`;
  const rejectOpts = rejects
    ? `, store_rejects = true, rejects_table = ${sqlString(rejects.table)}, rejects_scan = ${sqlString(rejects.scan)}`
    : opts.ignoreErrors
      ? ', ignore_errors = true'
      : '';
  return `read_csv(${sqlList(localPaths)}, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"',
    nullstr = '\u0001', dateformat = '%Y%m%d', new_line = '\\n', strict_mode = true, filename = true, columns = ${columns}${rejectOpts})`;
}

