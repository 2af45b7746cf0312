/**
 * The AWS provider every resource uses, and the account facts ARNs are built from.
 * Tags go on through the provider's defaultTags, so no resource can forget them.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { TIER_TAG } from './stack-config';
import { boundaryPolicyArn, environmentRolePath } from './environment-boundary';

export const REQUIRED_TAG_KEYS = ['project', 'stack', 'owner', 'cost-center'] as const;

/** What the provider and its default tags are made from. */
export interface AwsContextConfig {
  readonly stack: string;
  readonly tier: string;
  readonly owner: string;
  readonly costCenter: string;
  readonly region: string;
}

export interface AwsContext {
  readonly provider: aws.Provider;
  readonly region: string;
  readonly accountId: pulumi.Output<string>;
  readonly partition: pulumi.Output<string>;
  readonly tags: Readonly<Record<(typeof REQUIRED_TAG_KEYS)[number] | typeof TIER_TAG, string>>;
  /**
   * Spread into every IAM role the platform creates: the environment's role path and its
   * permissions boundary (the delivery stack's), without which the environment's deploy role
   * may not create the role at all (environment-boundary.ts, policy rule `platform-roles-bounded`).
   */
  readonly roleScope: { readonly path: string; readonly permissionsBoundary: pulumi.Output<string> };
}

export function standardTags(cfg: AwsContextConfig): AwsContext['tags'] {
  return { project: 'pricesense', stack: cfg.stack, owner: cfg.owner, 'cost-center': cfg.costCenter, [TIER_TAG]: cfg.tier };
}

export function createAwsContext(cfg: AwsContextConfig): AwsContext {
  const tags = standardTags(cfg);
  const provider = new aws.Provider('aws', {
    region: cfg.region as aws.Region,
    defaultTags: { tags },
  });
  const identity = aws.getCallerIdentityOutput({}, { provider });
  const partition = aws.getPartitionOutput({}, { provider });
  const roleScope = {
    // The environment is the tier: a personal stack dev-alice deploys with the dev role.
    path: environmentRolePath(cfg.tier),
    permissionsBoundary: pulumi.all([partition.partition, identity.accountId]).apply(([p, account]) => boundaryPolicyArn(p, account, cfg.tier)),
  };
  return { provider, region: cfg.region, accountId: identity.accountId, partition: partition.partition, tags, roleScope };
}

/**
 * Trust policy for a role an AWS service assumes on this account's behalf, with the
 * confused-deputy guard: only that service acting for this account.
 */
export function serviceAssumeRolePolicy(ctx: AwsContext, service: string): pulumi.Output<string> {
  return pulumi.jsonStringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': ctx.accountId } } }],
  });
}

/**
 * Trust policy of an IRSA role: only this service account's tokens, only minted for STS
 * (OIDC `sub` and `aud`, both StringEquals).
 */
export function irsaAssumeRolePolicy(oidcProviderArn: pulumi.Input<string>, oidcIssuer: pulumi.Input<string>, namespace: string, serviceAccount: string): pulumi.Output<string> {
  return pulumi.all([oidcProviderArn, oidcIssuer]).apply(([providerArn, issuer]) =>
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [{
        Effect: 'Allow',
        Principal: { Federated: providerArn },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${issuer}:sub`]: `system:serviceaccount:${namespace}:${serviceAccount}`, [`${issuer}:aud`]: 'sts.amazonaws.com' } },
      }],
    }),
  );
}

/**
 * A customer-managed KMS key with yearly rotation. The account administers it through IAM
 * (the key policy's root statement, as AWS's default key policy does); the listed services
 * may use it only on this account's behalf (aws:SourceAccount), e.g. CloudWatch alarms and
 * Budgets publishing to an encrypted SNS topic, which the AWS-managed alias/aws/sns refuses.
 */
export function customerManagedKey(
  name: string,
  args: { description: string; services: readonly string[]; ctx: AwsContext },
  opts: pulumi.CustomResourceOptions,
): aws.kms.Key {
  const { ctx } = args;
  const statements: object[] = [{
    Sid: 'AccountAdministersThroughIam',
    Effect: 'Allow',
    Principal: { AWS: pulumi.interpolate`arn:${ctx.partition}:iam::${ctx.accountId}:root` },
    Action: 'kms:*',
    Resource: '*',
  }];
  if (args.services.length > 0) {
    statements.push({
      Sid: 'ServicesForThisAccount',
      Effect: 'Allow',
      Principal: { Service: [...args.services] },
      Action: ['kms:GenerateDataKey*', 'kms:Decrypt'],
      Resource: '*',
      Condition: { StringEquals: { 'aws:SourceAccount': ctx.accountId } },
    });
  }
  return new aws.kms.Key(name, {
    description: args.description,
    enableKeyRotation: true,
    deletionWindowInDays: 30,
    policy: pulumi.jsonStringify({ Version: '2012-10-17', Statement: statements }),
  }, opts);
}
