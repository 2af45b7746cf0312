/**
 * One listening API process: logger, registry, model manager, app, HTTP server, and
 * graceful shutdown. On SIGTERM the process turns not-ready, stops accepting
 * connections, lets in-flight requests finish (answering them with Connection: close),
 * and exits when drained or at the deadline, whichever comes first.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { openRegistry } from '../model/registry';
import type { Registry } from '../model/registry/types';
import { createRequestListener, serviceVersionDefault } from './app';
import type { ApiConfig } from './config';
import { ApiMetrics } from './metrics';
import { ModelManager } from './model-manager';
import type { AccessLog } from './request-context';

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
  readonly app: ReturnType<typeof createRequestListener>['app'];
  /** What the HTTP server runs: the lean POST /predict path, then `app`. */
  readonly handler: http.RequestListener;
  readonly access: AccessLog;
  readonly manager: ModelManager;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
}

export interface ServiceDeps {
  readonly registry?: Registry;
  readonly logger?: Logger;
  readonly random?: () => number;
}

export async function createService(config: ApiConfig, deps: ServiceDeps = {}): Promise<Service> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const registry = deps.registry ?? (await openRegistry(config.registry));
  const metrics = new ApiMetrics();
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
    random: deps.random,
  });
  const { app, listener, access } = createRequestListener({ manager, logger, bodyLimitBytes: config.bodyLimitBytes, serviceVersion: serviceVersionDefault() });
  return { app, handler: listener, access, manager, metrics, logger };
}

export interface RunningServer {
  readonly server: http.Server;
  readonly port: number;
  readonly service: Service;
  /** Requests being handled right now. */
  inFlight(): number;
  /** Drain and close; resolves with whether everything finished before the deadline. */
  close(deadlineMs?: number): Promise<{ drained: boolean }>;
}

/**
 * Listens first (so liveness answers during the load), then loads the model.
 * Resolves once the first load attempt finished: ready, or not ready with a reason.
 */
export async function startServer(config: ApiConfig, deps: ServiceDeps = {}): Promise<RunningServer> {
  const service = await createService(config, deps);
  const { manager, logger } = service;
  const server = http.createServer(service.handler);
  // Longer than the usual load-balancer idle timeout (60 s), so the balancer closes first and never reuses a dead socket.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  const active = new Set<http.ServerResponse>();
  let draining = false;
  // 'close' follows every response, finished or cut off; one shared listener, no closure per request.
  function untrack(this: http.ServerResponse) {
    active.delete(this);
  }
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    active.add(res);
    if (draining) res.shouldKeepAlive = false;
    res.once('close', untrack);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  // Since process start (node boot, bundle load included): the cold-start budget is measured from there.
  const listeningMs = Math.round(process.uptime() * 1000);
  logger.info({ event: 'listening', sinceStartMs: listeningMs, port, host: config.host, registry: manager.registry.uri, pollIntervalMs: config.pollIntervalMs }, `listening on ${config.host}:${port}`);
  await manager.start();
  logger.info(
    { event: manager.ready ? 'ready' : 'not_ready', sinceStartMs: Math.round(process.uptime() * 1000), listeningSinceStartMs: listeningMs, loadPhasesMs: manager.champion?.loadPhasesMs, ...manager.status() },
    manager.ready ? 'ready' : 'not ready yet',
  );

  let closing: Promise<{ drained: boolean }> | undefined;
  const close = (deadlineMs = config.shutdownTimeoutMs): Promise<{ drained: boolean }> => {
    closing ??= new Promise((resolve) => {
      draining = true;
      // Responses still to be written tell their clients to reconnect (to another instance).
      for (const res of active) if (!res.headersSent) res.shouldKeepAlive = false;
      manager.markDraining();
      manager.stop();
      logger.info({ event: 'draining', inFlight: active.size, deadlineMs }, 'shutting down: draining in-flight requests');
      let settled = false;
      const settle = (drained: boolean) => {
        if (settled) return;
        settled = true;
        clearInterval(sweeper);
        clearTimeout(deadline);
        service.access.stop();
        logger.info({ event: 'stopped', drained, inFlight: active.size }, drained ? 'drained and stopped' : 'deadline reached; remaining connections closed');
        logger.flush();
        resolve({ drained });
      };
      server.close(() => settle(true));
      // Idle keep-alive sockets would hold server.close() open until their timeout.
      server.closeIdleConnections();
      const sweeper = setInterval(() => server.closeIdleConnections(), 25);
      const deadline = setTimeout(() => {
        server.closeAllConnections();
        settle(active.size === 0);
      }, deadlineMs);
    });
    return closing;
  };
  return { server, port, service, inFlight: () => active.size, close };
}
