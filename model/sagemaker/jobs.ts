/**
 * The SageMaker job entrypoints behind `pricesense sagemaker etl|train|evaluate`: each
 * reads the container layout under a root (/opt/ml in a job, a temp dir in tests) and
 * writes what the pipeline's next step reads. docs/sagemaker.md is the reference.
 */
import { createHash } from 'node:crypto';
import { access, copyFile, link, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file';
import { UserError } from '../../core/errors';
import { LocalLake } from '../../etl/lake/local';
import { rawFormatOf } from '../../etl/drop/sources';
import { readGoldManifest } from '../../etl/gold';
import { MANIFEST_NAME } from '../../etl/lake/commit';
import { runEtl } from '../../etl/pipeline';
import { logEvent } from '../../core/progress';
import { evaluateForest } from '../evaluate';
import { forestJson, parseForest, readForestFile, sealForest, writeForestFile } from '../forest-file';
import type { ForestFileV1 } from '../format';
import { DEFAULT_GATES, evaluateWithGates, type GateConfig } from '../gates';
import { DEFAULT_HYPERPARAMETERS, trainForest } from '../trainer';
import { partFileName, readHyperparameters, readResourceConfig, smPaths, treeShare } from './config';
import { readChannelGold } from './gold-channel';
import { EVALUATION_FILE, MERGED_MODEL_FILE, PROCESSING_INPUTS, PROCESSING_OUTPUTS, TRAIN_CHANNEL, TRAINING_METRICS } from '../../contracts/sagemaker-job';
import { mergePartialForests, readPartialForests } from './merge';
import { forestBytesOfArtifact, isGzip, writeTarGz } from './tar';

export function metricLine(name: string, value: number): string {
  return `metric ${name}=${value.toFixed(6)}`;
}

export interface TrainJobResult {
  readonly partFile: string;
  readonly host: string;
  readonly hostIndex: number;
  readonly hosts: number;
  readonly treeRange: { start: number; end: number };
  readonly trees: number;
  readonly forest: ForestFileV1;
  readonly validation: { accuracy: number; macroF1: number };
}

/**
 * Training job: this host's share of the trees, trained on the whole gold channel,
 * evaluated on the validation split (so on a multi-host job, the metrics are those of
 * this host's partial forest), written to /opt/ml/model/forest-part-<host index>.json.
 */
export async function runTrainJob(options: { root: string; threads?: number; print?: (line: string) => void }): Promise<TrainJobResult> {
  const p = smPaths(options.root);
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const hp = await readHyperparameters(p.hyperparameters);
  const host = await readResourceConfig(p.resourceConfig);
  const trees = hp.trees ?? DEFAULT_HYPERPARAMETERS.trees;
  const range = treeShare(host.index, host.hosts, trees);
  logEvent('sagemaker_train_start', { host: host.host, host_index: host.index, hosts: host.hosts, trees, tree_range: [range.start, range.end] });

  const gold = await readChannelGold(p.channel(TRAIN_CHANNEL), ['train', 'validation']);
  const started = process.hrtime.bigint();
  const partial = await trainForest(gold.tables.train!, {
    trees,
    maxDepth: hp.maxDepth,
    minSamplesLeaf: hp.minSamplesLeaf,
    maxFeatures: hp.maxFeatures,
    classWeight: hp.classWeight,
    seed: hp.seed,
    threads: options.threads ?? hp.threads,
    treeRange: range,
    featureStats: gold.trainStats,
    datasetManifestSha256: gold.datasetSha256,
  });
  const trainSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const validation = evaluateForest(partial, gold.tables.validation!, 'validation');
  const forest = sealForest({
    ...partial,
    metrics: { validation, trainSeconds, partial: { host: host.host, hostIndex: host.index, hosts: host.hosts } },
  });
  const partFile = path.join(p.model, partFileName(host.index));
  await writeForestFile(partFile, forest);

  print(`trained trees [${range.start}, ${range.end}) of ${trees} on ${gold.tables.train!.rows} rows (${gold.shards.length} gold shard(s)) in ${trainSeconds.toFixed(1)} s; wrote ${partFile}`);
  if (host.hosts > 1) print(`note: the validation metrics below are this host's partial forest (${range.end - range.start} of ${trees} trees)`);
  const [accuracyMetric, macroF1Metric] = TRAINING_METRICS;
  print(metricLine(accuracyMetric, validation.accuracy));
  print(metricLine(macroF1Metric, validation.macroF1));
  return { partFile, host: host.host, hostIndex: host.index, hosts: host.hosts, treeRange: range, trees, forest, validation: { accuracy: validation.accuracy, macroF1: validation.macroF1 } };
}

/** The forest inside a model artifact: a forest JSON document, or a .tar.gz holding forest.json. */
export async function forestFromArtifact(bytes: Buffer, source = '<artifact>'): Promise<ForestFileV1> {
  return parseForest(await forestBytesOfArtifact(bytes, source), isGzip(bytes) ? `${source}:forest.json` : source);
}

export interface EvaluationReport {
  readonly gates: { readonly passed: boolean; readonly failures: string[]; readonly results: unknown[]; readonly split: string; readonly config: GateConfig };
  readonly metrics: Record<string, unknown>;
  /** What the pipeline's RegisterModel step records as model package metadata. */
  readonly registry: { readonly artifactSha256: string; readonly forestSha256: string; readonly formatVersion: number };
  readonly model: { readonly trees: number; readonly seed: number; readonly datasetManifestSha256: string | null; readonly parts: number };
  /** SageMaker's model-quality statistics shape, so the model package shows the accuracy. */
  readonly multiclass_classification_metrics: { readonly accuracy: { readonly value: number } };
}

/**
 * Evaluation processing job: merges the partial forests, evaluates the merged forest on
 * the gold test split with the gates (and the champion, when one is given as an input),
 * and writes evaluation.json plus model.tar.gz holding the merged forest.json with the
 * metrics sealed in. A failed gate is a result, not an error: the pipeline's condition
 * step reads gates.passed.
 */
export async function runEvaluateJob(options: { root: string; gates?: GateConfig; print?: (line: string) => void }): Promise<EvaluationReport> {
  const p = smPaths(options.root);
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const parts = await readPartialForests(p.processingInput(PROCESSING_INPUTS.evaluate.model));
  const merged = mergePartialForests(parts);
  const gold = await readChannelGold(p.processingInput(PROCESSING_INPUTS.evaluate.gold), ['test']);
  if (merged.training.datasetManifestSha256 && merged.training.datasetManifestSha256 !== gold.datasetSha256) {
    logEvent('sagemaker_evaluate_dataset_mismatch', { trained_on: merged.training.datasetManifestSha256, evaluating_on: gold.datasetSha256 });
  }
  const championDir = p.processingInput(PROCESSING_INPUTS.evaluate.champion);
  const championFiles = await readdir(championDir).catch(() => [] as string[]);
  const championFile = championFiles.find((f) => f.endsWith('.json'));
  const champion = championFile ? await readForestFile(path.join(championDir, championFile)) : null;

  const result = evaluateWithGates(merged, gold.tables.test!, 'test', { config: options.gates ?? DEFAULT_GATES, champion });
  const forest = sealForest({ ...merged, metrics: { ...merged.metrics, test: result.metrics, gates: result.gates } });
  const artifact = writeTarGz([{ name: 'forest.json', data: Buffer.from(`${forestJson(forest)}\n`) }]);
  const failures = result.gates.results.filter((r) => !r.passed).map((r) => `${r.gate} ${r.actual.toFixed(4)} < required ${r.required.toFixed(4)}`);
  const report: EvaluationReport = {
    gates: { passed: result.gates.passed, failures, results: result.gates.results, split: result.gates.split, config: result.gates.config },
    metrics: { test: result.metrics, ...(result.championMetrics ? { champion: result.championMetrics } : {}) },
    registry: { artifactSha256: createHash('sha256').update(artifact).digest('hex'), forestSha256: forest.sha256, formatVersion: forest.formatVersion },
    model: { trees: forest.trees.length, seed: forest.training.seed, datasetManifestSha256: forest.training.datasetManifestSha256, parts: parts.length },
    multiclass_classification_metrics: { accuracy: { value: result.metrics.accuracy } },
  };
  await writeFileAtomic(path.join(p.processingOutput(PROCESSING_OUTPUTS.evaluate.model), MERGED_MODEL_FILE), artifact);
  await writeFileAtomic(path.join(p.processingOutput(PROCESSING_OUTPUTS.evaluate.evaluation), EVALUATION_FILE), `${JSON.stringify(report, null, 2)}\n`);
  print(`merged ${parts.length} partial forest(s) into ${forest.trees.length} trees (sha256 ${forest.sha256.slice(0, 12)}…)`);
  print(`test accuracy ${result.metrics.accuracy.toFixed(4)}, macro F1 ${result.metrics.macroF1.toFixed(4)}; gates ${result.gates.passed ? 'PASSED' : `FAILED: ${failures.join('; ')}`}`);
  return report;
}

/** Every regular file under dir, as paths relative to it ('/' separators), sorted. */
export async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, r)));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

/** Hard link (same volume, no copy), else copy. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

export interface EtlJobResult {
  /** The gold zone written (output/gold/<shard>/gold), or null when this instance got no raw files. */
  readonly goldDir: string | null;
  readonly shard: string;
  readonly rawFiles: number;
  readonly goldRows: number;
}

/** This instance's name among the processing job's instances (its current_host), else the hostname. */
export async function processingShardName(root: string): Promise<string> {
  const file = path.join(root, 'config', 'resourceconfig.json');
  const name = (await access(file).then(() => true, () => false)) ? (await readResourceConfig(file)).host : os.hostname();
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * ETL processing job: runs the normal ETL over this instance's shard of the raw files
 * (on a scratch local lake on the job's volume) and publishes the committed gold zone
 * as output/gold/<shard>/gold/ — one folder per instance, so instances never collide,
 * and every folder a complete gold zone with its _SUCCESS manifest.
 */
export async function runEtlJob(options: { root: string; shard?: string; scratch?: string; threads?: number; print?: (line: string) => void }): Promise<EtlJobResult> {
  const p = smPaths(options.root);
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const shard = options.shard ?? (await processingShardName(options.root));
  if (!/^[A-Za-z0-9._-]+$/.test(shard) || shard.startsWith('.')) throw new UserError(`shard name must be letters, digits, '.', '_' or '-' (not starting with '.'), got ${JSON.stringify(shard)}`);
  const rawDir = p.processingInput(PROCESSING_INPUTS.etl.raw);
  const raw = (await listFiles(rawDir).catch((e: Error) => {
    throw new UserError(`cannot read the raw input ${rawDir}: ${e.message}`);
  })).filter((f) => {
    const format = rawFormatOf(f);
    return format !== 'metadata' && format !== 'other';
  });
  if (raw.length === 0) {
    // More instances than raw files: ShardedByS3Key gives this one nothing. Not an error.
    print(`no raw drop files (.csv, .csv.gz, .zip) in ${rawDir} for shard ${shard}; nothing to do`);
    return { goldDir: null, shard, rawFiles: 0, goldRows: 0 };
  }
  const scratchBase = options.scratch ?? path.join(options.root, 'processing');
  await mkdir(scratchBase, { recursive: true });
  const scratch = await mkdtemp(path.join(scratchBase, `.etl-${shard}-`));
  try {
    const lakeDir = path.join(scratch, 'lake');
    for (const f of raw) await linkOrCopy(path.join(rawDir, f), path.join(lakeDir, 'raw', f));
    const report = await runEtl(new LocalLake(lakeDir), { threads: options.threads });
    const outShard = path.join(p.processingOutput(PROCESSING_OUTPUTS.etl.gold), shard);
    const staging = path.join(p.processingOutput(PROCESSING_OUTPUTS.etl.gold), `.${shard}.staging-${process.pid}`);
    await rm(staging, { recursive: true, force: true });
    // The committed gold zone only: its manifest and the files it lists (not the ETL's ledger).
    const committed = await readGoldManifest(new LocalLake(lakeDir));
    for (const f of [MANIFEST_NAME, ...committed.manifest.files.map((x) => x.path)]) {
      await copyFile(path.join(lakeDir, 'gold', ...f.split('/')), path.join(await ensureDir(path.join(staging, 'gold', path.dirname(f))), path.basename(f)));
    }
    await rm(outShard, { recursive: true, force: true });
    await rename(staging, outShard);
    const goldRows = report.gold.rows.train + report.gold.rows.validation + report.gold.rows.test;
    print(`shard ${shard}: ${raw.length} raw file(s), ${report.silver.lines} lines -> ${goldRows} gold rows (gold ${report.gold.manifestSha256.slice(0, 12)}…) in ${outShard}`);
    return { goldDir: path.join(outShard, 'gold'), shard, rawFiles: raw.length, goldRows };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * SageMaker's failure contract: the reason goes to /opt/ml/output/failure (training,
 * shown as FailureReason) or /opt/ml/output/message (processing, shown as ExitMessage).
 * Best effort: a failure to write it must not hide the original error.
 */
export async function writeFailureReason(root: string, kind: 'training' | 'processing', reason: string): Promise<void> {
  const file = kind === 'training' ? smPaths(root).failure : path.join(root, 'output', 'message');
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `${reason.slice(0, 4096)}\n`);
  } catch (e) {
    process.stderr.write(`pricesense: could not write the failure reason to ${file}: ${(e as Error).message}\n`);
  }
}
