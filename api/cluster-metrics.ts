/**
 * One /metrics for a node:cluster of workers (api/serve.ts): whichever worker a scrape
 * lands on asks the primary, which asks every live worker for its registry
 * (`getMetricsAsJSON`) and merges them with prom-client's aggregation (counters and
 * histograms summed, gauges by each gauge's `aggregator`, api/metrics.ts).
 *
 * Counters must never go backwards between scrapes, also when a worker dies and is
 * replaced: its replacement starts from zero. So the primary keeps the last values each
 * worker reported, and when a worker exits its counters and histograms move into a
 * "retired" set that every later scrape adds in (its gauges go: they describe a process
 * that is gone). What a killed worker counted after its last report is lost — a SIGKILLed
 * process cannot be asked — but nothing already reported ever disappears. A worker that
 * does not answer in time is represented by its last report, for the same reason.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import { sendIpc } from './cluster-ipc';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** Worker ↔ primary messages of the metrics exchange. */
export type MetricsMessage =
  | { pricesense: 'cluster-metrics?'; id: number }
  | { pricesense: 'cluster-metrics'; id: number; text?: string; error?: string }
  | { pricesense: 'worker-metrics?'; id: number }
  | { pricesense: 'worker-metrics'; id: number; metrics?: MetricsJson; error?: string };

function isMetricsMessage(msg: unknown): msg is MetricsMessage {
  const tag = typeof msg === 'object' && msg !== null ? (msg as { pricesense?: unknown }).pricesense : undefined;
  return tag === 'cluster-metrics?' || tag === 'cluster-metrics' || tag === 'worker-metrics?' || tag === 'worker-metrics';
}

/** How long the primary waits for the workers' registries before using their last reports. */
export const WORKER_METRICS_TIMEOUT_MS = 2000;

/** Only what may be summed into a retired worker's lasting contribution. */
function cumulativeOnly(metrics: MetricsJson): MetricsJson {
  return metrics.filter((m) => String(m.type) === 'counter' || String(m.type) === 'histogram').map((m) => ({ ...m, aggregator: 'sum' }));
}

/** The primary's side: answers workers' cluster-metrics requests. */
export class ClusterMetricsPrimary {
  /** The last report of each worker not yet retired (a dead worker stays here until its counts are in `retired`). */
  private readonly latest = new Map<number, MetricsJson>();
  private retired: MetricsJson = [];
  /** Retirements one after another: each reads and replaces `retired`. */
  private retiring: Promise<void> = Promise.resolve();
  private nextId = 1;
  private readonly pending = new Map<number, { waiting: Set<number>; done: () => void }>();

  /** `primary`: the primary's own metrics (worker restarts), added to every aggregation. */
  constructor(private readonly primary?: Registry) {
    cluster.on('message', (worker: Worker, msg: unknown) => {
      if (!isMetricsMessage(msg)) return;
      if (msg.pricesense === 'cluster-metrics?') void this.answer(worker, msg.id);
      else if (msg.pricesense === 'worker-metrics') this.received(worker, msg);
    });
    cluster.on('exit', (worker: Worker) => {
      this.retiring = this.retiring.then(() => this.retire(worker.id));
    });
  }

  private received(worker: Worker, msg: Extract<MetricsMessage, { pricesense: 'worker-metrics' }>): void {
    // A report that arrives after the exit would stay in `latest` and count twice.
    if (msg.metrics && !worker.isDead()) this.latest.set(worker.id, msg.metrics);
    const p = this.pending.get(msg.id);
    if (!p) return;
    p.waiting.delete(worker.id);
    if (p.waiting.size === 0) p.done();
  }

  private async retire(workerId: number): Promise<void> {
    for (const p of this.pending.values()) {
      p.waiting.delete(workerId);
      if (p.waiting.size === 0) p.done();
    }
    const last = this.latest.get(workerId);
    if (!last) return;
    // The worker's counts stay in `latest` (collect() adds them) until they are in `retired`;
    // both change in one tick, so no scrape sees them twice or not at all.
    const retired = await AggregatorRegistry.aggregate([this.retired, cumulativeOnly(last)]).getMetricsAsJSON();
    this.retired = retired;
    this.latest.delete(workerId);
  }

  /** Every live worker's current registry (or its last report), merged with the retired workers' counters. */
  async collect(): Promise<Registry> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
    const id = this.nextId++;
    await new Promise<void>((resolve) => {
      const waiting = new Set(workers.map((w) => w.id));
      const done = () => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve();
      };
      const timer = setTimeout(done, WORKER_METRICS_TIMEOUT_MS);
      if (waiting.size === 0) return done();
      this.pending.set(id, { waiting, done });
      // A worker whose channel closed meanwhile (it is exiting) is not waited for: its 'exit' retires its last report.
      for (const w of workers) if (!sendIpc(w.process, { pricesense: 'worker-metrics?', id } satisfies MetricsMessage)) waiting.delete(w.id);
      if (waiting.size === 0) done();
    });
    // Every report not yet retired: the live workers' and a just-exited worker's until its retirement completes.
    const own = this.primary ? [await this.primary.getMetricsAsJSON()] : [];
    return AggregatorRegistry.aggregate([...this.latest.values(), this.retired, ...own]);
  }

  private async answer(worker: Worker, id: number): Promise<void> {
    let reply: MetricsMessage;
    try {
      reply = { pricesense: 'cluster-metrics', id, text: await (await this.collect()).metrics() };
    } catch (err) {
      reply = { pricesense: 'cluster-metrics', id, error: err instanceof Error ? err.message : String(err) };
    }
    // The asking worker may have exited meanwhile (shutdown): then nobody waits for the answer.
    sendIpc(worker.process, reply);
  }
}

/**
 * A worker's side: answers the primary's requests for its registry, and returns the
 * function its /metrics route calls (the whole cluster's text).
 */
export function clusterMetricsWorker(registry: Registry): () => Promise<string> {
  let nextId = 1;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on('message', (msg: unknown) => {
    if (!isMetricsMessage(msg)) return;
    if (msg.pricesense === 'worker-metrics?') {
      registry.getMetricsAsJSON().then(
        (metrics) => sendIpc(process, { pricesense: 'worker-metrics', id: msg.id, metrics } satisfies MetricsMessage),
        (err: unknown) => sendIpc(process, { pricesense: 'worker-metrics', id: msg.id, error: String(err) } satisfies MetricsMessage),
      );
    } else if (msg.pricesense === 'cluster-metrics') {
      const w = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.text !== undefined) w?.resolve(msg.text);
      else w?.reject(new Error(`the cluster primary could not aggregate the workers' metrics: ${msg.error ?? 'no answer'}`));
    }
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the cluster primary did not answer the metrics request in time'));
      }, WORKER_METRICS_TIMEOUT_MS * 3);
      waiting.set(id, {
        resolve: (t) => (clearTimeout(timer), resolve(t)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      if (!sendIpc(process, { pricesense: 'cluster-metrics?', id } satisfies MetricsMessage)) waiting.get(id)?.reject(new Error('the cluster primary is gone'));
    });
}
