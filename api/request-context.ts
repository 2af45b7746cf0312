/**
 * What every request shares, whichever path answers it (the lean /predict path or
 * Express): its id and trace (api/tracing.ts), the "not ready" error, and the access
 * record — the duration histogram, the access log line (with the trace and span ids),
 * the periodic traffic summary and, when OTLP export is on, the request's span.
 *
 * Successful predictions and probes are logged at debug: at thousands of requests a
 * second a line per request costs more CPU than the prediction itself. They are
 * counted in the metrics and in an info-level `traffic` summary line per interval;
 * client errors (info) and server errors (error) are still logged one by one.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { ApiError, fromHttpError } from './errors';
import type { ApiMetrics, ShedReason } from './metrics';
import { checkTimerMs } from '../core/durations';
import type { ModelManager } from './model-manager';
import type { SpanRecorder } from './otlp';
import { randomUuid } from './random-ids';
import { traceFor, type TraceContext } from './tracing';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A well-formed incoming X-Request-Id is kept (it ties our logs to the caller's); otherwise a UUID. */
export function newRequestId(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUuid();
}

export function notReady(manager: ModelManager): ApiError {
  const status = manager.status();
  return new ApiError(503, 'not_ready', `No model is being served: ${status.reason ?? 'unknown reason'}`);
}

/**
 * Any error a request path caught → the ApiError to answer with: ours as they are, the
 * HTTP layer's (body-parser) translated, anything else a 500 whose details stay in the
 * log under the request id.
 */
export function toApiError(err: unknown, bodyLimitBytes: number, logger: Logger, requestId: string): ApiError {
  if (err instanceof ApiError) return err;
  const http = fromHttpError(err, bodyLimitBytes);
  if (http) return http;
  logger.error({ reqId: requestId, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'unhandled error');
  return new ApiError(500, 'internal_error', 'Internal error; the request id identifies it in the server logs');
}

/** Seconds a shed client is told to wait: overload on a pod passes quickly, or the balancer moves the traffic. */
export const SHED_RETRY_AFTER_SECONDS = 1;

export function shedError(reason: ShedReason): ApiError {
  const why = reason === 'in_flight' ? 'too many requests in progress' : 'requests are queueing: the event loop is behind by more than its limit';
  return new ApiError(503, 'overloaded', `The server is overloaded (${why}); retry after ${SHED_RETRY_AFTER_SECONDS} s`);
}

/** The Retry-After of a 503: short for shedding, the poll-ish 5 s for "no model yet". */
export function retryAfter(err: ApiError): string {
  return err.code === 'overloaded' ? String(SHED_RETRY_AFTER_SECONDS) : '5';
}

/** Routes whose successful requests are logged at debug only. */
const QUIET_ROUTES = new Set([
  '/predict',
  '/v2/models/:name/infer',
  '/v2/models/:name/versions/:version/infer',
  '/health',
  '/ready',
  '/metrics',
  '/v2/health/live',
  '/v2/health/ready',
]);

export class AccessLog {
  private readonly metrics: ApiMetrics;
  private readonly logger: Logger;
  private readonly summaryIntervalMs: number;
  /** OTLP export (api/otlp.ts); undefined when off, the default: no span is ever built. */
  private readonly spans: SpanRecorder | undefined;
  private statuses: Record<number, number> = {};
  private requests = 0;
  private since = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(metrics: ApiMetrics, logger: Logger, options: { summaryIntervalMs?: number; spans?: SpanRecorder } = {}) {
    this.metrics = metrics;
    this.logger = logger;
    this.summaryIntervalMs = checkTimerMs('AccessLog summaryIntervalMs', options.summaryIntervalMs ?? 60_000);
    this.spans = options.spans;
  }

  /** The trace of an arriving request (its traceparent continued, or a new one; sampled when exported). */
  trace(req: IncomingMessage): TraceContext {
    return traceFor(req.headers.traceparent, this.spans !== undefined);
  }

  /**
   * One finished request; `startedMs` is its performance.now() at arrival. A shed request
   * logs at debug: under overload a line each (at error, thousands a second) would cost the
   * CPU shedding saves and bury real errors; it is counted (pricesense_requests_shed_total,
   * the duration histogram, the minute's traffic line) instead.
   */
  record(req: IncomingMessage, route: string, status: number, modelVersion: string, role: string, requestId: string, trace: TraceContext, startedMs: number, shed = false): void {
    const seconds = (performance.now() - startedMs) / 1000;
    const method = req.method ?? 'GET';
    this.metrics.observeRequest(route, method, status, modelVersion, seconds);
    this.spans?.record(trace, method, route, status, modelVersion, startedMs, seconds);
    this.requests++;
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    this.timer ??= setInterval(() => this.summarize(), this.summaryIntervalMs).unref();
    const level = shed ? 'debug' : status >= 500 ? 'error' : status >= 400 || !QUIET_ROUTES.has(route) ? 'info' : 'debug';
    if (!this.logger.isLevelEnabled(level)) return;
    const path = (req.url ?? '').split('?', 1)[0];
    this.logger[level](
      {
        reqId: requestId,
        traceId: trace.traceId,
        spanId: trace.spanId,
        method,
        path: path.length > 200 ? `${path.slice(0, 200)}...` : path,
        route,
        status,
        ms: Math.round(seconds * 1e6) / 1e3,
        modelVersion,
        role: role || undefined,
      },
      'request',
    );
  }

  /** Logs the requests since the last summary (nothing when there were none). */
  summarize(): void {
    const now = Date.now();
    if (this.requests > 0) {
      this.logger.info({ event: 'traffic', seconds: Math.round((now - this.since) / 100) / 10, requests: this.requests, statuses: this.statuses }, `${this.requests} requests`);
    }
    this.requests = 0;
    this.statuses = {};
    this.since = now;
  }

  /** Stops the summary and sends the queued spans (a second at most: shutdown must not wait on a collector). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.summarize();
    if (!this.spans) return;
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([this.spans.shutdown().catch(() => undefined), new Promise<void>((resolve) => (waited = setTimeout(resolve, 1000)))]);
    clearTimeout(waited);
  }
}
