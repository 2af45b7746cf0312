/**
 * The API pods' AWS identity (IRSA): a role only the `mlops/pricesense-api` service account
 * can assume, reading only the lake's artifacts/ prefix and the stack's model package
 * group. An AWS resource, so it lives in the platform stack; the app project (run inside
 * the VPC) only annotates its service account with the role ARN and creates no IAM.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { irsaAssumeRolePolicy, type AwsContext } from './aws-context';
import { APP_NAMESPACE, SERVICE_ACCOUNT } from './app-contract';
import { modelPackagesArn } from './model-registry';

export interface ApiIdentityArgs {
  readonly lakeBucketArn: pulumi.Input<string>;
  readonly modelPackageGroupName: pulumi.Input<string>;
  readonly modelPackageGroupArn: pulumi.Input<string>;
  readonly oidcProviderArn: pulumi.Input<string>;
  /** Issuer host and path, without https:// (the form IAM condition keys use). */
  readonly oidcIssuer: pulumi.Input<string>;
  readonly aws: AwsContext;
}

export class ApiIdentity extends pulumi.ComponentResource {
  readonly roleArn: pulumi.Output<string>;

  constructor(name: string, args: ApiIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:ApiIdentity', name, {}, opts);
    const parent: pulumi.CustomResourceOptions = { parent: this, provider: args.aws.provider };

    const role = new aws.iam.Role(`${name}-irsa`, {
      ...args.aws.roleScope,
      description: `IRSA role of ${APP_NAMESPACE}/${SERVICE_ACCOUNT}`,
      assumeRolePolicy: irsaAssumeRolePolicy(args.oidcProviderArn, args.oidcIssuer, APP_NAMESPACE, SERVICE_ACCOUNT),
    }, parent);
    new aws.iam.RolePolicy(`${name}-irsa`, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'ReadArtifacts', Effect: 'Allow', Action: ['s3:GetObject'], Resource: pulumi.interpolate`${args.lakeBucketArn}/artifacts/*` },
          {
            Sid: 'ListArtifacts',
            Effect: 'Allow',
            Action: ['s3:ListBucket'],
            Resource: args.lakeBucketArn,
            Condition: { StringLike: { 's3:prefix': ['artifacts/', 'artifacts/*'] } },
          },
          {
            Sid: 'DescribeModels',
            Effect: 'Allow',
            Action: ['sagemaker:DescribeModelPackageGroup', 'sagemaker:DescribeModelPackage', 'sagemaker:ListTags'],
            Resource: [args.modelPackageGroupArn, modelPackagesArn(args.aws, args.modelPackageGroupName)],
          },
          {
            // ListModelPackages has no resource-level permissions in IAM; it is read-only.
            Sid: 'ListModels',
            Effect: 'Allow',
            Action: ['sagemaker:ListModelPackages'],
            Resource: '*',
          },
        ],
      }),
    }, parent);
    this.roleArn = role.arn;
    this.registerOutputs({ roleArn: this.roleArn });
  }
}
