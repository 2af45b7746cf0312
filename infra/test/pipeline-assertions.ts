/**
 * The SageMaker pipeline extension, asserted against each stack's mocked run (called from
 * describeStack, so the program runs once per stack file).
 */
import { ACCOUNT, DIGEST, JOBS_DIGEST, REGION, REGISTRY, policyDoc, type ProgramRun } from './harness';
import { definitionProblems, type PipelineDefinition } from '../sagemaker-pipeline-definition';
import { RULES, evaluate } from '../policies/rules';
import { apiAlarms } from '../api-alarms';
import { parseStackConfig } from '../config';
import { stackConfig } from './harness';
import { runPolicies } from './policy-engine';

export interface PipelineExpectations {
  readonly trainInstanceCount: number;
  readonly spotTraining: boolean;
  /** The stack file's monitoring.retrainOnDrift (the bare run has it the other way round). */
  readonly retrainOnDrift: boolean;
}

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => v as Obj;

export function describePipeline(stack: string, getRun: () => ProgramRun, getBare: () => ProgramRun, e: PipelineExpectations): void {
  describe('sagemaker pipeline', () => {
    const definition = (): PipelineDefinition => JSON.parse(String(getRun().one('aws:sagemaker/pipeline:Pipeline').inputs.pipelineDefinition)) as PipelineDefinition;

    test('a Pipeline with a parseable, consistent definition bound to this stack and the pipeline role', () => {
      const run = getRun();
      const pipeline = run.one('aws:sagemaker/pipeline:Pipeline');
      expect(pipeline.inputs.pipelineName).toBe(`pricesense-${stack}-retrain`);
      expect(pipeline.inputs.roleArn).toBe(run.one('aws:iam/role:Role', 'pipeline-role').state.arn);
      const d = definition();
      expect(d.Version).toBe('2020-12-01');
      expect(d.Steps.map((s) => s.Name)).toEqual(['Etl', 'Train', 'Evaluate', 'CheckGates']);
      expect(definitionProblems(d)).toEqual([]);
      const text = JSON.stringify(d);
      const bucket = run.one('aws:s3/bucket:Bucket').id;
      const jobRole = run.one('aws:iam/role:Role', 'models-sagemaker').state.arn;
      expect(text).toContain(`s3://${bucket}/gold/pipeline`);
      expect(d.Steps.filter((s) => s.Type !== 'Condition').every((s) => s.Arguments.RoleArn === jobRole)).toBe(true);
      expect(text).toContain(`"ModelPackageGroupName":"pricesense-${stack}"`);
      expect(run.outputs.sagemakerPipelineName).toBe(`pricesense-${stack}-retrain`);
    });

    test('parameter defaults follow the stack config and the release\'s images, by digest from the shared repositories', () => {
      const byName = Object.fromEntries(definition().Parameters.map((p) => [p.Name, p]));
      expect(byName.TrainInstanceCount.DefaultValue).toBe(e.trainInstanceCount);
      expect(byName.ApiImage.DefaultValue).toBe(`${REGISTRY}/pricesense/api@${DIGEST}`);
      expect(byName.JobsImage.DefaultValue).toBe(`${REGISTRY}/pricesense/jobs@${JOBS_DIGEST}`);
      const train = definition().Steps[1].Arguments;
      expect(train.EnableManagedSpotTraining === true).toBe(e.spotTraining);
    });

    test(`policy pack: a pipeline defaulting to an image by tag ${stack === 'dev' ? 'passes in dev' : `is caught in ${stack}`}`, () => {
      const tagged = getRun().checked().map((r) => {
        if (r.type !== 'aws:sagemaker/pipeline:Pipeline') return r;
        const d = JSON.parse(String(r.props.pipelineDefinition)) as PipelineDefinition;
        const params = d.Parameters.map((p) => (p.Name === 'JobsImage' ? { ...p, DefaultValue: `${REGISTRY}/pricesense/jobs:1.0.0` } : p));
        return { ...r, props: { ...r.props, pipelineDefinition: JSON.stringify({ ...d, Parameters: params }) } };
      });
      const caught = runPolicies(tagged).violations.filter((v) => v.rule === 'images-by-digest-outside-dev').map((v) => v.message);
      expect(caught).toEqual(stack === 'dev' ? [] : [expect.stringContaining('parameter JobsImage runs')]);
    });

    test('EventBridge: model package state changes of the group go to the alert topic, which lets this stack\'s rules publish', () => {
      const run = getRun();
      const rule = run.one('aws:cloudwatch/eventRule:EventRule', 'pipeline-model-package-state');
      expect(JSON.parse(String(rule.inputs.eventPattern))).toEqual({
        source: ['aws.sagemaker'],
        'detail-type': ['SageMaker Model Package State Change'],
        detail: { ModelPackageGroupName: [`pricesense-${stack}`] },
      });
      const topic = run.one('aws:sns/topic:Topic');
      const target = run.one('aws:cloudwatch/eventTarget:EventTarget', 'pipeline-model-package-state');
      expect(target.inputs).toMatchObject({ rule: rule.inputs.name, arn: topic.state.arn });
      expect(target.inputs.roleArn).toBeUndefined(); // SNS targets go through the topic policy
      const statements = policyDoc(run.one('aws:sns/topicPolicy:TopicPolicy').inputs.policy).Statement;
      const events = statements.find((s) => JSON.stringify(s.Principal).includes('events.amazonaws.com'));
      expect(events).toMatchObject({ Effect: 'Allow', Action: 'sns:Publish', Resource: topic.state.arn });
      const sourceArn = String(o(o(events?.Condition).ArnLike)['aws:SourceArn']);
      const ruleArn = `arn:aws:events:${REGION}:${ACCOUNT}:rule/${String(rule.inputs.name)}`;
      expect(new RegExp(`^${sourceArn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\*/g, '.*')}$`).test(ruleArn)).toBe(true);
      expect(sourceArn).not.toBe('*');
    });

    const retrainCases: [string, () => ProgramRun, boolean][] = [
      ['the stack file', getRun, e.retrainOnDrift],
      ['the switch flipped', getBare, !e.retrainOnDrift],
    ];
    test.each(retrainCases)('drift alarms → EventBridge → retraining pipeline, as monitoring.retrainOnDrift says (%s)', (_case, run, on) => {
      const r = run();
      const rule = r.ofType('aws:cloudwatch/eventRule:EventRule').find((x) => x.name === 'pipeline-drift-retrain');
      if (!on) {
        expect(rule).toBeUndefined();
        expect(r.ofType('aws:cloudwatch/eventTarget:EventTarget').map((t) => t.name)).toEqual(['pipeline-model-package-state']);
        expect(r.outputs.driftRetrainRule).toBeNull();
        return;
      }
      // The rule: exactly the alarms declared as starting a retrain (PSI, unknown categories), entering ALARM.
      const starting = apiAlarms(stack, parseStackConfig(stack, 'pricesense', stackConfig('platform', stack)).monitoring).filter((a) => a.startsRetraining).map((a) => a.id);
      expect(starting.sort()).toEqual(['drift-psi', 'drift-unknown-categories']);
      const arns = starting.map((id) => r.one('aws:cloudwatch/metricAlarm:MetricAlarm', `monitoring-${id}`).state.arn);
      expect(JSON.parse(String(rule?.inputs.eventPattern))).toEqual({
        source: ['aws.cloudwatch'], 'detail-type': ['CloudWatch Alarm State Change'], resources: arns, detail: { state: { value: ['ALARM'] } },
      });
      expect(rule?.inputs.name).toBe(`pricesense-${stack}-drift-retrain`);
      expect(r.outputs.driftRetrainRule).toBe(`pricesense-${stack}-drift-retrain`);
      // The target: the retrain guard (one execution at a time), allowed to list and start this pipeline's executions and nothing else.
      const pipelineArn = r.one('aws:sagemaker/pipeline:Pipeline').state.arn;
      const target = r.one('aws:cloudwatch/eventTarget:EventTarget', 'pipeline-drift-retrain').inputs;
      const guard = r.one('aws:lambda/function:Function', 'pipeline-retrain-guard');
      const role = r.one('aws:iam/role:Role', 'pipeline-retrain-trigger');
      expect(target).toMatchObject({ rule: rule?.inputs.name, arn: guard.state.arn });
      expect(target.roleArn).toBeUndefined();
      expect(guard.inputs).toMatchObject({
        name: `pricesense-${stack}-retrain-guard`,
        role: role.state.arn,
        handler: 'index.handler',
        reservedConcurrentExecutions: 1,
        environment: { variables: { PIPELINE_NAME: `pricesense-${stack}-retrain` } },
      });
      expect(r.one('aws:lambda/permission:Permission', 'pipeline-drift-retrain').inputs).toMatchObject({
        action: 'lambda:InvokeFunction', function: guard.inputs.name, principal: 'events.amazonaws.com', sourceArn: rule?.state.arn,
      });
      expect(policyDoc(role.inputs.assumeRolePolicy).Statement).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } },
      ]);
      const logGroup = r.one('aws:cloudwatch/logGroup:LogGroup', 'pipeline-retrain-guard');
      expect(logGroup.inputs.name).toBe(`/aws/lambda/pricesense-${stack}-retrain-guard`);
      expect(policyDoc(r.one('aws:iam/rolePolicy:RolePolicy', 'pipeline-retrain-trigger').inputs.policy).Statement).toEqual([
        { Sid: 'CheckAndStartRetrainPipeline', Effect: 'Allow', Action: ['sagemaker:ListPipelineExecutions', 'sagemaker:StartPipelineExecution'], Resource: pipelineArn },
        { Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: `${logGroup.state.arn}:*` },
      ]);
      // Still a human gate at the end: the pipeline registers PendingManualApproval, never Approved.
      const register = (JSON.parse(String(r.one('aws:sagemaker/pipeline:Pipeline').inputs.pipelineDefinition)) as PipelineDefinition).Steps
        .flatMap((s) => [s, ...(((s.Arguments as Obj).IfSteps as PipelineDefinition['Steps'] | undefined) ?? [])])
        .find((s) => s.Name === 'RegisterModel');
      expect(o(register?.Arguments).ModelApprovalStatus).toBe('PendingManualApproval');
    });

    test('pipeline role: trusted by SageMaker for this account, scoped to its jobs, the group and passing the job role', () => {
      const run = getRun();
      const trust = policyDoc(run.one('aws:iam/role:Role', 'pipeline-role').inputs.assumeRolePolicy).Statement;
      expect(trust).toEqual([{ Effect: 'Allow', Principal: { Service: 'sagemaker.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } }]);
      const statements = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'pipeline-role').inputs.policy).Statement;
      const resources = statements.flatMap((s) => [s.Resource].flat() as string[]);
      expect(resources).not.toContain('*');
      expect(statements.find((s) => s.Sid === 'RunPipelineJobs')?.Resource).toEqual([
        `arn:aws:sagemaker:${REGION}:${ACCOUNT}:processing-job/pipelines-*`,
        `arn:aws:sagemaker:${REGION}:${ACCOUNT}:training-job/pipelines-*`,
      ]);
      expect(statements.find((s) => s.Sid === 'RegisterInGroup')?.Resource).toEqual([
        `arn:aws:sagemaker:${REGION}:${ACCOUNT}:model-package-group/pricesense-${stack}`,
        `arn:aws:sagemaker:${REGION}:${ACCOUNT}:model-package/pricesense-${stack}/*`,
      ]);
      expect(statements.find((s) => s.Sid === 'PassJobRole')).toEqual({
        Sid: 'PassJobRole', Effect: 'Allow', Action: 'iam:PassRole',
        Resource: run.one('aws:iam/role:Role', 'models-sagemaker').state.arn,
        Condition: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } },
      });
      const bucket = run.one('aws:s3/bucket:Bucket').id;
      const jobs = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'pipeline-jobs').inputs.policy).Statement;
      expect(jobs).toEqual([expect.objectContaining({ Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: `arn:aws:s3:::${bucket}/gold/pipeline/*` })]);
      expect(run.one('aws:iam/rolePolicy:RolePolicy', 'pipeline-jobs').inputs.role).toBe(run.one('aws:iam/role:Role', 'models-sagemaker').state.name);
    });

    test('policy pack: the pipeline\'s resources pass every rule; a wildcard grant on them is caught', () => {
      const mine = getRun().checked().filter((r) => /^pipeline/.test(r.name));
      expect(mine.map((r) => r.type)).toEqual(expect.arrayContaining(['aws:sagemaker/pipeline:Pipeline', 'aws:iam/rolePolicy:RolePolicy', 'aws:cloudwatch/eventRule:EventRule']));
      expect(RULES.flatMap((rule) => evaluate(rule, mine))).toEqual([]);
      const widened = mine.map((r) => (r.name === 'pipeline-role' && r.type === 'aws:iam/rolePolicy:RolePolicy'
        ? { ...r, props: { ...r.props, policy: JSON.stringify({ Statement: [{ Sid: 'Oops', Effect: 'Allow', Action: 'sagemaker:*', Resource: '*' }, { Effect: 'Allow', Action: '*', Resource: '*' }] }) } }
        : r));
      // "*" on "*" and a whole service on "*" are each caught by their rule.
      const violations = RULES.flatMap((rule) => evaluate(rule, widened));
      expect(violations.map((v) => [v.rule, v.message])).toEqual([
        ['iam-no-star-actions-on-star-resources', 'pipeline-role allows "*" actions on "*" resources'],
        ['iam-no-service-wildcards', 'pipeline-role allows sagemaker:* on "*" (statement Oops)'],
      ]);
    });
  });
}
