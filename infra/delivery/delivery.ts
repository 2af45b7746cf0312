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
 * Beyond that, each deploy role is denied every other environment's resources by name, IAM
 * path and `stack` tag (environment-boundary.ts), may create or change roles only under its
 * own path and only with its environment's permissions boundary (which denies the same), and
 * may not delete or re-tag images in the shared repositories. Policy rule:
 * `deploy-roles-isolated`. Separate accounts per environment, each with its own delivery
 * stack, remain the stronger boundary (docs/delivery.md).
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { AwsContext } from '../aws-context';
import { ImageRepositories } from '../image-registry';
import type { ImageName } from '../images';
import { GITHUB_OIDC_AUDIENCE, GITHUB_OIDC_HOST, environmentTrustPolicy } from '../github-oidc';
import { secretsKeyAlias } from '../deployer';
import {
  type AccountFacts, BOUNDED_IAM_ACTIONS, DELIVERY_PATH, SHARED_REPOSITORY_DENIED_ACTIONS, STATE_BUCKET_TAG, boundaryPolicyArn, boundaryPolicyName, defaultStateBucket,
  environmentResourcePatterns, environmentRolePath,
} from '../environment-boundary';

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
  /** The Pulumi state bucket; default pricesense-pulumi-state-<account id>. */
  readonly stateBucket: string | undefined;
  readonly aws: AwsContext;
}

export class Delivery extends pulumi.ComponentResource {
  readonly oidcProviderArn: pulumi.Output<string>;
  readonly imagePushRoleArn: pulumi.Output<string>;
  readonly deployRoleArns: Record<string, pulumi.Output<string>>;
  /** Permissions boundary per environment: every role its platform creates must carry it. */
  readonly boundaryArns: Record<string, pulumi.Output<string>>;
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
      path: DELIVERY_PATH,
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
              // BatchGetImage: docker push reads the manifest back (AWS lists it among the push permissions).
              'ecr:BatchGetImage', 'ecr:DescribeImages', 'ecr:DescribeImageScanFindings',
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
    const stateBucket = args.stateBucket !== undefined ? pulumi.output(args.stateBucket) : ctx.accountId.apply(defaultStateBucket);
    const facts = pulumi.all([ctx.partition, ctx.accountId, stateBucket]).apply(([partition, accountId, bucket]): AccountFacts => ({ partition, accountId, stateBucket: bucket }));
    this.deployRoleArns = {};
    this.secretsProviders = {};
    this.boundaryArns = {};
    for (const env of args.environments) {
      const key = new aws.kms.Key(`${name}-${env}-secrets`, {
        description: `Pulumi stack secrets of the pricesense ${env} stacks (platform and app)`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        tags: { [SECRETS_KEY_TAG]: env },
      }, { ...parent, protect: true, retainOnDelete: true }); // losing it loses every secret of the stacks
      new aws.kms.Alias(`${name}-${env}-secrets`, { name: secretsKeyAlias(env), targetKeyId: key.keyId }, parent);
      this.secretsProviders[env] = `awskms://${secretsKeyAlias(env)}?region=${ctx.region}`;

      const others = args.environments.filter((e) => e !== env);
      // Denied to the deploy role and to every role it creates (the boundary): the other
      // environments' resources by name and path, and by their `stack` tag (EC2, EKS, ...).
      const otherEnvironments = (f: AccountFacts): Record<string, unknown>[] => others.length === 0 ? [] : [
        { Sid: 'OtherEnvironmentsByName', Effect: 'Deny', Action: '*', Resource: others.flatMap((o) => environmentResourcePatterns(o, f)) },
        { Sid: 'OtherEnvironmentsByTag', Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringEquals: { 'aws:ResourceTag/stack': others } } },
        { Sid: 'OtherEnvironmentsNewTagged', Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringEquals: { 'aws:RequestTag/stack': others } } },
      ];
      const keepSharedImages = (f: AccountFacts): Record<string, unknown> => ({
        Sid: 'KeepSharedImages', Effect: 'Deny', Action: SHARED_REPOSITORY_DENIED_ACTIONS, Resource: `arn:${f.partition}:ecr:*:${f.accountId}:repository/pricesense/*`,
      });
      const ownRoles = (f: AccountFacts): string => `arn:${f.partition}:iam::${f.accountId}:role${environmentRolePath(env)}*`;

      // The most any role this environment's platform creates may ever do: no IAM beyond
      // passing its own roles, nothing of another environment, no change to shared images.
      const boundary = new aws.iam.Policy(`${name}-${env}-boundary`, {
        name: boundaryPolicyName(env),
        path: DELIVERY_PATH,
        description: `Permissions boundary of every role the pricesense ${env} stacks create`,
        policy: facts.apply((f) => JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Sid: 'ServicesButIam', Effect: 'Allow', NotAction: ['iam:*', 'organizations:*', 'account:*'], Resource: '*' },
            { Sid: 'PassOwnRoles', Effect: 'Allow', Action: ['iam:PassRole', 'iam:GetRole'], Resource: ownRoles(f) },
            { Sid: 'ServiceLinkedRoles', Effect: 'Allow', Action: ['iam:CreateServiceLinkedRole'], Resource: '*' },
            ...otherEnvironments(f),
            keepSharedImages(f),
          ],
        })),
      }, parent);
      this.boundaryArns[env] = boundary.arn;

      const role = new aws.iam.Role(`${name}-${env}-deploy`, {
        name: deployRoleName(env),
        path: DELIVERY_PATH,
        description: `GitHub ${args.repository}, environment ${env}: deploy the pricesense ${env} stacks`,
        assumeRolePolicy: trust(env),
        maxSessionDuration: 3 * 3600, // a platform up that creates a cluster takes ~30 min, a deploy with smoke test and rollback more
        tags: { [STATE_BUCKET_TAG]: stateBucket },
      }, afterProvider);
      new aws.iam.RolePolicyAttachment(`${name}-${env}-deploy-power-user`, { role: role.name, policyArn: powerUser }, parent);
      new aws.iam.RolePolicy(`${name}-${env}-deploy`, {
        role: role.name,
        policy: pulumi.all([facts, providerArn]).apply(([f, oidcProvider]) => JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              // PowerUserAccess excludes IAM; the platform creates service roles and IRSA roles,
              // all under this environment's path.
              Sid: 'ManageOwnRoles',
              Effect: 'Allow',
              Action: [
                'iam:CreateRole', 'iam:DeleteRole', 'iam:GetRole', 'iam:UpdateRole', 'iam:UpdateAssumeRolePolicy', 'iam:TagRole', 'iam:UntagRole', 'iam:ListRoleTags',
                'iam:PutRolePolicy', 'iam:GetRolePolicy', 'iam:DeleteRolePolicy', 'iam:ListRolePolicies',
                'iam:AttachRolePolicy', 'iam:DetachRolePolicy', 'iam:ListAttachedRolePolicies', 'iam:ListInstanceProfilesForRole',
                'iam:PassRole', 'iam:PutRolePermissionsBoundary',
              ],
              Resource: ownRoles(f),
            },
            {
              Sid: 'ClusterOidcAndServiceLinkedRoles',
              Effect: 'Allow',
              Action: [
                'iam:CreateServiceLinkedRole', 'iam:GetPolicy', 'iam:GetPolicyVersion',
                'iam:CreateOpenIDConnectProvider', 'iam:DeleteOpenIDConnectProvider', 'iam:GetOpenIDConnectProvider',
                'iam:TagOpenIDConnectProvider', 'iam:UntagOpenIDConnectProvider', 'iam:UpdateOpenIDConnectProviderThumbprint', 'iam:AddClientIDToOpenIDConnectProvider',
              ],
              Resource: '*',
            },
            {
              // Every role it creates or changes carries this environment's boundary, so a role
              // with "*" that trusts GitHub for any subject still cannot leave the environment.
              Sid: 'RequireBoundary',
              Effect: 'Deny',
              Action: BOUNDED_IAM_ACTIONS,
              Resource: '*',
              Condition: { StringNotEquals: { 'iam:PermissionsBoundary': boundaryPolicyArn(f.partition, f.accountId, env) } },
            },
            { Sid: 'KeepBoundary', Effect: 'Deny', Action: ['iam:DeleteRolePermissionsBoundary'], Resource: '*' },
            {
              // Neither its own trust nor another environment's, nor the boundaries: the approval gate stays.
              Sid: 'KeepDeliveryRoles',
              Effect: 'Deny',
              Action: 'iam:*',
              Resource: [`arn:${f.partition}:iam::${f.accountId}:role${DELIVERY_PATH}*`, `arn:${f.partition}:iam::${f.accountId}:policy${DELIVERY_PATH}*`, oidcProvider],
            },
            {
              Sid: 'NoAdministrators',
              Effect: 'Deny',
              Action: ['iam:AttachRolePolicy', 'iam:AttachUserPolicy', 'iam:AttachGroupPolicy'],
              Resource: '*',
              Condition: { ArnLike: { 'iam:PolicyARN': [`arn:${f.partition}:iam::aws:policy/AdministratorAccess`, `arn:${f.partition}:iam::aws:policy/IAMFullAccess`] } },
            },
            ...otherEnvironments(f),
            keepSharedImages(f),
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
        })),
      }, { ...parent, dependsOn: [boundary] });
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
