/**
 * Running the service as a program: one process, or with `workers > 1` a node:cluster
 * primary that forks one worker per core (they share the listening port), forwards
 * SIGTERM/SIGINT, and replaces workers that die unexpectedly. In Kubernetes run one
 * process per pod and scale with replicas instead.
 *
 * A worker joins the shared port only once it can answer: it loads first and listens
 * when its model is ready. Until then the primary hands its siblings every connection,
 * so a restarted or slow worker never answers 503 "not ready" while the others serve.
 * Only when no worker is listening at all (nothing approved yet, registry down) does a
 * worker listen not-ready, so /health and /ready can say why.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Command } from 'commander';
import { ClusterMetricsPrimary, clusterMetricsWorker } from './cluster-metrics';
import { loadConfig, type ApiConfig, type RawConfig } from './config';
import type { ModelManager } from './model-manager';
import { createLogger, createServer } from './server';

/** Worker ↔ primary messages about who is listening on the shared port. */
type ClusterMessage = { pricesense: 'joined' } | { pricesense: 'anyone-listening?' } | { pricesense: 'listening'; others: number };

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
    .option('--max-event-loop-delay <duration>', 'shed prediction requests while the median event-loop delay is above this; 0 = off (env PRICESENSE_MAX_EVENT_LOOP_DELAY, default 100ms)')
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

async function runSingle(config: ApiConfig): Promise<number> {
  const running = await createServer(config);
  // One /metrics for the whole cluster, whichever worker a scrape reaches.
  if (cluster.isWorker) running.service.metrics.scrape = clusterMetricsWorker(running.service.metrics.registry);
  // Handlers first: a SIGTERM (or the primary's shutdown) during the model load must stop the process cleanly too.
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      running.service.logger.info({ event: 'signal', signal }, `${signal} received`);
      void running.close().then(({ drained }) => resolve(drained ? 0 : 1));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    // The primary asks workers to stop over IPC as well (signals do not reach them on every platform).
    if (cluster.isWorker) process.on('message', (msg) => msg === 'shutdown' && onSignal('SIGTERM'));
  });
  await running.start(cluster.isWorker ? { beforeListen: joinWhenAnswerable } : {});
  if (cluster.isWorker && running.server.listening) process.send?.({ pricesense: 'joined' } satisfies ClusterMessage);
  return stopped;
}

/** A worker's gate to the shared port (see the file comment). */
async function joinWhenAnswerable(manager: ModelManager): Promise<void> {
  if (manager.ready) return;
  if ((await listeningSiblings()) === 0) return;
  await manager.whenReady();
}

function listeningSiblings(): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (msg: unknown) => {
      if (isClusterMessage(msg) && msg.pricesense === 'listening') {
        process.off('message', onMessage);
        resolve(msg.others);
      }
    };
    process.on('message', onMessage);
    process.send?.({ pricesense: 'anyone-listening?' } satisfies ClusterMessage);
  });
}

async function runPrimary(config: ApiConfig): Promise<number> {
  const logger = createLogger(config.logLevel);
  let stopping = false;
  const restarts: number[] = [];
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS ?? '') });
  // Workers that have joined the shared port: a new worker asks before joining not-ready.
  const listening = new Set<number>();
  const fork = () => cluster.fork({ PRICESENSE_WORKER: '1' });
  new ClusterMetricsPrimary();
  cluster.on('message', (worker: Worker, msg: unknown) => {
    if (!isClusterMessage(msg)) return;
    if (msg.pricesense === 'joined') listening.add(worker.id);
    else if (msg.pricesense === 'anyone-listening?') {
      const others = [...listening].filter((id) => id !== worker.id).length;
      worker.send({ pricesense: 'listening', others } satisfies ClusterMessage);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id);
    if (stopping) return;
    logger.error({ event: 'worker_exited', pid: worker.process.pid, code, signal }, 'worker died; starting a replacement');
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && restarts[0] < now - 60_000) restarts.shift();
    // A worker that cannot start at all would otherwise be forked in a tight loop.
    if (restarts.length > config.workers * 5) {
      logger.fatal({ event: 'crash_loop', restarts: restarts.length }, 'workers keep dying; giving up');
      process.exit(1);
    }
    fork();
  });
  for (let i = 0; i < config.workers; i++) fork();
  logger.info({ event: 'primary_started', workers: config.workers, port: config.port }, `started ${config.workers} workers`);
  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ event: 'signal', signal }, `${signal} received; stopping workers`);
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is NonNullable<typeof w> => w !== undefined);
      let remaining = workers.length;
      let clean = true;
      if (remaining === 0) resolve(0);
      const kill = setTimeout(() => {
        for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
      }, config.shutdownTimeoutMs + 2000);
      for (const w of workers) {
        w.once('exit', (code) => {
          if (code !== 0) clean = false;
          if (--remaining === 0) {
            clearTimeout(kill);
            logger.flush(() => resolve(clean ? 0 : 1));
          }
        });
        w.send('shutdown');
      }
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
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
