/**
 * The SageMaker retraining pipeline (definition from sagemaker-pipeline-definition.ts),
 * the role the Pipelines service runs it as, and an EventBridge rule that sends every
 * model package state change of the stack's group (registered, approved, rejected) to
 * the alert topic. Serving itself follows the registry by polling; the rule makes the
 * approvals visible to people.
 *
 * Two roles, two jobs: the pipeline role may only start/stop/describe this pipeline's
 * jobs, pass the job role and register packages in the group; the jobs run as the
 * ModelRegistry's execution role (lake prefixes, ECR pull, logs), which this component
 * extends with one more grant: writing the ETL's gold output under gold/pipeline/.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { buildSync } from 'esbuild';
import path from 'node:path';
import { serviceAssumeRolePolicy, type AwsContext } from './aws-context';
import type { StackConfig } from './config';
import type { DataLake } from './data-lake';
import { type ModelRegistry, modelPackagesArn } from './model-registry';
import { eventRulePrefix } from './monitoring';
import type { Platform, PlatformExtension } from './platform';
import { imageIn } from './image-registry';
import { buildPipelineDefinition, type PipelineDefinitionParams } from './sagemaker-pipeline-definition';

export type PipelineSettings = StackConfig['pipeline'];

export interface SageMakerPipelineArgs {
  readonly stack: string;
  readonly settings: PipelineSettings;
  readonly lake: DataLake;
  readonly modelRegistry: ModelRegistry;
  /** Default of the JobsImage parameter, when known at deploy time. */
  readonly jobsImage: pulumi.Input<string> | undefined;
  /** Default of the ApiImage parameter (registered for inference), when known at deploy time. */
  readonly apiImage: pulumi.Input<string> | undefined;
  readonly alertTopicArn: pulumi.Input<string>;
  /**
   * Alarms whose ALARM state starts a pipeline execution (the drift alarms, when
   * monitoring.retrainOnDrift is on); none: nothing starts it but people.
   */
  readonly retrainOnAlarms: readonly pulumi.Input<string>[];
  /** Retention of the retrain guard function's log group. */
  readonly logRetentionDays: number;
  readonly aws: AwsContext;
}

export const MODEL_PACKAGE_STATE_CHANGE = 'SageMaker Model Package State Change';

export function pipelineNameFor(stack: string): string {
  return `pricesense-${stack}-retrain`;
}

export const ALARM_STATE_CHANGE = 'CloudWatch Alarm State Change';

/** EventBridge pattern: one of these alarms entering ALARM (not OK, not INSUFFICIENT_DATA). */
export function alarmEntersAlarmPattern(alarmArns: readonly string[]): object {
  return { source: ['aws.cloudwatch'], 'detail-type': [ALARM_STATE_CHANGE], resources: [...alarmArns], detail: { state: { value: ['ALARM'] } } };
}

/** EventBridge pattern: every state change of a package in this group. */
export function modelPackageStatePattern(group: string): object {
  return { source: ['aws.sagemaker'], 'detail-type': [MODEL_PACKAGE_STATE_CHANGE], detail: { ModelPackageGroupName: [group] } };
}

/** The settings as the pure definition builder takes them (images and names resolved). */
export function definitionParams(
  settings: PipelineSettings,
  resolved: { lakeBucket: string; jobRoleArn: string; modelPackageGroup: string; jobsImage?: string; apiImage?: string },
): PipelineDefinitionParams {
  return {
    ...resolved,
    etl: { instanceType: settings.etlInstanceType, instanceCount: settings.etlInstanceCount },
    train: { instanceType: settings.trainInstanceType, instanceCount: settings.trainInstanceCount },
    evaluateInstanceType: settings.evaluateInstanceType,
    volumeSizeGiB: settings.volumeSizeGiB,
    maxRuntimeSeconds: settings.maxRuntimeSeconds,
    hyperparameters: { trees: settings.trees, maxDepth: settings.maxDepth, minLeaf: settings.minLeaf, seed: settings.seed },
    spotTraining: settings.spotTraining ? { maxWaitSeconds: settings.spotMaxWaitSeconds } : undefined,
  };
}

export class SageMakerPipeline extends pulumi.ComponentResource {
  readonly pipelineName: pulumi.Output<string>;
  readonly pipelineArn: pulumi.Output<string>;
  readonly roleArn: pulumi.Output<string>;
  readonly ruleName: pulumi.Output<string>;
  /** The drift → retraining rule; undefined when no alarm starts the pipeline. */
  readonly retrainRuleName: pulumi.Output<string> | undefined;

  constructor(name: string, args: SageMakerPipelineArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:SageMakerPipeline', name, {}, opts);
    const parent: pulumi.CustomResourceOptions = { parent: this, provider: args.aws.provider };
    const { lake, modelRegistry: models, aws: ctx } = args;
    const arn = (resource: string): pulumi.Output<string> => pulumi.interpolate`arn:${ctx.partition}:sagemaker:${ctx.region}:${ctx.accountId}:${resource}`;

    // The jobs' role (ModelRegistry) reads raw/ and writes artifacts/ and tmp/; the ETL also writes gold.
    const jobGrant = new aws.iam.RolePolicy(`${name}-jobs`, {
      role: models.executionRoleName,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [{ Sid: 'WritePipelineGold', Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: pulumi.interpolate`${lake.bucketArn}/gold/pipeline/*` }],
      }),
    }, parent);

    const role = new aws.iam.Role(`${name}-role`, {
      ...ctx.roleScope,
      description: `SageMaker Pipelines execution role for ${pipelineNameFor(args.stack)}`,
      assumeRolePolicy: serviceAssumeRolePolicy(ctx, 'sagemaker.amazonaws.com'),
    }, parent);

    // Pipelines names the jobs it starts pipelines-<execution id>-<step>-<token>.
    const jobs = [arn('processing-job/pipelines-*'), arn('training-job/pipelines-*')];
    const packages = [models.groupArn, modelPackagesArn(ctx, models.groupName)];
    const rolePolicy = new aws.iam.RolePolicy(`${name}-role`, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'RunPipelineJobs',
            Effect: 'Allow',
            Action: [
              'sagemaker:CreateProcessingJob', 'sagemaker:DescribeProcessingJob', 'sagemaker:StopProcessingJob',
              'sagemaker:CreateTrainingJob', 'sagemaker:DescribeTrainingJob', 'sagemaker:StopTrainingJob',
              'sagemaker:AddTags',
            ],
            Resource: jobs,
          },
          {
            Sid: 'RegisterInGroup',
            Effect: 'Allow',
            Action: ['sagemaker:CreateModelPackage', 'sagemaker:DescribeModelPackage', 'sagemaker:DescribeModelPackageGroup', 'sagemaker:AddTags'],
            Resource: packages,
          },
          {
            Sid: 'PassJobRole',
            Effect: 'Allow',
            Action: 'iam:PassRole',
            Resource: models.executionRoleArn,
            Condition: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } },
          },
          {
            // Property files (evaluation.json) and the registered model's metrics are read by the service.
            Sid: 'ReadPipelineArtifacts',
            Effect: 'Allow',
            Action: ['s3:GetObject'],
            Resource: pulumi.interpolate`${lake.bucketArn}/artifacts/pipeline/*`,
          },
        ],
      }),
    }, parent);

    const definition = pulumi
      .all([lake.bucketName, models.executionRoleArn, models.groupName, args.jobsImage, args.apiImage])
      .apply(([lakeBucket, jobRoleArn, modelPackageGroup, jobsImage, apiImage]) =>
        JSON.stringify(buildPipelineDefinition(definitionParams(args.settings, { lakeBucket, jobRoleArn, modelPackageGroup, jobsImage, apiImage }))),
      );

    const pipeline = new aws.sagemaker.Pipeline(`${name}`, {
      pipelineName: pipelineNameFor(args.stack),
      pipelineDisplayName: pipelineNameFor(args.stack),
      pipelineDescription: 'pricesense retraining: ETL -> train -> evaluate -> quality gates -> register (PendingManualApproval)',
      roleArn: role.arn,
      pipelineDefinition: definition,
    }, { ...parent, dependsOn: [rolePolicy, jobGrant] });
    this.pipelineName = pipeline.pipelineName;
    this.pipelineArn = pipeline.arn;
    this.roleArn = role.arn;

    const rule = new aws.cloudwatch.EventRule(`${name}-model-package-state`, {
      name: `${eventRulePrefix(args.stack)}model-package-state`,
      description: `pricesense: model package state changes in the ${args.stack} registry group (registered, approved, rejected)`,
      eventPattern: models.groupName.apply((group) => JSON.stringify(modelPackageStatePattern(group))),
    }, parent);
    this.ruleName = rule.name;
    new aws.cloudwatch.EventTarget(`${name}-model-package-state`, {
      rule: rule.name,
      arn: args.alertTopicArn,
      // One readable line for the email subscribers instead of the raw event JSON.
      inputTransformer: {
        inputPaths: {
          group: '$.detail.ModelPackageGroupName',
          version: '$.detail.ModelPackageVersion',
          status: '$.detail.ModelApprovalStatus',
          arn: '$.detail.ModelPackageArn',
        },
        inputTemplate: '"pricesense model registry: <group> version <version> is now <status> (<arn>). Review: npx pricesense registry show <version> --registry sagemaker://<group>"',
      },
    }, parent);

    this.retrainRuleName = args.retrainOnAlarms.length > 0 ? this.retrainOnAlarms(name, args, pipeline.arn, parent) : undefined;

    this.registerOutputs({ pipelineName: this.pipelineName, roleArn: this.roleArn });
  }

  /**
   * Monitoring closes the loop: an alarm entering ALARM starts one execution (EventBridge
   * sees one state change per transition, so a drift that persists starts one retrain,
   * not one per evaluation) — unless one already runs: the rule's target is the guard
   * function of infra/retrain-guard.ts, reserved concurrency 1, which lists the
   * pipeline's executions and starts one only when none is Executing or Stopping. The
   * execution goes ETL → train → evaluate → gates → register, and registration is
   * PendingManualApproval: nothing is approved or served without a person.
   */
  private retrainOnAlarms(name: string, args: SageMakerPipelineArgs, pipelineArn: pulumi.Output<string>, parent: pulumi.CustomResourceOptions): pulumi.Output<string> {
    const pipelineName = pipelineNameFor(args.stack);
    const functionName = retrainGuardFunctionName(args.stack);
    const logGroup = new aws.cloudwatch.LogGroup(`${name}-retrain-guard`, {
      name: `/aws/lambda/${functionName}`,
      retentionInDays: args.logRetentionDays,
    }, parent);
    const role = new aws.iam.Role(`${name}-retrain-trigger`, {
      ...args.aws.roleScope,
      description: `The retrain guard: starts ${pipelineName} when a drift alarm fires, unless an execution runs`,
      assumeRolePolicy: serviceAssumeRolePolicy(args.aws, 'lambda.amazonaws.com'),
    }, parent);
    const policy = new aws.iam.RolePolicy(`${name}-retrain-trigger`, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'CheckAndStartRetrainPipeline', Effect: 'Allow', Action: ['sagemaker:ListPipelineExecutions', 'sagemaker:StartPipelineExecution'], Resource: pipelineArn },
          { Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: pulumi.interpolate`${logGroup.arn}:*` },
        ],
      }),
    }, parent);
    const guard = new aws.lambda.Function(`${name}-retrain-guard`, {
      name: functionName,
      description: `pricesense ${args.stack}: start ${pipelineName} on a drift alarm unless an execution runs (infra/retrain-guard.ts)`,
      role: role.arn,
      runtime: aws.lambda.Runtime.NodeJS20dX,
      handler: 'index.handler',
      code: new pulumi.asset.AssetArchive({ 'index.js': new pulumi.asset.StringAsset(bundleRetrainGuard()) }),
      memorySize: 128,
      timeout: 60,
      // One check at a time: two alarms firing together must not both see "nothing runs".
      reservedConcurrentExecutions: 1,
      environment: { variables: { PIPELINE_NAME: pipelineName } },
      loggingConfig: { logFormat: 'Text', logGroup: logGroup.name },
    }, { ...parent, dependsOn: [policy, logGroup] });
    const rule = new aws.cloudwatch.EventRule(`${name}-drift-retrain`, {
      name: `${eventRulePrefix(args.stack)}drift-retrain`,
      description: `pricesense: a drift alarm of ${args.stack} entered ALARM: start ${pipelineName} unless it runs (ends at PendingManualApproval)`,
      eventPattern: pulumi.all([...args.retrainOnAlarms]).apply((arns) => JSON.stringify(alarmEntersAlarmPattern(arns))),
    }, parent);
    const invoke = new aws.lambda.Permission(`${name}-drift-retrain`, {
      action: 'lambda:InvokeFunction',
      function: guard.name,
      principal: 'events.amazonaws.com',
      sourceArn: rule.arn,
    }, parent);
    new aws.cloudwatch.EventTarget(`${name}-drift-retrain`, {
      rule: rule.name,
      arn: guard.arn,
    }, { ...parent, dependsOn: [invoke] });
    return rule.name;
  }
}

export function retrainGuardFunctionName(stack: string): string {
  return `pricesense-${stack}-retrain-guard`;
}

/**
 * infra/retrain-guard.ts as one CommonJS file for the Lambda runtime, which brings the AWS
 * SDK v3 itself (so it stays out of the bundle: a few KB, not megabytes).
 */
export function bundleRetrainGuard(): string {
  const built = buildSync({
    entryPoints: [path.join(__dirname, 'retrain-guard.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@aws-sdk/*'],
    write: false,
    logLevel: 'silent',
  });
  return built.outputFiles[0].text;
}

/** The platform extension wired in infra/index.ts. */
export const sagemakerPipelineExtension: PlatformExtension = (p: Platform) => {
  const cfg = p.config;
  // The release's images from the shared repositories, by digest outside dev (config.ts):
  // a retrain registers the API image that was smoke-tested, not whatever a tag points to now.
  // parseReleasedStackConfig refuses a stack without them, so both are set (review H2).
  const jobsImage = imageIn(p.images.jobs, cfg.images.jobs);
  const apiImage = imageIn(p.images.api, cfg.images.api);
  const pipeline = new SageMakerPipeline('pipeline', {
    stack: cfg.stack,
    settings: cfg.pipeline,
    lake: p.lake,
    modelRegistry: p.modelRegistry,
    jobsImage,
    apiImage,
    alertTopicArn: p.monitoring.alertTopicArn,
    logRetentionDays: cfg.monitoring.logRetentionDays,
    retrainOnAlarms: cfg.monitoring.retrainOnDrift ? p.monitoring.apiAlarms.filter((a) => a.definition.startsRetraining).map((a) => a.arn) : [],
    aws: p.aws,
  }, { providers: { aws: p.aws.provider } });
  return { sagemakerPipelineName: pipeline.pipelineName, driftRetrainRule: pipeline.retrainRuleName ?? null, pipelineApiImage: apiImage ?? null, pipelineJobsImage: jobsImage ?? null };
};
