/**
 * CloudWatch embedded metric format (EMF) records, written once per interval by every
 * process: what CloudWatch alarms on (infra/api-alarms.ts) without a log line per
 * request. Each record is one JSON line whose `_aws.CloudWatchMetrics` tells CloudWatch
 * Logs which members are metrics (the EMF specification).
 *
 * Nothing is added to the request path: at each interval the reporter reads the
 * Prometheus registry the requests already update (api/metrics.ts), takes the
 * difference with the previous interval's counters, and writes
 *
 * - one service record (no dimension): requests, 4xx, 5xx, requests slower than each
 *   latency-histogram bound (`RequestsOver250ms`: p99 > 250 ms exactly when more than 1%
 *   of requests are slower than 250 ms, so the p99 alarm needs no raw latencies), shed
 *   requests, model load and registry poll failures, whether a model is served, versions
 *   with a broken audit trail, and the largest drift figures over the features;
 * - one record per model version that answered (dimension ModelVersion): requests,
 *   5xx, rows predicted;
 * - one record per feature of the champion (dimension Feature): PSI, missing share,
 *   unknown-category share — once its drift window holds enough rows.
 *
 * Probes (/health, /ready, /metrics, /v2/health/*) are not requests here: the kubelet's
 * 503s from a pod that is still loading must not read as a 5xx rate.
 *
 * Sinks: the log (a pino line at info on stdout: EMF allows the extra members) or a TCP
 * endpoint such as the CloudWatch agent's EMF listener (`tcp://host:25888`, one record
 * per line, with the LogGroupName the agent needs).
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { DRIFT_THRESHOLDS, type ApiMetrics } from './metrics';

/** Names CloudWatch sees. The infra's alarms (infra/api-alarms.ts) read these; api/test/observability.test.ts ties the two. */
export const EMF_METRICS = {
  requests: 'Requests',
  requests4xx: 'Requests4xx',
  requests5xx: 'Requests5xx',
  /** `RequestsOver<ms>ms` for each bound of the latency histogram. */
  slowerThanPrefix: 'RequestsOver',
  shed: 'RequestsShed',
  modelLoadFailures: 'ModelLoadFailures',
  registryPollFailures: 'RegistryPollFailures',
  modelReady: 'ModelReady',
  auditBroken: 'AuditBrokenVersions',
  predictions: 'Predictions',
  driftPsiMax: 'DriftPsiMax',
  unknownShareMax: 'UnknownCategoryShareMax',
  missingIncreaseMax: 'MissingShareIncreaseMax',
  driftPsi: 'DriftPsi',
  missingShare: 'MissingShare',
  unknownShare: 'UnknownCategoryShare',
} as const;

export const EMF_DIMENSIONS = { modelVersion: 'ModelVersion', feature: 'Feature' } as const;

const PROBES = new Set(['/health', '/ready', '/metrics', '/v2/health/live', '/v2/health/ready']);

export type EmfSink = { kind: 'log' } | { kind: 'tcp'; host: string; port: number };

export interface EmfOptions {
  readonly namespace: string;
  readonly intervalMs: number;
  readonly sink: EmfSink;
  /** Where the CloudWatch agent puts the records (TCP sink). */
  readonly logGroup?: string;
}

/** `RequestsOver250ms` for 0.25 s. */
export function slowerThanName(seconds: number): string {
  return `${EMF_METRICS.slowerThanPrefix}${Math.round(seconds * 1e6) / 1e3}ms`;
}

interface Record_ {
  [member: string]: unknown;
  _aws: { Timestamp: number; LogGroupName?: string; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
}

export class EmfReporter {
  private readonly metrics: ApiMetrics;
  private readonly logger: Logger;
  private readonly options: EmfOptions;
  /** Counter values at the last report, by metric + labels. */
  private readonly previous = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private socket: net.Socket | undefined;
  private sinkFailing = false;

  constructor(metrics: ApiMetrics, logger: Logger, options: EmfOptions) {
    this.metrics = metrics;
    this.logger = logger;
    this.options = options;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.report(), this.options.intervalMs).unref();
  }

  /** Stops the interval and writes what the last interval counted. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.report();
    const socket = this.socket;
    this.socket = undefined;
    if (socket && !socket.destroyed) {
      // Flushed, or given up after a second: shutdown must not wait on a metrics endpoint.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => (socket.destroy(), resolve()), 1000);
        socket.end(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** The difference since the last call (counters only grow within a process). */
  private delta(key: string, value: number): number {
    const before = this.previous.get(key) ?? 0;
    this.previous.set(key, value);
    return value - before;
  }

  /** This interval's records (and the counters' new baseline). */
  async records(now = Date.now()): Promise<Record_[]> {
    const m = this.metrics;
    const total = { requests: 0, r4xx: 0, r5xx: 0, slower: new Map<number, number>() };
    const versions = new Map<string, { requests: number; r5xx: number; predictions: number }>();
    const version = (v: string) => {
      let t = versions.get(v);
      if (!t) versions.set(v, (t = { requests: 0, r5xx: 0, predictions: 0 }));
      return t;
    };
    const counts = new Map<string, number>();
    const buckets = new Map<string, Map<number, number>>();
    for (const v of (await m.requestDuration.get()).values) {
      const l = v.labels as Record<string, string | number | undefined>;
      if (PROBES.has(String(l.route))) continue;
      const series = `${l.route}\u0000${l.method}\u0000${l.status}\u0000${l.model_version}`;
      if (v.metricName?.endsWith('_count')) counts.set(series, v.value);
      else if (v.metricName?.endsWith('_bucket') && l.le !== '+Inf') {
        let b = buckets.get(series);
        if (!b) buckets.set(series, (b = new Map()));
        b.set(Number(l.le), v.value);
      }
    }
    for (const [series, count] of counts) {
      const n = this.delta(`requests\u0000${series}`, count);
      const [, , statusText, modelVersion] = series.split('\u0000');
      const status = Number(statusText);
      total.requests += n;
      if (status >= 500) total.r5xx += n;
      else if (status >= 400) total.r4xx += n;
      const perVersion = version(modelVersion);
      perVersion.requests += n;
      if (status >= 500) perVersion.r5xx += n;
      for (const [le, within] of buckets.get(series) ?? []) {
        const slower = n - this.delta(`bucket\u0000${le}\u0000${series}`, within);
        total.slower.set(le, (total.slower.get(le) ?? 0) + slower);
      }
    }
    for (const v of (await m.predictions.get()).values) {
      const n = this.delta(`predictions\u0000${v.labels.model_version}\u0000${v.labels.role}\u0000${v.labels.class}`, v.value);
      if (v.labels.role !== 'shadow') version(String(v.labels.model_version)).predictions += n;
    }
    const sum = async (metric: { get(): Promise<{ values: { labels: object; value: number }[] }> }, key: string) => {
      let n = 0;
      for (const v of (await metric.get()).values) n += this.delta(`${key}\u0000${JSON.stringify(v.labels)}`, v.value);
      return n;
    };

    const service: Record<string, number> = {
      [EMF_METRICS.requests]: total.requests,
      [EMF_METRICS.requests4xx]: total.r4xx,
      [EMF_METRICS.requests5xx]: total.r5xx,
    };
    for (const [le, n] of [...total.slower].sort((a, b) => a[0] - b[0])) service[slowerThanName(le)] = n;
    service[EMF_METRICS.shed] = await sum(m.requestsShed, 'shed');
    service[EMF_METRICS.modelLoadFailures] = await sum(m.modelLoadFailures, 'load-failures');
    service[EMF_METRICS.registryPollFailures] = await sum(m.registryPollFailures, 'poll-failures');
    service[EMF_METRICS.modelReady] = m.readySource() ? 1 : 0;
    service[EMF_METRICS.auditBroken] = (await m.auditBroken.get()).values.length;

    const out: Record_[] = [];
    const features: Record_[] = [];
    const champion = m.driftSources().find((s) => s.role === 'champion');
    if (champion && champion.drift.size >= Math.min(DRIFT_THRESHOLDS.minWindowRows, champion.drift.windowSize)) {
      let psiMax = 0;
      let unknownMax = 0;
      let missingIncreaseMax = 0;
      for (const d of champion.drift.featureDrift()) {
        psiMax = Math.max(psiMax, d.psi);
        unknownMax = Math.max(unknownMax, d.unknownShare ?? 0);
        missingIncreaseMax = Math.max(missingIncreaseMax, d.missingShare - d.trainingMissingShare);
        const values: Record<string, number> = { [EMF_METRICS.driftPsi]: round(d.psi), [EMF_METRICS.missingShare]: round(d.missingShare) };
        if (d.unknownShare !== undefined) values[EMF_METRICS.unknownShare] = round(d.unknownShare);
        features.push(this.record(now, [[EMF_DIMENSIONS.feature]], { [EMF_DIMENSIONS.feature]: d.feature }, values, 'None'));
      }
      service[EMF_METRICS.driftPsiMax] = round(psiMax);
      service[EMF_METRICS.unknownShareMax] = round(unknownMax);
      service[EMF_METRICS.missingIncreaseMax] = round(missingIncreaseMax);
    }
    out.push(this.record(now, [[]], {}, service, 'Count'));
    for (const [v, t] of versions) {
      if (t.requests === 0 && t.predictions === 0) continue;
      out.push(
        this.record(now, [[EMF_DIMENSIONS.modelVersion]], { [EMF_DIMENSIONS.modelVersion]: v }, {
          [EMF_METRICS.requests]: t.requests,
          [EMF_METRICS.requests5xx]: t.r5xx,
          [EMF_METRICS.predictions]: t.predictions,
        }, 'Count'),
      );
    }
    out.push(...features);
    return out;
  }

  private record(now: number, dimensions: string[][], targets: Record<string, string>, values: Record<string, number>, defaultUnit: 'Count' | 'None'): Record_ {
    const unit = (name: string) => (name === EMF_METRICS.modelReady || name.endsWith('Max') ? 'None' : defaultUnit);
    return {
      _aws: {
        Timestamp: now,
        ...(this.options.sink.kind === 'tcp' && this.options.logGroup ? { LogGroupName: this.options.logGroup } : {}),
        CloudWatchMetrics: [{ Namespace: this.options.namespace, Dimensions: dimensions, Metrics: Object.keys(values).map((Name) => ({ Name, Unit: unit(Name) })) }],
      },
      ...targets,
      ...values,
    };
  }

  /** Writes this interval's records to the sink; a failing sink is logged once and retried next interval. */
  async report(): Promise<void> {
    let records: Record_[];
    try {
      records = await this.records();
    } catch (err) {
      this.logger.error({ event: 'emf_failed', err: err instanceof Error ? err.message : String(err) }, 'could not assemble the metrics records');
      return;
    }
    const sink = this.options.sink;
    if (sink.kind === 'log') {
      for (const r of records) this.logger.info({ event: 'metrics', ...r }, 'metrics');
      return;
    }
    const lines = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const socket = this.connect(sink);
    socket.write(lines);
  }

  private connect(sink: Extract<EmfSink, { kind: 'tcp' }>): net.Socket {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const socket = net.connect({ host: sink.host, port: sink.port });
    socket.unref();
    socket.on('connect', () => {
      if (this.sinkFailing) this.logger.info({ event: 'emf_sink_recovered', sink: `tcp://${sink.host}:${sink.port}` }, 'metrics endpoint reachable again');
      this.sinkFailing = false;
    });
    socket.on('error', (err) => {
      // Records of this interval are dropped: metrics must never hold the service up.
      if (!this.sinkFailing) this.logger.warn({ event: 'emf_sink_failed', sink: `tcp://${sink.host}:${sink.port}`, err: err.message }, 'cannot send metrics to the EMF endpoint; retrying every interval');
      this.sinkFailing = true;
      socket.destroy();
    });
    this.socket = socket;
    return socket;
  }
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
