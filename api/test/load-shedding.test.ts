/**
 * Overload shedding on a listening server: past the in-flight cap, or while the event
 * loop is behind, prediction requests get 503 + Retry-After at once (counted by route
 * and reason); probes keep answering; admitted requests are unaffected.
 */
import http from 'node:http';
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
    running = await startServer(testConfig({ maxEventLoopDelayMs: 30 }), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    const shedder = running.service.shedder;
    // Hold the loop for 60 ms out of every 70 for a while: every turn is late.
    let busy = true;
    const hog = () => {
      if (!busy) return;
      const until = performance.now() + 60;
      while (performance.now() < until);
      setTimeout(hog, 10);
    };
    hog();
    await waitFor('the delay to register', () => shedder.eventLoopDelayMs > 30, 20_000);
    const res = await call(port, 'POST', '/predict', sampleRow());
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).error.message).toMatch(/event-loop delay over the limit/);
    expect(await shedCount('event_loop_delay')).toBeGreaterThanOrEqual(1);
    busy = false;
    await waitFor('the delay to fall', () => shedder.eventLoopDelayMs <= 30, 20_000);
    expect((await call(port, 'POST', '/predict', sampleRow())).status).toBe(200);
  });
});
