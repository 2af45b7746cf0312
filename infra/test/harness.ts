/**
 * Runs a real Pulumi program of this repository (the platform, the app project or the
 * delivery bootstrap) against the mock engine, for one stack with that stack's own
 * Pulumi.<stack>.yaml, in one of two modes:
 *
 * - update: every resource "created", with the outputs a provider would compute;
 * - preview: the first `pulumi up`'s preview: nothing exists yet, so ids and computed
 *   outputs are unknown, and so is every input derived from them. Rules and assertions
 *   that only work once resources exist fail here, as they would in front of a real
 *   first deploy.
 *
 * Resource options (protect, retainOnDelete, dependsOn, ...) never reach the mock's
 * newResource hook; a stack transformation records them for every resource.
 */
import * as pulumi from '@pulumi/pulumi';
import type { CheckedResource } from '../policies/rules';
import { DIGEST, PROJECT_NAMES, stackConfig, type Project } from './stack-files';
import type { AvailableZones } from '../network';
import { platformProgram } from '../program';
import { appProgram } from '../app/program';
import { deliveryProgram } from '../delivery/program';

export { ROOT, DIGEST, AUTOSCALER_DIGEST, AUTOSCALER_CONFIG, stackConfig, type Project } from './stack-files';
export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const JOBS_DIGEST = `sha256:${'cd'.repeat(32)}`;
export const DEPLOYER_DIGEST = `sha256:${'ef'.repeat(32)}`;
export const REGISTRY = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`;

// The policy SDK's own unknown-value machinery, so preview props behave as the engine hands them to rules.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const policyProxy = require('@pulumi/policy/proxy') as {
  unknownCheckingProxy<T extends object>(o: T): T;
  unknownStringValue: string;
  isSpecialProxy: string;
  getSpecialProxyTarget: string;
};
export const UNKNOWN = policyProxy.unknownStringValue;

export type Mode = 'update' | 'preview';

const PROGRAMS: Record<Project, () => Record<string, pulumi.Input<unknown>> | Promise<Record<string, pulumi.Input<unknown>>>> = { platform: platformProgram, app: appProgram, delivery: deliveryProgram };

/** The account's zones as getAvailabilityZones returns them (name order); use1-az3 is one EKS refuses. */
export const US_EAST_1_ZONES: AvailableZones = {
  names: ['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-east-1d', 'us-east-1e', 'us-east-1f'],
  zoneIds: ['use1-az3', 'use1-az6', 'use1-az1', 'use1-az2', 'use1-az4', 'use1-az5'],
};

export interface RunOptions {
  readonly overrides?: Record<string, string>;
  readonly mode?: Mode;
  readonly zones?: AvailableZones;
  /** Outputs of the platform stack the app project references. */
  readonly platformOutputs?: Record<string, unknown>;
}

/** Options as given to the resource's constructor (after parent inheritance of protect). */
export interface CapturedOptions {
  readonly protect: boolean;
  readonly retainOnDelete: boolean | undefined;
  /** `type::name` of each explicit dependency. */
  readonly dependsOn: string[];
  readonly ignoreChanges: string[];
  readonly deleteBeforeReplace: boolean | undefined;
  readonly import: string | undefined;
}

export interface Recorded {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly state: Record<string, unknown>;
  /** Undefined in preview for anything not created yet. */
  readonly id: string | undefined;
  /** `urn::id` of the explicit provider, when the engine was given one. */
  readonly provider: string | undefined;
  readonly opts: CapturedOptions;
}

export interface ProgramRun {
  readonly project: Project;
  readonly stack: string;
  readonly mode: Mode;
  readonly resources: Recorded[];
  readonly outputs: Record<string, unknown>;
  readonly logs: string[];
  /** Every invoke (data source) the program made: token and arguments. */
  readonly invokes: { token: string; inputs: Record<string, unknown> }[];
  ofType(type: string): Recorded[];
  one(type: string, name?: string | RegExp): Recorded;
  /** The resources in the shape the policy rules read; in preview, unknown values throw on access as in the engine. */
  checked(): CheckedResource[];
}

const ID_PREFIX: Record<string, string> = {
  'aws:ec2/vpc:Vpc': 'vpc-',
  'aws:ec2/subnet:Subnet': 'subnet-',
  'aws:ec2/internetGateway:InternetGateway': 'igw-',
  'aws:ec2/routeTable:RouteTable': 'rtb-',
  'aws:ec2/securityGroup:SecurityGroup': 'sg-',
  'aws:ec2/vpcEndpoint:VpcEndpoint': 'vpce-',
  'aws:ec2/launchTemplate:LaunchTemplate': 'lt-',
};

export function hex(s: string): string {
  let h = 2166136261;
  for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h.toString(16).padStart(8, '0');
}

function idFor(type: string, name: string, inputs: Record<string, unknown>): string {
  if (type === 'aws:s3/bucket:Bucket') return typeof inputs.bucket === 'string' ? inputs.bucket : `${String(inputs.bucketPrefix ?? '')}${hex(name)}`;
  if (type === 'aws:iam/role:Role') return typeof inputs.name === 'string' ? inputs.name : `${name}-${hex(name)}`;
  const prefix = ID_PREFIX[type];
  return prefix ? `${prefix}${hex(name)}` : `${name}-id`;
}

/** Outputs the programs read that a real provider would compute. */
function computed(type: string, name: string, inputs: Record<string, unknown>, id: string): Record<string, unknown> {
  const arn = (svc: string, res: string): string => `arn:aws:${svc}:${REGION}:${ACCOUNT}:${res}`;
  switch (type) {
    case 'aws:s3/bucket:Bucket':
      return { bucket: id, arn: `arn:aws:s3:::${id}` };
    case 'aws:ecr/repository:Repository':
      return { arn: arn('ecr', `repository/${String(inputs.name)}`), repositoryUrl: `${REGISTRY}/${String(inputs.name)}` };
    case 'aws:iam/role:Role':
      return { arn: `arn:aws:iam::${ACCOUNT}:role${String(inputs.path ?? '/')}${id}`, name: id };
    case 'aws:iam/openIdConnectProvider:OpenIdConnectProvider':
      return { arn: `arn:aws:iam::${ACCOUNT}:oidc-provider/${String(inputs.url).replace(/^https:\/\//, '')}` };
    case 'aws:kms/key:Key':
      return { keyId: `key-${hex(name)}`, arn: arn('kms', `key/key-${hex(name)}`) };
    case 'aws:sagemaker/modelPackageGroup:ModelPackageGroup':
      return { arn: arn('sagemaker', `model-package-group/${String(inputs.modelPackageGroupName)}`) };
    case 'aws:sns/topic:Topic':
      return { arn: arn('sns', id) };
    case 'aws:cloudwatch/logGroup:LogGroup':
      return { arn: arn('logs', `log-group:${String(inputs.name)}`) };
    case 'aws:cloudwatch/metricAlarm:MetricAlarm':
      return { arn: arn('cloudwatch', `alarm:${String(inputs.name ?? id)}`) };
    case 'aws:sagemaker/pipeline:Pipeline':
      return { arn: arn('sagemaker', `pipeline/${String(inputs.pipelineName)}`) };
    case 'aws:lambda/function:Function':
      return { arn: arn('lambda', `function:${String(inputs.name)}`), name: inputs.name };
    case 'aws:cloudwatch/eventRule:EventRule':
      return { arn: arn('events', `rule/${String(inputs.name)}`) };
    case 'aws:scheduler/scheduleGroup:ScheduleGroup':
      return { arn: arn('scheduler', `schedule-group/${String(inputs.name)}`) };
    case 'aws:codebuild/project:Project':
      return { arn: arn('codebuild', `project/${String(inputs.name)}`) };
    case 'aws:ec2/launchTemplate:LaunchTemplate':
      return { latestVersion: 1, arn: arn('ec2', `launch-template/${id}`) };
    case 'aws:ec2/vpcEndpoint:VpcEndpoint':
      return inputs.vpcEndpointType === 'Gateway' ? { prefixListId: 'pl-63a5400a' } : {};
    case 'eks:index:Cluster': {
      const issuer = `oidc.eks.${REGION}.amazonaws.com/id/${hex(name).toUpperCase()}`;
      return {
        kubeconfigJson: JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: String(inputs.name) }] }),
        oidcProviderArn: `arn:aws:iam::${ACCOUNT}:oidc-provider/${issuer}`,
        oidcProviderUrl: `https://${issuer}`,
        oidcIssuer: issuer,
        clusterSecurityGroupId: `sg-${hex(`${name}-cluster`)}`,
      };
    }
    case 'kubernetes:core/v1:Service': {
      const spec = (inputs.spec ?? {}) as Record<string, unknown>;
      return spec.type === 'LoadBalancer' ? { status: { loadBalancer: { ingress: [{ hostname: `a${hex(name)}.elb.${REGION}.amazonaws.com` }] } } } : {};
    }
    default:
      return {};
  }
}

/** What a deployed platform stack of this tier exports, as the app project reads it. */
export function platformOutputsFor(stack: string): Record<string, unknown> {
  return {
    apiRepositoryUrl: `${REGISTRY}/pricesense/api`,
    apiRoleArn: `arn:aws:iam::${ACCOUNT}:role/api-irsa-${hex('api-irsa')}`,
    registryUri: `sagemaker://pricesense-${stack}`,
    lakeUri: `s3://pricesense-lake-${stack}-${ACCOUNT}`,
    lakeBucket: `pricesense-lake-${stack}-${ACCOUNT}`,
    costTags: { project: 'pricesense', stack, owner: 'ml-platform', 'cost-center': 'cc-4711', tier: stack },
    region: REGION,
    tier: stack,
    clusterName: `pricesense-${stack}`,
    kubernetesVersion: '1.33',
    kubeconfig: JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: `pricesense-${stack}` }] }),
    nodeCidrs: ['10.0.0.0/20', '10.0.16.0/20', '10.0.32.0/20'],
  };
}

interface Capture {
  readonly type: string;
  readonly name: string;
  readonly parent: pulumi.Resource | undefined;
  readonly opts: pulumi.CustomResourceOptions;
}

function dependsOnList(value: unknown): pulumi.Resource[] {
  if (Array.isArray(value)) return value.filter((v): v is pulumi.Resource => pulumi.Resource.isInstance(v));
  return pulumi.Resource.isInstance(value) ? [value] : [];
}

/** Replaces the SDK's Unknown values with the engine's wire sentinel, as the policy analyzer receives them. */
function sentinelize(v: unknown): unknown {
  if (pulumi.isUnknown(v)) return UNKNOWN;
  if (Array.isArray(v)) return v.map(sentinelize);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sentinelize(x)]));
  return v;
}

export async function runProgram(project: Project, stack: string, options: RunOptions = {}): Promise<ProgramRun> {
  const mode = options.mode ?? 'update';
  const preview = mode === 'preview';
  const resources: Omit<Recorded, 'opts'>[] = [];
  const captured = new Map<pulumi.Resource, Capture>();
  const logs: string[] = [];
  const invokes: { token: string; inputs: Record<string, unknown> }[] = [];
  const zones = options.zones ?? US_EAST_1_ZONES;

  pulumi.runtime.setAllConfig({ ...stackConfig(project, stack), ...options.overrides });
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const isProvider = args.type.startsWith('pulumi:providers:');
        if (args.type === 'pulumi:pulumi:StackReference') {
          const outputs = options.platformOutputs ?? platformOutputsFor(stack);
          const state = { name: args.inputs.name, outputs, secretOutputNames: [] };
          resources.push({ type: args.type, name: args.name, inputs: args.inputs, state, id: String(args.inputs.name), provider: undefined });
          return { id: String(args.inputs.name), state };
        }
        if (preview && !isProvider) {
          // Nothing exists yet: the engine knows the inputs, nothing the provider would compute.
          resources.push({ type: args.type, name: args.name, inputs: args.inputs, state: args.inputs, id: undefined, provider: args.provider || undefined });
          return { id: '', state: args.inputs };
        }
        const id = idFor(args.type, args.name, args.inputs);
        const state = { ...args.inputs, ...computed(args.type, args.name, args.inputs, id) };
        resources.push({ type: args.type, name: args.name, inputs: args.inputs, state, id, provider: args.provider || undefined });
        return { id, state };
      },
      call(args) {
        invokes.push({ token: args.token, inputs: args.inputs as Record<string, unknown> });
        switch (args.token) {
          case 'aws:index/getAvailabilityZones:getAvailabilityZones':
            return { ...zones, id: REGION };
          case 'aws:index/getCallerIdentity:getCallerIdentity':
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: 'AIDTEST' };
          case 'aws:index/getPartition:getPartition':
            return { partition: 'aws', dnsSuffix: 'amazonaws.com' };
          case 'aws:eks/getAddonVersion:getAddonVersion':
            // The default build of each add-on for the requested Kubernetes version.
            return { addonName: args.inputs.addonName, kubernetesVersion: args.inputs.kubernetesVersion, version: `${String(args.inputs.addonName)}-for-${String(args.inputs.kubernetesVersion)}-eksbuild.1`, id: String(args.inputs.addonName) };
          case 'aws:ecr/getRepository:getRepository': {
            const name = String(args.inputs.name);
            return { name, repositoryUrl: `${REGISTRY}/${name}`, arn: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${name}`, registryId: ACCOUNT };
          }
          default:
            throw new Error(`unmocked invoke ${args.token}`);
        }
      },
    },
    PROJECT_NAMES[project],
    stack,
    preview,
  );

  const [log, warn] = [pulumi.log.info, pulumi.log.warn];
  pulumi.log.info = pulumi.log.warn = (msg: string) => {
    logs.push(msg);
    return Promise.resolve();
  };
  let outputs: Record<string, unknown>;
  try {
    outputs = (await pulumi.runtime.runInPulumiStack(async () => {
      pulumi.runtime.registerStackTransformation((args) => {
        captured.set(args.resource, { type: args.type, name: args.name, parent: args.opts.parent, opts: args.opts as pulumi.CustomResourceOptions });
        return undefined;
      });
      return PROGRAMS[project]();
    })) as Record<string, unknown>;
    await pulumi.runtime.disconnect();
  } finally {
    pulumi.log.info = log;
    pulumi.log.warn = warn;
  }

  // protect is inherited from the parent unless set; the engine sees the effective value.
  const protectOf = (r: pulumi.Resource | undefined): boolean => {
    const c = r ? captured.get(r) : undefined;
    if (!c) return false;
    return c.opts.protect ?? protectOf(c.parent);
  };
  const key = (r: pulumi.Resource): string => {
    const c = captured.get(r);
    return c ? `${c.type}::${c.name}` : '?';
  };
  const optsByKey = new Map<string, CapturedOptions>();
  for (const [resource, c] of captured) {
    optsByKey.set(`${c.type}::${c.name}`, {
      protect: protectOf(resource),
      retainOnDelete: c.opts.retainOnDelete,
      dependsOn: dependsOnList(c.opts.dependsOn).map(key),
      ignoreChanges: c.opts.ignoreChanges ?? [],
      deleteBeforeReplace: c.opts.deleteBeforeReplace,
      import: c.opts.import,
    });
  }
  const recorded: Recorded[] = resources.map((r) => ({
    ...r,
    opts: optsByKey.get(`${r.type}::${r.name}`) ?? { protect: false, retainOnDelete: undefined, dependsOn: [], ignoreChanges: [], deleteBeforeReplace: undefined, import: undefined },
  }));

  const byId = new Map(recorded.filter((r) => r.id !== undefined).map((r) => [r.id, r]));
  const providerOf = (r: Recorded): Recorded | undefined => (r.provider ? byId.get(r.provider.split('::').pop() ?? '') : undefined);
  return {
    project,
    stack,
    mode,
    resources: recorded,
    outputs,
    logs,
    invokes,
    ofType: (type) => recorded.filter((r) => r.type === type),
    one(type, name) {
      const found = recorded.filter((r) => r.type === type && (name === undefined || (typeof name === 'string' ? r.name === name : name.test(r.name))));
      if (found.length !== 1) throw new Error(`expected one ${type}${name ? ` named ${String(name)}` : ''}, found ${found.length}`);
      return found[0];
    },
    checked: () =>
      recorded
        .filter((r) => r.type !== 'pulumi:pulumi:Stack')
        .map((r) => {
          const p = providerOf(r);
          const props = preview
            ? policyProxy.unknownCheckingProxy(sentinelize({ ...r.inputs, ...(r.type.startsWith('pulumi:') ? {} : { id: UNKNOWN }) }) as Record<string, unknown>)
            : { ...r.state, id: r.id };
          return {
            type: r.type,
            name: r.name,
            urn: `urn:pulumi:${stack}::${PROJECT_NAMES[project]}::${r.type}::${r.name}`,
            props,
            provider: p ? { type: p.type, props: p.inputs } : undefined,
            opts: { protect: r.opts.protect },
          };
        }),
  };
}

/** Parses a JSON policy document input (IAM, bucket, topic policies). */
export function policyDoc(value: unknown): { Statement: Record<string, unknown>[] } {
  return JSON.parse(String(value)) as { Statement: Record<string, unknown>[] };
}

/** Image digests as the release workflow sets them on a platform stack. */
export function releaseImages(): string {
  return JSON.stringify({ api: { digest: DIGEST }, jobs: { digest: JOBS_DIGEST }, deployer: { digest: DEPLOYER_DIGEST } });
}

/**
 * A copy of a checked resource with some props replaced, for catching tests. Preview props
 * stay an engine proxy (the replaced values known, the rest as unknown as before).
 */
export function withProps(r: CheckedResource, props: Record<string, unknown>): CheckedResource {
  const proxied = (r.props as Record<string, unknown>)[policyProxy.isSpecialProxy] === true;
  if (!proxied) return { ...r, props: { ...r.props, ...props } };
  const target = (r.props as Record<string, unknown>)[policyProxy.getSpecialProxyTarget] as Record<string, unknown>;
  return { ...r, props: policyProxy.unknownCheckingProxy({ ...target, ...props }) };
}
