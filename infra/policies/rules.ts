/**
 * The policy rules as plain data and functions, independent of the policy runtime, so
 * the same code runs inside `pulumi up --policy-pack infra/policies` (index.ts wraps
 * them) and in unit tests against each stack's mocked resources.
 *
 * Props are a resource's inputs (preview) or outputs (update); rules read fields that
 * exist in both. Linking resources (a subnet to its route table, a bucket to its public
 * access block) goes through ids and bucket names, which both forms carry.
 */

export interface CheckedProvider {
  readonly type: string;
  readonly props: Record<string, unknown>;
}

export interface CheckedResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly props: Record<string, unknown>;
  readonly provider?: CheckedProvider;
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

export const RULES: readonly Rule[] = [
  noPublicBuckets,
  bucketEncryption,
  ecrImmutableScanned,
  noNatGateways,
  nodesInPrivateSubnets,
  noIamStarOnStar,
  logGroupRetention,
  requiredTags,
];
