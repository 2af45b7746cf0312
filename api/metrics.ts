/**
 * Prometheus metrics, one prom-client Registry per service instance (tests run several
 * in one process). The two metrics each prediction request updates are api/metric-series.ts's
 * (no label hashing per request); the rest are prom-client's. Every metric the service emits is declared
 * here, so what /metrics exposes is one file to read.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DriftMonitor, FeatureDrift } from './drift';
import { SeriesCounter, SeriesHistogram } from './metric-series';

/**
 * When drift is a problem (docs/api.md, "Drift"): the alerts (CloudWatch and the
 * PrometheusRule) use these, and the gauges' help texts say them.
 */
export const DRIFT_THRESHOLDS = {
  /** PSI above this: moderate shift (dashboard only). */
  psiModerate: 0.1,
  /** PSI above this: major shift. */
  psi: 0.25,
  /** Share of categorical values never seen at training. */
  unknownShare: 0.05,
  /** Missing share above the training share by more than this (absolute). */
  missingShareIncrease: 0.1,
  /**
   * The fewest rows a drift window needs before its figures count; a model with more bins
   * per feature needs more (api/drift.ts minRowsForBins).
   */
  minWindowRows: 200,
} as const;

/** The status logged and counted (never sent) for a request whose client closed its connection before the answer: nginx's "client closed request". */
export const CLIENT_CLOSED = 499;

export type Role = 'champion' | 'canary' | 'shadow';

/** Why a prediction request was turned away with 503 + Retry-After (api/load-shedding.ts). */
export type ShedReason = 'in_flight' | 'event_loop_delay';

/** What the drift gauge needs to know about each served model at scrape time. */
export interface DriftSource {
  readonly version: string;
  readonly role: Role;
  readonly drift: DriftMonitor;
}

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requestDuration: SeriesHistogram;
  readonly predictions: SeriesCounter;
  readonly batchSize: Histogram<'route'>;
  readonly modelLoads: Counter<'model_version' | 'role'>;
  readonly modelLoadFailures: Counter<'model_version' | 'role'>;
  readonly modelLoadDuration: Histogram;
  readonly modelInfo: Gauge<'model_version' | 'role' | 'sha256'>;
  readonly registryPollFailures: Counter;
  readonly shadowComparisons: Counter<'champion_version' | 'shadow_version' | 'outcome'>;
  readonly drift: Gauge<'feature' | 'model_version' | 'role'>;
  readonly missingShare: Gauge<'feature' | 'model_version' | 'role'>;
  readonly missingBaseline: Gauge<'feature' | 'model_version' | 'role'>;
  readonly unknownShare: Gauge<'feature' | 'model_version' | 'role'>;
  readonly modelReady: Gauge;
  readonly driftWindow: Gauge<'model_version' | 'role'>;
  readonly driftWindowMinRows: Gauge<'model_version' | 'role'>;
  readonly requestsShed: Counter<'route' | 'reason'>;
  readonly unknownCategories: Counter<'feature' | 'model_version'>;
  readonly auditBroken: Gauge<'model_version'>;
  readonly inFlight: Gauge;
  readonly emfRecordsDropped: Counter;
  readonly coalescedRequests: Histogram;
  private readonly statusLabels: string[] = [];
  private readonly unknownChildren = new Map<string, { inc(v?: number): void }>();
  /** The served models' drift windows (set by the model manager). */
  driftSources: () => DriftSource[] = () => [];
  private inFlightSource: () => number = () => 0;
  /** Whether a champion is served (set by api/server.ts). */
  readySource: () => boolean = () => false;

  /** Whether requests are recorded (config `metrics`); off, the per-request methods do nothing. */
  readonly perRequest: boolean;

  constructor(options: { defaultMetrics?: boolean; perRequest?: boolean } = {}) {
    this.perRequest = options.perRequest !== false;
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requestDuration = new SeriesHistogram({
      name: 'pricesense_http_request_duration_seconds',
      help: 'HTTP request duration by route, method, status and the model version that answered',
      labelNames: ['route', 'method', 'status', 'model_version'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.predictions = new SeriesCounter({
      name: 'pricesense_predictions_total',
      help: 'Predictions made, by model version, role (champion, canary, shadow) and predicted class',
      labelNames: ['model_version', 'role', 'class'],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'pricesense_batch_size_rows',
      help: 'Instances (rows) per prediction request',
      labelNames: ['route'],
      buckets: [1, 10, 50, 100, 250, 500, 1000, 5000],
      registers,
    });
    this.modelLoads = new Counter({
      name: 'pricesense_model_loads_total',
      help: 'Model versions loaded and swapped in',
      labelNames: ['model_version', 'role'],
      registers,
    });
    this.modelLoadFailures = new Counter({
      name: 'pricesense_model_load_failures_total',
      help: 'Model versions that failed to load (fetch, checksum, parse or compile); the current model kept serving',
      labelNames: ['model_version', 'role'],
      registers,
    });
    this.modelLoadDuration = new Histogram({
      name: 'pricesense_model_load_duration_seconds',
      help: 'Time to fetch, verify, parse and compile a model version',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.modelInfo = new Gauge({
      name: 'pricesense_model_info',
      help: 'The model versions being served (value 1), by role and forest SHA-256',
      labelNames: ['model_version', 'role', 'sha256'],
      registers,
      aggregator: 'max',
    });
    this.registryPollFailures = new Counter({
      name: 'pricesense_registry_poll_failures_total',
      help: 'Registry polls that failed (the current model kept serving)',
      registers,
    });
    this.shadowComparisons = new Counter({
      name: 'pricesense_shadow_comparisons_total',
      help: 'Shadow challenger predictions compared with the champion answer (outcome agree or disagree)',
      labelNames: ['champion_version', 'shadow_version', 'outcome'],
      registers,
    });
    const sources = () => this.driftSources();
    // Every worker has its own drift window: across workers (api/cluster-metrics.ts) the largest reading counts.
    const perFeature = (name: string, help: string, value: (d: FeatureDrift) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['feature', 'model_version', 'role'],
        registers,
        aggregator: 'max',
        collect() {
          this.reset();
          for (const s of sources()) {
            for (const d of s.drift.featureDrift()) {
              const v = value(d);
              if (v !== undefined) this.set({ feature: d.feature, model_version: s.version, role: s.role }, v);
            }
          }
        },
      });
    this.drift = perFeature(
      'pricesense_feature_drift_psi',
      `Population stability index of live inputs against the training distribution (sliding window); >${DRIFT_THRESHOLDS.psiModerate} moderate, >${DRIFT_THRESHOLDS.psi} major shift (alert)`,
      (d) => d.psi,
    );
    this.missingShare = perFeature(
      'pricesense_feature_missing_ratio',
      `Share of missing values per feature in the drift window; alert when ${DRIFT_THRESHOLDS.missingShareIncrease} above pricesense_feature_missing_ratio_baseline`,
      (d) => d.missingShare,
    );
    this.missingBaseline = perFeature('pricesense_feature_missing_ratio_baseline', 'Share of missing values per feature in the training data', (d) => d.trainingMissingShare);
    this.unknownShare = perFeature(
      'pricesense_feature_unknown_category_ratio',
      `Share of categorical values unseen at training per feature in the drift window; alert above ${DRIFT_THRESHOLDS.unknownShare}`,
      (d) => d.unknownShare,
    );
    const perModel = (name: string, help: string, aggregator: 'min' | 'max', value: (d: DriftMonitor) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['model_version', 'role'],
        registers,
        aggregator,
        collect() {
          this.reset();
          for (const s of sources()) this.set({ model_version: s.version, role: s.role }, value(s.drift));
        },
      });
    // The drift gauges take the largest worker's reading: the alert's row gate must hold for every worker, not their sum.
    this.driftWindow = perModel('pricesense_drift_window_rows', 'Live rows in the drift window; across workers the smallest window (each worker computes its own drift)', 'min', (d) => d.size);
    this.driftWindowMinRows = perModel(
      'pricesense_drift_window_min_rows',
      'Live rows the drift window needs before its figures count (the most any feature needs: more bins, more rows; the window size if smaller)',
      'max',
      (d) => d.minRows,
    );
    this.requestsShed = new Counter({
      name: 'pricesense_requests_shed_total',
      help: 'Prediction requests answered 503 + Retry-After because the process was overloaded, by route and reason (in_flight: too many requests in progress; event_loop_delay: reached too far into a busy event-loop turn, the loop behind for the limit)',
      labelNames: ['route', 'reason'],
      registers,
    });
    this.unknownCategories = new Counter({
      name: 'pricesense_unknown_categories_total',
      help: 'Categorical values not seen in training, scored as missing (each node\'s default direction), by feature and model version',
      labelNames: ['feature', 'model_version'],
      registers,
    });
    this.auditBroken = new Gauge({
      name: 'pricesense_registry_audit_broken',
      help: 'Model versions passed over at the last registry poll because their audit trail does not verify (value 1 per version); see /ready and `pricesense registry verify`',
      labelNames: ['model_version'],
      registers,
      aggregator: 'max',
    });
    const ready = () => this.readySource();
    this.modelReady = new Gauge({
      name: 'pricesense_model_ready',
      help: 'Whether a champion model is being served (1) or not (0: nothing approved, or every load failed); across workers the lowest',
      registers,
      aggregator: 'min',
      collect() {
        this.set(ready() ? 1 : 0);
      },
    });
    this.emfRecordsDropped = new Counter({
      name: 'pricesense_emf_records_dropped_total',
      help: 'CloudWatch EMF records the sink did not take (agent unreachable); their counts go with the next interval\'s records, for up to 5 intervals (api/emf.ts)',
      registers,
    });
    this.coalescedRequests = new Histogram({
      name: 'pricesense_predict_coalesced_requests',
      help: 'POST /predict requests answered together, per pass of the event loop: their bodies complete in one pass, their rows are scored back to back, then their answers sent (api/fast-predict.ts; a request whose client closed its connection first is in the pass, not scored); above 1 under load',
      // A pass holds at most 64 requests (MAX_PASS in api/fast-predict.ts).
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    });
    const inFlight = () => this.inFlightSource();
    this.inFlight = new Gauge({
      name: 'pricesense_in_flight_requests',
      help: 'Prediction requests this process is working on',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
  }

  /**
   * The exposition /metrics answers: this registry, or with cluster workers the whole
   * cluster's (api/cluster-metrics.ts, set by api/serve.ts).
   */
  scrape: () => Promise<string> = () => this.registry.metrics();

  setReadySource(fn: () => boolean): void {
    this.readySource = fn;
  }

  /** Requests answered together in one pass (api/fast-predict.ts). */
  observeCoalesced(requests: number): void {
    if (this.perRequest) this.coalescedRequests.observe(requests);
  }

  setInFlightSource(fn: () => number): void {
    this.inFlightSource = fn;
  }

  countUnknownCategory(version: string, feature: string): void {
    if (!this.perRequest) return;
    const key = `${version}\u0000${feature}`;
    let child = this.unknownChildren.get(key);
    if (!child) {
      child = this.unknownCategories.labels({ model_version: version, feature });
      // Features are the model's, versions few: bounded.
      this.unknownChildren.set(key, child);
    }
    child.inc();
  }

  setDriftSources(fn: () => DriftSource[]): void {
    this.driftSources = fn;
  }

  observeRequest(route: string, method: string, status: number, version: string, seconds: number): void {
    if (!this.perRequest) return;
    // Routes are a fixed set (unmatched paths share one label), statuses and versions few: the series stay bounded.
    const statusLabel = (this.statusLabels[status] ??= String(status));
    this.requestDuration.at(route, method, statusLabel, version).observe(seconds);
  }

  countPrediction(version: string, role: Role, label: string, n = 1): void {
    if (!this.perRequest) return;
    this.predictions.at(version, role, label).inc(n);
  }
}
