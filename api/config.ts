/**
 * Service configuration: environment variables, overridden by CLI flags. Every bad
 * value is a UserError naming the variable, the value and what was expected, so a
 * misconfigured pod fails at start with a readable message instead of serving wrong.
 */
import os from 'node:os';
import { MAX_TIMER_MS } from '../core/durations';
import { UserError } from '../core/errors';
import type { EmfSink } from './emf';
import { MIN_EVENT_LOOP_DELAY_MS } from './load-shedding';

export type ChallengerMode = 'canary' | 'shadow';

/** What a category value unseen at training does: scored as missing (and counted), or a 422. */
export const UNKNOWN_CATEGORY_POLICIES = ['missing', 'reject'] as const;
export type UnknownCategoryPolicy = (typeof UNKNOWN_CATEGORY_POLICIES)[number];

export interface ChallengerConfig {
  readonly version: number;
  readonly mode: ChallengerMode;
  /** Share of /predict traffic answered by the challenger (canary); 0 for shadow. */
  readonly percent: number;
}

export interface ApiConfig {
  readonly port: number;
  readonly host: string;
  /** Registry URI; undefined means the registry's own default (.pricesense/registry or PRICESENSE_REGISTRY). */
  readonly registry: string | undefined;
  /** The name the model is served under (OIP /v2/models/{name}, /model). */
  readonly modelName: string;
  readonly pollIntervalMs: number;
  readonly batchLimit: number;
  readonly bodyLimitBytes: number;
  /** Serve this approved version instead of following latestApproved (used to run a canary of a newer one). */
  readonly championVersion: number | undefined;
  readonly challenger: ChallengerConfig | undefined;
  /** Live inputs kept per served model for the PSI drift gauges. */
  readonly driftWindow: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: string;
  readonly workers: number;
  readonly unknownCategories: UnknownCategoryPolicy;
  /** Prediction requests one process works on at once; more are shed with 503 + Retry-After. */
  readonly maxInFlight: number;
  /** How far into a busy event-loop turn a prediction request may be reached before it is shed (0 = off; api/load-shedding.ts). */
  readonly maxEventLoopDelayMs: number;
  /**
   * Whether requests are recorded in the metrics (duration histogram, prediction, batch-size,
   * unknown-category and shadow counters, the drift windows). Off, /metrics keeps the process
   * and model-lifecycle metrics only, and EMF cannot be on (it would report nothing).
   */
  readonly metrics: boolean;
  /** Where the per-interval CloudWatch EMF records go (api/emf.ts); undefined = nowhere. */
  readonly emf: EmfSink | undefined;
  readonly emfIntervalMs: number;
  readonly emfNamespace: string;
  /** The log group the CloudWatch agent writes the records to (TCP sink). */
  readonly emfLogGroup: string | undefined;
  /** OTLP/HTTP collector base URL for trace export (api/otlp.ts); undefined = off, the default. */
  readonly otlpEndpoint: string | undefined;
}

export const DEFAULT_CONFIG: ApiConfig = {
  port: 8080,
  host: '0.0.0.0',
  registry: undefined,
  modelName: 'pricesense',
  pollIntervalMs: 30_000,
  batchLimit: 1000,
  bodyLimitBytes: 2 * 1024 * 1024,
  championVersion: undefined,
  challenger: undefined,
  driftWindow: 5000,
  shutdownTimeoutMs: 10_000,
  logLevel: 'info',
  workers: 1,
  unknownCategories: 'missing',
  maxInFlight: 256,
  maxEventLoopDelayMs: 100,
  metrics: true,
  // Off unless asked: the log sink works only where stdout lines reach CloudWatch Logs unwrapped
  // (Container Insights' Fluent Bit nests them under log_processed, so CloudWatch extracts nothing).
  emf: undefined,
  emfIntervalMs: 60_000,
  emfNamespace: 'pricesense',
  emfLogGroup: undefined,
  otlpEndpoint: undefined,
};

/** Bounds of the duration options (the poll interval is also bounded below: the registry is not a queue). */
const DURATION_BOUNDS = {
  pollInterval: { min: 100, max: 24 * 3_600_000, text: 'from 100ms to 24h' },
  shutdownTimeout: { min: 0, max: 3_600_000, text: 'from 0s to 1h' },
  maxEventLoopDelay: { min: 0, max: 60_000, text: '0 (off) or from 10ms to 1m' },
  emfInterval: { min: 100, max: 3_600_000, text: 'from 100ms to 1h' },
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function fail(where: string, value: string, expected: string): never {
  throw new UserError(`${where}=${JSON.stringify(value)} is invalid: expected ${expected}`);
}

export function parseInteger(where: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) fail(where, value, `an integer from ${min} to ${max}`);
  return n;
}

/**
 * "30s", "500ms", "2m", "1h", or a bare number of seconds, within [min, max] ms. Every
 * duration ends up in a timer, so max never exceeds MAX_TIMER_MS.
 */
export function parseDuration(where: string, value: string, bounds: { min: number; max: number; text: string }): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  const expected = `a duration ${bounds.text}, such as 500ms, 30s, 5m (a bare number means seconds)`;
  if (!m) fail(where, value, expected);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  const ms = Math.round(Number(m[1]) * factor);
  if (!(ms >= bounds.min && ms <= Math.min(bounds.max, MAX_TIMER_MS))) fail(where, value, expected);
  return ms;
}

/** "512kb", "2mb", "1048576" (bytes). */
export function parseBytes(where: string, value: string): number {
  const m = /^\s*(\d+)\s*(b|kb|mb)?\s*$/i.exec(value);
  if (!m) fail(where, value, 'a size such as 512kb, 2mb or a number of bytes');
  const factor = { b: 1, kb: 1024, mb: 1024 * 1024 }[(m[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb'];
  const n = Number(m[1]) * factor;
  if (n < 1024 || n > 512 * 1024 * 1024) fail(where, value, 'a size from 1kb to 512mb');
  return n;
}

/** "7:10" = version 7 answers 10% of traffic. */
export function parseCanary(where: string, value: string): ChallengerConfig {
  const m = /^\s*(\d+)\s*:\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(value);
  if (!m) fail(where, value, 'VERSION:PERCENT, e.g. 7:10 (version 7 answers 10% of requests)');
  const percent = Number(m[2]);
  if (percent <= 0 || percent > 100) fail(where, value, 'a percentage above 0 and at most 100');
  return { version: parseInteger(where, m[1], 1), mode: 'canary', percent };
}

/**
 * "off", "log" (a line on stdout: only where stdout reaches CloudWatch Logs as-is, e.g. ECS
 * awslogs or Lambda; not under Container Insights' Fluent Bit, which nests the JSON) or
 * "tcp://host:port" (the CloudWatch agent's EMF listener).
 */
export function parseEmfSink(where: string, value: string): EmfSink | undefined {
  const v = value.trim();
  if (v === 'off') return undefined;
  if (v === 'log') return { kind: 'log' };
  const m = /^tcp:\/\/([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) fail(where, value, '"off", "log" or tcp://<host>:<port> (the CloudWatch agent\'s EMF listener, e.g. tcp://cloudwatch-agent.amazon-cloudwatch:25888)');
  return { kind: 'tcp', host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** "off" or an http(s) base URL of an OTLP/HTTP collector, e.g. http://otel-collector.observability:4318. */
export function parseOtlpEndpoint(where: string, value: string): string | undefined {
  const v = value.trim();
  if (v === 'off') return undefined;
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
    fail(where, value, '"off" or the http(s) base URL of an OTLP/HTTP collector without credentials or query, e.g. http://otel-collector.observability:4318 (spans go to <url>/v1/traces)');
  }
  return v.replace(/\/+$/, '');
}

export function parseOnOff(where: string, value: string): boolean {
  const v = value.trim();
  if (v !== 'on' && v !== 'off') fail(where, value, '"on" or "off"');
  return v === 'on';
}

export function parseWorkers(where: string, value: string): number {
  if (value.trim() === 'auto') return os.availableParallelism();
  return parseInteger(where, value, 1, 256);
}

function checkNamespace(where: string, value: string): string {
  if (!/^[A-Za-z0-9._/#:-]{1,255}$/.test(value) || value.startsWith('AWS/')) fail(where, value, 'a CloudWatch namespace (1-255 letters, digits and . _ / # : -, not starting with AWS/)');
  return value;
}

function checkLogGroup(where: string, value: string): string {
  if (!/^[A-Za-z0-9._/#-]{1,512}$/.test(value)) fail(where, value, 'a CloudWatch Logs group name (1-512 letters, digits and . _ / # -)');
  return value;
}

/** Values as strings, as they come from the environment or from commander. */
export interface RawConfig {
  port?: string;
  host?: string;
  registry?: string;
  modelName?: string;
  pollInterval?: string;
  batchLimit?: string;
  bodyLimit?: string;
  championVersion?: string;
  canary?: string;
  shadow?: string;
  driftWindow?: string;
  shutdownTimeout?: string;
  logLevel?: string;
  workers?: string;
  unknownCategories?: string;
  maxInFlight?: string;
  maxEventLoopDelay?: string;
  metrics?: string;
  emf?: string;
  emfInterval?: string;
  emfNamespace?: string;
  emfLogGroup?: string;
  otlpEndpoint?: string;
}

export const ENV_VARS: Record<keyof RawConfig, string> = {
  port: 'PORT',
  host: 'HOST',
  registry: 'PRICESENSE_REGISTRY',
  modelName: 'PRICESENSE_MODEL_NAME',
  pollInterval: 'PRICESENSE_POLL_INTERVAL',
  batchLimit: 'PRICESENSE_BATCH_LIMIT',
  bodyLimit: 'PRICESENSE_BODY_LIMIT',
  championVersion: 'PRICESENSE_CHAMPION_VERSION',
  canary: 'PRICESENSE_CANARY',
  shadow: 'PRICESENSE_SHADOW',
  driftWindow: 'PRICESENSE_DRIFT_WINDOW',
  shutdownTimeout: 'PRICESENSE_SHUTDOWN_TIMEOUT',
  logLevel: 'PRICESENSE_LOG_LEVEL',
  workers: 'PRICESENSE_WORKERS',
  unknownCategories: 'PRICESENSE_UNKNOWN_CATEGORIES',
  maxInFlight: 'PRICESENSE_MAX_IN_FLIGHT',
  maxEventLoopDelay: 'PRICESENSE_MAX_EVENT_LOOP_DELAY',
  metrics: 'PRICESENSE_METRICS',
  emf: 'PRICESENSE_EMF',
  emfInterval: 'PRICESENSE_EMF_INTERVAL',
  emfNamespace: 'PRICESENSE_EMF_NAMESPACE',
  emfLogGroup: 'PRICESENSE_EMF_LOG_GROUP',
  otlpEndpoint: 'PRICESENSE_OTLP_ENDPOINT',
};

/** Environment first, flags (already strings) win. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, flags: RawConfig = {}): ApiConfig {
  const raw: RawConfig = {};
  const where: Partial<Record<keyof RawConfig, string>> = {};
  for (const key of Object.keys(ENV_VARS) as (keyof RawConfig)[]) {
    const fromFlag = flags[key];
    const fromEnv = env[ENV_VARS[key]];
    if (fromFlag !== undefined && fromFlag !== '') {
      raw[key] = fromFlag;
      where[key] = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw[key] = fromEnv;
      where[key] = ENV_VARS[key];
    }
  }
  const w = (k: keyof RawConfig): string => where[k] ?? ENV_VARS[k];
  if (raw.canary !== undefined && raw.shadow !== undefined) {
    throw new UserError(`${w('canary')} and ${w('shadow')} are both set: a server runs at most one challenger, canary or shadow`);
  }
  let challenger: ChallengerConfig | undefined;
  if (raw.canary !== undefined) challenger = parseCanary(w('canary'), raw.canary);
  if (raw.shadow !== undefined) challenger = { version: parseInteger(w('shadow'), raw.shadow, 1), mode: 'shadow', percent: 0 };
  const logLevel = raw.logLevel ?? DEFAULT_CONFIG.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) fail(w('logLevel'), logLevel, `one of ${LOG_LEVELS.join(', ')}`);
  const modelName = raw.modelName ?? DEFAULT_CONFIG.modelName;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(modelName)) fail(w('modelName'), modelName, 'a name of letters, digits, ".", "_" or "-" (at most 63)');
  const unknownCategories = (raw.unknownCategories ?? DEFAULT_CONFIG.unknownCategories).trim() as UnknownCategoryPolicy;
  if (!UNKNOWN_CATEGORY_POLICIES.includes(unknownCategories)) fail(w('unknownCategories'), raw.unknownCategories ?? '', `one of ${UNKNOWN_CATEGORY_POLICIES.join(', ')}`);
  const duration = (key: keyof typeof DURATION_BOUNDS, fallback: number): number => {
    const value = raw[key];
    return value === undefined ? fallback : parseDuration(w(key), value, DURATION_BOUNDS[key]);
  };
  // Below the monitor's resolution a limit would silently mean limit + 10 ms.
  const eventLoopDelay = (): number => {
    const ms = duration('maxEventLoopDelay', DEFAULT_CONFIG.maxEventLoopDelayMs);
    if (ms > 0 && ms < MIN_EVENT_LOOP_DELAY_MS) fail(w('maxEventLoopDelay'), raw.maxEventLoopDelay ?? '', `a duration ${DURATION_BOUNDS.maxEventLoopDelay.text}`);
    return ms;
  };
  const metrics = raw.metrics === undefined ? DEFAULT_CONFIG.metrics : parseOnOff(w('metrics'), raw.metrics);
  const emf = raw.emf === undefined ? DEFAULT_CONFIG.emf : parseEmfSink(w('emf'), raw.emf);
  if (emf && !metrics) {
    throw new UserError(`${w('emf')} is set but ${w('metrics')}=off: with metrics off nothing is recorded for the EMF records to report; turn one of them off`);
  }
  return {
    port: raw.port === undefined ? DEFAULT_CONFIG.port : parseInteger(w('port'), raw.port, 0, 65535),
    host: raw.host ?? DEFAULT_CONFIG.host,
    registry: raw.registry,
    modelName,
    pollIntervalMs: duration('pollInterval', DEFAULT_CONFIG.pollIntervalMs),
    batchLimit: raw.batchLimit === undefined ? DEFAULT_CONFIG.batchLimit : parseInteger(w('batchLimit'), raw.batchLimit, 1, 100_000),
    bodyLimitBytes: raw.bodyLimit === undefined ? DEFAULT_CONFIG.bodyLimitBytes : parseBytes(w('bodyLimit'), raw.bodyLimit),
    championVersion: raw.championVersion === undefined ? undefined : parseInteger(w('championVersion'), raw.championVersion, 1),
    challenger,
    driftWindow: raw.driftWindow === undefined ? DEFAULT_CONFIG.driftWindow : parseInteger(w('driftWindow'), raw.driftWindow, 10, 1_000_000),
    shutdownTimeoutMs: duration('shutdownTimeout', DEFAULT_CONFIG.shutdownTimeoutMs),
    logLevel,
    workers: raw.workers === undefined ? DEFAULT_CONFIG.workers : parseWorkers(w('workers'), raw.workers),
    unknownCategories,
    maxInFlight: raw.maxInFlight === undefined ? DEFAULT_CONFIG.maxInFlight : parseInteger(w('maxInFlight'), raw.maxInFlight, 1, 1_000_000),
    maxEventLoopDelayMs: eventLoopDelay(),
    metrics,
    emf,
    emfIntervalMs: duration('emfInterval', DEFAULT_CONFIG.emfIntervalMs),
    emfNamespace: raw.emfNamespace === undefined ? DEFAULT_CONFIG.emfNamespace : checkNamespace(w('emfNamespace'), raw.emfNamespace),
    emfLogGroup: raw.emfLogGroup === undefined ? undefined : checkLogGroup(w('emfLogGroup'), raw.emfLogGroup),
    otlpEndpoint: raw.otlpEndpoint === undefined ? undefined : parseOtlpEndpoint(w('otlpEndpoint'), raw.otlpEndpoint),
  };
}
