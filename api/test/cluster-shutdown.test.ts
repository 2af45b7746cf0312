/**
 * SIGTERM to a `--workers 2` cluster (the production bundle). The primary and the
 * workers keep exchanging IPC messages while workers are exiting: the primary's
 * 'shutdown', a scrape's metrics aggregation (which asks every worker), the join
 * handshake. A message to a worker whose channel has closed must be dropped, not thrown
 * (an unhandled 'error' takes the primary and every worker's in-flight requests down),
 * and a 'shutdown' that reaches a worker before it can listen for it must not be lost.
 *
 * What a client may see besides an answer: a refused connection once the port is closed,
 * or a connection reset before the service read its request — one the cluster primary
 * had accepted but not yet handed to a worker when the last worker closed its listener
 * (as a single process resets its kernel backlog), or an idle keep-alive connection
 * closed as the request was sent (Node: `request.reusedSocket`, safe to retry). The
 * requests the service had read (the ones held in flight below) are all answered.
 */
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundleApi } from '../build-bundle';
import { call, freePort, mulberry32, sampleRow, spawnBundleCluster, testRegistry, waitFor, type BundleCluster, type TestRegistry } from './fixtures';

/** Generous: the machine may be shared. */
const STEP_TIMEOUT_MS = 90_000;
/** Requests held in flight (body or headers incomplete) across the signal. */
const HELD = 4;

type Outcome = { status: number; path: string } | { error: string; path: string; reused: boolean };

function request(port: number, method: string, urlPath: string, body: Buffer | undefined, agent: http.Agent | false): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {};
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, path: urlPath }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: `response cut: ${e.code ?? e.message}`, path: urlPath, reused: req.reusedSocket }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message, path: urlPath, reused: req.reusedSocket }));
    req.setTimeout(60_000, () => req.destroy(Object.assign(new Error('no answer within 60 s'), { code: 'TIMEOUT' })));
    req.end(body);
  });
}

/** A raw HTTP/1.1 exchange whose first part is written now and the rest on finish(); resolves with the response head. */
function held(port: number, first: string, rest: string): { finish(): void; response: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(first);
  let received = '';
  const response = new Promise<string>((resolve) => {
    socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
    socket.on('close', () => resolve(received));
    socket.on('error', (e: NodeJS.ErrnoException) => (received += `<${e.code}>`));
  });
  return { finish: () => socket.write(rest), response };
}

describe('cluster shutdown (bundle, --workers 2)', () => {
  let dir: string;
  let reg: TestRegistry;
  let entry: string;
  let cluster: BundleCluster | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-cluster-shutdown-'));
    reg = await testRegistry();
    await reg.publish(1, { trees: 20, depth: 8 });
    entry = (await bundleApi(path.join(dir, 'bundle'))).entry;
  }, STEP_TIMEOUT_MS);
  afterEach(() => {
    if (cluster && cluster.child.exitCode === null && cluster.child.signalCode === null) cluster.child.kill('SIGKILL');
    cluster = undefined;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await reg.cleanup();
  });

  const exitOf = (c: BundleCluster) => new Promise<{ code: number | null; signal: string | null }>((resolve) => c.child.once('exit', (code, signal) => resolve({ code, signal })));

  it('a SIGTERM while the workers are still starting stops them at once: no model load, no listening, exit 0', async () => {
    const port = await freePort();
    // A deadline far beyond the start-up: a worker that missed the stop, or waited for its model load before exiting, is seen doing so.
    cluster = spawnBundleCluster(entry, { port, registry: reg.registry.uri, env: { PRICESENSE_SHUTDOWN_TIMEOUT: '60s' } });
    const c = cluster;
    const exited = exitOf(c);
    // The workers are forked before this line is logged; they are still loading their code when the signal comes.
    await waitFor('the primary', () => c.pidsOf('primary_started').length === 1, STEP_TIMEOUT_MS);
    c.child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(c.pidsOf('stopped')).toHaveLength(2);
    expect(c.pidsOf('model_loaded')).toEqual([]);
    expect(c.pidsOf('listening')).toEqual([]);
    expect(c.events.filter((e) => e.event === 'workers_stopped')).toEqual([expect.objectContaining({ clean: true })]);
    expect(c.stderr()).not.toMatch(/ERR_IPC|Unhandled|Uncaught|Error/);
  }, 2 * STEP_TIMEOUT_MS);

  it('SIGTERM under load with predictions and /metrics scrapes in flight: every request the service read is answered, exit 0, no unhandled error', async () => {
    const port = await freePort();
    cluster = spawnBundleCluster(entry, { port, registry: reg.registry.uri, env: { PRICESENSE_SHUTDOWN_TIMEOUT: '60s' } });
    const c = cluster;
    const exited = exitOf(c);
    await waitFor('both workers ready', () => c.pidsOf('ready').length >= 2 || c.child.exitCode !== null, STEP_TIMEOUT_MS);
    expect(c.pidsOf('ready')).toHaveLength(2);

    // Predictions whose body is still arriving, and scrapes whose headers are: read by a worker, answered only after the signal.
    const body = JSON.stringify(sampleRow(mulberry32(9)));
    const predictions = Array.from({ length: HELD }, () =>
      held(port, `POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`, body.slice(5)),
    );
    const inFlight = async () => Number(/^pricesense_in_flight_requests (\d+)/m.exec((await call(port, 'GET', '/metrics')).body)?.[1]);
    await waitFor('the held predictions in flight', async () => (await inFlight()) === HELD, STEP_TIMEOUT_MS);
    const scrapes = Array.from({ length: HELD }, () => held(port, 'GET /metrics HTTP/1.1\r\nHost: t\r\n', '\r\n'));

    const outcomes: Outcome[] = [];
    let closed = false;
    // Predictions on fresh and on keep-alive connections, and scrapes, until the port refuses connections.
    const loop = async (method: string, urlPath: string, seed: number, keepAlive: boolean) => {
      const rng = mulberry32(seed);
      const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
      while (!closed) {
        const out = await request(port, method, urlPath, method === 'POST' ? Buffer.from(JSON.stringify(sampleRow(rng))) : undefined, agent);
        outcomes.push(out);
        if ('error' in out && out.error === 'ECONNREFUSED') closed = true;
      }
      if (agent) agent.destroy();
    };
    const load = Promise.all([loop('POST', '/predict', 1, false), loop('POST', '/predict', 2, true), loop('POST', '/predict', 3, true), loop('GET', '/metrics', 0, false), loop('GET', '/metrics', 0, true)]);
    try {
      await waitFor('traffic', () => outcomes.filter((o) => 'status' in o && o.status === 200).length > 100, STEP_TIMEOUT_MS);
      c.child.kill('SIGTERM');
      await waitFor('both workers draining', () => c.pidsOf('draining').length === 2, STEP_TIMEOUT_MS);
      // The held scrapes now ask the primary to aggregate while the cluster stops.
      for (const h of [...scrapes, ...predictions]) h.finish();
      expect(await exited).toEqual({ code: 0, signal: null });
    } finally {
      closed = true;
      await load;
    }

    for (const res of await Promise.all(predictions.map((h) => h.response))) expect(res).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\nConnection: close\r\n/i);
    for (const res of await Promise.all(scrapes.map((h) => h.response))) expect(res).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n[^]*pricesense_predictions_total/i);
    // Every HTTP answer is a success; every failure is a connection the service never read a request from.
    expect(outcomes.filter((o) => 'status' in o && o.status !== 200)).toEqual([]);
    const failed = outcomes.filter((o): o is Extract<Outcome, { error: string }> => 'error' in o);
    expect(failed.filter((o) => o.error !== 'ECONNREFUSED' && o.error !== 'ECONNRESET')).toEqual([]);
    expect(c.stderr()).not.toMatch(/ERR_IPC|Unhandled|Uncaught|Error/);
    expect(c.events.filter((e) => e.event === 'stopped').map((e) => (e as { drained?: boolean }).drained)).toEqual([true, true]);
    expect(c.events.filter((e) => e.event === 'workers_stopped')).toEqual([expect.objectContaining({ clean: true })]);
    expect(c.pidsOf('worker_exited')).toEqual([]);
  }, 4 * STEP_TIMEOUT_MS);
});
