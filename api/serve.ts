/**
 * Running the service as a program: one process, or with `workers > 1` a node:cluster
 * primary that forks one worker per core (they share the listening port), forwards
 * SIGTERM/SIGINT, and replaces workers that die unexpectedly (at once after a one-off
 * crash, with a growing delay when they keep dying). In Kubernetes run one process per
 * pod and scale with replicas instead.
 *
 * A worker joins the shared port only once it can answer: it loads first and listens
 * when its model is ready. Until then the primary hands its siblings every connection,
 * so a restarted or slow worker never answers 503 "not ready" while the others serve.
 * Only when no worker is listening at all (nothing approved yet, registry down) does a
 * worker listen not-ready, so /health and /ready can say why — and it leaves the port
 * again as soon as a ready sibling joins (until it is ready itself), so readiness seen
 * through the port never flips back from 200 to 503 while a model is served. When the
 * last listener exits, a waiting worker is asked to join anyway.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Command } from 'commander';
import { sendIpc } from './cluster-ipc';
import { Counter, Registry } from 'prom-client';
import { ClusterMetricsPrimary, clusterMetricsWorker } from './cluster-metrics';
import { loadConfig, type ApiConfig, type RawConfig } from './config';
import type { ModelManager } from './model-manager';
import { createLogger, createServer, type StartableServer } from './server';

/** Worker ↔ primary messages about stopping and about who is listening on the shared port. */
type ClusterMessage =
  | { pricesense: 'stoppable' }
  | { pricesense: 'joined'; ready: boolean }
  | { pricesense: 'anyone-listening?' }
  | { pricesense: 'listening'; others: number }
  /** To a worker listening not-ready: a ready sibling joined, leave the port until you are ready. */
  | { pricesense: 'leave' }
  /** To a worker waiting off the port: nobody listens any more, join (not ready) so /ready can say why. */
  | { pricesense: 'join-anyway' };

function isClusterMessage(msg: unknown): msg is ClusterMessage {
  return typeof msg === 'object' && msg !== null && typeof (msg as { pricesense?: unknown }).pricesense === 'string';
}

/** The flags shared by `pricesense serve` and the bundle entry (api/main.ts). */
export function addServeOptions(cmd: Command): Command {
  return cmd
    .option('--port <n>', 'port to listen on (env PORT, default 8080; 0 = any free port)')
    .option('--host <addr>', 'address to bind (env HOST, default 0.0.0.0)')
    .option('--registry <uri>', 'registry: a directory or sagemaker://<group> (env PRICESENSE_REGISTRY, default .pricesense/registry)')
    .option('--model-name <name>', 'name the model is served under (env PRICESENSE_MODEL_NAME, default pricesense)')
    .option('--poll-interval <duration>', 'registry poll interval, 100ms to 24h (env PRICESENSE_POLL_INTERVAL, default 30s)')
    .option('--batch-limit <n>', 'max instances per request (env PRICESENSE_BATCH_LIMIT, default 1000)')
    .option('--body-limit <size>', 'max request body, e.g. 2mb (env PRICESENSE_BODY_LIMIT, default 2mb)')
    .option('--champion-version <n>', 'serve this Approved version instead of the latest (env PRICESENSE_CHAMPION_VERSION)')
    .option('--canary <version:percent>', 'challenger answering a share of traffic, e.g. 7:10 (env PRICESENSE_CANARY)')
    .option('--shadow <version>', 'challenger scored on every request but never returned (env PRICESENSE_SHADOW)')
    .option('--drift-window <n>', 'live rows kept for the PSI drift gauges (env PRICESENSE_DRIFT_WINDOW, default 5000)')
    .option('--shutdown-timeout <duration>', 'drain deadline on SIGTERM, up to 1h (env PRICESENSE_SHUTDOWN_TIMEOUT, default 10s)')
    .option('--unknown-categories <policy>', 'a category unseen at training: "missing" scores it as missing and marks it, "reject" answers 422 (env PRICESENSE_UNKNOWN_CATEGORIES, default missing)')
    .option('--max-in-flight <n>', 'prediction requests one process works on at once; more get 503 + Retry-After (env PRICESENSE_MAX_IN_FLIGHT, default 256)')
    .option('--max-event-loop-delay <duration>', 'shed prediction requests reached this far into a busy event-loop turn, once the loop has been behind that long; 0 = off (env PRICESENSE_MAX_EVENT_LOOP_DELAY, default 100ms)')
    .option('--metrics <on|off>', 'record requests in the metrics (duration histogram, prediction counters, drift windows); off leaves /metrics with process and model-lifecycle metrics only (env PRICESENSE_METRICS, default on)')
    .option('--emf <sink>', 'CloudWatch EMF metric records once per interval: tcp://host:port (CloudWatch agent), "log" (stdout, only where it reaches CloudWatch Logs unwrapped) or "off" (env PRICESENSE_EMF, default off)')
    .option('--emf-interval <duration>', 'EMF reporting interval, 100ms to 1h (env PRICESENSE_EMF_INTERVAL, default 60s)')
    .option('--emf-namespace <ns>', 'CloudWatch namespace of the EMF metrics (env PRICESENSE_EMF_NAMESPACE, default pricesense)')
    .option('--emf-log-group <name>', 'log group the CloudWatch agent writes EMF records to (env PRICESENSE_EMF_LOG_GROUP)')
    .option('--otlp-endpoint <url>', 'export a span per request to this OTLP/HTTP collector (<url>/v1/traces), or "off" (env PRICESENSE_OTLP_ENDPOINT, default off)')
    .option('--log-level <level>', 'pino level (env PRICESENSE_LOG_LEVEL, default info)')
    .option('--workers <n>', 'processes (node:cluster), a number or "auto" = one per core (env PRICESENSE_WORKERS, default 1)');
}

/** Commander's parsed options → RawConfig strings. */
export function rawConfigFromOptions(opts: Record<string, unknown>): RawConfig {
  const raw: RawConfig = {};
  for (const [k, v] of Object.entries(opts)) if (typeof v === 'string') (raw as Record<string, string>)[k] = v;
  return raw;
}

/** Runs until a signal stops it. Resolves when the process should exit, with the exit code. */
export async function runServe(config: ApiConfig): Promise<number> {
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config);
  return runSingle(config);
}

/** The first stop request (SIGTERM, SIGINT, or in a worker the primary's 'shutdown' message). */
interface StopRequest {
  readonly signal: Promise<NodeJS.Signals>;
  /** Whether it has come already. */
  readonly requested: () => boolean;
}

/**
 * Installed before anything else, so a stop during the registry open or the model load is
 * never lost; later signals are absorbed (a second SIGTERM must not kill a process that
 * is draining). A worker then tells the primary it can be stopped: a 'shutdown' sent
 * before this listener existed was dropped, and the primary repeats it.
 */
function listenForStop(): StopRequest {
  let requested = false;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      requested = true;
      resolve(sig);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    if (cluster.isWorker) {
      process.on('message', (msg) => msg === 'shutdown' && onSignal('SIGTERM'));
      sendIpc(process, { pricesense: 'stoppable' } satisfies ClusterMessage);
    }
  });
  return { signal, requested: () => requested };
}

async function runSingle(config: ApiConfig): Promise<number> {
  const stop = listenForStop();
  const running = await createServer(config);
  // One /metrics for the whole cluster, whichever worker a scrape reaches.
  if (cluster.isWorker) running.service.metrics.scrape = clusterMetricsWorker(running.service.metrics.registry);
  const stopped = stop.signal.then(async (signal) => {
    running.service.logger.info({ event: 'signal', signal }, `${signal} received`);
    const { drained } = await running.close();
    return drained ? 0 : 1;
  });
  // Stopped while the registry was opening: nothing to start.
  if (stop.requested()) return stopped;
  if (cluster.isWorker) process.on('message', (msg) => isClusterMessage(msg) && msg.pricesense === 'leave' && void leaveUntilReady(running));
  // Not awaited before `stopped`: a stop during a long model load exits once drained, not after the load.
  const started = running.start(cluster.isWorker ? { beforeListen: joinWhenAnswerable } : {}).then(() => {
    if (cluster.isWorker && running.server.listening) sendIpc(process, { pricesense: 'joined', ready: running.service.manager.ready } satisfies ClusterMessage);
  });
  return Promise.race([stopped, started.then(() => stopped)]);
}

/** A worker's gate to the shared port (see the file comment). Exported for its test. */
export async function joinWhenAnswerable(manager: Pick<ModelManager, 'ready' | 'whenReady'>): Promise<void> {
  if (manager.ready) return;
  const reply = nextMessage('listening');
  // Before asking: a 'join-anyway' can come in the same read as the reply, and IPC drops a message nobody listens for yet.
  const empty = nextMessage('join-anyway');
  sendIpc(process, { pricesense: 'anyone-listening?' } satisfies ClusterMessage);
  if ((await reply.message).others === 0) return empty.cancel();
  await readyOrPortEmpty(manager, empty);
}

/** Off the port while a ready sibling serves, back on once this worker is ready (or nobody listens any more). */
async function leaveUntilReady(running: StartableServer): Promise<void> {
  const { manager, logger } = running.service;
  if (!running.server.listening) return;
  if (!manager.ready) {
    running.leavePort();
    logger.info({ event: 'port_left', reason: manager.status().reason }, 'a ready sibling serves the port; taking no connections until this worker is ready');
    await readyOrPortEmpty(manager);
    await running.rejoinPort();
    if (!running.server.listening) return;
    logger.info({ event: manager.ready ? 'ready' : 'not_ready', rejoined: true, ...manager.status() }, manager.ready ? 'ready' : 'not ready yet');
  }
  sendIpc(process, { pricesense: 'joined', ready: manager.ready } satisfies ClusterMessage);
}

/** Resolves once the model is ready, the manager stops, or the primary says nobody is listening. */
async function readyOrPortEmpty(manager: Pick<ModelManager, 'whenReady'>, empty = nextMessage('join-anyway')): Promise<void> {
  await Promise.race([manager.whenReady(), empty.message]);
  empty.cancel();
}

/** The primary's next message tagged `tag`; cancel() stops listening for it. */
function nextMessage<T extends ClusterMessage['pricesense']>(tag: T): { message: Promise<Extract<ClusterMessage, { pricesense: T }>>; cancel(): void } {
  let onMessage: (msg: unknown) => void = () => undefined;
  const message = new Promise<Extract<ClusterMessage, { pricesense: T }>>((resolve) => {
    onMessage = (msg: unknown) => {
      if (!isClusterMessage(msg) || msg.pricesense !== tag) return;
      process.off('message', onMessage);
      resolve(msg as Extract<ClusterMessage, { pricesense: T }>);
    };
    process.on('message', onMessage);
  });
  return { message, cancel: () => process.off('message', onMessage) };
}

/**
 * The primary's view of the shared port: which workers listen (and whether they were ready
 * when they joined) and which wait off it. Exported for its test.
 */
export class PortRoster {
  private readonly listening = new Map<number, boolean>();
  private readonly waiting = new Set<number>();

  /**
   * A not-ready worker asks whether anyone listens; the answer is how many others do. With
   * nobody, it is counted as listening (not ready) from this answer on, not from its
   * 'joined': two workers that ask before either has joined must not both be told "nobody"
   * and both listen not ready.
   */
  ask(id: number): number {
    const others = [...this.listening.keys()].filter((k) => k !== id).length;
    if (others > 0) this.waiting.add(id);
    else this.listening.set(id, false);
    return others;
  }

  /** A worker listens now. Returns the workers to tell to leave: not-ready ones beside a ready one (this one, too, if a ready sibling got there first). */
  joined(id: number, ready: boolean): number[] {
    this.waiting.delete(id);
    this.listening.set(id, ready);
    const readyOther = [...this.listening].some(([k, r]) => r && k !== id);
    const leave = ready ? [...this.listening].filter(([k, r]) => !r && k !== id).map(([k]) => k) : readyOther ? [id] : [];
    for (const k of leave) {
      this.listening.delete(k);
      this.waiting.add(k);
    }
    return leave;
  }

  /** A worker exited. Returns a waiting worker to ask to join anyway when nobody listens any more. */
  exited(id: number): number | undefined {
    this.listening.delete(id);
    this.waiting.delete(id);
    if (this.listening.size > 0) return undefined;
    const [next] = this.waiting;
    if (next !== undefined) this.waiting.delete(next);
    return next;
  }
}

/** The delay before replacing a worker, from how many died in the last minute: a one-off crash is replaced at once. */
export function restartDelayMs(recentExits: number): number {
  return recentExits <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (recentExits - 2));
}
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * When the primary stops replacing workers and exits 1, so that the orchestrator sees a
 * crash loop (Kubernetes: CrashLoopBackOff) instead of a pod that restarts workers forever:
 * more than 5 per worker died in a row before they ever joined the port (they cannot start
 * at all), or more than 3 per worker that had joined died within 10 minutes (they start,
 * then crash: a model that breaks them on its first poll, OOM on a request). Backoff alone
 * caps at one restart per 30 s, and a joined worker used to reset the count.
 */
export function crashLoop(workers: number, failedStarts: number, servingCrashes: number): string | undefined {
  if (failedStarts > workers * 5) return `${failedStarts} workers in a row died before they could serve`;
  if (servingCrashes > workers * 3) return `${servingCrashes} workers died after they had joined the port, in the last ${SERVING_CRASH_WINDOW_MS / 60_000} minutes`;
  return undefined;
}
const SERVING_CRASH_WINDOW_MS = 10 * 60_000;

/** Whether a worker that exited while the cluster was stopping stopped as asked. */
function stoppedCleanly(code: number | null, signal: string | null): boolean {
  // A worker dies of SIGTERM/SIGINT only before its handlers exist (a process-group signal while it boots): it served nothing.
  return code === 0 || signal === 'SIGTERM' || signal === 'SIGINT';
}

async function runPrimary(config: ApiConfig): Promise<number> {
  const logger = createLogger(config.logLevel);
  let stopping = false;
  let clean = true;
  let allStopped: (() => void) | undefined;
  const exits: number[] = [];
  /** Workers in a row that died before they ever joined the port: a worker that cannot start at all. */
  let failedStarts = 0;
  /** When workers that had joined the port died, over the last SERVING_CRASH_WINDOW_MS: workers that start, then crash. */
  const servingCrashes: number[] = [];
  /** Set on giving up: the stop then exits 1 whatever the drain. */
  let gaveUp = false;
  const restartTimers = new Set<NodeJS.Timeout>();
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS ?? '') });
  // Every worker forked and not yet exited: the stop waits for exactly these.
  const live = new Map<number, Worker>();
  const roster = new PortRoster();
  // Workers that ever joined the port.
  const everJoined = new Set<number>();
  const tell = (id: number, msg: ClusterMessage) => {
    const w = live.get(id);
    if (w) sendIpc(w.process, msg);
  };
  // The primary's own metrics, merged into the cluster's /metrics.
  const primaryMetrics = new Registry();
  const restarts = new Counter({ name: 'pricesense_worker_restarts_total', help: 'Workers forked to replace one that died (node:cluster primary)', registers: [primaryMetrics] });
  const fork = () => {
    const worker = cluster.fork({ PRICESENSE_WORKER: '1' });
    live.set(worker.id, worker);
    logger.info({ event: 'worker_forked', worker: worker.process.pid }, 'worker started');
    // A send that fails on a closing channel is dropped by sendIpc; anything else is logged, never an uncaught 'error'.
    worker.on('error', (err: Error) => logger.warn({ event: 'worker_ipc_error', pid: worker.process.pid, err: err.message }, 'IPC with a worker failed'));
  };
  new ClusterMetricsPrimary(primaryMetrics);
  cluster.on('message', (worker: Worker, msg: unknown) => {
    if (!isClusterMessage(msg)) return;
    if (msg.pricesense === 'stoppable') {
      if (stopping) sendIpc(worker.process, 'shutdown');
    } else if (msg.pricesense === 'anyone-listening?') {
      sendIpc(worker.process, { pricesense: 'listening', others: roster.ask(worker.id) } satisfies ClusterMessage);
    } else if (msg.pricesense === 'joined') {
      everJoined.add(worker.id);
      failedStarts = 0;
      logger.info({ event: 'worker_joined', worker: worker.process.pid, ready: msg.ready }, msg.ready ? 'worker joined the port, ready' : 'worker joined the port, not ready');
      for (const id of roster.joined(worker.id, msg.ready)) tell(id, { pricesense: 'leave' });
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    const next = roster.exited(worker.id);
    live.delete(worker.id);
    const joined = everJoined.delete(worker.id);
    if (stopping) {
      if (!stoppedCleanly(code, signal)) {
        clean = false;
        logger.error({ event: 'worker_exited', pid: worker.process.pid, code, signal, during: 'shutdown' }, 'worker did not stop cleanly');
      }
      if (live.size === 0) allStopped?.();
      return;
    }
    // Nobody on the port any more: one waiting worker joins not-ready, so /health and /ready answer meanwhile.
    if (next !== undefined) tell(next, { pricesense: 'join-anyway' });
    const now = Date.now();
    exits.push(now);
    while (exits.length > 0 && exits[0] < now - 60_000) exits.shift();
    failedStarts = joined ? 0 : failedStarts + 1;
    if (joined) servingCrashes.push(now);
    while (servingCrashes.length > 0 && servingCrashes[0] < now - SERVING_CRASH_WINDOW_MS) servingCrashes.shift();
    const loop = crashLoop(config.workers, failedStarts, servingCrashes.length);
    if (loop !== undefined) {
      gaveUp = true;
      logger.fatal(
        { event: 'crash_loop', pid: worker.process.pid, code, signal, failedStarts, servingCrashes: servingCrashes.length, workers: live.size },
        `${loop}; giving up: draining the workers still running, then exiting 1`,
      );
      stop('crash_loop');
      return;
    }
    const delayMs = restartDelayMs(exits.length);
    logger.error(
      { event: 'worker_exited', pid: worker.process.pid, code, signal, joined, exitsLastMinute: exits.length, failedStarts, servingCrashes: servingCrashes.length, restartInMs: delayMs },
      delayMs === 0 ? 'worker died; starting a replacement' : `worker died (${exits.length} in the last minute); starting a replacement in ${delayMs} ms`,
    );
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      restarts.inc();
      fork();
    }, delayMs);
    restartTimers.add(timer);
  });
  let exitWith: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (exitWith = resolve));
  /** The drain of a SIGTERM/SIGINT, also when giving up on a crash loop (then exit 1). */
  const stop = (trigger: NodeJS.Signals | 'crash_loop') => {
    if (stopping) return;
    stopping = true;
    // A replacement not forked yet never will be.
    const cancelledReplacements = restartTimers.size;
    for (const t of restartTimers) clearTimeout(t);
    restartTimers.clear();
    if (trigger !== 'crash_loop') logger.info({ event: 'signal', signal: trigger, workers: live.size, cancelledReplacements }, `${trigger} received; stopping workers`);
    const kill = setTimeout(() => {
      for (const w of live.values()) w.process.kill('SIGKILL');
    }, config.shutdownTimeoutMs + 2000);
    allStopped = () => {
      clearTimeout(kill);
      logger.info({ event: 'workers_stopped', clean, crashLoop: gaveUp }, clean ? 'all workers stopped' : 'workers stopped, not all cleanly');
      logger.flush(() => exitWith(clean && !gaveUp ? 0 : 1));
    };
    if (live.size === 0) return allStopped();
    // A worker still booting has no listener yet and drops this; it says 'stoppable' once it has one.
    for (const w of live.values()) sendIpc(w.process, 'shutdown');
  };
  // `on`, not `once`: a second signal while draining must not kill the primary (and with it every worker's in-flight requests).
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (let i = 0; i < config.workers; i++) fork();
  logger.info({ event: 'primary_started', workers: config.workers, port: config.port }, `started ${config.workers} workers`);
  return exited;
}

/**
 * V8 flags for the workers, unless the operator set them: a young generation of 8 MiB
 * semi-spaces instead of 16: request garbage dies young either way, and the smaller
 * nursery keeps ~15 MiB less resident per worker. (No --expose-gc: a model load's
 * garbage lives and dies in its loader worker thread, and a forced full collection on
 * the serving thread was a swap stall of its own.)
 */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string): string[] {
  const out = [...execArgv];
  const given = (flag: string) => [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => a === flag || a.startsWith(`${flag}=`) || a.replace(/_/g, '-').startsWith(flag));
  if (!given('--max-semi-space-size')) out.push('--max-semi-space-size=8');
  return out;
}

/** Program entry used by the CLI and the bundle: flags + environment → running service → exit code. */
export async function serveMain(opts: Record<string, unknown>): Promise<void> {
  const config = loadConfig(process.env, rawConfigFromOptions(opts));
  const code = await runServe(config);
  process.exit(code);
}
