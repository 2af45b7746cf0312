/**
 * Logs, alarms and a dashboard. The log groups EKS, Container Insights and the API's
 * metrics write to are created here first, with retention, because the services would
 * otherwise create them on first write with "never expire".
 *
 * API metrics: every API process writes one CloudWatch embedded-metric-format record per
 * interval (api/emf.ts) to the Container Insights agent's EMF listener, which puts it in
 * the `api-metrics` log group; CloudWatch extracts the metrics into `pricesense/<stack>`.
 * No log line per request, and every request counts (infra/api-alarms.ts has the
 * alarms; docs/infra.md, "API metrics and alarms", the cost per million requests).
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { customerManagedKey, type AwsContext } from './aws-context';
import type { Tier } from './config';
import { DATA_RETENTION } from './teardown';
import { APP_NAME, APP_NAMESPACE, apiMetricsLogGroup } from './app-contract';
import { API_METRICS, apiAlarms, apiMetricNamespace, slowerThanMetric, type ApiAlarm } from './api-alarms';

/**
 * The Container Insights add-on's agent configuration (infra/cluster.ts): the default
 * enhanced Container Insights plus the EMF listener (TCP/UDP 25888). The agent is a
 * host-network DaemonSet, so the API sends to the agent on its own node's address
 * (infra/app-contract.ts), which the app's NetworkPolicy allows (infra/app/app.ts).
 */
export const CLOUDWATCH_AGENT_CONFIG = {
  agent: { config: { logs: { metrics_collected: { kubernetes: { enhanced_container_insights: true }, emf: {} } } } },
} as const;

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
  readonly driftPsi: number;
  readonly unknownCategoryPercent: number;
  readonly missingIncreasePercent: number;
  /** The API-metrics heartbeat alarm (infra/api-alarms.ts): off where the nodes sleep on a schedule. */
  readonly metricsHeartbeat: boolean;
  readonly aws: AwsContext;
}

/** EventBridge rules whose names start with this may publish to the alert topic. */
export function eventRulePrefix(stack: string): string {
  return `pricesense-${stack}-`;
}

export class Monitoring extends pulumi.ComponentResource {
  readonly alertTopicArn: pulumi.Output<string>;
  /** Created before the cluster so EKS and the agent find them (and their retention) in place. */
  readonly logGroups: aws.cloudwatch.LogGroup[];
  readonly metricNamespace: string;
  readonly dashboardName: pulumi.Output<string>;
  /** The API alarms by id (infra/api-alarms.ts). */
  readonly apiAlarms: { readonly definition: ApiAlarm; readonly arn: pulumi.Output<string> }[];

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:Monitoring', name, {}, opts);
    const parent: pulumi.CustomResourceOptions = { parent: this, provider: args.aws.provider };
    const ctx = args.aws;
    this.metricNamespace = apiMetricNamespace(args.stack);

    const logGroup = (id: string, logGroupName: string): aws.cloudwatch.LogGroup =>
      new aws.cloudwatch.LogGroup(`${name}-${id}`, { name: logGroupName, retentionInDays: args.logRetentionDays }, parent);
    const controlPlane = logGroup('eks-control-plane', `/aws/eks/${args.clusterName}/cluster`);
    const insights = CONTAINER_INSIGHTS_LOG_STREAMS.map((s) => logGroup(`insights-${s}`, `/aws/containerinsights/${args.clusterName}/${s}`));
    // Where the agent writes the API's EMF records: not read by the cluster, so not in logGroups.
    logGroup('api-metrics', apiMetricsLogGroup(args.stack));
    this.logGroups = [controlPlane, ...insights];

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

    this.apiAlarms = apiAlarms(args.stack, args, { heartbeat: args.metricsHeartbeat }).map((definition) => {
      const alarm = new aws.cloudwatch.MetricAlarm(`${name}-${definition.id}`, {
        alarmDescription: definition.description,
        metricQueries: definition.queries.map((q) => ({
          id: q.id,
          ...(q.metric ? { metric: { namespace: q.metric.namespace, metricName: q.metric.metricName, period: q.metric.period, stat: q.metric.stat } } : {}),
          ...(q.expression ? { expression: q.expression } : {}),
          ...(q.label ? { label: q.label } : {}),
          returnData: q.returnData ?? false,
        })),
        evaluationPeriods: definition.evaluationPeriods,
        threshold: definition.threshold,
        comparisonOperator: definition.comparisonOperator,
        treatMissingData: definition.treatMissingData,
        ...alarmActions,
      }, parent);
      return { definition, arn: alarm.arn };
    });

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
  const alarmLine = (label: string, value: number) => ({ annotations: { horizontal: [{ label, value }] } });
  return {
    widgets: [
      widget(0, 0, 'API requests and errors (probes excluded)', [
        [ns, API_METRICS.requests, { stat: 'Sum', label: 'requests' }],
        [ns, 'Requests4xx', { stat: 'Sum', label: '4xx' }],
        [ns, API_METRICS.errors5xx, { stat: 'Sum', label: '5xx' }],
        [ns, 'RequestsShed', { stat: 'Sum', label: 'shed (503 overloaded)' }],
        [ns, 'RequestsClientClosed', { stat: 'Sum', label: 'client closed before the answer (499, never sent)' }],
      ]),
      widget(12, 0, `Latency percentiles, ms (each request at its histogram bucket's upper bound; p99 alarm above ${args.p99LatencyMs} ms)`, [
        [ns, API_METRICS.latency, { stat: 'p50', label: 'p50' }],
        [ns, API_METRICS.latency, { stat: 'p90', label: 'p90' }],
        [ns, API_METRICS.latency, { stat: 'p99', label: 'p99' }],
        [{ expression: `100 * slowp99 / requests`, label: `% slower than ${args.p99LatencyMs} ms`, yAxis: 'right' }],
        [ns, API_METRICS.requests, { stat: 'Sum', id: 'requests', visible: false }],
        [ns, slowerThanMetric(args.p99LatencyMs), { stat: 'Sum', id: 'slowp99', visible: false }],
      ], alarmLine('p99 alarm', args.p99LatencyMs)),
      widget(0, 6, 'Input drift (largest over the features)', [
        [ns, API_METRICS.driftPsi, { stat: 'Maximum', label: 'PSI' }],
        [ns, API_METRICS.unknownCategoryShare, { stat: 'Maximum', label: 'unknown-category share' }],
        [ns, API_METRICS.missingShareIncrease, { stat: 'Maximum', label: 'missing share above training' }],
      ], alarmLine('PSI alarm', args.driftPsi)),
      widget(12, 6, 'Models: served, load failures, predictions', [
        [ns, API_METRICS.modelReady, { stat: 'Minimum', label: 'model served (min over processes)' }],
        [ns, API_METRICS.modelLoadFailures, { stat: 'Sum', label: 'load failures' }],
        [ns, 'RegistryPollFailures', { stat: 'Sum', label: 'registry poll failures' }],
      ]),
      widget(0, 12, 'Node CPU %', [['ContainerInsights', 'node_cpu_utilization', 'ClusterName', clusterName, { stat: 'Average' }]], alarmLine('alarm', args.nodeCpuPercent)),
      widget(12, 12, 'API pods: restarts and count', [
        ['ContainerInsights', 'pod_number_of_container_restarts', 'ClusterName', clusterName, 'Namespace', APP_NAMESPACE, 'PodName', APP_NAME, { stat: 'Maximum' }],
        ['ContainerInsights', 'service_number_of_running_pods', 'ClusterName', clusterName, 'Namespace', APP_NAMESPACE, 'Service', APP_NAME, { stat: 'Average' }],
      ]),
    ],
  };
}
