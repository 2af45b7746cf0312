/**
 * How DuckDB types the lines of a raw CSV: code columns are read straight into ENUM
 * types, so an unknown code, a non-numeric SPEND or a short line fails *that line*, with
 * DuckDB recording file, line, column and reason (store_rejects).
 */
import { type Duck, sqlList, sqlString } from '../duck';
import { ENUM_DOMAINS, RAW_TYPES, validRawValue } from '../raw-line';
import { RAW_COLUMNS, type RawColumn } from '../schema';

/**
 * The first column of a rejected line whose value does not fit its type. DuckDB 1.5
 * reports the wrong column for a failed cast when a query reads only some columns, so the
 * rejects say which column from this instead.
 */
export function firstInvalidColumn(rawLine: string, layout: readonly (RawColumn | null)[]): RawColumn | null {
  const values = rawLine.split(',').map((v) => v.replace(/^"(.*)"$/, '$1'));
  for (const [i, c] of layout.entries()) {
    if (c === null || i >= values.length) continue;
    if (!validRawValue(c, values[i])) return c;
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

