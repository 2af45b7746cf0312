/**
 * Stack config of the delivery bootstrap (infra/delivery/Pulumi.yaml, one stack per AWS
 * account, conventionally `shared`). Same engine and message format as the other projects.
 */
import { int, list, obj, optional, str } from '../config-schema';
import { type DeepPartial, type RawConfig, type SettingsOf, type StackIdentity, parseProjectConfig, type ProjectConfigSpec } from '../stack-config';
import { LOG_RETENTION_DAYS, TAG_VALUE } from '../config';

const ENVIRONMENT = str({ pattern: /^[a-z][a-z0-9-]{0,19}$/, patternText: 'a GitHub environment name of lowercase letters, digits and "-", such as dev' });

export const DELIVERY_SCHEMA = {
  owner: TAG_VALUE,
  costCenter: TAG_VALUE,
  github: obj({
    /** The only repository whose workflows may assume the roles. */
    repository: str({ pattern: /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, patternText: 'the GitHub repository as <owner>/<repo> (the one whose workflows deploy)' }),
    /** An existing provider for token.actions.githubusercontent.com (an account has at most one); created when absent. */
    oidcProviderArn: optional(str({ pattern: /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/token\.actions\.githubusercontent\.com$/, patternText: 'the ARN of the account\'s token.actions.githubusercontent.com OIDC provider' })),
    /** GitHub environment of the image job (push-only role). */
    imageEnvironment: ENVIRONMENT,
  }),
  /** One deploy role and one Pulumi secrets key per environment (= stack name). */
  environments: list(ENVIRONMENT, 1, 10),
  imageRegistry: obj({
    untaggedExpireDays: int(1, 365),
    /** Branch builds (main-*) kept per repository; release tags (v*) are never expired. */
    keepBuilds: int(1, 1000),
  }),
  /** The Pulumi state bucket the deploy roles use (default pricesense-pulumi-state-<account id>); other environments' state in it is denied to each. */
  stateBucket: optional(str({ pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, patternText: 'an S3 bucket name' })),
  /** Retention of the account's SageMaker job log groups (/aws/sagemaker/ProcessingJobs, TrainingJobs), shared by every stack. */
  sagemakerJobLogRetentionDays: int(1, 3653, LOG_RETENTION_DAYS),
} as const;

export type DeliverySettings = SettingsOf<typeof DELIVERY_SCHEMA>;
export interface DeliveryStackConfig extends DeliverySettings, StackIdentity {}

const COMMON: DeepPartial<DeliverySettings> = {
  github: { imageEnvironment: 'images' },
  environments: ['dev', 'stage', 'prod'],
  imageRegistry: { untaggedExpireDays: 7, keepBuilds: 30 },
  sagemakerJobLogRetentionDays: 30,
};

export const DELIVERY_CONFIG: ProjectConfigSpec<typeof DELIVERY_SCHEMA> = {
  schema: DELIVERY_SCHEMA,
  stringKeys: ['owner', 'costCenter'],
  common: COMMON,
  requiresRegion: true,
  check(s, complain) {
    if (new Set(s.environments).size !== s.environments.length) complain('environments', 'environment names without duplicates', s.environments);
    if (s.environments.includes(s.github.imageEnvironment)) {
      complain('github.imageEnvironment', 'an environment of its own (the push-only role must not share a deploy role\'s environment)', s.github.imageEnvironment);
    }
  },
};

export function parseDeliveryConfig(stack: string, project: string, raw: RawConfig): DeliveryStackConfig {
  return parseProjectConfig(DELIVERY_CONFIG, stack, project, raw);
}
