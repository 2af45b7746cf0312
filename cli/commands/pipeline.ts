import type { Command } from 'commander';
import { UserError } from '../../core/errors';
import { seconds } from '../option-parsers';
import { PIPELINE_POLL_BOUNDS, runPipeline } from '../pipeline-run';

function collect(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new UserError(`--param expects Name=Value, got '${value}'`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export function register(program: Command): void {
  const pipeline = program.command('pipeline').description('run the SageMaker retraining pipeline (ETL → train → evaluate → gates → register)');
  pipeline
    .command('start')
    .description('start an execution of the SageMaker pipeline; with --wait, exit non-zero unless it succeeds')
    .requiredOption('--name <pipeline>', 'SageMaker pipeline name (stack output sagemakerPipelineName)')
    .option('--param <Name=Value>', 'pipeline parameter, repeatable', collect, {})
    .option('--wait', 'wait for the execution to finish')
    .option('--poll-seconds <n>', 'seconds between status checks', seconds('--poll-seconds', PIPELINE_POLL_BOUNDS), 30)
    .option('--json', 'print the result as JSON')
    .action(async (opts: { name: string; param: Record<string, string>; wait?: boolean; pollSeconds: number; json?: boolean }) => {
      const result = await runPipeline({ name: opts.name, parameters: opts.param, wait: opts.wait, pollSeconds: opts.pollSeconds });
      if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        process.stdout.write(`${result.status}: ${result.executionArn}\n`);
        for (const s of result.failedSteps) process.stdout.write(`  step ${s.name} ${s.status}: ${s.reason}\n`);
      }
      if (opts.wait && result.status !== 'Succeeded') {
        throw new UserError(`pipeline execution ended ${result.status}${result.failureReason ? `: ${result.failureReason}` : ''}`, 'failed');
      }
    });
}
