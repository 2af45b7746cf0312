import {
  ListPipelineExecutionsCommand,
  DescribePipelineExecutionCommand,
  ListPipelineExecutionStepsCommand,
  SageMakerClient,
  StartPipelineExecutionCommand,
  type PipelineExecutionStatus,
} from '@aws-sdk/client-sagemaker';
import { randomUUID } from 'node:crypto';
import { translateAwsError } from '../core/aws-errors';
import { checkSeconds, type SecondsBounds } from '../core/durations';
import { UserError } from '../core/errors';
import { logEvent } from '../core/progress';
import { busyExecutions } from '../contracts/pipeline-executions';

/**
 * Start a SageMaker pipeline execution (the retrain loop: ETL → train → evaluate →
 * gate → register) and optionally wait for it, reporting the failing step's reason.
 */
export interface PipelineRunOptions {
  readonly name: string;
  readonly parameters?: Record<string, string>;
  readonly wait?: boolean;
  readonly pollSeconds?: number;
  readonly timeoutSeconds?: number;
  readonly client?: SageMakerClient;
  /** Injected for tests; real runs sleep for real. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface PipelineRunResult {
  readonly executionArn: string;
  readonly status: PipelineExecutionStatus | 'Started';
  readonly failureReason?: string;
  readonly failedSteps: { name: string; status: string; reason: string }[];
}

/** Between status checks: at least a second (SageMaker throttles its APIs), at most an hour. */
export const PIPELINE_POLL_BOUNDS: SecondsBounds = { min: 1, max: 3_600 };
/** How long --wait follows an execution: a training run takes hours, a week is past any. */
export const PIPELINE_TIMEOUT_BOUNDS: SecondsBounds = { min: 1, max: 7 * 86_400 };

const TERMINAL: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'Stopped']);

export async function runPipeline(options: PipelineRunOptions): Promise<PipelineRunResult> {
  const pollSeconds = checkSeconds('the pipeline poll interval (--poll-seconds)', options.pollSeconds ?? 30, PIPELINE_POLL_BOUNDS);
  const timeoutSeconds = checkSeconds('the pipeline wait (timeoutSeconds)', options.timeoutSeconds ?? 6 * 3600, PIPELINE_TIMEOUT_BOUNDS);
  const client = options.client ?? new SageMakerClient({ maxAttempts: 8 });
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const notFound = `SageMaker pipeline '${options.name}' not found in this account/region: run \`pulumi up\` for the stack, or check AWS_REGION`;
  // One execution at a time (infra/retrain-guard.ts): a second trains on the same data, twice the hours for a duplicate candidate.
  const busy = await busyExecutions((NextToken) =>
    client.send(new ListPipelineExecutionsCommand({ PipelineName: options.name, SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 100, NextToken })),
  ).catch((err: unknown) => {
    throw awsFailure(err, options.name, 'ListPipelineExecutions', notFound);
  });
  if (busy.length > 0) {
    const b = busy[0];
    throw new UserError(
      `SageMaker pipeline '${options.name}' already has an execution running (${b.arn}, ${b.status}${b.startTime ? ` since ${b.startTime.toISOString()}` : ''}): ` +
        'a second would train on the same data for a duplicate candidate. Wait for it to finish, or stop it (aws sagemaker stop-pipeline-execution --pipeline-execution-arn ...) and start again',
    );
  }
  const started = await client
    .send(
      new StartPipelineExecutionCommand({
        PipelineName: options.name,
        PipelineExecutionDisplayName: `pricesense-${new Date().toISOString().replace(/[:.]/g, '-')}`,
        PipelineParameters: Object.entries(options.parameters ?? {}).map(([Name, Value]) => ({ Name, Value })),
        ClientRequestToken: randomUUID(),
      }),
    )
    .catch((err: unknown) => {
      throw awsFailure(err, options.name, 'StartPipelineExecution', notFound);
    });
  const executionArn = started.PipelineExecutionArn;
  if (!executionArn) throw new Error('StartPipelineExecution returned no PipelineExecutionArn');
  logEvent('pipeline_started', { pipeline: options.name, executionArn });
  if (!options.wait) return { executionArn, status: 'Started', failedSteps: [] };

  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const described = await client
      .send(new DescribePipelineExecutionCommand({ PipelineExecutionArn: executionArn }))
      .catch((err: unknown) => {
        throw awsFailure(err, options.name, 'DescribePipelineExecution');
      });
    const status = described.PipelineExecutionStatus ?? 'Executing';
    if (TERMINAL.has(status)) {
      const failedSteps = status === 'Succeeded' ? [] : await failedStepsOf(client, executionArn, options.name);
      logEvent('pipeline_finished', { pipeline: options.name, status });
      return { executionArn, status, failureReason: described.FailureReason, failedSteps };
    }
    if (Date.now() > deadline) {
      throw new UserError(`pipeline execution ${executionArn} still ${status} after ${timeoutSeconds}s`);
    }
    logEvent('pipeline_waiting', { pipeline: options.name, status });
    await sleep(pollSeconds * 1000);
  }
}

async function failedStepsOf(client: SageMakerClient, executionArn: string, pipeline: string): Promise<PipelineRunResult['failedSteps']> {
  const out: PipelineRunResult['failedSteps'] = [];
  let NextToken: string | undefined;
  do {
    const page = await client.send(new ListPipelineExecutionStepsCommand({ PipelineExecutionArn: executionArn, NextToken })).catch((err: unknown) => {
      throw awsFailure(err, pipeline, 'ListPipelineExecutionSteps');
    });
    for (const step of page.PipelineExecutionSteps ?? []) {
      if (step.StepStatus === 'Failed' || step.StepStatus === 'Stopped') {
        out.push({ name: step.StepName ?? '?', status: step.StepStatus, reason: step.FailureReason ?? '' });
      }
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

/** The SDK error worded by core/aws-errors.ts (as the registry's are), or itself when it is none of its problems. */
function awsFailure(err: unknown, pipeline: string, action: string, notFound?: string): unknown {
  return (
    translateAwsError(err, {
      service: 'SageMaker',
      scope: `SageMaker pipeline '${pipeline}'`,
      action,
      target: pipeline,
      permission: `sagemaker:${action} on the pipeline (the role pulumi up creates for it has it)`,
      notFound,
    }) ?? err
  );
}
