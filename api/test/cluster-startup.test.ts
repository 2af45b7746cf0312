/**
 * Start-up of a `--workers 2` cluster (the production bundle): readiness seen through the
 * shared port, and workers that cannot start.
 *
 * With nothing approved one worker listens not-ready so /ready can say why. Once a
 * sibling joins ready, that worker must leave the port until it is ready itself:
 * otherwise /ready (and /predict) flip between 200 and 503 by connection until its next
 * poll. Here its poll is a minute away, and the ready sibling is a replacement (kill -9)
 * that loads the newly approved model on start.
 *
 * A worker that dies before it can serve (here: the port is taken) is replaced with a
 * growing delay, not in a tight loop, and a stop cancels a pending replacement. Workers
 * that join and then die are counted too: the primary gives up (so the orchestrator sees
 * a crash loop) through the same drain as a SIGTERM.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { bundleApi } from '../build-bundle';
import { restartDelayMs } from '../serve';
import { call, freePort, spawnBundleCluster, testRegistry, waitFor, type BundleCluster, type ClusterEvent, type TestRegistry } from './fixtures';

const STEP_TIMEOUT_MS = 90_000;

type Event = ClusterEvent & { worker?: number; restartInMs?: number; reason?: string };

describe('cluster start-up (bundle, --workers 2)', () => {
  let dir: string;
  let reg: TestRegistry;
  let entry: string;
  let cluster: BundleCluster | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-cluster-startup-'));
    reg = await testRegistry();
    entry = (await bundleApi(path.join(dir, 'bundle'))).entry;
  }, STEP_TIMEOUT_MS);
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await reg.cleanup();
  });

  it('a worker listening not-ready leaves the port when a ready sibling joins: /ready stays 200 from then on', async () => {
    const pending = await reg.publish(1, { trees: 20, depth: 8, approve: false });
    const port = await freePort();
    cluster = spawnBundleCluster(entry, { port, registry: reg.registry.uri, env: { PRICESENSE_POLL_INTERVAL: '60s' } });
    const c = cluster;
    const events = c.events as Event[];
    await waitFor('a worker listening, not ready', () => c.pidsOf('not_ready').length === 1, STEP_TIMEOUT_MS);
    const [listener] = c.pidsOf('not_ready');
    expect((await call(port, 'GET', '/ready')).status).toBe(503);
    // Approved now; the listener polls again only in a minute. The other worker waits off the port: kill it, and its replacement loads the approved model on start.
    await reg.registry.approve(pending.version, 'go', 'test');
    const waiting = events.filter((e) => e.event === 'worker_forked').map((e) => e.worker!).find((pid) => pid !== listener)!;
    process.kill(waiting, 'SIGKILL');
    await waitFor('the replacement ready', () => c.pidsOf('ready').length === 1, STEP_TIMEOUT_MS);
    await waitFor('the not-ready listener to leave the port', () => c.pidsOf('port_left').includes(listener), STEP_TIMEOUT_MS);

    // Fresh connections, each handed to whichever worker listens: every one answered by the ready worker.
    const statuses = new Map<number, number>();
    for (let i = 0; i < 60; i++) {
      const res = await call(port, 'GET', '/ready', undefined, new http.Agent({ keepAlive: false }));
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
    expect([...statuses]).toEqual([[200, 60]]);
    expect(events.find((e) => e.event === 'port_left')?.reason).toMatch(/no Approved model version/);
    expect(c.stderr()).not.toMatch(/ERR_IPC|Unhandled|Uncaught|Error/);
  }, 4 * STEP_TIMEOUT_MS);

  it('workers that die before they can serve are replaced with a growing delay; a stop cancels the pending replacement', async () => {
    // The port is taken: every worker fails to listen and exits.
    const blocker = http.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      cluster = spawnBundleCluster(entry, { port, registry: reg.registry.uri });
      const c = cluster;
      const exits = () => (c.events as Event[]).filter((e) => e.event === 'worker_exited');
      // Signalled once a replacement is due in 8 s: far more than the test takes to see the log line, however loaded the machine.
      const longDelay = restartDelayMs(6);
      await waitFor('a replacement due in 8 s', () => exits().some((e) => e.restartInMs! >= longDelay), STEP_TIMEOUT_MS);
      const exited = new Promise<number | null>((resolve) => c.child.once('exit', resolve));
      c.child.kill('SIGTERM');
      await exited;
      expect(exits().slice(0, 6).map((e) => e.restartInMs)).toEqual([1, 2, 3, 4, 5, 6].map((n) => restartDelayMs(n)));
      expect(restartDelayMs(3)).toBeGreaterThan(restartDelayMs(2));
      expect(c.stderr()).toMatch(/EADDRINUSE/);
      const signalledAt = c.events.findIndex((e) => e.event === 'signal');
      const { cancelledReplacements } = c.events[signalledAt] as Event & { cancelledReplacements: number };
      expect(cancelledReplacements).toBeGreaterThanOrEqual(1);
      expect(c.events.slice(signalledAt).filter((e) => e.event === 'worker_forked')).toEqual([]);
      // Two at start, then one per exit before the signal, except the replacements the signal cancelled.
      const exitsBefore = c.events.slice(0, signalledAt).filter((e) => e.event === 'worker_exited').length;
      expect(c.events.filter((e) => e.event === 'worker_forked').length).toBe(2 + exitsBefore - cancelledReplacements);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 4 * STEP_TIMEOUT_MS);

  it('workers that join the port and then die keep counting: the primary gives up through the drain (the survivor finishes), exit 1; restarts are a metric', async () => {
    // Its own registry: an approved model whatever ran before.
    const own = await testRegistry();
    try {
      await own.publish(2, { trees: 20, depth: 8 });
      const port = await freePort();
      cluster = spawnBundleCluster(entry, { port, registry: own.registry.uri, env: { PRICESENSE_SHUTDOWN_TIMEOUT: '60s' } });
      const c = cluster;
      const events = c.events as Event[];
      const exited = new Promise<number | null>((resolve) => c.child.once('exit', resolve));
      const joined = () => events.filter((e) => e.event === 'worker_joined').map((e) => e.worker!);
      await waitFor('both workers on the port', () => joined().length === 2, STEP_TIMEOUT_MS);
      // The first to join serves throughout; every other worker dies once it has joined (as on a model that crashes it on its first poll).
      const [survivor] = joined();
      const killed: number[] = [];
      for (let crash = 1; crash <= 2 * 3 + 1; crash++) {
        await waitFor(`a worker to join (crash ${crash})`, () => joined().some((pid) => pid !== survivor && !killed.includes(pid)), STEP_TIMEOUT_MS);
        // One replacement per crash so far, counted by the primary and merged into the cluster's /metrics.
        expect(/^pricesense_worker_restarts_total (\d+)$/m.exec((await call(port, 'GET', '/metrics')).body)?.[1]).toBe(String(crash - 1));
        const victim = joined().find((pid) => pid !== survivor && !killed.includes(pid))!;
        killed.push(victim);
        process.kill(victim, 'SIGKILL');
      }
      // More than 3 per worker within 10 minutes: no replacement, the survivor drains, the primary exits 1.
      expect(await exited).toBe(1);
      const gaveUpAt = events.findIndex((e) => e.event === 'crash_loop');
      expect(gaveUpAt).toBeGreaterThan(0);
      expect(events[gaveUpAt].msg).toMatch(/7 workers died after they had joined the port.*giving up/);
      expect(events.slice(gaveUpAt).filter((e) => e.event === 'worker_forked')).toEqual([]);
      expect(events.filter((e) => e.event === 'stopped' && e.pid === survivor)).toEqual([expect.objectContaining({ drained: true })]);
      expect(events.filter((e) => e.event === 'workers_stopped')).toEqual([expect.objectContaining({ clean: true, crashLoop: true })]);
    } finally {
      await own.cleanup();
    }
  }, 6 * STEP_TIMEOUT_MS);
});
