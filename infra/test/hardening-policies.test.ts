/**
 * The hardening rules (issue 16): each passes on the real stacks (prod here; every stack in
 * stack-*.test.ts) and catches its violation on a mutated copy of the real resources and on
 * hand-made ones. Resource props are update-run outputs; the first-up preview runs them in
 * stack-assertions.ts.
 */
import { AUTOSCALER_CONFIG, DIGEST, releaseImages, runProgram, withProps, type ProgramRun } from './harness';
import { DEMO_ENDPOINT } from './stack-assertions';
import { runPolicies } from './policy-engine';
import type { CheckedResource } from '../policies/rules';
import { interfaceEndpointPolicy } from '../network';
import { statementApplies } from '../policies/iam-eval';

let prod: ProgramRun;
let dev: ProgramRun;
let demo: ProgramRun;
beforeAll(async () => {
  demo = await runProgram('app', 'dev', { overrides: { 'pricesense:app': JSON.stringify({ image: { digest: DIGEST }, ...DEMO_ENDPOINT }), ...AUTOSCALER_CONFIG } });
  prod = await runProgram('platform', 'prod', { overrides: { 'pricesense:images': releaseImages() } });
  dev = await runProgram('platform', 'dev', { overrides: { 'pricesense:images': releaseImages() } });
});

type Mutate = (r: CheckedResource) => CheckedResource;
/** Violations of one rule on the run's resources after `mutate`. */
function caught(run: ProgramRun, rule: string, mutate: Mutate = (r) => r): string[] {
  return runPolicies(run.checked().map(mutate)).violations.filter((v) => v.rule === rule).map((v) => v.message);
}
const onType = (type: string, props: Record<string, unknown>): Mutate => (r) => (r.type === type ? withProps(r, props) : r);

describe('control plane', () => {
  test('eks-no-public-endpoint-outside-dev: a public endpoint in prod; an open one in dev', () => {
    expect(caught(prod, 'eks-no-public-endpoint-outside-dev')).toEqual([]);
    expect(caught(prod, 'eks-no-public-endpoint-outside-dev', onType('eks:index:Cluster', { endpointPublicAccess: true, publicAccessCidrs: ['81.2.69.160/27'] })))
      .toEqual([expect.stringContaining('cluster (prod): public API endpoint')]);
    expect(caught(dev, 'eks-no-public-endpoint-outside-dev', onType('eks:index:Cluster', { endpointPublicAccess: true, publicAccessCidrs: ['81.2.69.160/27'] }))).toEqual([]);
    expect(caught(dev, 'eks-no-public-endpoint-outside-dev', onType('eks:index:Cluster', { endpointPublicAccess: true, publicAccessCidrs: ['0.0.0.0/0'] })))
      .toEqual([expect.stringContaining('not open to 0.0.0.0/0')]);
  });

  test('eks-secrets-encrypted: no key on the cluster; a key without rotation', () => {
    expect(caught(prod, 'eks-secrets-encrypted')).toEqual([]);
    const noKey: Mutate = (r) => (r.type === 'eks:index:Cluster' ? { ...r, props: Object.fromEntries(Object.entries(r.props).filter(([k]) => k !== 'encryptionConfigKeyArn')) } : r);
    expect(caught(prod, 'eks-secrets-encrypted', noKey)).toEqual([expect.stringContaining('no encryptionConfigKeyArn')]);
    expect(caught(prod, 'eks-secrets-encrypted', onType('aws:kms/key:Key', { enableKeyRotation: false }))).toEqual(
      expect.arrayContaining([expect.stringContaining('KMS key cluster-secrets does not rotate')]),
    );
  });

  test('eks-control-plane-logs: audit log turned off', () => {
    expect(caught(prod, 'eks-control-plane-logs')).toEqual([]);
    expect(caught(prod, 'eks-control-plane-logs', onType('eks:index:Cluster', { enabledClusterLogTypes: ['api'] }))).toEqual([expect.stringContaining('audit, authenticator not enabled')]);
  });

  test('eks-upgrade-policy-standard: the pulumi-eks default (unset, EXTENDED)', () => {
    expect(caught(prod, 'eks-upgrade-policy-standard')).toEqual([]);
    expect(caught(prod, 'eks-upgrade-policy-standard', onType('eks:index:Cluster', { upgradePolicy: undefined }))).toEqual([expect.stringContaining('unset (EXTENDED)')]);
  });
});

describe('egress', () => {
  test('vpc-endpoint-policy-scoped: an endpoint without a policy; a policy open to every account', () => {
    expect(caught(prod, 'vpc-endpoint-policy-scoped')).toEqual([]);
    const s3 = (r: CheckedResource): boolean => r.type === 'aws:ec2/vpcEndpoint:VpcEndpoint' && /-s3$/.test(r.name);
    expect(caught(prod, 'vpc-endpoint-policy-scoped', (r) => (s3(r) ? withProps(r, { policy: undefined }) : r))).toEqual([expect.stringContaining('VPC endpoint network-s3 has no policy')]);
    const open = JSON.stringify({ Statement: [{ Sid: 'All', Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: '*' }] });
    expect(caught(prod, 'vpc-endpoint-policy-scoped', (r) => (s3(r) ? withProps(r, { policy: open }) : r))).toEqual([expect.stringContaining('statement All allows "*" resources without an account')]);
    const org = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*', Condition: { StringEquals: { 'aws:ResourceOrgID': 'o-abc' } } }] });
    expect(caught(prod, 'vpc-endpoint-policy-scoped', (r) => (s3(r) ? withProps(r, { policy: org }) : r))).toEqual([]);
  });
});

describe('nodes and pods', () => {
  test('nodes-imdsv2-hop-limit-1: hop limit 2, IMDSv1 allowed, a node group without a launch template', () => {
    expect(caught(prod, 'nodes-imdsv2-hop-limit-1')).toEqual([]);
    const lt = 'aws:ec2/launchTemplate:LaunchTemplate';
    expect(caught(prod, 'nodes-imdsv2-hop-limit-1', onType(lt, { metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 2 } })))
      .toEqual([expect.stringContaining('httpPutResponseHopLimit must be 1, is 2'), expect.stringContaining('httpPutResponseHopLimit must be 1, is 2')]);
    expect(caught(prod, 'nodes-imdsv2-hop-limit-1', onType(lt, { metadataOptions: { httpTokens: 'optional', httpPutResponseHopLimit: 1 } }))).toHaveLength(2);
    expect(caught(prod, 'nodes-imdsv2-hop-limit-1', onType('eks:index:ManagedNodeGroup', { launchTemplate: undefined }))).toEqual([
      expect.stringContaining('cluster-base: no launch template'), expect.stringContaining('cluster-burst: no launch template'),
    ]);
  });

  test('node-role-managed-policies: the CNI policy or ECR ReadOnly back on the node role', () => {
    expect(caught(prod, 'node-role-managed-policies')).toEqual([]);
    const swap = (policy: string): Mutate => (r) => (r.name === 'cluster-node-AmazonEC2ContainerRegistryPullOnly' ? withProps(r, { policyArn: `arn:aws:iam::aws:policy/${policy}` }) : r);
    expect(caught(prod, 'node-role-managed-policies', swap('AmazonEKS_CNI_Policy'))).toEqual([expect.stringMatching(/AmazonEKS_CNI_Policy is attached to node role cluster-node/)]);
    expect(caught(prod, 'node-role-managed-policies', swap('AmazonEC2ContainerRegistryReadOnly'))).toHaveLength(1);
    // The CNI policy on the aws-node IRSA role is where it belongs.
    expect(prod.one('aws:iam/rolePolicyAttachment:RolePolicyAttachment', 'cluster-vpc-cni').inputs.policyArn).toBe('arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy');
  });

  test('cost-tags-reach-billed-resources: a launch template without tag specifications for instances and volumes', () => {
    expect(caught(prod, 'cost-tags-reach-billed-resources')).toEqual([]);
    const lt = 'aws:ec2/launchTemplate:LaunchTemplate';
    expect(caught(prod, 'cost-tags-reach-billed-resources', onType(lt, { tagSpecifications: [{ resourceType: 'instance', tags: { project: 'pricesense' } }] }))).toEqual(
      expect.arrayContaining([expect.stringContaining('instances it launches miss tag(s) stack, owner, cost-center'), expect.stringContaining('volumes it launches miss tag(s) project, stack, owner, cost-center')]),
    );
  });
});

describe('demo load balancer', () => {
  const svc = 'kubernetes:core/v1:Service';
  const withSpec = (spec: Record<string, unknown>): Mutate => (r) => (r.type === svc ? withProps(r, { spec: { ...(r.props.spec as object), ...spec } }) : r);

  test('load-balancer-source-ranges: no source ranges; 0.0.0.0/0', () => {
    expect(caught(demo, 'load-balancer-source-ranges')).toEqual([]);
    expect(caught(demo, 'load-balancer-source-ranges', withSpec({ loadBalancerSourceRanges: undefined }))).toEqual([expect.stringContaining('without loadBalancerSourceRanges is open to the internet')]);
    expect(caught(demo, 'load-balancer-source-ranges', withSpec({ loadBalancerSourceRanges: ['81.2.69.160/27', '0.0.0.0/0'] }))).toEqual([expect.stringContaining('includes 0.0.0.0/0')]);
  });

  test('cost-tags-reach-billed-resources: a load balancer without the tags annotation', () => {
    expect(caught(demo, 'cost-tags-reach-billed-resources')).toEqual([]);
    const untagged: Mutate = (r) => (r.type === svc ? withProps(r, { metadata: { ...(r.props.metadata as object), annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' } } }) : r);
    expect(caught(demo, 'cost-tags-reach-billed-resources', untagged)).toEqual([expect.stringContaining('its load balancer misses tag(s) project, stack, owner, cost-center')]);
  });
});

describe('IAM and SageMaker', () => {
  test('iam-trust-policy-conditions: a service trust without SourceAccount; an OIDC trust without aud', () => {
    expect(caught(prod, 'iam-trust-policy-conditions')).toEqual([]);
    const bare = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { Service: 'sagemaker.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
    expect(caught(prod, 'iam-trust-policy-conditions', (r) => (r.type === 'aws:iam/role:Role' && r.name === 'models-sagemaker' ? withProps(r, { assumeRolePolicy: bare }) : r)))
      .toEqual(['models-sagemaker: trust in sagemaker.amazonaws.com without an aws:SourceAccount or aws:SourceArn condition']);
    const noAud = (r: CheckedResource): CheckedResource => {
      if (r.type !== 'aws:iam/role:Role' || r.name !== 'api-irsa') return r;
      const doc = JSON.parse(String(r.props.assumeRolePolicy)) as { Statement: { Condition: { StringEquals: Record<string, string> } }[] };
      const eq = doc.Statement[0].Condition.StringEquals;
      for (const k of Object.keys(eq)) if (k.endsWith(':aud')) delete eq[k];
      return withProps(r, { assumeRolePolicy: JSON.stringify(doc) });
    };
    expect(caught(prod, 'iam-trust-policy-conditions', noAud)).toEqual(['api-irsa: OIDC trust without StringEquals on aud']);
  });

  test('sagemaker-jobs-network-isolated: a processing and a training step on the open network', () => {
    expect(caught(prod, 'sagemaker-jobs-network-isolated')).toEqual([]);
    const open: Mutate = (r) => {
      if (r.type !== 'aws:sagemaker/pipeline:Pipeline') return r;
      const def = JSON.parse(String(r.props.pipelineDefinition)) as { Steps: { Type: string; Arguments: Record<string, unknown> }[] };
      for (const step of def.Steps) {
        delete step.Arguments.NetworkConfig;
        delete step.Arguments.EnableNetworkIsolation;
      }
      return withProps(r, { pipelineDefinition: JSON.stringify(def) });
    };
    expect(caught(prod, 'sagemaker-jobs-network-isolated', open)).toEqual([
      expect.stringContaining('processing step Etl has neither'), expect.stringContaining('training step Train has neither'), expect.stringContaining('processing step Evaluate has neither'),
    ]);
  });

  test('flow logs on the VPC, the alert topic encrypted with a rotated key of ours', () => {
    const flow = prod.one('aws:ec2/flowLog:FlowLog').inputs;
    expect(flow).toMatchObject({ vpcId: prod.one('aws:ec2/vpc:Vpc').id, trafficType: 'ALL', logDestinationType: 'cloud-watch-logs' });
    expect(flow.logDestination).toBe(prod.one('aws:cloudwatch/logGroup:LogGroup', 'network-flow-logs').state.arn);
    const key = prod.one('aws:kms/key:Key', 'monitoring-alerts');
    expect(prod.one('aws:sns/topic:Topic').inputs.kmsMasterKeyId).toBe(key.state.arn);
    const services = (JSON.parse(String(key.inputs.policy)) as { Statement: { Principal: { Service?: string[] } }[] }).Statement.flatMap((s) => s.Principal.Service ?? []);
    expect(services.sort()).toEqual(['budgets.amazonaws.com', 'cloudwatch.amazonaws.com', 'events.amazonaws.com']);
  });
});

describe('environment boundary', () => {
  test('platform-roles-bounded: every platform role is under /pricesense-<env>/ with that environment\'s boundary; a role without, or with another environment\'s, is caught', () => {
    const roles = prod.checked().filter((r) => r.type === 'aws:iam/role:Role');
    expect(roles.length).toBeGreaterThanOrEqual(9);
    for (const r of roles) expect([r.name, r.props.path, r.props.permissionsBoundary]).toEqual([r.name, '/pricesense-prod/', 'arn:aws:iam::123456789012:policy/pricesense-delivery/pricesense-prod-boundary']);
    expect(caught(prod, 'platform-roles-bounded')).toEqual([]);
    expect(caught(prod, 'platform-roles-bounded', (r) => (r.name === 'api-irsa' ? withProps(r, { path: '/', permissionsBoundary: undefined }) : r)))
      .toEqual([expect.stringContaining('api-irsa: path / is not an environment\'s')]);
    expect(caught(prod, 'platform-roles-bounded', (r) => (r.name === 'api-irsa' ? withProps(r, { permissionsBoundary: 'arn:aws:iam::123456789012:policy/pricesense-delivery/pricesense-dev-boundary' }) : r)))
      .toEqual([expect.stringContaining('is not prod\'s')]);
    expect(caught(prod, 'platform-roles-bounded', (r) => (r.name === 'api-irsa' ? withProps(r, { path: '/pricesense-dev/', permissionsBoundary: 'arn:aws:iam::123456789012:policy/pricesense-delivery/pricesense-dev-boundary' }) : r)))
      .toEqual([expect.stringContaining('a prod resource under the dev path')]);
  });
});

describe('autoscaling', () => {
  test('cluster-autoscaler-present-and-scoped: no association; no autoscaling endpoint; capacity changes on every group', () => {
    expect(caught(prod, 'cluster-autoscaler-present-and-scoped')).toEqual([]);
    const without = (type: string): Mutate => (r) => (r.type === type ? { ...r, type: 'test:removed' } : r);
    expect(caught(prod, 'cluster-autoscaler-present-and-scoped', without('aws:eks/podIdentityAssociation:PodIdentityAssociation')))
      .toEqual([expect.stringContaining('no Pod Identity association for kube-system/cluster-autoscaler')]);
    expect(caught(prod, 'cluster-autoscaler-present-and-scoped', (r) => (r.type === 'aws:ec2/vpcEndpoint:VpcEndpoint' && String(r.props.serviceName).endsWith('.autoscaling') ? { ...r, type: 'test:removed' } : r)))
      .toEqual([expect.stringContaining('no autoscaling VPC endpoint')]);
    const unscoped = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['autoscaling:SetDesiredCapacity'], Resource: '*', Condition: { StringEquals: { 'aws:ResourceTag/k8s.io/cluster-autoscaler/enabled': 'true' } } }] });
    expect(caught(prod, 'cluster-autoscaler-present-and-scoped', (r) => (r.type === 'aws:iam/rolePolicy:RolePolicy' && r.name === 'cluster-autoscaler' ? withProps(r, { policy: unscoped }) : r)))
      .toEqual([expect.stringContaining('cluster-autoscaler: autoscaling:SetDesiredCapacity without an aws:ResourceTag/k8s.io/cluster-autoscaler/<cluster> condition')]);
    // A role's inline policy is held to the same rule as a RolePolicy.
    expect(caught(prod, 'cluster-autoscaler-present-and-scoped', (r) => (r.type === 'aws:iam/role:Role' && r.name === 'api-irsa' ? withProps(r, { inlinePolicies: [{ name: 'scale', policy: unscoped }] }) : r)))
      .toEqual([expect.stringContaining('api-irsa: autoscaling:SetDesiredCapacity without an aws:ResourceTag/k8s.io/cluster-autoscaler/<cluster> condition')]);
  });

  test('cluster-autoscaler-present-and-scoped, app stack: no autoscaler Deployment; its discovery, region, account or binding missing', () => {
    const rule = 'cluster-autoscaler-present-and-scoped';
    expect(caught(demo, rule)).toEqual([]);
    const autoscaler = (change: (pod: Record<string, unknown>, container: Record<string, unknown>) => void): Mutate => (r) => {
      if (r.name !== 'cluster-autoscaler-deployment') return r;
      const spec = JSON.parse(JSON.stringify(r.props.spec)) as { template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } };
      change(spec.template.spec, spec.template.spec.containers[0]);
      return withProps(r, { spec });
    };
    expect(caught(demo, rule, (r) => (r.name === 'cluster-autoscaler-deployment' ? { ...r, type: 'test:removed' } : r)))
      .toEqual(['no Deployment kube-system/cluster-autoscaler: nothing adds a node when the HPA\'s pods are pending']);
    expect(caught(demo, rule, autoscaler((_, c) => { c.args = ['--cloud-provider=aws', '--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled']; })))
      .toEqual([expect.stringContaining('needs --cloud-provider=aws and --node-group-auto-discovery on the tags')]);
    expect(caught(demo, rule, autoscaler((_, c) => { c.env = []; }))).toEqual([expect.stringContaining('no AWS_REGION')]);
    expect(caught(demo, rule, autoscaler((pod) => { pod.serviceAccountName = 'default'; }))).toEqual([expect.stringContaining('runs as default')]);
    expect(caught(demo, rule, (r) => (r.type === 'kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding' ? { ...r, type: 'test:removed' } : r)))
      .toEqual([expect.stringContaining('no ClusterRoleBinding for kube-system/cluster-autoscaler')]);
  });
});

describe('STS endpoint policy and web identity (issue 16 concern)', () => {
  test('AssumeRoleWithWebIdentity, which has no calling principal, is allowed for this account\'s roles and for no other account\'s', () => {
    const statements = JSON.parse(interfaceEndpointPolicy('123456789012')).Statement as Record<string, unknown>[];
    const allowed = (resourceAccount: string): boolean => statements.some((st) => st.Effect === 'Allow' && statementApplies(st, {
      action: 'sts:AssumeRoleWithWebIdentity',
      resource: `arn:aws:iam::${resourceAccount}:role/pricesense-prod/api-irsa`,
      context: { 'aws:ResourceAccount': resourceAccount },
    }));
    expect(allowed('123456789012')).toBe(true);
    expect(allowed('999999999999')).toBe(false);
  });
});
