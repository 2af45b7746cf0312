/**
 * The EMF reporter when its sink (the CloudWatch agent) is away: records not written are
 * counted on /metrics and logged at error (not once and then silence), and their request
 * counts reach the agent with the next interval that gets through, so an agent restart
 * does not skew the 5xx rate or the p99 share. Real sockets on loopback, the real metrics.
 */
import net from 'node:net';
import { loadConfig } from '../config';
import { EMF_MAX_CARRY_INTERVALS, EMF_METRICS, EmfReporter } from '../emf';
import { apiAlarms, apiMetricNamespace } from '../../infra/api-alarms';
import { ApiMetrics, CLIENT_CLOSED } from '../metrics';
import { extractEmf, statistic } from '../../infra/test/cloudwatch-emf';
import request from 'supertest';
import { createService } from '../server';
import { capturingLogger, freePort, mulberry32, sampleRow, silentLogger, testConfig, testRegistry, waitFor } from './fixtures';

const NS = 'pricesense/emf-test';

interface LogLine {
  event?: string;
  level?: number;
  droppedRecords?: number;
  countsGivenUp?: boolean;
  err?: string;
}

/** A stand-in for the agent's EMF listener: one record per line. */
async function agentOn(port: number): Promise<{ lines: string[]; close(): Promise<void> }> {
  const lines: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let buffered = '';
    socket.on('data', (c: Buffer) => {
      buffered += c.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      lines.push(...parts);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    lines,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const dropped = async (m: ApiMetrics) => (await m.emfRecordsDropped.get()).values.reduce((a, v) => a + v.value, 0);
const requests = (lines: string[]) => statistic(lines.flatMap(extractEmf), { namespace: NS, metricName: 'Requests', stat: 'Sum' }) ?? 0;
const errors5xx = (lines: string[]) => statistic(lines.flatMap(extractEmf), { namespace: NS, metricName: 'Requests5xx', stat: 'Sum' }) ?? 0;

describe('EMF reporter with the agent away', () => {
  it('is off unless configured (the stdout sink only works where CloudWatch Logs gets the lines unwrapped)', () => {
    expect(loadConfig({}).emf).toBeUndefined();
    expect(loadConfig({ PRICESENSE_EMF: 'log' }).emf).toEqual({ kind: 'log' });
    expect(loadConfig({ PRICESENSE_EMF: 'tcp://10.0.3.7:25888' }).emf).toEqual({ kind: 'tcp', host: '10.0.3.7', port: 25888 });
  });

  it('counts and logs the records it could not send, and sends their counts once the agent is back', async () => {
    const metrics = new ApiMetrics({ defaultMetrics: false });
    const { logger, lines: logs } = capturingLogger<LogLine>('info');
    const port = await freePort(); // nothing listens there until agentOn(port)
    const emf = new EmfReporter(metrics, logger, { namespace: NS, intervalMs: 60_000, sink: { kind: 'tcp', host: '127.0.0.1', port }, logGroup: '/pricesense/emf-test/api-metrics' });

    for (let i = 0; i < 7; i++) metrics.observeRequest('/predict', 'POST', 200, '1', 0.002);
    metrics.observeRequest('/predict', 'POST', 500, '1', 0.002);
    await emf.report();
    const firstDrop = await dropped(metrics);
    expect(firstDrop).toBeGreaterThanOrEqual(2); // the service record and the version record at least
    expect(logs.filter((l) => l.event === 'emf_sink_failed')).toEqual([expect.objectContaining({ level: 50, droppedRecords: firstDrop, countsGivenUp: false, err: expect.stringContaining('ECONNREFUSED') })]);

    // Another failed interval: counted, not logged again within the interval of the error lines.
    for (let i = 0; i < 3; i++) metrics.observeRequest('/predict', 'POST', 200, '1', 0.002);
    await emf.report();
    expect(await dropped(metrics)).toBeGreaterThan(firstDrop);
    expect(logs.filter((l) => l.event === 'emf_sink_failed')).toHaveLength(1);
    expect(await metrics.registry.metrics()).toMatch(/^pricesense_emf_records_dropped_total \d+$/m);

    // The agent is back: the next records carry both failed intervals' requests, once.
    const agent = await agentOn(port);
    try {
      metrics.observeRequest('/predict', 'POST', 200, '1', 0.002);
      await emf.report();
      await waitFor('the records at the agent', () => agent.lines.length >= 2);
      expect([requests(agent.lines), errors5xx(agent.lines)]).toEqual([12, 1]);
      expect(logs.filter((l) => l.event === 'emf_sink_recovered')).toHaveLength(1);
      // The next interval: nothing new to count, nothing counted twice.
      await emf.report();
      await waitFor('the next service record', () => agent.lines.filter((l) => !l.includes('"ModelVersion"')).length >= 2);
      expect(requests(agent.lines)).toBe(12);
    } finally {
      await emf.stop();
      await agent.close();
    }
  });

  it(`gives the counts up after ${EMF_MAX_CARRY_INTERVALS} failed intervals, and says so at error`, async () => {
    const metrics = new ApiMetrics({ defaultMetrics: false });
    const { logger, lines: logs } = capturingLogger<LogLine>('info');
    const port = await freePort(); // nothing listens there until agentOn(port)
    const emf = new EmfReporter(metrics, logger, { namespace: NS, intervalMs: 60_000, sink: { kind: 'tcp', host: '127.0.0.1', port } });
    metrics.observeRequest('/predict', 'POST', 200, '1', 0.002);
    for (let i = 0; i < EMF_MAX_CARRY_INTERVALS; i++) await emf.report();
    expect(logs.filter((l) => l.event === 'emf_sink_failed').map((l) => l.countsGivenUp)).toEqual([false, true]);
    const agent = await agentOn(port);
    try {
      metrics.observeRequest('/predict', 'POST', 200, '1', 0.002);
      await emf.report();
      await waitFor('the records at the agent', () => agent.lines.length >= 2);
      expect(requests(agent.lines)).toBe(1);
    } finally {
      await emf.stop();
      await agent.close();
    }
  });
});

describe('metrics off (PRICESENSE_METRICS=off)', () => {
  it('is on by default, and refuses EMF with it off (the records would report nothing)', () => {
    expect(loadConfig({}).metrics).toBe(true);
    expect(loadConfig({ PRICESENSE_METRICS: 'off' }).metrics).toBe(false);
    expect(() => loadConfig({ PRICESENSE_METRICS: 'no' })).toThrow(/PRICESENSE_METRICS="no" is invalid: expected "on" or "off"/);
    expect(() => loadConfig({ PRICESENSE_METRICS: 'off', PRICESENSE_EMF: 'tcp://127.0.0.1:25888' })).toThrow(/PRICESENSE_EMF is set but PRICESENSE_METRICS=off/);
  });

  it('answers as before but records no request, prediction or drift row; the process and model metrics stay', async () => {
    const reg = await testRegistry();
    try {
      await reg.publish(1);
      const sample = async (metricsOn: boolean) => {
        const service = await createService(testConfig({ metrics: metricsOn }), { registry: reg.registry, logger: silentLogger() });
        await service.manager.start();
        try {
          const rng = mulberry32(5);
          await request(service.handler).post('/predict').send(sampleRow(rng)).expect(200);
          await request(service.handler).post('/predict').send({ instances: [sampleRow(rng), sampleRow(rng)] }).expect(200);
          const text = await service.metrics.scrape();
          const value = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
          return {
            requests: value('pricesense_http_request_duration_seconds_count'),
            predictions: value('pricesense_predictions_total'),
            batches: value('pricesense_batch_size_rows_count'),
            windowRows: value('pricesense_drift_window_rows'),
            loads: value('pricesense_model_loads_total'),
            ready: value('pricesense_model_ready'),
          };
        } finally {
          service.manager.stop();
        }
      };
      expect(await sample(true)).toEqual({ requests: 2, predictions: 3, batches: 1, windowRows: 3, loads: 1, ready: 1 });
      expect(await sample(false)).toEqual({ requests: 0, predictions: 0, batches: 0, windowRows: 0, loads: 1, ready: 1 });
    } finally {
      await reg.cleanup();
    }
  });
});

describe('latency distribution (LatencyMs)', () => {
  it('carries each interval\'s requests as Values/Counts at their bucket\'s upper bound; CloudWatch\'s p99 of it is what the p99 alarm reads', async () => {
    const metrics = new ApiMetrics({ defaultMetrics: false });
    const ns = apiMetricNamespace('prod');
    const emf = new EmfReporter(metrics, silentLogger(), { namespace: ns, intervalMs: 60_000, sink: { kind: 'tcp', host: '127.0.0.1', port: 1 } });
    const alarm = apiAlarms('prod', { p99LatencyMs: 25, error5xxPercent: 5, driftPsi: 0.25, unknownCategoryPercent: 5, missingIncreasePercent: 10 }).find((a) => a.id === 'api-p99-latency')!;
    const query = alarm.queries.find((q) => q.returnData)!.metric!;
    // The alarm reads the metric the API emits, in its namespace, as a percentile.
    expect(query).toMatchObject({ namespace: ns, metricName: EMF_METRICS.latency, stat: 'p99' });
    const observe = (n: number, seconds: number, status = 200, route = '/predict') => {
      for (let i = 0; i < n; i++) metrics.observeRequest(route, 'POST', status, '1', seconds);
    };
    // 97 fast, 2 at 30 ms (bucket 25-50 ms), 1 past the last bound (4 s), spread over two series; probes do not count.
    observe(90, 0.003);
    observe(7, 0.0031, 422);
    observe(2, 0.03);
    observe(1, 4);
    observe(50, 0.9, 200, '/health');
    const first = await emf.assemble();
    // The 7 422s are the client's errors; no client closed its connection here.
    expect([(first.records[0] as unknown as Record<string, unknown>)[EMF_METRICS.requests4xx], (first.records[0] as unknown as Record<string, unknown>)[EMF_METRICS.clientClosed]]).toEqual([7, 0]);
    const line = (records: typeof first.records) => records.map((r) => JSON.stringify(r));
    const service = first.records[0] as unknown as Record<string, unknown>;
    expect(service[EMF_METRICS.latency]).toEqual({ Values: [5, 50, 5000], Counts: [97, 2, 1], Count: 100, Sum: expect.closeTo(90 * 3 + 7 * 3.1 + 2 * 30 + 4000, 6), Min: 5, Max: 5000 });
    const points = line(first.records).flatMap(extractEmf);
    expect(points.find((p) => p.name === EMF_METRICS.latency)?.unit).toBe('Milliseconds');
    // 3% of requests are slower than 25 ms: p99 above it, alarm; p50 is the first bucket's bound.
    expect(statistic(points, query)).toBe(50);
    expect(statistic(points, { ...query, stat: 'p50' })).toBe(5);
    expect(statistic(points, query)! > alarm.threshold).toBe(true);
    expect(statistic(points, { ...query, stat: 'SampleCount' })).toBe(100);
    // The same as the share the records also carry: p99 > T exactly when more than 1% are slower than T (T a bound).
    expect(statistic(points, { namespace: ns, metricName: 'RequestsOver25ms', stat: 'Sum' })).toBe(3);
    // The next interval holds only what came after (the baseline moves once the sink has the records).
    (emf as unknown as { commit(b: Map<string, number>): void }).commit(first.baseline);
    observe(400, 0.0004);
    // Clients that hung up before their answer (499, never sent) are requests and latencies, not 4xx.
    observe(3, 0.0004, CLIENT_CLOSED);
    observe(2, 0.0004, 404);
    const second = await emf.assemble();
    const secondService = second.records[0] as unknown as Record<string, unknown>;
    expect([secondService[EMF_METRICS.requests], secondService[EMF_METRICS.requests4xx], secondService[EMF_METRICS.clientClosed]]).toEqual([405, 2, 3]);
    expect((second.records[0] as unknown as Record<string, unknown>)[EMF_METRICS.latency]).toMatchObject({ Values: [0.5], Counts: [405], Count: 405 });
    expect(statistic(line(second.records).flatMap(extractEmf), query)).toBe(0.5);
    // An interval without requests sends no distribution (an empty one is not valid EMF).
    (emf as unknown as { commit(b: Map<string, number>): void }).commit(second.baseline);
    const third = await emf.assemble();
    expect((third.records[0] as unknown as Record<string, unknown>)[EMF_METRICS.latency]).toBeUndefined();
  });
});
