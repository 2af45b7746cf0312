/**
 * Which model answers: loads the registry's latest Approved version, polls the
 * registry and hot-swaps when that changes (a new approval or a rollback), and keeps
 * an optional challenger (canary or shadow).
 *
 * Swapping is a single reference assignment. A request reads `route()` once when it
 * starts and uses that ServedModel to the end, so in-flight requests finish on the
 * model they started with and nothing is ever half-swapped. A version that fails to
 * load never replaces a working one: the failure is kept for /ready and counted.
 */
import type { Logger } from 'pino';
import type { FeatureStats } from '../etl/gold-schema';
import type { FeatureSpec, ForestFileV1 } from '../model/format';
import { loadForestInWorker, type LoadedForest } from '../model/forest-loader';
import type { ModelVersion, Registry } from '../model/registry/types';
import type { CompiledForest } from '../model/walker';
import type { ChallengerConfig } from './config';
import { DriftMonitor } from './drift';
import type { ApiMetrics, DriftSource, Role } from './metrics';
import { ResponseEncoder } from './predict';
import { RequestValidator } from './validation';

export interface ServedModel {
  readonly name: string;
  readonly version: number;
  /** String(version): the metrics label and the OIP model_version. */
  readonly versionLabel: string;
  readonly sha256: string;
  readonly registryEntry: ModelVersion;
  readonly forest: CompiledForest;
  readonly features: readonly FeatureSpec[];
  readonly classes: readonly string[];
  readonly validator: RequestValidator;
  /** The constant parts of this model's single-row responses. */
  readonly encoder: ResponseEncoder;
  readonly drift: DriftMonitor;
  readonly training: ForestFileV1['training'];
  readonly evaluation: Record<string, unknown>;
  readonly featureStats: Record<string, FeatureStats>;
  readonly aggregation: string;
  readonly trees: number;
  readonly loadedAt: string;
  readonly loadSeconds: number;
  /** Where the load time went, in ms: registry fetch (with checksum), parse (schema + decode, in a worker thread), compile (packing in the worker, then adopting it here), the rest (validators, drift). */
  readonly loadPhasesMs: LoadPhases;
}

export interface LoadPhases {
  fetch: number;
  parse: number;
  compile: number;
  validators: number;
}

export interface Challenger {
  readonly model: ServedModel;
  readonly mode: ChallengerConfig['mode'];
  readonly percent: number;
}

/** The models a request uses, captured once at its start. */
export interface Route {
  readonly model: ServedModel;
  readonly role: Exclude<Role, 'shadow'>;
  readonly shadow: ServedModel | undefined;
}

export interface LoadFailure {
  readonly version: number;
  readonly role: Role;
  readonly error: string;
  readonly at: string;
}

export interface ModelManagerOptions {
  readonly registry: Registry;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
  readonly modelName?: string;
  readonly pollIntervalMs?: number;
  readonly batchLimit?: number;
  readonly driftWindow?: number;
  readonly championVersion?: number;
  readonly challenger?: ChallengerConfig;
  /** Injectable for the canary split test; Math.random by default. */
  readonly random?: () => number;
}

export interface ManagerStatus {
  ready: boolean;
  reason?: string;
  champion?: ModelSummary;
  challenger?: ModelSummary & { mode: string; percent: number };
  challengerProblem?: string;
  lastPoll?: { at: string; ok: boolean; error?: string };
  lastLoadFailure?: LoadFailure;
  pollIntervalMs: number;
}

export interface ModelSummary {
  name: string;
  version: number;
  sha256: string;
  loadedAt: string;
  loadSeconds: number;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class ModelManager {
  readonly registry: Registry;
  readonly metrics: ApiMetrics;
  readonly modelName: string;
  readonly pollIntervalMs: number;
  readonly batchLimit: number;
  private readonly logger: Logger;
  private readonly driftWindow: number;
  private readonly championPin: number | undefined;
  private readonly challengerConfig: ChallengerConfig | undefined;
  private readonly random: () => number;
  private championModel: ServedModel | undefined;
  private challengerState: Challenger | undefined;
  private challengerProblem: string | undefined;
  private notReadyReason = 'starting: no model loaded yet';
  private lastPoll: ManagerStatus['lastPoll'];
  private lastLoadFailure: LoadFailure | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlightRefresh: Promise<void> | undefined;
  private stopped = false;
  private draining = false;

  constructor(options: ModelManagerOptions) {
    this.registry = options.registry;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.modelName = options.modelName ?? 'pricesense';
    this.pollIntervalMs = options.pollIntervalMs ?? 30_000;
    this.batchLimit = options.batchLimit ?? 1000;
    this.driftWindow = options.driftWindow ?? 5000;
    this.championPin = options.championVersion;
    this.challengerConfig = options.challenger;
    this.random = options.random ?? Math.random;
    this.metrics.setDriftSources(() => this.driftSources());
  }

  get champion(): ServedModel | undefined {
    return this.championModel;
  }

  get challenger(): Challenger | undefined {
    return this.challengerState;
  }

  get ready(): boolean {
    return this.championModel !== undefined && !this.draining;
  }

  /** First load, then polling. Resolves even when nothing could be loaded: the server then reports not ready and keeps polling. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Readiness goes false while the server drains, so load balancers stop sending new work. */
  markDraining(): void {
    this.draining = true;
    this.notReadyReason = 'shutting down';
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.refresh().finally(() => this.schedule());
    }, this.pollIntervalMs);
    this.timer.unref();
  }

  /** The model(s) for one request. Undefined when no model is loaded. */
  route(): Route | undefined {
    const champion = this.championModel;
    if (!champion) return undefined;
    const ch = this.challengerState;
    if (!ch) return { model: champion, role: 'champion', shadow: undefined };
    if (ch.mode === 'shadow') return { model: champion, role: 'champion', shadow: ch.model };
    if (this.random() * 100 < ch.percent) return { model: ch.model, role: 'canary', shadow: undefined };
    return { model: champion, role: 'champion', shadow: undefined };
  }

  /** A served model by version (champion or challenger), for version-addressed OIP calls. */
  /** A served version clients may address directly: the champion or a canary. A shadow may be unapproved, so it never answers. */
  byVersion(version: string): ServedModel | undefined {
    if (this.championModel?.versionLabel === version) return this.championModel;
    const ch = this.challengerState;
    if (ch && ch.mode === 'canary' && ch.model.versionLabel === version) return ch.model;
    return undefined;
  }

  /** One registry poll; concurrent callers share it. */
  refresh(): Promise<void> {
    if (!this.inFlightRefresh) {
      this.inFlightRefresh = this.doRefresh().finally(() => {
        this.inFlightRefresh = undefined;
      });
    }
    return this.inFlightRefresh;
  }

  private async doRefresh(): Promise<void> {
    const at = new Date().toISOString();
    let target: ModelVersion | undefined;
    try {
      target = await this.resolveChampion();
    } catch (err) {
      this.metrics.registryPollFailures.inc();
      this.lastPoll = { at, ok: false, error: errorMessage(err) };
      if (!this.championModel) this.notReadyReason = `registry ${this.registry.uri} unavailable: ${errorMessage(err)}`;
      this.logger.warn({ event: 'registry_poll_failed', registry: this.registry.uri, err: errorMessage(err) }, 'registry poll failed; serving the current model');
      return;
    }
    this.lastPoll = { at, ok: true };
    if (!target) {
      if (this.championModel) {
        // Nothing is approved any more (the served version was rejected): stop serving it.
        this.logger.warn({ event: 'model_withdrawn', version: this.championModel.version }, 'no approved version in the registry; withdrawing the served model');
        this.setChampion(undefined);
      }
      this.notReadyReason = `no Approved model version in registry ${this.registry.uri}`;
    } else if (!this.championModel || this.championModel.version !== target.version || this.championModel.sha256 !== target.forestSha256) {
      await this.loadAs(target, 'champion');
    }
    await this.refreshChallenger();
  }

  private async resolveChampion(): Promise<ModelVersion | undefined> {
    if (this.championPin !== undefined) {
      let pinned: ModelVersion | undefined;
      try {
        pinned = await this.registry.show(this.championPin);
      } catch (err) {
        // A pin to a version that does not exist must not stop serving: follow latestApproved
        // (if the registry itself is down, latestApproved fails too and the poll is a failure).
        this.logger.warn({ event: 'pinned_version_unavailable', version: this.championPin, err: errorMessage(err) }, 'pinned champion unavailable; following latestApproved');
      }
      if (pinned?.status === 'Approved') return pinned;
      if (pinned) this.logger.warn({ event: 'pinned_version_not_approved', version: this.championPin, status: pinned.status }, 'pinned champion is not Approved; following latestApproved');
    }
    return this.registry.latestApproved();
  }

  private async refreshChallenger(): Promise<void> {
    const cfg = this.challengerConfig;
    if (!cfg) return;
    let entry: ModelVersion;
    try {
      entry = await this.registry.show(cfg.version);
    } catch (err) {
      this.challengerProblem = `challenger version ${cfg.version}: ${errorMessage(err)}`;
      this.dropChallenger();
      return;
    }
    // A canary answers real traffic, so it must be Approved like the champion; a shadow
    // is never returned, so a version still pending approval may be evaluated live.
    const acceptable = cfg.mode === 'canary' ? entry.status === 'Approved' : entry.status !== 'Rejected';
    if (!acceptable) {
      this.challengerProblem = `challenger version ${cfg.version} is ${entry.status}; a ${cfg.mode} must be ${cfg.mode === 'canary' ? 'Approved' : 'Approved or PendingManualApproval'}`;
      this.dropChallenger();
      return;
    }
    const current = this.challengerState?.model;
    if (current && current.version === entry.version && current.sha256 === entry.forestSha256) return;
    const model = await this.load(entry, cfg.mode);
    if (model) {
      this.challengerProblem = undefined;
      this.setChallenger({ model, mode: cfg.mode, percent: cfg.percent });
    } else {
      this.challengerProblem = `challenger version ${cfg.version} failed to load: ${this.lastLoadFailure?.error ?? 'unknown error'}`;
    }
  }

  private async loadAs(entry: ModelVersion, role: 'champion'): Promise<void> {
    const model = await this.load(entry, role);
    if (model) {
      this.setChampion(model);
      return;
    }
    // A failed load keeps a working model — unless that model is no longer Approved (a
    // rollback whose target failed to load): serving a rejected version is never right.
    const current = this.championModel;
    if (current && !(await this.stillApproved(current.version))) {
      this.logger.warn({ event: 'model_withdrawn', version: current.version, failedTarget: entry.version }, 'the served version is no longer Approved and its replacement failed to load; withdrawing it');
      this.setChampion(undefined);
    }
    if (!this.championModel) this.notReadyReason = `model version ${entry.version} failed to load: ${this.lastLoadFailure?.error ?? 'unknown error'}`;
  }

  private async stillApproved(version: number): Promise<boolean> {
    try {
      return (await this.registry.show(version)).status === 'Approved';
    } catch {
      // The registry could not say: keep serving rather than go dark on a transient error.
      return true;
    }
  }

  private setChampion(model: ServedModel | undefined): void {
    const previous = this.championModel;
    if (previous) this.metrics.modelInfo.remove({ model_version: previous.versionLabel, role: 'champion', sha256: previous.sha256 });
    this.championModel = model;
    if (model) {
      this.metrics.modelInfo.set({ model_version: model.versionLabel, role: 'champion', sha256: model.sha256 }, 1);
      this.logger.info(
        { event: 'model_swapped', role: 'champion', from: previous?.version ?? null, to: model.version, sha256: model.sha256, loadSeconds: model.loadSeconds, loadPhasesMs: model.loadPhasesMs },
        previous ? `serving model version ${model.version} (was ${previous.version})` : `serving model version ${model.version}`,
      );
    }
  }

  private setChallenger(ch: Challenger): void {
    this.dropChallenger();
    this.challengerState = ch;
    this.metrics.modelInfo.set({ model_version: ch.model.versionLabel, role: ch.mode, sha256: ch.model.sha256 }, 1);
    this.logger.info({ event: 'challenger_loaded', mode: ch.mode, percent: ch.percent, version: ch.model.version }, `${ch.mode} challenger version ${ch.model.version} loaded`);
  }

  private dropChallenger(): void {
    const ch = this.challengerState;
    if (!ch) return;
    this.metrics.modelInfo.remove({ model_version: ch.model.versionLabel, role: ch.mode, sha256: ch.model.sha256 });
    this.challengerState = undefined;
    this.logger.warn({ event: 'challenger_dropped', version: ch.model.version, reason: this.challengerProblem }, 'challenger dropped');
  }

  /**
   * Fetch (the registry verifies the bytes against the artifact digest it recorded after
   * fully verifying them at registration), parse and pack in a worker thread (the
   * canonical re-hash would prove nothing new, see ParseForestOptions; requests keep
   * being answered meanwhile), check, adopt. Undefined on failure, which is recorded.
   */
  private async load(entry: ModelVersion, role: Role): Promise<ServedModel | undefined> {
    const started = process.hrtime.bigint();
    try {
      if (role !== 'shadow' && entry.status !== 'Approved') throw new Error(`version ${entry.version} is ${entry.status}, not Approved`);
      const bytes = await this.registry.fetch(entry.version);
      const fetched = process.hrtime.bigint();
      const loaded = await loadForestInWorker(bytes, `${this.registry.uri} version ${entry.version}`, { registryVerifiedSha256: entry.forestSha256 });
      if (loaded.summary.sha256 !== entry.forestSha256) {
        throw new Error(`forest digest ${loaded.summary.sha256} does not match the registered ${entry.forestSha256}`);
      }
      const model = buildServedModel(loaded, entry, {
        name: this.modelName,
        batchLimit: this.batchLimit,
        driftWindow: this.driftWindow,
        started,
        phases: { fetch: msBetween(started, fetched), parse: loaded.phasesMs.parse },
      });
      this.metrics.modelLoads.inc({ model_version: model.versionLabel, role });
      this.metrics.modelLoadDuration.observe(model.loadSeconds);
      return model;
    } catch (err) {
      const failure: LoadFailure = { version: entry.version, role, error: errorMessage(err), at: new Date().toISOString() };
      this.lastLoadFailure = failure;
      this.metrics.modelLoadFailures.inc({ model_version: String(entry.version), role });
      this.logger.error({ event: 'model_load_failed', ...failure }, `model version ${entry.version} failed to load; keeping the current model`);
      return undefined;
    }
  }

  status(): ManagerStatus {
    const champion = this.championModel;
    const ch = this.challengerState;
    const status: ManagerStatus = { ready: this.ready, pollIntervalMs: this.pollIntervalMs };
    if (!status.ready) status.reason = this.draining ? 'shutting down' : this.notReadyReason;
    if (champion) status.champion = summary(champion);
    if (ch) status.challenger = { ...summary(ch.model), mode: ch.mode, percent: ch.percent };
    if (this.challengerProblem) status.challengerProblem = this.challengerProblem;
    if (this.lastPoll) status.lastPoll = this.lastPoll;
    if (this.lastLoadFailure) status.lastLoadFailure = this.lastLoadFailure;
    return status;
  }

  private driftSources(): DriftSource[] {
    const out: DriftSource[] = [];
    if (this.championModel) out.push({ version: this.championModel.versionLabel, role: 'champion', drift: this.championModel.drift });
    const ch = this.challengerState;
    if (ch && ch.mode === 'canary') out.push({ version: ch.model.versionLabel, role: 'canary', drift: ch.model.drift });
    return out;
  }
}

function msBetween(from: bigint, to: bigint): number {
  return Math.round(Number(to - from) / 1e4) / 100;
}

function summary(m: ServedModel): ModelSummary {
  return { name: m.name, version: m.version, sha256: m.sha256, loadedAt: m.loadedAt, loadSeconds: m.loadSeconds };
}

export function buildServedModel(
  loaded: LoadedForest,
  entry: ModelVersion,
  options: { name: string; batchLimit: number; driftWindow: number; started?: bigint; phases?: Pick<LoadPhases, 'fetch' | 'parse'> },
): ServedModel {
  const started = options.started ?? process.hrtime.bigint();
  const { summary: doc, forest } = loaded;
  const compiled = process.hrtime.bigint();
  const validator = new RequestValidator(doc.features, options.batchLimit);
  const drift = new DriftMonitor(doc.features, doc.featureStats ?? {}, options.driftWindow);
  const done = process.hrtime.bigint();
  return {
    name: options.name,
    version: entry.version,
    versionLabel: String(entry.version),
    sha256: doc.sha256,
    registryEntry: entry,
    forest,
    features: doc.features,
    classes: doc.classes,
    validator,
    encoder: new ResponseEncoder({ name: options.name, version: entry.version, sha256: doc.sha256, classes: doc.classes }),
    drift,
    training: doc.training,
    evaluation: doc.metrics,
    featureStats: doc.featureStats,
    aggregation: doc.aggregation,
    trees: forest.treeCount,
    loadedAt: new Date().toISOString(),
    loadSeconds: Number(done - started) / 1e9,
    loadPhasesMs: { fetch: options.phases?.fetch ?? 0, parse: options.phases?.parse ?? 0, compile: Math.round((loaded.phasesMs.pack + loaded.phasesMs.adopt) * 100) / 100, validators: msBetween(compiled, done) },
  };
}
