/**
 * The delivery bootstrap's program (infra/delivery/Pulumi.yaml): run once per AWS account by
 * an administrator, before any environment's stacks; its outputs become the repository's
 * GitHub variables (docs/infra.md, "Bootstrap an account").
 */
import type * as pulumi from '@pulumi/pulumi';
import { loadStackConfig } from '../load-config';
import { createAwsContext } from '../aws-context';
import { parseDeliveryConfig } from './config';
import { Delivery } from './delivery';

export function deliveryProgram(): Record<string, pulumi.Input<unknown>> {
  const cfg = loadStackConfig(parseDeliveryConfig);
  const ctx = createAwsContext({ stack: cfg.stack, tier: 'shared', owner: cfg.owner, costCenter: cfg.costCenter, region: cfg.region });
  const delivery = new Delivery('delivery', {
    repository: cfg.github.repository,
    existingOidcProviderArn: cfg.github.oidcProviderArn,
    imageEnvironment: cfg.github.imageEnvironment,
    environments: cfg.environments,
    untaggedExpireDays: cfg.imageRegistry.untaggedExpireDays,
    sagemakerJobLogRetentionDays: cfg.sagemakerJobLogRetentionDays,
    keepBuilds: cfg.imageRegistry.keepBuilds,
    stateBucket: cfg.stateBucket,
    aws: ctx,
  }, { providers: { aws: ctx.provider } });

  return {
    oidcProviderArn: delivery.oidcProviderArn,
    /** GitHub variable AWS_IMAGE_ROLE_ARN of the image environment. */
    imagePushRoleArn: delivery.imagePushRoleArn,
    /** GitHub variable AWS_DEPLOY_ROLE_ARN of each environment. */
    deployRoleArns: delivery.deployRoleArns,
    /** Permissions boundary of each environment's roles (the platform sets it on every role). */
    boundaryArns: delivery.boundaryArns,
    /** `pulumi stack init <env> --secrets-provider <this>` for the platform and app stacks. */
    secretsProviders: delivery.secretsProviders,
    repositoryUrls: delivery.repositoryUrls,
  };
}
