/**
 * One listening API process: logger, registry, model manager, app, HTTP server, and
 * graceful shutdown. On SIGTERM the process turns not-ready, stops accepting
 * connections, lets in-flight requests finish (answering them with Connection: close),
 * and exits when drained or at the deadline, whichever comes first. The server exists
 * (and can be closed) before it listens or loads, so a signal during the load is
 * handled too.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import { loaderMemoryMb, maxDocumentBytes } from '../model/forest-loader';
import { MAX_STORED_ARTIFACT_BYTES, openRegistry } from '../model/registry';
import type { Registry } from '../model/registry/types';
import { createRequestListener, serviceVersionDefault, type RequestListenerParts } from './app';
import type { ApiConfig } from './config';
import type { LoadShedder } from './load-shedding';
import { EmfReporter } from './emf';
import { ApiMetrics } from './metrics';
import { ModelManager } from './model-manager';
import { createOtlpRecorder } from './otlp';
import { AccessLog } from './request-context';
import { createResponseTracker } from './response-tracker';

export function createLogger(level: string, destination: pino.DestinationStream | number = 1): Logger {
  const dest = typeof destination === 'number' ? pino.destination({ dest: destination, sync: false }) : destination;
  return pino(
    {
      level,
      base: { service: 'pricesense-api', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

export interface Service {
  /** The Express app: every route, /predict included (tests may drive it alone). */
  readonly app: RequestListenerParts['app'];
  /** What the HTTP server runs: the lean POST /predict path, then `app`. */
  readonly handler: http.RequestListener;
  readonly access: AccessLog;
  readonly shedder: LoadShedder;
  readonly manager: ModelManager;
  readonly metrics: ApiMetrics;
  /** Undefined when EMF is off. */
  readonly emf: EmfReporter | undefined;
  readonly logger: Logger;
}

export interface ServiceDeps {
  readonly registry?: Registry;
  readonly logger?: Logger;
  readonly random?: () => number;
  /** Clock for the retry of remembered load failures (tests). */
  readonly now?: () => number;
}

export async function createService(config: ApiConfig, deps: ServiceDeps = {}): Promise<Service> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  // An artifact is held whole while it loads: one larger than the largest document the load budget parses is refused on its size, never downloaded.
  const loaderMb = loaderMemoryMb();
  const registry =
    deps.registry ??
    (await openRegistry(config.registry, {
      maxArtifactBytes: Math.min(MAX_STORED_ARTIFACT_BYTES, maxDocumentBytes(loaderMb)),
      artifactLimitName: `this service loads (the largest forest document its load budget of ${loaderMb} MiB parses: half the container memory limit, or PRICESENSE_LOADER_MEMORY_MB)`,
    }));
  const metrics = new ApiMetrics({ perRequest: config.metrics });
  const manager = new ModelManager({
    registry,
    metrics,
    logger,
    modelName: config.modelName,
    pollIntervalMs: config.pollIntervalMs,
    batchLimit: config.batchLimit,
    driftWindow: config.driftWindow,
    championVersion: config.championVersion,
    challenger: config.challenger,
    unknownCategories: config.unknownCategories,
    random: deps.random,
    now: deps.now,
  });
  metrics.setReadySource(() => manager.ready);
  const serviceVersion = serviceVersionDefault();
  const spans = config.otlpEndpoint === undefined ? undefined : await createOtlpRecorder({ endpoint: config.otlpEndpoint, serviceName: 'pricesense-api', serviceVersion });
  const { app, listener, access, shedder } = createRequestListener({
    manager,
    logger,
    access: new AccessLog(metrics, logger, { spans }),
    bodyLimitBytes: config.bodyLimitBytes,
    serviceVersion,
    unknownCategories: config.unknownCategories,
    maxInFlight: config.maxInFlight,
    maxEventLoopDelayMs: config.maxEventLoopDelayMs,
  });
  const emf = config.emf
    ? new EmfReporter(metrics, logger, { sink: config.emf, intervalMs: config.emfIntervalMs, namespace: config.emfNamespace, logGroup: config.emfLogGroup })
    : undefined;
  return { app, handler: listener, access, shedder, manager, metrics, emf, logger };
}

export interface RunningServer {
  readonly server: http.Server;
  /** The bound port (0 until listening). */
  readonly port: number;
  readonly service: Service;
  /** Requests being handled right now. */
  inFlight(): number;
  /** Drain and close; resolves with whether everything finished before the deadline. Safe to call before start() finished. */
  close(deadlineMs?: number): Promise<{ drained: boolean }>;
}

export interface StartOptions {
  /**
   * When to take connections. Without it: listen first (liveness answers during the
   * load), then load — right for one process per pod. With it: load first, then await
   * this, then listen — right for a cluster worker, which must not take connections off
   * the shared port before it can answer them (api/serve.ts).
   */
  readonly beforeListen?: (manager: ModelManager) => Promise<void>;
}

/** A server whose start() listens and loads (in the order StartOptions says); close() works at any point. */
export interface StartableServer extends RunningServer {
  start(options?: StartOptions): Promise<void>;
  /**
   * Stops taking connections without shutting down (a cluster worker leaving the shared port
   * to a ready sibling): requests in progress finish with `Connection: close`, idle
   * keep-alive connections close so their clients reconnect to a sibling.
   */
  leavePort(): void;
  /** Takes connections again after leavePort() (a no-op when listening or closing). */
  rejoinPort(): Promise<void>;
}

export async function createServer(config: ApiConfig, deps: ServiceDeps = {}): Promise<StartableServer> {
  const service = await createService(config, deps);
  const { manager, logger } = service;
  const tracker = createResponseTracker();
  const server = http.createServer({ ServerResponse: tracker.Response }, service.handler);
  // Longer than the usual load-balancer idle timeout (60 s), so the balancer closes first and never reuses a dead socket.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  // Open connections, per connection not per request: the response count alone can stay above
  // zero after a reset connection that had pipelined requests queued (api/response-tracker.ts).
  let connections = 0;
  const closed = () => connections--;
  server.on('connection', (socket: Socket) => {
    connections++;
    socket.once('close', closed);
  });
  const inFlight = () => (connections === 0 ? 0 : tracker.inFlight());
  /** Off the port after leavePort(): resolves once the connections it still had are gone. */
  let left: Promise<void> | undefined;
  let port = 0;

  const listen = async () => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    port = (server.address() as AddressInfo).port;
    logger.info({ event: 'listening', sinceStartMs: Math.round(process.uptime() * 1000), port, host: config.host, registry: manager.registry.uri, pollIntervalMs: config.pollIntervalMs }, `listening on ${config.host}:${port}`);
  };

  let closing: Promise<{ drained: boolean }> | undefined;
  // Each step checks for a close() meanwhile: a server closed while starting never listens (or stops listening) and stops polling.
  const start = async (options: StartOptions = {}) => {
    if (closing) return;
    if (options.beforeListen) {
      await manager.start();
      await options.beforeListen(manager);
      if (closing) return;
      await listen();
      if (closing) return void server.close();
    } else {
      await listen();
      if (closing) return void server.close();
      await manager.start();
      if (closing) return;
    }
    service.emf?.start();
    logger.info(
      { event: manager.ready ? 'ready' : 'not_ready', sinceStartMs: Math.round(process.uptime() * 1000), loadPhasesMs: manager.champion?.loadPhasesMs, ...manager.status() },
      manager.ready ? 'ready' : 'not ready yet',
    );
  };

  const close = (deadlineMs = config.shutdownTimeoutMs): Promise<{ drained: boolean }> => {
    closing ??= new Promise((resolve) => {
      // Responses still to be written tell their clients to reconnect (to another instance).
      tracker.closeConnections();
      manager.markDraining();
      manager.stop();
      logger.info({ event: 'draining', inFlight: inFlight(), connections, deadlineMs }, 'shutting down: draining in-flight requests');
      let settled = false;
      const settle = (drained: boolean) => {
        if (settled) return;
        settled = true;
        clearInterval(sweeper);
        clearTimeout(deadline);
        const stopped = () => {
          logger.info({ event: 'stopped', drained, inFlight: inFlight() }, drained ? 'drained and stopped' : 'deadline reached; remaining connections closed');
          // The destination writes asynchronously: the caller may exit next, so resolve once the lines are out.
          logger.flush(() => resolve({ drained }));
        };
        // The last interval's metrics and the queued spans go out before the process does.
        void Promise.allSettled([service.emf?.stop(), service.access.stop()]).finally(stopped);
      };
      if (server.listening) server.close(() => settle(true));
      // Off the port (leavePort): drained once the connections it had are gone.
      else if (left) void left.then(() => settle(true));
      // Closed before it ever listened (a signal during the load): nothing to drain.
      else setImmediate(() => settle(true));
      // Idle keep-alive sockets would hold server.close() open until their timeout.
      server.closeIdleConnections();
      const sweeper = setInterval(() => server.closeIdleConnections(), 25);
      const deadline = setTimeout(() => {
        const idle = inFlight() === 0;
        server.closeAllConnections();
        settle(idle);
      }, deadlineMs);
    });
    return closing;
  };
  const leavePort = () => {
    if (!server.listening) return;
    left = new Promise((resolve) => server.close(() => resolve()));
    tracker.closeConnections();
    server.closeIdleConnections();
  };
  const rejoinPort = async () => {
    if (server.listening || closing) return;
    left = undefined;
    tracker.keepConnections();
    await listen();
  };
  return {
    server,
    get port() {
      return port;
    },
    service,
    inFlight,
    close,
    start,
    leavePort,
    rejoinPort,
  };
}

/**
 * Listens first (so liveness answers during the load), then loads the model.
 * Resolves once the first load attempt finished: ready, or not ready with a reason.
 */
export async function startServer(config: ApiConfig, deps: ServiceDeps = {}): Promise<RunningServer> {
  const running = await createServer(config, deps);
  await running.start();
  return running;
}
