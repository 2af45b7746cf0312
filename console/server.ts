/**
 * One listening console: opens the registry (local directory or SageMaker), the lake
 * when given, the access configuration, and serves the app. A separate process from
 * the inference API: different users, different security posture.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { configuredSetting } from '../core/config';
import { UserError } from '../core/errors';
import { openLake } from '../etl/lake';
import type { Lake } from '../etl/lake/types';
import { openRegistry, registryUri, type Registry } from '../model/registry';
import { createConsoleApp, parsePublicUrl } from './app';
import { authFile } from './auth-config';
import { Authenticator } from './auth';
import { parseApiUrl } from './serving-api';

export const DEFAULT_CONSOLE_PORT = 8090;

export interface ConsoleServerOptions {
  /** Registry URI (default $PRICESENSE_REGISTRY or .pricesense/registry), or an opened Registry. */
  readonly registry?: string | Registry;
  /** Lake URI (default $PRICESENSE_LAKE, else none): test-split explanations and the training data manifest; the SageMaker backend's artifacts. */
  readonly lake?: string;
  /** The serving API's base URL: served/canary/shadow markers and the Live page. */
  readonly api?: string;
  readonly port?: number;
  readonly host?: string;
  /** Access configuration file (default $PRICESENSE_CONSOLE_AUTH or .pricesense/console-auth.json). */
  readonly auth?: string;
  readonly trustProxy?: string | number | boolean;
  /** The URL people open the console at, when a proxy in front changes the scheme or host. */
  readonly publicUrl?: string;
  readonly logger?: Logger;
  readonly logLevel?: string;
}

export interface RunningConsole {
  readonly url: string;
  readonly port: number;
  readonly registry: Registry;
  close(): Promise<void>;
}

export function createConsoleLogger(level = 'info'): Logger {
  return pino({ level, base: { service: 'pricesense-console', pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } });
}

export async function startConsole(options: ConsoleServerOptions = {}): Promise<RunningConsole> {
  const logger = options.logger ?? createConsoleLogger(options.logLevel);
  const api = options.api ? parseApiUrl(options.api) : undefined;
  const publicUrl = options.publicUrl === undefined ? undefined : parsePublicUrl(options.publicUrl);
  const auth = await Authenticator.open(authFile(options.auth));
  const lakeUri = configuredSetting('lake', options.lake);
  const lake: Lake | undefined = lakeUri ? await openLake(lakeUri) : undefined;
  const registry = typeof options.registry === 'object' ? options.registry : await openRegistry(registryUri(options.registry), lake ? { lake } : {});
  const app = createConsoleApp({ registry, auth, logger, lake, api, trustProxy: options.trustProxy, publicUrl });
  const server = http.createServer(app);
  // Slow or idle clients must not pin sockets forever.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  const host = options.host ?? '127.0.0.1';
  const wanted = options.port ?? DEFAULT_CONSOLE_PORT;
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE') reject(new UserError(`cannot listen on ${host}:${wanted}: the port is in use (choose another with --port)`));
      else if (err.code === 'EACCES') reject(new UserError(`cannot listen on ${host}:${wanted}: permission denied (ports below 1024 need privileges; choose another with --port)`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new UserError(`cannot listen on ${host}: no such address on this machine (--host)`));
      else reject(err);
    };
    server.once('error', failed);
    server.listen(wanted, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  logger.info({ event: 'console_started', url, registry: registry.uri, lake: lake?.root, api: api?.href, auth: auth.file }, `console on ${url}`);
  return {
    url,
    port,
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
