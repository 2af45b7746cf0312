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

/**
 * The API's CloudWatch metrics (api/emf.ts): the app sends its EMF records to the
 * Container Insights agent's EMF listener (the add-on's `cloudwatch-agent` Service, enabled
 * in infra/cluster.ts), which writes them to this log group, from which CloudWatch
 * extracts them into this namespace; the platform's alarms read it (infra/api-alarms.ts).
 */
export const CLOUDWATCH_AGENT_EMF_ENDPOINT = 'tcp://cloudwatch-agent.amazon-cloudwatch:25888';

export function apiMetricNamespace(stack: string): string {
  return `pricesense/${stack}`;
}

export function apiMetricsLogGroup(stack: string): string {
  return `/pricesense/${stack}/api-metrics`;
}
