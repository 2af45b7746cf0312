/**
 * raw → silver, incrementally. Silver is keyed by content: every CSV of the drop (a
 * `.csv`, a `.csv.gz`, or a member of a `.zip`) is a "part" named by the SHA-256 of its
 * uniform text (decompressed, no BOM, LF line breaks; see partId), and its silver output —
 * the per-basket aggregate of its lines and its rejected lines — is computed once and
 * reused by every later run that still has it. So a rerun after one new weekly file reads
 * and parses only that file; a renamed file, or the same content dropped twice (in any of
 * those byte forms), is not parsed again; changed content under an old
 * name is a new part and replaces the old one; a deleted raw file's part leaves silver.
 *
 * Per part: one streaming byte pass (normalize.ts: hash, header, line endings, encoding),
 * then DuckDB parses the uniform CSV with the exact schema and aggregates it per basket in
 * the same scan. A part that cannot be used — empty, header only, binary, not the
 * dunnhumby schema, missing columns, a damaged archive — is quarantined whole (path,
 * content hash, reason) and the run goes on. The run fails only when the rejected share
 * of lines (bad lines plus lines of quarantined parts) exceeds the reject threshold.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { type Duck, sqlList, sqlString } from './duck';
import { basketAggregateSql, LIST_BYTES_PER_LINE } from './features';
import { SILVER_SCHEMA, defineRawTypes, firstInvalidColumn, rawCsvSource, rawTypesSql, typedLinesSql } from './drop/csv-sql';
import { describeCsvFailure, isResourceFailure } from './drop/engine-errors';
import { parseHeader, type HeaderLayout } from './drop/header';
import { normalizeCsv, partialReadOf, scanChunks, type FileProblem, type NormalizeResult, type RemovedLine } from './drop/normalize';
import { forEachPart, rawFormatOf, streamFailureReason, ZipError, type RawFormat } from './drop/sources';
import { UserError } from '../core/errors';
import { hashFile, readStageManifest, sha256Hex, StageCommit, type CommittedFile, type CommitResult, type StageCommitOptions } from './lake/commit';
import type { Lake } from './lake/types';
import { StepProfile } from './profile';
import { invalidValueReason } from './raw-line';
import type { RawColumn } from './schema';
import { logEvent, Progress } from '../core/progress';

export const DEFAULT_REJECT_THRESHOLD = 0.01;
/**
 * Default cap on the uncompressed bytes of one part (a .csv.gz or a zip member): a weekly
 * dunnhumby file is a few hundred MB, the whole 117-week dataset ~40 GB over many files.
 * A zip archive may hold four times this in all (see sources.ts for its other limits).
 */
export const DEFAULT_MAX_UNCOMPRESSED = 4 * 2 ** 30;
export const SILVER_FORMAT = 'pricesense.silver/3';
export const REJECTS_PREFIX = '_rejects/';
const REJECTS_HEADER = 'file,member,line,error_type,column_name,reason,raw_line';

/** A raw object of the drop and the parts it held when last read. */
export interface RawRecord {
  readonly key: string;
  readonly version: string;
  readonly bytes: number;
  readonly format: RawFormat;
  /** Content hashes of its parts, with the zip member name (null for a .csv / .csv.gz). */
  readonly parts: { readonly member: string | null; readonly sha256: string }[];
  /** Zip members that are not CSVs. */
  readonly ignoredMembers: string[];
}

/** One part (a CSV's content), by content hash. */
export interface PartRecord {
  readonly sha256: string;
  readonly bytes: number;
  /** Where it was read from when it was parsed (rejects name this file). */
  readonly source: { readonly key: string; readonly member: string | null };
  readonly status: 'ingested' | 'quarantined';
  /** Why the whole part was quarantined. */
  readonly reason?: string;
  /** Data lines (non-blank, after the header). */
  readonly lines: number;
  /**
   * A quarantined part that could not be read line by line (binary, damaged, truncated,
   * over the size cap): lines is estimated from its size and the drop's bytes per line,
   * so that what is lost counts against the reject threshold.
   */
  readonly linesEstimated?: boolean;
  readonly accepted: number;
  readonly rejected: number;
  readonly extraColumns: string[];
  /**
   * What the part holds once parsed: its basket count and an order-free hash of its basket
   * aggregate rows. Equal for the same export with its columns in another order, which the
   * part's text digest tells apart (other line endings, a BOM or gzip give the same part already).
   */
  readonly contentKey?: string;
  /** An ingested part whose baskets are exactly another part's (contentKey): kept in silver, left out of counts and gold. */
  readonly sameContentAs?: string;
  readonly lineEndings?: { readonly lf: number; readonly crlf: number; readonly cr: number };
  readonly bom?: boolean;
  /** Accepted lines per SHOP_WEEK. */
  readonly weeks: Record<string, number>;
  /** Silver files, relative to silver/: per-basket aggregate and rejected lines. */
  readonly files: { readonly baskets: CommittedFile[]; readonly rejects: CommittedFile | null };
}

/**
 * Identifies the code that computes a part's silver output: the raw types, the CSV reading
 * and typing, and the per-basket aggregate (the gold features). Silver of a part is reused
 * only when it was computed by the same code; a changed or added feature parses every part again.
 */
export function silverCodeId(): string {
  const aggregate = basketAggregateSql(typedLinesSql(rawCsvSource(['part.csv'], { ignoreErrors: true })), { groupBy: ['filename'] });
  return sha256Hex([SILVER_FORMAT, rawTypesSql(), JSON.stringify(SILVER_SCHEMA), aggregate].join('\n'));
}

export interface SilverMeta {
  readonly format: typeof SILVER_FORMAT;
  /** silverCodeId() of the code that wrote it. */
  readonly code: string;
  readonly schema: { name: string; type: string }[];
  readonly raw: RawRecord[];
  readonly parts: PartRecord[];
  /** Raw files (or zip members) whose content is another's: ingested once, under the first name. */
  readonly duplicates: { readonly key: string; readonly member: string | null; readonly sameAs: { key: string; member: string | null }; readonly sha256: string }[];
  /** raw/ objects that are not drop files (not .csv, .csv.gz or .zip). */
  readonly ignored: string[];
  readonly lines: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly rejectRate: number;
  readonly rejectReasons: Record<string, number>;
  readonly weeks: Record<string, number>;
}

export interface IngestResult {
  readonly meta: SilverMeta;
  readonly commit: CommitResult<SilverMeta>;
  readonly seconds: number;
  /** Parts parsed by this run (the rest were reused). */
  readonly parsed: number;
  readonly reused: number;
}

export interface IngestOptions {
  readonly duck: Duck;
  /** Local scratch directory for this run (created by the caller). */
  readonly scratch: string;
  readonly rejectThreshold?: number;
  readonly maxUncompressedBytes?: number;
  readonly commit?: StageCommitOptions;
  /** Where the time goes, step by step (see profile.ts). */
  readonly profile?: StepProfile;
}

/** A part read by this run, ready to be parsed. */
interface NewPart {
  readonly sha256: string;
  readonly bytes: number;
  readonly source: { key: string; member: string | null };
  readonly local: string;
  readonly layout: HeaderLayout;
  readonly norm: NormalizeResult;
}

/** Where a part's uniform copy goes (scratch.dir/part-<counter>.csv). */
export interface Scratch {
  readonly dir: string;
  counter: number;
}

function quarantined(sha256: string, bytes: number, source: { key: string; member: string | null }, reason: string, lines: number, linesUnknown = false): PartRecord {
  return {
    sha256,
    bytes,
    source,
    status: 'quarantined',
    reason,
    lines,
    ...(linesUnknown ? { linesEstimated: true } : {}),
    accepted: 0,
    rejected: 0,
    extraColumns: [],
    weeks: {},
    files: { baskets: [], rejects: null },
  };
}

/** Bytes per data line assumed when the drop has no ingested part to measure it on (dunnhumby lines are ~150 bytes). */
const DEFAULT_BYTES_PER_LINE = 150;

/** The content id of a part that cannot be read: the SHA-256 of the raw object's bytes (and the member's name). */
async function rawContentId(local: string, member: string | null): Promise<string> {
  const { sha256 } = await hashFile(local);
  return member === null ? sha256 : `${sha256}:${member}`;
}

function problemReason(p: FileProblem): string {
  switch (p.kind) {
    case 'empty':
      return 'the file is empty; expected a header row with the 22 dunnhumby columns, then transaction lines';
    case 'binary':
      return `not a text file (${p.detail}); expected a CSV export`;
    case 'utf16':
      return 'the file is UTF-16 text (it starts with a UTF-16 byte-order mark); re-export it as UTF-8';
    case 'no-header':
      return `no line break in the first ${64} KiB: not a CSV file of transaction lines`;
    case 'too-large':
      return `it decompresses to more than ${p.limit} bytes, the cap on one file (--max-uncompressed): a damaged or hostile archive, or a file to split`;
  }
}

/** raw/ objects of the lake, split into drop files and others. */
async function listRaw(lake: Lake): Promise<{ drop: { key: string; size: number; version: string; format: RawFormat }[]; ignored: string[] }> {
  const drop: { key: string; size: number; version: string; format: RawFormat }[] = [];
  const ignored: string[] = [];
  for (const o of await lake.list('raw/', { versions: true })) {
    const format = rawFormatOf(o.key);
    if (format === 'metadata') continue;
    if (format === 'other') ignored.push(o.key);
    else drop.push({ key: o.key, size: o.size, version: o.version ?? String(o.size), format });
  }
  return { drop, ignored };
}

/**
 * Read one raw object's parts: hash and normalize each, quarantine what cannot be used,
 * and return the parts that need parsing (content not seen before) — plus, for every
 * part, its hash, so that the object's record can be kept for the next run.
 */
async function readRawObject(
  lake: Lake,
  obj: { key: string; size: number; version: string; format: RawFormat },
  scratch: Scratch,
  maxBytes: number,
  known: (sha256: string) => boolean,
  onPart: (rec: PartRecord | NewPart) => void,
): Promise<RawRecord> {
  let local: string;
  if (lake.kind === 'local') {
    local = lake.uri(obj.key);
  } else {
    local = path.join(scratch.dir, `raw-${scratch.counter++}`);
    await lake.download(obj.key, local);
  }
  const parts: { member: string | null; sha256: string }[] = [];
  let ignoredMembers: string[] = [];
  let keepLocal = false;
  try {
    const listing = await forEachPart(local, obj.format, maxBytes, async (part) => {
      const source = { key: obj.key, member: part.member };
      if (!part.stream) {
        const sha = await rawContentId(local, part.member);
        parts.push({ member: part.member, sha256: sha });
        onPart(quarantined(sha, part.declaredBytes ?? 0, source, part.problem ?? 'unreadable', 0, true));
        return;
      }
      const result = await readPart(part.stream, obj.format, part.member === null && obj.format === 'csv' ? local : undefined, scratch, maxBytes, known);
      // A part whose stream failed has no content hash of its own: it is named by the raw object's.
      const sha256 = result.sha256 || (await rawContentId(local, part.member));
      parts.push({ member: part.member, sha256 });
      if ('reason' in result) onPart(quarantined(sha256, result.bytes, source, result.reason, result.lines, result.linesUnknown));
      else if (result.local) {
        keepLocal ||= result.local === local;
        onPart({ sha256, bytes: result.bytes, source, local: result.local, layout: result.layout, norm: result.norm });
      }
    });
    ignoredMembers = listing.ignored;
  } catch (err) {
    if (!(err instanceof ZipError)) throw err;
    const sha = await rawContentId(local, null);
    parts.push({ member: null, sha256: sha });
    onPart(quarantined(sha, obj.size, { key: obj.key, member: null }, err.message, 0, true));
  } finally {
    // A downloaded copy stays until it is parsed if DuckDB is to read it as it is.
    if (lake.kind !== 'local' && !keepLocal) await rm(local, { force: true });
  }
  return { key: obj.key, version: obj.version, bytes: obj.size, format: obj.format, parts, ignoredMembers };
}

/**
 * A readable part's identity: the digest of its uniform text (normalize.ts textSha256), so a
 * copy that differs only in line endings, a byte-order mark or compression is the same part
 * as the original — recognised before it is parsed, and reported as a duplicate like a
 * byte-identical copy. Silver written before this keyed parts by the digest of their bytes
 * (for a clean file ending in LF the two are equal): a part whose byte digest is such a key
 * keeps it, so a byte-identical copy of an old part is still the same part.
 */
function partId(norm: NormalizeResult, known: (sha256: string) => boolean): string {
  return norm.textSha256 !== norm.sha256 && known(norm.sha256) ? norm.sha256 : norm.textSha256;
}

export type PartReadResult =
  | { sha256: string; bytes: number; reason: string; lines: number; linesUnknown: boolean }
  | { sha256: string; bytes: number; local: string | null; layout: HeaderLayout; norm: NormalizeResult };

/**
 * One part's byte pass. A plain .csv is first only scanned; if DuckDB can read it as it
 * is, the original is parsed in place. Otherwise (and always for compressed parts) the
 * uniform bytes go to a scratch file. local is null for content already in silver.
 */
export async function readPart(
  stream: Readable,
  format: RawFormat,
  original: string | undefined,
  scratch: Scratch,
  maxBytes: number,
  known: (sha256: string) => boolean,
): Promise<PartReadResult> {
  const out = path.join(scratch.dir, `part-${scratch.counter++}.csv`);
  let norm: NormalizeResult;
  try {
    // The cap is on what decompression produces; a plain file is as large as it is.
    // A header that is not the schema stops the copy to scratch at once (the lines are still counted).
    if (original) {
      // A plain local file is scanned through one reused buffer instead of the stream.
      stream.destroy();
      norm = await normalizeCsv(scanChunks(original), {});
    } else {
      norm = await normalizeCsv(stream, { output: out, maxBytes, acceptHeader: (h) => parseHeader(h).ok });
    }
    if (original && !norm.clean && !norm.problem) {
      norm = await normalizeCsv(createReadStream(original, { highWaterMark: 1 << 20 }), { output: out });
    }
  } catch (err) {
    await rm(out, { force: true });
    const e = err as Error & { code?: string };
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'ENOSPC') throw err;
    const partial = partialReadOf(err);
    return { sha256: '', bytes: partial.bytes, reason: streamFailureReason(e, format), lines: partial.dataLines, linesUnknown: true };
  }
  const drop = (): Promise<void> => rm(out, { force: true });
  if (norm.problem) {
    await drop();
    // An empty file has no lines; any other problem stops the read before lines are counted.
    return { sha256: norm.sha256, bytes: norm.bytes, reason: problemReason(norm.problem), lines: norm.dataLines, linesUnknown: norm.problem.kind !== 'empty' };
  }
  const verdict = parseHeader(norm.header ?? '');
  if (!verdict.ok) {
    await drop();
    return { sha256: norm.sha256, bytes: norm.bytes, reason: verdict.reason, lines: norm.dataLines, linesUnknown: false };
  }
  if (norm.dataLines === 0) {
    await drop();
    return { sha256: norm.sha256, bytes: norm.bytes, reason: 'the file has a header but no data lines', lines: 0, linesUnknown: false };
  }
  const id = partId(norm, known);
  if (known(id)) {
    await drop();
    return { sha256: id, bytes: norm.bytes, local: null, layout: verdict.layout, norm };
  }
  return { sha256: id, bytes: norm.bytes, local: norm.clean && original ? original : out, layout: verdict.layout, norm };
}

interface ParsedPart {
  readonly basketFiles: { local: string; rows: number }[];
  readonly contentKey: string;
  readonly accepted: number;
  readonly weeks: Record<string, number>;
  readonly rejects: RejectRow[];
}

interface RejectRow {
  readonly line: number;
  readonly errorType: string;
  readonly column: string;
  readonly reason: string;
  readonly raw: string;
}

/**
 * Parse parts of one column layout in one DuckDB scan (or, for one part too large for
 * memory, in several passes over BASKET_ID hash buckets): typed lines → per (part,
 * basket) aggregate, written as Parquet partitioned by part; rejects read back per part.
 */
async function parseBatch(duck: Duck, batch: readonly NewPart[], passes: number, dir: string, tag: string, profile: StepProfile): Promise<Map<string, ParsedPart>> {
  const locals = batch.map((p) => p.local);
  const rejectsTable = `rejects_${tag}`;
  const scansTable = `reject_scans_${tag}`;
  const index = `CASE filename ${batch.map((p, i) => `WHEN ${sqlString(p.local)} THEN ${i}`).join(' ')} END`;
  await mkdir(dir, { recursive: true });
  for (let pass = 0; pass < passes; pass++) {
    // Rejects are recorded in the first pass only: every pass reads every line.
    const source = rawCsvSource(locals, { layout: batch[0].layout.columns, ...(pass === 0 ? { rejects: { table: rejectsTable, scan: scansTable } } : { ignoreErrors: true }) });
    const agg = basketAggregateSql(typedLinesSql(source), { groupBy: ['filename'], where: passes > 1 ? `hash(BASKET_ID) % ${passes} = ${pass}` : undefined });
    const copy = `COPY (SELECT ${index} AS P, * EXCLUDE (filename) FROM (${agg}))
      TO ${sqlString(path.join(dir, `pass${pass}`))} (FORMAT parquet, PARTITION_BY (P), COMPRESSION zstd, COMPRESSION_LEVEL 1, OVERWRITE)`;
    await profile.time('parse: DuckDB read_csv → basket aggregate → Parquet', () => duck.run(copy));
  }
  return profile.time('parse: rejects, weeks, content keys', () => partResults(duck, batch, passes, dir, rejectsTable, scansTable));
}

/** Per part of a parsed batch: its basket files, row counts, weeks, content key and rejects. */
async function partResults(duck: Duck, batch: readonly NewPart[], passes: number, dir: string, rejectsTable: string, scansTable: string): Promise<Map<string, ParsedPart>> {
  const out = new Map<string, ParsedPart>();
  const rejects = await duck.all(`SELECT s.file_path AS file, e.line::BIGINT AS line,
      first(e.error_type::VARCHAR ORDER BY e.column_idx) AS error_type,

      first(e.error_message ORDER BY e.column_idx) AS message,
      first(e.csv_line) AS raw_line
    FROM ${rejectsTable} e JOIN ${scansTable} s USING (scan_id, file_id)
    GROUP BY ALL ORDER BY file, line`);
  for (const [i, part] of batch.entries()) {
    const paths: string[] = [];
    for (let pass = 0; pass < passes; pass++) {
      const pdir = path.join(dir, `pass${pass}`, `P=${i}`);
      const names = await readdir(pdir).catch(() => [] as string[]);
      for (const n of names.sort()) if (n.endsWith('.parquet')) paths.push(path.join(pdir, n));
    }
    const weeks: Record<string, number> = {};
    const rows = new Map<string, number>();
    let accepted = 0;
    if (paths.length) {
      for (const r of await duck.all(`SELECT filename AS f, SHOP_WEEK AS w, sum(LINES)::BIGINT AS n, count(*)::BIGINT AS b FROM read_parquet(${sqlList(paths)}, filename = true) GROUP BY ALL`)) {
        weeks[String(r.w)] = (weeks[String(r.w)] ?? 0) + Number(r.n);
        rows.set(String(r.f), (rows.get(String(r.f)) ?? 0) + Number(r.b));
        accepted += Number(r.n);
      }
    }
    let contentKey = 'baskets:0';
    if (paths.length) {
      const [k] = await duck.all(`SELECT count(*)::BIGINT AS n, bit_xor(hash(b))::VARCHAR AS h FROM read_parquet(${sqlList(paths)}, hive_partitioning = false) b`);
      contentKey = `baskets:${Number(k.n)}:${String(k.h)}`;
    }
    const files = paths.map((local) => ({ local, rows: rows.get(local) ?? 0 }));
    const mine = rejects
      .filter((r) => r.file === part.local)
      .map((r) => {
        const raw = String(r.raw_line ?? '').replace(/\n+$/, '');
        return { line: Number(r.line), errorType: String(r.error_type), ...lineReject(String(r.error_type), raw, part.layout), raw };
      });
    out.set(part.sha256, { basketFiles: files, contentKey, accepted, weeks: Object.fromEntries(Object.entries(weeks).sort(([a], [b]) => Number(a) - Number(b))), rejects: mine });
  }
  await duck.run(`DROP TABLE IF EXISTS ${rejectsTable}; DROP TABLE IF EXISTS ${scansTable}`);
  return out;
}

/**
 * A line DuckDB's reader rejected (its error type and the line's text), in the schema's
 * terms: the column whose value does not fit and the reason the rejects file gives.
 */
export function lineReject(errorType: string, rawLine: string, layout: HeaderLayout): { column: string; reason: string } {
  const column = errorType === 'CAST' ? firstInvalidColumn(rawLine, layout.columns) : null;
  const value = column ? rawLine.split(',')[layout.columns.indexOf(column)] : undefined;
  return { column: column ?? '', reason: rejectReason(errorType, column, value) };
}

/** A reject's reason in the schema's terms (DuckDB's own message stays out of it). */
function rejectReason(errorType: string, column: RawColumn | null, value: string | undefined): string {
  switch (errorType) {
    case 'CAST':
      return column ? invalidValueReason(column, value) : 'a value does not fit its column';
    case 'MISSING COLUMNS':
      return 'the line has fewer columns than the header (truncated line?)';
    case 'TOO MANY COLUMNS':
      return 'the line has more columns than the header (an unquoted comma in a value?)';
    case 'UNQUOTED VALUE':
      return 'a value has text after its closing quote';
    case 'LINE SIZE OVER MAXIMUM':
      return 'the line is longer than 2 MB: not a transaction line';
    case 'INVALID ENCODING':
    case 'INVALID UNICODE':
      return 'the line is not valid UTF-8 text';
    default:
      return `the line cannot be parsed (${errorType.toLowerCase()})`;
  }
}

function csvField(v: string | number | null): string {
  const s = v === null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function ingest(lake: Lake, opts: IngestOptions): Promise<IngestResult> {
  const { duck } = opts;
  const profile = opts.profile ?? new StepProfile();
  const threshold = opts.rejectThreshold ?? DEFAULT_REJECT_THRESHOLD;
  const maxBytes = opts.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED;
  const started = process.hrtime.bigint();
  const scratch: Scratch = { dir: path.join(opts.scratch, 'parts'), counter: 0 };
  await mkdir(scratch.dir, { recursive: true });

  const { drop, ignored } = await listRaw(lake);
  if (!drop.length) {
    throw new UserError(
      `no raw files in ${lake.uri('raw/')}${ignored.length ? ` (${ignored.length} file(s) that are not .csv, .csv.gz or .zip, e.g. ${ignored[0]})` : ''}: ` +
        `run \`pricesense synth --lake ${lake.root}\` or copy dunnhumby transaction CSVs (.csv, .csv.gz or .zip) there`,
    );
  }
  const previous = await readStageManifest<SilverMeta>(lake, 'silver');
  const code = silverCodeId();
  const prev = previous?.manifest.meta?.format === SILVER_FORMAT && previous.manifest.meta.code === code ? previous.manifest.meta : undefined;
  const prevRaw = new Map((prev?.raw ?? []).map((r) => [r.key, r]));
  const prevParts = new Map((prev?.parts ?? []).map((p) => [p.sha256, p]));

  // 1. Which parts the drop holds now: unchanged raw objects by their recorded parts, the rest by reading them.
  const raw: RawRecord[] = [];
  const fresh = new Map<string, PartRecord | NewPart>();
  const toRead = drop.filter((o) => prevRaw.get(o.key)?.version !== o.version);
  const progress = new Progress({ stage: 'raw→silver', unit: 'bytes', total: toRead.reduce((n, o) => n + o.size, 0) });
  let readBytes = 0;
  for (const o of drop) {
    const before = prevRaw.get(o.key);
    if (before && before.version === o.version && before.parts.every((p) => prevParts.has(p.sha256))) {
      raw.push(before);
      continue;
    }
    raw.push(
      await profile.time('byte pass: hash, scan, normalise', () =>
        readRawObject(lake, o, scratch, maxBytes, (sha) => prevParts.has(sha) || fresh.has(sha), (rec) => {
          if (!fresh.has(rec.sha256) && !prevParts.has(rec.sha256)) fresh.set(rec.sha256, rec);
          // A scratch copy only: on a local lake a clean part's local is the raw file itself.
          else if ('local' in rec && rec.local !== null && rec.local.startsWith(scratch.dir + path.sep)) void rm(rec.local, { force: true });
        }),
      ),
    );
    readBytes += o.size;
    progress.update(readBytes);
  }

  // 2. Parse the new parts: one DuckDB scan per column layout and memory-sized batch.
  await defineRawTypes(duck);
  const pendingFiles = new Map<string, { baskets: { local: string; rows: number }[]; rejects: RejectRow[] }>();
  const newParts = [...fresh.values()].filter((p): p is NewPart => 'local' in p);
  const records = new Map<string, PartRecord>();
  for (const p of fresh.values()) if (!('local' in p)) records.set(p.sha256, p);
  const budget = Math.max(64 * 2 ** 20, Math.floor(duck.memoryLimitBytes / LIST_BYTES_PER_LINE) * 140);
  const batches: NewPart[][] = [];
  for (const layoutParts of groupBy(newParts, (p) => p.layout.key).values()) {
    let batch: NewPart[] = [];
    let size = 0;
    for (const p of layoutParts) {
      if (batch.length && size + p.norm.bytes > budget) {
        batches.push(batch);
        batch = [];
        size = 0;
      }
      batch.push(p);
      size += p.norm.bytes;
    }
    if (batch.length) batches.push(batch);
  }
  const silverDir = path.join(opts.scratch, 'silver');
  const parseProgress = new Progress({ stage: 'parse', unit: 'bytes', total: newParts.reduce((n, p) => n + p.norm.bytes, 0) });
  let parsedBytes = 0;
  for (const [b, batch] of batches.entries()) {
    const passes = Math.max(1, Math.ceil(batch.reduce((n, p) => n + p.norm.bytes, 0) / budget));
    let results: Map<string, ParsedPart>;
    try {
      results = await parseBatch(duck, batch, passes, path.join(silverDir, `b${b}`), `b${b}`, profile);
    } catch (err) {
      // One bad file must not sink the others: parse each alone; what still fails is quarantined.
      results = new Map();
      for (const [i, p] of batch.entries()) {
        try {
          for (const [k, v] of await parseBatch(duck, [p], passes, path.join(silverDir, `b${b}-${i}`), `b${b}_${i}`, profile)) results.set(k, v);
        } catch (alone) {
          // Out of memory or disk is this run's trouble, not the file's: stop, commit nothing, quarantine nothing.
          if (isResourceFailure(alone)) throw alone;
          records.set(p.sha256, quarantined(p.sha256, p.bytes, p.source, describeCsvFailure(alone), p.norm.dataLines));
        }
      }
      logEvent('parse_batch_retried', { files: batch.length, error: err instanceof Error ? err.message.split('\n')[0] : String(err) });
    }
    for (const p of batch) {
      const r = results.get(p.sha256);
      if (!r) continue;
      const rejects = [...p.norm.removed.map((x: RemovedLine) => ({ line: x.line, errorType: 'ENCODING', column: '', reason: x.reason, raw: x.raw })), ...r.rejects].sort((a, c) => a.line - c.line);
      records.set(p.sha256, {
        sha256: p.sha256,
        bytes: p.bytes,
        source: p.source,
        status: 'ingested',
        lines: r.accepted + rejects.length,
        accepted: r.accepted,
        rejected: rejects.length,
        extraColumns: p.layout.extra,
        contentKey: r.contentKey,
        lineEndings: p.norm.lineEndings,
        bom: p.norm.bom,
        weeks: r.weeks,
        // Filled in at commit time (below) with the committed names.
        files: { baskets: [], rejects: null },
      });
      pendingFiles.set(p.sha256, { baskets: r.basketFiles, rejects });
    }
    parsedBytes += batch.reduce((n, p) => n + p.norm.bytes, 0);
    parseProgress.update(parsedBytes);
  }
  parseProgress.finish({ files: newParts.length });

  // 3. The drop as it is now: every current part once, the first name wins, the others are duplicates.
  const names = new Map<string, { key: string; member: string | null }[]>();
  for (const r of raw) for (const p of r.parts) names.set(p.sha256, [...(names.get(p.sha256) ?? []), { key: r.key, member: p.member }]);
  const duplicates: SilverMeta['duplicates'] = [];
  const parts: PartRecord[] = [];
  // Quarantined parts read by this run whose lines could not be counted: estimated from their size.
  const measured = [...records.values(), ...prevParts.values()].filter((p) => p.status === 'ingested' && names.has(p.sha256));
  const measuredLines = measured.reduce((n, p) => n + p.lines, 0);
  const bytesPerLine = measuredLines ? measured.reduce((n, p) => n + p.bytes, 0) / measuredLines : DEFAULT_BYTES_PER_LINE;
  for (const [sha, rec] of records) {
    if (rec.status === 'quarantined' && rec.linesEstimated) records.set(sha, { ...rec, lines: Math.max(rec.lines, Math.ceil(rec.bytes / bytesPerLine)) });
  }
  for (const [sha, where] of [...names].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const rec = records.get(sha) ?? prevParts.get(sha);
    if (!rec) throw new Error(`internal: no record for part ${sha}`);
    const sorted = [...where].sort((a, b) => (a.key === b.key ? (a.member ?? '').localeCompare(b.member ?? '') : a.key < b.key ? -1 : 1));
    // A part is named by where its content is now (a reused record may have been parsed under a name that is gone).
    parts.push(withoutDuplicateMark({ ...rec, source: sorted[0] }));
    for (const d of sorted.slice(1)) duplicates.push({ key: d.key, member: d.member, sameAs: sorted[0], sha256: sha });
  }
  // The same export under another byte form (line endings, BOM, column order): the first part by name counts, the others are duplicates.
  const byContent = new Map<string, PartRecord>();
  const inNameOrder = [...parts.keys()].sort((a, b) => (label(parts[a].source) < label(parts[b].source) ? -1 : 1));
  for (const i of inNameOrder) {
    const p = parts[i];
    if (p.status !== 'ingested' || !p.contentKey) continue;
    const first = byContent.get(p.contentKey);
    if (!first) {
      byContent.set(p.contentKey, p);
      continue;
    }
    parts[i] = { ...p, sameContentAs: first.sha256 };
    duplicates.push({ key: p.source.key, member: p.source.member, sameAs: first.source, sha256: p.sha256 });
  }
  duplicates.sort((a, b) => (a.key === b.key ? (a.member ?? '').localeCompare(b.member ?? '') : a.key < b.key ? -1 : 1));

  const counted = parts.filter((p) => !p.sameContentAs);
  const lines = counted.reduce((n, p) => n + p.lines, 0);
  const accepted = counted.reduce((n, p) => n + p.accepted, 0);
  const rejected = lines - accepted;
  const rejectRate = lines ? rejected / lines : 0;
  progress.finish({ lines, rejected, parsed: newParts.length, reused: parts.length - records.size });

  const rejectsOf = async (p: PartRecord): Promise<RejectRow[]> => pendingFiles.get(p.sha256)?.rejects ?? (p.files.rejects ? parseRejectsCsv((await lake.read(`silver/${p.files.rejects.path}`)).toString('utf8')) : []);
  const reasons: Record<string, number> = {};
  for (const p of counted) {
    if (p.status === 'quarantined') {
      if (p.lines > 0) reasons['QUARANTINED FILE'] = (reasons['QUARANTINED FILE'] ?? 0) + p.lines;
      continue;
    }
    if (!p.rejected) continue;
    for (const r of await rejectsOf(p)) {
      const kind = r.errorType === 'CAST' ? `CAST ${r.column}` : r.errorType;
      reasons[kind] = (reasons[kind] ?? 0) + 1;
    }
  }
  const rejectReasons = Object.fromEntries(Object.entries(reasons).sort(([a], [b]) => (a < b ? -1 : 1)));

  if (rejectRate > threshold) {
    const q = parts.filter((p) => p.status === 'quarantined').map((p) => `${label(p.source)} (${linesText(p)}): quarantined: ${p.reason}`);
    const bad: string[] = [];
    for (const p of counted.filter((x) => x.status === 'ingested' && x.rejected > 0).sort((a, b) => b.rejected - a.rejected)) {
      const rows = await rejectsOf(p);
      bad.push(`${label(p.source)}: ${p.rejected} rejected lines, e.g. ${rows.slice(0, 3).map((r) => `line ${r.line}: ${r.reason}`).join('; ')}`);
    }
    throw new UserError(
      `raw → silver rejected ${rejected} of ${lines} lines (${(rejectRate * 100).toFixed(2)}%), above the ${(threshold * 100).toFixed(2)}% threshold; nothing was committed. ` +
        `Rejected lines come from:\n  ${[...q, ...bad].slice(0, 12).join('\n  ')}\nFix or remove these files, or raise --reject-threshold if these lines are expected.`,
      'data_rejected',
    );
  }

  // 4. Commit silver: reused parts keep their committed files, new parts add theirs.
  const stage = new StageCommit<SilverMeta>(lake, 'silver', opts.commit);
  const final: PartRecord[] = [];
  for (const p of parts) {
    const pending = pendingFiles.get(p.sha256);
    if (!pending) {
      for (const f of p.files.baskets) stage.addExisting(f);
      const before = prevParts.get(p.sha256);
      if (p.files.rejects && before && label(before.source) !== label(p.source)) {
        // Renamed: its rejected lines are written again under the name the drop has now.
        const rows = parseRejectsCsv((await lake.read(`silver/${p.files.rejects.path}`)).toString('utf8'));
        final.push({ ...p, files: { ...p.files, rejects: stage.addBuffer(rejectsName(p.sha256), rejectsBody(p.source, rows), rows.length) } });
        continue;
      }
      if (p.files.rejects) stage.addExisting(p.files.rejects);
      final.push(p);
      continue;
    }
    const dir = `parts/${p.sha256.slice(0, 2)}/${p.sha256}`;
    const baskets: CommittedFile[] = [];
    for (const [i, f] of pending.baskets.entries()) baskets.push(await profile.time('silver commit', () => stage.addFile(f.local, `${dir}/baskets${pending.baskets.length > 1 ? `_${i}` : ''}.parquet`, f.rows)));
    let rejectsFile: CommittedFile | null = null;
    if (pending.rejects.length) rejectsFile = stage.addBuffer(rejectsName(p.sha256), rejectsBody(p.source, pending.rejects), pending.rejects.length);
    final.push({ ...p, files: { baskets, rejects: rejectsFile } });
  }
  const quarantine = parts.filter((p) => p.status === 'quarantined');
  if (quarantine.length) {
    const body = ['file,member,sha256,lines,reason', ...quarantine.map((p) => [p.source.key, p.source.member, p.sha256, p.lines, p.reason ?? ''].map(csvField).join(','))].join('\n');
    stage.addBuffer(`${REJECTS_PREFIX}quarantined.csv`, `${body}\n`, quarantine.length);
  }
  const weeks: Record<string, number> = {};
  for (const p of final) if (!p.sameContentAs) for (const [w, n] of Object.entries(p.weeks)) weeks[w] = (weeks[w] ?? 0) + n;
  const meta: SilverMeta = {
    format: SILVER_FORMAT,
    code,
    schema: SILVER_SCHEMA,
    raw,
    parts: final,
    duplicates,
    ignored,
    lines,
    accepted,
    rejected,
    rejectRate,
    rejectReasons,
    weeks: Object.fromEntries(Object.entries(weeks).sort(([a], [b]) => Number(a) - Number(b))),
  };
  const commit = await profile.time('silver commit', () => stage.commit(meta));
  for (const p of newParts) if (p.local.startsWith(scratch.dir)) await rm(p.local, { force: true });
  return { meta, commit, seconds: Number(process.hrtime.bigint() - started) / 1e9, parsed: newParts.length, reused: parts.length - records.size };
}

/**
 * The uniform CSV files of already-ingested parts, read again from raw/ (the gold build
 * needs the lines of a basket that is spread over several parts). Throws if a raw object
 * no longer holds the content silver recorded.
 */
export async function materializeParts(lake: Lake, parts: readonly PartRecord[], dir: string, maxBytes = DEFAULT_MAX_UNCOMPRESSED): Promise<{ part: PartRecord; local: string; layout: HeaderLayout }[]> {
  const scratch: Scratch = { dir, counter: 0 };
  await mkdir(dir, { recursive: true });
  const out: { part: PartRecord; local: string; layout: HeaderLayout }[] = [];
  for (const [key, group] of groupBy(parts, (p) => p.source.key)) {
    const format = rawFormatOf(key);
    if (format === 'metadata' || format === 'other') throw new Error(`internal: part source ${key} is not a drop file`);
    let local = lake.uri(key);
    if (lake.kind !== 'local') {
      local = path.join(dir, `raw-${scratch.counter++}`);
      await lake.download(key, local);
    }
    await forEachPart(local, format, maxBytes, async (member) => {
      if (!member.stream || !group.some((p) => p.source.member === member.member)) return;
      const file = path.join(dir, `part-${scratch.counter++}.csv`);
      const norm = await normalizeCsv(member.stream, { output: file, maxBytes });
      const verdict = parseHeader(norm.header ?? '');
      // Found by content: the part silver recorded for this name must be what the name holds now.
      const part = group.find((p) => p.source.member === member.member && (p.sha256 === norm.textSha256 || p.sha256 === norm.sha256));
      if (!part || !verdict.ok) {
        throw new UserError(`${lake.uri(key)}${member.member ? ` › ${member.member}` : ''} changed while the ETL was running (its content no longer matches silver); rerun`);
      }
      out.push({ part, local: file, layout: verdict.layout });
    });
  }
  return out;
}

/** Whether a part's baskets go to gold (ingested, and not a duplicate of another part's content). */
export function feedsGold(p: PartRecord): boolean {
  return p.status === 'ingested' && !p.sameContentAs;
}

function withoutDuplicateMark(p: PartRecord): PartRecord {
  if (p.sameContentAs === undefined) return p;
  const copy: { -readonly [K in keyof PartRecord]?: PartRecord[K] } = { ...p };
  delete copy.sameContentAs;
  return copy as PartRecord;
}

/** A part's line count as a person should read it. */
export function linesText(p: PartRecord): string {
  return p.linesEstimated ? `about ${p.lines} lines, estimated from its ${p.bytes} bytes` : `${p.lines} lines`;
}

export function label(source: { key: string; member: string | null }): string {
  return source.member === null ? source.key : `${source.key} › ${source.member}`;
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) out.set(key(it), [...(out.get(key(it)) ?? []), it]);
  return out;
}

function rejectsName(sha256: string): string {
  return `${REJECTS_PREFIX}${sha256.slice(0, 16)}.csv`;
}

/** A part's rejects file: one row per rejected line, naming the file the part is in now. */
function rejectsBody(source: { key: string; member: string | null }, rows: readonly RejectRow[]): string {
  return `${[REJECTS_HEADER, ...rows.map((r) => [source.key, source.member, r.line, r.errorType, r.column, r.reason, r.raw].map(csvField).join(','))].join('\n')}\n`;
}

/** The rows of a per-part rejects file (as written above). */
function parseRejectsCsv(text: string): RejectRow[] {
  const rows: RejectRow[] = [];
  for (const fields of parseCsvRows(text).slice(1)) {
    rows.push({ line: Number(fields[2]), errorType: fields[3], column: fields[4], reason: fields[5], raw: fields[6] });
  }
  return rows;
}

function parseCsvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
