/**
 * Names shared by the platform project (IAM trust, log filters, alarms) and the app project
 * (the Kubernetes objects): the IRSA role trusts exactly this service account, and the
 * monitoring filters read exactly this namespace and container. No dependencies.
 */
export const APP_NAMESPACE = 'mlops';
export const APP_NAME = 'pricesense-api';
export const SERVICE_ACCOUNT = APP_NAME;
export const CONTAINER_NAME = 'api';
export const CONTAINER_PORT = 8080;
/** Seconds the pod keeps serving after Kubernetes starts deleting it, before SIGTERM (endpoints and the load balancer stop routing to it meanwhile). */
export const PRE_STOP_SLEEP_SECONDS = 10;
/** The API's drain deadline on SIGTERM (PRICESENSE_SHUTDOWN_TIMEOUT); the grace period covers preStop + this + the workers' exit. */
export const SHUTDOWN_TIMEOUT_SECONDS = 10;

/**
 * The API's CloudWatch metrics (api/emf.ts): the app sends its EMF records to the
 * Container Insights agent's EMF listener (enabled in infra/cluster.ts through
 * CLOUDWATCH_AGENT_CONFIG), which writes them to this log group, from which CloudWatch
 * extracts them into this namespace; the platform's alarms read it (infra/api-alarms.ts).
 *
 * The add-on runs the agent as a DaemonSet on the node's network (hostNetwork), so each
 * pod sends to the agent on its own node: the node's IP from the downward API (HOST_IP),
 * port 25888. Node-local, no Service hop, and a NetworkPolicy can name the destination:
 * selectors never match host-network pods, the node subnets' CIDRs do (infra/app/app.ts).
 */
export const CLOUDWATCH_AGENT_EMF_PORT = 25888;
/** The env var the Deployment fills with status.hostIP; Kubernetes expands `$(HOST_IP)` in later env values. */
export const HOST_IP_ENV = 'HOST_IP';
export const CLOUDWATCH_AGENT_EMF_ENDPOINT = `tcp://$(${HOST_IP_ENV}):${CLOUDWATCH_AGENT_EMF_PORT}`;

export function apiMetricNamespace(stack: string): string {
  return `pricesense/${stack}`;
}

export function apiMetricsLogGroup(stack: string): string {
  return `/pricesense/${stack}/api-metrics`;
}

/**
 * Cluster Autoscaler: its AWS role and Pod Identity association are the platform's
 * (infra/cluster.ts), its Deployment the app project's (infra/app/cluster-autoscaler.ts), and
 * the policy pack checks both against these names.
 */
export const AUTOSCALER_SERVICE_ACCOUNT = { namespace: 'kube-system', name: 'cluster-autoscaler' } as const;
/** Tag EKS puts on every managed node group's Auto Scaling group, `true`. */
export const AUTOSCALER_ENABLED_TAG = 'k8s.io/cluster-autoscaler/enabled';
/** Tag EKS puts on every managed node group's Auto Scaling group: `owned` for this cluster's. */
export function autoscalerClusterTag(clusterName: string): string {
  return `k8s.io/cluster-autoscaler/${clusterName}`;
}
/** What scales capacity; allowed only on Auto Scaling groups carrying both autoscaler tags of this cluster. */
export const AUTOSCALER_MUTATING_ACTIONS = ['autoscaling:SetDesiredCapacity', 'autoscaling:TerminateInstanceInAutoScalingGroup'] as const;
