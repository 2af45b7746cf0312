/**
 * raw → silver. Every raw CSV is parsed by DuckDB's streaming CSV reader into typed
 * columns; code columns are read straight into ENUM types, so an unknown code, a
 * non-numeric SPEND or a short line fails *that line* with DuckDB recording file, line,
 * column and reason (store_rejects). Accepted rows are written as Parquet partitioned by
 * SHOP_WEEK; rejects go to silver/_rejects/. Too many rejects fail the run before
 * anything is committed.
 */
import { open as openFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Duck, sqlList, sqlString } from './duck';
import { UserError } from './errors';
import { StageCommit, type CommitResult } from './lake/commit';
import type { Lake } from './lake/types';
import { Progress } from './progress';
import { DOMAINS, RAW_COLUMNS } from './schema';

export const DEFAULT_REJECT_THRESHOLD = 0.01;
export const REJECTS_PATH = '_rejects/rejects.csv';

export interface SilverMeta {
  readonly schema: { name: string; type: string }[];
  readonly sources: { key: string; bytes: number }[];
  readonly lines: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly rejectRate: number;
  /** Rejected lines per reason kind (e.g. CAST SPEND, MISSING COLUMNS). */
  readonly rejectReasons: Record<string, number>;
  /** Accepted rows per SHOP_WEEK. */
  readonly weeks: Record<string, number>;
}

export interface IngestResult {
  readonly meta: SilverMeta;
  readonly commit: CommitResult<SilverMeta>;
  readonly seconds: number;
}

const enumValues = (values: readonly string[]): string => `ENUM (${values.map(sqlString).join(', ')})`;
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

const TYPE_DEFINITIONS: Record<string, string> = {
  ps_weekday: enumValues(['1', '2', '3', '4', '5', '6', '7']),
  ps_hour: enumValues(HOURS),
  ps_sensitivity: enumValues(DOMAINS.PRICE_SENSITIVITY),
  ps_cust_sensitivity: enumValues(['', ...DOMAINS.PRICE_SENSITIVITY]),
  ps_lifestage: enumValues(['', ...DOMAINS.CUST_LIFESTAGE]),
  ps_basket_size: enumValues(DOMAINS.BASKET_SIZE),
  ps_basket_type: enumValues(DOMAINS.BASKET_TYPE),
  ps_mission: enumValues(DOMAINS.BASKET_DOMINANT_MISSION),
  ps_store_format: enumValues(DOMAINS.STORE_FORMAT),
  ps_region: enumValues(REGIONS),
};

/**
 * Silver columns: typed, code columns as VARCHAR-compatible dictionaries, blanks as NULL.
 * (Codes stay ENUMs on the way to Parquet, which stores them as dictionary strings.)
 */
const SILVER_SELECT = RAW_COLUMNS.map((c) => {
  const t = RAW_TYPES[c];
  // ENUM position → number without a round trip through text ('1'..'7'; '0'..'23' then '00'..'09').
  if (c === 'SHOP_WEEKDAY') return `(enum_code(${c}) + 1)::UTINYINT AS ${c}`;
  if (c === 'SHOP_HOUR') return `(enum_code(${c}) % 24)::UTINYINT AS ${c}`;
  if (c === 'CUST_PRICE_SENSITIVITY' || c === 'CUST_LIFESTAGE') return `NULLIF(${c}, '') AS ${c}`;
  if (t === 'VARCHAR') return `NULLIF(${c}, '') AS ${c}`;
  return c;
}).join(',\n  ');

export const SILVER_SCHEMA: { name: string; type: string }[] = RAW_COLUMNS.map((c) => {
  const t = RAW_TYPES[c];
  return { name: c, type: c === 'SHOP_WEEKDAY' || c === 'SHOP_HOUR' ? 'UTINYINT' : t.startsWith('ps_') ? 'VARCHAR' : t };
});

export async function defineRawTypes(duck: Duck): Promise<void> {
  for (const [name, def] of Object.entries(TYPE_DEFINITIONS)) await duck.run(`CREATE TYPE ${name} AS ${def}`);
}

/** The read_csv() call for raw files: exact schema, no sniffing, blanks kept as '' so required numerics reject. */
export function rawCsvSource(localPaths: readonly string[], rejects?: { table: string; scan: string }): string {
  const columns = `{${RAW_COLUMNS.map((c) => `${sqlString(c)}: ${sqlString(RAW_TYPES[c])}`).join(', ')}}`;
  const rejectOpts = rejects ? `, store_rejects = true, rejects_table = ${sqlString(rejects.table)}, rejects_scan = ${sqlString(rejects.scan)}` : '';
  return `read_csv(${sqlList(localPaths)}, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"',
    nullstr = '\u0001', dateformat = '%Y%m%d', columns = ${columns}${rejectOpts})`;
}

const EXPECTED_HEADER = RAW_COLUMNS.join(',');

/** The header row must be the 22 dunnhumby columns in order (a BOM and CRLF are tolerated). */
export async function checkHeader(localPath: string, key: string): Promise<void> {
  const fh = await openFile(localPath, 'r');
  let head: string;
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
  const firstLine = head.replace(/^\uFEFF/, '').split('\n')[0].replace(/\r$/, '');
  if (firstLine.trim() === '') throw new UserError(`${key}: the file is empty; expected a header row with the 22 dunnhumby columns`);
  const found = firstLine.split(',').map((c) => c.trim().replace(/^"|"$/g, '').toUpperCase());
  if (found.join(',') === EXPECTED_HEADER) return;
  const i = RAW_COLUMNS.findIndex((c, j) => found[j] !== c);
  throw new UserError(
    `${key}: header does not match the dunnhumby transaction schema: column ${i + 1} is '${found[i] ?? '(missing)'}', expected '${RAW_COLUMNS[i] ?? '(none)'}' ` +
      `(found ${found.length} columns, expected ${RAW_COLUMNS.length}: ${EXPECTED_HEADER})`,
  );
}

export interface IngestOptions {
  readonly duck: Duck;
  /** Local scratch directory for this run (created by the caller). */
  readonly scratch: string;
  readonly rejectThreshold?: number;
}

/** Raw CSV objects of the lake: everything under raw/ ending in .csv (any case). */
export async function listRawFiles(lake: Lake): Promise<{ key: string; size: number }[]> {
  const files = (await lake.list('raw/')).filter((o) => /\.csv$/i.test(o.key));
  if (!files.length) {
    throw new UserError(`no raw files in ${lake.uri('raw/')}: run \`pricesense synth --lake ${lake.root}\` or copy dunnhumby transaction CSVs there`);
  }
  return files;
}

export async function ingest(lake: Lake, opts: IngestOptions): Promise<IngestResult> {
  const { duck, scratch } = opts;
  const threshold = opts.rejectThreshold ?? DEFAULT_REJECT_THRESHOLD;
  const started = process.hrtime.bigint();
  const files = await listRawFiles(lake);
  const locals: string[] = [];
  for (const f of files) {
    const local = lake.kind === 'local' ? lake.uri(f.key) : path.join(scratch, ...f.key.split('/'));
    if (lake.kind !== 'local') await lake.download(f.key, local);
    await checkHeader(local, lake.uri(f.key));
    locals.push(local);
  }
  const totalBytes = files.reduce((n, f) => n + f.size, 0);

  await defineRawTypes(duck);
  const silverDir = path.join(scratch, 'silver');
  const progress = new Progress({ stage: 'raw→silver', unit: 'bytes', total: totalBytes });
  await duck.runWithProgress(
    `COPY (SELECT\n  ${SILVER_SELECT}\nFROM ${rawCsvSource(locals, { table: 'raw_rejects', scan: 'raw_reject_scans' })})
     TO ${sqlString(silverDir)} (FORMAT parquet, PARTITION_BY (SHOP_WEEK), WRITE_PARTITION_COLUMNS true, COMPRESSION zstd, OVERWRITE)`,
    (fraction) => progress.update(Math.round(fraction * totalBytes)),
  );

  // One reject per line (a short line reports each missing column); file paths back to lake keys.
  const keyByLocal = new Map(locals.map((l, i) => [l, files[i].key]));
  await duck.run(`CREATE TEMP TABLE source_keys (local VARCHAR, key VARCHAR)`);
  if (locals.length) {
    await duck.run(`INSERT INTO source_keys VALUES ${[...keyByLocal].map(([l, k]) => `(${sqlString(l)}, ${sqlString(k)})`).join(', ')}`);
  }
  await duck.run(`CREATE TEMP TABLE rejects AS
    SELECT k.key AS file, e.line::BIGINT AS line,
           first(e.error_type::VARCHAR ORDER BY e.column_idx) AS error_type,
           first(e.column_name ORDER BY e.column_idx) AS column_name,
           first(e.error_message ORDER BY e.column_idx) AS reason,
           first(e.csv_line) AS raw_line
    FROM raw_rejects e JOIN raw_reject_scans s USING (scan_id, file_id) JOIN source_keys k ON k.local = s.file_path
    GROUP BY ALL`);
  const rejectsLocal = path.join(scratch, 'rejects.csv');
  await duck.run(`COPY (SELECT file, line, error_type, column_name, reason, raw_line FROM rejects ORDER BY file, line)
    TO ${sqlString(rejectsLocal)} (FORMAT csv, HEADER true)`);
  const reasonRows = await duck.all(`SELECT error_type || CASE WHEN error_type = 'CAST' THEN ' ' || column_name ELSE '' END AS kind, count(*)::INTEGER AS n
    FROM rejects GROUP BY ALL ORDER BY kind`);
  const rejectReasons = Object.fromEntries(reasonRows.map((r) => [String(r.kind), Number(r.n)]));
  const rejected = reasonRows.reduce((n, r) => n + Number(r.n), 0);

  const partFiles = await listParquet(silverDir);
  const partRows = new Map<string, number>();
  if (partFiles.length) {
    const meta = await duck.all(`SELECT file_name, num_rows::BIGINT AS n FROM parquet_file_metadata(${sqlList(partFiles)})`);
    for (const r of meta) partRows.set(String(r.file_name), Number(r.n));
  }
  const accepted = [...partRows.values()].reduce((a, b) => a + b, 0);
  const lines = accepted + rejected;
  const rejectRate = lines ? rejected / lines : 0;
  progress.update(totalBytes);
  progress.finish({ lines, rejected });

  if (rejectRate > threshold) {
    const top = (await duck.all(`SELECT file, line, reason FROM rejects ORDER BY file, line LIMIT 3`))
      .map((r) => `${String(r.file)}:${String(r.line)}: ${String(r.reason)}`)
      .join('\n  ');
    throw new UserError(
      `raw → silver rejected ${rejected} of ${lines} lines (${(rejectRate * 100).toFixed(2)}%), above the ${(threshold * 100).toFixed(2)}% threshold; nothing was committed. ` +
        `First rejects:\n  ${top}\nFix the input, or raise --reject-threshold if these lines are expected.`,
      3,
    );
  }

  const stage = new StageCommit<SilverMeta>(lake, 'silver');
  const weeks: Record<string, number> = {};
  for (const local of partFiles) {
    const rel = path.relative(silverDir, local).split(path.sep);
    const week = /^SHOP_WEEK=(\d+)$/.exec(rel[0])?.[1];
    if (!week) throw new Error(`unexpected silver partition path ${local}`);
    const rows = partRows.get(local) ?? 0;
    weeks[week] = (weeks[week] ?? 0) + rows;
    await stage.addFile(local, `SHOP_WEEK=${week}/${path.basename(local, '.parquet').replace(/^data_?/, 'part-')}.parquet`, rows);
  }
  await stage.addFile(rejectsLocal, REJECTS_PATH, rejected);
  const meta: SilverMeta = {
    schema: SILVER_SCHEMA,
    sources: files.map((f) => ({ key: f.key, bytes: f.size })),
    lines,
    accepted,
    rejected,
    rejectRate,
    rejectReasons,
    weeks: Object.fromEntries(Object.entries(weeks).sort(([a], [b]) => Number(a) - Number(b))),
  };
  const commit = await stage.commit(meta);
  return { meta, commit, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

async function listParquet(dir: string): Promise<string[]> {
  const out: string[] = [];
  let weeks: string[];
  try {
    weeks = await readdir(dir);
  } catch {
    return out;
  }
  for (const w of weeks.sort()) {
    for (const f of (await readdir(path.join(dir, w))).sort()) if (f.endsWith('.parquet')) out.push(path.join(dir, w, f));
  }
  return out;
}
