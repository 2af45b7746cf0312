import { InvalidArgumentError, Option, type Command } from 'commander';
import { UserError } from '../../core/errors';
import { openLake } from '../../etl/lake';
import { formatEvaluation } from '../../model/evaluate';
import { readForestFile, writeForestFile } from '../../model/forest-file';
import { formatGateReport, gateFailureMessage } from '../../model/gates';
import { DEFAULT_HYPERPARAMETERS, DEFAULT_SEED, type MaxFeatures } from '../../model/trainer';
import { runTraining } from '../../model/training-run';
import { addGateOptions, gateConfigFrom, type GateFlags } from '../gate-options';
import { defaultFrom, integer } from '../option-parsers';
import { registerTrainedModel } from './registry';

interface TrainFlags extends GateFlags {
  lake?: string;
  out: string;
  trees: number;
  maxDepth: number;
  minLeaf: number;
  maxFeatures: string;
  classWeight: 'none' | 'balanced';
  seed: number;
  threads?: number;
  trainer: 'histogram' | 'ml-random-forest';
  champion?: string;
  json?: boolean;
  register?: boolean;
  registry?: string;
}

function maxFeatures(value: string): MaxFeatures {
  if (value === 'sqrt' || value === 'log2' || value === 'all') return value;
  const x = Number(value);
  if (!(x > 0) || (x >= 1 && !Number.isInteger(x))) throw new InvalidArgumentError(`--max-features must be sqrt, log2, all, an integer count or a fraction in (0, 1), got '${value}'`);
  return x;
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a RandomForest on the gold train split, evaluate it on validation and test, check the quality gates, and write a sealed forest file (exits 3 when a gate fails; the file is still written)')
    .option('--lake <uri>', 'lake root: a directory or s3://bucket/prefix ' + defaultFrom('lake'))
    .requiredOption('--out <file>', 'where to write the forest file')
    .option('--trees <n>', 'trees in the forest', integer('--trees', 1), DEFAULT_HYPERPARAMETERS.trees)
    .option('--max-depth <d>', 'maximum tree depth (root = 0)', integer('--max-depth', 0), DEFAULT_HYPERPARAMETERS.maxDepth)
    .option('--min-leaf <m>', 'minimum rows (bootstrap weight) per leaf', integer('--min-leaf', 1), DEFAULT_HYPERPARAMETERS.minSamplesLeaf)
    .option('--max-features <x>', 'features tried per node: sqrt, log2, all, a count or a fraction', String(DEFAULT_HYPERPARAMETERS.maxFeatures))
    .addOption(new Option('--class-weight <w>', 'class weights').choices(['none', 'balanced']).default('none'))
    .option('--seed <s>', 'forest seed; the same seed and data give the same forest on any number of threads', integer('--seed', 0), DEFAULT_SEED)
    .option('--threads <t>', 'worker threads (default: all cores)', integer('--threads', 1))
    .addOption(new Option('--trainer <name>', 'the trainer (ml-random-forest: small data only)').choices(['histogram', 'ml-random-forest']).default('histogram'))
    .option('--champion <file>', 'the approved forest to compare against on the same test split (champion/challenger gate)')
    .option('--json', 'print the training report as JSON')
    .option('--register', 'when every gate passes, register the forest in the model registry (status PendingManualApproval)')
    .option('--registry <uri>', 'registry for --register: a directory or sagemaker://<group> ' + defaultFrom('registry'));
  addGateOptions(cmd).action(async (opts: TrainFlags) => {
    const gates = gateConfigFrom(opts);
    const champion = opts.champion ? await readForestFile(opts.champion) : null;
    const lake = await openLake(opts.lake);
    const run = await runTraining(lake, {
      trainer: opts.trainer,
      trees: opts.trees,
      maxDepth: opts.maxDepth,
      minSamplesLeaf: opts.minLeaf,
      seed: opts.seed,
      maxFeatures: maxFeatures(opts.maxFeatures),
      classWeight: opts.classWeight === 'balanced' ? 'balanced' : null,
      threads: opts.threads,
      gates,
      champion,
    });
    const { forest, gates: report, trainSeconds } = run;
    const [validationMetrics, testMetrics, train] = [run.validation, run.test, { rows: run.trainRows }];
    await writeForestFile(opts.out, forest);
    const registered = opts.register && report.passed ? await registerTrainedModel(opts.out, { registry: opts.registry }) : undefined;

    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ out: opts.out, sha256: forest.sha256, training: forest.training, trainSeconds, trees: forest.trees.length, nodes: forest.trees.reduce((a, t) => a + t.feature.length, 0), metrics: forest.metrics, registered: registered ? { registry: registered.registry, version: registered.version.version } : null }, null, 2)}\n`,
      );
    } else {
      const nodes = forest.trees.reduce((a, t) => a + t.feature.length, 0);
      process.stdout.write(
        [
          `trained ${forest.trees.length} trees (${nodes.toLocaleString('en-US')} nodes) on ${train.rows.toLocaleString('en-US')} rows in ${trainSeconds.toFixed(1)} s with ${forest.training.trainer}`,
          `wrote ${opts.out} (sha256 ${forest.sha256})`,
          formatEvaluation(validationMetrics, forest.classes),
          formatEvaluation(testMetrics, forest.classes),
          formatGateReport(report),
          ...(registered ? [registered.summary] : []),
          '',
        ].join('\n'),
      );
    }
    if (!report.passed) throw new UserError(`${gateFailureMessage(report)} (the forest was written to ${opts.out} with the gate results in its metrics${opts.register ? '; not registered' : ''})`, 'gate_failed');
  });
}
