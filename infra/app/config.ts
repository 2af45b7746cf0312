/**
 * Stack config of the app project (infra/app/Pulumi.yaml, stacks dev, stage, prod): the API's
 * image, replicas and exposure. Everything AWS-side comes from the platform stack of the same
 * name through a StackReference. Same engine and message format as the platform's config.
 */
import { bool, cidr, int, list, obj, oneOf, optional, str } from '../config-schema';
import { ConfigError, type DeepPartial, type RawConfig, type SettingsOf, type StackIdentity, type Tier, TIERS, parseProjectConfig, type ProjectConfigSpec } from '../stack-config';
import { AUTOSCALER_MIRROR_REPOSITORY, type AutoscalerImage, DIGEST_PATTERN, hasImage, imageRefProblem, imageRefSpec, missingImageIssue } from '../images';
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
  /**
   * Cluster Autoscaler's image: the release of registry.k8s.io/autoscaling/cluster-autoscaler
   * mirrored into the shared registry's mirror/cluster-autoscaler (docs/infra.md, "Autoscaling").
   * The digest is the upstream one (a mirror copy keeps it), so it is committed per stack.
   */
  clusterAutoscaler: obj({
    version: optional(str({ pattern: /^v1\.\d+\.\d+$/, patternText: 'an upstream release tag such as v1.33.0 (its minor = the cluster\'s Kubernetes minor)' })),
    digest: optional(str({ pattern: DIGEST_PATTERN, patternText: 'the image digest sha256:<64 hex> (crane digest of the mirrored tag)' })),
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
  clusterAutoscaler: {},
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
    if ((s.clusterAutoscaler.version === undefined) !== (s.clusterAutoscaler.digest === undefined)) {
      complain('clusterAutoscaler', 'both version and digest (the tag names the release, the digest pins its bytes)', s.clusterAutoscaler);
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
export function parseReleasedAppConfig(stack: string, project: string, raw: RawConfig): AppStackConfig & { clusterAutoscaler: AutoscalerImage } {
  const cfg = parseAppConfig(stack, project, raw);
  const issues = [];
  if (!hasImage(cfg.app.image)) issues.push(missingImageIssue('pricesense:app.image', stack, 'apiImage', 'the namespace, Deployment and Service of the API'));
  // Same reason: the stack would delete the autoscaler, and nothing would add a node.
  const { version, digest } = cfg.clusterAutoscaler;
  if (version === undefined || digest === undefined) issues.push(missingAutoscalerIssue(stack));
  if (issues.length > 0 || version === undefined || digest === undefined) throw new ConfigError(stack, issues);
  return { ...cfg, clusterAutoscaler: { version, digest } };
}

function missingAutoscalerIssue(stack: string): { key: string; expected: string; got: string } {
  return {
    key: 'pricesense:clusterAutoscaler',
    expected: 'Cluster Autoscaler\'s mirrored image, version and digest (without it nothing adds a node when the HPA\'s pods are pending). ' +
      'Mirror it once per account, then commit both to the stack file: ' +
      `crane copy registry.k8s.io/autoscaling/cluster-autoscaler:v<kubernetes minor>.<patch> <account>.dkr.ecr.<region>.amazonaws.com/${AUTOSCALER_MIRROR_REPOSITORY}:<same tag>; ` +
      `pulumi config set --stack ${stack} --path pricesense:clusterAutoscaler.version <tag>; ` +
      `pulumi config set --stack ${stack} --path pricesense:clusterAutoscaler.digest "$(crane digest registry.k8s.io/autoscaling/cluster-autoscaler:<tag>)"`,
    got: 'nothing',
  };
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
