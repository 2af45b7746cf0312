/**
 * Delivery roles as code: what GitHub Actions may do in this AWS account, and nothing more.
 *
 * - The GitHub OIDC provider (or the account's existing one).
 * - The shared image repositories (image-registry.ts): pushed once, pulled by every environment.
 * - A push-only role for the image job (environment `images`): push and describe images in
 *   those repositories; it cannot deploy, delete or change a repository.
 * - Per environment: a deploy role only that environment's jobs can assume (so the
 *   environment's required reviewers gate it), and the KMS key of that environment's Pulumi
 *   stack secrets (awskms secrets provider), usable by that environment's roles only.
 *
 * All roles live under the IAM path /pricesense-delivery/, which every deploy role is
 * denied to modify: a dev job cannot widen the prod role's trust and skip prod's approval.
 * Isolation between environments inside one account stops there (a deploy role can manage
 * most services account-wide); separate accounts per environment, each with its own
 * delivery stack, are the stronger boundary (docs/delivery.md).
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { AwsContext } from '../aws-context';
import { ImageRepositories } from '../image-registry';
import type { ImageName } from '../images';
import { GITHUB_OIDC_AUDIENCE, GITHUB_OIDC_HOST, environmentTrustPolicy } from '../github-oidc';
import { secretsKeyAlias } from '../deployer';

export const DELIVERY_ROLE_PATH = '/pricesense-delivery/';
/** Tag on each Pulumi secrets key naming the one environment whose roles may use it. */
export const SECRETS_KEY_TAG = 'pulumi-secrets-of';

export function deployRoleName(environment: string): string {
  return `pricesense-${environment}-deploy`;
}
export const IMAGE_PUSH_ROLE = 'pricesense-image-push';
/** The log groups SageMaker processing and training jobs write to (one pair per account and region). */
export const SAGEMAKER_JOB_LOG_GROUPS = ['ProcessingJobs', 'TrainingJobs'] as const;

export interface DeliveryArgs {
  readonly repository: string;
  readonly existingOidcProviderArn: string | undefined;
  readonly imageEnvironment: string;
  readonly environments: readonly string[];
  readonly untaggedExpireDays: number;
  readonly keepBuilds: number;
  readonly sagemakerJobLogRetentionDays: number;
  readonly aws: AwsContext;
}

export class Delivery extends pulumi.ComponentResource {
  readonly oidcProviderArn: pulumi.Output<string>;
  readonly imagePushRoleArn: pulumi.Output<string>;
  readonly deployRoleArns: Record<string, pulumi.Output<string>>;
  readonly secretsProviders: Record<string, string>;
  readonly repositoryUrls: Record<ImageName, pulumi.Output<string>>;

  constructor(name: string, args: DeliveryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:Delivery', name, {}, opts);
    const ctx = args.aws;
    const parent: pulumi.CustomResourceOptions = { parent: this, provider: ctx.provider };
    const iamArn = (resource: string): pulumi.Output<string> => pulumi.interpolate`arn:${ctx.partition}:iam::${ctx.accountId}:${resource}`;

    // The provider's ARN is computed, not read from the resource: trust policies are then
    // known at preview time, so the policy pack checks them before anything is created.
    const providerArn = args.existingOidcProviderArn !== undefined ? pulumi.output(args.existingOidcProviderArn) : iamArn(`oidc-provider/${GITHUB_OIDC_HOST}`);
    const provider = args.existingOidcProviderArn === undefined
      ? new aws.iam.OpenIdConnectProvider(`${name}-github`, {
          url: `https://${GITHUB_OIDC_HOST}`,
          clientIdLists: [GITHUB_OIDC_AUDIENCE],
        }, { ...parent, protect: true })
      : undefined;
    this.oidcProviderArn = providerArn;
    const afterProvider: pulumi.CustomResourceOptions = { ...parent, dependsOn: provider ? [provider] : [] };
    const trust = (environment: string): pulumi.Output<string> =>
      providerArn.apply((arn) => JSON.stringify(environmentTrustPolicy(arn, args.repository, environment)));

    const repos = new ImageRepositories(`${name}-images`, { untaggedExpireDays: args.untaggedExpireDays, keepBuilds: args.keepBuilds }, { parent: this });
    this.repositoryUrls = repos.urls;
    const repoArns = Object.values(repos.arns);

    const push = new aws.iam.Role(`${name}-image-push`, {
      name: IMAGE_PUSH_ROLE,
      path: DELIVERY_ROLE_PATH,
      description: `GitHub ${args.repository}, environment ${args.imageEnvironment}: push and scan images, nothing else`,
      assumeRolePolicy: trust(args.imageEnvironment),
      maxSessionDuration: 3600,
    }, afterProvider);
    new aws.iam.RolePolicy(`${name}-image-push`, {
      role: push.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'PushAndScan',
            Effect: 'Allow',
            Action: [
              'ecr:BatchCheckLayerAvailability', 'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage',
              'ecr:DescribeImages', 'ecr:DescribeImageScanFindings',
            ],
            Resource: repoArns,
          },
          {
            // GetAuthorizationToken has no resource-level permissions in IAM.
            Sid: 'EcrAuth',
            Effect: 'Allow',
            Action: ['ecr:GetAuthorizationToken'],
            Resource: '*',
          },
        ],
      }),
    }, parent);
    this.imagePushRoleArn = push.arn;

    const powerUser = pulumi.interpolate`arn:${ctx.partition}:iam::aws:policy/PowerUserAccess`;
    this.deployRoleArns = {};
    this.secretsProviders = {};
    for (const env of args.environments) {
      const key = new aws.kms.Key(`${name}-${env}-secrets`, {
        description: `Pulumi stack secrets of the pricesense ${env} stacks (platform and app)`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        tags: { [SECRETS_KEY_TAG]: env },
      }, { ...parent, protect: true, retainOnDelete: true }); // losing it loses every secret of the stacks
      new aws.kms.Alias(`${name}-${env}-secrets`, { name: secretsKeyAlias(env), targetKeyId: key.keyId }, parent);
      this.secretsProviders[env] = `awskms://${secretsKeyAlias(env)}?region=${ctx.region}`;

      const role = new aws.iam.Role(`${name}-${env}-deploy`, {
        name: deployRoleName(env),
        path: DELIVERY_ROLE_PATH,
        description: `GitHub ${args.repository}, environment ${env}: deploy the pricesense ${env} stacks`,
        assumeRolePolicy: trust(env),
        maxSessionDuration: 3 * 3600, // a platform up that creates a cluster takes ~30 min, a deploy with smoke test and rollback more
      }, afterProvider);
      new aws.iam.RolePolicyAttachment(`${name}-${env}-deploy-power-user`, { role: role.name, policyArn: powerUser }, parent);
      new aws.iam.RolePolicy(`${name}-${env}-deploy`, {
        role: role.id,
        policy: pulumi.jsonStringify({
          Version: '2012-10-17',
          Statement: [
            {
              // PowerUserAccess excludes IAM; the platform creates service roles, IRSA and OIDC providers.
              Sid: 'ManageWorkloadIam',
              Effect: 'Allow',
              Action: [
                'iam:CreateRole', 'iam:DeleteRole', 'iam:GetRole', 'iam:UpdateRole', 'iam:UpdateAssumeRolePolicy', 'iam:TagRole', 'iam:UntagRole', 'iam:ListRoleTags',
                'iam:PutRolePolicy', 'iam:GetRolePolicy', 'iam:DeleteRolePolicy', 'iam:ListRolePolicies',
                'iam:AttachRolePolicy', 'iam:DetachRolePolicy', 'iam:ListAttachedRolePolicies', 'iam:ListInstanceProfilesForRole',
                'iam:PassRole', 'iam:CreateServiceLinkedRole', 'iam:GetPolicy', 'iam:GetPolicyVersion',
                'iam:CreateOpenIDConnectProvider', 'iam:DeleteOpenIDConnectProvider', 'iam:GetOpenIDConnectProvider',
                'iam:TagOpenIDConnectProvider', 'iam:UntagOpenIDConnectProvider', 'iam:UpdateOpenIDConnectProviderThumbprint', 'iam:AddClientIDToOpenIDConnectProvider',
              ],
              Resource: '*',
            },
            {
              // Neither its own trust nor another environment's: the approval gate stays.
              Sid: 'KeepDeliveryRoles',
              Effect: 'Deny',
              Action: 'iam:*',
              Resource: [iamArn(`role${DELIVERY_ROLE_PATH}*`), providerArn],
            },
            {
              Sid: 'NoAdministrators',
              Effect: 'Deny',
              Action: ['iam:AttachRolePolicy', 'iam:AttachUserPolicy', 'iam:AttachGroupPolicy'],
              Resource: '*',
              Condition: { ArnLike: { 'iam:PolicyARN': [pulumi.interpolate`arn:${ctx.partition}:iam::aws:policy/AdministratorAccess`, pulumi.interpolate`arn:${ctx.partition}:iam::aws:policy/IAMFullAccess`] } },
            },
            {
              // Other environments' stack secrets stay unreadable, and no secrets key can be deleted.
              Sid: 'OnlyOwnStackSecrets',
              Effect: 'Deny',
              Action: 'kms:*',
              Resource: '*',
              Condition: { StringNotEquals: { [`aws:ResourceTag/${SECRETS_KEY_TAG}`]: env }, Null: { [`aws:ResourceTag/${SECRETS_KEY_TAG}`]: 'false' } },
            },
            {
              Sid: 'KeepSecretsKeys',
              Effect: 'Deny',
              Action: ['kms:ScheduleKeyDeletion', 'kms:DisableKey', 'kms:PutKeyPolicy', 'kms:DeleteAlias'],
              Resource: '*',
              Condition: { Null: { [`aws:ResourceTag/${SECRETS_KEY_TAG}`]: 'false' } },
            },
          ],
        }),
      }, parent);
      this.deployRoleArns[env] = role.arn;
    }
    // SageMaker writes every job of the account to these two groups and would create them
    // with "never expire"; they are per account, not per stack, hence here.
    for (const kind of SAGEMAKER_JOB_LOG_GROUPS) {
      new aws.cloudwatch.LogGroup(`${name}-sagemaker-${kind}`, { name: `/aws/sagemaker/${kind}`, retentionInDays: args.sagemakerJobLogRetentionDays }, parent);
    }
    this.registerOutputs({ imagePushRoleArn: this.imagePushRoleArn, deployRoleArns: this.deployRoleArns });
  }
}
