/**
 * Batch scoring (`pricesense score`, `pricesense sagemaker score`): a table of rows in
 * — a lake gold split, CSV (.csv, .csv.gz) or Parquet — and one output row per input
 * row out (Parquet or CSV): its label, class probabilities, the model's version and
 * SHA-256, and optionally its explanation. A CSV of raw transaction lines (its header
 * has the dunnhumby line columns) is scored per basket instead: one output row per
 * BASKET_ID, its features computed from its lines by the ETL's feature definitions
 * (model/batch-score-lines.ts).
 *
 * DuckDB reads the input as a stream; rows are scored in blocks by the tree-walker and
 * appended to a DuckDB table, written out at the end to a temporary file that is then
 * renamed over the target: a reader never sees a partial output, and a failed run
 * leaves any previous output as it was.
 *
 * Bad rows never stop the run. A row whose numeric feature holds something that is not
 * a number ("12,5", "abc") is written with no prediction and an `error` naming the
 * column and value; a CSV line DuckDB cannot parse (wrong column count, invalid UTF-8)
 * has no output row and is listed with its line number. Both go to a rejects report
 * next to the output. Empty values are missing (the model's default direction); an
 * unknown category is scored as missing and counted per feature.
 */
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../core/errors';
import { GOLD_PREFIX, readGoldManifest } from '../etl/gold';
import type { GoldSplit } from '../etl/gold-schema';
import { localCopyOf } from '../etl/lake/commit';
import type { Lake } from '../etl/lake/types';
import { definitionsMismatch } from '../etl/basket-features';
import { FEATURE_DEFINITIONS_VERSION } from '../etl/feature-definitions';
import { DEFAULT_REJECT_THRESHOLD } from '../etl/ingest';
import { Progress } from '../core/progress';
import { basketsOfLines, isRawLineFile, lineRejects, readLinesInput, type LineReject, type LinesInput } from './batch-score-lines';
import type { CompiledForest } from './walker';

/** A file (or a directory of raw-line files), several raw-line files scored together, or a gold split. */
export type ScoreSource =
  | { readonly kind: 'gold'; readonly lake: Lake; readonly split: GoldSplit }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'files'; readonly paths: readonly string[] };
export const OUTPUT_FORMATS = ['parquet', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface BatchScoreOptions {
  /** The registry version of the model, written to every row (null for a model read from a file). */
  readonly modelVersion?: number | null;
  /** Add an `explanation` column: the row's Saabas explanation as JSON. */
  readonly explain?: boolean;
  /** Output format; default from the output's extension (.parquet, .csv, .csv.gz). */
  readonly format?: OutputFormat;
  /** Input column passed through to identify rows (default BASKET_ID when present). */
  readonly idColumn?: string;
  readonly threads?: number;
  /** Rows per scoring block. */
  readonly blockRows?: number;
  /** Directory for DuckDB's spill files and the gold copy (default: the system temp directory). */
  readonly scratch?: string;
  /** Progress on stderr (rows/s, ETA); the default follows core/progress.ts. */
  readonly progress?: boolean;
  /**
   * The feature-definition version the model was trained with (its training.featureDefinitions):
   * raw transaction lines are scored only when it is this code's version.
   */
  readonly featureDefinitions?: string;
  /**
   * Raw lines: the largest share of lines the ETL would reject before the run fails
   * (as `pricesense etl --reject-threshold`; default the ETL's).
   */
  readonly rejectThreshold?: number;
}

export interface ScoreProblem {
  /** 1-based record number of a bad row (its output row has the same `row`). */
  readonly row?: number;
  /** File line of a CSV line that could not be parsed into a row. */
  readonly line?: number;
  readonly reason: string;
}

export interface BatchScoreReport {
  readonly input: string;
  /** rows: a table of feature rows; lines: raw transaction lines, scored per basket. */
  readonly inputKind: 'rows' | 'lines';
  /** Raw transaction lines read (after the header), for a lines input. */
  readonly lines?: number;
  readonly output: string;
  readonly format: OutputFormat;
  /** Output rows: one per input record (per basket, for a lines input). */
  readonly rows: number;
  readonly scored: number;
  /** Records written without a prediction (bad values). */
  readonly badRows: number;
  /** CSV lines that could not be parsed (no output row); for a lines input, the lines the ETL would reject (left out of their basket). */
  readonly rejectedLines: number;
  /** The rejects report (CSV), when there were bad rows or rejected lines. */
  readonly rejects: string | null;
  /** The first problems, for the summary (all are in the rejects report). */
  readonly problems: ScoreProblem[];
  /** Per feature: values not among its categories (scored as missing). */
  readonly unknownCategories: Record<string, number>;
  readonly labels: Record<string, number>;
  readonly model: { readonly sha256: string; readonly version: number | null };
  readonly seconds: number;
  readonly rowsPerSecond: number;
}

const PROBLEMS_IN_REPORT = 10;

/** Output format of a path by its extension. */
export function outputFormatOf(file: string): OutputFormat {
  const lower = file.toLowerCase();
  if (lower.endsWith('.parquet')) return 'parquet';
  if (lower.endsWith('.csv') || lower.endsWith('.csv.gz')) return 'csv';
  throw new UserError(`cannot tell the output format of ${file}: name it .parquet, .csv or .csv.gz (or pass the format)`);
}

function inputKindOf(file: string): 'parquet' | 'csv' {
  const lower = file.toLowerCase();
  if (lower.endsWith('.parquet')) return 'parquet';
  if (lower.endsWith('.csv') || lower.endsWith('.csv.gz') || lower.endsWith('.tsv') || lower.endsWith('.tsv.gz')) return 'csv';
  throw new UserError(`cannot tell how to read ${file}: expected a .parquet, .csv or .csv.gz file, or gold:<split> for the lake's gold data set`);
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** DuckDB's message without its internal framing, for a UserError in our words. */
function duckReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^[A-Za-z ]*Error: /, '').split('\n')[0];
}

async function duck<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${what}: ${duckReason(err)}`);
  }
}

interface InputPlan {
  readonly label: string;
  /** The table function reading the input (CSV: keeping the lines it cannot parse in score_rejects). */
  readonly source: string;
  /** The same, for counting rows without recording rejects twice. */
  readonly countSource: string;
  readonly csv: boolean;
  readonly columns: Map<string, string>;
  /** Raw transaction lines to score per basket, instead of a table of feature rows. */
  readonly lines?: LinesInput;
}

const LINE_FILE = /\.csv(\.gz)?$/i;

/** The files of a directory input (any depth) or a list of inputs, for scoring as raw lines together. */
async function inputFiles(paths: readonly string[]): Promise<{ path: string; label: string }[]> {
  const out: { path: string; label: string }[] = [];
  for (const p of paths) {
    const file = path.resolve(p);
    if (!existsSync(file)) throw new UserError(`input ${p} does not exist`);
    if (!(await stat(file)).isDirectory()) {
      out.push({ path: file, label: p });
      continue;
    }
    const names = (await readdir(file, { recursive: true })).filter((n) => LINE_FILE.test(n) && !path.basename(n).startsWith('.')).sort();
    if (names.length === 0) throw new UserError(`input directory ${p} holds no .csv or .csv.gz file`);
    for (const n of names) out.push({ path: path.join(file, n), label: path.join(p, n) });
  }
  return out;
}

async function planInput(conn: DuckDBConnection, source: ScoreSource, scratch: string, options: BatchScoreOptions): Promise<InputPlan> {
  let file: string;
  let label: string;
  if (source.kind === 'files' || (source.kind === 'file' && existsSync(source.path) && (await stat(source.path)).isDirectory())) {
    const given = source.kind === 'files' ? source.paths : [source.path];
    const files = await inputFiles(given);
    for (const f of files) {
      if (!LINE_FILE.test(f.path) || !(await isRawLineFile(f.path, f.label, f.path.toLowerCase().endsWith('.gz')))) {
        throw new UserError(`${f.label} is not a CSV of raw transaction lines (its header has no PROD_CODE): several files or a directory are scored together only as raw lines; score a file of feature rows on its own`);
      }
    }
    label = given.join(', ');
    refuseLines(label, options);
    const lines = await readLinesInput(files, label, scratch);
    return { label, source: '', countSource: '', csv: true, columns: new Map(), lines };
  }
  if (source.kind === 'gold') {
    const manifest = await readGoldManifest(source.lake);
    const rel = manifest.manifest.meta.files[source.split];
    const committed = manifest.manifest.files.find((f) => f.path === rel);
    if (!committed) throw new UserError(`${source.lake.uri(manifest.key)} lists no file for split ${source.split}`);
    file = await localCopyOf(source.lake, GOLD_PREFIX, committed, scratch, { verify: true });
    label = `gold:${source.split} (${source.lake.root})`;
  } else {
    file = path.resolve(source.path);
    label = source.path;
    if (!existsSync(file)) throw new UserError(`input ${source.path} does not exist`);
  }
  const csv = source.kind === 'file' && inputKindOf(file) === 'csv';
  const gzip = file.toLowerCase().endsWith('.gz');
  if (csv && (await isRawLineFile(file, label, gzip))) {
    refuseLines(label, options);
    const lines = await readLinesInput([{ path: file, label }], label, scratch);
    return { label, source: '', countSource: '', csv, columns: new Map(), lines };
  }
  const csvReader = (errors: string) => `read_csv(${sqlString(file)}, header = true, all_varchar = true, ${errors})`;
  const reader = csv ? csvReader("store_rejects = true, rejects_table = 'score_rejects', rejects_scan = 'score_scans'") : `read_parquet(${sqlString(file)})`;
  const countSource = csv ? csvReader('ignore_errors = true') : reader;
  const described = await duck(`cannot read ${label} as ${csv ? 'CSV' : 'Parquet'}`, async () => (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${countSource}`)).getRowObjectsJS());
  const columns = new Map<string, string>();
  for (const c of described) columns.set(String(c.column_name), String(c.column_type));
  return { label, source: reader, countSource, csv, columns };
}

/** The input column for a name: exact, else the one that matches ignoring case. */
function findColumn(columns: Map<string, string>, name: string): string | undefined {
  if (columns.has(name)) return name;
  const lower = name.toLowerCase();
  return [...columns.keys()].find((c) => c.toLowerCase() === lower);
}

const NUMERIC_TYPES = /^(DOUBLE|FLOAT|REAL|DECIMAL|NUMERIC|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT)/i;

/** Output column names: the id column keeps its name unless it would collide with ours. */
function outputColumns(forest: CompiledForest, idColumn: string | undefined, explain: boolean, lines: boolean): { names: string[]; idName?: string } {
  const ours = ['row', 'label', ...forest.classes.map((c) => `probability_${c}`), 'model_version', 'model_sha256', 'error', ...(lines ? ['rejected_lines'] : []), ...(explain ? ['explanation'] : [])];
  if (!idColumn) return { names: ours };
  const idName = ours.includes(idColumn) ? `input_${idColumn}` : idColumn;
  return { names: [ours[0], idName, ...ours.slice(1)], idName };
}

export async function scoreToFile(forest: CompiledForest, source: ScoreSource, output: string, options: BatchScoreOptions = {}): Promise<BatchScoreReport> {
  const started = process.hrtime.bigint();
  const format = options.format ?? outputFormatOf(output);
  const target = path.resolve(output);
  const outDir = path.dirname(target);
  await mkdir(outDir, { recursive: true });
  const scratchBase = options.scratch ?? os.tmpdir();
  await mkdir(scratchBase, { recursive: true });
  const scratch = await mkdtemp(path.join(scratchBase, 'pricesense-score-'));
  const tmpOut = path.join(outDir, `.${path.basename(target)}.${process.pid}.tmp`);
  const rejectsTarget = `${target}.rejects.csv`;
  const tmpRejects = path.join(outDir, `.${path.basename(rejectsTarget)}.${process.pid}.tmp`);
  const instance = await DuckDBInstance.create(':memory:', {
    threads: String(options.threads ?? Math.max(1, Math.min(4, os.availableParallelism()))),
    memory_limit: '1GB',
    temp_directory: scratch,
    preserve_insertion_order: 'true',
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  const conn = await instance.connect();
  try {
    const plan = await planInput(conn, source, scratch, options);
    const lines = plan.lines;
    const features = forest.features;
    const featureColumns = features.map((f) => (lines ? f.name : findColumn(plan.columns, f.name)));
    const absent = features.filter((_, i) => featureColumns[i] === undefined).map((f) => f.name);
    if (absent.length > 0) {
      throw new UserError(`${plan.label} has no column${absent.length > 1 ? 's' : ''} ${absent.join(', ')}, which the model needs (it has ${[...plan.columns.keys()].join(', ') || 'no columns'})`);
    }
    const idColumn = lines ? 'BASKET_ID' : options.idColumn !== undefined ? findColumn(plan.columns, options.idColumn) : findColumn(plan.columns, 'BASKET_ID');
    if (options.idColumn !== undefined && idColumn === undefined) throw new UserError(`${plan.label} has no column ${options.idColumn} (--id)`);
    const explain = options.explain === true;
    const { names, idName } = outputColumns(forest, idColumn, explain, lines !== undefined);

    // Per feature: its value (a DOUBLE or a VARCHAR), and for text in numeric features the raw text, to tell bad from missing.
    const selects: string[] = [idColumn ? `CAST(${sqlIdent(idColumn)} AS VARCHAR)` : 'NULL'];
    const checkRaw: boolean[] = [];
    features.forEach((f, i) => {
      const col = sqlIdent(featureColumns[i]!);
      const type = plan.columns.get(featureColumns[i]!) ?? 'DOUBLE';
      if (f.kind === 'categorical') {
        selects.push(plan.csv ? `NULLIF(${col}, '')` : `CAST(${col} AS VARCHAR)`);
        checkRaw.push(false);
      } else if (NUMERIC_TYPES.test(type)) {
        selects.push(`CAST(${col} AS DOUBLE)`);
        checkRaw.push(false);
      } else {
        selects.push(`TRY_CAST(TRIM(${col}) AS DOUBLE)`, `NULLIF(TRIM(CAST(${col} AS VARCHAR)), '')`);
        checkRaw.push(true);
      }
    });
    const outTypes = names.map((n) => (n === 'row' ? 'BIGINT' : n === 'model_version' || n === 'rejected_lines' ? 'INTEGER' : n.startsWith('probability_') ? 'DOUBLE' : 'VARCHAR'));
    await conn.run(`CREATE TABLE scored (${names.map((n, i) => `${sqlIdent(n)} ${outTypes[i]}`).join(', ')})`);
    await conn.run('CREATE TABLE problems ("row" BIGINT, line BIGINT, reason VARCHAR)');
    const appender = await conn.createAppender('scored');
    const problemsAppender = await conn.createAppender('problems');

    // Progress counts what is read: rows, or a lines input's lines (known from the byte pass, without a counting scan).
    const total = lines
      ? lines.dataLines
      : Number((await duck(`cannot read ${plan.label}`, async () => (await conn.runAndReadAll(`SELECT count(*) AS n FROM ${plan.countSource}`)).getRowObjectsJS()))[0].n);
    const progress = options.progress === false ? null : new Progress({ stage: 'score', total, unit: lines ? 'lines' : 'rows' });
    const block = Math.max(1, options.blockRows ?? 65_536);
    const K = forest.classes.length;
    const categorySets = features.map((f) => (f.kind === 'categorical' ? new Set(f.categories) : null));
    const unknown: Record<string, number> = {};
    const labels: Record<string, number> = Object.fromEntries(forest.classes.map((c) => [c, 0]));
    const problems: ScoreProblem[] = [];
    const version = options.modelVersion ?? null;
    let rows = 0;
    let bad = 0;

    // Columns of the current block.
    const ids: (string | null)[] = [];
    const numeric = features.map((f) => (f.kind === 'numeric' ? new Float64Array(block) : null));
    const text = features.map((f) => (f.kind === 'categorical' ? new Array<string | null>(block) : null));
    const raw = features.map((_, i) => (checkRaw[i] ? new Array<string | null>(block) : null));
    let filled = 0;

    const flush = () => {
      if (filled === 0) return;
      const n = filled;
      const columns: Record<string, ArrayLike<unknown>> = {};
      features.forEach((f, i) => (columns[f.name] = f.kind === 'numeric' ? numeric[i]!.subarray(0, n) : text[i]!.slice(0, n)));
      const scoredBlock = forest.predictBatch({ columns, rows: n });
      for (let r = 0; r < n; r++) {
        const rowNumber = rows + r + 1;
        let error: string | null = null;
        features.forEach((f, i) => {
          const set = categorySets[i];
          const v = text[i]?.[r];
          if (set && v !== null && v !== undefined && !set.has(v)) unknown[f.name] = (unknown[f.name] ?? 0) + 1;
          const rv = raw[i]?.[r];
          if (rv !== null && rv !== undefined && Number.isNaN(numeric[i]![r]) && !/^[+-]?nan$/i.test(rv)) {
            error ??= `${f.name}: ${JSON.stringify(rv.length > 60 ? `${rv.slice(0, 60)}…` : rv)} is not a number`;
          }
        });
        appender.appendBigInt(BigInt(rowNumber));
        if (idName !== undefined) {
          if (ids[r] === null) appender.appendNull();
          else appender.appendVarchar(ids[r]!);
        }
        if (error === null) {
          const label = scoredBlock.labels[r];
          labels[label]++;
          appender.appendVarchar(label);
          for (let k = 0; k < K; k++) appender.appendDouble(scoredBlock.probabilities[r * K + k]);
        } else {
          bad++;
          if (problems.length < PROBLEMS_IN_REPORT) problems.push({ row: rowNumber, reason: error });
          problemsAppender.appendBigInt(BigInt(rowNumber));
          problemsAppender.appendNull();
          problemsAppender.appendVarchar(error);
          problemsAppender.endRow();
          for (let k = 0; k <= K; k++) appender.appendNull();
        }
        if (version === null) appender.appendNull();
        else appender.appendInteger(version);
        appender.appendVarchar(forest.sha256);
        if (error === null) appender.appendNull();
        else appender.appendVarchar(error);
        if (lines) appender.appendInteger(0); // set from the rejects once all lines are read
        if (explain) {
          if (error === null) appender.appendVarchar(JSON.stringify(explanationOf(forest, columns, r)));
          else appender.appendNull();
        }
        appender.endRow();
      }
      rows += n;
      filled = 0;
      ids.length = 0;
      if (!lines) progress?.update(rows);
    };

    let linesRead = 0;
    if (lines) {
      await duck(`cannot read ${plan.label}`, async () => {
        for await (const basket of basketsOfLines(conn, lines, (n) => progress?.update((linesRead = n)))) {
          ids.push(basket.id);
          for (let i = 0; i < features.length; i++) {
            const v = basket.row[features[i].name];
            if (features[i].kind === 'numeric') numeric[i]![filled] = v === null ? NaN : (v as number);
            else text[i]![filled] = v as string | null;
          }
          if (++filled === block) flush();
        }
        flush();
      });
    } else {
      const result = await duck(`cannot read ${plan.label}`, () => conn.stream(`SELECT ${selects.join(', ')} FROM ${plan.source}`));
      await duck(`cannot read ${plan.label}`, async () => {
        for await (const chunk of result) {
          const cols: DuckDBValue[][] = [];
          for (let c = 0; c < chunk.columnCount; c++) cols.push(chunk.getColumnValues(c));
          for (let r = 0; r < chunk.rowCount; r++) {
            ids.push(cols[0][r] === null ? null : String(cols[0][r]));
            let c = 1;
            for (let i = 0; i < features.length; i++) {
              const v = cols[c++][r];
              if (features[i].kind === 'numeric') numeric[i]![filled] = v === null ? NaN : Number(v);
              else text[i]![filled] = v === null ? null : String(v);
              if (checkRaw[i]) raw[i]![filled] = cols[c++][r] as string | null;
            }
            if (++filled === block) flush();
          }
        }
        flush();
      });
    }
    appender.closeSync();

    let rejected = 0;
    if (lines) {
      const rejects = await lineRejects(conn, lines);
      rejected = rejects.length;
      const byBasket = new Map<string, number>();
      for (const r of rejects) {
        if (problems.length < PROBLEMS_IN_REPORT) problems.push({ line: r.line, reason: r.reason });
        problemsAppender.appendNull();
        problemsAppender.appendBigInt(BigInt(r.line));
        problemsAppender.appendVarchar(r.reason);
        problemsAppender.endRow();
        if (r.basketId !== null) byBasket.set(r.basketId, (byBasket.get(r.basketId) ?? 0) + 1);
      }
      refuseRejected(lines, rows, rejected, rejects, options.rejectThreshold ?? DEFAULT_REJECT_THRESHOLD);
      if (byBasket.size > 0) {
        await conn.run('CREATE TABLE basket_rejects (id VARCHAR, n INTEGER)');
        const a = await conn.createAppender('basket_rejects');
        for (const [id, n] of byBasket) {
          a.appendVarchar(id);
          a.appendInteger(n);
          a.endRow();
        }
        a.closeSync();
        await conn.run(`UPDATE scored SET rejected_lines = basket_rejects.n FROM basket_rejects WHERE scored.${sqlIdent(idName!)} = basket_rejects.id`);
      }
    } else if (plan.csv) {
      // One problem per line: a short line reports each missing column, its first one says it all.
      const rejects = (
        await conn.runAndReadAll(`SELECT line, first(error_type::VARCHAR ORDER BY column_idx) AS error_type, first(column_name ORDER BY column_idx) AS column_name,
          first(error_message ORDER BY column_idx) AS error_message FROM score_rejects GROUP BY line ORDER BY line`)
      ).getRowObjectsJS();
      rejected = rejects.length;
      for (const e of rejects) {
        const type = String(e.error_type).toLowerCase().replace(/_/g, ' ');
        const where = e.column_name && !/columns/.test(type) ? ` in column ${String(e.column_name)}` : '';
        const reason = `line ${String(e.line)}: ${type}${where}: ${String(e.error_message).split('\n')[0]}`;
        if (problems.length < PROBLEMS_IN_REPORT) problems.push({ line: Number(e.line), reason });
        problemsAppender.appendNull();
        problemsAppender.appendBigInt(BigInt(Number(e.line)));
        problemsAppender.appendVarchar(reason);
        problemsAppender.endRow();
      }
    }
    problemsAppender.closeSync();
    problems.sort((a, b) => (a.row ?? a.line ?? 0) - (b.row ?? b.line ?? 0));

    const copyOptions = format === 'parquet' ? '(FORMAT parquet)' : `(FORMAT csv, HEADER true${target.toLowerCase().endsWith('.gz') ? ", COMPRESSION 'gzip'" : ''})`;
    await duck(`cannot write ${output}`, () => conn.run(`COPY (SELECT * FROM scored ORDER BY "row") TO ${sqlString(tmpOut)} ${copyOptions}`));
    const hasProblems = bad + rejected > 0;
    if (hasProblems) await duck(`cannot write ${rejectsTarget}`, () => conn.run(`COPY (SELECT * FROM problems ORDER BY coalesce("row", 0), coalesce(line, 0)) TO ${sqlString(tmpRejects)} (FORMAT csv, HEADER true)`));
    await rename(tmpOut, target);
    if (hasProblems) await rename(tmpRejects, rejectsTarget);
    else await rm(rejectsTarget, { force: true });
    progress?.finish({ bad_rows: bad, rejected_lines: rejected });

    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      input: plan.label,
      inputKind: lines ? 'lines' : 'rows',
      ...(lines ? { lines: linesRead } : {}),
      output,
      format,
      rows,
      scored: rows - bad,
      badRows: bad,
      rejectedLines: rejected,
      rejects: hasProblems ? rejectsTarget : null,
      problems,
      unknownCategories: unknown,
      labels,
      model: { sha256: forest.sha256, version },
      seconds,
      rowsPerSecond: seconds > 0 ? rows / seconds : 0,
    };
  } finally {
    conn.closeSync();
    instance.closeSync();
    await rm(tmpOut, { force: true });
    await rm(tmpRejects, { force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * A raw-line run that scored nothing fails (validation), and so does one whose share of
 * rejected lines is over the threshold (data_rejected, as the ETL's): its predictions would
 * come from baskets missing their lines. Nothing is written.
 */
function refuseRejected(lines: LinesInput, rows: number, rejected: number, rejects: readonly LineReject[], threshold: number): void {
  const first = rejects
    .slice(0, 3)
    .map((r) => r.reason)
    .join('; ');
  if (rows === 0) {
    throw new UserError(
      `no basket scored from ${lines.label}: ${lines.dataLines === 0 ? 'it has no data lines' : `all ${lines.dataLines} line(s) were rejected (${first}${rejects.length > 3 ? '; …' : ''})`}. ` +
        'Fix the export (the ETL\'s rules apply to every line) and score again.',
    );
  }
  const rate = lines.dataLines > 0 ? rejected / lines.dataLines : 0;
  if (rate > threshold) {
    throw new UserError(
      `${rejected} of ${lines.dataLines} lines of ${lines.label} (${(rate * 100).toFixed(2)}%) would be rejected by the ETL, over the reject threshold ${threshold} (--reject-threshold): ` +
        `their baskets would be scored from partial lines. First: ${first}. Fix the export, or raise --reject-threshold to score the rest; nothing was written.`,
      'data_rejected',
    );
  }
}

/**
 * Raw lines are scored only with a model whose features the ETL's definitions compute
 * (the batch form of the API's 409 feature_definitions_mismatch), and per basket.
 * Checked before any line is read.
 */
function refuseLines(label: string, options: BatchScoreOptions): void {
  const has = definitionsMismatch(options.featureDefinitions);
  if (has !== undefined) {
    throw new UserError(
      `cannot compute features from the raw lines of ${label} for this model: it ${has}, and this pricesense computes them with version ${FEATURE_DEFINITIONS_VERSION}. ` +
        'Score the features instead (gold:<split>, or a file of feature rows), or score with a model trained on gold built by this version.',
    );
  }
  if (options.idColumn !== undefined && options.idColumn.toUpperCase() !== 'BASKET_ID') {
    throw new UserError(`--id ${options.idColumn}: raw lines are scored per basket, and each output row is named by its BASKET_ID`);
  }
}

/** A row's explanation as the API words it: bias and contributions per class. */
function explanationOf(forest: CompiledForest, columns: Record<string, ArrayLike<unknown>>, r: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const f of forest.features) {
    const v = columns[f.name][r];
    row[f.name] = typeof v === 'number' && Number.isNaN(v) ? null : v;
  }
  const e = forest.explain(row);
  const byClass = (values: ArrayLike<number>) => Object.fromEntries(forest.classes.map((c, k) => [c, values[k]]));
  const contributions: Record<string, Record<string, number>> = {};
  for (const [name, values] of Object.entries(e.contributions)) contributions[name] = byClass(values);
  return { explains: e.explains, bias: byClass(e.bias), contributions };
}
