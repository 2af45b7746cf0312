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
 * silver) and listed with its file, line number, BASKET_ID and the ETL's reason; the
 * basket's output row counts it (rejected_lines).
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { featuresOfTypedLines, TYPED_LINE_COLUMNS, type FeatureRow } from '../etl/basket-features';
import { rawCsvSource, rawTypesSql, typedLinesSql } from '../etl/drop/csv-sql';
import { headerNames, parseHeader, type HeaderLayout } from '../etl/drop/header';
import type { RemovedLine } from '../etl/drop/normalize';
import { forEachPart } from '../etl/drop/sources';
import { UserError } from '../core/errors';
import { DEFAULT_MAX_UNCOMPRESSED, lineReject, readPart, type PartReadResult } from '../etl/ingest';
import { MAX_LINES_PER_BASKET, numericColumn, RAW_SCALE, RAW_TYPES, type TypedValue } from '../etl/raw-line';

/** One file of raw lines after the ETL's byte pass. */
export interface LinesFile {
  readonly label: string;
  /** The file DuckDB reads: the original when it needed no change, else its uniform copy in scratch. */
  readonly local: string;
  readonly layout: HeaderLayout;
  /** Lines after the header (blank lines not counted). */
  readonly dataLines: number;
  /** Lines the byte pass took out (encoding, NUL bytes, unbalanced quotes). */
  readonly removed: readonly RemovedLine[];
}

/**
 * The raw lines to score: one file, or several (a directory, a drop) read in one DuckDB
 * query, so a basket whose lines are spread over files is aggregated once from all of
 * them, as the ETL aggregates it.
 */
export interface LinesInput {
  readonly label: string;
  readonly files: readonly LinesFile[];
  /** Data lines of all files. */
  readonly dataLines: number;
}

export interface LineReject {
  /** 1-based line number in the file, the header being line 1. */
  readonly line: number;
  /** The line's BASKET_ID, when its text has one where the header says (null for a line the byte pass removed). */
  readonly basketId: string | null;
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

/**
 * The ETL's byte pass over each file (hash, BOM, line endings, encoding; etl/ingest.ts
 * readPart), each file's uniform copy in `scratch` when one is needed.
 */
export async function readLinesInput(files: readonly { path: string; label: string }[], label: string, scratch: string): Promise<LinesInput> {
  const counter = { dir: scratch, counter: 0 };
  const read: LinesFile[] = [];
  const seen = new Map<string, { label: string; raw: string }>();
  for (const f of files) {
    const gzip = f.path.toLowerCase().endsWith('.gz');
    let result: PartReadResult | undefined;
    await forEachPart(f.path, gzip ? 'csv.gz' : 'csv', DEFAULT_MAX_UNCOMPRESSED, async (part) => {
      if (!part.stream) throw new UserError(`cannot read ${f.label}: ${part.problem ?? 'unreadable'}`);
      result = await readPart(part.stream, gzip ? 'csv.gz' : 'csv', gzip ? undefined : f.path, counter, DEFAULT_MAX_UNCOMPRESSED, () => false);
    });
    if (!result) throw new UserError(`cannot read ${f.label}`);
    if ('reason' in result) throw new UserError(`cannot score ${f.label} as raw transaction lines: ${result.reason}`);
    if (result.local === null) throw new Error('internal: a part read without a local copy');
    // Identity is the uniform text (etl/ingest.ts partId): a copy in other line endings, with a BOM or gzipped is the same lines.
    const twin = seen.get(result.sha256);
    if (twin !== undefined) {
      const form = twin.raw === result.norm.sha256 ? '' : ' (differing only in line endings, a byte-order mark or compression)';
      throw new UserError(
        `${f.label} has the same content as ${twin.label}${form}: scored together, their baskets would count every line twice (the ETL ingests such a copy once). Leave one of them out and score again`,
      );
    }
    seen.set(result.sha256, { label: f.label, raw: result.norm.sha256 });
    read.push({ label: f.label, local: result.local, layout: result.layout, dataLines: result.norm.dataLines, removed: result.norm.removed });
  }
  return { label, files: read, dataLines: read.reduce((n, f) => n + f.dataLines, 0) };
}

/** Files of one column layout are read by one read_csv (its column list is the layout); each layout has its own rejects tables. */
function layoutGroups(input: LinesInput): { files: LinesFile[]; rejects: { table: string; scan: string } }[] {
  const groups = new Map<string, LinesFile[]>();
  for (const f of input.files) {
    const key = JSON.stringify(f.layout.columns);
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.values()].map((files, i) => ({ files, rejects: { table: `score_line_rejects_${i}`, scan: `score_line_scans_${i}` } }));
}

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
 * The baskets of the lines of all the input's files, in BASKET_ID order, each with its
 * features: one query over every file, so a basket spread over files is one basket. DuckDB
 * reads the lines with the ETL's schema and records those it rejects (see lineRejects);
 * `onLines` hears how many lines have been grouped so far (0 while DuckDB sorts).
 * A basket of more than MAX_LINES_PER_BASKET lines (a BASKET_ID gone wrong) stops the
 * run: its lines would all be held in memory.
 */
export async function* basketsOfLines(conn: DuckDBConnection, input: LinesInput, onLines: (lines: number) => void): AsyncGenerator<{ id: string; row: FeatureRow }> {
  for (const statement of rawTypesSql().split('\n')) await conn.run(statement);
  const columns = TYPED_LINE_COLUMNS.map(selectOf).join(', ');
  const sql = `${layoutGroups(input)
    .map((g) => `SELECT BASKET_ID, ${columns} FROM ${typedLinesSql(rawCsvSource(g.files.map((f) => f.local), { layout: g.files[0].layout.columns, rejects: g.rejects }))}`)
    .join(' UNION ALL ')} ORDER BY BASKET_ID`;
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
      if (lines.length === MAX_LINES_PER_BASKET) {
        throw new UserError(
          `basket ${String(id)} of ${input.label} has more than ${MAX_LINES_PER_BASKET} lines, more than any real basket (the API's limit too): ` +
            'check that BASKET_ID is the basket column of the export (a constant or empty id joins every line), fix the export and score again',
        );
      }
      const line: TypedValue[] = new Array<TypedValue>(width);
      for (let c = 0; c < width; c++) line[c] = typedValue(cols[c + 1][r]);
      lines.push(line);
    }
    read += chunk.rowCount;
    onLines(read);
  }
  if (lines.length > 0) yield { id: String(id), row: featuresOfTypedLines(lines) };
}

/**
 * The lines left out, file by file in line order: those the byte pass removed and those
 * DuckDB's casts rejected, with the ETL's reasons (prefixed with the file when there are
 * several) and the BASKET_ID each line names.
 */
export async function lineRejects(conn: DuckDBConnection, input: LinesInput): Promise<LineReject[]> {
  const several = input.files.length > 1;
  const where = (file: LinesFile, line: number) => `${several ? `${file.label}: ` : ''}line ${line}`;
  const byFile = new Map(input.files.map((f) => [f.local, [] as LineReject[]]));
  for (const f of input.files) for (const r of f.removed) byFile.get(f.local)!.push({ line: r.line, basketId: null, reason: `${where(f, r.line)}: ${r.reason}` });
  for (const g of layoutGroups(input)) {
    const rows = (
      await conn.runAndReadAll(`SELECT s.file_path AS file, e.line::BIGINT AS line, first(e.error_type::VARCHAR ORDER BY e.column_idx) AS error_type, first(e.csv_line) AS raw_line
        FROM ${g.rejects.table} e JOIN ${g.rejects.scan} s USING (scan_id, file_id) GROUP BY ALL`)
    ).getRowObjectsJS();
    const basketColumn = g.files[0].layout.columns.indexOf('BASKET_ID');
    for (const r of rows) {
      const file = g.files.find((f) => f.local === String(r.file)) ?? g.files[0];
      const line = Number(r.line);
      const raw = String(r.raw_line ?? '').replace(/\n+$/, '');
      const { reason } = lineReject(String(r.error_type), raw, file.layout);
      const basketId = raw.split(',')[basketColumn]?.trim();
      byFile.get(file.local)!.push({ line, basketId: basketId ? basketId : null, reason: `${where(file, line)}: ${reason}` });
    }
  }
  return [...byFile.values()].flatMap((rejects) => rejects.sort((a, b) => a.line - b.line));
}
