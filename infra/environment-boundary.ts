/**
 * What separates one environment from another inside one AWS account (review H1 of issue 11).
 *
 * A deploy role holds PowerUserAccess plus the IAM actions the platform needs, so "who can
 * assume which role" alone is no boundary: the dev role could start the prod deployer, add
 * itself to the prod cluster, write prod's Pulumi state or create a role with `*:*`. Every
 * environment's resources are therefore predictable (names, IAM path, `stack` tag), and each
 * deploy role is denied every other environment's, and every role a deploy role creates must
 * carry its environment's permissions boundary, which denies the same.
 *
 * No dependency on the cloud SDKs: the delivery stack, the platform and the policy pack use it.
 */

/** IAM path of the delivery stack's roles and of the permissions boundaries; every deploy role is denied it. */
export const DELIVERY_PATH = '/pricesense-delivery/';
/** Tag on a deploy role naming the Pulumi state bucket it deploys with (the policy rule's probes need it). */
export const STATE_BUCKET_TAG = 'pulumi-state-bucket';

/** The Pulumi state bucket (self-managed S3 backend) when the stack config names none. */
export function defaultStateBucket(accountId: string): string {
  return `pricesense-pulumi-state-${accountId}`;
}

/** Path of every IAM role an environment's platform creates: deploy roles may touch only their own. */
export function environmentRolePath(environment: string): string {
  return `/pricesense-${environment}/`;
}

/** Name of the managed policy every role of the environment carries as its permissions boundary. */
export function boundaryPolicyName(environment: string): string {
  return `pricesense-${environment}-boundary`;
}

/** The boundary's ARN (the delivery stack creates it under DELIVERY_PATH). */
export function boundaryPolicyArn(partition: string, accountId: string, environment: string): string {
  return `arn:${partition}:iam::${accountId}:policy${DELIVERY_PATH}${boundaryPolicyName(environment)}`;
}

export interface AccountFacts {
  readonly partition: string;
  readonly accountId: string;
  /** The Pulumi state bucket (self-managed S3 backend). */
  readonly stateBucket: string;
}

/**
 * ARN patterns of everything that belongs to `environment` by name: its deployer project,
 * cluster (and node groups, add-ons, access entries), Pulumi state of both projects, IAM
 * roles, lake bucket, model package group and pipeline. Regions are wildcards.
 */
export function environmentResourcePatterns(environment: string, a: AccountFacts): string[] {
  const p = a.partition;
  const acct = a.accountId;
  return [
    `arn:${p}:codebuild:*:${acct}:project/pricesense-${environment}-*`,
    `arn:${p}:codebuild:*:${acct}:build/pricesense-${environment}-*`,
    `arn:${p}:eks:*:${acct}:cluster/pricesense-${environment}`,
    `arn:${p}:eks:*:${acct}:*/pricesense-${environment}/*`,
    // DIY backend: .pulumi/{stacks,history,backups}/<project>/<stack>… and .pulumi/locks/<org>/<project>/<stack>/…
    `arn:${p}:s3:::${a.stateBucket}/.pulumi/*/${environment}.json*`,
    `arn:${p}:s3:::${a.stateBucket}/.pulumi/*/${environment}/*`,
    `arn:${p}:iam::${acct}:role${environmentRolePath(environment)}*`,
    `arn:${p}:s3:::pricesense-lake-${environment}-*`,
    `arn:${p}:sagemaker:*:${acct}:model-package-group/pricesense-${environment}`,
    `arn:${p}:sagemaker:*:${acct}:model-package/pricesense-${environment}/*`,
    `arn:${p}:sagemaker:*:${acct}:pipeline/pricesense-${environment}-*`,
    `arn:${p}:scheduler:*:${acct}:schedule/pricesense-${environment}/*`,
  ];
}

/**
 * Concrete things an attacker holding another environment's role would go for (review H1),
 * as [action, resource ARN, resource tags]: the policy rule `deploy-roles-isolated` checks each
 * is explicitly denied to every other environment's deploy role. Independent of the patterns
 * above on purpose: they are what a real request would name.
 */
export function environmentProbes(environment: string, a: AccountFacts, region: string): [string, string, Record<string, string>][] {
  const p = a.partition;
  const acct = a.accountId;
  const tags = { stack: environment };
  return [
    ['codebuild:StartBuild', `arn:${p}:codebuild:${region}:${acct}:project/pricesense-${environment}-deployer`, {}],
    ['codebuild:UpdateProject', `arn:${p}:codebuild:${region}:${acct}:project/pricesense-${environment}-deployer`, {}],
    ['eks:CreateAccessEntry', `arn:${p}:eks:${region}:${acct}:cluster/pricesense-${environment}`, {}],
    ['eks:AssociateAccessPolicy', `arn:${p}:eks:${region}:${acct}:access-entry/pricesense-${environment}/role/${acct}/x/0`, {}],
    ['eks:UpdateNodegroupConfig', `arn:${p}:eks:${region}:${acct}:nodegroup/pricesense-${environment}/base/0`, {}],
    ['s3:PutObject', `arn:${p}:s3:::${a.stateBucket}/.pulumi/stacks/pricesense/${environment}.json`, {}],
    ['s3:PutObject', `arn:${p}:s3:::${a.stateBucket}/.pulumi/stacks/pricesense-app/${environment}.json`, {}],
    ['s3:DeleteObject', `arn:${p}:s3:::${a.stateBucket}/.pulumi/locks/organization/pricesense/${environment}/lock.json`, {}],
    ['iam:UpdateAssumeRolePolicy', `arn:${p}:iam::${acct}:role${environmentRolePath(environment)}deployer-role-1234567`, {}],
    ['iam:PutRolePolicy', `arn:${p}:iam::${acct}:role${environmentRolePath(environment)}api-irsa-1234567`, {}],
    ['s3:DeleteObject', `arn:${p}:s3:::pricesense-lake-${environment}-${acct}/gold/part-0.parquet`, {}],
    ['sagemaker:UpdateModelPackage', `arn:${p}:sagemaker:${region}:${acct}:model-package/pricesense-${environment}/7`, {}],
    ['ec2:AuthorizeSecurityGroupIngress', `arn:${p}:ec2:${region}:${acct}:security-group/sg-0123456789abcdef0`, tags],
    ['ec2:TerminateInstances', `arn:${p}:ec2:${region}:${acct}:instance/i-0123456789abcdef0`, tags],
  ];
}

/** Actions on the shared image repositories no deploy role may take: the digests every environment runs must stay. */
export const SHARED_REPOSITORY_DENIED_ACTIONS = [
  'ecr:BatchDeleteImage', 'ecr:DeleteRepository', 'ecr:PutImageTagMutability', 'ecr:PutImage', 'ecr:SetRepositoryPolicy',
  'ecr:DeleteRepositoryPolicy', 'ecr:PutLifecyclePolicy', 'ecr:DeleteLifecyclePolicy', 'ecr:PutImageScanningConfiguration',
];

/** IAM actions that attach permissions to a role: allowed only on roles carrying the environment's boundary. */
export const BOUNDED_IAM_ACTIONS = ['iam:CreateRole', 'iam:PutRolePolicy', 'iam:AttachRolePolicy', 'iam:DetachRolePolicy', 'iam:DeleteRolePolicy', 'iam:PutRolePermissionsBoundary'];
