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
 * - one service record (no dimension): requests, 4xx, 5xx, the latency distribution
 *   (`LatencyMs`: the interval's histogram as Values/Counts, each bucket's requests at its
 *   upper bound, so CloudWatch computes p50/p99 over all processes and the p99 alarm reads
 *   it directly), requests slower than each latency-histogram bound (`RequestsOver250ms`), shed
 *   requests, model load and registry poll failures, whether a model is served, versions
 *   with a broken audit trail, and the largest drift figures over the features;
 * - one record per model version that answered (dimension ModelVersion): requests,
 *   5xx, rows predicted;
 * - one record per feature of the champion (dimension Feature): PSI, missing share,
 *   unknown-category share — once its drift window holds enough rows for the model's
 *   features (DriftMonitor.minRows: more bins, more rows).
 *
 * Probes (/health, /ready, /metrics, /v2/health/*) are not requests here: the kubelet's
 * 503s from a pod that is still loading must not read as a 5xx rate.
 *
 * Sinks: the log (a pino line at info on stdout: EMF allows the extra members) or a TCP
 * endpoint such as the CloudWatch agent's EMF listener (`tcp://host:25888`, one record
 * per line, with the LogGroupName the agent needs).
 *
 * A failed write loses nothing at first: the counters' baseline moves only once a write
 * is acknowledged, so the next interval's records carry the failed one's counts (for up
 * to EMF_MAX_CARRY_INTERVALS intervals; after that the counts are given up, said at
 * error). Every record not written counts in pricesense_emf_records_dropped_total, and
 * while the sink fails an error line says so every few minutes, not once: the platform's
 * heartbeat alarm (infra/api-alarms.ts) sees the silence, the pod's logs say why.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { checkTimerMs } from '../core/durations';
import { CLIENT_CLOSED, type ApiMetrics } from './metrics';

/** Names CloudWatch sees. The infra's alarms (infra/api-alarms.ts) read these; api/test/observability.test.ts ties the two. */
export const EMF_METRICS = {
  requests: 'Requests',
  requests4xx: 'Requests4xx',
  requests5xx: 'Requests5xx',
  /** Requests whose client closed the connection before the answer (logged as 499, never sent): not a 4xx, which is the client's error. */
  clientClosed: 'RequestsClientClosed',
  /** The interval's request latencies as a distribution (Values/Counts, ms). */
  latency: 'LatencyMs',
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

/**
 * A distribution as EMF carries it (the form the AWS Distro for OpenTelemetry's EMF
 * exporters write for histograms): each value with how often it occurred, CloudWatch
 * computing percentiles over them. At most 100 values; ours has one per histogram bucket.
 */
export interface EmfDistribution {
  Values: number[];
  Counts: number[];
  Count: number;
  Sum: number;
  Min: number;
  Max: number;
}

/**
 * The value standing for requests slower than the histogram's last bound (2.5 s): twice
 * that bound, so a p99 in the overflow reads 5,000 ms, "more than 2.5 s".
 */
export const LATENCY_OVERFLOW_FACTOR = 2;

/**
 * The interval's latency distribution from the histogram's per-bucket counts (cumulative,
 * by upper bound in seconds, plus the total): each bucket's requests at its upper bound in
 * ms. Undefined when there were no requests (an empty distribution is not valid EMF).
 */
export function latencyDistribution(within: ReadonlyMap<number, number>, total: number, sumSeconds: number): EmfDistribution | undefined {
  if (total <= 0) return undefined;
  const bounds = [...within.keys()].sort((a, b) => a - b);
  const Values: number[] = [];
  const Counts: number[] = [];
  let below = 0;
  for (const le of bounds) {
    const n = (within.get(le) ?? 0) - below;
    below += n;
    if (n > 0) {
      Values.push(round(le * 1000));
      Counts.push(n);
    }
  }
  if (total - below > 0) {
    Values.push(round((bounds[bounds.length - 1] ?? 1) * 1000 * LATENCY_OVERFLOW_FACTOR));
    Counts.push(total - below);
  }
  return { Values, Counts, Count: total, Sum: round(sumSeconds * 1000), Min: Math.min(...Values), Max: Math.max(...Values) };
}

interface Record_ {
  [member: string]: unknown;
  _aws: { Timestamp: number; LogGroupName?: string; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
}

/** Failed intervals whose counts the next records still carry; then they are given up. */
export const EMF_MAX_CARRY_INTERVALS = 5;
/** While the sink fails, an error line this often. */
export const EMF_FAILURE_LOG_EVERY_MS = 5 * 60_000;
/** A TCP sink that does not accept the connection within this is failing (a blackholed address would take minutes). */
const CONNECT_TIMEOUT_MS = 5000;

/** This interval's records and the counter values they were computed against. */
interface Assembled {
  readonly records: Record_[];
  readonly baseline: Map<string, number>;
}

export class EmfReporter {
  private readonly metrics: ApiMetrics;
  private readonly logger: Logger;
  private readonly options: EmfOptions;
  /** Counter values of the last records the sink acknowledged, by metric + labels. */
  private readonly previous = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private socket: net.Socket | undefined;
  /** A write not yet acknowledged: the next interval waits for it rather than count the same requests twice. */
  private writing = false;
  /** Consecutive failed intervals whose counts are still carried. */
  private carried = 0;
  private failure: { since: number; loggedAt: number; dropped: number; error: string } | undefined;
  /** Why the socket failed (the write callback only says it closed). */
  private socketError: string | undefined;

  constructor(metrics: ApiMetrics, logger: Logger, options: EmfOptions) {
    this.metrics = metrics;
    this.logger = logger;
    // A copy: the interval checked is the interval used.
    this.options = { ...options, intervalMs: checkTimerMs('EmfReporter intervalMs', options.intervalMs) };
  }

  start(): void {
    this.timer ??= setInterval(() => void this.report(), this.options.intervalMs).unref();
  }

  /** Stops the interval and writes what the last interval counted (waiting a second at most). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([this.report(), new Promise<void>((resolve) => (waited = setTimeout(resolve, 1000)))]);
    clearTimeout(waited);
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

  /** This interval's records, against the last acknowledged baseline (committed only once the sink has them). */
  async assemble(now = Date.now()): Promise<Assembled> {
    const baseline = new Map<string, number>();
    const delta = (key: string, value: number): number => {
      baseline.set(key, value);
      return value - (this.previous.get(key) ?? 0);
    };
    const m = this.metrics;
    const total = { requests: 0, r4xx: 0, r5xx: 0, clientClosed: 0, slower: new Map<number, number>(), within: new Map<number, number>(), seconds: 0 };
    const versions = new Map<string, { requests: number; r5xx: number; predictions: number }>();
    const version = (v: string) => {
      let t = versions.get(v);
      if (!t) versions.set(v, (t = { requests: 0, r5xx: 0, predictions: 0 }));
      return t;
    };
    const counts = new Map<string, number>();
    const sums = new Map<string, number>();
    const buckets = new Map<string, Map<number, number>>();
    for (const v of (await m.requestDuration.get()).values) {
      const l = v.labels as Record<string, string | number | undefined>;
      if (PROBES.has(String(l.route))) continue;
      const series = `${l.route}\u0000${l.method}\u0000${l.status}\u0000${l.model_version}`;
      if (v.metricName?.endsWith('_count')) counts.set(series, v.value);
      else if (v.metricName?.endsWith('_sum')) sums.set(series, v.value);
      else if (v.metricName?.endsWith('_bucket') && l.le !== '+Inf') {
        let b = buckets.get(series);
        if (!b) buckets.set(series, (b = new Map()));
        b.set(Number(l.le), v.value);
      }
    }
    for (const [series, count] of counts) {
      const n = delta(`requests\u0000${series}`, count);
      const [, , statusText, modelVersion] = series.split('\u0000');
      const status = Number(statusText);
      total.requests += n;
      if (status >= 500) total.r5xx += n;
      else if (status === CLIENT_CLOSED) total.clientClosed += n;
      else if (status >= 400) total.r4xx += n;
      const perVersion = version(modelVersion);
      perVersion.requests += n;
      if (status >= 500) perVersion.r5xx += n;
      total.seconds += delta(`sum\u0000${series}`, sums.get(series) ?? 0);
      for (const [le, within] of buckets.get(series) ?? []) {
        const inBucket = delta(`bucket\u0000${le}\u0000${series}`, within);
        total.within.set(le, (total.within.get(le) ?? 0) + inBucket);
        total.slower.set(le, (total.slower.get(le) ?? 0) + n - inBucket);
      }
    }
    for (const v of (await m.predictions.get()).values) {
      const n = delta(`predictions\u0000${v.labels.model_version}\u0000${v.labels.role}\u0000${v.labels.class}`, v.value);
      if (v.labels.role !== 'shadow') version(String(v.labels.model_version)).predictions += n;
    }
    const sum = async (metric: { get(): Promise<{ values: { labels: object; value: number }[] }> }, key: string) => {
      let n = 0;
      for (const v of (await metric.get()).values) n += delta(`${key}\u0000${JSON.stringify(v.labels)}`, v.value);
      return n;
    };

    const service: Record<string, number | EmfDistribution> = {
      [EMF_METRICS.requests]: total.requests,
      [EMF_METRICS.requests4xx]: total.r4xx,
      [EMF_METRICS.requests5xx]: total.r5xx,
      [EMF_METRICS.clientClosed]: total.clientClosed,
    };
    const latency = latencyDistribution(total.within, total.requests, total.seconds);
    if (latency) service[EMF_METRICS.latency] = latency;
    for (const [le, n] of [...total.slower].sort((a, b) => a[0] - b[0])) service[slowerThanName(le)] = n;
    service[EMF_METRICS.shed] = await sum(m.requestsShed, 'shed');
    service[EMF_METRICS.modelLoadFailures] = await sum(m.modelLoadFailures, 'load-failures');
    service[EMF_METRICS.registryPollFailures] = await sum(m.registryPollFailures, 'poll-failures');
    service[EMF_METRICS.modelReady] = m.readySource() ? 1 : 0;
    service[EMF_METRICS.auditBroken] = (await m.auditBroken.get()).values.length;

    const out: Record_[] = [];
    const features: Record_[] = [];
    const champion = m.driftSources().find((s) => s.role === 'champion');
    if (champion && champion.drift.reliable) {
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
    return { records: out, baseline };
  }

  private commit(baseline: Map<string, number>): void {
    for (const [key, value] of baseline) this.previous.set(key, value);
  }

  private record(now: number, dimensions: string[][], targets: Record<string, string>, values: Record<string, number | EmfDistribution>, defaultUnit: 'Count' | 'None'): Record_ {
    const unit = (name: string) => (name === EMF_METRICS.latency ? 'Milliseconds' : name === EMF_METRICS.modelReady || name.endsWith('Max') ? 'None' : defaultUnit);
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

  /** Writes this interval's records to the sink; resolves once the sink has acknowledged or refused them. */
  async report(): Promise<void> {
    if (this.writing) return;
    let assembled: Assembled;
    try {
      assembled = await this.assemble();
    } catch (err) {
      this.logger.error({ event: 'emf_failed', err: err instanceof Error ? err.message : String(err) }, 'could not assemble the metrics records');
      return;
    }
    const { records, baseline } = assembled;
    const sink = this.options.sink;
    if (sink.kind === 'log') {
      for (const r of records) this.logger.info({ event: 'metrics', ...r }, 'metrics');
      this.commit(baseline);
      return;
    }
    const lines = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    this.writing = true;
    await new Promise<void>((resolve) => {
      this.connect(sink).write(lines, (err) => {
        this.writing = false;
        if (err) this.failed(sink, records.length, baseline, err);
        else this.written(sink, baseline);
        resolve();
      });
    });
  }

  private written(sink: Extract<EmfSink, { kind: 'tcp' }>, baseline: Map<string, number>): void {
    this.commit(baseline);
    this.carried = 0;
    if (this.failure) {
      this.logger.info({ event: 'emf_sink_recovered', sink: `tcp://${sink.host}:${sink.port}`, droppedRecords: this.failure.dropped, failingSeconds: Math.round((Date.now() - this.failure.since) / 1000) }, 'metrics endpoint reachable again');
    }
    this.failure = undefined;
  }

  /** Metrics must never hold the service up: count the records, keep their counts for the next try, say so now and then. */
  private failed(sink: Extract<EmfSink, { kind: 'tcp' }>, records: number, baseline: Map<string, number>, err: Error): void {
    this.metrics.emfRecordsDropped.inc(records);
    const now = Date.now();
    const f = (this.failure ??= { since: now, loggedAt: -Infinity, dropped: 0, error: '' });
    f.dropped += records;
    f.error = this.socketError ?? err.message;
    let givenUp = false;
    if (++this.carried >= EMF_MAX_CARRY_INTERVALS) {
      this.commit(baseline);
      this.carried = 0;
      givenUp = true;
    }
    if (givenUp || now - f.loggedAt >= EMF_FAILURE_LOG_EVERY_MS) {
      f.loggedAt = now;
      this.logger.error(
        { event: 'emf_sink_failed', sink: `tcp://${sink.host}:${sink.port}`, err: f.error, droppedRecords: f.dropped, failingSeconds: Math.round((now - f.since) / 1000), countsGivenUp: givenUp },
        givenUp
          ? `cannot send metrics to the EMF endpoint; the counts of the last ${EMF_MAX_CARRY_INTERVALS} intervals are lost`
          : 'cannot send metrics to the EMF endpoint; their counts go with the next interval\'s records',
      );
    }
  }

  private connect(sink: Extract<EmfSink, { kind: 'tcp' }>): net.Socket {
    if (this.socket && !this.socket.destroyed) return this.socket;
    this.socketError = undefined;
    const socket = net.connect({ host: sink.host, port: sink.port });
    socket.unref();
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)));
    socket.once('connect', () => socket.setTimeout(0));
    // The write's callback reports the failure (failed()); this keeps the reason, the callback only says "closed".
    socket.on('error', (err) => {
      this.socketError = err.message;
      socket.destroy();
    });
    this.socket = socket;
    return socket;
  }
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
