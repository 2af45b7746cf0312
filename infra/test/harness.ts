/**
 * Runs the real Pulumi program (infra/index.ts) against the mock engine for one stack,
 * with that stack's own Pulumi.<stack>.yaml, and records every resource registered.
 * Each test file runs in its own Jest module registry, so each gets a fresh runtime.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { load as loadYaml } from 'js-yaml';
import type { CheckedResource } from '../policies/rules';

export const ROOT = path.resolve(__dirname, '..', '..');
export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

export interface Recorded {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly state: Record<string, unknown>;
  readonly id: string;
  /** `urn::id` of the explicit provider, when the engine was given one. */
  readonly provider: string | undefined;
}

export interface ProgramRun {
  readonly stack: string;
  readonly resources: Recorded[];
  readonly outputs: Record<string, unknown>;
  ofType(type: string): Recorded[];
  one(type: string, name?: string | RegExp): Recorded;
  /** The resources in the shape the policy rules read (props = inputs + outputs + id). */
  checked(): CheckedResource[];
}

/** Stack config as the engine hands it to the program: every value a string, objects as JSON. */
export function stackConfig(stack: string): Record<string, string> {
  const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
  const doc = loadYaml(fs.readFileSync(file, 'utf8')) as { config?: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.config ?? {})) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

const ID_PREFIX: Record<string, string> = {
  'aws:ec2/vpc:Vpc': 'vpc-',
  'aws:ec2/subnet:Subnet': 'subnet-',
  'aws:ec2/internetGateway:InternetGateway': 'igw-',
  'aws:ec2/routeTable:RouteTable': 'rtb-',
  'aws:ec2/securityGroup:SecurityGroup': 'sg-',
  'aws:ec2/vpcEndpoint:VpcEndpoint': 'vpce-',
};

function hex(s: string): string {
  let h = 2166136261;
  for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** Outputs the program reads that a real provider would compute. */
function computed(type: string, name: string, inputs: Record<string, unknown>, id: string): Record<string, unknown> {
  const arn = (svc: string, res: string): string => `arn:aws:${svc}:${REGION}:${ACCOUNT}:${res}`;
  switch (type) {
    case 'aws:s3/bucket:Bucket':
      return { bucket: id, arn: `arn:aws:s3:::${id}` };
    case 'aws:ecr/repository:Repository':
      return { arn: arn('ecr', `repository/${String(inputs.name)}`), repositoryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${String(inputs.name)}` };
    case 'aws:iam/role:Role':
      return { arn: `arn:aws:iam::${ACCOUNT}:role/${id}`, name: id };
    case 'aws:sagemaker/modelPackageGroup:ModelPackageGroup':
      return { arn: arn('sagemaker', `model-package-group/${String(inputs.modelPackageGroupName)}`) };
    case 'aws:sns/topic:Topic':
      return { arn: arn('sns', id) };
    case 'aws:cloudwatch/logGroup:LogGroup':
      return { arn: arn('logs', `log-group:${String(inputs.name)}`) };
    case 'aws:scheduler/scheduleGroup:ScheduleGroup':
      return { arn: arn('scheduler', `schedule-group/${String(inputs.name)}`) };
    case 'eks:index:Cluster': {
      const issuer = `oidc.eks.${REGION}.amazonaws.com/id/${hex(name).toUpperCase()}`;
      return {
        kubeconfigJson: JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: String(inputs.name) }] }),
        oidcProviderArn: `arn:aws:iam::${ACCOUNT}:oidc-provider/${issuer}`,
        oidcProviderUrl: `https://${issuer}`,
        oidcIssuer: issuer,
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

export async function runProgram(stack: string, overrides: Record<string, string> = {}): Promise<ProgramRun> {
  const resources: Recorded[] = [];
  pulumi.runtime.setAllConfig({ ...stackConfig(stack), ...overrides });
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const prefix = ID_PREFIX[args.type];
        const id =
          args.type === 'aws:s3/bucket:Bucket'
            ? `${String(args.inputs.bucketPrefix ?? '')}${hex(args.name)}`
            : args.type === 'aws:iam/role:Role'
              ? `${args.name}-${hex(args.name)}`
              : prefix
                ? `${prefix}${hex(args.name)}`
                : `${args.name}-id`;
        const state = { ...args.inputs, ...computed(args.type, args.name, args.inputs, id) };
        resources.push({ type: args.type, name: args.name, inputs: args.inputs, state, id, provider: args.provider || undefined });
        return { id, state };
      },
      call(args) {
        switch (args.token) {
          case 'aws:index/getAvailabilityZones:getAvailabilityZones':
            return { names: ['a', 'b', 'c', 'd'].map((z) => `${REGION}${z}`), zoneIds: ['use1-az1', 'use1-az2', 'use1-az4', 'use1-az6'] };
          case 'aws:index/getCallerIdentity:getCallerIdentity':
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: 'AIDTEST' };
          case 'aws:index/getPartition:getPartition':
            return { partition: 'aws', dnsSuffix: 'amazonaws.com' };
          default:
            throw new Error(`unmocked invoke ${args.token}`);
        }
      },
    },
    'pricesense',
    stack,
    false,
  );

  const outputs = (await pulumi.runtime.runInPulumiStack(async () => {
    const program: Record<string, unknown> = await import('../index');
    return Object.fromEntries(Object.entries(program).filter(([, v]) => pulumi.Output.isInstance(v) || typeof v !== 'function'));
  })) as Record<string, unknown>;
  await pulumi.runtime.disconnect();

  const byId = new Map(resources.map((r) => [r.id, r]));
  const providerOf = (r: Recorded): Recorded | undefined => (r.provider ? byId.get(r.provider.split('::').pop() ?? '') : undefined);
  return {
    stack,
    resources,
    outputs,
    ofType: (type) => resources.filter((r) => r.type === type),
    one(type, name) {
      const found = resources.filter((r) => r.type === type && (name === undefined || (typeof name === 'string' ? r.name === name : name.test(r.name))));
      if (found.length !== 1) throw new Error(`expected one ${type}${name ? ` named ${String(name)}` : ''}, found ${found.length}`);
      return found[0];
    },
    checked: () =>
      resources.map((r) => {
        const p = providerOf(r);
        return {
          type: r.type,
          name: r.name,
          urn: `${r.type}::${r.name}`,
          props: { ...r.state, id: r.id },
          provider: p ? { type: p.type, props: p.inputs } : undefined,
        };
      }),
  };
}

/** Parses a JSON policy document input (IAM, bucket, topic policies). */
export function policyDoc(value: unknown): { Statement: Record<string, unknown>[] } {
  return JSON.parse(String(value)) as { Statement: Record<string, unknown>[] };
}
