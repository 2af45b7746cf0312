/**
 * OpenTelemetry trace export over OTLP/HTTP, switched on by `--otlp-endpoint` /
 * PRICESENSE_OTLP_ENDPOINT and off by default. Off, none of the SDK is even loaded and
 * the request path builds no span (api/request-context.ts checks for a recorder).
 *
 * On, each sampled request becomes one SERVER span, built after the response from what
 * the access record already has (no span object lives through the request): the ids are
 * the ones the request's log lines and `traceresponse` carry (api/tracing.ts), its parent
 * the caller's span. The SDK's BatchSpanProcessor queues and sends them in the
 * background and drops spans rather than grow without bound when the collector is slow.
 * Sampling follows the caller's flag; a trace we start is sampled.
 */
import http from 'node:http';
import https from 'node:https';
import { isSampled, type TraceContext } from './tracing';

export interface SpanRecorder {
  /** One finished request as a span; `startedMs` is performance.now() at arrival. */
  record(trace: TraceContext, method: string, route: string, status: number, modelVersion: string, startedMs: number, seconds: number): void;
  /** Sends what is queued (bounded by the exporter's timeout) and stops. */
  shutdown(): Promise<void>;
}

export interface OtlpOptions {
  /** The collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT style); spans go to `<endpoint>/v1/traces`. */
  readonly endpoint: string;
  readonly serviceName: string;
  readonly serviceVersion: string;
}

export function otlpTracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

export async function createOtlpRecorder(options: OtlpOptions): Promise<SpanRecorder> {
  // Loaded only here: with export off none of this is required.
  const api = await import('@opentelemetry/api');
  const { TracerProvider, BatchSpanProcessor, ParentBasedSampler, AlwaysOnSampler } = await import('@opentelemetry/sdk-trace');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');

  // The SDK asks its IdGenerator for the new span's ids inside startSpan (synchronously): it gets ours.
  let next: TraceContext | undefined;
  const idGenerator = {
    generateTraceId: () => next!.traceId,
    generateSpanId: () => next!.spanId,
  };
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.version': options.serviceVersion }),
    idGenerator,
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({
        url: otlpTracesUrl(options.endpoint),
        // Our own agents: the exporter's default factory loads node:http with a native import(), which Jest's VM cannot run.
        httpAgentOptions: (protocol: string) => (protocol === 'http:' ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true })),
      }),
    })],
  });
  const tracer = provider.getTracer('pricesense-api', options.serviceVersion);

  return {
    record(trace, method, route, status, modelVersion, startedMs, seconds) {
      if (!isSampled(trace)) return;
      const parent = trace.parentSpanId === undefined
        ? api.ROOT_CONTEXT
        : api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: trace.traceId, spanId: trace.parentSpanId, traceFlags: parseInt(trace.flags, 16), isRemote: true });
      const start = performance.timeOrigin + startedMs;
      next = trace;
      let span: ReturnType<typeof tracer.startSpan>;
      try {
        span = tracer.startSpan(`${method} ${route}`, {
          kind: api.SpanKind.SERVER,
          startTime: start,
          attributes: { 'http.request.method': method, 'http.route': route, 'http.response.status_code': status, 'pricesense.model_version': modelVersion },
        }, parent);
      } finally {
        next = undefined;
      }
      if (status >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
      span.end(start + seconds * 1000);
    },
    shutdown: () => provider.shutdown(),
  };
}
