/**
 * Stack config of the platform project (Pulumi.yaml at the repository root, stacks dev,
 * stage, prod): every setting lives under the `pricesense:` namespace (plus the standard
 * `aws:region`), is merged over per-tier defaults and validated at startup by the shared
 * engine in stack-config.ts.
 *
 * This module has no dependency on the cloud SDKs, so it is cheap to test.
 */
import {
  type Infer,
  bool,
  cidr,
  int,
  list,
  num,
  obj,
  oneOf,
  optional,
  str,
} from './config-schema';
import { ConfigError, type DeepPartial, type RawConfig, type SettingsOf, type StackIdentity, type Tier, TIERS, parseProjectConfig, type ProjectConfigSpec } from './stack-config';
import { IMAGE_REPOSITORIES, type ImageName, hasImage, imageRefProblem, imageRefSpec, missingImageIssue } from './images';
import { nonRoutableReason } from './ip-ranges';
import { pinnedZoneProblems } from './zones';
import { LATENCY_BOUNDS_MS } from './api-alarms';

export { ConfigError, NAMESPACE, TIERS, tierOfStack } from './stack-config';
export type { RawConfig, Tier } from './stack-config';

/** Values CloudWatch Logs accepts for retentionInDays. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

export const EMAIL = str({ pattern: /^[^@\s]+@[^@\s]+\.[^@\s]+$/, patternText: 'an email address' });
export const TAG_VALUE = str({ pattern: /^[\w.@+=:/ -]{1,128}$/, patternText: 'a tag value (1-128 letters, digits, spaces or _.:/=+-@)' });
const NAME = str({ pattern: /^[a-z][a-z0-9-]{0,19}$/, patternText: 'a lowercase name of letters, digits and "-" (at most 20, starting with a letter)' });
const HHMM = str({ pattern: /^([01]\d|2[0-3]):[0-5]\d$/, patternText: 'a time of day HH:MM (24-hour)' });
const INSTANCE_TYPE = str({ pattern: /^[a-z][a-z0-9-]*\.[a-z0-9]+$/, patternText: 'an EC2 instance type such as t3.medium' });
const SAGEMAKER_INSTANCE = str({ pattern: /^ml\.[a-z0-9]+\.[a-z0-9]+$/, patternText: 'a SageMaker instance type such as ml.m5.large' });
const ROLE_ARN = str({ pattern: /^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/.+$/, patternText: 'an IAM role or user ARN (arn:aws:iam::123456789012:role/Name)' });
const ZONE_ID = str({ pattern: /^[a-z]{2,4}\d-az\d+$/, patternText: 'an availability zone ID such as use1-az3 (IDs name the same physical zone in every account; names such as us-east-1a do not)' });
const BUCKET_NAME = str({ pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, patternText: 'an S3 bucket name' });
const TIMEZONE = str({
  patternText: 'an IANA time zone such as Europe/Berlin or UTC',
  check: (v) => (isTimeZone(v) ? undefined : 'an IANA time zone such as Europe/Berlin or UTC'),
});
const DAYS = str({
  pattern: /^(MON|TUE|WED|THU|FRI|SAT|SUN)(-(MON|TUE|WED|THU|FRI|SAT|SUN))?(,(MON|TUE|WED|THU|FRI|SAT|SUN)(-(MON|TUE|WED|THU|FRI|SAT|SUN))?)*$/,
  patternText: 'cron days of week such as MON-FRI or MON,WED,FRI',
});

export const CLUSTER_LOG_TYPES = ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'] as const;
/** What a security review needs from the control plane (CIS EKS 2.1.1, Security Hub EKS.8); the policy pack checks the same list. */
export const REQUIRED_CLUSTER_LOG_TYPES = ['api', 'audit', 'authenticator'] as const;
/** CodeBuild compute types for Linux containers that a Pulumi run fits in. */
export const DEPLOYER_COMPUTE_TYPES = ['BUILD_GENERAL1_SMALL', 'BUILD_GENERAL1_MEDIUM', 'BUILD_GENERAL1_LARGE'] as const;

const nodeGroup = obj({
  name: NAME,
  capacityType: oneOf(['ON_DEMAND', 'SPOT'] as const),
  instanceTypes: list(INSTANCE_TYPE, 1, 20),
  minSize: int(0, 100),
  desiredSize: int(0, 100),
  maxSize: int(1, 100),
  diskSizeGiB: int(20, 1000),
});

/** The whole schema: one entry per top-level key `pricesense:<key>`. */
export const SCHEMA = {
  tier: oneOf(TIERS),
  owner: TAG_VALUE,
  costCenter: TAG_VALUE,
  network: obj({
    cidr: cidr(),
    azCount: int(2, 3),
    /** Interface endpoints are billed per AZ: dev puts them in fewer AZs than the nodes. */
    endpointAzCount: int(1, 3),
    /** Zone IDs never used, in addition to those EKS does not support (network.ts). */
    excludeZoneIds: list(ZONE_ID, 0, 20),
    /**
     * The stack's zones, subnet i in zoneIds[i], pinned after the first up from its zoneIds
     * output (docs/infra.md, "Zones"): no lookup then, so nothing can move a subnet.
     */
    zoneIds: optional(list(ZONE_ID, 2, 3)),
  }),
  cluster: obj({
    /** At least 1.30: the API Deployment's preStop hook is a `sleep` action (infra/app), which older API servers reject. */
    version: str({ pattern: /^1\.(3\d|[4-9]\d)$/, patternText: 'a Kubernetes minor version of at least 1.30 (the API pods\' preStop sleep action needs it) such as 1.33' }),
    /** Who may reach the public Kubernetes API endpoint; empty = no public endpoint (deploys run inside the VPC). */
    publicAccessCidrs: list(cidr(), 0, 40),
    adminRoleArns: list(ROLE_ARN, 0, 20),
    logTypes: list(oneOf(CLUSTER_LOG_TYPES), 0, 5),
  }),
  nodeGroups: list(nodeGroup, 1, 5),
  /** Images of this release, in the shared repositories (images.ts); stage and prod take digests. */
  images: obj({ api: imageRefSpec(), jobs: imageRefSpec(), deployer: imageRefSpec() }),
  /** The in-VPC deployer (CodeBuild) that runs the app project: infra/deployer.ts. */
  deployer: obj({
    computeType: oneOf(DEPLOYER_COMPUTE_TYPES),
    timeoutMinutes: int(5, 480),
    /** Pulumi state bucket (self-managed S3 backend); default pricesense-pulumi-state-<account id>. */
    stateBucket: optional(BUCKET_NAME),
  }),
  lake: obj({
    tmpExpireDays: int(1, 3650),
    logsInfrequentAccessDays: int(30, 3650),
    logsExpireDays: int(31, 3650),
    /** Days before raw/ objects move to Intelligent-Tiering (0: at once); see docs/infra.md, "raw/ storage class". */
    rawIntelligentTieringDays: int(0, 3650),
    noncurrentVersionExpireDays: int(1, 3650),
  }),
  monitoring: obj({
    logRetentionDays: int(1, 3653, LOG_RETENTION_DAYS),
    alarmEmail: optional(EMAIL),
    /** One of the API latency histogram's bounds: the alarm is "more than 1% of requests slower than this" (infra/api-alarms.ts). */
    p99LatencyMs: int(1, 60_000, LATENCY_BOUNDS_MS),
    error5xxPercent: int(1, 100),
    nodeCpuPercent: int(10, 100),
    podRestarts: int(1, 1000),
    /** Drift alarms (docs/api.md, "Drift"): the largest feature PSI, unknown-category share and missing-share increase. */
    driftPsi: num(0.01, 10),
    unknownCategoryPercent: int(1, 100),
    missingIncreasePercent: int(1, 100),
    /** Whether a drift alarm (PSI, unknown categories) starts the retraining pipeline through EventBridge. */
    retrainOnDrift: bool(),
  }),
  /** The SageMaker retraining pipeline (infra/sagemaker-pipeline.ts); the values are its parameters' defaults. */
  pipeline: obj({
    etlInstanceType: SAGEMAKER_INSTANCE,
    etlInstanceCount: int(1, 50),
    trainInstanceType: SAGEMAKER_INSTANCE,
    trainInstanceCount: int(1, 50),
    evaluateInstanceType: SAGEMAKER_INSTANCE,
    volumeSizeGiB: int(1, 1024),
    maxRuntimeSeconds: int(300, 432_000),
    trees: int(1, 10_000),
    maxDepth: int(1, 64),
    minLeaf: int(1, 1_000_000),
    seed: int(0, 2_147_483_647),
    spotTraining: bool(),
    spotMaxWaitSeconds: int(300, 432_000),
  }),
  cost: obj({
    monthlyBudgetUsd: int(1, 1_000_000),
    /** At most 4: AWS Budgets allows 5 notifications per budget, and the forecast alert is one. */
    alertThresholdsPercent: list(int(1, 1000), 1, 4),
    budgetEmails: list(EMAIL, 0, 10),
    /** Nodes run only inside these hours; outside them the node groups scale to zero. */
    demoHours: optional(obj({ timezone: TIMEZONE, days: DAYS, start: HHMM, end: HHMM })),
  }),
} as const;

export type Settings = SettingsOf<typeof SCHEMA>;
export type NodeGroupSettings = Infer<typeof nodeGroup>;
export type DeployerSettings = Settings['deployer'];

/** Everything the program needs: the validated settings plus where they came from. */
export interface StackConfig extends Settings, StackIdentity {}

const COMMON: DeepPartial<Settings> = {
  network: { cidr: '10.0.0.0/16', excludeZoneIds: [] },
  // No public endpoint by default: deploys reach the API server from inside the VPC.
  cluster: { version: '1.33', publicAccessCidrs: [], adminRoleArns: [], logTypes: ['api', 'audit', 'authenticator'] },
  images: { api: {}, jobs: {}, deployer: {} },
  deployer: { computeType: 'BUILD_GENERAL1_SMALL', timeoutMinutes: 60 },
  lake: { tmpExpireDays: 7, logsInfrequentAccessDays: 30, logsExpireDays: 365, rawIntelligentTieringDays: 0, noncurrentVersionExpireDays: 30 },
  monitoring: { p99LatencyMs: 250, error5xxPercent: 5, nodeCpuPercent: 80, podRestarts: 3, driftPsi: 0.25, unknownCategoryPercent: 5, missingIncreasePercent: 10 },
  pipeline: { volumeSizeGiB: 30, maxRuntimeSeconds: 7200, maxDepth: 16, minLeaf: 5, seed: 42, spotMaxWaitSeconds: 14_400 },
  cost: { alertThresholdsPercent: [50, 80, 100], budgetEmails: [] },
};

/** Per tier: dev small and cheap, prod highly available. */
export const TIER_DEFAULTS: Record<Tier, DeepPartial<Settings>> = {
  dev: {
    network: { azCount: 2, endpointAzCount: 1 },
    nodeGroups: [
      { name: 'spot', capacityType: 'SPOT', instanceTypes: ['t3.medium', 't3a.medium', 't2.medium'], minSize: 0, desiredSize: 2, maxSize: 3, diskSizeGiB: 20 },
    ],
    // dev: drift alarms only notify (a retrain costs SageMaker hours; start one by hand).
    monitoring: { logRetentionDays: 7, retrainOnDrift: false },
    pipeline: {
      etlInstanceType: 'ml.m5.large', etlInstanceCount: 1, trainInstanceType: 'ml.m5.large', trainInstanceCount: 1,
      evaluateInstanceType: 'ml.m5.large', trees: 100, spotTraining: true,
    },
    cost: { monthlyBudgetUsd: 350, demoHours: { timezone: 'UTC', days: 'MON-FRI', start: '08:00', end: '20:00' } },
  },
  stage: {
    network: { azCount: 2, endpointAzCount: 2 },
    nodeGroups: [
      { name: 'base', capacityType: 'ON_DEMAND', instanceTypes: ['m6i.large'], minSize: 2, desiredSize: 2, maxSize: 4, diskSizeGiB: 30 },
    ],
    monitoring: { logRetentionDays: 14, retrainOnDrift: false },
    pipeline: {
      etlInstanceType: 'ml.m5.xlarge', etlInstanceCount: 2, trainInstanceType: 'ml.m5.xlarge', trainInstanceCount: 2,
      evaluateInstanceType: 'ml.m5.xlarge', trees: 200, spotTraining: true,
    },
    cost: { monthlyBudgetUsd: 700 },
  },
  prod: {
    network: { azCount: 3, endpointAzCount: 3 },
    nodeGroups: [
      { name: 'base', capacityType: 'ON_DEMAND', instanceTypes: ['m6i.large'], minSize: 3, desiredSize: 3, maxSize: 6, diskSizeGiB: 50 },
      { name: 'burst', capacityType: 'SPOT', instanceTypes: ['m6i.large', 'm6a.large', 'm5.large', 'm5a.large'], minSize: 0, desiredSize: 2, maxSize: 6, diskSizeGiB: 50 },
    ],
    // prod: drift starts a retrain; its model still waits in PendingManualApproval.
    monitoring: { logRetentionDays: 30, retrainOnDrift: true },
    pipeline: {
      etlInstanceType: 'ml.m5.2xlarge', etlInstanceCount: 2, trainInstanceType: 'ml.m5.2xlarge', trainInstanceCount: 3,
      evaluateInstanceType: 'ml.m5.xlarge', trees: 300, spotTraining: false,
    },
    cost: { monthlyBudgetUsd: 1500 },
  },
};

export const PLATFORM_CONFIG: ProjectConfigSpec<typeof SCHEMA> = {
  schema: SCHEMA,
  stringKeys: ['tier', 'owner', 'costCenter'],
  common: COMMON,
  tiers: TIER_DEFAULTS,
  requiresRegion: true,
  check: checkConsistency,
};

/** Validates raw stack config; throws ConfigError listing every problem. */
export function parseStackConfig(stack: string, project: string, raw: RawConfig): StackConfig {
  return parseProjectConfig(PLATFORM_CONFIG, stack, project, raw);
}

/**
 * A public access list must admit someone: documentation (RFC 5737), private-use
 * (RFC 1918) and other special-purpose blocks admit nobody from the internet.
 */
export function checkPublicCidrs(path: string, cidrs: readonly string[], complain: (path: string, expected: string, value: unknown) => void): void {
  cidrs.forEach((c, i) => {
    const reason = nonRoutableReason(c);
    if (reason !== undefined) complain(`${path}[${i}]`, `a CIDR of addresses on the internet (${reason})`, c);
  });
}

/** Rules across keys: each names the key to change and why. */
function checkConsistency(s: Settings, complain: (path: string, expected: string, value: unknown, described?: string) => void): void {
  if (s.network.endpointAzCount > s.network.azCount) {
    complain('network.endpointAzCount', `at most network.azCount (${s.network.azCount})`, s.network.endpointAzCount);
  }
  if (s.network.zoneIds !== undefined) {
    for (const p of pinnedZoneProblems(s.network.zoneIds, s.network.azCount, s.network.excludeZoneIds)) complain(p.path, p.expected, p.value);
  }
  if (!s.network.cidr.endsWith('/16')) {
    complain('network.cidr', 'a /16 block (subnets are carved as /20s)', s.network.cidr);
  }
  checkPublicCidrs('cluster.publicAccessCidrs', s.cluster.publicAccessCidrs, complain);
  for (const name of Object.keys(IMAGE_REPOSITORIES) as ImageName[]) {
    const problem = imageRefProblem(s.tier, s.images[name]);
    if (problem !== undefined) complain(`images.${name}`, problem, s.images[name]);
  }
  const names = new Set<string>();
  s.nodeGroups.forEach((g, i) => {
    const at = `nodeGroups[${i}]`;
    if (names.has(g.name)) complain(`${at}.name`, 'a name unique among node groups', g.name);
    names.add(g.name);
    if (!(g.minSize <= g.desiredSize && g.desiredSize <= g.maxSize)) {
      complain(at, 'minSize <= desiredSize <= maxSize', g, `${g.minSize} / ${g.desiredSize} / ${g.maxSize}`);
    }
    if (s.cost.demoHours && g.minSize !== 0) {
      complain(`${at}.minSize`, '0 when cost.demoHours is set (the schedule scales node groups to zero)', g.minSize);
    }
  });
  if (s.lake.logsExpireDays <= s.lake.logsInfrequentAccessDays) {
    complain('lake.logsExpireDays', `more than lake.logsInfrequentAccessDays (${s.lake.logsInfrequentAccessDays})`, s.lake.logsExpireDays);
  }
  if (s.tier !== 'dev' && s.cluster.publicAccessCidrs.length > 0) {
    complain('cluster.publicAccessCidrs', `empty in ${s.tier} (private API endpoint only, Security Hub EKS.1: deploys run inside the VPC)`, s.cluster.publicAccessCidrs);
  } else if (s.cluster.publicAccessCidrs.includes('0.0.0.0/0')) {
    complain('cluster.publicAccessCidrs', 'specific operator CIDRs (the Kubernetes API must not be open to the internet)', s.cluster.publicAccessCidrs);
  }
  const missingLogs = REQUIRED_CLUSTER_LOG_TYPES.filter((t) => !s.cluster.logTypes.includes(t));
  if (missingLogs.length > 0) {
    complain('cluster.logTypes', `a list including ${REQUIRED_CLUSTER_LOG_TYPES.join(', ')} (missing ${missingLogs.join(', ')})`, s.cluster.logTypes);
  }
  if (s.tier === 'prod') {
    if (s.cost.demoHours) {
      complain('cost.demoHours', 'unset in prod (prod never scales to zero)', s.cost.demoHours);
    }
  }
  const pl = s.pipeline;
  if (pl.spotTraining && pl.spotMaxWaitSeconds < pl.maxRuntimeSeconds) {
    complain('pipeline.spotMaxWaitSeconds', `at least pipeline.maxRuntimeSeconds (${pl.maxRuntimeSeconds}) when pipeline.spotTraining is on`, pl.spotMaxWaitSeconds);
  }
  if (pl.trees < pl.trainInstanceCount) {
    complain('pipeline.trees', `at least pipeline.trainInstanceCount (${pl.trainInstanceCount}): every training host trains a share of the trees`, pl.trees);
  }
  const d = s.cost.demoHours;
  if (d && d.start >= d.end) {
    complain('cost.demoHours.end', `a time after cost.demoHours.start (${d.start}) on the same day`, d.end);
  }
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** EventBridge Scheduler cron (minutes hours day-of-month month day-of-week year). */
export function cronAt(hhmm: string, days: string): string {
  const [h, m] = hhmm.split(':').map(Number);
  return `cron(${m} ${h} ? * ${days} *)`;
}

/** What each release image runs on the platform, and the stack output that records the one running now. */
const RELEASE_IMAGE_USES: Record<ImageName, { output: string; deletes: string }> = {
  api: { output: 'pipelineApiImage', deletes: 'the pipeline\'s ApiImage default' },
  jobs: { output: 'pipelineJobsImage', deletes: 'the pipeline\'s JobsImage default' },
  deployer: { output: 'deployerImage', deletes: 'the in-VPC deployer: its CodeBuild project, role and access entry' },
};

/** The platform program's config: parsed, and refused without the release's images (review H2). */
export function parseReleasedStackConfig(stack: string, project: string, raw: RawConfig): StackConfig {
  const cfg = parseStackConfig(stack, project, raw);
  const missing = (Object.keys(IMAGE_REPOSITORIES) as ImageName[]).filter((name) => !hasImage(cfg.images[name]));
  if (missing.length > 0) {
    throw new ConfigError(stack, missing.map((name) => missingImageIssue(`pricesense:images.${name}`, stack, RELEASE_IMAGE_USES[name].output, RELEASE_IMAGE_USES[name].deletes)));
  }
  return cfg;
}
