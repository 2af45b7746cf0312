/**
 * Overload shedding on a listening server: past the in-flight cap, or once the event
 * loop has been behind for the limit, prediction requests get 503 + Retry-After at once
 * (counted by route and reason); probes keep answering; admitted requests are unaffected.
 */
import http from 'node:http';
import net from 'node:net';
import { LoadShedder, TurnDelaySignal } from '../load-shedding';
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

describe('the event-loop signal (TurnDelaySignal): CoDel on how far into its loop turn a request is reached', () => {
  it('never sheds the first request of a turn, nor any reached within the limit', () => {
    const s = new TurnDelaySignal(100);
    expect(s.reached(0)).toBe(false);
    expect(s.inTurn).toBe(true);
    expect(s.reached(60)).toBe(false);
    expect(s.reached(100)).toBe(false);
    expect(s.delayAt(100)).toBe(100);
    s.turnEnded(100);
    expect(s.inTurn).toBe(false);
    expect(s.delayAt(500)).toBe(0);
    // Long after: the first request of a turn has waited an unknown time, and is not shed.
    expect(s.reached(10_000)).toBe(false);
  });

  it('does not shed for one long pause (a model swap, a major GC) followed by a short turn', () => {
    const s = new TurnDelaySignal(100);
    s.reached(0);
    // A 400 ms pause inside the turn: what follows it was over the limit, and starts the clock.
    expect(s.reached(400)).toBe(false);
    expect(s.reached(450)).toBe(false); // less than the limit since the clock started
    s.turnEnded(460);
    // The next turn ends within the limit: the loop caught up, the clock stops.
    expect(s.reached(461)).toBe(false);
    s.turnEnded(470);
    // So a later long turn starts it again rather than shedding at once.
    s.reached(1000);
    expect(s.reached(1150)).toBe(false);
    expect(s.reached(1200)).toBe(false);
    expect(s.reached(1250)).toBe(true);
  });

  it('sheds, request by request, once the loop has been behind for the limit, across turns, until a turn ends within it', () => {
    const s = new TurnDelaySignal(100);
    s.reached(0);
    expect(s.reached(120)).toBe(false); // the clock starts at 120
    expect(s.reached(219)).toBe(false);
    expect(s.reached(220)).toBe(true);
    expect(s.reached(300)).toBe(true);
    s.turnEnded(320); // a long turn: still behind
    expect(s.reached(321)).toBe(false); // the first of the next turn
    expect(s.reached(400)).toBe(false); // within the limit in its turn
    expect(s.reached(430)).toBe(true); // over it, and behind since 120
    s.turnEnded(440);
    s.reached(441);
    s.turnEnded(480); // within the limit: caught up
    s.reached(500);
    expect(s.reached(650)).toBe(false); // the clock starts again
  });

  it('refuses a limit below 10 ms', () => {
    expect(() => new LoadShedder({ maxInFlight: 1, maxEventLoopDelayMs: 5, metrics: new ApiMetrics() })).toThrow(/at least 10/);
  });
});

/** Blocks the thread for at least `ms` (a turn's worth of work). */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
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

  it('sheds a request reached late in a turn the loop has been behind in for the limit, on a listening server, and counts it', async () => {
    running = await startServer(testConfig({ maxEventLoopDelayMs: 30 }), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    // Three keep-alive connections, each used once, so the server has them all open.
    const sockets = await Promise.all([0, 1, 2].map(() => rawConnection(port)));
    const body = JSON.stringify(sampleRow());
    const raw = `POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Test-Work: 40\r\n\r\n${body}`;
    for (const c of sockets) expect((await c.send(raw)).status).toBe(200);
    // Work before each request's handler (40 ms): what a long batch ahead of it in the turn would do.
    const work = (req: http.IncomingMessage) => {
      const ms = Number(req.headers['x-test-work'] ?? 0);
      if (ms > 0) spin(ms);
    };
    running.server.prependListener('request', work);
    // All three written before the server's next poll: one turn reads them all. The first is
    // reached at once, the second 40 ms in (over the limit: the clock starts), the third 80 ms
    // in, the loop behind for 40 ms: shed.
    const answers = Promise.all(sockets.map((c) => c.send(raw, false)));
    for (const c of sockets) c.flush();
    const [a, b, c] = await answers;
    running.server.removeListener('request', work);
    expect([a.status, b.status, c.status]).toEqual([200, 200, 503]);
    expect(c.headers['retry-after']).toBe('1');
    expect(JSON.parse(c.body).error).toMatchObject({ code: 'overloaded', message: 'The server is overloaded (requests are queueing: the event loop is behind by more than its limit); retry after 1 s' });
    expect(await shedCount('event_loop_delay')).toBe(1);
    // Once the loop has caught up, requests are served again.
    expect((await call(port, 'POST', '/predict', sampleRow())).status).toBe(200);
    for (const s of sockets) s.close();
  });

  it('does not shed requests that arrive one at a time, however late the loop runs (the cores went elsewhere, a timer held it)', async () => {
    running = await startServer(testConfig({ maxEventLoopDelayMs: 30 }), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    // Block the loop between requests without using the CPU: Atomics.wait sleeps the thread, as a stolen core would.
    const cell = new Int32Array(new SharedArrayBuffer(4));
    let sleeping = true;
    const nap = () => {
      if (!sleeping) return;
      Atomics.wait(cell, 0, 0, 60);
      setTimeout(nap, 5);
    };
    nap();
    try {
      for (let i = 0; i < 10; i++) expect((await call(port, 'POST', '/predict', sampleRow())).status).toBe(200);
      expect(await shedCount('event_loop_delay')).toBe(0);
    } finally {
      sleeping = false;
    }
  });
});

/** A raw keep-alive connection: send() writes a request and resolves with the answer (status line, headers, Content-Length body). */
async function rawConnection(port: number): Promise<{ send(raw: string, now?: boolean): Promise<{ status: number; headers: Record<string, string>; body: string }>; flush(): void; close(): void }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.setNoDelay(true);
  let buffered = Buffer.alloc(0);
  let pending: ((a: { status: number; headers: Record<string, string>; body: string }) => void) | undefined;
  let held: string | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0 || !pending) return;
    const lines = buffered.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
    const length = Number(headers['content-length']);
    if (buffered.length < end + 4 + length) return;
    const body = buffered.subarray(end + 4, end + 4 + length).toString('utf8');
    buffered = buffered.subarray(end + 4 + length);
    const done = pending;
    pending = undefined;
    done({ status: Number(lines[0].split(' ')[1]), headers, body });
  });
  return {
    send(raw, now = true) {
      return new Promise((resolve) => {
        pending = resolve;
        if (now) socket.write(raw);
        else held = raw;
      });
    },
    flush() {
      if (held !== undefined) socket.write(held);
      held = undefined;
    },
    close() {
      socket.destroy();
    },
  };
}
