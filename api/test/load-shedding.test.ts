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
import { call, capturingLogger, sampleRow, silentLogger, testConfig, testRegistry, waitFor, type TestRegistry } from './fixtures';

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
    expect(s.open(1)).toBe(false); // already open
    expect(s.reached(60)).toBe(false);
    expect(s.reached(100)).toBe(false);
    s.turnEnded(100);
    expect(s.open(200)).toBe(true);
    s.turnEnded(200);
    // Long after: the first request of a turn has waited an unknown time, and is not shed.
    expect(s.reached(10_000)).toBe(false);
  });

  it('counts work seen before a request in its turn (a body that ended there, any arrival): the turn opens with it', () => {
    const s = new TurnDelaySignal(100);
    // Two turns of bodies scored 150 ms each before the next request is reached.
    expect(s.open(0)).toBe(true);
    expect(s.reached(150)).toBe(false); // over the limit: the clock starts
    s.turnEnded(151);
    s.open(152);
    expect(s.reached(300)).toBe(true);
  });

  it('stops the clock after an idle gap longer than the limit, and after a turn with no request over the limit (one big batch per turn)', () => {
    const s = new TurnDelaySignal(100);
    s.reached(0);
    expect(s.reached(150)).toBe(false); // the clock starts at 150
    s.turnEnded(160); // long, with a request over the limit: still behind
    // An hour of nothing: the loop had caught up, so the next backlog starts its own clock.
    s.open(3_600_000);
    expect(s.reached(3_600_150)).toBe(false);
    s.turnEnded(3_600_160);
    // Turns made long by one 150 ms batch each, no request reached over the limit: not behind.
    s.reached(3_600_170);
    s.turnEnded(3_600_320);
    s.reached(3_600_321);
    expect(s.reached(3_600_430)).toBe(false); // a fresh clock, not one from 3_600_150
    expect(s.reached(3_600_529)).toBe(false);
    expect(s.reached(3_600_530)).toBe(true);
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

  it('does not count a stall after deferred work (a pass answered together) as the next request\'s delay: requests that come alone are never shed', () => {
    const s = new TurnDelaySignal(100);
    for (let t = 0; t < 2000; t += 200) {
      // A request alone opens its turn; its pass answers it in an immediate; then a 150 ms stall (a timer, a GC).
      expect(s.reached(t)).toBe(false);
      s.turnEnded(t + 1);
      s.busy(t + 1, t + 2);
    }
  });

  it('counts deferred work between turns in the next turn\'s delay, and in the loop\'s busy time, not as idle', () => {
    const s = new TurnDelaySignal(100);
    s.reached(0);
    expect(s.reached(120)).toBe(false); // over the limit: the clock starts at 120
    s.turnEnded(130); // long, with a request over the limit: still behind
    // 80 ms of deferred work (a shadow model scoring the turn's rows), then the next turn opens 70 ms after it ends:
    // not idle for the limit since the work ended, so the clock runs on, and the turn began with the work.
    s.busy(130, 210);
    expect(s.reached(280)).toBe(false); // the first of its turn
    expect(s.reached(305)).toBe(true); // 25 ms into it, 105 with the work: over the limit, and behind since 120
  });

  it('carries no deferred work across an idle gap', () => {
    const s = new TurnDelaySignal(100);
    s.reached(0);
    s.turnEnded(1);
    s.busy(1, 131); // 130 ms of deferred work, then ten idle minutes
    expect(s.reached(600_000)).toBe(false);
    expect(s.reached(600_090)).toBe(false); // 90 ms into its turn, not 220
    s.turnEnded(600_095);
    s.reached(600_200);
    expect(s.reached(600_301)).toBe(false); // over the limit: only now does the clock start
  });

  it('keeps a turn\'s own deferred work to itself: inside an open turn it changes nothing', () => {
    const s = new TurnDelaySignal(100);
    s.reached(0);
    expect(s.reached(120)).toBe(false); // the clock starts at 120
    s.busy(125, 200); // a full pass answered while the turn is read: the turn's own work
    expect(s.reached(230)).toBe(true);
    s.turnEnded(240);
    expect(s.reached(250)).toBe(false); // nothing carried into the next turn
    expect(s.reached(340)).toBe(false); // 90 ms into it
  });

  it('through the shedder: a request that comes alone after its pass and a stall longer than the limit is admitted, turn after turn', async () => {
    const shedder = new LoadShedder({ maxInFlight: 10, maxEventLoopDelayMs: 30, metrics: new ApiMetrics() });
    const cell = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 4; i++) {
      shedder.working(); // the request's arrival (the server's listener)
      expect(shedder.enter('/predict')).toBeUndefined();
      await new Promise((r) => setImmediate(r)); // the turn ends; its pass runs in the immediate after
      shedder.deferred(() => shedder.leave());
      Atomics.wait(cell, 0, 0, 60); // a timer or a GC holds the loop right after the pass
    }
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
    const log = capturingLogger<{ level: number; status?: number; event?: string }>('info');
    running = await startServer(testConfig({ maxInFlight: 3 }), { registry: reg.registry, logger: log.logger });
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
    // Counted, not logged one by one at info or above (at error, overload would flood the log): the minute's traffic line has them.
    expect(log.lines.filter((l) => l.status === 503)).toEqual([]);
    running.service.access.summarize();
    expect(log.lines.find((l) => l.event === 'traffic')).toMatchObject({ statuses: { 503: 3 } });
  });

  /** A request as raw bytes; `work` makes the server spend that many ms before the handler sees it (X-Test-Work), `endWork` before its body's end is handled (X-Test-End-Work). */
  const rawRequest = (target: string, work = 0, endWork = 0) => {
    const body = JSON.stringify(sampleRow());
    const head = `POST ${target} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Test-Work: ${work}\r\nX-Test-End-Work: ${endWork}\r\n\r\n`;
    return { head, body, whole: head + body };
  };
  /** Work in the server's own turn, before its handlers (listeners prepended: they run first): what long batches ahead would cost. */
  const addWork = (server: http.Server) => {
    const work = (req: http.IncomingMessage) => {
      spin(Number(req.headers['x-test-work'] ?? 0));
      const endWork = Number(req.headers['x-test-end-work'] ?? 0);
      if (endWork > 0) req.prependListener('end', () => spin(endWork));
    };
    server.prependListener('request', work);
    return () => server.removeListener('request', work);
  };

  /** A server with a 30 ms limit and the test's work listener, and `n` connections, each used once first so the server has them all open. */
  const serveWithWork = async (n: number, target: string) => {
    running = await startServer(testConfig({ maxEventLoopDelayMs: 30 }), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    const sockets = await Promise.all(Array.from({ length: n }, () => rawConnection(port)));
    const removeWork = addWork(running.server);
    for (const c of sockets) {
      const warm = c.answer();
      c.write(rawRequest(target).whole);
      expect((await warm).status).toBe(200);
    }
    return { port, sockets, removeWork };
  };

  it.each(['/predict', '/predict?explain=true'])('sheds a request reached late in a turn the loop has been behind in for the limit, on a listening server, and counts it (%s)', async (target) => {
    const { port, sockets, removeWork } = await serveWithWork(3, target);
    try {
      // All three written before the server's next poll: one turn reads them all. The first opens the turn
      // (after its own 40 ms), the second is reached 40 ms in (over the limit: the clock starts), the third
      // 80 ms in, the loop behind for 40 ms: shed.
      const answers = Promise.all(sockets.map((c) => c.answer()));
      for (const c of sockets) c.write(rawRequest(target, 40).whole);
      const [a, b, c] = await answers;
      expect([a.status, b.status, c.status]).toEqual([200, 200, 503]);
      expect(c.headers['retry-after']).toBe('1');
      expect(JSON.parse(c.body).error).toMatchObject({ code: 'overloaded', message: 'The server is overloaded (requests are queueing: the event loop is behind by more than its limit); retry after 1 s' });
      expect(await shedCount('event_loop_delay')).toBe(1);
      // Once the loop has caught up, requests are served again.
      expect((await call(port, 'POST', target, sampleRow())).status).toBe(200);
    } finally {
      removeWork();
      for (const c of sockets) c.close();
    }
  });

  it.each(['/predict', '/predict?explain=true'])('counts the scoring of bodies that end in a later turn than their headers came in (large batches, slow clients) in the delay of the requests after them (%s)', async (target) => {
    const { sockets, removeWork } = await serveWithWork(5, target);
    try {
      // Three requests whose bodies are held back: admitted, in flight.
      const split = rawRequest(target, 0, 40);
      const answers = Promise.all(sockets.map((c) => c.answer()));
      for (const c of sockets.slice(0, 3)) c.write(split.head + split.body.slice(0, 5));
      await waitFor('three bodies pending', () => running!.service.shedder.inFlight === 3);
      // In one turn: the three bodies end (40 ms of work each before they are scored), then two new
      // requests arrive behind them. The first is reached ~160 ms into the turn (the clock starts), the
      // second ~200 ms in, the loop behind for 40 ms: shed. Measured from the first admission instead,
      // the turn would look 40 ms old and nothing would be shed.
      for (const c of sockets.slice(0, 3)) c.write(split.body.slice(5));
      for (const c of sockets.slice(3)) c.write(rawRequest(target, 40).whole);
      expect((await answers).map((a) => a.status)).toEqual([200, 200, 200, 200, 503]);
      expect(await shedCount('event_loop_delay')).toBe(1);
    } finally {
      removeWork();
      for (const c of sockets) c.close();
    }
  });

  it('counts work before the first prediction of a turn (a probe, any request): the turn opens with its arrival', async () => {
    running = await startServer(testConfig({ maxEventLoopDelayMs: 30 }), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    const sockets = await Promise.all([0, 1, 2].map(() => rawConnection(port)));
    const removeWork = addWork(running.server);
    const probe = (work: number) => `GET /ready HTTP/1.1\r\nHost: t\r\nX-Test-Work: ${work}\r\n\r\n`;
    try {
      const warm = sockets.map((c, i) => {
        const a = c.answer();
        c.write(i === 0 ? probe(0) : rawRequest('/predict').whole);
        return a;
      });
      expect((await Promise.all(warm)).map((a) => a.status)).toEqual([200, 200, 200]);
      // A probe, then two predictions, 40 ms of work ahead of each: the turn is 40 ms old when the first
      // prediction is reached (the clock starts), 80 ms when the second is (behind for 40 ms: shed).
      const answers = Promise.all(sockets.map((c) => c.answer()));
      sockets[0].write(probe(40));
      for (const c of sockets.slice(1)) c.write(rawRequest('/predict', 40).whole);
      expect((await answers).map((a) => a.status)).toEqual([200, 200, 503]);
    } finally {
      removeWork();
      for (const c of sockets) c.close();
    }
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

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A raw keep-alive connection: write() sends bytes as given; answer() resolves with the next answer (status line, headers, Content-Length body), or fails after 10 s. */
async function rawConnection(port: number): Promise<{ write(bytes: string): void; answer(): Promise<RawAnswer>; close(): void }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.setNoDelay(true);
  let buffered = Buffer.alloc(0);
  const pending: { resolve(a: RawAnswer): void; timer: NodeJS.Timeout }[] = [];
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0 || pending.length === 0) return;
      const lines = buffered.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
      const length = Number(headers['content-length']);
      if (buffered.length < end + 4 + length) return;
      const body = buffered.subarray(end + 4, end + 4 + length).toString('utf8');
      buffered = buffered.subarray(end + 4 + length);
      const next = pending.shift()!;
      clearTimeout(next.timer);
      next.resolve({ status: Number(lines[0].split(' ')[1]), headers, body });
    }
  });
  return {
    write: (bytes) => socket.write(bytes),
    answer: () =>
      new Promise<RawAnswer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
        pending.push({ resolve, timer });
      }),
    close() {
      for (const p of pending) clearTimeout(p.timer);
      socket.destroy();
    },
  };
}
