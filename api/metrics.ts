/**
 * Prometheus metrics, one prom-client Registry per service instance (tests run several
 * in one process). Label children are cached: the hot path does a Map lookup and an
 * observe, not prom-client's label hashing.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DriftMonitor } from './drift';

export type Role = 'champion' | 'canary' | 'shadow';

/** What the drift gauge needs to know about each served model at scrape time. */
export interface DriftSource {
  readonly version: string;
  readonly role: Role;
  readonly drift: DriftMonitor;
}

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requestDuration: Histogram<'route' | 'method' | 'status' | 'model_version'>;
  readonly predictions: Counter<'model_version' | 'role' | 'class'>;
  readonly batchSize: Histogram<'route'>;
  readonly modelLoads: Counter<'model_version' | 'role'>;
  readonly modelLoadFailures: Counter<'model_version' | 'role'>;
  readonly modelLoadDuration: Histogram;
  readonly modelInfo: Gauge<'model_version' | 'role' | 'sha256'>;
  readonly registryPollFailures: Counter;
  readonly shadowComparisons: Counter<'champion_version' | 'shadow_version' | 'outcome'>;
  readonly drift: Gauge<'feature' | 'model_version' | 'role'>;
  readonly driftWindow: Gauge<'model_version' | 'role'>;
  private readonly durationChildren = new Map<string, { observe(v: number): void }>();
  private readonly predictionChildren = new Map<string, { inc(v?: number): void }>();
  private driftSources: () => DriftSource[] = () => [];

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requestDuration = new Histogram({
      name: 'pricesense_http_request_duration_seconds',
      help: 'HTTP request duration by route, method, status and the model version that answered',
      labelNames: ['route', 'method', 'status', 'model_version'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.predictions = new Counter({
      name: 'pricesense_predictions_total',
      help: 'Predictions made, by model version, role (champion, canary, shadow) and predicted class',
      labelNames: ['model_version', 'role', 'class'],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'pricesense_batch_size',
      help: 'Instances per prediction request',
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
    this.drift = new Gauge({
      name: 'pricesense_feature_drift_psi',
      help: 'Population stability index of live inputs against the training distribution (sliding window); >0.1 moderate, >0.25 major shift',
      labelNames: ['feature', 'model_version', 'role'],
      registers,
      collect() {
        this.reset();
        for (const s of sources()) {
          for (const [feature, psi] of s.drift.psi()) this.set({ feature, model_version: s.version, role: s.role }, psi);
        }
      },
    });
    this.driftWindow = new Gauge({
      name: 'pricesense_drift_window_rows',
      help: 'Live rows in the drift window',
      labelNames: ['model_version', 'role'],
      registers,
      collect() {
        this.reset();
        for (const s of sources()) this.set({ model_version: s.version, role: s.role }, s.drift.size);
      },
    });
  }

  setDriftSources(fn: () => DriftSource[]): void {
    this.driftSources = fn;
  }

  observeRequest(route: string, method: string, status: number, version: string, seconds: number): void {
    const key = `${route}\u0000${method}\u0000${status}\u0000${version}`;
    let child = this.durationChildren.get(key);
    if (!child) {
      child = this.requestDuration.labels({ route, method, status: String(status), model_version: version });
      // Routes are a fixed set and versions few, but unmatched paths all map to one route label, so this stays bounded.
      if (this.durationChildren.size < 10_000) this.durationChildren.set(key, child);
    }
    child.observe(seconds);
  }

  countPrediction(version: string, role: Role, label: string, n = 1): void {
    const key = `${version}\u0000${role}\u0000${label}`;
    let child = this.predictionChildren.get(key);
    if (!child) {
      child = this.predictions.labels({ model_version: version, role, class: label });
      this.predictionChildren.set(key, child);
    }
    child.inc(n);
  }
}
