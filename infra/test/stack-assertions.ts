/**
 * The properties every stack must have, asserted against one mocked run of the real
 * program. Each stack's test file runs the program once and calls describeStack with
 * what differs between tiers.
 */
import { ACCOUNT, REGION, policyDoc, runProgram, type ProgramRun, type Recorded } from './harness';
import { INTERFACE_ENDPOINT_SERVICES } from '../network';
import { RULES, evaluate, REQUIRED_TAGS } from '../policies/rules';
import { describePipeline, type PipelineExpectations } from './pipeline-assertions';

export interface TierExpectations {
  readonly stack: 'dev' | 'stage' | 'prod';
  readonly overrides: Record<string, string>;
  readonly azCount: number;
  readonly endpointAzCount: number;
  readonly logRetentionDays: number;
  readonly hpa: { min: number; max: number; scaleDownWindow: number };
  readonly capacityTypes: string[];
  readonly publicEndpoint: boolean;
  readonly lakeForceDestroy: boolean;
  readonly ecrForceDelete: boolean;
  readonly scaleToZero: boolean;
  readonly image: string;
  readonly pipeline: PipelineExpectations;
}

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => v as Obj;

function container(run: ProgramRun): Obj {
  const dep = run.one('kubernetes:apps/v1:Deployment');
  const spec = o(o(o(o(dep.inputs.spec).template).spec));
  return o((spec.containers as unknown[])[0]);
}

export function describeStack(e: TierExpectations): void {
  describe(`stack ${e.stack}`, () => {
    let run: ProgramRun;
    beforeAll(async () => {
      run = await runProgram(e.stack, e.overrides);
    });

    describePipeline(e.stack, () => run, e.pipeline);

    test('network: VPC 10.0.0.0/16 over the tier AZ count, no NAT gateway anywhere', () => {
      expect(run.one('aws:ec2/vpc:Vpc').inputs).toMatchObject({ cidrBlock: '10.0.0.0/16', enableDnsHostnames: true, enableDnsSupport: true });
      const subnets = run.ofType('aws:ec2/subnet:Subnet');
      expect(subnets.filter((s) => /private/.test(s.name))).toHaveLength(e.azCount);
      expect(subnets.filter((s) => /public/.test(s.name))).toHaveLength(e.azCount);
      expect(new Set(subnets.map((s) => s.inputs.availabilityZone)).size).toBe(e.azCount);
      expect(run.ofType('aws:ec2/natGateway:NatGateway')).toHaveLength(0);
      expect(run.ofType('aws:ec2/eip:Eip')).toHaveLength(0);
      for (const r of run.ofType('aws:ec2/route:Route')) expect(r.inputs.natGatewayId).toBeUndefined();
      expect(subnets.every((s) => s.inputs.mapPublicIpOnLaunch === false)).toBe(true);
    });

    test('network: load balancer subnet tags; only public subnets route to the internet gateway', () => {
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

    test('network: S3 gateway endpoint and every interface endpoint with private DNS and the 443 security group', () => {
      const endpoints = run.ofType('aws:ec2/vpcEndpoint:VpcEndpoint');
      const s3 = endpoints.find((v) => v.inputs.serviceName === `com.amazonaws.${REGION}.s3`);
      expect(s3?.inputs).toMatchObject({ vpcEndpointType: 'Gateway' });
      const privateRt = run.one('aws:ec2/routeTable:RouteTable', /private/).id;
      expect(s3?.inputs.routeTableIds).toEqual([privateRt]);
      const sg = run.one('aws:ec2/securityGroup:SecurityGroup');
      const required = ['ecr.api', 'ecr.dkr', 'sts', 'logs', 'ec2', 'elasticloadbalancing', 'autoscaling', 'monitoring', 'sagemaker.api', 'sagemaker.runtime'];
      expect(INTERFACE_ENDPOINT_SERVICES).toEqual(expect.arrayContaining(required));
      const privateSubnetIds = run.ofType('aws:ec2/subnet:Subnet').filter((s) => /private/.test(s.name)).map((s) => s.id);
      for (const service of INTERFACE_ENDPOINT_SERVICES) {
        const ep = endpoints.find((v) => v.inputs.serviceName === `com.amazonaws.${REGION}.${service}`);
        expect(ep?.inputs).toMatchObject({ vpcEndpointType: 'Interface', privateDnsEnabled: true, securityGroupIds: [sg.id] });
        const subnetIds = ep?.inputs.subnetIds as string[];
        expect(subnetIds).toHaveLength(e.endpointAzCount);
        expect(subnetIds.every((id) => privateSubnetIds.includes(id))).toBe(true);
      }
      expect(run.one('aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule').inputs).toMatchObject({
        securityGroupId: sg.id, ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIpv4: '10.0.0.0/16',
      });
    });

    test('data lake: private, encrypted, versioned, TLS-only, lifecycle rules, destroy behaviour per tier', () => {
      const bucket = run.one('aws:s3/bucket:Bucket');
      expect(bucket.inputs.forceDestroy).toBe(e.lakeForceDestroy);
      expect(run.one('aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock').inputs).toEqual(
        expect.objectContaining({ bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }),
      );
      const sse = run.one('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration').inputs;
      expect(o(o((sse.rules as unknown[])[0]).applyServerSideEncryptionByDefault).sseAlgorithm).toBe('AES256');
      expect(o(run.one('aws:s3/bucketVersioning:BucketVersioning').inputs.versioningConfiguration).status).toBe('Enabled');
      const tls = policyDoc(run.one('aws:s3/bucketPolicy:BucketPolicy').inputs.policy).Statement;
      expect(tls[0]).toMatchObject({ Effect: 'Deny', Principal: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
      const rules = run.one('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration').inputs.rules as Obj[];
      const byPrefix = (p: string): Obj | undefined => rules.find((r) => o(r.filter).prefix === p);
      expect(byPrefix('tmp/')?.expiration).toEqual({ days: 7 });
      expect(byPrefix('logs/')).toMatchObject({ transitions: [{ storageClass: 'STANDARD_IA', days: 30 }], expiration: { days: 365 } });
      expect(byPrefix('raw/')).toMatchObject({ transitions: [{ storageClass: 'GLACIER_IR' }] });
    });

    test('image registry: immutable tags, scan on push, lifecycle policy; force delete only in dev', () => {
      const repo = run.one('aws:ecr/repository:Repository');
      expect(repo.inputs).toMatchObject({ imageTagMutability: 'IMMUTABLE', imageScanningConfiguration: { scanOnPush: true }, forceDelete: e.ecrForceDelete });
      const lifecycle = JSON.parse(String(run.one('aws:ecr/lifecyclePolicy:LifecyclePolicy').inputs.policy)) as { rules: Obj[] };
      expect(lifecycle.rules.map((r) => o(r.selection).tagStatus)).toEqual(['untagged', 'tagged']);
    });

    test('model registry: package group and a SageMaker role scoped to lake prefixes', () => {
      expect(run.one('aws:sagemaker/modelPackageGroup:ModelPackageGroup').inputs.modelPackageGroupName).toBe(`pricesense-${e.stack}`);
      const policy = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'models-sagemaker').inputs.policy).Statement;
      const bucket = run.one('aws:s3/bucket:Bucket').id;
      for (const s of policy.filter((x) => String(x.Action).startsWith('s3:Get') || String(x.Action).startsWith('s3:Put'))) {
        for (const res of s.Resource as string[]) expect(res).toMatch(new RegExp(`^arn:aws:s3:::${bucket}/(raw|silver|gold|artifacts|logs|tmp)/\\*$`));
      }
      const trust = policyDoc(run.ofType('aws:iam/role:Role').find((r) => r.name === 'models-sagemaker')?.inputs.assumeRolePolicy).Statement[0];
      expect(trust).toMatchObject({ Principal: { Service: 'sagemaker.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } });
    });

    test('cluster: private nodes, API auth, OIDC, restricted public endpoint, logging, add-ons', () => {
      const c = run.one('eks:index:Cluster');
      const privateIds = run.ofType('aws:ec2/subnet:Subnet').filter((s) => /private/.test(s.name)).map((s) => s.id);
      expect(c.inputs).toMatchObject({
        name: `pricesense-${e.stack}`,
        authenticationMode: 'API',
        createOidcProvider: true,
        skipDefaultNodeGroup: true,
        nodeAssociatePublicIpAddress: false,
        endpointPrivateAccess: true,
        endpointPublicAccess: true,
        publicAccessCidrs: ['203.0.113.0/24'],
        privateSubnetIds: privateIds,
      });
      expect(c.inputs.enabledClusterLogTypes).toEqual(expect.arrayContaining(['api', 'audit', 'authenticator']));
      const groups = run.ofType('eks:index:ManagedNodeGroup');
      expect(groups.map((g) => g.inputs.capacityType)).toEqual(e.capacityTypes);
      for (const g of groups) expect(g.inputs.subnetIds).toEqual(privateIds);
      const addons = run.ofType('aws:eks/addon:Addon').map((a) => a.inputs.addonName);
      expect(addons).toEqual(expect.arrayContaining(['vpc-cni', 'coredns', 'kube-proxy', 'eks-pod-identity-agent', 'amazon-cloudwatch-observability', 'metrics-server']));
      const insights = run.ofType('aws:eks/addon:Addon').find((a) => a.inputs.addonName === 'amazon-cloudwatch-observability');
      expect(insights?.inputs.podIdentityAssociations).toEqual([expect.objectContaining({ serviceAccount: 'cloudwatch-agent' })]);
    });

    test('app: IRSA trust bound to the service account, read-only on artifacts/ and the model group', () => {
      const c = run.one('eks:index:Cluster');
      const issuer = String(c.state.oidcIssuer);
      const role = run.ofType('aws:iam/role:Role').find((r) => r.name === 'app-irsa') as Recorded;
      const trust = policyDoc(role.inputs.assumeRolePolicy).Statement;
      expect(trust).toHaveLength(1);
      expect(trust[0]).toEqual({
        Effect: 'Allow',
        Principal: { Federated: c.state.oidcProviderArn },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${issuer}:sub`]: 'system:serviceaccount:mlops:pricesense-api', [`${issuer}:aud`]: 'sts.amazonaws.com' } },
      });
      const sa = run.one('kubernetes:core/v1:ServiceAccount');
      expect(o(sa.inputs.metadata)).toMatchObject({ name: 'pricesense-api', namespace: 'mlops', annotations: { 'eks.amazonaws.com/role-arn': role.state.arn } });
      const bucket = run.one('aws:s3/bucket:Bucket').id;
      const statements = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'app-irsa').inputs.policy).Statement;
      const actions = statements.flatMap((s) => s.Action as string[]);
      expect(actions.every((a) => /^(s3:GetObject|s3:ListBucket|sagemaker:(Describe|List)\w+)$/.test(a))).toBe(true);
      expect(statements.find((s) => s.Sid === 'ReadArtifacts')?.Resource).toBe(`arn:aws:s3:::${bucket}/artifacts/*`);
      expect(statements.find((s) => s.Sid === 'DescribeModels')?.Resource).toEqual([
        `arn:aws:sagemaker:${REGION}:${ACCOUNT}:model-package-group/pricesense-${e.stack}`,
        `arn:aws:sagemaker:${REGION}:${ACCOUNT}:model-package/pricesense-${e.stack}/*`,
      ]);
    });

    test('app: deployment image, env, probes, resources, security context, zone spread', () => {
      expect(run.one('kubernetes:core/v1:Namespace').inputs).toMatchObject({ metadata: { name: 'mlops' } });
      const c = container(run);
      const bucket = run.one('aws:s3/bucket:Bucket').id;
      expect(c.image).toBe(e.image);
      expect(c.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
      expect(c.env).toEqual(expect.arrayContaining([
        { name: 'PRICESENSE_REGISTRY', value: `sagemaker://pricesense-${e.stack}` },
        { name: 'PRICESENSE_LAKE', value: `s3://${bucket}` },
        { name: 'AWS_REGION', value: REGION },
        { name: 'PORT', value: '8080' },
      ]));
      expect(o(c.livenessProbe).httpGet).toEqual({ path: '/health', port: 'http' });
      expect(o(c.readinessProbe).httpGet).toEqual({ path: '/ready', port: 'http' });
      expect(o(c.resources)).toMatchObject({ requests: { cpu: expect.any(String), memory: expect.any(String) }, limits: { cpu: expect.any(String), memory: expect.any(String) } });
      expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      const podSpec = o(o(o(run.one('kubernetes:apps/v1:Deployment').inputs.spec).template).spec);
      expect(o(podSpec.securityContext).runAsNonRoot).toBe(true);
      const spread = (podSpec.topologySpreadConstraints as Obj[]).find((t) => t.topologyKey === 'topology.kubernetes.io/zone');
      expect(spread).toMatchObject({ maxSkew: 1, whenUnsatisfiable: e.stack === 'prod' ? 'DoNotSchedule' : 'ScheduleAnyway' });
    });

    test('app: service type, HPA bounds with scale-down stabilization, PDB; endpoint output', () => {
      const svc = o(run.one('kubernetes:core/v1:Service').inputs.spec);
      expect(svc.type).toBe(e.publicEndpoint ? 'LoadBalancer' : 'ClusterIP');
      const hpa = o(run.one('kubernetes:autoscaling/v2:HorizontalPodAutoscaler').inputs.spec);
      expect(hpa).toMatchObject({ minReplicas: e.hpa.min, maxReplicas: e.hpa.max });
      expect(o(o(hpa.behavior).scaleDown).stabilizationWindowSeconds).toBe(e.hpa.scaleDownWindow);
      expect(o(run.one('kubernetes:policy/v1:PodDisruptionBudget').inputs.spec).maxUnavailable).toBe(1);
      if (e.publicEndpoint) expect(run.outputs.apiEndpoint).toMatch(/^http:\/\/.+\.elb\.us-east-1\.amazonaws\.com$/);
      else expect(run.outputs.apiEndpoint).toBeNull();
    });

    test('monitoring: log retention per tier on every log group, alarms to the SNS topic, dashboard', () => {
      const groups = run.ofType('aws:cloudwatch/logGroup:LogGroup');
      expect(groups.map((g) => g.inputs.name)).toEqual(expect.arrayContaining([`/aws/eks/pricesense-${e.stack}/cluster`, `/aws/containerinsights/pricesense-${e.stack}/application`]));
      for (const g of groups) expect(g.inputs.retentionInDays).toBe(e.logRetentionDays);
      const topic = run.one('aws:sns/topic:Topic').state.arn;
      const alarms = run.ofType('aws:cloudwatch/metricAlarm:MetricAlarm');
      expect(alarms.map((a) => a.name).sort()).toEqual(['monitoring-api-5xx-rate', 'monitoring-api-p99-latency', 'monitoring-node-cpu', 'monitoring-pod-restarts']);
      for (const a of alarms) expect(a.inputs.alarmActions).toEqual([topic]);
      expect(run.one('aws:cloudwatch/metricAlarm:MetricAlarm', 'monitoring-api-p99-latency').inputs.extendedStatistic).toBe('p99');
      expect(run.ofType('aws:cloudwatch/dashboard:Dashboard')).toHaveLength(1);
      const errors = run.one('aws:cloudwatch/logMetricFilter:LogMetricFilter', 'monitoring-errors-5xx').inputs;
      expect(errors.logGroupName).toBe(`/aws/containerinsights/pricesense-${e.stack}/application`);
      expect(errors.pattern).toContain('($.log_processed.msg = "request")');
      expect(errors.pattern).toContain('($.log_processed.status >= 500)');
      expect(o(run.one('aws:cloudwatch/logMetricFilter:LogMetricFilter', 'monitoring-latency').inputs.metricTransformation).value).toBe('$.log_processed.ms');
    });

    test('cost: budget with thresholds; scale-to-zero schedules only where demo hours are set', () => {
      const budget = run.one('aws:budgets/budget:Budget').inputs;
      expect(budget).toMatchObject({ budgetType: 'COST', timeUnit: 'MONTHLY', limitUnit: 'USD' });
      expect((budget.notifications as Obj[]).length).toBeGreaterThanOrEqual(2);
      const schedules = run.ofType('aws:scheduler/schedule:Schedule');
      if (!e.scaleToZero) {
        expect(schedules).toHaveLength(0);
        return;
      }
      expect(schedules.map((s) => s.name).sort()).toEqual(['cost-spot-down', 'cost-spot-up']);
      const down = run.one('aws:scheduler/schedule:Schedule', 'cost-spot-down').inputs;
      expect(down.scheduleExpression).toBe('cron(0 20 ? * MON-FRI *)');
      expect(o(down.target).arn).toBe('arn:aws:scheduler:::aws-sdk:eks:updateNodegroupConfig');
      expect(JSON.parse(String(o(down.target).input))).toEqual({ ClusterName: 'pricesense-dev', NodegroupName: 'pricesense-dev-spot', ScalingConfig: { MinSize: 0, MaxSize: 3, DesiredSize: 0 } });
      const up = JSON.parse(String(o(run.one('aws:scheduler/schedule:Schedule', 'cost-spot-up').inputs.target).input)) as Obj;
      expect(o(up.ScalingConfig).DesiredSize).toBe(2);
      expect(run.one('eks:index:ManagedNodeGroup').inputs.ignoreScalingChanges).toBe(true);
    });

    test('tags: every AWS resource goes through the one provider whose default tags carry the required keys', () => {
      const provider = run.one('pulumi:providers:aws');
      // Provider settings reach the engine as JSON text.
      const tags = o(o(JSON.parse(String(provider.inputs.defaultTags))).tags);
      expect(tags).toEqual({ project: 'pricesense', stack: e.stack, owner: 'ml-platform', 'cost-center': 'cc-4711' });
      expect(Object.keys(tags)).toEqual([...REQUIRED_TAGS]);
      expect(provider.inputs.region).toBe(REGION);
      const aws = run.resources.filter((r) => r.type.startsWith('aws:'));
      const strays = aws.filter((r) => r.provider?.split('::').pop() !== provider.id).map((r) => `${r.type} ${r.name}`);
      expect(strays).toEqual([]);
    });

    test('outputs: the names other parts consume', () => {
      const bucket = run.one('aws:s3/bucket:Bucket').id;
      expect(run.outputs).toMatchObject({
        ecrRepositoryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/pricesense-${e.stack}/api`,
        lakeBucket: bucket,
        modelPackageGroup: `pricesense-${e.stack}`,
        clusterName: `pricesense-${e.stack}`,
      });
      expect(typeof run.outputs.kubeconfig).toBe('string');
    });

    test('policy pack: every rule passes on this stack', () => {
      const resources = run.checked();
      const violations = RULES.flatMap((rule) => evaluate(rule, resources));
      expect(violations).toEqual([]);
    });

    test('policy pack: moving a node group into a public subnet is caught', () => {
      const resources = run.checked();
      const publicIds = run.ofType('aws:ec2/subnet:Subnet').filter((s) => /public/.test(s.name)).map((s) => s.id);
      const mutated = resources.map((r) => (r.type === 'eks:index:ManagedNodeGroup' ? { ...r, props: { ...r.props, subnetIds: [publicIds[0]] } } : r));
      const rule = RULES.find((r) => r.name === 'nodes-in-private-subnets');
      expect(rule && evaluate(rule, mutated).map((v) => v.message)).toEqual(
        expect.arrayContaining([expect.stringMatching(new RegExp(`places nodes in public subnet\\(s\\) ${publicIds[0]}`))]),
      );
    });
  });
}
