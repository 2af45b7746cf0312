/**
 * Which model answers: loads the registry's latest Approved version, polls the
 * registry and hot-swaps when that changes (a new approval or a rollback), and keeps
 * an optional challenger (canary or shadow).
 *
 * Swapping is a single reference assignment. A request reads `route()` once when it
 * starts and uses that ServedModel to the end, so in-flight requests finish on the
 * model they started with and nothing is ever half-swapped. A version that fails to
 * load never replaces a working one: the failure is kept for /ready and counted, and
 * a failure that is a property of the stored artifact (bad digest, malformed archive,
 * invalid forest, over a loader limit) is remembered per (version, digests), so the
 * version is not fetched, hashed and parsed again on every poll until the registry
 * changes it. A served model is withdrawn only when the registry says it is no longer
 * Approved (or its audit trail no longer verifies) — never because a listing came back
 * empty or the registry could not be reached.
 */
import type { Logger } from 'pino';
import { UserError } from '../core/errors';
import { loadForestInWorker, WorkerLoadError, type WorkerLoadLimits } from '../model/forest-loader';
import { AuditChainError, CorruptVersionError, InvalidArtifactError, VersionNotFoundError, VersionNotReadableError, type BrokenVersion, type ModelVersion, type Registry } from '../model/registry';
import type { ChallengerConfig, UnknownCategoryPolicy } from './config';
import { checkTimerMs } from '../core/durations';
import type { ApiMetrics, DriftSource, Role } from './metrics';
import { StallProbe } from './stall-probe';
import { buildServedModel, msBetween, type Challenger, type Route, type ServedModel } from './served-model';

export interface LoadFailure {
  readonly version: number;
  readonly role: Role;
  readonly error: string;
  readonly at: string;
  /** For a remembered failure: when the version is tried again if the registry has not changed it by then. */
  readonly retryAt?: string;
}

/** A remembered failure is retried after this, doubling per repeat up to MAX_RETRY_MS: restored bytes are picked up without a restart. */
const FIRST_RETRY_MS = 5 * 60_000;
const MAX_RETRY_MS = 6 * 3600_000;

interface RememberedFailure {
  readonly failure: LoadFailure;
  readonly retryAtMs: number;
  readonly attempts: number;
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
  readonly unknownCategories?: UnknownCategoryPolicy;
  /** Injectable for the canary split test; Math.random by default. */
  readonly random?: () => number;
  /** Injectable clock (ms) for the retry of remembered load failures; Date.now by default. */
  readonly now?: () => number;
  /** The loader worker's deadline and heap (defaults: model/forest-loader.ts). */
  readonly loaderLimits?: WorkerLoadLimits;
}

export interface ManagerStatus {
  ready: boolean;
  reason?: string;
  champion?: ModelSummary;
  challenger?: ModelSummary & { mode: string; percent: number };
  challengerProblem?: string;
  lastPoll?: { at: string; ok: boolean; error?: string };
  lastLoadFailure?: LoadFailure;
  /** Versions not served because their audit trail does not verify (last poll). */
  auditProblems?: BrokenVersion[];
  /** Versions whose artifact failed to load, not retried until the registry changes them. */
  failedVersions?: LoadFailure[];
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

/**
 * What identifies a version's bytes and standing in the registry: a new registration, a
 * rewritten record or any status change (reject, then approve again: the trail grows)
 * changes it, and the version is tried again.
 */
function artifactKey(entry: ModelVersion): string {
  return `${entry.version}\u0000${entry.forestSha256}\u0000${entry.artifactSha256}\u0000${entry.audit.length}`;
}

/**
 * Failures that are a property of the stored bytes and come back identical on a retry:
 * the registry's integrity and archive checks, the forest's format and limits (all
 * UserErrors), a digest that differs from the registered one. Anything else (an
 * allocation failure, a worker thread that died, a registry that could not be reached)
 * says nothing about the artifact and is retried at the next poll.
 */
function isDeterministic(err: unknown): boolean {
  return err instanceof UserError || err instanceof ForestDigestMismatch;
}

class ForestDigestMismatch extends Error {}

export class ModelManager {
  readonly registry: Registry;
  readonly metrics: ApiMetrics;
  readonly modelName: string;
  readonly pollIntervalMs: number;
  readonly batchLimit: number;
  private readonly logger: Logger;
  private readonly driftWindow: number;
  private readonly unknownCategories: UnknownCategoryPolicy;
  private readonly championPin: number | undefined;
  private readonly challengerConfig: ChallengerConfig | undefined;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly loaderLimits: WorkerLoadLimits;
  private championModel: ServedModel | undefined;
  private challengerState: Challenger | undefined;
  private challengerProblem: string | undefined;
  private notReadyReason = 'starting: no model loaded yet';
  private lastPoll: ManagerStatus['lastPoll'];
  private lastLoadFailure: LoadFailure | undefined;
  private auditProblems: BrokenVersion[] = [];
  /** Artifacts that failed to load, by artifactKey: not fetched again until the registry changes them or the retry time comes. */
  private readonly failed = new Map<string, RememberedFailure>();
  private timer: NodeJS.Timeout | undefined;
  private inFlightRefresh: Promise<void> | undefined;
  private stopped = false;
  private draining = false;
  private readyWaiters: (() => void)[] = [];
  private routes: { champion: Route; canary: Route | undefined; canaryPercent: number } | undefined;

  constructor(options: ModelManagerOptions) {
    this.registry = options.registry;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.modelName = options.modelName ?? 'pricesense';
    this.pollIntervalMs = options.pollIntervalMs ?? 30_000;
    // A longer delay would be clamped to 1 ms by Node: a tight poll loop (config.ts bounds the option).
    checkTimerMs('ModelManager pollIntervalMs', this.pollIntervalMs);
    this.batchLimit = options.batchLimit ?? 1000;
    this.driftWindow = options.driftWindow ?? 5000;
    this.unknownCategories = options.unknownCategories ?? 'missing';
    this.championPin = options.championVersion;
    this.challengerConfig = options.challenger;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.loaderLimits = options.loaderLimits ?? {};
    // Here, not at the first load: there a bad limit would read as that version's failure.
    if (this.loaderLimits.timeoutMs !== undefined) checkTimerMs('ModelManager loaderLimits.timeoutMs', this.loaderLimits.timeoutMs);
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
    this.wakeReadyWaiters();
  }

  /** Resolves once a champion is loaded (or the manager stops): for a worker waiting to join the shared port. */
  whenReady(): Promise<void> {
    if (this.ready || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private wakeReadyWaiters(): void {
    for (const wake of this.readyWaiters.splice(0)) wake();
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
    const routes = this.routes;
    if (!routes) return undefined;
    if (routes.canary && this.random() * 100 < routes.canaryPercent) return routes.canary;
    return routes.champion;
  }

  /** The routes a request can take, rebuilt when the champion or challenger changes: route() allocates nothing. */
  private rebuildRoutes(): void {
    const champion = this.championModel;
    const ch = this.challengerState;
    if (!champion) {
      this.routes = undefined;
      return;
    }
    this.routes = {
      champion: { model: champion, role: 'champion', shadow: ch?.mode === 'shadow' ? ch.model : undefined },
      canary: ch?.mode === 'canary' ? { model: ch.model, role: 'canary', shadow: undefined } : undefined,
      canaryPercent: ch?.mode === 'canary' ? ch.percent : 0,
    };
  }

  /** A served version clients may address directly: the champion or a canary. A shadow may be unapproved, so it never answers. */
  byVersion(version: string): ServedModel | undefined {
    if (this.championModel?.versionLabel === version) return this.championModel;
    const ch = this.challengerState;
    if (ch && ch.mode === 'canary' && ch.model.versionLabel === version) return ch.model;
    return undefined;
  }

  /** The versions served right now (champion first), as OIP lists them. */
  servedVersions(): string[] {
    const out: string[] = [];
    if (this.championModel) out.push(this.championModel.versionLabel);
    const ch = this.challengerState;
    if (ch && ch.mode === 'canary' && ch.model.versionLabel !== this.championModel?.versionLabel) out.push(ch.model.versionLabel);
    return out;
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
      // The listing failed, not necessarily the served version's record: a champion rejected meanwhile must still go.
      const current = this.championModel;
      if (current && !(await this.stillApproved(current.version))) {
        this.logger.warn({ event: 'model_withdrawn', version: current.version }, 'the served version is no longer Approved; withdrawing it');
        this.setChampion(undefined);
        this.notReadyReason = `model version ${current.version} is no longer Approved, and registry ${this.registry.uri} could not be listed: ${errorMessage(err)}`;
      }
      return;
    }
    this.lastPoll = { at, ok: true };
    if (!target) {
      const current = this.championModel;
      if (current && (await this.stillApproved(current.version))) {
        // The listing said "nothing approved" but the served version says otherwise: an inconsistent or partial answer, not a withdrawal.
        this.logger.warn({ event: 'registry_inconsistent', version: current.version }, 'the registry listed no approved version, but the served one is still Approved; keeping it');
      } else {
        if (current) {
          this.logger.warn({ event: 'model_withdrawn', version: current.version }, 'no approved version in the registry; withdrawing the served model');
          this.setChampion(undefined);
        }
        this.notReadyReason = `no Approved model version in registry ${this.registry.uri}${this.auditSuffix()}`;
      }
    } else if (!this.championModel || this.championModel.version !== target.version || this.championModel.sha256 !== target.forestSha256) {
      await this.loadAs(target, 'champion');
    }
    await this.refreshChallenger();
  }

  /** The pinned version if it is Approved and verifies, else the registry's newest servable one; records versions passed over. */
  private async resolveChampion(): Promise<ModelVersion | undefined> {
    const broken: BrokenVersion[] = [];
    let pinned: ModelVersion | undefined;
    if (this.championPin !== undefined) {
      try {
        pinned = await this.registry.show(this.championPin);
      } catch (err) {
        if (err instanceof AuditChainError || err instanceof CorruptVersionError) broken.push({ version: err.version, problem: err.problem });
        else if (!(err instanceof VersionNotFoundError)) throw err;
        // A pin to a version that does not exist (or cannot be trusted) must not stop serving: follow latestApproved.
        this.logger.warn({ event: 'pinned_version_unavailable', version: this.championPin, err: errorMessage(err) }, 'pinned champion unavailable; following latestApproved');
      }
      if (pinned && pinned.status !== 'Approved') {
        this.logger.warn({ event: 'pinned_version_not_approved', version: this.championPin, status: pinned.status }, 'pinned champion is not Approved; following latestApproved');
        pinned = undefined;
      }
    }
    const resolution = pinned ? { latest: pinned, broken: [] } : await this.registry.latestServable();
    this.setAuditProblems([...broken, ...resolution.broken]);
    return resolution.latest;
  }

  private setAuditProblems(problems: BrokenVersion[]): void {
    for (const p of problems) {
      if (!this.auditProblems.some((q) => q.version === p.version && q.problem === p.problem)) {
        this.logger.error({ event: 'audit_trail_broken', version: p.version, problem: p.problem }, `version ${p.version} is not served: its audit trail does not verify`);
      }
    }
    this.auditProblems = problems;
    this.metrics.auditBroken.reset();
    for (const p of problems) this.metrics.auditBroken.set({ model_version: String(p.version) }, 1);
  }

  private auditSuffix(): string {
    if (this.auditProblems.length === 0) return '';
    return `; passed over because their audit trail does not verify: ${this.auditProblems.map((p) => `version ${p.version} (${p.problem})`).join('; ')}`;
  }

  private async refreshChallenger(): Promise<void> {
    const cfg = this.challengerConfig;
    if (!cfg) return;
    let entry: ModelVersion;
    try {
      entry = await this.registry.show(cfg.version);
    } catch (err) {
      if (err instanceof VersionNotFoundError || err instanceof AuditChainError || err instanceof CorruptVersionError) {
        this.challengerProblem = `challenger version ${cfg.version}: ${errorMessage(err)}`;
        this.dropChallenger();
      } else {
        // The registry could not say (network, throttling): keep the challenger rather than lose it to a blip.
        this.challengerProblem = `challenger version ${cfg.version} could not be checked (${errorMessage(err)}); kept until the registry answers`;
      }
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
    if (current && current.version === entry.version && current.sha256 === entry.forestSha256) {
      this.challengerProblem = undefined;
      return;
    }
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

  /** Whether the registry still says `version` is Approved (with a verifying trail). A registry that cannot answer keeps it. */
  private async stillApproved(version: number): Promise<boolean> {
    try {
      return (await this.registry.show(version)).status === 'Approved';
    } catch (err) {
      // No permission to read it says nothing about the version: keep it, as for any error that cannot say.
      if (err instanceof VersionNotReadableError) return true;
      if (err instanceof VersionNotFoundError || err instanceof AuditChainError || err instanceof CorruptVersionError) return false;
      // The registry could not say: keep serving rather than go dark on a transient error.
      return true;
    }
  }

  private setChampion(model: ServedModel | undefined): void {
    const previous = this.championModel;
    if (previous) this.metrics.modelInfo.remove({ model_version: previous.versionLabel, role: 'champion', sha256: previous.sha256 });
    this.championModel = model;
    this.rebuildRoutes();
    if (model) {
      this.wakeReadyWaiters();
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
    this.rebuildRoutes();
    this.metrics.modelInfo.set({ model_version: ch.model.versionLabel, role: ch.mode, sha256: ch.model.sha256 }, 1);
    this.logger.info({ event: 'challenger_loaded', mode: ch.mode, percent: ch.percent, version: ch.model.version }, `${ch.mode} challenger version ${ch.model.version} loaded`);
  }

  private dropChallenger(): void {
    const ch = this.challengerState;
    if (!ch) return;
    this.metrics.modelInfo.remove({ model_version: ch.model.versionLabel, role: ch.mode, sha256: ch.model.sha256 });
    this.challengerState = undefined;
    this.rebuildRoutes();
    this.logger.warn({ event: 'challenger_dropped', version: ch.model.version, reason: this.challengerProblem }, 'challenger dropped');
  }

  /**
   * Fetch, then in the loader worker: verify the bytes against the artifact digest the
   * registry recorded after fully verifying them at registration, unpack, parse (schema +
   * structure; the canonical re-hash would prove nothing new, see ParseForestOptions),
   * pack. Nothing proportional to the trees runs on this (the serving) thread; what does —
   * the header's clone, the encoder, the drift baseline — FOREST_LIMITS.headerValues bounds.
   * Undefined on failure, which is recorded; a failure of the artifact itself is
   * remembered and not retried until the registry changes the version.
   */
  private async load(entry: ModelVersion, role: Role): Promise<ServedModel | undefined> {
    const key = artifactKey(entry);
    const known = this.failed.get(key);
    if (known && this.now() < known.retryAtMs) {
      this.lastLoadFailure = known.failure;
      return undefined;
    }
    const started = process.hrtime.bigint();
    let fetched: bigint | undefined;
    // The longest this (serving) thread stalled while the version loaded, and how much of it was its own work: logged, and the bench's swap figure.
    const stalls = new StallProbe();
    stalls.start();
    try {
      if (role !== 'shadow' && entry.status !== 'Approved') throw new Error(`version ${entry.version} is ${entry.status}, not Approved`);
      const artifact = await this.registry.fetchArtifact(entry.version);
      fetched = process.hrtime.bigint();
      // Verified, parsed and packed in a worker thread: requests keep being answered meanwhile.
      const loaded = await loadForestInWorker({ artifact }, `${this.registry.uri} version ${entry.version}`, { registryVerifiedSha256: entry.forestSha256 }, {}, this.loaderLimits);
      if (loaded.summary.sha256 !== entry.forestSha256) {
        throw new ForestDigestMismatch(`forest digest ${loaded.summary.sha256} does not match the registered ${entry.forestSha256}`);
      }
      const model = buildServedModel(loaded, entry, {
        name: this.modelName,
        batchLimit: this.batchLimit,
        driftWindow: this.driftWindow,
        unknownCategories: this.unknownCategories,
        started,
        phases: { fetch: msBetween(started, fetched), parse: loaded.phasesMs.parse },
      });
      this.forgetFailures(entry.version);
      this.metrics.modelLoads.inc({ model_version: model.versionLabel, role });
      this.metrics.modelLoadDuration.observe(model.loadSeconds);
      // One more tick, so a stall in the last synchronous stretch is counted.
      await new Promise((resolve) => setTimeout(resolve, 2));
      const { maxStallMs, maxBusyMs } = stalls.stop();
      this.logger.info(
        { event: 'model_loaded', role, version: entry.version, loadSeconds: model.loadSeconds, loadPhasesMs: model.loadPhasesMs, servingStallMs: round2(maxStallMs), servingBusyMs: round2(maxBusyMs) },
        `model version ${entry.version} loaded (${role}); meanwhile the serving thread's longest stall was ${maxStallMs.toFixed(1)} ms, ${maxBusyMs.toFixed(1)} ms of it its own work`,
      );
      return model;
    } catch (err) {
      let failure: LoadFailure = { version: entry.version, role, error: errorMessage(err), at: new Date(this.now()).toISOString() };
      this.metrics.modelLoadFailures.inc({ model_version: String(entry.version), role });
      // An artifact that fails the same way next time (ours to refuse, or the registry calls it invalid) is remembered and
      // retried with backoff; a load stopped for its deadline or heap is not: the host may have been busy, or the limit raised.
      const remembered = (isDeterministic(err) || err instanceof InvalidArtifactError) && !(err instanceof WorkerLoadError);
      if (remembered) {
        const attempts = (known?.attempts ?? 0) + 1;
        const retryAtMs = this.now() + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempts - 1));
        failure = { ...failure, retryAt: new Date(retryAtMs).toISOString() };
        this.forgetFailures(entry.version);
        this.failed.set(key, { failure, retryAtMs, attempts });
      } else {
        this.failed.delete(key);
      }
      this.lastLoadFailure = failure;
      this.logger.error(
        { event: 'model_load_failed', remembered, fetched: fetched !== undefined, ...failure },
        `model version ${entry.version} failed to load; keeping the current model${remembered ? ` (not retried before ${failure.retryAt} unless the registry changes this version)` : ''}`,
      );
      return undefined;
    } finally {
      stalls.stop();
    }
  }

  /** One remembered failure per version: an older key (the status or record since changed) is history. */
  private forgetFailures(version: number): void {
    for (const [k, f] of this.failed) if (f.failure.version === version) this.failed.delete(k);
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
    if (this.auditProblems.length > 0) status.auditProblems = this.auditProblems;
    if (this.failed.size > 0) status.failedVersions = [...this.failed.values()].map((f) => f.failure);
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

const round2 = (v: number) => Math.round(v * 100) / 100;

function summary(m: ServedModel): ModelSummary {
  return { name: m.name, version: m.version, sha256: m.sha256, loadedAt: m.loadedAt, loadSeconds: m.loadSeconds };
}
