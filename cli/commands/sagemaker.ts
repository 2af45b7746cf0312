import type { Command } from 'commander';
import { UserError } from '../../core/errors';
import { readForestFile, writeForestFile } from '../../model/forest-file';
import { smRoot } from '../../model/sagemaker/config';
import { runEtlJob, runEvaluateJob, runTrainJob, writeFailureReason } from '../../model/sagemaker/jobs';
import { runScoreJob } from '../../model/sagemaker/score-job';
import { mergePartialForests, readPartialForests } from '../../model/sagemaker/merge';
import { integer } from '../option-parsers';

interface RootFlags {
  root?: string;
  threads?: number;
}

/**
 * Runs a job entrypoint under SageMaker's failure contract: on any error the reason is
 * written where SageMaker shows it (FailureReason / ExitMessage), then the error goes on
 * to the CLI, which exits non-zero.
 */
async function asJob(kind: 'training' | 'processing', root: string, job: () => Promise<unknown>): Promise<void> {
  try {
    await job();
  } catch (err) {
    // FailureReason is shown in the console, DescribeTrainingJob and EventBridge: the message
    // only; the stack goes to the job's log (stderr → CloudWatch).
    const reason = err instanceof UserError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
    if (!(err instanceof UserError) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    await writeFailureReason(root, kind, reason);
    throw err;
  }
}

const ROOT_HELP = 'the SageMaker container root (default: SM_ROOT or /opt/ml); tests and local runs use a directory laid out like /opt/ml';

export function register(program: Command): void {
  const sm = program
    .command('sagemaker')
    .description('SageMaker container entrypoints (the "jobs" image runs `pricesense sagemaker <job>`); see docs/sagemaker.md');

  sm.command('train')
    .description('training job: train this host\'s share of the trees on the gold channel, write /opt/ml/model/forest-part-<host>.json, print "metric validation:<name>=<value>" lines')
    .option('--root <dir>', ROOT_HELP)
    .option('--threads <t>', 'worker threads (default: the threads hyperparameter, else all cores)', integer('--threads', 1))
    .action(async (opts: RootFlags) => {
      const root = smRoot(opts.root);
      await asJob('training', root, () => runTrainJob({ root, threads: opts.threads }));
    });

  sm.command('merge')
    .description('combine partial forests (forest-part-*.json, or a model.tar.gz holding them) into one sealed forest file, trees in global order')
    .requiredOption('--parts <dir>', 'directory holding the partial forests')
    .requiredOption('--out <file>', 'where to write the merged forest')
    .action(async (opts: { parts: string; out: string }) => {
      const parts = await readPartialForests(opts.parts);
      const merged = mergePartialForests(parts);
      await writeForestFile(opts.out, merged);
      // Read back: the file on disk is what downstream steps trust.
      const check = await readForestFile(opts.out);
      process.stdout.write(`merged ${parts.length} partial forest(s) into ${check.trees.length} trees: ${opts.out} (sha256 ${check.sha256})\n`);
    });

  sm.command('evaluate')
    .description('evaluation processing job: merge the partial forests, evaluate on the gold test split with the quality gates, write evaluation/evaluation.json and model/model.tar.gz')
    .option('--root <dir>', ROOT_HELP)
    .action(async (opts: RootFlags) => {
      const root = smRoot(opts.root);
      await asJob('processing', root, () => runEvaluateJob({ root }));
    });

  sm.command('score')
    .description("batch scoring processing job: score this instance's share of the input files (data channel: .csv, .csv.gz, .parquet) with the model input (forest file or model.tar.gz); one output per input file under output/scores/<instance>/, plus _summary.json")
    .option('--root <dir>', ROOT_HELP)
    .option('--shard <name>', 'the output subfolder (default: current_host from /opt/ml/config/resourceconfig.json, else the hostname)')
    .option('--format <format>', 'output format: parquet (default) or csv')
    .option('--explain', 'add an explanation column (per-feature contributions, JSON)')
    .option('--id <column>', 'input column copied to the output to identify rows (default: BASKET_ID when present)')
    .option('--threads <t>', 'DuckDB threads (default: up to 4)', integer('--threads', 1))
    .option('--model-version <n>', 'the registry version of the model input, recorded on every output row and in the summary (default: none, model_version is null)', integer('--model-version', 1))
    .action(async (opts: RootFlags & { shard?: string; format?: string; explain?: boolean; id?: string; modelVersion?: number }) => {
      const root = smRoot(opts.root);
      await asJob('processing', root, async () => {
        if (opts.format !== undefined && opts.format !== 'parquet' && opts.format !== 'csv') throw new UserError(`--format must be parquet or csv, got ${JSON.stringify(opts.format)}`);
        await runScoreJob({ root, shard: opts.shard, format: opts.format as 'parquet' | 'csv' | undefined, explain: opts.explain, idColumn: opts.id, threads: opts.threads, modelVersion: opts.modelVersion });
      });
    });

  sm.command('etl')
    .description("ETL processing job: run the ETL over this instance's shard of the raw files and write its committed gold zone to output/gold/<instance>/gold/")
    .option('--root <dir>', ROOT_HELP)
    .option('--shard <name>', 'the output subfolder (default: current_host from /opt/ml/config/resourceconfig.json, else the hostname)')
    .option('--scratch <dir>', 'scratch space for the working lake (default: <root>/processing, the job\'s volume)')
    .option('--threads <t>', 'DuckDB threads (default: all cores)', integer('--threads', 1))
    .action(async (opts: RootFlags & { shard?: string; scratch?: string }) => {
      const root = smRoot(opts.root);
      await asJob('processing', root, () => runEtlJob({ root, shard: opts.shard, scratch: opts.scratch, threads: opts.threads }));
    });
}
