/**
 * Raw transaction lines as batch-scoring input: a dunnhumby line file as a weekly drop
 * looks (.csv or .csv.gz; any column order, CRLF, BOM, bad lines) is read exactly as the
 * ETL reads it — the ETL's byte pass and header check (etl/ingest.ts readPart), its
 * DuckDB schema and casts (etl/drop/csv-sql.ts), its reject reasons — and grouped into
 * baskets by BASKET_ID; each basket's features are computed by the ETL's own feature
 * definitions (etl/basket-features.ts), so a basket scored from its lines gets the
 * prediction its gold row gets.
 *
 * A line the ETL would reject is left out of its basket (as the ETL leaves it out of
 * silver) and listed with its file line number and the ETL's reason.
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { featuresOfTypedLines, TYPED_LINE_COLUMNS, type FeatureRow } from '../etl/basket-features';
import { rawCsvSource, rawTypesSql, typedLinesSql } from '../etl/drop/csv-sql';
import { headerNames, parseHeader, type HeaderLayout } from '../etl/drop/header';
import type { RemovedLine } from '../etl/drop/normalize';
import { forEachPart } from '../etl/drop/sources';
import { UserError } from '../etl/errors';
import { DEFAULT_MAX_UNCOMPRESSED, lineReject, readPart, type PartReadResult } from '../etl/ingest';
import { numericColumn, RAW_SCALE, RAW_TYPES, type TypedValue } from '../etl/raw-line';

export interface LinesInput {
  readonly label: string;
  /** The file DuckDB reads: the original when it needed no change, else its uniform copy in scratch. */
  readonly local: string;
  readonly layout: HeaderLayout;
  /** Lines after the header (blank lines not counted). */
  readonly dataLines: number;
  /** Lines the byte pass took out (encoding, NUL bytes, unbalanced quotes). */
  readonly removed: readonly RemovedLine[];
}

export interface LineReject {
  /** 1-based line number in the file, the header being line 1. */
  readonly line: number;
  /** The ETL's reason, prefixed with the line number. */
  readonly reason: string;
}

/** The first line of a CSV or .csv.gz, without BOM or line ending (at most 64 KiB read). */
async function firstLine(file: string, gzip: boolean): Promise<string> {
  let head = Buffer.alloc(0);
  await forEachPart(file, gzip ? 'csv.gz' : 'csv', Infinity, async (part) => {
    if (!part.stream) return;
    for await (const chunk of part.stream as AsyncIterable<Buffer>) {
      head = Buffer.concat([head, chunk]);
      if (head.indexOf(10) >= 0 || head.indexOf(13) >= 0 || head.length >= 64 * 1024) break;
    }
    part.stream.destroy();
  });
  const start = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  return head.subarray(start, Math.min(head.length, 64 * 1024)).toString('utf8').split(/\r|\n/)[0];
}

/**
 * Whether a CSV holds raw transaction lines rather than feature rows: its header names
 * PROD_CODE, which no feature table has. A raw-line header missing other columns is
 * refused with the ETL's reason.
 */
export async function isRawLineFile(file: string, label: string, gzip: boolean): Promise<boolean> {
  const header = await firstLine(file, gzip).catch(() => '');
  if (!headerNames(header).some((n) => n.toUpperCase() === 'PROD_CODE')) return false;
  const verdict = parseHeader(header);
  if (!verdict.ok) throw new UserError(`${label} looks like raw transaction lines (its header has PROD_CODE) but cannot be scored as such: ${verdict.reason}`);
  return true;
}

/** The ETL's byte pass over the file (hash, BOM, line endings, encoding), its uniform copy in `scratch` when one is needed. */
export async function readLinesInput(file: string, label: string, gzip: boolean, scratch: string): Promise<LinesInput> {
  let result: PartReadResult | undefined;
  await forEachPart(file, gzip ? 'csv.gz' : 'csv', DEFAULT_MAX_UNCOMPRESSED, async (part) => {
    if (!part.stream) throw new UserError(`cannot read ${label}: ${part.problem ?? 'unreadable'}`);
    result = await readPart(part.stream, gzip ? 'csv.gz' : 'csv', gzip ? undefined : file, { dir: scratch, counter: 0 }, DEFAULT_MAX_UNCOMPRESSED, () => false);
  });
  if (!result) throw new UserError(`cannot read ${label}`);
  if ('reason' in result) throw new UserError(`cannot score ${label} as raw transaction lines: ${result.reason}`);
  if (result.local === null) throw new Error('internal: a part read without a local copy');
  return { label, local: result.local, layout: result.layout, dataLines: result.norm.dataLines, removed: result.norm.removed };
}

const REJECTS = { table: 'score_line_rejects', scan: 'score_line_scans' };

/** A typed column as TypedValue holds it: exact scaled integers (SPEND in cents), dates as YYYYMMDD text, codes as text. */
function selectOf(column: (typeof TYPED_LINE_COLUMNS)[number]): string {
  const scale = RAW_SCALE[column];
  if (scale) return `CAST(${column} * ${10 ** scale} AS BIGINT)`;
  if (numericColumn(column)) return column;
  if (RAW_TYPES[column] === 'DATE') return `strftime(${column}, '%Y%m%d')`;
  return `CAST(${column} AS VARCHAR)`;
}

function typedValue(v: DuckDBValue): TypedValue {
  if (typeof v === 'bigint') {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  return v as TypedValue;
}

/**
 * The baskets of the lines, in BASKET_ID order, each with its features. DuckDB reads the
 * lines with the ETL's schema and records those it rejects (see lineRejects); `onLines`
 * hears how many lines have been read so far.
 */
export async function* basketsOfLines(conn: DuckDBConnection, input: LinesInput, onLines: (lines: number) => void): AsyncGenerator<{ id: string; row: FeatureRow }> {
  for (const statement of rawTypesSql().split('\n')) await conn.run(statement);
  const source = typedLinesSql(rawCsvSource([input.local], { layout: input.layout.columns, rejects: REJECTS }));
  const sql = `SELECT BASKET_ID, ${TYPED_LINE_COLUMNS.map(selectOf).join(', ')} FROM ${source} ORDER BY BASKET_ID`;
  const result = await conn.stream(sql);
  const width = TYPED_LINE_COLUMNS.length;
  let id: DuckDBValue = null;
  let lines: TypedValue[][] = [];
  let read = 0;
  for await (const chunk of result) {
    const cols: DuckDBValue[][] = [];
    for (let c = 0; c < chunk.columnCount; c++) cols.push(chunk.getColumnValues(c));
    for (let r = 0; r < chunk.rowCount; r++) {
      const rowId = cols[0][r];
      if (rowId !== id && lines.length > 0) {
        yield { id: String(id), row: featuresOfTypedLines(lines) };
        lines = [];
      }
      id = rowId;
      const line: TypedValue[] = new Array<TypedValue>(width);
      for (let c = 0; c < width; c++) line[c] = typedValue(cols[c + 1][r]);
      lines.push(line);
    }
    read += chunk.rowCount;
    onLines(read);
  }
  if (lines.length > 0) yield { id: String(id), row: featuresOfTypedLines(lines) };
}

/** The lines left out, in file order: those the byte pass removed and those DuckDB's casts rejected, with the ETL's reasons. */
export async function lineRejects(conn: DuckDBConnection, input: LinesInput): Promise<LineReject[]> {
  const rows = (
    await conn.runAndReadAll(`SELECT e.line::BIGINT AS line, first(e.error_type::VARCHAR ORDER BY e.column_idx) AS error_type, first(e.csv_line) AS raw_line
      FROM ${REJECTS.table} e GROUP BY e.line ORDER BY line`)
  ).getRowObjectsJS();
  const out: LineReject[] = input.removed.map((r) => ({ line: r.line, reason: `line ${r.line}: ${r.reason}` }));
  for (const r of rows) {
    const line = Number(r.line);
    const { reason } = lineReject(String(r.error_type), String(r.raw_line ?? '').replace(/\n+$/, ''), input.layout);
    out.push({ line, reason: `line ${line}: ${reason}` });
  }
  return out.sort((a, b) => a.line - b.line);
}
