/**
 * Logs, alarms and a dashboard. The log groups EKS and Container Insights write to are
 * created here first, with retention, because the services would otherwise create them
 * on first write with "never expire". API request metrics come from the API's JSON
 * request logs (collected by Container Insights' Fluent Bit) through metric filters:
 * no extra agent or sidecar, and the same logs stay searchable.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { customerManagedKey, type AwsContext } from './aws-context';
import type { Tier } from './config';
import { DATA_RETENTION } from './teardown';
import { APP_NAME, APP_NAMESPACE, CONTAINER_NAME } from './app-contract';

/**
 * The request-log contract with the API (api/app.ts): one pino JSON line per request,
 * `msg: "request"`, with the HTTP status at `status` and the latency in milliseconds at
 * `ms`. Fluent Bit nests the parsed line under `log_processed`.
 */
export const API_LOG_FIELDS = { message: 'request', status: 'status', latencyMs: 'ms' } as const;
export const CONTAINER_INSIGHTS_LOG_STREAMS = ['application', 'dataplane', 'host', 'performance'] as const;

export interface MonitoringArgs {
  readonly tier: Tier;
  readonly stack: string;
  readonly clusterName: string;
  readonly logRetentionDays: number;
  readonly alarmEmail: string | undefined;
  readonly p99LatencyMs: number;
  readonly error5xxPercent: number;
  readonly nodeCpuPercent: number;
  readonly podRestarts: number;
  readonly aws: AwsContext;
}

/** EventBridge rules whose names start with this may publish to the alert topic. */
export function eventRulePrefix(stack: string): string {
  return `pricesense-${stack}-`;
}

function logFilter(extra: string): string {
  return `{ ($.kubernetes.namespace_name = "${APP_NAMESPACE}") && ($.kubernetes.container_name = "${CONTAINER_NAME}") && ($.log_processed.msg = "${API_LOG_FIELDS.message}") && (${extra}) }`;
}

export class Monitoring extends pulumi.ComponentResource {
  readonly alertTopicArn: pulumi.Output<string>;
  /** Created before the cluster so EKS and the agent find them (and their retention) in place. */
  readonly logGroups: aws.cloudwatch.LogGroup[];
  readonly metricNamespace: string;
  readonly dashboardName: pulumi.Output<string>;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:Monitoring', name, {}, opts);
    const parent: pulumi.CustomResourceOptions = { parent: this, provider: args.aws.provider };
    const ctx = args.aws;
    this.metricNamespace = `pricesense/${args.stack}`;

    const logGroup = (id: string, logGroupName: string): aws.cloudwatch.LogGroup =>
      new aws.cloudwatch.LogGroup(`${name}-${id}`, { name: logGroupName, retentionInDays: args.logRetentionDays }, parent);
    const controlPlane = logGroup('eks-control-plane', `/aws/eks/${args.clusterName}/cluster`);
    const insights = CONTAINER_INSIGHTS_LOG_STREAMS.map((s) => logGroup(`insights-${s}`, `/aws/containerinsights/${args.clusterName}/${s}`));
    this.logGroups = [controlPlane, ...insights];
    const application = insights[0];

    // Encrypted at rest (Security Hub SNS.1) with a key of ours: the AWS-managed alias/aws/sns
    // key's policy cannot admit CloudWatch, Budgets and EventBridge, which publish here.
    const alertsKey = customerManagedKey(`${name}-alerts`, {
      description: `pricesense ${args.stack}: alert topic encryption`,
      services: ['cloudwatch.amazonaws.com', 'budgets.amazonaws.com', 'events.amazonaws.com'],
      ctx,
    }, { ...parent, protect: DATA_RETENTION[args.tier].protect });
    const topic = new aws.sns.Topic(`${name}-alerts`, { displayName: `pricesense ${args.stack} alerts`, kmsMasterKeyId: alertsKey.arn }, parent);
    this.alertTopicArn = topic.arn;
    new aws.sns.TopicPolicy(`${name}-alerts`, {
      arn: topic.arn,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [{
          Sid: 'AlarmsAndBudgetsPublish',
          Effect: 'Allow',
          Principal: { Service: ['cloudwatch.amazonaws.com', 'budgets.amazonaws.com'] },
          Action: 'sns:Publish',
          Resource: topic.arn,
          Condition: { StringEquals: { 'aws:SourceAccount': ctx.accountId } },
        }, {
          // EventBridge rules of this stack (the model package state rule in sagemaker-pipeline.ts).
          Sid: 'StackEventRulesPublish',
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sns:Publish',
          Resource: topic.arn,
          Condition: { ArnLike: { 'aws:SourceArn': pulumi.interpolate`arn:${ctx.partition}:events:${ctx.region}:${ctx.accountId}:rule/${eventRulePrefix(args.stack)}*` } },
        }],
      }),
    }, parent);
    if (args.alarmEmail !== undefined) {
      new aws.sns.TopicSubscription(`${name}-alerts-email`, { topic: topic.arn, protocol: 'email', endpoint: args.alarmEmail }, parent);
    }

    const ns = this.metricNamespace;
    const status = `$.log_processed.${API_LOG_FIELDS.status}`;
    const latency = `$.log_processed.${API_LOG_FIELDS.latencyMs}`;
    const metricFilter = (id: string, pattern: string, metricName: string, value: string, unit: string): aws.cloudwatch.LogMetricFilter =>
      new aws.cloudwatch.LogMetricFilter(`${name}-${id}`, {
        logGroupName: application.name,
        pattern,
        metricTransformation: { name: metricName, namespace: ns, value, unit, ...(value === '1' ? { defaultValue: '0' } : {}) },
      }, parent);
    metricFilter('requests', logFilter(`${status} >= 100`), 'ApiRequests', '1', 'Count');
    metricFilter('errors-5xx', logFilter(`${status} >= 500`), 'Api5xx', '1', 'Count');
    metricFilter('latency', logFilter(`${latency} >= 0`), 'ApiLatency', latency, 'Milliseconds');

    const alarmActions = { alarmActions: [topic.arn], okActions: [topic.arn] };
    const insightsDims = { ClusterName: args.clusterName };

    new aws.cloudwatch.MetricAlarm(`${name}-pod-restarts`, {
      alarmDescription: `pricesense API containers restarted more than ${args.podRestarts} times`,
      namespace: 'ContainerInsights',
      metricName: 'pod_number_of_container_restarts',
      dimensions: { ...insightsDims, Namespace: APP_NAMESPACE, PodName: APP_NAME },
      statistic: 'Maximum',
      period: 300,
      evaluationPeriods: 1,
      threshold: args.podRestarts,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
      ...alarmActions,
    }, parent);

    new aws.cloudwatch.MetricAlarm(`${name}-node-cpu`, {
      alarmDescription: `average node CPU above ${args.nodeCpuPercent}% for 15 minutes`,
      namespace: 'ContainerInsights',
      metricName: 'node_cpu_utilization',
      dimensions: insightsDims,
      statistic: 'Average',
      period: 300,
      evaluationPeriods: 3,
      threshold: args.nodeCpuPercent,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching', // dev nodes are scaled to zero at night
      ...alarmActions,
    }, parent);

    new aws.cloudwatch.MetricAlarm(`${name}-api-5xx-rate`, {
      alarmDescription: `API 5xx responses above ${args.error5xxPercent}% of requests for 10 minutes`,
      metricQueries: [
        { id: 'requests', metric: { namespace: ns, metricName: 'ApiRequests', period: 300, stat: 'Sum' } },
        { id: 'errors', metric: { namespace: ns, metricName: 'Api5xx', period: 300, stat: 'Sum' } },
        { id: 'rate', expression: 'IF(requests > 0, 100 * errors / requests, 0)', label: '5xx %', returnData: true },
      ],
      evaluationPeriods: 2,
      threshold: args.error5xxPercent,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
      ...alarmActions,
    }, parent);

    new aws.cloudwatch.MetricAlarm(`${name}-api-p99-latency`, {
      alarmDescription: `API p99 latency above ${args.p99LatencyMs} ms for 15 minutes`,
      namespace: ns,
      metricName: 'ApiLatency',
      extendedStatistic: 'p99',
      period: 300,
      evaluationPeriods: 3,
      threshold: args.p99LatencyMs,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
      ...alarmActions,
    }, parent);

    const dashboard = new aws.cloudwatch.Dashboard(`${name}-dashboard`, {
      dashboardName: `pricesense-${args.stack}`,
      dashboardBody: JSON.stringify(dashboardBody(args.clusterName, ns, ctx.region, args)),
    }, parent);
    this.dashboardName = dashboard.dashboardName;

    this.registerOutputs({ alertTopicArn: this.alertTopicArn });
  }
}

function dashboardBody(clusterName: string, ns: string, region: string, args: MonitoringArgs): object {
  const widget = (x: number, y: number, title: string, metrics: unknown[], extra: object = {}): object => ({
    type: 'metric',
    x,
    y,
    width: 12,
    height: 6,
    properties: { title, region, view: 'timeSeries', stacked: false, period: 300, metrics, ...extra },
  });
  return {
    widgets: [
      widget(0, 0, 'API requests and 5xx', [
        [ns, 'ApiRequests', { stat: 'Sum', label: 'requests' }],
        [ns, 'Api5xx', { stat: 'Sum', label: '5xx' }],
      ]),
      widget(12, 0, 'API latency (ms)', [
        [ns, 'ApiLatency', { stat: 'p50', label: 'p50' }],
        [ns, 'ApiLatency', { stat: 'p99', label: 'p99' }],
      ], { annotations: { horizontal: [{ label: 'p99 alarm', value: args.p99LatencyMs }] } }),
      widget(0, 6, 'Node CPU %', [['ContainerInsights', 'node_cpu_utilization', 'ClusterName', clusterName, { stat: 'Average' }]], {
        annotations: { horizontal: [{ label: 'alarm', value: args.nodeCpuPercent }] },
      }),
      widget(12, 6, 'API pods: restarts and count', [
        ['ContainerInsights', 'pod_number_of_container_restarts', 'ClusterName', clusterName, 'Namespace', APP_NAMESPACE, 'PodName', APP_NAME, { stat: 'Maximum' }],
        ['ContainerInsights', 'service_number_of_running_pods', 'ClusterName', clusterName, 'Namespace', APP_NAMESPACE, 'Service', APP_NAME, { stat: 'Average' }],
      ]),
    ],
  };
}
