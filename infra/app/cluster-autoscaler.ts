/**
 * Cluster Autoscaler in the cluster (the Kubernetes side; its AWS role, Pod Identity
 * association and the `autoscaling` endpoint are the platform's, infra/cluster.ts; the names
 * both use are in infra/app-contract.ts): the service account, the upstream RBAC and the
 * Deployment that adds a node when the HPA's pods are pending and removes one left underused,
 * between each node group's minSize and maxSize.
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { AUTOSCALER_ENABLED_TAG, AUTOSCALER_SERVICE_ACCOUNT, autoscalerClusterTag } from '../app-contract';
import { TIER_LABEL, type Tier } from '../stack-config';

/** Its metrics and /health-check port (the upstream default). */
export const AUTOSCALER_PORT = 8085;

/** The autoscaler's arguments (docs/infra.md explains each choice). */
export function autoscalerArgs(clusterName: string): string[] {
  return [
    '--cloud-provider=aws',
    // The two tags EKS puts on each managed node group's Auto Scaling group; the IAM role may
    // change capacity only on groups carrying them (cluster.ts).
    `--node-group-auto-discovery=asg:tag=${AUTOSCALER_ENABLED_TAG},${autoscalerClusterTag(clusterName)}`,
    '--balance-similar-node-groups',
    '--expander=least-waste',
    // kube-system pods (CoreDNS, metrics-server) have PDBs or replicas elsewhere; without this
    // a node running one of them is never removed.
    '--skip-nodes-with-system-pods=false',
    // The API's /tmp is an emptyDir (scratch for model files): without this no node running the API could be removed.
    '--skip-nodes-with-local-storage=false',
  ];
}

export interface ClusterAutoscalerArgs {
  readonly tier: Tier;
  readonly clusterName: pulumi.Input<string>;
  readonly region: pulumi.Input<string>;
  readonly image: pulumi.Input<string>;
  readonly k8sProvider: k8s.Provider;
}

type Rule = k8s.types.input.rbac.v1.PolicyRule;
const READ = ['get', 'list', 'watch'];

/** Cluster-wide rules of the upstream manifest (cloudprovider/aws/examples/cluster-autoscaler-autodiscover.yaml). */
export const AUTOSCALER_CLUSTER_RULES: Rule[] = [
  { apiGroups: [''], resources: ['events', 'endpoints'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
  { apiGroups: [''], resources: ['pods/status'], verbs: ['update'] },
  { apiGroups: [''], resources: ['endpoints'], resourceNames: ['cluster-autoscaler'], verbs: ['get', 'update'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['watch', 'list', 'get', 'update'] },
  { apiGroups: [''], resources: ['namespaces', 'pods', 'services', 'replicationcontrollers', 'persistentvolumeclaims', 'persistentvolumes'], verbs: READ },
  { apiGroups: ['extensions'], resources: ['replicasets', 'daemonsets'], verbs: READ },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['watch', 'list'] },
  { apiGroups: ['apps'], resources: ['statefulsets', 'replicasets', 'daemonsets'], verbs: READ },
  // volumeattachments: the chart's addition for the CSI checks of recent releases.
  { apiGroups: ['storage.k8s.io'], resources: ['storageclasses', 'csinodes', 'csidrivers', 'csistoragecapacities', 'volumeattachments'], verbs: READ },
  { apiGroups: ['batch', 'extensions'], resources: ['jobs'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['cluster-autoscaler'], verbs: ['get', 'update'] },
];

/** kube-system rules: its status ConfigMap (and the priority expander's, unused but upstream). */
export const AUTOSCALER_NAMESPACE_RULES: Rule[] = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'list', 'watch'] },
  { apiGroups: [''], resources: ['configmaps'], resourceNames: ['cluster-autoscaler-status', 'cluster-autoscaler-priority-expander'], verbs: ['delete', 'get', 'update', 'watch'] },
];

export class ClusterAutoscaler extends pulumi.ComponentResource {
  constructor(name: string, args: ClusterAutoscalerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:ClusterAutoscaler', name, {}, opts);
    const k8sOpts: pulumi.CustomResourceOptions = { parent: this, provider: args.k8sProvider };
    const { namespace, name: account } = AUTOSCALER_SERVICE_ACCOUNT;
    const selector = { 'app.kubernetes.io/name': account };
    const labels = { ...selector, 'app.kubernetes.io/part-of': 'pricesense', [TIER_LABEL]: args.tier };
    const inNs = { namespace, name: account, labels };
    const subjects = [{ kind: 'ServiceAccount', name: account, namespace }];

    // No role annotation: EKS Pod Identity (the platform's association) hands the role to this account.
    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, { metadata: inNs }, k8sOpts);
    const clusterRole = new k8s.rbac.v1.ClusterRole(`${name}-cluster-role`, { metadata: { name: account, labels }, rules: AUTOSCALER_CLUSTER_RULES }, k8sOpts);
    const role = new k8s.rbac.v1.Role(`${name}-role`, { metadata: inNs, rules: AUTOSCALER_NAMESPACE_RULES }, k8sOpts);
    const bindings = [
      new k8s.rbac.v1.ClusterRoleBinding(`${name}-cluster-binding`, {
        metadata: { name: account, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.metadata.name },
        subjects,
      }, k8sOpts),
      new k8s.rbac.v1.RoleBinding(`${name}-binding`, {
        metadata: inNs,
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name },
        subjects,
      }, k8sOpts),
    ];

    new k8s.apps.v1.Deployment(`${name}-deployment`, {
      metadata: inNs,
      spec: {
        // One active instance (leader election); a restart on another node takes seconds.
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: {
            priorityClassName: 'system-cluster-critical',
            serviceAccountName: sa.metadata.name,
            // 65534 (nobody), as upstream; fsGroup makes the projected Pod Identity token readable.
            securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [{
              name: account,
              image: args.image,
              command: ['./cluster-autoscaler'],
              args: pulumi.output(args.clusterName).apply(autoscalerArgs),
              // IMDS hop limit 1 (cluster.ts): the pod cannot read its region from instance metadata.
              env: [{ name: 'AWS_REGION', value: args.region }],
              ports: [{ name: 'metrics', containerPort: AUTOSCALER_PORT, protocol: 'TCP' }],
              livenessProbe: { httpGet: { path: '/health-check', port: 'metrics' }, periodSeconds: 10, failureThreshold: 3 },
              // Upstream's figures: memory grows with the number of pods and nodes it simulates.
              resources: { requests: { cpu: '100m', memory: '600Mi' }, limits: { cpu: '100m', memory: '600Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, privileged: false, capabilities: { drop: ['ALL'] } },
            }],
          },
        },
      },
    }, { ...k8sOpts, dependsOn: bindings });
    this.registerOutputs({});
  }
}
