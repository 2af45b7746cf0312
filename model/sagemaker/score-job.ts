/**
 * Batch scoring as a SageMaker Processing job (`pricesense sagemaker score`): this
 * instance's share of the input files (ShardedByS3Key) scored under
 * output/scores/<instance>/, plus a summary. A file of feature rows is scored into its
 * own output file; the files of raw transaction lines are scored together, in one read,
 * into one output (baskets.<format>), so a basket spread over this shard's files is
 * scored once from all its lines. A basket whose lines fall in two shards cannot be seen
 * whole by either: raw-line inputs must be split into shards by basket (or by week, as
 * drops are), which docs/sagemaker.md and docs/model-format.md say. docs/sagemaker.md is
 * the reference; the scoring itself is model/batch-score.ts.
 */
import path from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file';
import { UserError } from '../../core/errors';
import { logEvent } from '../../core/progress';
import { scoreToFile, type BatchScoreReport, type OutputFormat } from '../batch-score';
import { isRawLineFile } from '../batch-score-lines';
import { scoringModelFromFile } from '../scoring-model';
import { smPaths } from './config';
import { listFiles, processingShardName } from './jobs';

export interface ScoreJobOptions {
  readonly root: string;
  readonly shard?: string;
  readonly format?: OutputFormat;
  readonly explain?: boolean;
  readonly idColumn?: string;
  readonly threads?: number;
  /** Raw lines: the largest share of rejected lines before the job fails (default the ETL's). */
  readonly rejectThreshold?: number;
  /** The registry version of the model input, written on every output row (model_version) and in the summary; null when not given. */
  readonly modelVersion?: number;
  readonly print?: (line: string) => void;
}

export interface ScoreJobResult {
  readonly shard: string;
  /** The folder holding this instance's outputs, or null when it got no input. */
  readonly outputDir: string | null;
  readonly model: { readonly sha256: string; readonly version: number | null; readonly source: string };
  readonly files: BatchScoreReport[];
}

const INPUT = /\.(csv|csv\.gz|parquet)$/i;

/** The one model file of the model input: a forest JSON document or a model.tar.gz. */
async function modelFile(dir: string): Promise<string> {
  const files = (await listFiles(dir).catch((e: Error) => {
    throw new UserError(`cannot read the model input ${dir}: ${e.message}`);
  })).filter((f) => /\.(json|tar\.gz|tgz)$/i.test(f));
  if (files.length !== 1) {
    throw new UserError(`the model input ${dir} must hold exactly one forest file (.json) or model.tar.gz, found ${files.length === 0 ? 'none' : files.join(', ')}`);
  }
  return path.join(dir, files[0]);
}

export async function runScoreJob(options: ScoreJobOptions): Promise<ScoreJobResult> {
  const p = smPaths(options.root);
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const shard = options.shard ?? (await processingShardName(options.root));
  if (!/^[A-Za-z0-9._-]+$/.test(shard) || shard.startsWith('.')) throw new UserError(`shard name must be letters, digits, '.', '_' or '-' (not starting with '.'), got ${JSON.stringify(shard)}`);
  const model = await scoringModelFromFile(await modelFile(p.processingInput('model')));
  const dataDir = p.processingInput('data');
  const inputs = (await listFiles(dataDir).catch((e: Error) => {
    throw new UserError(`cannot read the data input ${dataDir}: ${e.message}`);
  })).filter((f) => INPUT.test(f));
  const modelVersion = options.modelVersion ?? null;
  const summary = { model: { sha256: model.forest.sha256, version: modelVersion, source: path.relative(options.root, model.source) } };
  if (inputs.length === 0) {
    // More instances than files: ShardedByS3Key gives this one nothing. Not an error.
    print(`no .csv, .csv.gz or .parquet files in ${dataDir} for shard ${shard}; nothing to do`);
    return { shard, outputDir: null, model: summary.model, files: [] };
  }
  const format = options.format ?? 'parquet';
  const outDir = path.join(p.processingOutput('scores'), shard);
  const extension = format === 'parquet' ? '.parquet' : '.csv';
  const lineFiles: string[] = [];
  const rowFiles: string[] = [];
  for (const rel of inputs) {
    const file = path.join(dataDir, rel);
    const lines = /\.csv(\.gz)?$/i.test(rel) && (await isRawLineFile(file, rel, rel.toLowerCase().endsWith('.gz')));
    (lines ? lineFiles : rowFiles).push(rel);
  }
  const outputOf = (rel: string) => rel.replace(INPUT, extension);
  const linesOutput = `${LINES_OUTPUT}${extension}`;
  refuseSharedOutputs([...rowFiles.map((rel) => [rel, outputOf(rel)] as const), ...lineFiles.map((rel) => [rel, linesOutput] as const)], lineFiles);
  const runs = [
    ...rowFiles.map((rel) => ({ label: rel, source: { kind: 'file', path: path.join(dataDir, rel) } as const, output: outputOf(rel) })),
    ...(lineFiles.length > 0 ? [{ label: lineFiles.join(', '), source: { kind: 'files', paths: lineFiles.map((rel) => path.join(dataDir, rel)) } as const, output: linesOutput }] : []),
  ];
  const files: BatchScoreReport[] = [];
  for (const run of runs) {
    const out = path.join(outDir, run.output);
    logEvent('sagemaker_score_file', { shard, input: run.label, output: run.output });
    const report = await scoreToFile(model.forest, run.source, out, {
      format,
      explain: options.explain,
      idColumn: options.idColumn,
      threads: options.threads,
      modelVersion,
      featureDefinitions: model.featureDefinitions,
      rejectThreshold: options.rejectThreshold,
      scratch: path.join(options.root, 'processing'),
    });
    files.push({ ...report, input: run.label, output: run.output, rejects: report.rejects && path.relative(outDir, report.rejects) });
    const scored = report.inputKind === 'lines' ? `${report.rows} baskets from ${report.lines ?? 0} raw lines, ${report.rejectedLines} rejected line(s)` : `${report.rows} rows, ${report.badRows} bad, ${report.rejectedLines} unreadable line(s)`;
    print(`shard ${shard}: ${run.label} -> ${run.output}: ${scored}`);
  }
  const summaryFile = path.join(outDir, '_summary.json');
  await writeFileAtomic(summaryFile, `${JSON.stringify({ shard, ...summary, files }, null, 2)}\n`);
  return { shard, outputDir: outDir, model: summary.model, files };
}

/** The output of this shard's raw-line files, scored together. */
const LINES_OUTPUT = 'baskets';

/**
 * Inputs that would write the same output (a.csv and a.parquet → a.parquet; a feature file
 * baskets.csv and the raw-line output): refused before anything is scored, so no output
 * replaces another's. The raw-line files share one output by design.
 */
function refuseSharedOutputs(outputs: readonly (readonly [string, string])[], lineFiles: readonly string[]): void {
  const byOutput = new Map<string, string[]>();
  for (const [rel, out] of outputs) byOutput.set(out, [...(byOutput.get(out) ?? []), rel]);
  const clashes = [...byOutput].filter(([, ins]) => ins.filter((rel) => !lineFiles.includes(rel)).length > (ins.some((rel) => lineFiles.includes(rel)) ? 0 : 1));
  if (clashes.length === 0) return;
  throw new UserError(
    `input files would overwrite each other's output: ${clashes.map(([out, ins]) => `${ins.join(' and ')} → ${out}`).join('; ')}. ` +
      'Keep one of each (the same data in two formats?) or rename them apart, then run the job again.',
  );
}
