import {
  DescribePipelineExecutionCommand,
  ListPipelineExecutionsCommand,
  ListPipelineExecutionStepsCommand,
  SageMakerClient,
  StartPipelineExecutionCommand,
} from '@aws-sdk/client-sagemaker';
import { mockClient } from 'aws-sdk-client-mock';
import { UserError } from '../../core/errors';
import { runPipeline } from '../pipeline-run';

const ARN = 'arn:aws:sagemaker:us-east-1:111122223333:pipeline/pricesense-dev/execution/abc';

describe('runPipeline', () => {
  const sm = mockClient(SageMakerClient);
  const client = new SageMakerClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const noSleep = async (): Promise<void> => undefined;

  beforeEach(() => {
    sm.reset();
    sm.on(ListPipelineExecutionsCommand).resolves({ PipelineExecutionSummaries: [{ PipelineExecutionArn: `${ARN}-old`, PipelineExecutionStatus: 'Succeeded' }] });
  });

  it('starts the named pipeline with its parameters and polls until it succeeds', async () => {
    sm.on(StartPipelineExecutionCommand).resolves({ PipelineExecutionArn: ARN });
    sm.on(DescribePipelineExecutionCommand)
      .resolvesOnce({ PipelineExecutionStatus: 'Executing' })
      .resolvesOnce({ PipelineExecutionStatus: 'Executing' })
      .resolves({ PipelineExecutionStatus: 'Succeeded' });
    const result = await runPipeline({ name: 'pricesense-dev', parameters: { Trees: '200' }, wait: true, client, sleep: noSleep });
    expect(result).toEqual({ executionArn: ARN, status: 'Succeeded', failureReason: undefined, failedSteps: [] });
    const start = sm.commandCalls(StartPipelineExecutionCommand)[0].args[0].input;
    expect(start.PipelineName).toBe('pricesense-dev');
    expect(start.PipelineParameters).toEqual([{ Name: 'Trees', Value: '200' }]);
    expect(start.ClientRequestToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(sm.commandCalls(DescribePipelineExecutionCommand)).toHaveLength(3);
  });

  it('reports the failed steps and their reasons across pages', async () => {
    sm.on(StartPipelineExecutionCommand).resolves({ PipelineExecutionArn: ARN });
    sm.on(DescribePipelineExecutionCommand).resolves({ PipelineExecutionStatus: 'Failed', FailureReason: 'Step CheckGates failed' });
    sm.on(ListPipelineExecutionStepsCommand)
      .resolvesOnce({ PipelineExecutionSteps: [{ StepName: 'Train', StepStatus: 'Succeeded' }], NextToken: 'p2' })
      .resolves({ PipelineExecutionSteps: [{ StepName: 'GatesFailed', StepStatus: 'Failed', FailureReason: 'accuracy 0.71 < 0.80' }] });
    const result = await runPipeline({ name: 'pricesense-dev', wait: true, client, sleep: noSleep });
    expect(result.status).toBe('Failed');
    expect(result.failedSteps).toEqual([{ name: 'GatesFailed', status: 'Failed', reason: 'accuracy 0.71 < 0.80' }]);
    expect(sm.commandCalls(ListPipelineExecutionStepsCommand)[1].args[0].input.NextToken).toBe('p2');
  });

  it('refuses a poll interval a timer cannot hold (25 days would be clamped to 1 ms: a request a millisecond) before any call', async () => {
    await expect(runPipeline({ name: 'pricesense-dev', wait: true, pollSeconds: 25 * 86_400, client, sleep: noSleep })).rejects.toThrow(
      new UserError('the pipeline poll interval (--poll-seconds) must be a number of seconds from 1 to 3,600 (1 hour), got 2160000'),
    );
    await expect(runPipeline({ name: 'pricesense-dev', wait: true, timeoutSeconds: Number.NaN, client, sleep: noSleep })).rejects.toThrow(
      'the pipeline wait (timeoutSeconds) must be a number of seconds from 1 to 604,800 (7 days), got NaN',
    );
    expect(sm.calls()).toHaveLength(0);
  });

  it('returns right after starting without --wait', async () => {
    sm.on(StartPipelineExecutionCommand).resolves({ PipelineExecutionArn: ARN });
    const result = await runPipeline({ name: 'p', client });
    expect(result.status).toBe('Started');
    expect(sm.commandCalls(DescribePipelineExecutionCommand)).toHaveLength(0);
  });

  it('turns a missing pipeline into a clear user error', async () => {
    sm.on(StartPipelineExecutionCommand).rejects(Object.assign(new Error('Pipeline not found'), { name: 'ResourceNotFound' }));
    await expect(runPipeline({ name: 'nope', client })).rejects.toThrow(UserError);
    await expect(runPipeline({ name: 'nope', client })).rejects.toThrow(/pipeline 'nope' not found/);
  });

  it('refuses to start a second execution while one runs (found on a later page), and starts none', async () => {
    sm.on(ListPipelineExecutionsCommand)
      .resolvesOnce({ PipelineExecutionSummaries: [{ PipelineExecutionArn: `${ARN}-1`, PipelineExecutionStatus: 'Failed' }], NextToken: 'p2' })
      .resolves({ PipelineExecutionSummaries: [{ PipelineExecutionArn: `${ARN}-2`, PipelineExecutionStatus: 'Executing', StartTime: new Date('2026-11-30T15:00:00Z') }] });
    sm.on(StartPipelineExecutionCommand).resolves({ PipelineExecutionArn: ARN });
    const attempt = runPipeline({ name: 'pricesense-prod-retrain', client });
    await expect(attempt).rejects.toThrow(UserError);
    await expect(runPipeline({ name: 'pricesense-prod-retrain', client })).rejects.toThrow(
      /pipeline 'pricesense-prod-retrain' already has an execution running \(.*execution\/abc-2, Executing since 2026-11-30T15:00:00.000Z\)/,
    );
    expect(sm.commandCalls(ListPipelineExecutionsCommand)[1].args[0].input).toMatchObject({ PipelineName: 'pricesense-prod-retrain', NextToken: 'p2' });
    expect(sm.commandCalls(StartPipelineExecutionCommand)).toHaveLength(0);
  });
});
