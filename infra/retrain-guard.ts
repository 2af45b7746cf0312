/**
 * One retraining execution at a time. Executions write under their own prefixes, so two
 * would not corrupt each other, but both would train on the same raw data: twice the
 * SageMaker hours (the ETL and training instances) for two near-identical candidates in
 * PendingManualApproval, and a reviewer left to pick one. A drift that keeps its alarm
 * flapping, or a manual retrain during an alarm-started one, would do exactly that, so
 * nothing starts one while another runs:
 *
 * - the drift alarms' EventBridge rule targets the Lambda in this file (bundled by
 *   infra/sagemaker-pipeline.ts), not the pipeline: it lists the pipeline's executions
 *   and starts one only when none is Executing or Stopping. The function's reserved
 *   concurrency is 1, so two alarms entering ALARM together are checked one after the
 *   other, and the second sees the first's execution;
 * - `pricesense pipeline start` (the manual retrain and the scheduled workflow) makes the
 *   same check first (cli/pipeline-run.ts).
 *
 * An EventBridge target cannot check anything itself, and SageMaker's
 * ParallelismConfiguration limits the steps running inside one execution, not executions
 * (docs/infra.md, "Drift → retraining").
 */
import {
  ListPipelineExecutionsCommand,
  StartPipelineExecutionCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { busyExecutions, type BusyExecution, type PipelineExecutionsPage } from '../contracts/pipeline-executions';

/** Every page of the pipeline's executions, newest first, as contracts/pipeline-executions.ts reads them. */
export function executionPages(client: SageMakerClient, pipelineName: string): (nextToken: string | undefined) => Promise<PipelineExecutionsPage> {
  return (NextToken) => client.send(new ListPipelineExecutionsCommand({ PipelineName: pipelineName, SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 100, NextToken }));
}

export type GuardOutcome =
  | { readonly outcome: 'started'; readonly executionArn: string }
  | { readonly outcome: 'skipped'; readonly busy: BusyExecution[] };

/** What EventBridge hands the function: a CloudWatch alarm state change (only the fields used). */
export interface AlarmStateChangeEvent {
  readonly id: string;
  readonly time?: string;
  readonly detail?: { readonly alarmName?: string; readonly state?: { readonly value?: string; readonly reason?: string } };
}

/** `drift-psi-20261130T1542` within SageMaker's display-name pattern (letters, digits, single dashes, ≤ 82). */
export function displayNameFor(alarmName: string, time: Date): string {
  const stamp = time.toISOString().slice(0, 16).replace(/[-:]/g, '');
  const alarm = alarmName.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(-60);
  return `${alarm || 'alarm'}-${stamp}`.replace(/-+/g, '-');
}

/**
 * Starts the pipeline unless an execution runs. The EventBridge event id is the
 * ClientRequestToken: EventBridge retrying the same event (a timeout, a throttle) cannot
 * start a second execution for it.
 */
export async function startRetrainUnlessBusy(client: SageMakerClient, pipelineName: string, event: AlarmStateChangeEvent, now = new Date()): Promise<GuardOutcome> {
  const busy = await busyExecutions(executionPages(client, pipelineName));
  if (busy.length > 0) return { outcome: 'skipped', busy };
  const alarm = event.detail?.alarmName ?? 'unknown alarm';
  const started = await client.send(
    new StartPipelineExecutionCommand({
      PipelineName: pipelineName,
      PipelineExecutionDisplayName: displayNameFor(alarm, now),
      PipelineExecutionDescription: `Started by alarm ${alarm} entering ALARM: ${(event.detail?.state?.reason ?? '').slice(0, 2000)}`.slice(0, 3072),
      ClientRequestToken: `eventbridge-${event.id}`.slice(0, 128),
      PipelineParameters: [],
    }),
  );
  return { outcome: 'started', executionArn: started.PipelineExecutionArn ?? '?' };
}

/** The Lambda entry point (PIPELINE_NAME from the function's environment); one JSON log line per decision. */
export async function handler(event: AlarmStateChangeEvent): Promise<GuardOutcome> {
  const pipelineName = process.env.PIPELINE_NAME;
  if (!pipelineName) throw new Error('PIPELINE_NAME is not set on the retrain guard function');
  const result = await startRetrainUnlessBusy(new SageMakerClient({ maxAttempts: 5 }), pipelineName, event);
  console.log(JSON.stringify({
    event: result.outcome === 'started' ? 'retrain_started' : 'retrain_skipped',
    pipeline: pipelineName,
    alarm: event.detail?.alarmName,
    eventId: event.id,
    ...(result.outcome === 'started' ? { executionArn: result.executionArn } : { running: result.busy.map((b) => `${b.arn} (${b.status})`) }),
  }));
  return result;
}
