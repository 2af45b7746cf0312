/**
 * The app project (the API's Kubernetes objects), asserted against each stack's mocked runs,
 * update and preview: called from describeStack so each program runs once per stack file.
 */
import { AUTOSCALER_DIGEST, DIGEST, REGION, REGISTRY, platformOutputsFor, withProps, type ProgramRun } from './harness';
import { runPolicies } from './policy-engine';

export interface AppExpectations {
  readonly hpa: { min: number; max: number; scaleDownWindow: number };
  readonly publicEndpoint: boolean;
  readonly zoneSpreadHard: boolean;
}

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => v as Obj;

function podSpec(run: ProgramRun): Obj {
  return o(o(o(run.one('kubernetes:apps/v1:Deployment', 'app-api').inputs.spec).template).spec);
}

export function describeApp(stack: string, getRun: () => ProgramRun, getPreview: () => ProgramRun, e: AppExpectations): void {
  describe('app project', () => {
    const image = `${REGISTRY}/pricesense/api@${DIGEST}`;

    test('only Kubernetes objects, all through the one kubeconfig from the platform stack of the same environment', () => {
      const run = getRun();
      expect(run.one('pulumi:pulumi:StackReference').inputs.name).toBe(`organization/pricesense/${stack}`);
      const provider = run.one('pulumi:providers:kubernetes');
      expect(provider.inputs.kubeconfig).toBe(platformOutputsFor(stack).kubeconfig);
      const others = run.resources.filter((r) => !/^(kubernetes:|pulumi:|pricesense:)/.test(r.type)).map((r) => r.type);
      expect(others).toEqual([]); // no AWS resource: the in-VPC deployer needs no IAM rights
      const strays = run.resources.filter((r) => r.type.startsWith('kubernetes:') && r.provider?.split('::').pop() !== provider.id).map((r) => r.name);
      expect(strays).toEqual([]);
    });

    test('the Deployment runs the API image by digest, with the platform\'s registry, lake, region and IRSA role', () => {
      const run = getRun();
      const container = o((podSpec(run).containers as unknown[])[0]);
      const platform = platformOutputsFor(stack);
      expect(container.image).toBe(image);
      expect(run.outputs.apiImage).toBe(image);
      expect(container.env).toEqual(expect.arrayContaining([
        { name: 'PRICESENSE_REGISTRY', value: platform.registryUri },
        { name: 'PRICESENSE_LAKE', value: platform.lakeUri },
        { name: 'AWS_REGION', value: REGION },
        { name: 'PORT', value: '8080' },
        // Metrics: EMF records to the Container Insights agent on the pod's node, in the namespace and log group the platform's alarms read.
        { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
        { name: 'PRICESENSE_EMF', value: 'tcp://$(HOST_IP):25888' },
        { name: 'PRICESENSE_EMF_NAMESPACE', value: `pricesense/${stack}` },
        { name: 'PRICESENSE_EMF_LOG_GROUP', value: `/pricesense/${stack}/api-metrics` },
      ]));
      expect(o(run.one('kubernetes:core/v1:ServiceAccount', 'app-sa').inputs.metadata)).toMatchObject({
        name: 'pricesense-api', namespace: 'mlops', annotations: { 'eks.amazonaws.com/role-arn': platform.apiRoleArn },
      });
      expect(o(container.livenessProbe).httpGet).toEqual({ path: '/health', port: 'http' });
      expect(o(container.readinessProbe).httpGet).toEqual({ path: '/ready', port: 'http' });
      // Deletion: keep serving while routing stops (preStop), then drain within the grace period.
      const preStop = Number(o(o(container.lifecycle).preStop).sleep && o(o(o(container.lifecycle).preStop).sleep).seconds);
      const drain = /^(\d+)s$/.exec(String((container.env as Obj[]).find((v) => v.name === 'PRICESENSE_SHUTDOWN_TIMEOUT')?.value));
      expect(preStop).toBeGreaterThanOrEqual(5);
      expect(drain).not.toBeNull();
      expect(podSpec(run).terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + Number(drain?.[1]) + 2);
      expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      const spread = (podSpec(run).topologySpreadConstraints as Obj[]).find((t) => t.topologyKey === 'topology.kubernetes.io/zone');
      expect(spread).toMatchObject({ maxSkew: 1, whenUnsatisfiable: e.zoneSpreadHard ? 'DoNotSchedule' : 'ScheduleAnyway' });
    });

    test('pods: no Kubernetes API token; default-deny in the namespace with explicit allows (API port in; DNS, HTTPS and the EMF agent out)', () => {
      const run = getRun();
      expect(run.one('kubernetes:core/v1:ServiceAccount', 'app-sa').inputs.automountServiceAccountToken).toBe(false);
      expect(podSpec(run).automountServiceAccountToken).toBe(false);
      const policies = run.ofType('kubernetes:networking.k8s.io/v1:NetworkPolicy').map((p) => ({ name: o(p.inputs.metadata).name, spec: o(p.inputs.spec) }));
      expect(policies.find((p) => p.name === 'default-deny')?.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
      const api = policies.find((p) => p.name === 'pricesense-api')?.spec;
      expect(api?.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
      const egressPorts = (api?.egress as Obj[]).flatMap((rule) => (rule.ports as Obj[]).map((p) => `${String(p.protocol)}/${String(p.port)}`));
      expect(egressPorts.sort()).toEqual(['TCP/25888', 'TCP/443', 'TCP/53', 'UDP/53']);
    });

    test('the EMF endpoint the API is given is one its NetworkPolicy lets it reach (host and port read from the env, not restated)', () => {
      const run = getRun();
      const env = o((podSpec(run).containers as unknown[])[0]).env as Obj[];
      const value = (name: string) => env.find((e) => e.name === name);
      const m = /^tcp:\/\/\$\((\w+)\):(\d+)$/.exec(String(value('PRICESENSE_EMF')?.value));
      expect(m).not.toBeNull();
      const [, hostVar, port] = m!;
      // Kubernetes expands $(VAR) only from variables defined before it; this one is the node's address.
      expect(env.findIndex((e) => e.name === hostVar)).toBeLessThan(env.findIndex((e) => e.name === 'PRICESENSE_EMF'));
      expect(value(hostVar)?.valueFrom).toEqual({ fieldRef: { fieldPath: 'status.hostIP' } });
      const api = o(run.ofType('kubernetes:networking.k8s.io/v1:NetworkPolicy').find((p) => o(p.inputs.metadata).name === 'pricesense-api')!.inputs.spec);
      const toAgent = (api.egress as Obj[]).filter((rule) => (rule.ports as Obj[]).some((p) => p.protocol === 'TCP' && p.port === Number(port)));
      expect(toAgent).toHaveLength(1);
      // Every node address (the platform's node subnets), nothing else.
      expect(toAgent[0].to).toEqual((platformOutputsFor(stack).nodeCidrs as string[]).map((cidr) => ({ ipBlock: { cidr } })));
    });

    test(e.publicEndpoint ? 'demo load balancer: named source CIDRs, TLS with the ACM certificate, access logs to the lake\'s logs/lb/, cost tags' : 'no load balancer', () => {
      const svc = getRun().one('kubernetes:core/v1:Service').inputs;
      const annotations = o(o(svc.metadata).annotations);
      if (!e.publicEndpoint) {
        expect(annotations).toEqual({});
        return;
      }
      const b = 'service.beta.kubernetes.io/aws-load-balancer';
      expect(o(svc.spec).loadBalancerSourceRanges).toEqual(['81.2.69.160/27']);
      expect(o(svc.spec).ports).toEqual([expect.objectContaining({ port: 443, targetPort: 'http' })]);
      expect(annotations).toMatchObject({
        [`${b}-ssl-cert`]: expect.stringMatching(/^arn:aws:acm:/),
        [`${b}-ssl-ports`]: '443',
        [`${b}-access-log-enabled`]: 'true',
        [`${b}-access-log-s3-bucket-name`]: platformOutputsFor(stack).lakeBucket,
        [`${b}-access-log-s3-bucket-prefix`]: `logs/lb/${stack}`,
      });
      expect(String(annotations[`${b}-additional-resource-tags`]).split(',').sort()).toEqual([`cost-center=cc-4711`, 'owner=ml-platform', 'project=pricesense', `stack=${stack}`, `tier=${stack}`]);
      expect(getRun().outputs.apiEndpoint).toMatch(/^https:\/\//);
    });

    test('every object carries the tier label the policy pack reads', () => {
      const run = getRun();
      for (const r of run.resources.filter((x) => x.type.startsWith('kubernetes:'))) {
        expect([r.name, o(o(r.inputs.metadata).labels)['pricesense/tier']]).toEqual([r.name, stack]);
      }
    });

    test('service type, HPA bounds with scale-down stabilization, PDB; endpoint output', () => {
      const run = getRun();
      const svc = o(run.one('kubernetes:core/v1:Service').inputs.spec);
      expect(svc.type).toBe(e.publicEndpoint ? 'LoadBalancer' : 'ClusterIP');
      const hpa = o(run.one('kubernetes:autoscaling/v2:HorizontalPodAutoscaler').inputs.spec);
      expect(hpa).toMatchObject({ minReplicas: e.hpa.min, maxReplicas: e.hpa.max });
      expect(o(o(hpa.behavior).scaleDown).stabilizationWindowSeconds).toBe(e.hpa.scaleDownWindow);
      expect(o(run.one('kubernetes:policy/v1:PodDisruptionBudget').inputs.spec).maxUnavailable).toBe(1);
      expect(run.one('kubernetes:apps/v1:Deployment', 'app-api').opts.ignoreChanges).toEqual(['spec.replicas']);
      if (e.publicEndpoint) expect(run.outputs.apiEndpoint).toMatch(/^https:\/\/.+\.elb\.us-east-1\.amazonaws\.com$/);
      else expect(run.outputs.apiEndpoint).toBeNull();
    });

    test('Cluster Autoscaler: the mirrored image by digest, auto-discovery of this cluster\'s groups, the region, non-root and read-only', () => {
      const run = getRun();
      const deployment = run.one('kubernetes:apps/v1:Deployment', 'cluster-autoscaler-deployment').inputs;
      expect(o(deployment.metadata)).toMatchObject({ namespace: 'kube-system', name: 'cluster-autoscaler' });
      const pod = o(o(o(deployment.spec).template).spec);
      expect(pod).toMatchObject({ priorityClassName: 'system-cluster-critical', serviceAccountName: 'cluster-autoscaler', securityContext: { runAsNonRoot: true, runAsUser: 65534 } });
      const container = o((pod.containers as unknown[])[0]);
      const autoscalerImage = `${REGISTRY}/mirror/cluster-autoscaler:v1.33.0@${AUTOSCALER_DIGEST}`;
      expect(container.image).toBe(autoscalerImage);
      expect(run.outputs.clusterAutoscalerImage).toBe(autoscalerImage);
      expect(container.args).toEqual(expect.arrayContaining([
        '--cloud-provider=aws',
        `--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/pricesense-${stack}`,
        '--balance-similar-node-groups',
        '--skip-nodes-with-system-pods=false',
        '--expander=least-waste',
      ]));
      expect(container.env).toEqual([{ name: 'AWS_REGION', value: REGION }]);
      expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      expect(o(container.resources)).toEqual({ requests: { cpu: '100m', memory: '600Mi' }, limits: { cpu: '100m', memory: '600Mi' } });
      // The service account the platform's Pod Identity association names; no IRSA annotation.
      expect(o(run.one('kubernetes:core/v1:ServiceAccount', 'cluster-autoscaler-sa').inputs.metadata)).toMatchObject({ namespace: 'kube-system', name: 'cluster-autoscaler' });
      expect(o(o(run.one('kubernetes:core/v1:ServiceAccount', 'cluster-autoscaler-sa').inputs.metadata).annotations)).toBeUndefined();
    });

    test('Cluster Autoscaler RBAC: the upstream rules, bound to kube-system/cluster-autoscaler; writes only to nodes, its lease, status ConfigMap and evictions', () => {
      const run = getRun();
      const subject = [{ kind: 'ServiceAccount', name: 'cluster-autoscaler', namespace: 'kube-system' }];
      expect(run.one('kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding').inputs).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'cluster-autoscaler' }, subjects: subject });
      expect(run.one('kubernetes:rbac.authorization.k8s.io/v1:RoleBinding').inputs).toMatchObject({ metadata: { namespace: 'kube-system' }, roleRef: { kind: 'Role', name: 'cluster-autoscaler' }, subjects: subject });
      const rules = (type: string) => (run.one(type).inputs.rules as Obj[]);
      const writes = (list: Obj[]) => list.filter((r) => (r.verbs as string[]).some((v) => !['get', 'list', 'watch'].includes(v)))
        .flatMap((r) => (r.resources as string[]).map((res) => `${res}${r.resourceNames ? `/${(r.resourceNames as string[]).join('|')}` : ''}`)).sort();
      expect(writes(rules('kubernetes:rbac.authorization.k8s.io/v1:ClusterRole'))).toEqual([
        'endpoints', 'endpoints/cluster-autoscaler', 'events', 'jobs', 'leases', 'leases/cluster-autoscaler', 'nodes', 'pods/eviction', 'pods/status',
      ]);
      expect(writes(rules('kubernetes:rbac.authorization.k8s.io/v1:Role'))).toEqual(['configmaps', 'configmaps/cluster-autoscaler-status|cluster-autoscaler-priority-expander']);
      expect(rules('kubernetes:rbac.authorization.k8s.io/v1:ClusterRole').flatMap((r) => r.resources as string[])).not.toContain('secrets');
    });

    test('preview: the same objects, the image already known (it comes from config and the platform stack)', () => {
      const preview = getPreview();
      const names = (r: ProgramRun): string[] => r.resources.map((x) => `${x.type}::${x.name}`).sort();
      expect(names(preview)).toEqual(names(getRun()));
      expect(o((podSpec(preview).containers as unknown[])[0]).image).toBe(image);
    });

    test('policy pack: every rule passes on the update and on the preview, and the digest rule runs in both', () => {
      for (const run of [getRun(), getPreview()]) {
        const report = runPolicies(run.checked());
        expect(report.violations).toEqual([]);
        expect(report.notRun.filter((n) => n.rule === 'images-by-digest-outside-dev' || n.rule === 'public-access-cidrs-routable')).toEqual([]);
      }
    });

    test(`policy pack: a Deployment image by tag ${stack === 'dev' ? 'is allowed in dev' : `is caught in ${stack}`}; a label cannot change the stack's tier`, () => {
      const byTag = (labels: Obj | undefined) => getPreview().checked().map((r) => {
        if (r.type !== 'kubernetes:apps/v1:Deployment' || r.name !== 'app-api') return r;
        const spec = o(r.props.spec);
        const template = o(spec.template);
        const pod = o(template.spec);
        const containers = (pod.containers as Obj[]).map((c) => ({ ...c, image: `${REGISTRY}/pricesense/api:1.0.0` }));
        const metadata = o(r.props.metadata);
        return withProps(r, {
          metadata: { ...metadata, labels: labels ?? {} },
          spec: { ...spec, template: { ...template, spec: { ...pod, containers } } },
        });
      });
      const digestViolations = (resources: ReturnType<typeof byTag>): string[] =>
        runPolicies(resources).violations.filter((v) => v.rule === 'images-by-digest-outside-dev').map((v) => v.message);
      const own = digestViolations(byTag(o(o(getRun().one('kubernetes:apps/v1:Deployment', 'app-api').inputs.metadata).labels)));
      expect(own).toEqual(stack === 'dev' ? [] : [expect.stringContaining(`runs ${REGISTRY}/pricesense/api:1.0.0, not an image digest reference`)]);
      // The stack decides the tier, not the object's label (review M6): a label of dev exempts nothing.
      const relabelled = digestViolations(byTag({ 'pricesense/tier': 'dev' }));
      expect(relabelled).toEqual(stack === 'dev' ? [] : [expect.stringContaining(`app-api (${stack}): containers api runs`)]);
    });
  });
}
