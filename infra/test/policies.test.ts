// Each rule catches a violating resource (every stack passing them is asserted in stack-*.test.ts).
import { RULES, evaluate, type CheckedResource, type Rule } from '../policies/rules';
import { toPolicy } from '../policies/adapter';

const TAGS = { project: 'pricesense', stack: 'dev', owner: 'me', 'cost-center': 'cc' };
const PROVIDER = { type: 'pulumi:providers:aws', props: { defaultTags: JSON.stringify({ tags: TAGS }) } };

function res(type: string, name: string, props: Record<string, unknown>): CheckedResource {
  return { type, name, urn: `urn:${type}::${name}`, props, provider: PROVIDER };
}
function rule(name: string): Rule {
  const found = RULES.find((r) => r.name === name);
  if (!found) throw new Error(`no rule ${name}`);
  return found;
}
/** The hardening rules (issue 16), each with a catching case in hardening-policies.test.ts. */
const HARDENING_RULES = [
  'eks-no-public-endpoint-outside-dev', 'eks-secrets-encrypted', 'eks-control-plane-logs', 'eks-upgrade-policy-standard',
  'vpc-endpoint-policy-scoped', 'nodes-imdsv2-hop-limit-1', 'node-role-managed-policies', 'load-balancer-source-ranges',
  'cost-tags-reach-billed-resources', 'iam-trust-policy-conditions', 'iam-no-service-wildcards', 'sagemaker-jobs-network-isolated',
];
const messages = (name: string, resources: CheckedResource[]): string[] => evaluate(rule(name), resources).map((v) => v.message);

const bucket = res('aws:s3/bucket:Bucket', 'lake', { bucket: 'lake-1', id: 'lake-1' });
const fullBlock = res('aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock', 'pab', {
  bucket: 'lake-1', blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true,
});

describe('policy rules catch violations', () => {
  test('the pack has the original eight rules, the four deploy/teardown rules, the environment-boundary and autoscaler rules and the hardening rules', () => {
    expect(RULES.map((r) => r.name)).toEqual([
      's3-no-public-buckets', 's3-encryption', 'ecr-immutable-scan-on-push', 'no-nat-gateways',
      'nodes-in-private-subnets', 'iam-no-star-actions-on-star-resources', 'log-groups-have-retention', 'required-tags',
      'public-access-cidrs-routable', 'images-by-digest-outside-dev', 'data-resources-protected', 'github-oidc-trust-scoped-to-environment',
      // Review H1 of issue 11 (environment boundary) and issue 16's autoscaler.
      'deploy-roles-isolated', 'platform-roles-bounded', 'cluster-autoscaler-present-and-scoped',
      ...HARDENING_RULES,
    ]);
  });

  test('s3-no-public-buckets: missing or partial public access block, public ACL, open bucket policy', () => {
    expect(messages('s3-no-public-buckets', [bucket, fullBlock])).toEqual([]);
    expect(messages('s3-no-public-buckets', [bucket])).toEqual([expect.stringMatching(/no BucketPublicAccessBlock/)]);
    const partial = res(fullBlock.type, 'pab', { ...fullBlock.props, restrictPublicBuckets: false });
    expect(messages('s3-no-public-buckets', [bucket, partial])).toHaveLength(1);
    const acl = res('aws:s3/bucketAcl:BucketAcl', 'acl', { bucket: 'lake-1', acl: 'public-read' });
    expect(messages('s3-no-public-buckets', [bucket, fullBlock, acl])).toEqual([expect.stringMatching(/public ACL/)]);
    const open = res('aws:s3/bucketPolicy:BucketPolicy', 'pol', {
      bucket: 'lake-1',
      policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 's3:GetObject', Resource: 'arn:aws:s3:::lake-1/*' }] }),
    });
    expect(messages('s3-no-public-buckets', [bucket, fullBlock, open])).toEqual([expect.stringMatching(/allows access to everyone/)]);
  });

  test('s3-encryption: a bucket without a server-side encryption configuration', () => {
    const sse = res('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', 'sse', {
      bucket: 'lake-1', rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms' } }],
    });
    expect(messages('s3-encryption', [bucket, sse])).toEqual([]);
    expect(messages('s3-encryption', [bucket])).toEqual([expect.stringMatching(/no server-side encryption/)]);
    const other = res(sse.type, 'sse', { ...sse.props, bucket: 'other-bucket' });
    expect(messages('s3-encryption', [bucket, other])).toHaveLength(1);
  });

  test('ecr-immutable-scan-on-push: mutable tags, no scan on push', () => {
    const good = res('aws:ecr/repository:Repository', 'repo', { imageTagMutability: 'IMMUTABLE', imageScanningConfiguration: { scanOnPush: true } });
    expect(messages('ecr-immutable-scan-on-push', [good])).toEqual([]);
    expect(messages('ecr-immutable-scan-on-push', [res(good.type, 'repo', { imageScanningConfiguration: { scanOnPush: true } })])).toEqual([
      expect.stringMatching(/IMMUTABLE \(is MUTABLE\)/),
    ]);
    expect(messages('ecr-immutable-scan-on-push', [res(good.type, 'repo', { imageTagMutability: 'IMMUTABLE' })])).toEqual([expect.stringMatching(/scanOnPush/)]);
  });

  test('no-nat-gateways: a NAT gateway, or a route through one', () => {
    expect(messages('no-nat-gateways', [res('aws:ec2/natGateway:NatGateway', 'nat', { subnetId: 'subnet-1' })])).toHaveLength(1);
    expect(messages('no-nat-gateways', [res('aws:ec2/route:Route', 'r', { routeTableId: 'rtb-1', natGatewayId: 'nat-1' })])).toHaveLength(1);
    expect(messages('no-nat-gateways', [res('aws:ec2/routeTable:RouteTable', 'rt', { routes: [{ cidrBlock: '0.0.0.0/0', natGatewayId: 'nat-1' }] })])).toHaveLength(1);
    expect(messages('no-nat-gateways', [res('aws:ec2/route:Route', 'r', { routeTableId: 'rtb-1', gatewayId: 'igw-1' })])).toEqual([]);
  });

  test('nodes-in-private-subnets: public subnets by IGW route or public IPs; node groups must name their subnets', () => {
    const network = [
      res('aws:ec2/internetGateway:InternetGateway', 'igw', { id: 'igw-1' }),
      res('aws:ec2/route:Route', 'default', { routeTableId: 'rtb-pub', gatewayId: 'igw-1', destinationCidrBlock: '0.0.0.0/0' }),
      res('aws:ec2/routeTableAssociation:RouteTableAssociation', 'a1', { subnetId: 'subnet-pub', routeTableId: 'rtb-pub' }),
      res('aws:ec2/routeTableAssociation:RouteTableAssociation', 'a2', { subnetId: 'subnet-priv', routeTableId: 'rtb-priv' }),
      res('aws:ec2/subnet:Subnet', 'auto-ip', { id: 'subnet-autoip', mapPublicIpOnLaunch: true }),
    ];
    const ng = (subnetIds: string[] | undefined): CheckedResource => res('eks:index:ManagedNodeGroup', 'ng', subnetIds ? { subnetIds } : {});
    expect(messages('nodes-in-private-subnets', [...network, ng(['subnet-priv'])])).toEqual([]);
    expect(messages('nodes-in-private-subnets', [...network, ng(['subnet-priv', 'subnet-pub'])])).toEqual([expect.stringMatching(/public subnet\(s\) subnet-pub/)]);
    expect(messages('nodes-in-private-subnets', [...network, ng(['subnet-autoip'])])).toHaveLength(1);
    expect(messages('nodes-in-private-subnets', [...network, ng(undefined)])).toEqual([expect.stringMatching(/does not set subnetIds/)]);
    const raw = res('aws:eks/nodeGroup:NodeGroup', 'raw', { subnetIds: ['subnet-pub'] });
    expect(messages('nodes-in-private-subnets', [...network, raw])).toHaveLength(1);
    const cluster = res('eks:index:Cluster', 'c', { privateSubnetIds: ['subnet-priv'] });
    expect(messages('nodes-in-private-subnets', [cluster])).toEqual([expect.stringMatching(/public IPs/)]);
    expect(messages('nodes-in-private-subnets', [res('eks:index:Cluster', 'c', { skipDefaultNodeGroup: true })])).toEqual([]);
  });

  test('iam-no-star-actions-on-star-resources: inline, managed, role inline policies and AdministratorAccess', () => {
    const starStar = JSON.stringify({ Statement: [{ Sid: 'All', Effect: 'Allow', Action: '*', Resource: '*' }] });
    const scoped = JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' }, { Effect: 'Deny', Action: '*', Resource: '*' }] });
    const name = 'iam-no-star-actions-on-star-resources';
    expect(messages(name, [res('aws:iam/rolePolicy:RolePolicy', 'p', { policy: scoped })])).toEqual([]);
    expect(messages(name, [res('aws:iam/rolePolicy:RolePolicy', 'p', { policy: starStar })])).toEqual([expect.stringMatching(/statement All/)]);
    expect(messages(name, [res('aws:iam/policy:Policy', 'p', { policy: JSON.stringify({ Statement: { Effect: 'Allow', Action: ['s3:GetObject', '*:*'], Resource: ['*'] } }) })])).toHaveLength(1);
    expect(messages(name, [res('aws:iam/role:Role', 'r', { inlinePolicies: [{ name: 'x', policy: starStar }] })])).toHaveLength(1);
    expect(messages(name, [res('aws:iam/rolePolicyAttachment:RolePolicyAttachment', 'a', { policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' })])).toHaveLength(1);
  });

  test('log-groups-have-retention: a log group without retention', () => {
    expect(messages('log-groups-have-retention', [res('aws:cloudwatch/logGroup:LogGroup', 'lg', { retentionInDays: 7 })])).toEqual([]);
    expect(messages('log-groups-have-retention', [res('aws:cloudwatch/logGroup:LogGroup', 'lg', {})])).toEqual([expect.stringMatching(/no retentionInDays/)]);
    expect(messages('log-groups-have-retention', [res('aws:cloudwatch/logGroup:LogGroup', 'lg', { retentionInDays: 0 })])).toHaveLength(1);
  });

  test('required-tags: provider default tags count; a resource on an untagged provider, or missing one key, is caught', () => {
    const vpc = (provider: CheckedResource['provider'], tags?: Record<string, string>): CheckedResource => ({
      type: 'aws:ec2/vpc:Vpc', name: 'vpc', urn: 'urn:vpc', props: tags ? { tags } : {}, provider,
    });
    expect(messages('required-tags', [vpc(PROVIDER)])).toEqual([]);
    expect(messages('required-tags', [vpc(undefined)])).toEqual([expect.stringMatching(/missing tag\(s\) project, stack, owner, cost-center/)]);
    expect(messages('required-tags', [vpc(undefined, { project: 'p', stack: 's', owner: 'o' })])).toEqual([expect.stringMatching(/missing tag\(s\) cost-center$/)]);
    const parsed = { type: PROVIDER.type, props: { defaultTags: { tags: TAGS } } };
    expect(messages('required-tags', [vpc(parsed)])).toEqual([]);
    // Types that take no tags (and do not pass any) are not checked.
    expect(messages('required-tags', [{ type: 'aws:ec2/route:Route', name: 'r', urn: 'u', props: {} }])).toEqual([]);
  });
});

const tagged = (tier: string | undefined): CheckedResource['provider'] => ({
  type: 'pulumi:providers:aws', props: { defaultTags: JSON.stringify({ tags: tier ? { ...TAGS, tier } : TAGS }) },
});
const DIGEST_REF = `123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense/api@sha256:${'ab'.repeat(32)}`;

describe('deploy and teardown rules catch violations', () => {
  test('public-access-cidrs-routable: documentation and private ranges in an EKS public endpoint or a load balancer', () => {
    const cluster = (cidrs: string[]): CheckedResource => res('eks:index:Cluster', 'c', { publicAccessCidrs: cidrs });
    expect(messages('public-access-cidrs-routable', [cluster(['81.2.69.160/27', '0.0.0.0/0'])])).toEqual([]);
    expect(messages('public-access-cidrs-routable', [cluster(['203.0.113.0/24'])])).toEqual([expect.stringMatching(/publicAccessCidrs 203\.0\.113\.0\/24 lies in .*RFC 5737/)]);
    const raw = res('aws:eks/cluster:Cluster', 'raw', { vpcConfig: { publicAccessCidrs: ['10.1.0.0/16'] } });
    expect(messages('public-access-cidrs-routable', [raw])).toEqual([expect.stringMatching(/vpcConfig\.publicAccessCidrs 10\.1\.0\.0\/16 lies in 10\.0\.0\.0\/8, private use \(RFC 1918\)/)]);
    const svc = res('kubernetes:core/v1:Service', 'svc', { spec: { type: 'LoadBalancer', loadBalancerSourceRanges: ['192.168.0.0/24'] } });
    expect(messages('public-access-cidrs-routable', [svc])).toHaveLength(1);
    expect(messages('public-access-cidrs-routable', [cluster([])])).toEqual([]);
    // The annotation spelling of the same list is read too.
    const annotated = (annotations: Record<string, string>, ranges?: string[]): CheckedResource =>
      res('kubernetes:core/v1:Service', 'svc', { metadata: { annotations }, spec: { type: 'LoadBalancer', ...(ranges ? { loadBalancerSourceRanges: ranges } : {}) } });
    const ANNOTATION = 'service.beta.kubernetes.io/load-balancer-source-ranges';
    expect(messages('public-access-cidrs-routable', [annotated({ [ANNOTATION]: '81.2.69.160/27, 198.51.100.0/24' })])).toEqual([expect.stringMatching(/annotation service\.beta\.kubernetes\.io\/load-balancer-source-ranges 198\.51\.100\.0\/24 lies in .*RFC 5737/)]);
    expect(messages('public-access-cidrs-routable', [annotated({ [ANNOTATION]: '81.2.69.160/27' })])).toEqual([]);
    // An internal load balancer's clients have private addresses; a documentation range still admits nobody.
    const internals: Record<string, string>[] = [{ 'service.beta.kubernetes.io/aws-load-balancer-internal': 'true' }, { 'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internal' }];
    for (const internal of internals) {
      expect(messages('public-access-cidrs-routable', [annotated(internal, ['10.20.0.0/16', '192.168.1.0/24'])])).toEqual([]);
      expect(messages('public-access-cidrs-routable', [annotated({ ...internal, [ANNOTATION]: '172.16.0.0/12' })])).toEqual([]);
      expect(messages('public-access-cidrs-routable', [annotated(internal, ['203.0.113.0/24'])])).toHaveLength(1);
    }
    expect(messages('public-access-cidrs-routable', [annotated({ 'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internet-facing' }, ['10.20.0.0/16'])])).toHaveLength(1);
  });

  test('a public EKS endpoint with no access list (AWS opens it to 0.0.0.0/0) is refused in every tier', () => {
    const open = (tier: string): CheckedResource => ({ ...res('aws:eks/cluster:Cluster', 'raw', { vpcConfig: { endpointPublicAccess: true } }), provider: tagged(tier) });
    expect(messages('eks-no-public-endpoint-outside-dev', [open('dev')])).toEqual([expect.stringContaining('not open to 0.0.0.0/0')]);
    expect(messages('eks-no-public-endpoint-outside-dev', [open('prod')])).toEqual([expect.stringContaining('public API endpoint; set endpointPublicAccess: false')]);
    expect(messages('eks-no-public-endpoint-outside-dev', [{ ...res('eks:index:Cluster', 'c', { endpointPublicAccess: true }), provider: tagged('dev') }])).toHaveLength(1);
  });

  test('images-by-digest-outside-dev: workloads, deployer builds and pipeline defaults by tag outside dev; unlabelled means prod', () => {
    // The tier is the stack's (its URN), whatever the object's own label says.
    const deployment = (image: string, stack?: string, label = 'dev'): CheckedResource => ({
      ...res('kubernetes:apps/v1:Deployment', 'api', {
        metadata: { labels: { 'pricesense/tier': label } },
        spec: { template: { spec: { initContainers: [{ name: 'init', image: DIGEST_REF }], containers: [{ name: 'api', image }] } } },
      }),
      urn: stack ? `urn:pulumi:${stack}::pricesense-app::kubernetes:apps/v1:Deployment::api` : 'urn:api',
    });
    expect(messages('images-by-digest-outside-dev', [deployment(DIGEST_REF, 'prod')])).toEqual([]);
    expect(messages('images-by-digest-outside-dev', [deployment('repo/api:1.0.0', 'dev')])).toEqual([]);
    expect(messages('images-by-digest-outside-dev', [deployment('repo/api:1.0.0', 'stage')])).toEqual(['api (stage): containers api runs repo/api:1.0.0, not an image digest reference <repo>@sha256:<64 hex>']);
    expect(messages('images-by-digest-outside-dev', [deployment('repo/api@sha256:abc', undefined)])).toEqual([expect.stringContaining('api (unknown tier (treated as prod))')]);
    // A label cannot exempt an object from its stack's rules (review M6); a personal stack's Kubernetes objects get the strict form.
    expect(messages('images-by-digest-outside-dev', [deployment('repo/api:1.0.0', 'prod', 'dev')])).toEqual([expect.stringContaining('api (prod): containers api runs repo/api:1.0.0')]);
    expect(messages('images-by-digest-outside-dev', [deployment('repo/api:1.0.0', 'dev-alice', 'dev')])).toHaveLength(1);
    // Digests pinned to our repositories: another registry's bytes were never scanned here.
    const sha = `@sha256:${'cd'.repeat(32)}`;
    expect(messages('images-by-digest-outside-dev', [deployment(`docker.io/library/nginx${sha}`, 'prod')])).toEqual([expect.stringContaining(`runs docker.io/library/nginx${sha}, not an image digest reference`)]);
    expect(messages('images-by-digest-outside-dev', [deployment(`123456789012.dkr.ecr.us-east-1.amazonaws.com/other/api${sha}`, 'prod')])).toHaveLength(1);
    expect(messages('images-by-digest-outside-dev', [deployment(`123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/cluster-autoscaler:v1.33.0${sha}`, 'prod')])).toEqual([]);
    const project = (image: string, tier: string): CheckedResource => ({ ...res('aws:codebuild/project:Project', 'deployer', { environment: { image } }), provider: tagged(tier) });
    expect(messages('images-by-digest-outside-dev', [project('repo/deployer:latest', 'prod')])).toHaveLength(1);
    expect(messages('images-by-digest-outside-dev', [project('repo/deployer:latest', 'dev')])).toEqual([]);
    const pipeline = (jobs: string): CheckedResource => ({
      ...res('aws:sagemaker/pipeline:Pipeline', 'p', { pipelineDefinition: JSON.stringify({ Parameters: [{ Name: 'JobsImage', Type: 'String', DefaultValue: jobs }, { Name: 'Trees', Type: 'Integer', DefaultValue: 100 }] }) }),
      provider: tagged('prod'),
    });
    expect(messages('images-by-digest-outside-dev', [pipeline(DIGEST_REF)])).toEqual([]);
    expect(messages('images-by-digest-outside-dev', [pipeline('repo/jobs:1.0.0-jobs')])).toEqual([expect.stringContaining('parameter JobsImage runs repo/jobs:1.0.0-jobs')]);
  });

  test('data-resources-protected: unprotected data outside dev; force-emptied buckets outside dev and stage; force-deleted repositories', () => {
    const bucket = (tier: string | undefined, protect: boolean, forceDestroy = false): CheckedResource =>
      ({ ...res('aws:s3/bucket:Bucket', 'lake', { forceDestroy }), provider: tagged(tier), opts: { protect } });
    expect(messages('data-resources-protected', [bucket('dev', false, true)])).toEqual([]);
    expect(messages('data-resources-protected', [bucket('stage', true, true)])).toEqual([]);
    expect(messages('data-resources-protected', [bucket('prod', true)])).toEqual([]);
    expect(messages('data-resources-protected', [bucket('stage', false)])).toEqual([expect.stringMatching(/^lake \(aws:s3\/bucket:Bucket, stage\) is not protected/)]);
    expect(messages('data-resources-protected', [bucket('prod', true, true)])).toEqual([expect.stringContaining('has forceDestroy: only dev and stage buckets may be emptied')]);
    expect(messages('data-resources-protected', [bucket(undefined, false)])).toEqual([expect.stringContaining('unknown tier (treated as prod)')]);
    const group = { ...res('aws:sagemaker/modelPackageGroup:ModelPackageGroup', 'models', {}), provider: tagged('prod') };
    expect(messages('data-resources-protected', [group])).toHaveLength(1);
    const repo = { ...res('aws:ecr/repository:Repository', 'repo', { forceDelete: true }), provider: tagged('shared'), opts: { protect: true } };
    expect(messages('data-resources-protected', [repo])).toEqual([expect.stringContaining('has forceDelete')]);
    // The stack decides: a resource cannot tag itself out of the prod rules (review M6), and
    // without a tier on the provider its own tag does not count either.
    expect(messages('data-resources-protected', [{ ...bucket('prod', false), props: { tags: { tier: 'dev' } } }])).toEqual([expect.stringContaining('lake (aws:s3/bucket:Bucket, prod) is not protected')]);
    expect(messages('data-resources-protected', [{ ...bucket(undefined, false), props: { tags: { tier: 'dev' } } }])).toEqual([expect.stringContaining('unknown tier (treated as prod)')]);
    const inStack = (stack: string, providerTier: string): CheckedResource => ({ ...bucket(providerTier, false), urn: `urn:pulumi:${stack}::pricesense::aws:s3/bucket:Bucket::lake` });
    expect(messages('data-resources-protected', [inStack('prod', 'dev')])).toEqual([expect.stringContaining('lake (aws:s3/bucket:Bucket, prod) is not protected')]);
    expect(messages('data-resources-protected', [inStack('dev-alice', 'dev')])).toEqual([]);
  });

  test('github-oidc-trust-scoped-to-environment: branch subjects, wildcards, missing audience, other actions; other roles untouched', () => {
    const provider = 'arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com';
    const role = (condition: object, action: unknown = 'sts:AssumeRoleWithWebIdentity', federated = provider): CheckedResource => res('aws:iam/role:Role', 'deploy', {
      assumeRolePolicy: JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { Federated: federated }, Action: action, Condition: condition }] }),
    });
    const good = { StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com', 'token.actions.githubusercontent.com:sub': 'repo:acme/pricesense:environment:prod' } };
    const name = 'github-oidc-trust-scoped-to-environment';
    expect(messages(name, [role(good)])).toEqual([]);
    expect(messages(name, [role({ StringEquals: { ...good.StringEquals, 'token.actions.githubusercontent.com:sub': 'repo:acme/pricesense:ref:refs/heads/main' } })])).toEqual([expect.stringContaining('exactly one repo:<owner>/<repo>:environment:<env>')]);
    expect(messages(name, [role({ StringEquals: { ...good.StringEquals, 'token.actions.githubusercontent.com:sub': ['repo:acme/pricesense:environment:dev', 'repo:acme/pricesense:environment:prod'] } })])).toHaveLength(1);
    expect(messages(name, [role({ StringEquals: { 'token.actions.githubusercontent.com:sub': 'repo:acme/pricesense:environment:prod' } })])).toEqual([expect.stringContaining(':aud = sts.amazonaws.com')]);
    expect(messages(name, [role({ ...good, StringLike: { 'token.actions.githubusercontent.com:sub': 'repo:acme/*' } })])).toEqual([expect.stringContaining('widens the GitHub token conditions with StringLike')]);
    expect(messages(name, [role(good, ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'])])).toEqual([expect.stringContaining('allows only sts:AssumeRoleWithWebIdentity')]);
    // Roles trusting other identity providers (IRSA) are not GitHub roles.
    expect(messages(name, [role({}, 'sts:AssumeRoleWithWebIdentity', 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X')])).toEqual([]);
  });
});

describe('policy pack adapter', () => {
  test('resource rules become validateResource, stack rules validateStack, reporting through the engine callback', async () => {
    const ecr = toPolicy(rule('ecr-immutable-scan-on-push'));
    const reported: string[] = [];
    expect('validateResource' in ecr).toBe(true);
    if ('validateResource' in ecr && typeof ecr.validateResource === 'function') {
      const args = { type: 'aws:ecr/repository:Repository', name: 'repo', urn: 'urn:repo', props: {} } as unknown as Parameters<typeof ecr.validateResource>[0];
      await ecr.validateResource(args, (m) => reported.push(m));
    }
    expect(reported).toHaveLength(2);
    // The engine's resource options reach the rules (the protect rule reads them).
    const data = toPolicy(rule('data-resources-protected'));
    const seen: string[] = [];
    if ('validateResource' in data && typeof data.validateResource === 'function') {
      const args = { type: 'aws:s3/bucket:Bucket', name: 'lake', urn: 'urn:lake', props: {}, opts: { protect: true } } as unknown as Parameters<typeof data.validateResource>[0];
      await data.validateResource(args, (m) => seen.push(m));
      await data.validateResource({ ...args, opts: { protect: false } } as typeof args, (m) => seen.push(m));
    }
    expect(seen).toEqual([expect.stringContaining('lake (aws:s3/bucket:Bucket, unknown tier (treated as prod)) is not protected')]);
    const stack = toPolicy(rule('s3-no-public-buckets'));
    expect('validateStack' in stack).toBe(true);
    if ('validateStack' in stack) {
      const urns: (string | undefined)[] = [];
      const args = { resources: [bucket] } as unknown as Parameters<typeof stack.validateStack>[0];
      await stack.validateStack(args, (_m, urn) => urns.push(urn));
      expect(urns).toEqual([bucket.urn]);
    }
  });
});
