/**
 * `--workers 2` on the production bundle. With nothing approved no worker can answer,
 * and one joins the port anyway so /health and /ready can say why. Under load, kill -9
 * one worker and the cluster keeps answering. The replacement must not take connections before it can
 * answer (a worker that listens first answers 503 "not ready" while its model loads),
 * so the only failures allowed are requests that were on the killed worker's
 * connections when it died: network errors, never an HTTP error status.
 */
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundleApi } from '../build-bundle';
import { call, freePort, mulberry32, sampleRow, spawnBundleCluster, testRegistry, waitFor, type BundleCluster, type TestRegistry } from './fixtures';

const CLIENTS = 6;
/** Generous: the machine may be shared; the run itself takes ~10-20 s alone. */
const STEP_TIMEOUT_MS = 90_000;

/** One request on its own connection (no keep-alive): each lands on whichever worker the cluster hands it to. */
function post(port: number, body: Buffer): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/predict', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
        res.on('error', (e) => resolve({ error: e.message }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    // A request no worker answers is a failure to report, not a test that hangs.
    req.setTimeout(20_000, () => req.destroy(Object.assign(new Error('no answer within 20 s'), { code: 'TIMEOUT' })));
    req.end(body);
  });
}

describe('cluster workers (bundle, --workers 2)', () => {
  let dir: string;
  let reg: TestRegistry;
  let cluster: BundleCluster | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-workers-'));
    reg = await testRegistry();
  });
  afterAll(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
    await reg.cleanup();
  });

  it('kill -9 of one worker under load: no non-2xx answer; only requests on its own connections fail', async () => {
    // A model that takes a noticeable time to load, so a replacement that listened first would be caught answering 503.
    // Registered, not approved yet: the cluster first starts with nothing to serve.
    const pending = await reg.publish(1, { trees: 60, depth: 10, approve: false });
    const { entry } = await bundleApi(path.join(dir, 'bundle'));
    const port = await freePort();
    cluster = spawnBundleCluster(entry, { port, registry: reg.registry.uri });
    const { events, pidsOf } = cluster;

    // Nothing approved: no worker can answer, so the first to find nobody listening joins anyway, to say why on /ready.
    await waitFor('a worker listening, not ready', () => pidsOf('not_ready').length >= 1, STEP_TIMEOUT_MS);
    expect((await call(port, 'GET', '/health')).status).toBe(200);
    const notReady = await call(port, 'GET', '/ready');
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body).reason).toMatch(/no Approved model version/);
    await reg.registry.approve(pending.version, 'go', 'test');
    // Both load the model; one was listening already, the other joins once loaded ('ready' is logged after it listens).
    const listening = () => new Set([...pidsOf('not_ready'), ...pidsOf('ready')]);
    await waitFor('both workers serving', () => pidsOf('model_swapped').length >= 2 && listening().size >= 2, STEP_TIMEOUT_MS);
    const [victim] = pidsOf('model_swapped');
    const before = listening();
    const readyPids = () => pidsOf('ready').filter((pid) => !before.has(pid));

    const statuses = new Map<number, number>();
    const errors: string[] = [];
    let killedAt = 0;
    let stop = false;
    const client = async (seed: number) => {
      const rng = mulberry32(seed);
      while (!stop) {
        const out = await post(port, Buffer.from(JSON.stringify(sampleRow(rng))));
        if ('status' in out) statuses.set(out.status, (statuses.get(out.status) ?? 0) + 1);
        else errors.push(`${out.error} ${killedAt ? `${Date.now() - killedAt} ms after the kill` : 'before the kill'}`);
      }
    };
    const load = Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i + 1)));
    try {
      await waitFor('traffic', () => (statuses.get(200) ?? 0) > 200, STEP_TIMEOUT_MS);
      process.kill(victim, 'SIGKILL');
      killedAt = Date.now();
      // The replacement loads and joins; then traffic keeps flowing over both for a while.
      // The replacement loads first and announces 'ready' only once it listens.
      await waitFor('a replacement worker ready', () => readyPids().length >= 1, STEP_TIMEOUT_MS);
      const served = statuses.get(200) ?? 0;
      await waitFor('more traffic after the replacement joined', () => (statuses.get(200) ?? 0) > served + 500, STEP_TIMEOUT_MS);
    } catch (err) {
      throw new Error(`${(err as Error).message}; statuses ${JSON.stringify([...statuses])}, errors ${JSON.stringify(errors.slice(0, 5))}, events ${JSON.stringify(events.map((e) => `${e.pid}:${e.event ?? e.msg}`))}`, { cause: err });
    } finally {
      stop = true;
      await load;
    }

    expect(cluster.stderr()).toBe('');
    // Every HTTP answer was a success: no worker answered before it could.
    expect([...statuses.keys()]).toEqual([200]);
    // Network errors only for what was on the killed worker: at most one request per client, right at the kill.
    expect(errors.length).toBeLessThanOrEqual(CLIENTS);
    for (const e of errors) expect(e).not.toMatch(/before the kill/);
    expect(events.some((e) => e.event === 'worker_exited')).toBe(true);
  }, 4 * STEP_TIMEOUT_MS);
});
