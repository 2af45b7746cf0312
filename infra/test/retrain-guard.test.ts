/**
 * The retrain guard at request level (aws-sdk-client-mock): a drift alarm starts the
 * pipeline only when no execution is Executing or Stopping, with the EventBridge event id
 * as idempotency token; and the bundle the Pulumi program deploys is that code (loaded
 * and run here against the same mock).
 */
import { ListPipelineExecutionsCommand, SageMakerClient, StartPipelineExecutionCommand } from '@aws-sdk/client-sagemaker';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { displayNameFor, startRetrainUnlessBusy, type AlarmStateChangeEvent, type GuardOutcome } from '../retrain-guard';
import { bundleRetrainGuard } from '../sagemaker-pipeline';

const PIPELINE = 'pricesense-prod-retrain';
const EXEC = `arn:aws:sagemaker:eu-west-1:111122223333:pipeline/${PIPELINE}/execution`;
const EVENT: AlarmStateChangeEvent = {
  id: '7bf73129-1428-4cd3-a780-95db273d1602',
  time: '2026-11-30T15:42:00Z',
  detail: { alarmName: 'pricesense-prod-drift-psi', state: { value: 'ALARM', reason: 'Threshold Crossed: 3 datapoints [0.31, 0.3, 0.29] were greater than the threshold (0.25).' } },
};

describe('retrain guard', () => {
  const sm = mockClient(SageMakerClient);
  const client = new SageMakerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  beforeEach(() => {
    sm.reset();
    sm.on(StartPipelineExecutionCommand).resolves({ PipelineExecutionArn: `${EXEC}/new` });
  });

  it('starts the pipeline when no execution runs, once per EventBridge event', async () => {
    sm.on(ListPipelineExecutionsCommand).resolves({
      PipelineExecutionSummaries: ['Succeeded', 'Failed', 'Stopped'].map((s, i) => ({ PipelineExecutionArn: `${EXEC}/${i}`, PipelineExecutionStatus: s as 'Succeeded' })),
    });
    const outcome = await startRetrainUnlessBusy(client, PIPELINE, EVENT, new Date('2026-11-30T15:42:10Z'));
    expect(outcome).toEqual({ outcome: 'started', executionArn: `${EXEC}/new` });
    expect(sm.commandCalls(ListPipelineExecutionsCommand)[0].args[0].input).toMatchObject({ PipelineName: PIPELINE, SortBy: 'CreationTime', SortOrder: 'Descending' });
    const start = sm.commandCalls(StartPipelineExecutionCommand)[0].args[0].input;
    expect(start).toMatchObject({ PipelineName: PIPELINE, PipelineParameters: [], ClientRequestToken: `eventbridge-${EVENT.id}`, PipelineExecutionDisplayName: 'pricesense-prod-drift-psi-20261130T1542' });
    // SageMaker's limits: the token 32-128 characters, the display name its pattern.
    expect(start.ClientRequestToken!.length).toBeGreaterThanOrEqual(32);
    expect(start.ClientRequestToken!.length).toBeLessThanOrEqual(128);
    expect(start.PipelineExecutionDisplayName).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$/);
    expect(start.PipelineExecutionDescription).toContain('pricesense-prod-drift-psi entering ALARM: Threshold Crossed');
  });

  it.each(['Executing', 'Stopping'] as const)('starts nothing while an execution is %s, wherever it is in the listing', async (status) => {
    sm.on(ListPipelineExecutionsCommand)
      .resolvesOnce({ PipelineExecutionSummaries: [{ PipelineExecutionArn: `${EXEC}/1`, PipelineExecutionStatus: 'Succeeded' }], NextToken: 'p2' })
      .resolves({ PipelineExecutionSummaries: [{ PipelineExecutionArn: `${EXEC}/0`, PipelineExecutionStatus: status, StartTime: new Date('2026-11-29T03:00:00Z') }] });
    const outcome = await startRetrainUnlessBusy(client, PIPELINE, EVENT);
    expect(outcome).toEqual({ outcome: 'skipped', busy: [{ arn: `${EXEC}/0`, status, startTime: new Date('2026-11-29T03:00:00Z') }] });
    expect(sm.commandCalls(ListPipelineExecutionsCommand)[1].args[0].input.NextToken).toBe('p2');
    expect(sm.commandCalls(StartPipelineExecutionCommand)).toHaveLength(0);
  });

  it('keeps display names within SageMaker\'s pattern whatever the alarm is called', () => {
    const at = new Date('2026-01-02T03:04:05Z');
    for (const alarm of ['pricesense-prod-drift-psi', '--weird__name--', '', 'x'.repeat(300), 'a/b:c d']) {
      expect(displayNameFor(alarm, at)).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$/);
    }
  });

  it('the bundle the Lambda runs is this guard: it skips while one runs, starts otherwise, and logs its decision', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-retrain-guard-'));
    const env = process.env.PIPELINE_NAME;
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await writeFile(path.join(dir, 'index.js'), bundleRetrainGuard());
      // The runtime provides the AWS SDK; here it is the repository's, so the mock applies.
      await symlink(path.resolve(__dirname, '../../node_modules'), path.join(dir, 'node_modules'), 'dir');
      process.env.PIPELINE_NAME = PIPELINE;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { handler } = require(path.join(dir, 'index.js')) as { handler: (e: AlarmStateChangeEvent) => Promise<GuardOutcome> };
      sm.on(ListPipelineExecutionsCommand).resolvesOnce({ PipelineExecutionSummaries: [{ PipelineExecutionArn: `${EXEC}/0`, PipelineExecutionStatus: 'Executing' }] }).resolves({ PipelineExecutionSummaries: [] });
      expect((await handler(EVENT)).outcome).toBe('skipped');
      expect((await handler(EVENT)).outcome).toBe('started');
      expect(sm.commandCalls(StartPipelineExecutionCommand)).toHaveLength(1);
      const lines = log.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
      expect(lines).toEqual([
        { event: 'retrain_skipped', pipeline: PIPELINE, alarm: 'pricesense-prod-drift-psi', eventId: EVENT.id, running: [`${EXEC}/0 (Executing)`] },
        { event: 'retrain_started', pipeline: PIPELINE, alarm: 'pricesense-prod-drift-psi', eventId: EVENT.id, executionArn: `${EXEC}/new` },
      ]);
    } finally {
      log.mockRestore();
      if (env === undefined) delete process.env.PIPELINE_NAME;
      else process.env.PIPELINE_NAME = env;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
