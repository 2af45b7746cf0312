/**
 * Stack config of the app project (infra/app/Pulumi.yaml, stacks dev, stage, prod): the API's
 * image, replicas and exposure. Everything AWS-side comes from the platform stack of the same
 * name through a StackReference. Same engine and message format as the platform's config.
 */
import { bool, cidr, int, list, obj, oneOf, optional, str } from '../config-schema';
import { ConfigError, type DeepPartial, type RawConfig, type SettingsOf, type StackIdentity, type Tier, TIERS, parseProjectConfig, type ProjectConfigSpec } from '../stack-config';
import { hasImage, imageRefProblem, imageRefSpec, missingImageIssue } from '../images';
import { checkPublicCidrs } from '../config';

const QUANTITY_CPU = str({ pattern: /^(\d+m|\d+(\.\d+)?)$/, patternText: 'a Kubernetes CPU quantity such as 250m or 1' });
const QUANTITY_MEM = str({ pattern: /^\d+(Ki|Mi|Gi)$/, patternText: 'a Kubernetes memory quantity such as 256Mi or 1Gi' });

export const APP_SCHEMA = {
  tier: oneOf(TIERS),
  /** The platform stack to read; default `organization/pricesense/<this stack's name>`. */
  platformStack: optional(str({ pattern: /^[\w.-]+\/[\w.-]+\/[\w.-]+$/, patternText: 'a fully qualified stack name <org>/<project>/<stack> such as organization/pricesense/dev' })),
  app: obj({
    /** In the shared `pricesense/api` repository; stage and prod take digests. */
    image: imageRefSpec(),
    publicEndpoint: bool(),
    /** Who may reach the demo load balancer: required with publicEndpoint, never 0.0.0.0/0. */
    publicEndpointCidrs: list(cidr(), 0, 40),
    /** ACM certificate ARN for the demo load balancer (TLS on 443, access logs to the lake's logs/lb/). */
    tlsCertificateArn: optional(str({ pattern: /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[\w-]+$/, patternText: 'an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)' })),
    minReplicas: int(1, 100),
    maxReplicas: int(1, 100),
    targetCpuPercent: int(10, 95),
    scaleDownStabilizationSeconds: int(0, 3600),
    cpuRequest: QUANTITY_CPU,
    cpuLimit: QUANTITY_CPU,
    memoryRequest: QUANTITY_MEM,
    memoryLimit: QUANTITY_MEM,
  }),
} as const;

export type AppSettings = SettingsOf<typeof APP_SCHEMA>;
export interface AppStackConfig extends AppSettings, StackIdentity {}

const COMMON: DeepPartial<AppSettings> = {
  app: {
    image: {},
    publicEndpoint: false,
    publicEndpointCidrs: [],
    targetCpuPercent: 70,
    cpuRequest: '250m',
    cpuLimit: '1',
    memoryRequest: '256Mi',
    memoryLimit: '512Mi',
  },
};

const TIER_DEFAULTS: Record<Tier, DeepPartial<AppSettings>> = {
  dev: { app: { minReplicas: 1, maxReplicas: 3, scaleDownStabilizationSeconds: 60 } },
  stage: { app: { minReplicas: 2, maxReplicas: 4, scaleDownStabilizationSeconds: 300 } },
  prod: { app: { minReplicas: 3, maxReplicas: 12, scaleDownStabilizationSeconds: 600 } },
};

export const APP_CONFIG: ProjectConfigSpec<typeof APP_SCHEMA> = {
  schema: APP_SCHEMA,
  stringKeys: ['tier', 'platformStack'],
  common: COMMON,
  tiers: TIER_DEFAULTS,
  // No AWS provider of its own: the region comes from the platform stack.
  requiresRegion: false,
  check(s, complain) {
    if (s.app.minReplicas > s.app.maxReplicas) complain('app.minReplicas', `at most app.maxReplicas (${s.app.maxReplicas})`, s.app.minReplicas);
    const problem = imageRefProblem(s.tier, s.app.image);
    if (problem !== undefined) complain('app.image', problem, s.app.image);
    if (s.app.publicEndpoint) {
      checkPublicCidrs('app.publicEndpointCidrs', s.app.publicEndpointCidrs, complain);
      if (s.app.publicEndpointCidrs.length === 0 || s.app.publicEndpointCidrs.includes('0.0.0.0/0')) {
        complain('app.publicEndpointCidrs', 'the CIDRs allowed to the demo load balancer when app.publicEndpoint is true (at least one, never 0.0.0.0/0)', s.app.publicEndpointCidrs);
      }
    }
    if (s.tier === 'prod' && s.app.minReplicas < 2) {
      complain('app.minReplicas', 'at least 2 in prod (a PodDisruptionBudget needs a spare replica)', s.app.minReplicas);
    }
  },
};

export function parseAppConfig(stack: string, project: string, raw: RawConfig): AppStackConfig {
  return parseProjectConfig(APP_CONFIG, stack, project, raw);
}

/**
 * The app program's config: refused without app.image (review H2: without it the program
 * would declare no Deployment, and the `up` would delete namespace, Deployment and Service).
 */
export function parseReleasedAppConfig(stack: string, project: string, raw: RawConfig): AppStackConfig {
  const cfg = parseAppConfig(stack, project, raw);
  if (!hasImage(cfg.app.image)) {
    throw new ConfigError(stack, [missingImageIssue('pricesense:app.image', stack, 'apiImage', 'the namespace, Deployment and Service of the API')]);
  }
  return cfg;
}

/** The platform stack of the same name, as a DIY (self-managed) backend names it. */
export function platformStackName(cfg: AppStackConfig): string {
  return cfg.platformStack ?? `organization/pricesense/${cfg.stack}`;
}

/**
 * The platform stack's tier, when it is this app stack's tier. Deploying the prod app onto
 * the dev platform (or the reverse) must fail before anything is touched.
 */
export function requireSameTier(cfg: AppStackConfig, platformTier: unknown): Tier {
  if (platformTier !== cfg.tier) {
    throw new Error(
      `app stack "${cfg.stack}" is tier ${cfg.tier}, but platform stack ${platformStackName(cfg)} is tier ${String(platformTier)}: ` +
        'set pricesense:platformStack to the platform stack of the same environment',
    );
  }
  return cfg.tier;
}
