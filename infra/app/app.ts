/**
 * The API on Kubernetes: namespace, service account, Deployment, Service, HPA and
 * PodDisruptionBudget, through the cluster's own provider. Part of the app project, which
 * runs from inside the VPC (the platform's deployer); the AWS side (the IRSA role, the
 * lake, the model package group) comes from the platform stack as plain values.
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { APP_NAME, APP_NAMESPACE, CLOUDWATCH_AGENT_EMF_ENDPOINT, CLOUDWATCH_AGENT_EMF_PORT, CONTAINER_NAME, CONTAINER_PORT, HOST_IP_ENV, PRE_STOP_SLEEP_SECONDS, SERVICE_ACCOUNT, SHUTDOWN_TIMEOUT_SECONDS } from '../app-contract';
import { TIER_LABEL, type Tier } from '../stack-config';

export interface AppArgs {
  readonly tier: Tier;
  /** Full image reference (`<repo>@sha256:…` outside dev). */
  readonly image: pulumi.Input<string>;
  /** The IRSA role the service account is annotated with (platform stack). */
  readonly roleArn: pulumi.Input<string>;
  readonly registryUri: pulumi.Input<string>;
  readonly lakeUri: pulumi.Input<string>;
  readonly region: pulumi.Input<string>;
  readonly publicEndpoint: boolean;
  readonly publicEndpointCidrs: readonly string[];
  /** ACM certificate of the demo load balancer: TLS on 443 and access logs (NLBs log TLS listeners only). */
  readonly tlsCertificateArn: string | undefined;
  /** The lake bucket: load balancer access logs go under logs/lb/. */
  readonly lakeBucket: pulumi.Input<string>;
  /** The platform's cost tags, put on the load balancer (the controller creates it outside Pulumi). */
  readonly costTags: pulumi.Input<Record<string, string>>;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly targetCpuPercent: number;
  readonly scaleDownStabilizationSeconds: number;
  readonly resources: { cpuRequest: string; cpuLimit: string; memoryRequest: string; memoryLimit: string };
  /** Where the API's CloudWatch metrics go (api/emf.ts → the agent's EMF listener → this namespace). */
  readonly metrics: { readonly namespace: string; readonly logGroup: string };
  /** The node subnets' CIDRs (platform stack): where the host-network CloudWatch agent listens. */
  readonly nodeCidrs: pulumi.Input<string[]>;
  readonly k8sProvider: k8s.Provider;
}

export class App extends pulumi.ComponentResource {
  readonly endpoint: pulumi.Output<string> | undefined;
  readonly image: pulumi.Output<string>;

  constructor(name: string, args: AppArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:App', name, {}, opts);
    const k8sOpts: pulumi.CustomResourceOptions = { parent: this, provider: args.k8sProvider };
    // The selector labels never change; the tier label is on every object (the policy pack reads it).
    const labels = { 'app.kubernetes.io/name': APP_NAME, 'app.kubernetes.io/part-of': 'pricesense' };
    const objectLabels = { ...labels, [TIER_LABEL]: args.tier };

    const ns = new k8s.core.v1.Namespace(`${name}-ns`, {
      metadata: { name: APP_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', [TIER_LABEL]: args.tier } },
    }, k8sOpts);
    const inNs = { namespace: ns.metadata.name, labels: objectLabels };

    // No Kubernetes API token in the pods: the API never calls the API server. IRSA still
    // works: its web identity token is a separate projected volume the EKS webhook adds.
    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { ...inNs, name: SERVICE_ACCOUNT, annotations: { 'eks.amazonaws.com/role-arn': args.roleArn } },
      automountServiceAccountToken: false,
    }, k8sOpts);
    networkPolicies(name, ns, labels, objectLabels, args.nodeCidrs, k8sOpts);

    this.image = pulumi.output(args.image);
    const probe = (path: string, periodSeconds: number, failureThreshold: number): k8s.types.input.core.v1.Probe => ({
      httpGet: { path, port: 'http' },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 2,
    });
    const spread = (topologyKey: string, hard: boolean): k8s.types.input.core.v1.TopologySpreadConstraint => ({
      maxSkew: 1,
      topologyKey,
      // prod refuses to stack replicas in one zone; smaller stacks prefer spreading but still schedule.
      whenUnsatisfiable: hard ? 'DoNotSchedule' : 'ScheduleAnyway',
      labelSelector: { matchLabels: labels },
    });

    const deployment = new k8s.apps.v1.Deployment(`${name}-api`, {
      metadata: { ...inNs, name: APP_NAME },
      spec: {
        // The HPA owns the replica count after creation (see ignoreChanges below).
        replicas: args.minReplicas,
        selector: { matchLabels: labels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels: objectLabels },
          spec: {
            serviceAccountName: sa.metadata.name,
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
            topologySpreadConstraints: [spread('topology.kubernetes.io/zone', args.tier === 'prod'), spread('kubernetes.io/hostname', false)],
            // Kubernetes sends SIGTERM after preStop: the sleep lets the load balancer and the
            // Service endpoints stop routing to this pod first, so requests still being routed here
            // find it serving; then the API drains (PRICESENSE_SHUTDOWN_TIMEOUT, + 2 s for its
            // workers to exit) inside the grace period.
            terminationGracePeriodSeconds: PRE_STOP_SLEEP_SECONDS + SHUTDOWN_TIMEOUT_SECONDS + 2 + 8,
            containers: [{
              name: CONTAINER_NAME,
              image: this.image,
              ports: [{ name: 'http', containerPort: CONTAINER_PORT, protocol: 'TCP' }],
              env: [
                { name: 'PRICESENSE_REGISTRY', value: args.registryUri },
                { name: 'PRICESENSE_LAKE', value: args.lakeUri },
                { name: 'AWS_REGION', value: args.region },
                { name: 'PORT', value: String(CONTAINER_PORT) },
                { name: 'PRICESENSE_SHUTDOWN_TIMEOUT', value: `${SHUTDOWN_TIMEOUT_SECONDS}s` },
                // Before PRICESENSE_EMF, which names it as $(HOST_IP): the agent on this pod's node.
                { name: HOST_IP_ENV, valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
                { name: 'PRICESENSE_EMF', value: CLOUDWATCH_AGENT_EMF_ENDPOINT },
                { name: 'PRICESENSE_EMF_NAMESPACE', value: args.metrics.namespace },
                { name: 'PRICESENSE_EMF_LOG_GROUP', value: args.metrics.logGroup },
              ],
              resources: {
                requests: { cpu: args.resources.cpuRequest, memory: args.resources.memoryRequest },
                limits: { cpu: args.resources.cpuLimit, memory: args.resources.memoryLimit },
              },
              lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SLEEP_SECONDS } } },
              startupProbe: probe('/health', 2, 30),
              livenessProbe: probe('/health', 10, 3),
              readinessProbe: probe('/ready', 5, 2),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                privileged: false,
                capabilities: { drop: ['ALL'] },
              },
              // The only writable path: scratch space for downloaded model files.
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            }],
            volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '256Mi' } }],
          },
        },
      },
    }, { ...k8sOpts, ignoreChanges: ['spec.replicas'] });

    const tls = args.tlsCertificateArn !== undefined;
    const service = new k8s.core.v1.Service(`${name}-svc`, {
      metadata: {
        ...inNs,
        name: APP_NAME,
        annotations: args.publicEndpoint ? loadBalancerAnnotations(args) : {},
      },
      spec: {
        type: args.publicEndpoint ? 'LoadBalancer' : 'ClusterIP',
        selector: labels,
        ports: [{ name: tls ? 'https' : 'http', port: args.publicEndpoint ? (tls ? 443 : 80) : CONTAINER_PORT, targetPort: 'http', protocol: 'TCP' }],
        ...(args.publicEndpoint ? { loadBalancerSourceRanges: [...args.publicEndpointCidrs] } : {}),
      },
      // A LoadBalancer Service carries the service.kubernetes.io/load-balancer-cleanup
      // finalizer: its deletion completes only once the controller has deleted the load
      // balancer (and with it the ENIs in the platform's public subnets). The app stack is
      // always destroyed before the platform stack (.github/scripts/teardown.sh checks), so
      // no load balancer ever holds the VPC; deleting one takes minutes, hence the timeout.
    }, { ...k8sOpts, customTimeouts: { delete: '20m' } });

    new k8s.autoscaling.v2.HorizontalPodAutoscaler(`${name}-hpa`, {
      metadata: { ...inNs, name: APP_NAME },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name },
        minReplicas: args.minReplicas,
        maxReplicas: args.maxReplicas,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: args.targetCpuPercent } } }],
        behavior: {
          scaleDown: { stabilizationWindowSeconds: args.scaleDownStabilizationSeconds, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
          scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: 'Percent', value: 100, periodSeconds: 30 }] },
        },
      },
    }, k8sOpts);

    new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, {
      metadata: { ...inNs, name: APP_NAME },
      // maxUnavailable, not minAvailable: a one-replica dev stack must still let nodes drain.
      spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
    }, k8sOpts);

    this.endpoint = args.publicEndpoint
      ? service.status.loadBalancer.ingress.apply((ingress) => {
          const host = ingress?.[0]?.hostname ?? ingress?.[0]?.ip;
          return host ? `${tls ? 'https' : 'http'}://${host}` : '';
        })
      : undefined;
    this.registerOutputs({ endpoint: this.endpoint, image: this.image });
  }
}

/** The in-tree NLB's settings: cross-zone, tags (the budget filters on `stack`), and with a certificate TLS and access logs. */
export function loadBalancerAnnotations(args: Pick<AppArgs, 'tlsCertificateArn' | 'lakeBucket' | 'costTags' | 'tier'>): pulumi.Input<Record<string, pulumi.Input<string>>> {
  const base = 'service.beta.kubernetes.io/aws-load-balancer';
  return pulumi.all([args.costTags, args.lakeBucket]).apply(([tags, bucket]) => ({
    [`${base}-type`]: 'nlb',
    [`${base}-cross-zone-load-balancing-enabled`]: 'true',
    [`${base}-additional-resource-tags`]: Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(','),
    ...(args.tlsCertificateArn !== undefined
      ? {
          [`${base}-ssl-cert`]: args.tlsCertificateArn,
          [`${base}-ssl-ports`]: '443',
          [`${base}-ssl-negotiation-policy`]: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
          [`${base}-access-log-enabled`]: 'true',
          [`${base}-access-log-s3-bucket-name`]: bucket,
          [`${base}-access-log-s3-bucket-prefix`]: `logs/lb/${args.tier}`,
        }
      : {}),
  }));
}

/**
 * Default deny in the namespace (the VPC CNI enforces NetworkPolicy, cluster.ts), then what
 * the API needs: ingress on its port (the load balancer and kubelet probes arrive on it);
 * egress to the cluster DNS, HTTPS out, and the CloudWatch agent's EMF listener. With no
 * NAT gateway and no internet route in the private subnets, HTTPS reaches only the VPC
 * endpoints and S3 through the gateway endpoint, both limited to this account by their
 * endpoint policies (network.ts). The agent runs on the nodes' network (app-contract.ts),
 * which no pod or namespace selector matches: its peers are the node subnets.
 */
function networkPolicies(name: string, ns: k8s.core.v1.Namespace, selector: Record<string, string>, labels: Record<string, string>, nodeCidrs: pulumi.Input<string[]>, opts: pulumi.CustomResourceOptions): void {
  const metadata = (policy: string) => ({ namespace: ns.metadata.name, name: policy, labels });
  new k8s.networking.v1.NetworkPolicy(`${name}-default-deny`, {
    metadata: metadata('default-deny'),
    spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
  }, opts);
  new k8s.networking.v1.NetworkPolicy(`${name}-api`, {
    metadata: metadata(APP_NAME),
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: CONTAINER_PORT }] }],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
        },
        { to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ protocol: 'TCP', port: 443 }] },
        {
          to: pulumi.output(nodeCidrs).apply((cidrs) => cidrs.map((cidr) => ({ ipBlock: { cidr } }))),
          ports: [{ protocol: 'TCP', port: CLOUDWATCH_AGENT_EMF_PORT }],
        },
      ],
    },
  }, opts);
}
