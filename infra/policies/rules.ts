/**
 * The policy rules as plain data and functions, independent of the policy runtime, so
 * the same code runs inside `pulumi up --policy-pack infra/policies` (index.ts wraps
 * them) and in unit tests against each stack's mocked resources.
 *
 * Props are a resource's inputs (preview) or outputs (update); rules read fields that
 * exist in both. Linking resources (a subnet to its route table, a bucket to its public
 * access block) goes through ids and bucket names, which both forms carry. During a
 * preview the engine hands props wrapped so that reading a value not known yet throws; the
 * engine then reports the rule as not run (advisory). Rules that guard a first `up`
 * (CIDRs, digests, protection, trust) read only values known before anything exists.
 */
import { nonRoutableReason } from '../ip-ranges';
import { isDigestReference } from '../images';
import { TIER_LABEL, TIER_TAG } from '../stack-config';
import { AUDIENCE_KEY, ENVIRONMENT_SUBJECT, GITHUB_OIDC_AUDIENCE, GITHUB_OIDC_HOST, SUBJECT_KEY } from '../github-oidc';

export interface CheckedProvider {
  readonly type: string;
  readonly props: Record<string, unknown>;
}

/** The resource options a policy sees (the engine passes `protect` with the effective, inherited value). */
export interface CheckedOptions {
  readonly protect?: boolean;
}

export interface CheckedResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly props: Record<string, unknown>;
  readonly provider?: CheckedProvider;
  readonly opts?: CheckedOptions;
}

export type Report = (message: string, urn?: string) => void;
export type EnforcementLevel = 'advisory' | 'mandatory';

interface RuleBase {
  readonly name: string;
  readonly description: string;
  readonly enforcementLevel: EnforcementLevel;
}
export interface ResourceRule extends RuleBase {
  readonly kind: 'resource';
  validate(resource: CheckedResource, report: Report): void;
}
export interface StackRule extends RuleBase {
  readonly kind: 'stack';
  validate(resources: readonly CheckedResource[], report: Report): void;
}
export type Rule = ResourceRule | StackRule;

export interface Violation {
  readonly rule: string;
  readonly urn: string;
  readonly message: string;
}

/** Runs one rule the way the policy engine would and returns what it reported. */
export function evaluate(rule: Rule, resources: readonly CheckedResource[]): Violation[] {
  const out: Violation[] = [];
  if (rule.kind === 'resource') {
    for (const r of resources) rule.validate(r, (message) => out.push({ rule: rule.name, urn: r.urn, message }));
  } else {
    rule.validate(resources, (message, urn) => out.push({ rule: rule.name, urn: urn ?? '', message }));
  }
  return out;
}

export const REQUIRED_TAGS = ['project', 'stack', 'owner', 'cost-center'] as const;

const BUCKET_TYPES = new Set(['aws:s3/bucket:Bucket', 'aws:s3/bucketV2:BucketV2']);
const PUBLIC_ACLS = new Set(['public-read', 'public-read-write', 'authenticated-read']);

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
/** Policies arrive as JSON text (or already parsed); unparseable text yields no statements. */
function statements(policy: unknown): Record<string, unknown>[] {
  let doc: unknown = policy;
  if (typeof policy === 'string') {
    try {
      doc = JSON.parse(policy);
    } catch {
      return [];
    }
  }
  return asArray(asRecord(doc).Statement).map(asRecord);
}
function bucketKey(r: CheckedResource): string | undefined {
  return str(r.props.bucket) ?? str(r.props.id);
}
function ofType(resources: readonly CheckedResource[], ...types: string[]): CheckedResource[] {
  return resources.filter((r) => types.includes(r.type));
}

export const noPublicBuckets: StackRule = {
  kind: 'stack',
  name: 's3-no-public-buckets',
  description: 'Every S3 bucket has a public access block with all four settings on, no public ACL and no policy granting access to everyone.',
  enforcementLevel: 'mandatory',
  validate(resources, report) {
    const blocked = new Set(
      ofType(resources, 'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock')
        .filter((b) => ['blockPublicAcls', 'blockPublicPolicy', 'ignorePublicAcls', 'restrictPublicBuckets'].every((k) => b.props[k] === true))
        .map((b) => str(b.props.bucket)),
    );
    for (const bucket of resources.filter((r) => BUCKET_TYPES.has(r.type))) {
      const key = bucketKey(bucket);
      if (!blocked.has(key)) report(`bucket ${bucket.name} has no BucketPublicAccessBlock with all four settings true`, bucket.urn);
      if (PUBLIC_ACLS.has(str(bucket.props.acl) ?? '')) report(`bucket ${bucket.name} has a public ACL (${String(bucket.props.acl)})`, bucket.urn);
    }
    for (const acl of ofType(resources, 'aws:s3/bucketAcl:BucketAcl', 'aws:s3/bucketAclV2:BucketAclV2')) {
      if (PUBLIC_ACLS.has(str(acl.props.acl) ?? '')) report(`${acl.name} sets a public ACL (${String(acl.props.acl)})`, acl.urn);
    }
    for (const p of ofType(resources, 'aws:s3/bucketPolicy:BucketPolicy')) {
      for (const s of statements(p.props.policy)) {
        const principal = s.Principal;
        const everyone = principal === '*' || asArray(asRecord(principal).AWS).includes('*');
        if (s.Effect === 'Allow' && everyone && s.Condition === undefined) {
          report(`${p.name} allows access to everyone (Principal "*") without a condition`, p.urn);
        }
      }
    }
  },
};

const SSE_ALGORITHMS = new Set(['AES256', 'aws:kms', 'aws:kms:dsse']);

export const bucketEncryption: StackRule = {
  kind: 'stack',
  name: 's3-encryption',
  description: 'Every S3 bucket has default server-side encryption configured explicitly.',
  enforcementLevel: 'mandatory',
  validate(resources, report) {
    const encrypted = new Set(
      ofType(resources, 'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', 'aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2')
        .filter((c) => asArray(c.props.rules).some((rule) => SSE_ALGORITHMS.has(str(asRecord(asRecord(rule).applyServerSideEncryptionByDefault).sseAlgorithm) ?? '')))
        .map((c) => str(c.props.bucket)),
    );
    for (const bucket of resources.filter((r) => BUCKET_TYPES.has(r.type))) {
      const inline = asArray(asRecord(bucket.props.serverSideEncryptionConfiguration).rules).length > 0;
      if (!inline && !encrypted.has(bucketKey(bucket))) report(`bucket ${bucket.name} has no server-side encryption configuration`, bucket.urn);
    }
  },
};

export const ecrImmutableScanned: ResourceRule = {
  kind: 'resource',
  name: 'ecr-immutable-scan-on-push',
  description: 'ECR repositories have immutable tags and scan images on push.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type !== 'aws:ecr/repository:Repository') return;
    if (r.props.imageTagMutability !== 'IMMUTABLE') report(`repository ${r.name}: imageTagMutability must be IMMUTABLE (is ${String(r.props.imageTagMutability ?? 'MUTABLE')})`);
    if (asRecord(r.props.imageScanningConfiguration).scanOnPush !== true) report(`repository ${r.name}: imageScanningConfiguration.scanOnPush must be true`);
  },
};

export const noNatGateways: ResourceRule = {
  kind: 'resource',
  name: 'no-nat-gateways',
  description: 'No NAT gateways and no routes through one: private subnets reach AWS through VPC endpoints only.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type === 'aws:ec2/natGateway:NatGateway') report(`NAT gateway ${r.name} is not allowed (use VPC endpoints)`);
    if (r.type === 'aws:ec2/route:Route' && r.props.natGatewayId !== undefined) report(`route ${r.name} goes through a NAT gateway`);
    if (r.type === 'aws:ec2/routeTable:RouteTable' && asArray(r.props.routes).some((x) => asRecord(x).natGatewayId !== undefined)) {
      report(`route table ${r.name} routes through a NAT gateway`);
    }
  },
};

export const nodesInPrivateSubnets: StackRule = {
  kind: 'stack',
  name: 'nodes-in-private-subnets',
  description: 'Worker nodes run only in subnets without a route to an internet gateway and without public IPs.',
  enforcementLevel: 'mandatory',
  validate(resources, report) {
    const igwIds = new Set(ofType(resources, 'aws:ec2/internetGateway:InternetGateway').map((g) => str(g.props.id)));
    const isIgw = (id: unknown): boolean => typeof id === 'string' && (igwIds.has(id) || id.startsWith('igw-'));
    const publicTables = new Set<string | undefined>();
    for (const route of ofType(resources, 'aws:ec2/route:Route')) if (isIgw(route.props.gatewayId)) publicTables.add(str(route.props.routeTableId));
    for (const table of ofType(resources, 'aws:ec2/routeTable:RouteTable')) {
      if (asArray(table.props.routes).some((x) => isIgw(asRecord(x).gatewayId))) publicTables.add(str(table.props.id));
    }
    const publicSubnets = new Set<string | undefined>();
    for (const a of ofType(resources, 'aws:ec2/routeTableAssociation:RouteTableAssociation')) {
      if (publicTables.has(str(a.props.routeTableId))) publicSubnets.add(str(a.props.subnetId));
    }
    for (const s of ofType(resources, 'aws:ec2/subnet:Subnet')) if (s.props.mapPublicIpOnLaunch === true) publicSubnets.add(str(s.props.id));

    const checkSubnets = (r: CheckedResource, field: string): void => {
      const ids = asArray(r.props[field]);
      if (ids.length === 0) {
        report(`${r.name} (${r.type}) does not set ${field}: it would default to the cluster's subnets, public ones included`, r.urn);
        return;
      }
      const bad = ids.filter((id) => publicSubnets.has(str(id)));
      if (bad.length > 0) report(`${r.name} places nodes in public subnet(s) ${bad.join(', ')}`, r.urn);
    };
    for (const r of ofType(resources, 'aws:eks/nodeGroup:NodeGroup', 'eks:index:ManagedNodeGroup')) checkSubnets(r, 'subnetIds');
    for (const r of ofType(resources, 'eks:index:NodeGroup', 'eks:index:NodeGroupV2')) checkSubnets(r, 'nodeSubnetIds');
    for (const c of ofType(resources, 'eks:index:Cluster')) {
      if (c.props.skipDefaultNodeGroup === true) continue;
      if (c.props.nodeAssociatePublicIpAddress !== false) report(`${c.name}: the default node group gets public IPs (set nodeAssociatePublicIpAddress: false or skipDefaultNodeGroup)`, c.urn);
      if (asArray(c.props.privateSubnetIds).length === 0) report(`${c.name}: the default node group has no private subnets`, c.urn);
    }
  },
};

const POLICY_FIELDS: Record<string, string> = {
  'aws:iam/policy:Policy': 'policy',
  'aws:iam/rolePolicy:RolePolicy': 'policy',
  'aws:iam/userPolicy:UserPolicy': 'policy',
  'aws:iam/groupPolicy:GroupPolicy': 'policy',
};
const ADMIN_POLICY = /:iam::aws:policy\/AdministratorAccess$/;

export const noIamStarOnStar: ResourceRule = {
  kind: 'resource',
  name: 'iam-no-star-actions-on-star-resources',
  description: 'No IAM policy allows every action ("*") on every resource ("*").',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    const docs: unknown[] = [];
    const field = POLICY_FIELDS[r.type];
    if (field) docs.push(r.props[field]);
    if (r.type === 'aws:iam/role:Role') for (const p of asArray(r.props.inlinePolicies)) docs.push(asRecord(p).policy);
    if (r.type.startsWith('aws:iam/') && r.type.endsWith('PolicyAttachment') && ADMIN_POLICY.test(str(r.props.policyArn) ?? '')) {
      report(`${r.name} attaches AdministratorAccess ("*" on "*")`);
    }
    for (const doc of docs) {
      for (const s of statements(doc)) {
        const actions = asArray(s.Action);
        const resourcesOf = asArray(s.Resource);
        if (s.Effect === 'Allow' && actions.some((a) => a === '*' || a === '*:*') && resourcesOf.includes('*')) {
          report(`${r.name} allows "*" actions on "*" resources${s.Sid ? ` (statement ${String(s.Sid)})` : ''}`);
        }
      }
    }
  },
};

export const logGroupRetention: ResourceRule = {
  kind: 'resource',
  name: 'log-groups-have-retention',
  description: 'CloudWatch log groups set a retention period (the default keeps logs, and their cost, forever).',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type !== 'aws:cloudwatch/logGroup:LogGroup') return;
    const days = r.props.retentionInDays;
    if (typeof days !== 'number' || days <= 0) report(`log group ${r.name} has no retentionInDays`);
  },
};

/**
 * AWS types this program creates that accept tags but may not pass `tags` explicitly
 * (they get them from the provider's defaultTags). Resources that do pass tags or carry
 * tagsAll are recognised as taggable without being listed.
 */
export const TAGGABLE_TYPES: ReadonlySet<string> = new Set([
  'aws:ec2/vpc:Vpc', 'aws:ec2/subnet:Subnet', 'aws:ec2/internetGateway:InternetGateway', 'aws:ec2/routeTable:RouteTable',
  'aws:ec2/securityGroup:SecurityGroup', 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule', 'aws:ec2/vpcEndpoint:VpcEndpoint',
  'aws:ec2/natGateway:NatGateway', 'aws:ec2/eip:Eip',
  'aws:s3/bucket:Bucket', 'aws:s3/bucketV2:BucketV2', 'aws:ecr/repository:Repository', 'aws:sagemaker/modelPackageGroup:ModelPackageGroup',
  'aws:iam/role:Role', 'aws:iam/policy:Policy', 'aws:iam/openIdConnectProvider:OpenIdConnectProvider',
  'aws:eks/cluster:Cluster', 'aws:eks/nodeGroup:NodeGroup', 'aws:eks/addon:Addon',
  'aws:cloudwatch/logGroup:LogGroup', 'aws:cloudwatch/metricAlarm:MetricAlarm', 'aws:sns/topic:Topic',
  'aws:budgets/budget:Budget', 'aws:scheduler/scheduleGroup:ScheduleGroup',
  'aws:kms/key:Key', 'aws:codebuild/project:Project', 'aws:eks/accessEntry:AccessEntry', 'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule',
]);

function providerDefaultTags(provider: CheckedProvider | undefined): Record<string, unknown> {
  if (!provider) return {};
  let dt: unknown = provider.props.defaultTags;
  // The engine stores non-string provider settings as JSON text.
  if (typeof dt === 'string') {
    try {
      dt = JSON.parse(dt);
    } catch {
      return {};
    }
  }
  return asRecord(asRecord(dt).tags);
}

export const requiredTags: ResourceRule = {
  kind: 'resource',
  name: 'required-tags',
  description: `Every taggable AWS resource carries the tags ${REQUIRED_TAGS.join(', ')} (directly or through the provider's defaultTags).`,
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (!r.type.startsWith('aws:')) return;
    const taggable = TAGGABLE_TYPES.has(r.type) || 'tags' in r.props || 'tagsAll' in r.props;
    if (!taggable) return;
    const tags = { ...providerDefaultTags(r.provider), ...asRecord(r.props.tagsAll), ...asRecord(r.props.tags) };
    const missing = REQUIRED_TAGS.filter((k) => typeof tags[k] !== 'string' || tags[k] === '');
    if (missing.length > 0) report(`${r.name} (${r.type}) is missing tag(s) ${missing.join(', ')}`);
  },
};

/**
 * The tier a resource belongs to: the `tier` tag (resource tags, else the provider's
 * default tags) for AWS resources, the `pricesense/tier` label for Kubernetes objects.
 * Undefined when absent: rules then apply their strictest form.
 */
export function tierOf(r: CheckedResource): string | undefined {
  if (r.type.startsWith('kubernetes:')) return str(asRecord(asRecord(r.props.metadata).labels)[TIER_LABEL]);
  const tags = { ...providerDefaultTags(r.provider), ...asRecord(r.props.tagsAll), ...asRecord(r.props.tags) };
  return str(tags[TIER_TAG]);
}
const relaxed = (r: CheckedResource): boolean => tierOf(r) === 'dev';

/** Where a public access list lives, per resource type. */
function publicAccessLists(r: CheckedResource): [string, unknown][] {
  switch (r.type) {
    case 'eks:index:Cluster':
      return [['publicAccessCidrs', r.props.publicAccessCidrs]];
    case 'aws:eks/cluster:Cluster':
      return [['vpcConfig.publicAccessCidrs', asRecord(r.props.vpcConfig).publicAccessCidrs]];
    case 'kubernetes:core/v1:Service':
      return [['spec.loadBalancerSourceRanges', asRecord(r.props.spec).loadBalancerSourceRanges]];
    default:
      return [];
  }
}

export const publicCidrsRoutable: ResourceRule = {
  kind: 'resource',
  name: 'public-access-cidrs-routable',
  description: 'Public access lists (EKS public endpoint, load balancer source ranges) name internet addresses: no documentation (RFC 5737), private-use (RFC 1918) or other special-purpose block, which would admit nobody.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    for (const [field, list] of publicAccessLists(r)) {
      for (const c of asArray(list)) {
        const reason = typeof c === 'string' ? nonRoutableReason(c) : `${String(c)} is not a CIDR`;
        if (reason !== undefined) report(`${r.name}: ${field} ${reason}`);
      }
    }
  },
};

const WORKLOAD_TYPES = new Set(['kubernetes:apps/v1:Deployment', 'kubernetes:apps/v1:StatefulSet', 'kubernetes:apps/v1:DaemonSet', 'kubernetes:batch/v1:Job']);

/** Every image a resource runs, with where it is set. */
function imagesOf(r: CheckedResource): [string, string][] {
  if (WORKLOAD_TYPES.has(r.type)) {
    const pod = asRecord(asRecord(asRecord(r.props.spec).template).spec);
    return ['initContainers', 'containers'].flatMap((field) =>
      asArray(pod[field]).map((c): [string, string] => [`${field} ${String(asRecord(c).name)}`, String(asRecord(c).image)]));
  }
  if (r.type === 'aws:codebuild/project:Project') return [['environment.image', String(asRecord(r.props.environment).image)]];
  if (r.type === 'aws:sagemaker/pipeline:Pipeline') {
    let definition: unknown = r.props.pipelineDefinition;
    if (typeof definition === 'string') {
      try {
        definition = JSON.parse(definition);
      } catch {
        return [];
      }
    }
    return asArray(asRecord(definition).Parameters)
      .map(asRecord)
      .filter((p) => /Image$/.test(String(p.Name)) && typeof p.DefaultValue === 'string')
      .map((p): [string, string] => [`parameter ${String(p.Name)}`, String(p.DefaultValue)]);
  }
  return [];
}

export const imagesByDigest: ResourceRule = {
  kind: 'resource',
  name: 'images-by-digest-outside-dev',
  description: 'Outside dev, every image a workload, deployer build or pipeline runs is referenced by digest (repo@sha256:...): stage and prod run exactly the bytes dev scanned and smoke-tested.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    const images = imagesOf(r);
    if (images.length === 0 || relaxed(r)) return;
    const tier = tierOf(r) ?? 'unknown tier (treated as prod)';
    for (const [where, image] of images) {
      if (!isDigestReference(image)) report(`${r.name} (${tier}): ${where} runs ${image}, not an image digest reference <repo>@sha256:<64 hex>`);
    }
  },
};

/** Resource types whose deletion loses data nobody can recreate from code. */
export const DATA_TYPES: ReadonlySet<string> = new Set([
  ...BUCKET_TYPES, 'aws:ecr/repository:Repository', 'aws:sagemaker/modelPackageGroup:ModelPackageGroup', 'aws:kms/key:Key',
]);

export const dataProtected: ResourceRule = {
  kind: 'resource',
  name: 'data-resources-protected',
  description: 'Outside dev, data resources (buckets, image repositories, model package groups, KMS keys) are protected, so `pulumi destroy` stops before them; retained prod buckets are never force-destroyed and repositories never force-deleted.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (!DATA_TYPES.has(r.type) || relaxed(r)) return;
    const tier = tierOf(r) ?? 'unknown tier (treated as prod)';
    if (r.opts?.protect !== true) report(`${r.name} (${r.type}, ${tier}) is not protected: \`pulumi destroy\` would delete its data`);
    if (r.type === 'aws:ecr/repository:Repository' && r.props.forceDelete === true) report(`${r.name} (${tier}) has forceDelete: destroying it would delete every image in it`);
    if (BUCKET_TYPES.has(r.type) && r.props.forceDestroy === true && tierOf(r) !== 'stage') {
      report(`${r.name} (${tier}) has forceDestroy: only dev and stage buckets may be emptied on delete`);
    }
  },
};

function githubTrusting(statement: Record<string, unknown>): boolean {
  const federated = asArray(asRecord(statement.Principal).Federated).map(String);
  return federated.some((p) => p.endsWith(`oidc-provider/${GITHUB_OIDC_HOST}`));
}

export const githubTrustScoped: ResourceRule = {
  kind: 'resource',
  name: 'github-oidc-trust-scoped-to-environment',
  description: `Roles trusting GitHub Actions (${GITHUB_OIDC_HOST}) accept only tokens for sts.amazonaws.com of one repository's one environment (StringEquals sub = repo:<owner>/<repo>:environment:<env>), so the environment's approval gates the role.`,
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type !== 'aws:iam/role:Role') return;
    for (const s of statements(r.props.assumeRolePolicy)) {
      if (s.Effect !== 'Allow' || !githubTrusting(s)) continue;
      const condition = asRecord(s.Condition);
      const equals = asRecord(condition.StringEquals);
      const others = Object.keys(condition).filter((op) => op !== 'StringEquals');
      const sub = asArray(equals[SUBJECT_KEY]);
      const aud = asArray(equals[AUDIENCE_KEY]);
      if (sub.length !== 1 || typeof sub[0] !== 'string' || !ENVIRONMENT_SUBJECT.test(sub[0])) {
        report(`${r.name}: trust must pin ${SUBJECT_KEY} with StringEquals to exactly one repo:<owner>/<repo>:environment:<env> (has ${JSON.stringify(equals[SUBJECT_KEY] ?? null)})`);
      }
      if (aud.length !== 1 || aud[0] !== GITHUB_OIDC_AUDIENCE) {
        report(`${r.name}: trust must require ${AUDIENCE_KEY} = ${GITHUB_OIDC_AUDIENCE} with StringEquals (has ${JSON.stringify(equals[AUDIENCE_KEY] ?? null)})`);
      }
      const loose = others.filter((op) => Object.keys(asRecord(condition[op])).some((k) => k.startsWith(`${GITHUB_OIDC_HOST}:`)));
      if (loose.length > 0) report(`${r.name}: trust widens the GitHub token conditions with ${loose.join(', ')} (wildcards admit other branches, workflows or environments)`);
      if (asArray(s.Action).some((a) => a !== 'sts:AssumeRoleWithWebIdentity')) report(`${r.name}: a GitHub trust statement allows only sts:AssumeRoleWithWebIdentity`);
    }
  },
};

export const RULES: readonly Rule[] = [
  noPublicBuckets,
  bucketEncryption,
  ecrImmutableScanned,
  noNatGateways,
  nodesInPrivateSubnets,
  noIamStarOnStar,
  logGroupRetention,
  requiredTags,
  publicCidrsRoutable,
  imagesByDigest,
  dataProtected,
  githubTrustScoped,
];
