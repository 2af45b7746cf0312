/**
 * The in-VPC deployer: a CodeBuild project whose builds run in the private subnets and run
 * the app project (infra/app: the Kubernetes objects) against the cluster's private API
 * endpoint. GitHub-hosted runners cannot reach a private endpoint (and must not reach a
 * public one: its CIDR list would have to admit all of GitHub's address space), so the
 * release workflow runs the platform project from GitHub (AWS APIs only) and starts a build
 * of this project for everything that talks to Kubernetes: `pulumi up` of the app stack,
 * the smoke test through the API server, rollback, and the app stack's destroy.
 *
 * The build has no route to the internet (no NAT): it reaches the Pulumi state bucket
 * through the S3 gateway endpoint, KMS and CloudWatch Logs through interface endpoints,
 * and the API server through the cluster security group. CodeBuild pulls the build image
 * itself, outside the VPC, so the deployer image (infra/deployer/Dockerfile: Pulumi CLI,
 * plugins, kubectl, AWS CLI, the repository at this release) comes from ECR by digest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { AwsContext } from './aws-context';
import type { DeployerSettings } from './config';
import { defaultStateBucket } from './environment-boundary';

export const APP_PROJECT = 'pricesense-app';
export const PLATFORM_PROJECT = 'pricesense';
/** Buildspec of every deployer build; the image carries the script it calls. */
export const BUILDSPEC_FILE = path.join(__dirname, 'deployer', 'buildspec.yml');
const CLUSTER_ADMIN_POLICY = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy';

export function deployerProjectName(stack: string): string {
  return `pricesense-${stack}-deployer`;
}

/** The KMS alias of a stack's Pulumi secrets key (created by the delivery bootstrap). */
export function secretsKeyAlias(stack: string): string {
  return `alias/pricesense-${stack}-pulumi`;
}

export interface DeployerArgs {
  readonly stack: string;
  readonly clusterName: string;
  /** The deployer image, by digest. */
  readonly image: pulumi.Input<string>;
  readonly imageRepositoryArn: pulumi.Input<string>;
  readonly vpcId: pulumi.Input<string>;
  readonly vpcCidr: string;
  readonly privateSubnetIds: pulumi.Input<string>[];
  readonly s3PrefixListId: pulumi.Input<string>;
  readonly clusterSecurityGroupId: pulumi.Input<string>;
  readonly settings: DeployerSettings;
  readonly logRetentionDays: number;
  readonly aws: AwsContext;
  /** The access entry needs the cluster; created after it, removed before it. */
  readonly cluster: pulumi.Resource;
}

export class Deployer extends pulumi.ComponentResource {
  readonly projectName: pulumi.Output<string>;
  /** The deployer image the builds run (by digest outside dev). */
  readonly image: pulumi.Output<string>;
  readonly roleArn: pulumi.Output<string>;

  constructor(name: string, args: DeployerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:Deployer', name, {}, opts);
    const ctx = args.aws;
    const parent: pulumi.CustomResourceOptions = { parent: this, provider: ctx.provider };
    const projectName = deployerProjectName(args.stack);
    this.image = pulumi.output(args.image);
    const stateBucket = args.settings.stateBucket ?? ctx.accountId.apply(defaultStateBucket);
    const projectArn = pulumi.interpolate`arn:${ctx.partition}:codebuild:${ctx.region}:${ctx.accountId}:project/${projectName}`;

    const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, {
      name: `/aws/codebuild/${projectName}`,
      retentionInDays: args.logRetentionDays,
    }, parent);

    // HTTPS only, and only inside the VPC (interface endpoints, the API server's ENIs) or to S3.
    const sg = new aws.ec2.SecurityGroup(`${name}-sg`, {
      vpcId: args.vpcId,
      description: 'pricesense deployer builds: HTTPS to the VPC (API server, endpoints) and S3',
      tags: { Name: `${projectName}` },
    }, parent);
    new aws.vpc.SecurityGroupEgressRule(`${name}-to-vpc`, {
      securityGroupId: sg.id,
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      cidrIpv4: args.vpcCidr,
      description: 'Kubernetes API server and interface endpoints',
    }, parent);
    new aws.vpc.SecurityGroupEgressRule(`${name}-to-s3`, {
      securityGroupId: sg.id,
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      prefixListId: args.s3PrefixListId,
      description: 'Pulumi state through the S3 gateway endpoint',
    }, parent);
    const apiIngress = new aws.vpc.SecurityGroupIngressRule(`${name}-to-api-server`, {
      securityGroupId: args.clusterSecurityGroupId,
      referencedSecurityGroupId: sg.id,
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      description: 'pricesense deployer builds to the Kubernetes API server',
    }, parent);

    const role = new aws.iam.Role(`${name}-role`, {
      ...ctx.roleScope,
      description: `CodeBuild service role of ${projectName}`,
      // Only CodeBuild, only for this account, only for this project.
      assumeRolePolicy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [{
          Effect: 'Allow',
          Principal: { Service: 'codebuild.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'aws:SourceAccount': ctx.accountId }, ArnLike: { 'aws:SourceArn': projectArn } },
        }],
      }),
    }, parent);
    this.roleArn = role.arn;

    const subnetArns = args.privateSubnetIds.map((id) => pulumi.interpolate`arn:${ctx.partition}:ec2:${ctx.region}:${ctx.accountId}:subnet/${id}`);
    const stateObject = (key: string): pulumi.Output<string> => pulumi.interpolate`arn:${ctx.partition}:s3:::${stateBucket}/.pulumi/${key}`;
    const rolePolicy = new aws.iam.RolePolicy(`${name}-role`, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'BuildLogs',
            Effect: 'Allow',
            Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
            Resource: pulumi.interpolate`${logGroup.arn}:*`,
          },
          {
            // What CodeBuild needs to attach a build to the VPC; these describe calls have no resource-level permissions.
            Sid: 'VpcDescribe',
            Effect: 'Allow',
            Action: ['ec2:CreateNetworkInterface', 'ec2:DescribeDhcpOptions', 'ec2:DescribeNetworkInterfaces', 'ec2:DeleteNetworkInterface', 'ec2:DescribeSubnets', 'ec2:DescribeSecurityGroups', 'ec2:DescribeVpcs'],
            Resource: '*',
          },
          {
            Sid: 'VpcAttach',
            Effect: 'Allow',
            Action: ['ec2:CreateNetworkInterfacePermission'],
            Resource: pulumi.interpolate`arn:${ctx.partition}:ec2:${ctx.region}:${ctx.accountId}:network-interface/*`,
            Condition: { StringEquals: { 'ec2:AuthorizedService': 'codebuild.amazonaws.com' }, ArnEquals: { 'ec2:Subnet': subnetArns } },
          },
          {
            Sid: 'PullDeployerImage',
            Effect: 'Allow',
            Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
            Resource: args.imageRepositoryArn,
          },
          {
            // GetAuthorizationToken has no resource-level permissions in IAM.
            Sid: 'EcrAuth',
            Effect: 'Allow',
            Action: ['ecr:GetAuthorizationToken'],
            Resource: '*',
          },
          {
            Sid: 'ListState',
            Effect: 'Allow',
            Action: ['s3:ListBucket'],
            Resource: pulumi.interpolate`arn:${ctx.partition}:s3:::${stateBucket}`,
            Condition: { StringLike: { 's3:prefix': ['.pulumi/*'] } },
          },
          {
            // The DIY backend's project-scoped layout: .pulumi/{stacks,history,backups}/<project>/<stack>…
            // and .pulumi/locks/<org>/<project>/<stack>/…. Reads the platform stack (StackReference).
            Sid: 'ReadState',
            Effect: 'Allow',
            Action: ['s3:GetObject'],
            Resource: [stateObject('meta.yaml'), stateObject(`stacks/${PLATFORM_PROJECT}/${args.stack}.json*`), stateObject(`*/${APP_PROJECT}/${args.stack}.json*`), stateObject(`*/${APP_PROJECT}/${args.stack}/*`)],
          },
          {
            Sid: 'WriteAppState',
            Effect: 'Allow',
            Action: ['s3:PutObject', 's3:DeleteObject'],
            Resource: [stateObject(`*/${APP_PROJECT}/${args.stack}.json*`), stateObject(`*/${APP_PROJECT}/${args.stack}/*`)],
          },
          {
            // Stack secrets (the kubeconfig output): this stack's key only.
            Sid: 'StackSecrets',
            Effect: 'Allow',
            Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: pulumi.interpolate`arn:${ctx.partition}:kms:${ctx.region}:${ctx.accountId}:key/*`,
            Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': secretsKeyAlias(args.stack) } },
          },
        ],
      }),
    }, parent);

    // Kubernetes rights come from an EKS access entry, not from IAM: cluster admin, because
    // the app project creates its namespace (a cluster-scoped object).
    const entry = new aws.eks.AccessEntry(`${name}-access`, {
      clusterName: args.clusterName,
      principalArn: role.arn,
      type: 'STANDARD',
    }, { ...parent, dependsOn: [args.cluster] });
    const access = new aws.eks.AccessPolicyAssociation(`${name}-access`, {
      clusterName: args.clusterName,
      principalArn: role.arn,
      policyArn: CLUSTER_ADMIN_POLICY,
      accessScope: { type: 'cluster' },
    }, { ...parent, dependsOn: [entry] });

    const project = new aws.codebuild.Project(`${name}`, {
      name: projectName,
      description: `pricesense ${args.stack}: runs the app project (Kubernetes objects) from inside the VPC`,
      serviceRole: role.arn,
      source: { type: 'NO_SOURCE', buildspec: fs.readFileSync(BUILDSPEC_FILE, 'utf8') },
      artifacts: { type: 'NO_ARTIFACTS' },
      environment: {
        type: 'LINUX_CONTAINER',
        computeType: args.settings.computeType,
        image: args.image,
        imagePullCredentialsType: 'SERVICE_ROLE',
        environmentVariables: [
          { name: 'STACK', value: args.stack },
          { name: 'PULUMI_BACKEND_URL', value: pulumi.interpolate`s3://${stateBucket}?region=${ctx.region}` },
        ],
      },
      vpcConfig: { vpcId: args.vpcId, subnets: args.privateSubnetIds, securityGroupIds: [sg.id] },
      logsConfig: { cloudwatchLogs: { groupName: logGroup.name, status: 'ENABLED' } },
      buildTimeout: args.settings.timeoutMinutes,
      queuedTimeout: 60,
      // One deploy per environment at a time (the Pulumi lock would refuse a second one anyway).
      concurrentBuildLimit: 1,
    }, { ...parent, dependsOn: [rolePolicy, access, apiIngress] });
    this.projectName = project.name;
    this.registerOutputs({ projectName: this.projectName, roleArn: this.roleArn });
  }
}
