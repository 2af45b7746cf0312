/**
 * The SageMaker Model Package Group the registry (`sagemaker://<group>`) writes to,
 * and the execution role SageMaker jobs (training, the pipeline added later) run as.
 * The role is least privilege: it reads the lake's input zones, writes artifacts/,
 * logs/ and tmp/, and registers packages only in this group.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { DataLake } from './data-lake';
import { serviceAssumeRolePolicy, type AwsContext } from './aws-context';
import type { Tier } from './config';
import { DATA_RETENTION } from './teardown';

export interface ModelRegistryArgs {
  readonly tier: Tier;
  readonly stack: string;
  readonly lake: DataLake;
  /** The shared jobs image repository the SageMaker jobs pull from. */
  readonly jobsRepositoryArn: pulumi.Input<string>;
  readonly aws: AwsContext;
}

export function modelPackageGroupArn(ctx: AwsContext, group: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.interpolate`arn:${ctx.partition}:sagemaker:${ctx.region}:${ctx.accountId}:model-package-group/${group}`;
}

/** Versions of a group are `model-package/<group>/<n>`. */
export function modelPackagesArn(ctx: AwsContext, group: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.interpolate`arn:${ctx.partition}:sagemaker:${ctx.region}:${ctx.accountId}:model-package/${group}/*`;
}

export class ModelRegistry extends pulumi.ComponentResource {
  readonly groupName: pulumi.Output<string>;
  readonly groupArn: pulumi.Output<string>;
  readonly executionRoleArn: pulumi.Output<string>;
  readonly executionRoleName: pulumi.Output<string>;

  constructor(name: string, args: ModelRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:ModelRegistry', name, {}, opts);
    const parent = { parent: this };
    const { lake, aws: ctx } = args;

    // The group holds the approval history: protected in stage and prod, retained in prod.
    // SageMaker refuses to delete a group that still has versions, so a dev teardown
    // deletes the versions first (.github/scripts/teardown.sh).
    const retention = DATA_RETENTION[args.tier];
    const group = new aws.sagemaker.ModelPackageGroup(`${name}`, {
      // Lowercase: SageMaker lowercases names inside ARNs, and IAM matches ARNs case-sensitively.
      modelPackageGroupName: `pricesense-${args.stack}`,
      modelPackageGroupDescription: `pricesense price-sensitivity models (${args.stack})`,
    }, { ...parent, protect: retention.protect, retainOnDelete: retention.retainOnDelete });
    this.groupName = group.modelPackageGroupName;
    this.groupArn = group.arn;

    const role = new aws.iam.Role(`${name}-sagemaker`, {
      ...ctx.roleScope,
      description: 'SageMaker execution role for pricesense jobs',
      assumeRolePolicy: serviceAssumeRolePolicy(ctx, 'sagemaker.amazonaws.com'),
    }, parent);

    new aws.iam.RolePolicy(`${name}-sagemaker`, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'ListLakeZones',
            Effect: 'Allow',
            Action: ['s3:ListBucket'],
            Resource: lake.bucketArn,
            Condition: { StringLike: { 's3:prefix': ['raw/*', 'silver/*', 'gold/*', 'artifacts/*', 'logs/*', 'tmp/*'] } },
          },
          {
            Sid: 'ReadInputZones',
            Effect: 'Allow',
            Action: ['s3:GetObject'],
            Resource: [lake.objectsArn('raw'), lake.objectsArn('silver'), lake.objectsArn('gold'), lake.objectsArn('artifacts'), lake.objectsArn('tmp')],
          },
          {
            Sid: 'WriteOutputZones',
            Effect: 'Allow',
            Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
            Resource: [lake.objectsArn('artifacts'), lake.objectsArn('logs'), lake.objectsArn('tmp')],
          },
          {
            Sid: 'DeleteScratch',
            Effect: 'Allow',
            Action: ['s3:DeleteObject'],
            Resource: [lake.objectsArn('tmp')],
          },
          {
            Sid: 'RegisterModels',
            Effect: 'Allow',
            Action: ['sagemaker:CreateModelPackage', 'sagemaker:DescribeModelPackageGroup', 'sagemaker:DescribeModelPackage', 'sagemaker:AddTags'],
            Resource: [group.arn, modelPackagesArn(ctx, group.modelPackageGroupName)],
          },
          {
            Sid: 'PullTrainingImage',
            Effect: 'Allow',
            Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
            Resource: args.jobsRepositoryArn,
          },
          {
            // GetAuthorizationToken has no resource-level permissions in IAM.
            Sid: 'EcrAuth',
            Effect: 'Allow',
            Action: ['ecr:GetAuthorizationToken'],
            Resource: '*',
          },
          {
            Sid: 'JobLogs',
            Effect: 'Allow',
            Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
            Resource: pulumi.interpolate`arn:${ctx.partition}:logs:${ctx.region}:${ctx.accountId}:log-group:/aws/sagemaker/*`,
          },
          {
            // PutMetricData has no resource-level permissions; the namespace condition scopes it.
            Sid: 'JobMetrics',
            Effect: 'Allow',
            Action: ['cloudwatch:PutMetricData'],
            Resource: '*',
            Condition: { StringLike: { 'cloudwatch:namespace': ['/aws/sagemaker/*', 'pricesense/*'] } },
          },
        ],
      }),
    }, parent);
    this.executionRoleArn = role.arn;
    this.executionRoleName = role.name;
    this.registerOutputs({ groupName: this.groupName, executionRoleArn: this.executionRoleArn });
  }
}
