/**
 * What the platform reads of the API's CloudWatch metrics, and the alarms on them: plain
 * data (no Pulumi), so the monitoring component builds its MetricAlarms from it and the
 * tests feed the API's real EMF records through the same definitions
 * (api/test/observability.test.ts) and check the PrometheusRule names the same alerts
 * (deploy/observability/, api/test/observability-files.test.ts).
 *
 * The API writes one EMF record per interval per process (api/emf.ts) into namespace
 * `pricesense/<stack>`; CloudWatch sums the counts over processes and pods.
 */

import { apiMetricNamespace } from './app-contract';

export { apiMetricNamespace };

/** The metric names in the API's EMF records that alarms read. */
export const API_METRICS = {
  requests: 'Requests',
  errors5xx: 'Requests5xx',
  modelLoadFailures: 'ModelLoadFailures',
  modelReady: 'ModelReady',
  driftPsi: 'DriftPsiMax',
  unknownCategoryShare: 'UnknownCategoryShareMax',
  missingShareIncrease: 'MissingShareIncreaseMax',
  /** Request latency as a distribution (Values/Counts per interval): CloudWatch computes its percentiles. */
  latency: 'LatencyMs',
} as const;

/**
 * The bounds of the API's latency histogram (api/metrics.ts) in ms, below its overflow.
 * The records' LatencyMs distribution puts each request at its bucket's upper bound, so
 * p99 of it is above T exactly when more than 1% of requests took longer than T — when T
 * is one of these bounds (the config validation says so). The API also counts
 * `RequestsOver<ms>ms` per bound (the dashboard's "% slower than" widget).
 */
export const LATENCY_BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] as const;

export function slowerThanMetric(ms: number): string {
  return `RequestsOver${ms}ms`;
}

export interface AlarmThresholds {
  readonly p99LatencyMs: number;
  readonly error5xxPercent: number;
  readonly driftPsi: number;
  readonly unknownCategoryPercent: number;
  readonly missingIncreasePercent: number;
}

export interface MetricStat {
  readonly namespace: string;
  readonly metricName: string;
  /** A percentile (`p99`) only on a distribution metric (LatencyMs). */
  readonly stat: 'Sum' | 'Maximum' | 'Minimum' | 'SampleCount' | `p${number}`;
  readonly period: number;
}

export interface AlarmQuery {
  readonly id: string;
  readonly metric?: MetricStat;
  readonly expression?: string;
  readonly label?: string;
  readonly returnData?: boolean;
}

export interface ApiAlarm {
  /** Resource name suffix, e.g. `api-5xx-rate` → `monitoring-api-5xx-rate`. */
  readonly id: string;
  /** The alert of the same meaning in the PrometheusRule (clusters without CloudWatch). */
  readonly prometheusAlert: string;
  readonly description: string;
  readonly queries: readonly AlarmQuery[];
  readonly threshold: number;
  readonly comparisonOperator: 'GreaterThanThreshold' | 'LessThanThreshold';
  readonly evaluationPeriods: number;
  /** A drift alarm whose ALARM may start the retraining pipeline (monitoring.retrainOnDrift). */
  readonly startsRetraining: boolean;
  /**
   * A period without records: `notBreaching` where no records means no traffic or no pods
   * (other alarms cover those); `breaching` for the heartbeat, whose whole point is
   * missing records; `ignore` for drift, whose figures pause while a rollout's new pods
   * fill their windows: the alarm keeps its state instead of going OK and then ALARM
   * again, which would start another retraining execution after every rollout.
   */
  readonly treatMissingData: 'notBreaching' | 'breaching' | 'ignore';
}

export interface ApiAlarmOptions {
  /**
   * The heartbeat alarm (api-metrics-missing). Off where the nodes scale to zero on a
   * schedule (cost.demoHours): a cluster asleep sends no records either.
   */
  readonly heartbeat: boolean;
}

const PERIOD = 300;

/** The API's alarms for one stack. */
export function apiAlarms(stack: string, t: AlarmThresholds, options: ApiAlarmOptions = { heartbeat: true }): ApiAlarm[] {
  const ns = apiMetricNamespace(stack);
  const metric = (id: string, metricName: string, stat: MetricStat['stat']): AlarmQuery => ({ id, metric: { namespace: ns, metricName, stat, period: PERIOD } });
  const single = (metricName: string, stat: MetricStat['stat']): AlarmQuery[] => [{ ...metric('m', metricName, stat), returnData: true }];
  const heartbeat: ApiAlarm[] = options.heartbeat
    ? [{
        // Every process writes ModelReady once per interval (60 s): 5 samples per process in a period.
        id: 'api-metrics-missing',
        prometheusAlert: 'PricesenseMetricsMissing',
        description:
          'No API metrics records reached CloudWatch for 15 minutes: no API pod runs, or the EMF path (pod → CloudWatch agent on its node, TCP 25888 → log group) is broken. ' +
          'Every other API alarm is blind until this clears. Check the pods\' emf_sink_failed log lines and pricesense_emf_records_dropped_total',
        queries: single(API_METRICS.modelReady, 'SampleCount'),
        threshold: 1,
        comparisonOperator: 'LessThanThreshold',
        evaluationPeriods: 3,
        startsRetraining: false,
        treatMissingData: 'breaching',
      }]
    : [];
  return [
    ...heartbeat,
    {
      id: 'api-5xx-rate',
      prometheusAlert: 'PricesenseHigh5xxRate',
      description: `API 5xx responses above ${t.error5xxPercent}% of requests (probes excluded) for 10 minutes; shed requests (503 overloaded, RequestsShed) count: sustained shedding means too little capacity`,
      queries: [
        metric('requests', API_METRICS.requests, 'Sum'),
        metric('errors', API_METRICS.errors5xx, 'Sum'),
        { id: 'rate', expression: 'IF(requests > 0, 100 * errors / requests, 0)', label: '5xx %', returnData: true },
      ],
      threshold: t.error5xxPercent,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 2,
      startsRetraining: false,
      treatMissingData: 'notBreaching',
    },
    {
      // The percentile of the latency distribution itself: the records carry each histogram bucket's
      // count at its upper bound, so with T a bound, p99 > T exactly when more than 1% are slower than T.
      id: 'api-p99-latency',
      prometheusAlert: 'PricesenseHighP99Latency',
      description: `API p99 latency above ${t.p99LatencyMs} ms for 15 minutes (p99 of LatencyMs; each request counts at its histogram bucket's upper bound)`,
      queries: single(API_METRICS.latency, 'p99'),
      threshold: t.p99LatencyMs,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 3,
      startsRetraining: false,
      treatMissingData: 'notBreaching',
    },
    {
      id: 'api-model-load-failures',
      prometheusAlert: 'PricesenseModelLoadFailed',
      description: 'A model version failed to load (fetch, checksum, parse or compile); the previous model keeps serving. See the model_load_failed log line',
      queries: single(API_METRICS.modelLoadFailures, 'Sum'),
      threshold: 0,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 1,
      startsRetraining: false,
      treatMissingData: 'notBreaching',
    },
    {
      id: 'api-no-model',
      prometheusAlert: 'PricesenseNoModelServed',
      description: 'An API process has served no model for 15 minutes: nothing approved in the registry, the registry unreachable, or every load failed (see /ready)',
      queries: single(API_METRICS.modelReady, 'Minimum'),
      threshold: 1,
      comparisonOperator: 'LessThanThreshold',
      evaluationPeriods: 3,
      startsRetraining: false,
      treatMissingData: 'notBreaching',
    },
    {
      id: 'drift-psi',
      prometheusAlert: 'PricesenseFeatureDrift',
      description: `Input drift: a feature's PSI against the training data above ${t.driftPsi} for 15 minutes`,
      queries: single(API_METRICS.driftPsi, 'Maximum'),
      threshold: t.driftPsi,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 3,
      startsRetraining: true,
      treatMissingData: 'ignore',
    },
    {
      id: 'drift-unknown-categories',
      prometheusAlert: 'PricesenseUnknownCategories',
      description: `More than ${t.unknownCategoryPercent}% of a categorical feature's values were never seen in training, for 15 minutes`,
      queries: single(API_METRICS.unknownCategoryShare, 'Maximum'),
      threshold: t.unknownCategoryPercent / 100,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 3,
      startsRetraining: true,
      treatMissingData: 'ignore',
    },
    {
      // Usually an upstream data problem: retraining on it would learn the breakage, so it only notifies.
      id: 'drift-missing-values',
      prometheusAlert: 'PricesenseMissingValues',
      description: `A feature arrives missing more than ${t.missingIncreasePercent} percentage points more often than in training, for 15 minutes`,
      queries: single(API_METRICS.missingShareIncrease, 'Maximum'),
      threshold: t.missingIncreasePercent / 100,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 3,
      startsRetraining: false,
      treatMissingData: 'ignore',
    },
  ];
}
