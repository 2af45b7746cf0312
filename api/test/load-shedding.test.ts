/**
 * Overload shedding on a listening server: past the in-flight cap, or while the event
 * loop is behind, prediction requests get 503 + Retry-After at once (counted by route
 * and reason); probes keep answering; admitted requests are unaffected.
 */
import http from 'node:http';
import { DelaySignal, LoadShedder } from '../load-shedding';
import { ApiMetrics } from '../metrics';
import { startServer, type RunningServer } from '../server';
import { call, sampleRow, silentLogger, testConfig, testRegistry, waitFor, type TestRegistry } from './fixtures';

/** A /predict whose body is held back: it stays in flight until release() sends the rest. */
function heldRequest(port: number): { release(): void; done: Promise<number> } {
  const body = Buffer.from(JSON.stringify(sampleRow()));
  let req!: http.ClientRequest;
  const done = new Promise<number>((resolve, reject) => {
    req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/predict', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write(body.subarray(0, 5));
  });
  return { release: () => req.end(body.subarray(5)), done };
}

describe('the event-loop signal (DelaySignal)', () => {
  const busy = (delayMs: number) => ({ delayMs, busy: true });

  it('does not shed for one late window (a model load, a GC), only after two in a row', () => {
    const s = new DelaySignal(100);
    s.observe(busy(5000));
    expect(s.share).toBe(0);
    s.observe(busy(3));
    s.observe(busy(400));
    expect(s.share).toBe(0);
    s.observe(busy(400));
    expect(s.share).toBe(1);
  });

  it('sheds a share growing with the delay (half at the limit, all at 1.5x), and keeps shedding down to half the limit (hysteresis)', () => {
    const s = new DelaySignal(100);
    s.observe(busy(120));
    s.observe(busy(120));
    expect(s.share).toBeCloseTo(0.7);
    s.observe(busy(100));
    expect(s.share).toBeCloseTo(0.5);
    s.observe(busy(60));
    expect(s.share).toBeCloseTo(0.1);
    s.observe(busy(49));
    expect(s.share).toBe(0);
    // Off again: re-engaging takes two windows over the limit, not one just under it.
    s.observe(busy(90));
    expect(s.share).toBe(0);
  });

  it('stops at once when the process is not the one using the CPU (a neighbour or CFS throttling made the loop late)', () => {
    const s = new DelaySignal(100);
    s.observe(busy(300));
    s.observe(busy(300));
    expect(s.share).toBe(1);
    s.observe({ delayMs: 300, busy: false });
    expect(s.share).toBe(0);
  });

  it('refuses a limit below the monitor\'s 10 ms resolution', () => {
    expect(() => new LoadShedder({ maxInFlight: 1, maxEventLoopDelayMs: 5, metrics: new ApiMetrics() })).toThrow(/at least 10/);
  });
});

describe('overload shedding', () => {
  let reg: TestRegistry;
  let running: RunningServer | undefined;

  beforeEach(async () => {
    reg = await testRegistry();
    await reg.publish(1);
  });
  afterEach(async () => {
    await running?.close(1000);
    running = undefined;
    await reg.cleanup();
  });

  const shedCount = async (reason: string, route = '/predict') => {
    const text = (await call(running!.port, 'GET', '/metrics')).body;
    const m = new RegExp(`pricesense_requests_shed_total\\{route="${route.replace(/\//g, '\\/')}",reason="${reason}"\\} (\\d+)`).exec(text);
    return m ? Number(m[1]) : 0;
  };

  it('answers 503 + Retry-After beyond the in-flight cap, on both protocols, and admits again once requests finish', async () => {
    running = await startServer(testConfig({ maxInFlight: 3 }), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    const held = [heldRequest(port), heldRequest(port), heldRequest(port)];
    await waitFor('three requests in flight', () => running!.service.shedder.inFlight === 3);

    const shed = await call(port, 'POST', '/predict', sampleRow());
    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBe('1');
    expect(JSON.parse(shed.body).error).toMatchObject({ code: 'overloaded', message: 'The server is overloaded (too many requests in progress); retry after 1 s' });
    // The Express path (a query string) and OIP shed the same way.
    expect((await call(port, 'POST', '/predict?explain=true', sampleRow())).status).toBe(503);
    const oip = await call(port, 'POST', '/v2/models/pricesense/infer', { inputs: [] });
    expect(oip.status).toBe(503);
    expect(JSON.parse(oip.body).error).toMatch(/overloaded/);
    // Probes are never shed: an overloaded pod must still be able to say so.
    expect((await call(port, 'GET', '/ready')).status).toBe(200);
    expect((await call(port, 'GET', '/health')).status).toBe(200);
    expect(await shedCount('in_flight')).toBe(2);
    expect(await shedCount('in_flight', '/v2/models/:name/infer')).toBe(1);
    const metrics = (await call(port, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/\npricesense_in_flight_requests 3\n/);

    for (const h of held) h.release();
    expect(await Promise.all(held.map((h) => h.done))).toEqual([200, 200, 200]);
    expect(running.service.shedder.inFlight).toBe(0);
    expect((await call(port, 'POST', '/predict', sampleRow())).status).toBe(200);
  });

  it('sheds while the event loop is behind, and recovers when it catches up', async () => {
    // The real monitor and windows; the share of a core this process must use is 0 here, because
    // the host running the suite may be too loaded to give it half a core (that gate has its own test below).
    const shedder = new LoadShedder({ maxInFlight: 100, maxEventLoopDelayMs: 50, metrics: new ApiMetrics(), busyCpuShare: 0 });
    // Hold the loop for 150 ms at a time, with only a turn in between: every turn is late.
    let busy = true;
    const hog = () => {
      if (!busy) return;
      const until = performance.now() + 150;
      while (performance.now() < until);
      setImmediate(hog);
    };
    hog();
    const reasons = new Set<string | undefined>();
    try {
      await waitFor('shedding to start', () => shedder.eventLoopShedShare > 0, 20_000);
      for (let i = 0; i < 40 && !reasons.has('event_loop_delay'); i++) {
        const reason = shedder.enter('/predict');
        if (reason === undefined) shedder.leave();
        reasons.add(reason);
      }
    } finally {
      busy = false;
    }
    try {
      expect(reasons).toContain('event_loop_delay');
      await waitFor('shedding to stop', () => shedder.eventLoopShedShare === 0, 20_000);
      expect(shedder.enter('/predict')).toBeUndefined();
    } finally {
      shedder.stop();
    }
  });

  it('does not shed when the loop is late but the process is idle (the cores went elsewhere)', async () => {
    running = await startServer(testConfig({ maxEventLoopDelayMs: 30 }), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    const shedder = running.service.shedder;
    // Block the loop without using the CPU: Atomics.wait sleeps the thread, as a stolen core would.
    const cell = new Int32Array(new SharedArrayBuffer(4));
    let sleeping = true;
    const nap = () => {
      if (!sleeping) return;
      Atomics.wait(cell, 0, 0, 60);
      setTimeout(nap, 10);
    };
    nap();
    try {
      await waitFor('the delay to register', () => shedder.eventLoopDelayMs > 30, 20_000);
      // More windows over the limit than shedding needs to engage (two): a busy process would be shedding by now.
      const judged = shedder.judgedWindows;
      await waitFor('three more windows', () => shedder.judgedWindows >= judged + 3, 20_000);
      expect(shedder.eventLoopDelayMs).toBeGreaterThan(30);
      expect(shedder.eventLoopShedShare).toBe(0);
      expect((await call(port, 'POST', '/predict', sampleRow())).status).toBe(200);
      expect(await shedCount('event_loop_delay')).toBe(0);
    } finally {
      sleeping = false;
    }
  });
});
