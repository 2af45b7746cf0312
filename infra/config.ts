/**
 * Stack config: every setting lives under the `pricesense:` namespace (plus the
 * standard `aws:region`), is merged over per-tier defaults and validated at startup.
 * A wrong, missing or unknown key stops the program before any resource is declared,
 * with a message naming the key, the stack and the expected type.
 *
 * This module has no dependency on the cloud SDKs, so it is cheap to test.
 */
import {
  type Infer,
  type Issue,
  bool,
  cidr,
  deepMerge,
  describeValue,
  int,
  list,
  obj,
  oneOf,
  optional,
  str,
} from './config-schema';

export const NAMESPACE = 'pricesense';
export const TIERS = ['dev', 'stage', 'prod'] as const;
export type Tier = (typeof TIERS)[number];

/** Values CloudWatch Logs accepts for retentionInDays. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

const EMAIL = str({ pattern: /^[^@\s]+@[^@\s]+\.[^@\s]+$/, patternText: 'an email address' });
const NAME = str({ pattern: /^[a-z][a-z0-9-]{0,19}$/, patternText: 'a lowercase name of letters, digits and "-" (at most 20, starting with a letter)' });
const QUANTITY_CPU = str({ pattern: /^(\d+m|\d+(\.\d+)?)$/, patternText: 'a Kubernetes CPU quantity such as 250m or 1' });
const QUANTITY_MEM = str({ pattern: /^\d+(Ki|Mi|Gi)$/, patternText: 'a Kubernetes memory quantity such as 256Mi or 1Gi' });
const HHMM = str({ pattern: /^([01]\d|2[0-3]):[0-5]\d$/, patternText: 'a time of day HH:MM (24-hour)' });
const INSTANCE_TYPE = str({ pattern: /^[a-z][a-z0-9-]*\.[a-z0-9]+$/, patternText: 'an EC2 instance type such as t3.medium' });
const SAGEMAKER_INSTANCE = str({ pattern: /^ml\.[a-z0-9]+\.[a-z0-9]+$/, patternText: 'a SageMaker instance type such as ml.m5.large' });
const IMAGE_TAG = str({ pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, patternText: 'an image tag such as 1.4.2' });
const ROLE_ARN = str({ pattern: /^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/.+$/, patternText: 'an IAM role or user ARN (arn:aws:iam::123456789012:role/Name)' });
const TIMEZONE = str({
  patternText: 'an IANA time zone such as Europe/Berlin or UTC',
  check: (v) => (isTimeZone(v) ? undefined : 'an IANA time zone such as Europe/Berlin or UTC'),
});
const DAYS = str({
  pattern: /^(MON|TUE|WED|THU|FRI|SAT|SUN)(-(MON|TUE|WED|THU|FRI|SAT|SUN))?(,(MON|TUE|WED|THU|FRI|SAT|SUN)(-(MON|TUE|WED|THU|FRI|SAT|SUN))?)*$/,
  patternText: 'cron days of week such as MON-FRI or MON,WED,FRI',
});

export const CLUSTER_LOG_TYPES = ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'] as const;

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
  owner: str({ pattern: /^[\w.@+=:/ -]{1,128}$/, patternText: 'a tag value (1-128 letters, digits, spaces or _.:/=+-@)' }),
  costCenter: str({ pattern: /^[\w.@+=:/ -]{1,128}$/, patternText: 'a tag value (1-128 letters, digits, spaces or _.:/=+-@)' }),
  network: obj({
    cidr: cidr(),
    azCount: int(2, 3),
    /** Interface endpoints are billed per AZ: dev puts them in fewer AZs than the nodes. */
    endpointAzCount: int(1, 3),
  }),
  cluster: obj({
    version: str({ pattern: /^1\.\d{2}$/, patternText: 'a Kubernetes minor version such as 1.33' }),
    publicAccessCidrs: list(cidr(), 1, 40),
    adminRoleArns: list(ROLE_ARN, 0, 20),
    logTypes: list(oneOf(CLUSTER_LOG_TYPES), 0, 5),
  }),
  nodeGroups: list(nodeGroup, 1, 5),
  app: obj({
    image: obj({
      tag: optional(IMAGE_TAG),
      digest: optional(str({ pattern: /^sha256:[a-f0-9]{64}$/, patternText: 'an image digest sha256:<64 hex>' })),
    }),
    publicEndpoint: bool(),
    publicEndpointCidrs: list(cidr(), 1, 40),
    minReplicas: int(1, 100),
    maxReplicas: int(1, 100),
    targetCpuPercent: int(10, 95),
    scaleDownStabilizationSeconds: int(0, 3600),
    cpuRequest: QUANTITY_CPU,
    cpuLimit: QUANTITY_CPU,
    memoryRequest: QUANTITY_MEM,
    memoryLimit: QUANTITY_MEM,
  }),
  lake: obj({
    tmpExpireDays: int(1, 3650),
    logsInfrequentAccessDays: int(30, 3650),
    logsExpireDays: int(31, 3650),
    rawGlacierIrDays: int(1, 3650),
    noncurrentVersionExpireDays: int(1, 3650),
  }),
  imageRegistry: obj({
    untaggedExpireDays: int(1, 365),
    keepReleases: int(1, 1000),
  }),
  monitoring: obj({
    logRetentionDays: int(1, 3653, LOG_RETENTION_DAYS),
    alarmEmail: optional(EMAIL),
    p99LatencyMs: int(1, 60_000),
    error5xxPercent: int(1, 100),
    nodeCpuPercent: int(10, 100),
    podRestarts: int(1, 1000),
  }),
  /** The SageMaker retraining pipeline (infra/sagemaker-pipeline.ts); the values are its parameters' defaults. */
  pipeline: obj({
    /** Tag of the jobs image in the stack's repository; default `<app.image.tag>-jobs`. */
    jobsImageTag: optional(IMAGE_TAG),
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
    alertThresholdsPercent: list(int(1, 1000), 1, 10),
    budgetEmails: list(EMAIL, 0, 10),
    /** Nodes run only inside these hours; outside them the node groups scale to zero. */
    demoHours: optional(obj({ timezone: TIMEZONE, days: DAYS, start: HHMM, end: HHMM })),
  }),
} as const;

type Schema = typeof SCHEMA;
export type SettingsOf<S extends Record<string, { parse: unknown }>> = { [K in keyof S]: Infer<S[K]> };
export type Settings = SettingsOf<Schema>;
export type NodeGroupSettings = Infer<typeof nodeGroup>;

/** Everything the program needs: the validated settings plus where they came from. */
export interface StackConfig extends Settings {
  readonly stack: string;
  readonly project: string;
  readonly region: string;
}

type DeepPartial<T> = T extends readonly (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

const COMMON: DeepPartial<Settings> = {
  network: { cidr: '10.0.0.0/16' },
  cluster: { version: '1.33', adminRoleArns: [], logTypes: ['api', 'audit', 'authenticator'] },
  app: {
    image: {},
    publicEndpoint: false,
    publicEndpointCidrs: ['0.0.0.0/0'],
    targetCpuPercent: 70,
    cpuRequest: '250m',
    cpuLimit: '1',
    memoryRequest: '256Mi',
    memoryLimit: '512Mi',
  },
  lake: { tmpExpireDays: 7, logsInfrequentAccessDays: 30, logsExpireDays: 365, rawGlacierIrDays: 90, noncurrentVersionExpireDays: 30 },
  imageRegistry: { untaggedExpireDays: 7, keepReleases: 30 },
  monitoring: { p99LatencyMs: 250, error5xxPercent: 5, nodeCpuPercent: 80, podRestarts: 3 },
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
    app: { publicEndpoint: true, minReplicas: 1, maxReplicas: 3, scaleDownStabilizationSeconds: 60 },
    monitoring: { logRetentionDays: 7 },
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
    app: { minReplicas: 2, maxReplicas: 4, scaleDownStabilizationSeconds: 300 },
    monitoring: { logRetentionDays: 14 },
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
    app: { minReplicas: 3, maxReplicas: 12, scaleDownStabilizationSeconds: 600 },
    monitoring: { logRetentionDays: 30 },
    pipeline: {
      etlInstanceType: 'ml.m5.2xlarge', etlInstanceCount: 2, trainInstanceType: 'ml.m5.2xlarge', trainInstanceCount: 3,
      evaluateInstanceType: 'ml.m5.xlarge', trees: 300, spotTraining: false,
    },
    cost: { monthlyBudgetUsd: 1500 },
  },
};

export class ConfigError extends Error {
  readonly issues: readonly Issue[];
  constructor(stack: string, issues: readonly Issue[]) {
    const lines = issues.map((i) => `  - ${i.key}: expected ${i.expected}, got ${i.got}`);
    super(
      `Invalid stack config for stack "${stack}" (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}\n` +
        `Fix with \`pulumi config set --stack ${stack} [--path] <key> <value>\`; see docs/infra.md for every key.`,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/**
 * Raw config as the Pulumi engine hands it over (pulumi.runtime.allConfig()): every
 * value is a string, structured values are JSON text. Keys are `namespace:name`.
 */
export type RawConfig = Readonly<Record<string, string>>;

/** Top-level keys whose values are plain strings: taken literally, so owner "1234" stays a string. */
const STRING_KEYS: ReadonlySet<string> = new Set(['tier', 'owner', 'costCenter']);

function parseRaw(name: string, raw: string): unknown {
  if (STRING_KEYS.has(name)) return raw;
  // Everything else is JSON as written by `pulumi config set --path` or the stack file;
  // a value that is not JSON stays a string and is reported with its expected type.
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export function tierOfStack(stack: string): Tier | undefined {
  return (TIERS as readonly string[]).includes(stack) ? (stack as Tier) : undefined;
}

/** Validates raw stack config; throws ConfigError listing every problem. */
export function parseStackConfig(stack: string, project: string, raw: RawConfig): StackConfig {
  const issues: Issue[] = [];
  const user: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(raw)) {
    const [ns, ...rest] = fullKey.split(':');
    if (ns !== NAMESPACE) continue;
    const name = rest.join(':');
    if (!(name in SCHEMA)) {
      const hint = name.includes('.') ? ` (to set a nested key use \`pulumi config set --path ${fullKey} ...\`)` : '';
      issues.push({ key: fullKey, expected: `no such key${hint}; known keys: ${Object.keys(SCHEMA).map((k) => `${NAMESPACE}:${k}`).join(', ')}`, got: describeValue(value) });
      continue;
    }
    user[name] = parseRaw(name, value);
  }

  const region = raw['aws:region'];
  if (region === undefined || !/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/.test(region)) {
    issues.push({ key: 'aws:region', expected: 'an AWS region such as eu-west-1', got: describeValue(region) });
  }

  const tierValue = user.tier ?? tierOfStack(stack);
  const tierIssues: Issue[] = [];
  const tier = SCHEMA.tier.parse(tierValue, `${NAMESPACE}:tier`, tierIssues);
  if (tier === undefined) {
    issues.push(
      ...tierIssues.map((i) =>
        user.tier === undefined ? { ...i, expected: `${i.expected} (stack "${stack}" is not named after a tier, so set it)` } : i,
      ),
    );
    throw new ConfigError(stack, issues);
  }

  const merged = deepMerge(deepMerge(COMMON, TIER_DEFAULTS[tier]), { ...user, tier }) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SCHEMA)) {
    out[name] = (spec as { parse: (v: unknown, k: string, i: Issue[]) => unknown }).parse(merged[name], `${NAMESPACE}:${name}`, issues);
  }
  if (issues.length > 0) throw new ConfigError(stack, issues);

  const settings = out as unknown as Settings;
  checkConsistency(settings, issues);
  if (issues.length > 0) throw new ConfigError(stack, issues);
  return { ...settings, stack, project, region: region as string };
}

/** Rules across keys: each names the key to change and why. */
function checkConsistency(s: Settings, issues: Issue[]): void {
  const k = (path: string): string => `${NAMESPACE}:${path}`;
  if (s.network.endpointAzCount > s.network.azCount) {
    issues.push({ key: k('network.endpointAzCount'), expected: `at most network.azCount (${s.network.azCount})`, got: describeValue(s.network.endpointAzCount) });
  }
  if (!s.network.cidr.endsWith('/16')) {
    issues.push({ key: k('network.cidr'), expected: 'a /16 block (subnets are carved as /20s)', got: describeValue(s.network.cidr) });
  }
  const names = new Set<string>();
  s.nodeGroups.forEach((g, i) => {
    const at = `nodeGroups[${i}]`;
    if (names.has(g.name)) issues.push({ key: k(`${at}.name`), expected: 'a name unique among node groups', got: describeValue(g.name) });
    names.add(g.name);
    if (!(g.minSize <= g.desiredSize && g.desiredSize <= g.maxSize)) {
      issues.push({ key: k(at), expected: 'minSize <= desiredSize <= maxSize', got: `${g.minSize} / ${g.desiredSize} / ${g.maxSize}` });
    }
    if (s.cost.demoHours && g.minSize !== 0) {
      issues.push({ key: k(`${at}.minSize`), expected: '0 when cost.demoHours is set (the schedule scales node groups to zero)', got: describeValue(g.minSize) });
    }
  });
  if (s.nodeGroups.every((g) => g.maxSize === 0)) {
    issues.push({ key: k('nodeGroups'), expected: 'at least one node group that can run nodes', got: 'none' });
  }
  if (s.app.minReplicas > s.app.maxReplicas) {
    issues.push({ key: k('app.minReplicas'), expected: `at most app.maxReplicas (${s.app.maxReplicas})`, got: describeValue(s.app.minReplicas) });
  }
  if (s.app.image.tag !== undefined && s.app.image.digest !== undefined) {
    issues.push({ key: k('app.image'), expected: 'either tag or digest, not both', got: describeValue(s.app.image) });
  }
  if (s.lake.logsExpireDays <= s.lake.logsInfrequentAccessDays) {
    issues.push({ key: k('lake.logsExpireDays'), expected: `more than lake.logsInfrequentAccessDays (${s.lake.logsInfrequentAccessDays})`, got: describeValue(s.lake.logsExpireDays) });
  }
  if (s.tier === 'prod') {
    if (s.cluster.publicAccessCidrs.includes('0.0.0.0/0')) {
      issues.push({ key: k('cluster.publicAccessCidrs'), expected: 'specific CIDRs in prod (the Kubernetes API must not be open to the internet)', got: describeValue(s.cluster.publicAccessCidrs) });
    }
    if (s.cost.demoHours) {
      issues.push({ key: k('cost.demoHours'), expected: 'unset in prod (prod never scales to zero)', got: describeValue(s.cost.demoHours) });
    }
    if (s.app.minReplicas < 2) {
      issues.push({ key: k('app.minReplicas'), expected: 'at least 2 in prod (a PodDisruptionBudget needs a spare replica)', got: describeValue(s.app.minReplicas) });
    }
  }
  const pl = s.pipeline;
  if (pl.spotTraining && pl.spotMaxWaitSeconds < pl.maxRuntimeSeconds) {
    issues.push({ key: k('pipeline.spotMaxWaitSeconds'), expected: `at least pipeline.maxRuntimeSeconds (${pl.maxRuntimeSeconds}) when pipeline.spotTraining is on`, got: describeValue(pl.spotMaxWaitSeconds) });
  }
  if (pl.trees < pl.trainInstanceCount) {
    issues.push({ key: k('pipeline.trees'), expected: `at least pipeline.trainInstanceCount (${pl.trainInstanceCount}): every training host trains a share of the trees`, got: describeValue(pl.trees) });
  }
  if (pl.jobsImageTag === undefined && s.app.image.tag !== undefined && s.app.image.tag.length > 123) {
    issues.push({ key: k('pipeline.jobsImageTag'), expected: 'set explicitly when app.image.tag is longer than 123 characters (the default adds "-jobs")', got: describeValue(pl.jobsImageTag) });
  }
  const d = s.cost.demoHours;
  if (d && d.start >= d.end) {
    issues.push({ key: k('cost.demoHours.end'), expected: `a time after cost.demoHours.start (${d.start}) on the same day`, got: describeValue(d.end) });
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
