/**
 * One retraining execution at a time: which executions count as running, and how every page
 * of them is listed. Shared by the retrain guard Lambda (infra/retrain-guard.ts) and
 * `pricesense pipeline start` (cli/pipeline-run.ts), which each bring their own SageMaker
 * client: this module imports nothing, like every contract.
 */

/** An execution in these states still runs steps (Stopping: until its running steps stop). */
export const BUSY_PIPELINE_STATUSES: readonly string[] = ['Executing', 'Stopping'];

export interface BusyExecution {
  readonly arn: string;
  readonly status: string;
  readonly startTime: Date | undefined;
}

/** One page of ListPipelineExecutions, as the SDK returns it (only the fields read). */
export interface PipelineExecutionsPage {
  readonly PipelineExecutionSummaries?: ReadonlyArray<{ readonly PipelineExecutionArn?: string; readonly PipelineExecutionStatus?: string; readonly StartTime?: Date }>;
  readonly NextToken?: string;
}

/** The pipeline's executions that still run, newest first (every page: a long retrain may be far back). */
export async function busyExecutions(listPage: (nextToken: string | undefined) => Promise<PipelineExecutionsPage>): Promise<BusyExecution[]> {
  const out: BusyExecution[] = [];
  let next: string | undefined;
  do {
    const page = await listPage(next);
    for (const e of page.PipelineExecutionSummaries ?? []) {
      if (e.PipelineExecutionStatus && BUSY_PIPELINE_STATUSES.includes(e.PipelineExecutionStatus)) {
        out.push({ arn: e.PipelineExecutionArn ?? '?', status: e.PipelineExecutionStatus, startTime: e.StartTime });
      }
    }
    next = page.NextToken;
  } while (next);
  return out;
}
