/**
 * W3C Trace Context on the real server: a valid `traceparent` is continued (its trace id
 * on the request's log line and in `traceresponse`), an absent or malformed one starts a
 * new trace; with OTLP export switched on, each request reaches a collector (a loopback
 * stand-in) as one span with the same ids and the caller's span as its parent.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { DEFAULT_CONFIG, loadConfig } from '../config';
import { startServer, type RunningServer } from '../server';
import { parseTraceparent } from '../tracing';
import { capturingLogger, sampleRow, testConfig, testRegistry, waitFor, type TestRegistry } from './fixtures';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const VALID = `00-${TRACE}-${PARENT}-01`;

describe('parseTraceparent (W3C Trace Context, version 00 and later)', () => {
  it.each([
    ['version 00', VALID, { traceId: TRACE, parentSpanId: PARENT, flags: '01' }],
    ['not sampled', `00-${TRACE}-${PARENT}-00`, { traceId: TRACE, parentSpanId: PARENT, flags: '00' }],
    ['surrounding spaces (optional whitespace)', `  ${VALID} `, { traceId: TRACE, parentSpanId: PARENT, flags: '01' }],
    ['a later version: first four fields read, more after a dash allowed', `cc-${TRACE}-${PARENT}-01-what-the-future-brings`, { traceId: TRACE, parentSpanId: PARENT, flags: '01' }],
    ['a later version, exactly 55 characters', `01-${TRACE}-${PARENT}-09`, { traceId: TRACE, parentSpanId: PARENT, flags: '09' }],
  ])('%s: valid', (_what, header, expected) => {
    expect(parseTraceparent(header)).toEqual(expected);
  });

  it.each([
    ['version ff (forbidden)', `ff-${TRACE}-${PARENT}-01`],
    ['version 00 with more after it', `${VALID}-extra`],
    ['a later version with a non-dash after the flags', `01-${TRACE}-${PARENT}-01x`],
    ['version not hex', `0g-${TRACE}-${PARENT}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${PARENT}-01`],
    ['all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['uppercase hex', `00-${TRACE.toUpperCase()}-${PARENT}-01`],
    ['short trace id', `00-${TRACE.slice(1)}-${PARENT}-01`],
    ['wrong separators', `00_${TRACE}_${PARENT}_01`],
    ['flags not hex', `00-${TRACE}-${PARENT}-0z`],
    ['two headers (Node joins repeats with a comma)', `${VALID}, ${VALID}`],
    ['empty', ''],
  ])('%s: invalid', (_what, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });

  it('an absent or repeated (array) header is no parent', () => {
    expect(parseTraceparent(undefined)).toBeUndefined();
    expect(parseTraceparent([VALID, VALID])).toBeUndefined();
  });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
}

function request(port: number, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers: { ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

interface RequestLine {
  msg?: string;
  reqId?: string;
  traceId?: string;
  spanId?: string;
  route?: string;
}

const TRACERESPONSE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

describe('trace context on the real server', () => {
  let reg: TestRegistry;
  let server: RunningServer | undefined;
  beforeAll(async () => {
    reg = await testRegistry();
    await reg.publish(1, { trees: 5, depth: 4 });
  });
  afterEach(async () => {
    await server?.close(1000);
    server = undefined;
  });
  afterAll(() => reg.cleanup());

  it('OTLP export is off unless configured', () => {
    expect(DEFAULT_CONFIG.otlpEndpoint).toBeUndefined();
    expect(loadConfig({}).otlpEndpoint).toBeUndefined();
    expect(loadConfig({ PRICESENSE_OTLP_ENDPOINT: 'http://collector:4318/' }).otlpEndpoint).toBe('http://collector:4318');
    expect(() => loadConfig({ PRICESENSE_OTLP_ENDPOINT: 'grpc://collector:4317' })).toThrow(/PRICESENSE_OTLP_ENDPOINT="grpc:\/\/collector:4317" is invalid: expected "off" or the http\(s\) base URL/);
  });

  it('continues a valid traceparent and starts a new trace otherwise, on both request paths; the trace id is on the request\'s log line', async () => {
    // debug: successful /predict and probe lines are debug (api/request-context.ts).
    const { logger, lines } = capturingLogger<RequestLine>('debug');
    server = await startServer(testConfig({ registry: reg.registry.uri }), { registry: reg.registry, logger });
    const port = server.port;
    const cases = [
      // The lean /predict path and Express (/model), each with a valid, a malformed and no header.
      { method: 'POST', path: '/predict', id: 'predict', body: sampleRow() },
      { method: 'GET', path: '/model', id: 'model', body: undefined },
    ];
    for (const c of cases) {
      const continued = await request(port, c.method, c.path, { traceparent: VALID, 'x-request-id': `${c.id}-valid` }, c.body);
      expect(continued.status).toBe(200);
      const [, traceId, spanId, flags] = TRACERESPONSE.exec(String(continued.headers.traceresponse)) ?? [];
      expect([traceId, flags]).toEqual([TRACE, '01']);
      expect(spanId).not.toBe(PARENT); // our own span, child of the caller's

      const malformed = await request(port, c.method, c.path, { traceparent: `00-${'0'.repeat(32)}-${PARENT}-01`, 'x-request-id': `${c.id}-malformed` }, c.body);
      const absent = await request(port, c.method, c.path, { 'x-request-id': `${c.id}-absent` }, c.body);
      const fresh = [malformed, absent].map((r) => TRACERESPONSE.exec(String(r.headers.traceresponse)) ?? []);
      for (const [, id, , f] of fresh) expect([id === TRACE, /^[0-9a-f]{32}$/.test(id ?? ''), f]).toEqual([false, true, '00']);
      expect(fresh[0][1]).not.toBe(fresh[1][1]);

      await waitFor('the three request lines', () => lines.filter((l) => l.msg === 'request' && l.reqId?.startsWith(`${c.id}-`)).length === 3);
      const line = (id: string) => lines.find((l) => l.msg === 'request' && l.reqId === id)!;
      expect(line(`${c.id}-valid`)).toMatchObject({ traceId: TRACE, spanId });
      expect(line(`${c.id}-malformed`)).toMatchObject({ traceId: fresh[0][1], spanId: fresh[0][2] });
      expect(line(`${c.id}-absent`)).toMatchObject({ traceId: fresh[1][1], spanId: fresh[1][2] });
    }
  });

  it('with OTLP export on, each request reaches the collector as one span with the logged ids and the caller\'s span as parent', async () => {
    const received: { path: string; type: string; body: Buffer }[] = [];
    const collector = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', type: String(req.headers['content-type']), body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    // A real process: the exporter loads node:http with a native import(), which Jest's module VM cannot run.
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, '..', 'main.ts')], {
      env: {
        PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', PRICESENSE_REGISTRY: reg.registry.uri, PRICESENSE_LOG_LEVEL: 'info', PRICESENSE_EMF: 'off',
        PRICESENSE_MAX_EVENT_LOOP_DELAY: '0', PRICESENSE_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor('the server ready', () => /"event":"ready"/.test(stdout), 60_000);
      const port = Number(/"event":"listening"[^\n]*"port":(\d+)/.exec(stdout)![1]);
      const sampled = await request(port, 'POST', '/predict', { traceparent: VALID }, sampleRow());
      const root = await request(port, 'GET', '/model', {});
      const notSampled = await request(port, 'POST', '/predict', { traceparent: `00-${TRACE.replace(/^4/, '5')}-${PARENT}-00` }, sampleRow());
      const [, , childSpan] = TRACERESPONSE.exec(String(sampled.headers.traceresponse))!;
      const [, rootTrace, rootSpan, rootFlags] = TRACERESPONSE.exec(String(root.headers.traceresponse))!;
      expect(rootFlags).toBe('01'); // a trace we start is sampled when we export
      expect(TRACERESPONSE.exec(String(notSampled.headers.traceresponse))![3]).toBe('00');
      // Stopping flushes the queue.
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await waitFor('the spans at the collector', () => received.length > 0);
      expect(new Set(received.map((r) => r.path))).toEqual(new Set(['/v1/traces']));
      const spans = received.flatMap((r) => {
        expect(r.type).toMatch(/^application\/json/);
        const doc = JSON.parse(r.body.toString('utf8')) as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number }[] }[] }[] };
        return doc.resourceSpans.flatMap((rs) => {
          expect(rs.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'pricesense-api' } });
          return rs.scopeSpans.flatMap((x) => x.spans);
        });
      });
      // OTLP's JSON: ids in hex, kind 2 = SERVER; the unsampled request is not exported.
      expect(spans.map((x) => ({ traceId: x.traceId, spanId: x.spanId, parentSpanId: x.parentSpanId || undefined, name: x.name, kind: x.kind })).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { traceId: rootTrace, spanId: rootSpan, parentSpanId: undefined, name: 'GET /model', kind: 2 },
        { traceId: TRACE, spanId: childSpan, parentSpanId: PARENT, name: 'POST /predict', kind: 2 },
      ]);
      expect(stderr).toBe('');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await new Promise((resolve) => collector.close(resolve));
    }
  }, 120_000);
});
