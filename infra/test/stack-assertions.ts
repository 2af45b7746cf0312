/**
 * The properties every environment must have, asserted against mocked runs of the real
 * programs: the platform project and the app project, each in an update run and in the
 * preview of a first `pulumi up` (nothing exists yet, computed values unknown). Each
 * stack's test file calls describeStack with what differs between tiers.
 */
import { EMF_METRICS } from '../../api/emf';
import { ConfigError, parseReleasedStackConfig, parseStackConfig } from '../config';
import { ACCOUNT, AUTOSCALER_CONFIG, DEPLOYER_DIGEST, DIGEST, JOBS_DIGEST, REGION, REGISTRY, policyDoc, releaseImages, runProgram, stackConfig, withProps, type ProgramRun } from './harness';
import { runPolicies } from './policy-engine';
import { EKS_UNSUPPORTED_ZONE_IDS, INTERFACE_ENDPOINT_SERVICES, interfaceEndpointPolicy } from '../network';
import { REQUIRED_TAGS, TAGGABLE_TYPES, UNTAGGED_KINDS } from '../policies/rules';
import { describePipeline, type PipelineExpectations } from './pipeline-assertions';
import { apiAlarms } from '../api-alarms';
import { apiMetricsLogGroup } from '../app-contract';
import { describeApp, type AppExpectations } from './app-assertions';

export interface TierExpectations {
  readonly stack: 'dev' | 'stage' | 'prod';
  readonly azCount: number;
  readonly endpointAzCount: number;
  readonly logRetentionDays: number;
  readonly capacityTypes: string[];
  readonly scaleToZero: boolean;
  /** What `pulumi destroy` may do to the lake and the model package group. */
  readonly data: { protect: boolean; retainOnDelete: boolean; forceDestroy: boolean; stableLakeName: boolean };
  readonly pipeline: PipelineExpectations;
  readonly app: AppExpectations;
}

type Obj = Record<string, unknown>;
export const DEMO_ENDPOINT = { publicEndpoint: true, publicEndpointCidrs: ['81.2.69.160/27'], tlsCertificateArn: `arn:aws:acm:us-east-1:${ACCOUNT}:certificate/0a1b2c3d-demo` };
const o = (v: unknown): Obj => v as Obj;

/** Rules that read values only known once resources exist: the engine reports them as not run during a first preview. */
const NOT_RUN_IN_FIRST_PREVIEW = new Set(['s3-no-public-buckets', 's3-encryption', 'nodes-in-private-subnets', 'iam-no-star-actions-on-star-resources', 'images-by-digest-outside-dev', 'github-oidc-trust-scoped-to-environment', 'node-role-managed-policies',
  'iam-trust-policy-conditions', 'iam-no-service-wildcards', 'sagemaker-jobs-network-isolated',
  // Reads role policies, which embed ARNs not known before the first up.
  'cluster-autoscaler-present-and-scoped']);

export function describeStack(e: TierExpectations): void {
  describe(`stack ${e.stack}`, () => {
    const runs: { platform?: ProgramRun; preview?: ProgramRun; bare?: ProgramRun; app?: ProgramRun; appPreview?: ProgramRun } = {};
    const platformConfig = { 'pricesense:images': releaseImages() };
    // dev: the demo load balancer, as an operator enables it (source CIDRs and a certificate).
    const appConfig = { 'pricesense:app': JSON.stringify({ image: { digest: DIGEST }, ...(e.app.publicEndpoint ? DEMO_ENDPOINT : {}) }), ...AUTOSCALER_CONFIG };
    beforeAll(async () => {
      runs.platform = await runProgram('platform', e.stack, { overrides: platformConfig });
      runs.preview = await runProgram('platform', e.stack, { overrides: platformConfig, mode: 'preview' });
      // The stack file as committed plus its release images, an operator CIDR where one is allowed (dev),
      // and the drift → retraining switch the other way round than the stack's default.
      const flipped = !parseStackConfig(e.stack, 'pricesense', stackConfig('platform', e.stack)).monitoring.retrainOnDrift;
      runs.bare = await runProgram('platform', e.stack, {
        overrides: {
          ...platformConfig,
          ...(e.stack === 'dev' ? { 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: ['81.2.69.160/27'] }) } : {}),
          'pricesense:monitoring': JSON.stringify({ retrainOnDrift: flipped }),
        },
      });
      runs.app = await runProgram('app', e.stack, { overrides: appConfig });
      runs.appPreview = await runProgram('app', e.stack, { overrides: appConfig, mode: 'preview' });
    });
    const platform = (): ProgramRun => runs.platform as ProgramRun;

    describePipeline(e.stack, platform, () => runs.bare as ProgramRun, e.pipeline);
    describeApp(e.stack, () => runs.app as ProgramRun, () => runs.appPreview as ProgramRun, e.app);

    test('network: subnets in zones chosen by ID (never one EKS refuses), the tier AZ count, no NAT gateway anywhere', () => {
      const run = platform();
      expect(run.one('aws:ec2/vpc:Vpc').inputs).toMatchObject({ cidrBlock: '10.0.0.0/16', enableDnsHostnames: true, enableDnsSupport: true });
      const subnets = run.ofType('aws:ec2/subnet:Subnet');
      expect(subnets.filter((s) => /private/.test(s.name))).toHaveLength(e.azCount);
      expect(subnets.filter((s) => /public/.test(s.name))).toHaveLength(e.azCount);
      for (const s of subnets) {
        expect(s.inputs.availabilityZone).toBeUndefined(); // names differ per account; IDs do not
        expect(EKS_UNSUPPORTED_ZONE_IDS).not.toContain(s.inputs.availabilityZoneId);
      }
      // The harness's account lists use1-az3 first (us-east-1a): it is skipped, the next IDs in order are taken.
      const privateZones = subnets.filter((s) => /private/.test(s.name)).map((s) => s.inputs.availabilityZoneId);
      expect(privateZones).toEqual(['use1-az1', 'use1-az2', 'use1-az4'].slice(0, e.azCount));
      expect(run.ofType('aws:ec2/natGateway:NatGateway')).toHaveLength(0);
      expect(run.ofType('aws:ec2/eip:Eip')).toHaveLength(0);
      for (const r of run.ofType('aws:ec2/route:Route')) expect(r.inputs.natGatewayId).toBeUndefined();
      expect(subnets.every((s) => s.inputs.mapPublicIpOnLaunch === false)).toBe(true);
    });

    test('network: load balancer subnet tags; only public subnets route to the internet gateway', () => {
      const run = platform();
      const igw = run.one('aws:ec2/internetGateway:InternetGateway');
      const routes = run.ofType('aws:ec2/route:Route');
      expect(routes).toHaveLength(1);
      const publicRt = routes[0].inputs.routeTableId;
      expect(routes[0].inputs).toMatchObject({ destinationCidrBlock: '0.0.0.0/0', gatewayId: igw.id });
      for (const s of run.ofType('aws:ec2/subnet:Subnet')) {
        const tags = o(s.inputs.tags);
        const assoc = run.ofType('aws:ec2/routeTableAssociation:RouteTableAssociation').find((a) => a.inputs.subnetId === s.id);
        expect(tags[`kubernetes.io/cluster/pricesense-${e.stack}`]).toBe('shared');
        if (/public/.test(s.name)) {
          expect(tags['kubernetes.io/role/elb']).toBe('1');
          expect(assoc?.inputs.routeTableId).toBe(publicRt);
        } else {
          expect(tags['kubernetes.io/role/internal-elb']).toBe('1');
          expect(assoc?.inputs.routeTableId).not.toBe(publicRt);
        }
      }
    });

    test('network: S3 gateway endpoint and every interface endpoint (KMS included, for the deployer) with private DNS and the 443 security group', () => {
      const run = platform();
      const endpoints = run.ofType('aws:ec2/vpcEndpoint:VpcEndpoint');
      const s3 = endpoints.find((v) => v.inputs.serviceName === `com.amazonaws.${REGION}.s3`);
      expect(s3?.inputs).toMatchObject({ vpcEndpointType: 'Gateway' });
      const privateRt = run.one('aws:ec2/routeTable:RouteTable', /private/).id;
      expect(s3?.inputs.routeTableIds).toEqual([privateRt]);
      // This account's buckets, and ECR's layer bucket for image pulls (read-only).
      expect(policyDoc(s3?.inputs.policy).Statement).toEqual([
        expect.objectContaining({ Action: 's3:*', Resource: '*', Condition: { StringEquals: { 'aws:ResourceAccount': ACCOUNT } } }),
        expect.objectContaining({ Action: 's3:GetObject', Resource: `arn:aws:s3:::prod-${REGION}-starport-layer-bucket/*` }),
      ]);
      // Nothing in the VPC calls these (the in-tree NLB controller runs in the control plane).
      for (const unused of ['elasticloadbalancing', 'sagemaker.runtime']) {
        expect(endpoints.map((v) => v.inputs.serviceName)).not.toContain(`com.amazonaws.${REGION}.${unused}`);
      }
      const sg = run.one('aws:ec2/securityGroup:SecurityGroup', 'network-endpoints');
      const required = ['ecr.api', 'ecr.dkr', 'sts', 'logs', 'ec2', 'kms', 'monitoring', 'sagemaker.api'];
      expect(INTERFACE_ENDPOINT_SERVICES).toEqual(expect.arrayContaining(required));
      const privateSubnetIds = run.ofType('aws:ec2/subnet:Subnet').filter((s) => /private/.test(s.name)).map((s) => s.id);
      for (const service of INTERFACE_ENDPOINT_SERVICES) {
        const ep = endpoints.find((v) => v.inputs.serviceName === `com.amazonaws.${REGION}.${service}`);
        expect(ep?.inputs).toMatchObject({ vpcEndpointType: 'Interface', privateDnsEnabled: true, securityGroupIds: [sg.id] });
        expect(ep?.inputs.policy).toBe(interfaceEndpointPolicy(ACCOUNT));
        const subnetIds = ep?.inputs.subnetIds as string[];
        expect(subnetIds).toHaveLength(e.endpointAzCount);
        expect(subnetIds.every((id) => privateSubnetIds.includes(id))).toBe(true);
      }
    });

    test('data lake: private, encrypted, versioned, TLS-only, lifecycle rules', () => {
      const run = platform();
      const bucket = run.one('aws:s3/bucket:Bucket');
      expect(run.one('aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock').inputs).toEqual(
        expect.objectContaining({ bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }),
      );
      const sse = run.one('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration').inputs;
      expect(o(o((sse.rules as unknown[])[0]).applyServerSideEncryptionByDefault).sseAlgorithm).toBe('AES256');
      expect(o(run.one('aws:s3/bucketVersioning:BucketVersioning').inputs.versioningConfiguration).status).toBe('Enabled');
      const tls = policyDoc(run.one('aws:s3/bucketPolicy:BucketPolicy').inputs.policy).Statement;
      expect(tls[0]).toMatchObject({ Effect: 'Deny', Principal: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
      // Load balancer access logs: only the log delivery service, only for this account, only under logs/lb/.
      expect(tls.find((x) => x.Sid === 'LoadBalancerAccessLogs')).toMatchObject({
        Principal: { Service: 'delivery.logs.amazonaws.com' }, Resource: `arn:aws:s3:::${bucket.id}/logs/lb/*`, Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } },
      });
      const rules = run.one('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration').inputs.rules as Obj[];
      const byPrefix = (p: string): Obj | undefined => rules.find((r) => o(r.filter).prefix === p);
      expect(byPrefix('tmp/')?.expiration).toEqual({ days: 7 });
      expect(byPrefix('logs/')).toMatchObject({ transitions: [{ storageClass: 'STANDARD_IA', days: 30 }], expiration: { days: 365 } });
      expect(byPrefix('raw/')).toMatchObject({ transitions: [{ storageClass: 'INTELLIGENT_TIERING', days: 0 }] });
    });

    test(`teardown: the lake and its guards ${e.data.protect ? 'are protected' : 'are not protected'}${e.data.retainOnDelete ? ' and retained under a stable name' : ''}; forceDestroy ${e.data.forceDestroy}`, () => {
      const run = platform();
      const bucket = run.one('aws:s3/bucket:Bucket');
      expect(bucket.inputs.forceDestroy).toBe(e.data.forceDestroy);
      if (e.data.stableLakeName) {
        // The name a recreated stack imports (docs/infra.md): no random suffix.
        expect(bucket.inputs).toMatchObject({ bucket: `pricesense-lake-${e.stack}-${ACCOUNT}` });
        expect(bucket.inputs.bucketPrefix).toBeUndefined();
      } else {
        expect(bucket.inputs.bucket).toBeUndefined();
        expect(bucket.inputs.bucketPrefix).toBe(`pricesense-lake-${e.stack}-`);
      }
      const lakeParts = run.resources.filter((r) => r.type.startsWith('aws:s3/'));
      expect(lakeParts.length).toBeGreaterThanOrEqual(7);
      for (const r of lakeParts) {
        expect([r.name, r.opts.protect, r.opts.retainOnDelete ?? false]).toEqual([r.name, e.data.protect, e.data.retainOnDelete]);
      }
    });

    test('teardown: the model package group follows the same rule as the lake', () => {
      const group = platform().one('aws:sagemaker/modelPackageGroup:ModelPackageGroup');
      expect(group.inputs.modelPackageGroupName).toBe(`pricesense-${e.stack}`);
      expect(group.opts.protect).toBe(e.data.protect);
      expect(group.opts.retainOnDelete ?? false).toBe(e.data.retainOnDelete);
    });

    test('teardown: nothing but data is protected, so `pulumi destroy --exclude-protected` removes all compute and network', () => {
      const protectedTypes = new Set(platform().resources.filter((r) => r.opts.protect).map((r) => r.type));
      for (const t of protectedTypes) expect(t).toMatch(/^aws:(s3\/|sagemaker\/modelPackageGroup|kms\/key)/);
    });

    test('teardown: explicit order: the cluster after the network, node groups after networking add-ons, the deployer after its access', () => {
      const run = platform();
      expect(run.one('pricesense:infra:Cluster').opts.dependsOn).toEqual(['pricesense:infra:Network::network']);
      for (const g of run.ofType('eks:index:ManagedNodeGroup')) {
        expect(g.opts.dependsOn).toEqual(expect.arrayContaining(['aws:eks/addon:Addon::cluster-vpc-cni', 'aws:eks/addon:Addon::cluster-kube-proxy']));
      }
      expect(run.one('aws:eks/accessEntry:AccessEntry').opts.dependsOn).toEqual(['pricesense:infra:Cluster::cluster']);
      expect(run.one('aws:codebuild/project:Project').opts.dependsOn).toEqual(expect.arrayContaining([
        'aws:iam/rolePolicy:RolePolicy::deployer-role',
        'aws:eks/accessPolicyAssociation:AccessPolicyAssociation::deployer-access',
        'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule::deployer-to-api-server',
      ]));
    });

    test('images: no repository of its own; the shared repositories are looked up and the release is referenced by digest', () => {
      const run = platform();
      expect(run.ofType('aws:ecr/repository:Repository')).toEqual([]);
      expect(run.outputs.apiRepositoryUrl).toBe(`${REGISTRY}/pricesense/api`);
      expect(run.outputs.pipelineApiImage).toBe(`${REGISTRY}/pricesense/api@${DIGEST}`);
      expect(run.outputs.pipelineJobsImage).toBe(`${REGISTRY}/pricesense/jobs@${JOBS_DIGEST}`);
      const jobsPull = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'models-sagemaker').inputs.policy).Statement.find((s) => s.Sid === 'PullTrainingImage');
      expect(jobsPull?.Resource).toBe(`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/pricesense/jobs`);
    });

    test('model registry: a SageMaker role scoped to lake prefixes', () => {
      const run = platform();
      const policy = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'models-sagemaker').inputs.policy).Statement;
      const bucket = run.one('aws:s3/bucket:Bucket').id;
      for (const s of policy.filter((x) => String(x.Action).startsWith('s3:Get') || String(x.Action).startsWith('s3:Put'))) {
        for (const res of s.Resource as string[]) expect(res).toMatch(new RegExp(`^arn:aws:s3:::${bucket}/(raw|silver|gold|artifacts|logs|tmp)/\\*$`));
      }
      const trust = policyDoc(run.ofType('aws:iam/role:Role').find((r) => r.name === 'models-sagemaker')?.inputs.assumeRolePolicy).Statement[0];
      expect(trust).toMatchObject({ Principal: { Service: 'sagemaker.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } });
    });

    test('cluster: private API endpoint only (the deploy path is inside the VPC), private nodes, API auth, OIDC, logging, add-ons', () => {
      const run = platform();
      const c = run.one('eks:index:Cluster');
      const privateIds = run.ofType('aws:ec2/subnet:Subnet').filter((s) => /private/.test(s.name)).map((s) => s.id);
      expect(c.inputs).toMatchObject({
        name: `pricesense-${e.stack}`,
        authenticationMode: 'API',
        createOidcProvider: true,
        skipDefaultNodeGroup: true,
        nodeAssociatePublicIpAddress: false,
        endpointPrivateAccess: true,
        endpointPublicAccess: false,
        privateSubnetIds: privateIds,
      });
      expect(c.inputs.publicAccessCidrs).toBeUndefined();
      expect(c.inputs.enabledClusterLogTypes).toEqual(expect.arrayContaining(['api', 'audit', 'authenticator']));
      const groups = run.ofType('eks:index:ManagedNodeGroup');
      expect(groups.map((g) => g.inputs.capacityType)).toEqual(e.capacityTypes);
      for (const g of groups) expect(g.inputs.subnetIds).toEqual(privateIds);
      const addons = run.ofType('aws:eks/addon:Addon').map((a) => a.inputs.addonName);
      expect(addons).toEqual(expect.arrayContaining(['vpc-cni', 'coredns', 'kube-proxy', 'eks-pod-identity-agent', 'amazon-cloudwatch-observability', 'metrics-server']));
      // The platform creates no Kubernetes object: it runs where the API server is unreachable.
      expect(run.resources.filter((r) => r.type.startsWith('kubernetes:'))).toEqual([]);
    });

    test(e.stack === 'dev' ? 'cluster: a configured operator CIDR opens a public endpoint restricted to it (dev only)' : `cluster: no public endpoint in ${e.stack}, whatever the config says`, () => {
      if (e.stack === 'dev') {
        expect((runs.bare as ProgramRun).one('eks:index:Cluster').inputs).toMatchObject({ endpointPublicAccess: true, publicAccessCidrs: ['81.2.69.160/27'] });
        return;
      }
      // Refused before any resource is declared (the rule eks-no-public-endpoint-outside-dev backs it).
      const raw = { ...stackConfig('platform', e.stack), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: ['81.2.69.160/27'] }) };
      expect(() => parseStackConfig(e.stack, 'pricesense', raw)).toThrow(`pricesense:cluster.publicAccessCidrs: expected empty in ${e.stack}`);
    });

    test('cluster: secrets encrypted with a rotated customer-managed key, STANDARD support, our own control-plane role with a confused-deputy guard', () => {
      const run = platform();
      const c = run.one('eks:index:Cluster').inputs;
      const key = run.one('aws:kms/key:Key', 'cluster-secrets');
      expect(key.inputs).toMatchObject({ enableKeyRotation: true });
      expect(key.opts.protect).toBe(e.data.protect);
      expect(c.encryptionConfigKeyArn).toBe(key.state.arn);
      expect(c.upgradePolicy).toEqual({ supportType: 'STANDARD' });
      const role = run.one('aws:iam/role:Role', 'cluster-control-plane');
      expect(c.serviceRole).toBeDefined();
      expect(policyDoc(role.inputs.assumeRolePolicy).Statement[0]).toMatchObject({ Principal: { Service: 'eks.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } });
      const keyUse = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'cluster-control-plane-kms').inputs.policy).Statement[0];
      expect(keyUse.Resource).toBe(key.state.arn);
    });

    test('deployer: a CodeBuild project in the private subnets, pinned to the deployer image by digest, with the app stack state and its own secrets key', () => {
      const run = platform();
      const project = run.one('aws:codebuild/project:Project');
      const privateIds = run.ofType('aws:ec2/subnet:Subnet').filter((s) => /private/.test(s.name)).map((s) => s.id);
      const sg = run.one('aws:ec2/securityGroup:SecurityGroup', 'deployer-sg');
      expect(project.inputs).toMatchObject({
        name: `pricesense-${e.stack}-deployer`,
        source: { type: 'NO_SOURCE' },
        artifacts: { type: 'NO_ARTIFACTS' },
        vpcConfig: { vpcId: run.one('aws:ec2/vpc:Vpc').id, subnets: privateIds, securityGroupIds: [sg.id] },
        concurrentBuildLimit: 1,
      });
      expect(o(project.inputs.environment)).toMatchObject({
        image: `${REGISTRY}/pricesense/deployer@${DEPLOYER_DIGEST}`,
        imagePullCredentialsType: 'SERVICE_ROLE',
        // No PULUMI_SECRETS_PROVIDER: not a CLI variable (review M8); the stack file's secretsprovider is what counts.
        environmentVariables: expect.arrayContaining([
          { name: 'STACK', value: e.stack },
          { name: 'PULUMI_BACKEND_URL', value: `s3://pricesense-pulumi-state-${ACCOUNT}?region=${REGION}` },
        ]),
      });
      expect(String(o(project.inputs.source).buildspec)).toContain('bash infra/deployer/in-vpc.sh "$ACTION"');
      expect(run.outputs.deployerProject).toBe(`pricesense-${e.stack}-deployer`);
      expect(run.outputs.deployerImage).toBe(`${REGISTRY}/pricesense/deployer@${DEPLOYER_DIGEST}`);
    });

    test('deployer: HTTPS out to the VPC and S3 only; the API server lets it in on 443', () => {
      const run = platform();
      const sg = run.one('aws:ec2/securityGroup:SecurityGroup', 'deployer-sg');
      const egress = run.ofType('aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule').filter((r) => r.inputs.securityGroupId === sg.id);
      expect(egress.map((r) => [r.inputs.fromPort, r.inputs.toPort, r.inputs.cidrIpv4 ?? r.inputs.prefixListId]).sort()).toEqual([[443, 443, '10.0.0.0/16'], [443, 443, 'pl-63a5400a']]);
      const cluster = run.one('eks:index:Cluster');
      expect(run.one('aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule', 'deployer-to-api-server').inputs).toMatchObject({
        securityGroupId: cluster.state.clusterSecurityGroupId, referencedSecurityGroupId: sg.id, ipProtocol: 'tcp', fromPort: 443, toPort: 443,
      });
    });

    test('deployer: role trusted by CodeBuild for this project only; cluster admin through an access entry; state and secrets of its own environment only', () => {
      const run = platform();
      const role = run.one('aws:iam/role:Role', 'deployer-role');
      expect(policyDoc(role.inputs.assumeRolePolicy).Statement).toEqual([{
        Effect: 'Allow',
        Principal: { Service: 'codebuild.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': `arn:aws:codebuild:${REGION}:${ACCOUNT}:project/pricesense-${e.stack}-deployer` } },
      }]);
      expect(run.one('aws:eks/accessEntry:AccessEntry').inputs).toMatchObject({ clusterName: `pricesense-${e.stack}`, principalArn: role.state.arn });
      expect(run.one('aws:eks/accessPolicyAssociation:AccessPolicyAssociation').inputs).toMatchObject({
        principalArn: role.state.arn, policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy', accessScope: { type: 'cluster' },
      });
      const statements = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'deployer-role').inputs.policy).Statement;
      const state = `arn:aws:s3:::pricesense-pulumi-state-${ACCOUNT}/.pulumi`;
      expect(statements.find((s) => s.Sid === 'WriteAppState')?.Resource).toEqual([`${state}/*/pricesense-app/${e.stack}.json*`, `${state}/*/pricesense-app/${e.stack}/*`]);
      expect(statements.find((s) => s.Sid === 'ReadState')?.Resource).toContain(`${state}/stacks/pricesense/${e.stack}.json*`);
      expect(statements.find((s) => s.Sid === 'StackSecrets')?.Condition).toEqual({ 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': `alias/pricesense-${e.stack}-pulumi` } });
      expect(statements.find((s) => s.Sid === 'PullDeployerImage')?.Resource).toBe(`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/pricesense/deployer`);
      const stars = statements.filter((s) => s.Resource === '*').flatMap((s) => [s.Action].flat());
      expect(stars.every((a) => /^(ecr:GetAuthorizationToken|ec2:(Create|Delete|Describe)\w+)$/.test(String(a)))).toBe(true);
    });

    test('release images: the stack file as committed (no digests) is refused, naming each image, what it would delete and how to keep what runs (review H2)', () => {
      let error: unknown;
      try {
        parseReleasedStackConfig(e.stack, 'pricesense', stackConfig('platform', e.stack));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.key)).toEqual(['pricesense:images.api', 'pricesense:images.jobs', 'pricesense:images.deployer']);
      expect((error as ConfigError).message).toContain(`would delete the in-VPC deployer: its CodeBuild project, role and access entry). The release workflow sets it; by hand, keep what runs: pulumi config set --stack ${e.stack} --path pricesense:images.deployer.digest "$(pulumi stack output --stack ${e.stack} deployerImage | cut -d@ -f2)"`);
      expect(parseReleasedStackConfig(e.stack, 'pricesense', { ...stackConfig('platform', e.stack), ...platformConfig }).images.deployer).toEqual({ digest: DEPLOYER_DIGEST });
    });

    test('api identity: IRSA trust bound to the app service account, read-only on artifacts/ and the model group', () => {
      const run = platform();
      const c = run.one('eks:index:Cluster');
      const issuer = String(c.state.oidcIssuer);
      const role = run.one('aws:iam/role:Role', 'api-irsa');
      expect(policyDoc(role.inputs.assumeRolePolicy).Statement).toEqual([{
        Effect: 'Allow',
        Principal: { Federated: c.state.oidcProviderArn },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${issuer}:sub`]: 'system:serviceaccount:mlops:pricesense-api', [`${issuer}:aud`]: 'sts.amazonaws.com' } },
      }]);
      expect(run.outputs.apiRoleArn).toBe(role.state.arn);
      const bucket = run.one('aws:s3/bucket:Bucket').id;
      const statements = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'api-irsa').inputs.policy).Statement;
      const actions = statements.flatMap((s) => s.Action as string[]);
      expect(actions.every((a) => /^(s3:GetObject|s3:ListBucket|sagemaker:(Describe|List)\w+)$/.test(a))).toBe(true);
      expect(statements.find((s) => s.Sid === 'ReadArtifacts')?.Resource).toBe(`arn:aws:s3:::${bucket}/artifacts/*`);
      expect(statements.find((s) => s.Sid === 'DescribeModels')?.Resource).toEqual([
        `arn:aws:sagemaker:${REGION}:${ACCOUNT}:model-package-group/pricesense-${e.stack}`,
        `arn:aws:sagemaker:${REGION}:${ACCOUNT}:model-package/pricesense-${e.stack}/*`,
      ]);
    });

    test('monitoring: log retention per tier on every log group (deployer builds and API metrics included), alarms to the SNS topic, dashboard', () => {
      const run = platform();
      const groups = run.ofType('aws:cloudwatch/logGroup:LogGroup');
      expect(groups.map((g) => g.inputs.name)).toEqual(expect.arrayContaining([
        `/aws/eks/pricesense-${e.stack}/cluster`, `/aws/containerinsights/pricesense-${e.stack}/application`, `/aws/codebuild/pricesense-${e.stack}-deployer`,
        apiMetricsLogGroup(e.stack),
      ]));
      for (const g of groups) expect(g.inputs.retentionInDays).toBe(e.logRetentionDays);
      const topic = run.one('aws:sns/topic:Topic').state.arn;
      const alarms = run.ofType('aws:cloudwatch/metricAlarm:MetricAlarm');
      const cfg = parseStackConfig(e.stack, 'pricesense', stackConfig('platform', e.stack));
      const definitions = apiAlarms(e.stack, cfg.monitoring, { heartbeat: cfg.cost.demoHours === undefined });
      // The heartbeat alarm exactly where the nodes never sleep: a dead metrics path must not look like a quiet service.
      expect(definitions.some((d) => d.id === 'api-metrics-missing')).toBe(e.stack !== 'dev');
      // Named here, not only derived from apiAlarms(): an empty or shrunken list must fail.
      expect(definitions.map((d) => d.id).filter((id) => id !== 'api-metrics-missing')).toEqual([
        'api-5xx-rate', 'api-p99-latency', 'api-model-load-failures', 'api-no-model', 'drift-psi', 'drift-unknown-categories', 'drift-missing-values',
      ]);
      expect(alarms.map((a) => a.name).sort()).toEqual([...definitions.map((d) => `monitoring-${d.id}`), 'monitoring-node-cpu', 'monitoring-pod-restarts'].sort());
      for (const a of alarms) expect(a.inputs.alarmActions).toEqual([topic]);
      // Every API alarm reads the stack's EMF namespace, exactly as declared in infra/api-alarms.ts.
      for (const d of definitions) {
        const inputs = run.one('aws:cloudwatch/metricAlarm:MetricAlarm', `monitoring-${d.id}`).inputs;
        expect(inputs).toMatchObject({ threshold: d.threshold, comparisonOperator: d.comparisonOperator, evaluationPeriods: d.evaluationPeriods, treatMissingData: d.treatMissingData });
        // A heartbeat breaches on silence; drift keeps its state through a rollout (no OK → ALARM → another retrain).
        expect([d.id, d.treatMissingData]).toEqual([d.id, d.id === 'api-metrics-missing' ? 'breaching' : d.id.startsWith('drift-') ? 'ignore' : 'notBreaching']);
        const queries = inputs.metricQueries as { metric?: { namespace: string; metricName: string } }[];
        for (const q of queries.filter((q) => q.metric)) expect(q.metric?.namespace).toBe(`pricesense/${e.stack}`);
        expect(queries.filter((q) => (q as { returnData?: boolean }).returnData)).toHaveLength(1);
      }
      // p99 straight off the latency distribution the API emits (api/emf.ts EMF_METRICS.latency), against the configured ms.
      const p99Alarm = run.one('aws:cloudwatch/metricAlarm:MetricAlarm', 'monitoring-api-p99-latency').inputs;
      expect(p99Alarm.metricQueries).toEqual([expect.objectContaining({ id: 'm', returnData: true, metric: { namespace: `pricesense/${e.stack}`, metricName: EMF_METRICS.latency, period: 300, stat: 'p99' } })]);
      expect(p99Alarm).toMatchObject({ threshold: cfg.monitoring.p99LatencyMs, comparisonOperator: 'GreaterThanThreshold' });
      // No log metric filter: request metrics come from the EMF records, not from log lines.
      expect(run.ofType('aws:cloudwatch/logMetricFilter:LogMetricFilter')).toEqual([]);
      // The Container Insights agent listens for EMF records (the Service the API sends them to).
      const addon = run.ofType('aws:eks/addon:Addon').find((a) => a.inputs.addonName === 'amazon-cloudwatch-observability');
      expect(JSON.parse(String(addon?.inputs.configurationValues))).toMatchObject({ agent: { config: { logs: { metrics_collected: { emf: {} } } } } });
      expect(JSON.parse(String(run.one('aws:cloudwatch/dashboard:Dashboard').inputs.dashboardBody)).widgets.length).toBeGreaterThanOrEqual(6);
    });

    test('cost: budget with thresholds; scale-to-zero schedules only where demo hours are set', () => {
      const run = platform();
      const budget = run.one('aws:budgets/budget:Budget').inputs;
      expect(budget).toMatchObject({ budgetType: 'COST', timeUnit: 'MONTHLY', limitUnit: 'USD' });
      // Within the service's limit of 5 notifications per budget.
      expect((budget.notifications as unknown[]).length).toBeLessThanOrEqual(5);
      const schedules = run.ofType('aws:scheduler/schedule:Schedule');
      if (!e.scaleToZero) {
        expect(schedules).toHaveLength(0);
        return;
      }
      expect(schedules.map((s) => s.name).sort()).toEqual(['cost-spot-down', 'cost-spot-up']);
      const down = run.one('aws:scheduler/schedule:Schedule', 'cost-spot-down').inputs;
      expect(down.scheduleExpression).toBe('cron(0 20 ? * MON-FRI *)');
      expect(JSON.parse(String(o(down.target).input))).toEqual({ ClusterName: 'pricesense-dev', NodegroupName: 'pricesense-dev-spot', ScalingConfig: { MinSize: 0, MaxSize: 3, DesiredSize: 0 } });
      expect(run.one('eks:index:ManagedNodeGroup').inputs.ignoreScalingChanges).toBe(true);
    });

    test('autoscaler: Cluster Autoscaler\'s Pod Identity role may change only this cluster\'s tagged node groups; node groups keep their desired size on `up` (review of issue 16)', () => {
      const run = platform();
      const cluster = `pricesense-${e.stack}`;
      expect(run.one('aws:eks/podIdentityAssociation:PodIdentityAssociation', 'cluster-autoscaler').inputs).toMatchObject({ clusterName: cluster, namespace: 'kube-system', serviceAccount: 'cluster-autoscaler' });
      const trust = policyDoc(run.one('aws:iam/role:Role', 'cluster-autoscaler').inputs.assumeRolePolicy).Statement[0];
      expect(trust).toMatchObject({ Principal: { Service: 'pods.eks.amazonaws.com' }, Condition: { ArnEquals: { 'aws:SourceArn': `arn:aws:eks:${REGION}:${ACCOUNT}:cluster/${cluster}` } } });
      const statements = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'cluster-autoscaler').inputs.policy).Statement;
      expect(statements.find((s) => s.Sid === 'ScaleOwnNodeGroups')).toEqual({
        Sid: 'ScaleOwnNodeGroups', Effect: 'Allow', Action: ['autoscaling:SetDesiredCapacity', 'autoscaling:TerminateInstanceInAutoScalingGroup'], Resource: '*',
        Condition: { StringEquals: { [`aws:ResourceTag/k8s.io/cluster-autoscaler/${cluster}`]: 'owned', 'aws:ResourceTag/k8s.io/cluster-autoscaler/enabled': 'true' } },
      });
      expect(statements.find((s) => s.Sid === 'DescribeOwnNodeGroups')?.Resource).toBe(`arn:aws:eks:${REGION}:${ACCOUNT}:nodegroup/${cluster}/*`);
      for (const g of run.ofType('eks:index:ManagedNodeGroup')) expect(g.inputs.ignoreScalingChanges).toBe(true);
      expect(run.ofType('aws:ec2/vpcEndpoint:VpcEndpoint').map((v) => v.inputs.serviceName)).toContain(`com.amazonaws.${REGION}.autoscaling`);
    });

    test('tags: every AWS resource goes through the one provider whose default tags carry the required keys and the tier', () => {
      const run = platform();
      const provider = run.one('pulumi:providers:aws');
      const tags = o(o(JSON.parse(String(provider.inputs.defaultTags))).tags);
      expect(tags).toEqual({ project: 'pricesense', stack: e.stack, owner: 'ml-platform', 'cost-center': 'cc-4711', tier: e.stack });
      expect(Object.keys(tags)).toEqual(expect.arrayContaining([...REQUIRED_TAGS]));
      const strays = run.resources.filter((r) => r.type.startsWith('aws:') && r.provider?.split('::').pop() !== provider.id).map((r) => `${r.type} ${r.name}`);
      expect(strays).toEqual([]);
    });

    test('cost coverage: every AWS resource kind is tagged (required-tags checks it) or classified as costing the budget nothing untagged', () => {
      const kinds = [...new Set(platform().resources.filter((r) => r.type.startsWith('aws:')).map((r) => r.type))];
      const unclassified = kinds.filter((k) => !TAGGABLE_TYPES.has(k) && UNTAGGED_KINDS[k] === undefined);
      expect(unclassified).toEqual([]);
      // What AWS launches for us: instances, volumes and ENIs through the launch templates' tag specifications.
      for (const lt of platform().ofType('aws:ec2/launchTemplate:LaunchTemplate')) {
        const specs = lt.inputs.tagSpecifications as Obj[];
        expect(specs.map((t) => t.resourceType)).toEqual(['instance', 'volume', 'network-interface']);
        for (const t of specs) expect(o(t.tags)).toMatchObject({ project: 'pricesense', stack: e.stack, tier: e.stack });
        expect(lt.inputs.metadataOptions).toEqual({ httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 });
      }
      expect(platform().ofType('aws:ec2/launchTemplate:LaunchTemplate')).toHaveLength(platform().ofType('eks:index:ManagedNodeGroup').length);
    });

    test('outputs: the names the app project, the CLI and CI consume', () => {
      const run = platform();
      expect(run.outputs).toMatchObject({
        lakeBucket: run.one('aws:s3/bucket:Bucket').id,
        modelPackageGroup: `pricesense-${e.stack}`,
        registryUri: `sagemaker://pricesense-${e.stack}`,
        clusterName: `pricesense-${e.stack}`,
        region: REGION,
        tier: e.stack,
      });
      expect(typeof run.outputs.kubeconfig).toBe('string');
      // Where the app's NetworkPolicy lets the API reach the host-network CloudWatch agent: the nodes' subnets.
      const nodeSubnets = run.ofType('aws:ec2/subnet:Subnet').filter((s) => o(s.inputs.tags).tier === 'private').map((s) => s.inputs.cidrBlock);
      expect(run.outputs.nodeCidrs).toEqual(nodeSubnets);
      expect(nodeSubnets.length).toBeGreaterThanOrEqual(2);
    });

    test('preview of a first up: the same resources as the update, their ids unknown', () => {
      const preview = runs.preview as ProgramRun;
      const names = (r: ProgramRun): string[] => r.resources.map((x) => `${x.type}::${x.name}`).sort();
      expect(names(preview)).toEqual(names(platform()));
      expect(preview.one('aws:ec2/vpc:Vpc').id).toBeUndefined();
      // Zones are an invoke, known during preview: subnet placement is decided before anything exists.
      expect(preview.ofType('aws:ec2/subnet:Subnet').map((s) => s.inputs.availabilityZoneId)).toEqual(platform().ofType('aws:ec2/subnet:Subnet').map((s) => s.inputs.availabilityZoneId));
      const options = (r: ProgramRun): string[] => r.resources.map((x) => `${x.type}::${x.name} ${JSON.stringify(x.opts)}`).sort();
      expect(options(preview)).toEqual(options(platform()));
    });

    test('policy pack: every rule passes on the update run', () => {
      expect(runPolicies(platform().checked()).violations).toEqual([]);
    });

    test('policy pack: no rule fails the preview of a first up; only rules reading not-yet-known values are skipped, and the first-up guards all run', () => {
      const report = runPolicies((runs.preview as ProgramRun).checked());
      expect(report.violations).toEqual([]);
      for (const n of report.notRun) expect([n.rule, NOT_RUN_IN_FIRST_PREVIEW.has(n.rule)]).toEqual([n.rule, true]);
      const guards = ['public-access-cidrs-routable', 'data-resources-protected', 'required-tags', 'log-groups-have-retention', 'ecr-immutable-scan-on-push'];
      expect(report.notRun.filter((n) => guards.includes(n.rule))).toEqual([]);
      // The deployer's image reference is known before anything exists, so the digest rule checks it in the preview.
      expect(report.notRun.filter((n) => n.rule === 'images-by-digest-outside-dev' && n.urn.includes('codebuild'))).toEqual([]);
    });

    test('policy pack: a public access list with a documentation range is caught, in preview as in update', () => {
      for (const run of [platform(), runs.preview as ProgramRun]) {
        const mutated = run.checked().map((r) => (r.type === 'eks:index:Cluster' ? withProps(r, { publicAccessCidrs: ['203.0.113.0/24'] }) : r));
        expect(runPolicies(mutated).violations.map((v) => v.message)).toEqual([expect.stringContaining('203.0.113.0/24 lies in 203.0.113.0/24, documentation TEST-NET-3 (RFC 5737)')]);
      }
    });

    test(`policy pack: an unprotected lake ${e.stack === 'dev' ? 'passes in dev' : `is caught in ${e.stack}`}`, () => {
      const mutated = platform().checked().map((r) => (r.type === 'aws:s3/bucket:Bucket' ? { ...r, opts: { protect: false } } : r));
      const caught = runPolicies(mutated).violations.filter((v) => v.rule === 'data-resources-protected');
      expect(caught.map((v) => v.message)).toEqual(e.stack === 'dev' ? [] : [expect.stringMatching(/^lake \(aws:s3\/bucket:Bucket, (stage|prod)\) is not protected/)]);
    });

    test('policy pack: moving a node group into a public subnet is caught', () => {
      const run = platform();
      const publicIds = run.ofType('aws:ec2/subnet:Subnet').filter((s) => /public/.test(s.name)).map((s) => s.id);
      const mutated = run.checked().map((r) => (r.type === 'eks:index:ManagedNodeGroup' ? withProps(r, { subnetIds: [publicIds[0]] }) : r));
      expect(runPolicies(mutated).violations.map((v) => v.message)).toEqual(
        expect.arrayContaining([expect.stringMatching(new RegExp(`places nodes in public subnet\\(s\\) ${publicIds[0]}`))]),
      );
    });
  });
}

