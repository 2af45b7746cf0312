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
import { isPrivateUse, nonRoutableReason } from '../ip-ranges';
import { isDigestReference } from '../images';
import { TIER_TAG, tierOfStack } from '../stack-config';
import { AUDIENCE_KEY, ENVIRONMENT_SUBJECT, GITHUB_OIDC_AUDIENCE, GITHUB_OIDC_HOST, SUBJECT_KEY } from '../github-oidc';
import { REQUIRED_CLUSTER_LOG_TYPES } from '../config';
import { BOUNDED_IAM_ACTIONS, DELIVERY_PATH, STATE_BUCKET_TAG, boundaryPolicyArn, defaultStateBucket, environmentProbes } from '../environment-boundary';
import { explicitlyDenied } from './iam-eval';
import { AUTOSCALER_MUTATING_ACTIONS, AUTOSCALER_SERVICE_ACCOUNT } from '../app-contract';

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
/** Documents (policies, pipeline definitions) arrive as JSON text or already parsed; unparseable text reads as empty. */
function document(v: unknown): Record<string, unknown> {
  if (typeof v !== 'string') return asRecord(v);
  try {
    return asRecord(JSON.parse(v));
  } catch {
    return {};
  }
}
function statements(policy: unknown): Record<string, unknown>[] {
  return asArray(document(policy).Statement).map(asRecord);
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
    if (r.type.startsWith('aws:iam/') && r.type.endsWith('PolicyAttachment') && ADMIN_POLICY.test(str(r.props.policyArn) ?? '')) {
      report(`${r.name} attaches AdministratorAccess ("*" on "*")`);
    }
    for (const s of iamStatements(r)) {
      if (s.Effect === 'Allow' && asArray(s.Action).some((a) => a === '*' || a === '*:*') && asArray(s.Resource).includes('*')) {
        report(`${r.name} allows "*" actions on "*" resources${s.Sid ? ` (statement ${String(s.Sid)})` : ''}`);
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
  'aws:eks/cluster:Cluster', 'aws:eks/nodeGroup:NodeGroup', 'aws:eks/addon:Addon', 'aws:eks/podIdentityAssociation:PodIdentityAssociation',
  'aws:cloudwatch/logGroup:LogGroup', 'aws:cloudwatch/metricAlarm:MetricAlarm', 'aws:sns/topic:Topic',
  'aws:budgets/budget:Budget', 'aws:scheduler/scheduleGroup:ScheduleGroup',
  'aws:kms/key:Key', 'aws:codebuild/project:Project', 'aws:eks/accessEntry:AccessEntry', 'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule',
  'aws:ec2/launchTemplate:LaunchTemplate', 'aws:ec2/flowLog:FlowLog', 'aws:sagemaker/pipeline:Pipeline', 'aws:cloudwatch/eventRule:EventRule',
  'aws:scheduler/schedule:Schedule', 'aws:lambda/function:Function',
]);

/**
 * AWS resource kinds the programs declare that carry no tag, each with why that costs the
 * budget nothing: free configuration, or billed through a tagged resource. A stack test
 * fails on any kind that is neither here nor in TAGGABLE_TYPES.
 */
export const UNTAGGED_KINDS: Readonly<Record<string, string>> = {
  'aws:ec2/route:Route': 'free (routing configuration)',
  'aws:ec2/routeTableAssociation:RouteTableAssociation': 'free',
  'aws:eks/accessPolicyAssociation:AccessPolicyAssociation': 'free',
  'aws:iam/rolePolicy:RolePolicy': 'free (IAM)',
  'aws:iam/rolePolicyAttachment:RolePolicyAttachment': 'free (IAM)',
  'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration': 'bucket configuration: storage is billed to the tagged bucket',
  'aws:s3/bucketOwnershipControls:BucketOwnershipControls': 'bucket configuration',
  'aws:s3/bucketPolicy:BucketPolicy': 'bucket configuration',
  'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock': 'bucket configuration',
  'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration': 'bucket configuration',
  'aws:s3/bucketVersioning:BucketVersioning': 'bucket configuration: old versions are billed to the tagged bucket',
  'aws:sns/topicPolicy:TopicPolicy': 'free',
  'aws:sns/topicSubscription:TopicSubscription': 'billed per delivery to the tagged topic',
  'aws:cloudwatch/eventTarget:EventTarget': 'free (the rule is tagged)',
  'aws:lambda/permission:Permission': 'free (the function\'s resource policy)',
  'aws:cloudwatch/logMetricFilter:LogMetricFilter': 'free; its custom metrics are billed by CloudWatch under no resource (cost table: CloudWatch line)',
  'aws:cloudwatch/dashboard:Dashboard': 'CloudWatch dashboards take no tags: $3/month, in the cost table\'s CloudWatch line',
};

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

/** The stack in a resource's URN (urn:pulumi:<stack>::<project>::<type>::<name>). */
export function stackOfUrn(urn: string): string | undefined {
  return /^urn:pulumi:([^:]+)::/.exec(urn)?.[1];
}

/**
 * The tier a resource belongs to, decided by its stack, never by the resource (review M6 of
 * issue 11: a prod bucket tagged tier=dev, or a Deployment labelled pricesense/tier=dev, must
 * not exempt itself from the prod rules): the stack's name when it is a tier (dev, stage,
 * prod), else the `tier` default tag of the stack's AWS provider (set from the stack's
 * config, e.g. a personal stack dev-alice). Undefined otherwise (a Kubernetes object in a
 * personal stack, the delivery stack): rules then apply their strictest form.
 */
export function tierOf(r: CheckedResource): string | undefined {
  const stack = stackOfUrn(r.urn);
  if (stack !== undefined && tierOfStack(stack) !== undefined) return stack;
  return r.type.startsWith('kubernetes:') ? undefined : str(providerDefaultTags(r.provider)[TIER_TAG]);
}
const relaxed = (r: CheckedResource): boolean => tierOf(r) === 'dev';

/** The in-tree AWS cloud provider's annotations on a LoadBalancer Service. */
export const LB_SOURCE_RANGES_ANNOTATION = 'service.beta.kubernetes.io/load-balancer-source-ranges';
const LB_INTERNAL_ANNOTATIONS: Record<string, string> = {
  'service.beta.kubernetes.io/aws-load-balancer-internal': 'true',
  'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internal',
};

/** Whether a Service asks for an internal load balancer (clients inside the VPC or a peered network). */
function isInternalLoadBalancer(r: CheckedResource): boolean {
  const annotations = asRecord(asRecord(r.props.metadata).annotations);
  return Object.entries(LB_INTERNAL_ANNOTATIONS).some(([k, v]) => String(annotations[k] ?? '').toLowerCase() === v);
}

/** Where a public access list lives, per resource type. */
function publicAccessLists(r: CheckedResource): [string, unknown][] {
  switch (r.type) {
    case 'eks:index:Cluster':
      return [['publicAccessCidrs', r.props.publicAccessCidrs]];
    case 'aws:eks/cluster:Cluster':
      return [['vpcConfig.publicAccessCidrs', asRecord(r.props.vpcConfig).publicAccessCidrs]];
    case 'kubernetes:core/v1:Service': {
      // The annotation is the older spelling of the same list; the cloud provider reads it when the field is empty.
      const annotation = asRecord(asRecord(r.props.metadata).annotations)[LB_SOURCE_RANGES_ANNOTATION];
      const fromAnnotation = typeof annotation === 'string' ? annotation.split(',').map((c) => c.trim()).filter((c) => c !== '') : annotation;
      return [['spec.loadBalancerSourceRanges', asRecord(r.props.spec).loadBalancerSourceRanges], [`annotation ${LB_SOURCE_RANGES_ANNOTATION}`, fromAnnotation]];
    }
    default:
      return [];
  }
}

export const publicCidrsRoutable: ResourceRule = {
  kind: 'resource',
  name: 'public-access-cidrs-routable',
  description: 'Public access lists (EKS public endpoint, load balancer source ranges in the field or the annotation) name internet addresses: no documentation (RFC 5737), private-use (RFC 1918) or other special-purpose block, which would admit nobody. An internal load balancer may name private-use blocks. (A public EKS endpoint without a list, open to 0.0.0.0/0, is eks-no-public-endpoint-outside-dev\'s.)',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    const internal = r.type === 'kubernetes:core/v1:Service' && isInternalLoadBalancer(r);
    for (const [field, list] of publicAccessLists(r)) {
      for (const c of asArray(list)) {
        if (internal && typeof c === 'string' && isPrivateUse(c)) continue;
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

/** Deploy roles of the delivery stack: `pricesense-<environment>-deploy` under DELIVERY_PATH. */
export const DEPLOY_ROLE = /^pricesense-([a-z][a-z0-9-]*)-deploy$/;

export const deployRolesIsolated: StackRule = {
  kind: 'stack',
  name: 'deploy-roles-isolated',
  description: 'A deploy role cannot act on another environment: its policies explicitly deny, for every other environment\'s deploy role in the stack, starting or changing that environment\'s deployer, joining its cluster, writing its Pulumi state, changing its roles, lake or model packages and touching resources tagged with its stack; and it can create or change roles only with its own permissions boundary.',
  enforcementLevel: 'mandatory',
  validate(resources, report) {
    const roles = ofType(resources, 'aws:iam/role:Role').filter((r) => r.props.path === DELIVERY_PATH && DEPLOY_ROLE.test(str(r.props.name) ?? ''));
    const environments = roles.map((r) => DEPLOY_ROLE.exec(String(r.props.name))?.[1] ?? '');
    const policies = ofType(resources, 'aws:iam/rolePolicy:RolePolicy');
    roles.forEach((role, i) => {
      const env = environments[i];
      const federated = statements(role.props.assumeRolePolicy).flatMap((s) => asArray(asRecord(s.Principal).Federated)).map(String)[0] ?? '';
      const arn = /^arn:([\w-]+):iam::(\d{12}):/.exec(federated);
      if (!arn) {
        report(`${role.name}: cannot tell its account from its trust policy (expected the GitHub OIDC provider's ARN)`, role.urn);
        return;
      }
      const [, partition, accountId] = arn;
      const stateBucket = str(asRecord(role.props.tags)[STATE_BUCKET_TAG]) ?? defaultStateBucket(accountId);
      const region = str(role.provider?.props.region) ?? 'us-east-1';
      const own = policies.filter((p) => p.props.role === role.props.name).flatMap((p) => statements(p.props.policy));
      for (const other of environments.filter((e) => e !== env)) {
        for (const [action, resource, tags] of environmentProbes(other, { partition, accountId, stateBucket }, region)) {
          const context = Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v]));
          if (!explicitlyDenied(own, { action, resource, context })) report(`${role.name} (${env}) is not denied ${action} on ${other}'s ${resource}`, role.urn);
        }
      }
      const foreign = `arn:${partition}:iam::${accountId}:policy/not-the-boundary`;
      for (const action of BOUNDED_IAM_ACTIONS) {
        const request = { action, resource: `arn:${partition}:iam::${accountId}:role/pricesense-${env}/any`, context: { 'iam:PermissionsBoundary': foreign } };
        if (!explicitlyDenied(own, request)) report(`${role.name} (${env}) may ${action} without the permissions boundary ${boundaryPolicyArn(partition, accountId, env)}`, role.urn);
      }
    });
  },
};

/** The permissions boundary the delivery stack creates per environment. */
const BOUNDARY_ARN = /^arn:[\w-]+:iam::\d{12}:policy\/pricesense-delivery\/pricesense-([a-z][a-z0-9-]*)-boundary$/;
const ENVIRONMENT_PATH = /^\/pricesense-([a-z][a-z0-9-]*)\/$/;

export const platformRolesBounded: ResourceRule = {
  kind: 'resource',
  name: 'platform-roles-bounded',
  description: 'Every IAM role outside the delivery stack lives under its environment\'s path /pricesense-<env>/ and carries that environment\'s permissions boundary pricesense-<env>-boundary (the deploy roles may create no other, and a role so bounded cannot act on another environment).',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type !== 'aws:iam/role:Role' || r.props.path === DELIVERY_PATH) return;
    const env = ENVIRONMENT_PATH.exec(str(r.props.path) ?? '/')?.[1];
    if (env === undefined) {
      report(`${r.name}: path ${String(r.props.path ?? '/')} is not an environment's (/pricesense-<env>/); spread AwsContext.roleScope into the role`);
      return;
    }
    const boundary = BOUNDARY_ARN.exec(str(r.props.permissionsBoundary) ?? '')?.[1];
    if (boundary !== env) report(`${r.name}: permissions boundary ${String(r.props.permissionsBoundary ?? '(none)')} is not ${env}'s (policy/pricesense-delivery/pricesense-${env}-boundary)`);
    const tier = tierOf(r);
    if (tier !== undefined && tier !== env) report(`${r.name}: a ${tier} resource under the ${env} path /pricesense-${env}/`);
  },
};

const AUTOSCALER_ACTIONS: readonly string[] = AUTOSCALER_MUTATING_ACTIONS;
const isAutoscalerAccount = (namespace: unknown, name: unknown): boolean => namespace === AUTOSCALER_SERVICE_ACCOUNT.namespace && name === AUTOSCALER_SERVICE_ACCOUNT.name;

export const clusterAutoscalerScoped: StackRule = {
  kind: 'stack',
  name: 'cluster-autoscaler-present-and-scoped',
  description: 'A stack with an EKS cluster gives Cluster Autoscaler (kube-system/cluster-autoscaler) a Pod Identity role, reaches the autoscaling API through a VPC endpoint, and lets no role change Auto Scaling capacity except on groups tagged k8s.io/cluster-autoscaler/<cluster> = owned; the stack that deploys into the cluster (the app project) runs it: a kube-system/cluster-autoscaler Deployment with that service account, AWS auto-discovery on those tags, AWS_REGION, and its ClusterRoleBinding.',
  enforcementLevel: 'mandatory',
  validate(resources, report) {
    const clusters = resources.filter((r) => r.type === 'eks:index:Cluster');
    // Every IAM document: role, user, group and managed policies, and a role's inline policies.
    for (const r of resources) {
      for (const st of iamStatements(r)) {
        // "*" on "*" is iam-no-star-actions-on-star-resources' finding.
        const actions = asArray(st.Action).map(String);
        if (st.Effect !== 'Allow' || !actions.some((a) => AUTOSCALER_ACTIONS.includes(a) || a === 'autoscaling:*')) continue;
        const tags = Object.keys(asRecord(asRecord(st.Condition).StringEquals)).filter((k) => /^aws:ResourceTag\/k8s\.io\/cluster-autoscaler\/(?!enabled$)/.test(k));
        if (tags.length === 0) report(`${r.name}: ${actions.join(', ')} without an aws:ResourceTag/k8s.io/cluster-autoscaler/<cluster> condition (any Auto Scaling group in the account)`, r.urn);
      }
    }
    // The app stack (Kubernetes objects, no cluster): the autoscaler must run in the cluster,
    // or the platform's role and endpoint scale nothing.
    if (clusters.length === 0 && resources.some((r) => r.type === 'pulumi:providers:kubernetes')) {
      const autoscaler = ofType(resources, 'kubernetes:apps/v1:Deployment')
        .find((d) => isAutoscalerAccount(asRecord(d.props.metadata).namespace, asRecord(d.props.metadata).name));
      if (autoscaler === undefined) {
        report('no Deployment kube-system/cluster-autoscaler: nothing adds a node when the HPA\'s pods are pending');
        return;
      }
      const pod = asRecord(asRecord(asRecord(autoscaler.props.spec).template).spec);
      const container = asRecord(asArray(pod.containers)[0]);
      const args = asArray(container.args).map(String);
      if (pod.serviceAccountName !== AUTOSCALER_SERVICE_ACCOUNT.name) report(`${autoscaler.name}: runs as ${String(pod.serviceAccountName)}, not the service account of the Pod Identity association (cluster-autoscaler)`, autoscaler.urn);
      if (!args.includes('--cloud-provider=aws') || !args.some((a) => /^--node-group-auto-discovery=asg:tag=k8s\.io\/cluster-autoscaler\/enabled,k8s\.io\/cluster-autoscaler\/[\w-]+$/.test(a))) {
        report(`${autoscaler.name}: needs --cloud-provider=aws and --node-group-auto-discovery on the tags k8s.io/cluster-autoscaler/enabled and k8s.io/cluster-autoscaler/<cluster> (the only groups its role may scale)`, autoscaler.urn);
      }
      if (!asArray(container.env).some((e) => asRecord(e).name === 'AWS_REGION')) report(`${autoscaler.name}: no AWS_REGION (IMDS hop limit 1: the pod cannot read its region from instance metadata)`, autoscaler.urn);
      const bound = ofType(resources, 'kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding')
        .some((b) => asArray(b.props.subjects).some((x) => isAutoscalerAccount(asRecord(x).namespace, asRecord(x).name)));
      if (!bound) report(`${autoscaler.name}: no ClusterRoleBinding for kube-system/cluster-autoscaler (it cannot watch pods or nodes)`, autoscaler.urn);
      return;
    }
    if (clusters.length === 0) return;
    const associations = ofType(resources, 'aws:eks/podIdentityAssociation:PodIdentityAssociation')
      .filter((a) => isAutoscalerAccount(a.props.namespace, a.props.serviceAccount));
    if (associations.length === 0) report('no Pod Identity association for kube-system/cluster-autoscaler: nothing adds a node when the HPA\'s pods are pending', clusters[0].urn);
    const endpoints = ofType(resources, 'aws:ec2/vpcEndpoint:VpcEndpoint').map((v) => str(v.props.serviceName) ?? '');
    if (!endpoints.some((n) => n.endsWith('.autoscaling'))) report('no autoscaling VPC endpoint: without a NAT gateway Cluster Autoscaler cannot reach the Auto Scaling API', clusters[0].urn);
  },
};

const EKS_COMPONENT = 'eks:index:Cluster';
const EKS_CLUSTER = 'aws:eks/cluster:Cluster';

/** A cluster setting as the @pulumi/eks component takes it, or as the aws.eks.Cluster it creates does. */
function clusterSetting(r: CheckedResource, component: string, raw: (p: Record<string, unknown>) => unknown): unknown {
  return r.type === EKS_COMPONENT ? r.props[component] : raw(r.props);
}
const isCluster = (r: CheckedResource): boolean => r.type === EKS_COMPONENT || r.type === EKS_CLUSTER;

export const eksPrivateEndpoint: ResourceRule = {
  kind: 'resource',
  name: 'eks-no-public-endpoint-outside-dev',
  description: 'Outside dev, the EKS API server has no public endpoint (Security Hub EKS.1, CIS EKS 5.4.2); deploys run inside the VPC. Dev may keep one restricted to operator CIDRs (never 0.0.0.0/0).',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (!isCluster(r)) return;
    const isPublic = clusterSetting(r, 'endpointPublicAccess', (p) => asRecord(p.vpcConfig).endpointPublicAccess);
    // The AWS API defaults a missing setting to a public endpoint open to everyone.
    if (isPublic === false) return;
    if (!relaxed(r)) {
      report(`${r.name} (${tierOf(r) ?? 'unknown tier (treated as prod)'}): public API endpoint; set endpointPublicAccess: false (the deployer reaches the private endpoint)`);
      return;
    }
    const cidrs = asArray(clusterSetting(r, 'publicAccessCidrs', (p) => asRecord(p.vpcConfig).publicAccessCidrs));
    if (cidrs.length === 0 || cidrs.includes('0.0.0.0/0')) report(`${r.name} (dev): a public API endpoint must be restricted to operator CIDRs, not open to 0.0.0.0/0`);
  },
};

export const eksSecretsEncryption: ResourceRule = {
  kind: 'resource',
  name: 'eks-secrets-encrypted',
  description: 'Kubernetes secrets are envelope-encrypted with a customer-managed KMS key (Security Hub EKS.3, CIS EKS 5.3.1), and every KMS key rotates (Security Hub KMS.4).',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type === 'aws:kms/key:Key' && r.props.enableKeyRotation !== true) report(`KMS key ${r.name} does not rotate (enableKeyRotation: true)`);
    // `in`, not a read: the key's ARN is not known before the key exists, its presence is.
    if (r.type === EKS_COMPONENT && !('encryptionConfigKeyArn' in r.props)) report(`${r.name}: no encryptionConfigKeyArn (secrets in etcd are not encrypted with a key of ours)`);
    if (r.type === EKS_CLUSTER && !asArray(asRecord(r.props.encryptionConfig).resources).includes('secrets')) report(`${r.name}: encryptionConfig does not cover secrets`);
  },
};

export const eksControlPlaneLogs: ResourceRule = {
  kind: 'resource',
  name: 'eks-control-plane-logs',
  description: `EKS control-plane logs ${REQUIRED_CLUSTER_LOG_TYPES.join(', ')} go to CloudWatch (Security Hub EKS.8, CIS EKS 2.1.1); their log group's retention is checked by log-groups-have-retention.`,
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (!isCluster(r)) return;
    const enabled = asArray(r.props.enabledClusterLogTypes);
    const missing = REQUIRED_CLUSTER_LOG_TYPES.filter((t) => !enabled.includes(t));
    if (missing.length > 0) report(`${r.name}: control-plane log type(s) ${missing.join(', ')} not enabled`);
  },
};

export const eksStandardSupport: ResourceRule = {
  kind: 'resource',
  name: 'eks-upgrade-policy-standard',
  description: 'EKS clusters set upgradePolicy.supportType STANDARD: the default EXTENDED silently moves the control plane from $0.10/h to $0.60/h once the version leaves standard support.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (!isCluster(r)) return;
    const support = asRecord(r.props.upgradePolicy).supportType;
    if (support !== 'STANDARD') report(`${r.name}: upgradePolicy.supportType is ${String(support ?? 'unset (EXTENDED)')}, not STANDARD ($0.60/h instead of $0.10/h after standard support ends)`);
  },
};

const SCOPING_KEYS = ['aws:PrincipalAccount', 'aws:ResourceAccount', 'aws:PrincipalOrgID', 'aws:ResourceOrgID', 'aws:PrincipalOrgPaths', 'aws:ResourceOrgPaths'];

/** Whether an Allow statement is limited to an account's or organization's principals or resources, or names its resources. */
function scopedStatement(s: Record<string, unknown>): boolean {
  const resources = asArray(s.Resource);
  if (resources.length > 0 && !resources.includes('*')) return true;
  return Object.values(asRecord(s.Condition)).some((block) => Object.keys(asRecord(block)).some((k) => SCOPING_KEYS.includes(k)));
}

export const endpointPolicyScoped: ResourceRule = {
  kind: 'resource',
  name: 'vpc-endpoint-policy-scoped',
  description: 'Every VPC endpoint has a policy, and each of its Allow statements is limited to this account\'s or organization\'s principals or resources (aws:PrincipalAccount, aws:ResourceAccount, ...) or names its resources: without NAT the endpoints are the way out of the VPC.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type !== 'aws:ec2/vpcEndpoint:VpcEndpoint') return;
    const policy = r.props.policy;
    if (typeof policy !== 'string' || policy === '') {
      report(`VPC endpoint ${r.name} has no policy (the default allows every action on every resource of every account)`);
      return;
    }
    for (const s of statements(policy)) {
      if (s.Effect === 'Allow' && !scopedStatement(s)) report(`VPC endpoint ${r.name}: statement ${String(s.Sid ?? '(no Sid)')} allows "*" resources without an account or organization condition`);
    }
  },
};

const LAUNCH_TEMPLATE = 'aws:ec2/launchTemplate:LaunchTemplate';
const NODE_GROUP_TYPES = ['aws:eks/nodeGroup:NodeGroup', 'eks:index:ManagedNodeGroup'];

export const nodeImdsHopLimit: ResourceRule = {
  kind: 'resource',
  name: 'nodes-imdsv2-hop-limit-1',
  description: 'Node groups launch from a launch template that requires IMDSv2 with a hop limit of 1 (EKS best practices, CIS EKS 4.x): pods cannot fetch the node role\'s credentials.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (NODE_GROUP_TYPES.includes(r.type) && r.props.launchTemplate === undefined) report(`${r.name}: no launch template (the node group's default allows IMDS to pods with a hop limit of 2)`);
    if (r.type !== LAUNCH_TEMPLATE) return;
    const md = asRecord(r.props.metadataOptions);
    if (md.httpTokens !== 'required') report(`launch template ${r.name}: metadataOptions.httpTokens must be "required" (IMDSv2), is ${String(md.httpTokens ?? 'unset')}`);
    if (md.httpPutResponseHopLimit !== 1) report(`launch template ${r.name}: metadataOptions.httpPutResponseHopLimit must be 1, is ${String(md.httpPutResponseHopLimit ?? 'unset')}`);
  },
};

/** Managed policies that must not be on a role EC2 instances (nodes) assume. */
export const NOT_ON_NODE_ROLE = ['AmazonEKS_CNI_Policy', 'AmazonEC2ContainerRegistryReadOnly', 'AmazonEC2ContainerRegistryPowerUser', 'AmazonEC2ContainerRegistryFullAccess', 'AdministratorAccess'];

export const nodeRolePolicies: StackRule = {
  kind: 'stack',
  name: 'node-role-managed-policies',
  description: `Node roles (trusted by ec2.amazonaws.com) carry none of ${NOT_ON_NODE_ROLE.join(', ')}: the CNI has its own IRSA role and image pulls need only AmazonEC2ContainerRegistryPullOnly.`,
  enforcementLevel: 'mandatory',
  validate(resources, report) {
    const nodeRoles = new Set(ofType(resources, 'aws:iam/role:Role')
      .filter((role) => statements(role.props.assumeRolePolicy).some((st) => asArray(asRecord(st.Principal).Service).includes('ec2.amazonaws.com')))
      .map((role) => str(role.props.name)));
    for (const a of ofType(resources, 'aws:iam/rolePolicyAttachment:RolePolicyAttachment')) {
      const policy = (str(a.props.policyArn) ?? '').split('/').pop() ?? '';
      if (nodeRoles.has(str(a.props.role)) && NOT_ON_NODE_ROLE.includes(policy)) report(`${a.name}: ${policy} is attached to node role ${String(a.props.role)}`, a.urn);
    }
  },
};

function isLoadBalancerService(r: CheckedResource): boolean {
  return r.type === 'kubernetes:core/v1:Service' && asRecord(r.props.spec).type === 'LoadBalancer';
}

export const loadBalancerSourceRanges: ResourceRule = {
  kind: 'resource',
  name: 'load-balancer-source-ranges',
  description: 'A LoadBalancer Service names the addresses allowed to it (spec.loadBalancerSourceRanges), never 0.0.0.0/0.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (!isLoadBalancerService(r)) return;
    const ranges = asArray(asRecord(r.props.spec).loadBalancerSourceRanges);
    if (ranges.length === 0) report(`${r.name}: a load balancer without loadBalancerSourceRanges is open to the internet`);
    if (ranges.includes('0.0.0.0/0')) report(`${r.name}: loadBalancerSourceRanges includes 0.0.0.0/0`);
  },
};

const LB_TAGS_ANNOTATION = 'service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags';

export const costTagsReachBilledResources: ResourceRule = {
  kind: 'resource',
  name: 'cost-tags-reach-billed-resources',
  description: `What AWS creates on our behalf carries the cost tags ${REQUIRED_TAGS.join(', ')} too: the instances, volumes and ENIs a launch template starts (tagSpecifications) and load balancers a Service creates (annotation ${LB_TAGS_ANNOTATION}); otherwise the budget's stack filter misses them.`,
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type === LAUNCH_TEMPLATE) {
      const specs = asArray(r.props.tagSpecifications).map(asRecord);
      for (const kind of ['instance', 'volume']) {
        const tags = asRecord(specs.find((t) => t.resourceType === kind)?.tags);
        const missing = REQUIRED_TAGS.filter((k) => typeof tags[k] !== 'string' || tags[k] === '');
        if (missing.length > 0) report(`launch template ${r.name}: ${kind}s it launches miss tag(s) ${missing.join(', ')} (tagSpecifications)`);
      }
    }
    if (isLoadBalancerService(r)) {
      const annotation = str(asRecord(asRecord(r.props.metadata).annotations)[LB_TAGS_ANNOTATION]) ?? '';
      const keys = annotation.split(',').map((kv) => kv.split('=')[0].trim());
      const missing = REQUIRED_TAGS.filter((k) => !keys.includes(k));
      if (missing.length > 0) report(`${r.name}: its load balancer misses tag(s) ${missing.join(', ')} (annotation ${LB_TAGS_ANNOTATION})`);
    }
  },
};

/**
 * Service principals that set no aws:SourceAccount/aws:SourceArn when they assume a role:
 * EC2 for instance profiles (only principals allowed iam:PassRole on the role can use it).
 */
export const TRUST_WITHOUT_SOURCE_CONTEXT = ['ec2.amazonaws.com'];

function conditionKeys(s: Record<string, unknown>, operators?: string[]): string[] {
  const condition = asRecord(s.Condition);
  return Object.entries(condition).filter(([op]) => !operators || operators.includes(op)).flatMap(([, block]) => Object.keys(asRecord(block)));
}

export const trustConditions: ResourceRule = {
  kind: 'resource',
  name: 'iam-trust-policy-conditions',
  description: 'Every role\'s trust policy is narrowed: AWS services by aws:SourceAccount or aws:SourceArn (confused deputy), OIDC providers by StringEquals on both sub and aud, other AWS principals by some condition.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type !== 'aws:iam/role:Role') return;
    for (const s of statements(r.props.assumeRolePolicy)) {
      if (s.Effect !== 'Allow') continue;
      const principal = asRecord(s.Principal);
      const keys = conditionKeys(s);
      const services = asArray(principal.Service).map(String).filter((svc) => !TRUST_WITHOUT_SOURCE_CONTEXT.includes(svc));
      if (services.length > 0 && !keys.some((k) => k === 'aws:SourceAccount' || k === 'aws:SourceArn')) {
        report(`${r.name}: trust in ${services.join(', ')} without an aws:SourceAccount or aws:SourceArn condition`);
      }
      if (asArray(principal.Federated).length > 0) {
        const exact = conditionKeys(s, ['StringEquals']);
        for (const part of ['sub', 'aud']) if (!exact.some((k) => k.endsWith(`:${part}`))) report(`${r.name}: OIDC trust without StringEquals on ${part}`);
      }
      if ((principal.AWS !== undefined || s.Principal === '*') && keys.length === 0) report(`${r.name}: trust in AWS principal(s) ${JSON.stringify(principal.AWS ?? s.Principal)} without any condition`);
    }
  },
};

/** The statements of an IAM resource's policy documents: its own (policies) or its inline policies (roles). */
function iamStatements(r: CheckedResource): Record<string, unknown>[] {
  const docs: unknown[] = [];
  const field = POLICY_FIELDS[r.type];
  if (field) docs.push(r.props[field]);
  if (r.type === 'aws:iam/role:Role') for (const p of asArray(r.props.inlinePolicies)) docs.push(asRecord(p).policy);
  return docs.flatMap(statements);
}

export const noServiceWildcards: ResourceRule = {
  kind: 'resource',
  name: 'iam-no-service-wildcards',
  description: 'No IAM policy allows a whole service (e.g. "sagemaker:*", "s3:*") on every resource ("*"): grant the actions used, on the resources used.',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    for (const s of iamStatements(r)) {
      if (s.Effect !== 'Allow' || !asArray(s.Resource).includes('*')) continue;
      const wide = asArray(s.Action).map(String).filter((a) => /^[\w-]+:\*$/.test(a));
      if (wide.length > 0) report(`${r.name} allows ${wide.join(', ')} on "*"${s.Sid ? ` (statement ${String(s.Sid)})` : ''}`);
    }
  },
};

function pipelineSteps(r: CheckedResource): Record<string, unknown>[] {
  const flatten = (steps: unknown[]): Record<string, unknown>[] => steps.map(asRecord).flatMap((st) => [st, ...flatten([...asArray(asRecord(st.Arguments).IfSteps), ...asArray(asRecord(st.Arguments).ElseSteps)])]);
  return flatten(asArray(document(r.props.pipelineDefinition).Steps));
}

export const sagemakerNetworkIsolation: ResourceRule = {
  kind: 'resource',
  name: 'sagemaker-jobs-network-isolated',
  description: 'SageMaker processing and training jobs (pipeline steps) run with network isolation or inside the VPC (VpcConfig / NetworkConfig.VpcConfig), never on SageMaker\'s open network (Security Hub SageMaker.2-style).',
  enforcementLevel: 'mandatory',
  validate(r, report) {
    if (r.type !== 'aws:sagemaker/pipeline:Pipeline') return;
    for (const step of pipelineSteps(r)) {
      const args = asRecord(step.Arguments);
      if (step.Type === 'Processing') {
        const net = asRecord(args.NetworkConfig);
        if (net.EnableNetworkIsolation !== true && net.VpcConfig === undefined) report(`${r.name}: processing step ${String(step.Name)} has neither NetworkConfig.EnableNetworkIsolation nor NetworkConfig.VpcConfig`);
      }
      if (step.Type === 'Training' && args.EnableNetworkIsolation !== true && args.VpcConfig === undefined) {
        report(`${r.name}: training step ${String(step.Name)} has neither EnableNetworkIsolation nor VpcConfig`);
      }
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
  deployRolesIsolated,
  platformRolesBounded,
  clusterAutoscalerScoped,
  eksPrivateEndpoint,
  eksSecretsEncryption,
  eksControlPlaneLogs,
  eksStandardSupport,
  endpointPolicyScoped,
  nodeImdsHopLimit,
  nodeRolePolicies,
  loadBalancerSourceRanges,
  costTagsReachBilledResources,
  trustConditions,
  noServiceWildcards,
  sagemakerNetworkIsolation,
];
