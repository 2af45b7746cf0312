/**
 * Model lifecycle on a real listening server (127.0.0.1): hot swap and rollback under
 * load, a failed load keeping the current model, canary and shadow challengers, and
 * graceful shutdown.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import * as forestLoader from '../../model/forest-loader';
import { CompiledForest } from '../../model/walker';
import { startServer, type RunningServer } from '../server';
import { call, makeForest, mulberry32, sampleRow, silentLogger, testConfig, testRegistry, waitFor, type TestRegistry } from './fixtures';

describe('model lifecycle (listening server)', () => {
  let reg: TestRegistry;
  let running: RunningServer | undefined;

  beforeEach(async () => {
    reg = await testRegistry();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await running?.close(1000);
    running = undefined;
    await reg.cleanup();
  });

  it('hot-swaps to a newly approved version and rolls back, with zero failed requests under load', async () => {
    const v1 = (await reg.publish(1)).version;
    running = await startServer(testConfig({ pollIntervalMs: 100 }), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const seen: string[] = [];
    const failures: string[] = [];
    let stop = false;
    const client = async (seed: number) => {
      const rng = mulberry32(seed);
      for (let i = 0; i < 20_000 && !stop; i++) {
        const single = rng() < 0.7;
        const res = await call(port, 'POST', '/predict', single ? sampleRow(rng) : { instances: [sampleRow(rng), sampleRow(rng)] }, agent);
        if (res.status !== 200) failures.push(`${res.status} ${res.body.slice(0, 200)}`);
        const version = String(res.headers['x-model-version']);
        const bodyVersion = String((JSON.parse(res.body) as { model: { version: number } }).model.version);
        if (version !== bodyVersion) failures.push(`header ${version} != body ${bodyVersion}`);
        if (seen[seen.length - 1] !== version) seen.push(version);
      }
    };
    const load = Promise.all([1, 2, 3, 4].map(client));
    await waitFor('traffic on v1', () => seen.includes(String(v1)));

    const v2 = (await reg.publish(2)).version;
    await waitFor('responses from v2', () => seen.includes(String(v2)));
    await reg.registry.reject(v2, 'rollback drill', 'test');
    await waitFor('responses back on v1', () => seen.lastIndexOf(String(v1)) > seen.indexOf(String(v2)));
    stop = true;
    await load;
    agent.destroy();

    expect(failures).toEqual([]);
    // v1, then v2, then v1 again (a response stream never flips back and forth within a swap).
    expect(seen).toEqual([String(v1), String(v2), String(v1)]);
    const metrics = (await call(port, 'GET', '/metrics')).body;
    expect(metrics).toContain(`pricesense_model_loads_total{model_version="${v1}",role="champion"} 2`);
    expect(metrics).toContain(`pricesense_model_loads_total{model_version="${v2}",role="champion"} 1`);
  });

  it('keeps serving the current model when a new version fails to load, and reports it', async () => {
    const v1 = (await reg.publish(1)).version;
    running = await startServer(testConfig({ pollIntervalMs: 60_000 }), { registry: reg.registry, logger: silentLogger() });
    const pending = await reg.publish(2, { approve: false });
    // Corrupt the stored artifact after registration: the registry's checksum check must catch it.
    await reg.tamper(pending.version);
    await reg.registry.approve(pending.version, 'approve the tampered one', 'test');
    await running.service.manager.refresh();

    const ready = JSON.parse((await call(running.port, 'GET', '/ready')).body);
    expect(ready.ready).toBe(true);
    expect(ready.champion.version).toBe(v1);
    expect(ready.lastLoadFailure).toMatchObject({ version: pending.version, role: 'champion' });
    expect(ready.lastLoadFailure.error).toMatch(/checksum|digest|sha/i);
    const res = await call(running.port, 'POST', '/predict', sampleRow());
    expect(res.status).toBe(200);
    expect(res.headers['x-model-version']).toBe(String(v1));
    const metrics = (await call(running.port, 'GET', '/metrics')).body;
    expect(metrics).toContain(`pricesense_model_load_failures_total{model_version="${pending.version}",role="champion"} 1`);
  });

  it('does not re-fetch, re-hash and re-parse a version that failed to load on every poll: it is remembered until the registry changes (or the backoff ends)', async () => {
    const v1 = (await reg.publish(1)).version;
    running = await startServer(testConfig({ pollIntervalMs: 60_000 }), { registry: reg.registry, logger: silentLogger() });
    const broken = await reg.publish(2, { approve: false });
    await reg.tamper(broken.version);
    await reg.registry.approve(broken.version, 'approve the tampered one', 'test');
    const fetches = jest.spyOn(reg.registry, 'fetchArtifact');
    for (let i = 0; i < 4; i++) await running.service.manager.refresh();
    expect(fetches.mock.calls.map(([v]) => v)).toEqual([broken.version]);
    expect(running.service.manager.champion?.version).toBe(v1);
    const metrics = (await call(running.port, 'GET', '/metrics')).body;
    expect(metrics).toContain(`pricesense_model_load_failures_total{model_version="${broken.version}",role="champion"} 1`);
    // A change in the registry (here: a newer approved version) is loaded as usual.
    const v3 = (await reg.publish(3)).version;
    await running.service.manager.refresh();
    expect(running.service.manager.champion?.version).toBe(v3);
  });

  const forestFile = (v: number) => path.join(reg.versionDir(v), 'forest.json');

  it('retries a remembered failure once the registry changes the version (reject, then approve again), and after a backoff when restored bytes are all that changed', async () => {
    const v1 = (await reg.publish(1)).version;
    let clock = Date.parse('2026-01-01T00:00:00Z');
    running = await startServer(testConfig({ pollIntervalMs: 60_000 }), { registry: reg.registry, logger: silentLogger(), now: () => clock });
    const manager = running.service.manager;
    const v2 = (await reg.publish(2, { approve: false })).version;
    const good = await readFile(forestFile(v2));
    await reg.tamper(v2);
    await reg.registry.approve(v2, 'approve the tampered one', 'test');
    await manager.refresh();
    expect(manager.champion?.version).toBe(v1);
    expect(manager.status().failedVersions).toEqual([expect.objectContaining({ version: v2, retryAt: '2026-01-01T00:05:00.000Z' })]);

    // The operator restores the right bytes (docs/registry.md's remedy): within the backoff nothing is fetched...
    await writeFile(forestFile(v2), good);
    const fetches = jest.spyOn(reg.registry, 'fetchArtifact');
    clock += 4 * 60_000;
    await manager.refresh();
    expect(fetches).not.toHaveBeenCalled();
    // ...after it, the version is tried again and served, and forgotten as a failure.
    clock += 60_000;
    await manager.refresh();
    expect(manager.champion?.version).toBe(v2);
    expect(manager.status().failedVersions).toBeUndefined();

    // A status change is a registry change: reject + approve retries at once, whatever the backoff.
    await reg.registry.reject(v2, 'withdraw', 'test');
    await manager.refresh();
    expect(manager.champion?.version).toBe(v1);
    await reg.tamper(v2);
    await reg.registry.approve(v2, 'again, still tampered', 'test');
    await manager.refresh();
    expect(manager.status().failedVersions).toEqual([expect.objectContaining({ version: v2 })]);
    await writeFile(forestFile(v2), good);
    await reg.registry.reject(v2, 'fix the bytes', 'test');
    await reg.registry.approve(v2, 'fixed', 'test');
    fetches.mockClear();
    await manager.refresh();
    expect(fetches.mock.calls.map(([v]) => v)).toEqual([v2]);
    expect(manager.champion?.version).toBe(v2);
  });

  it('does not remember a failure that says nothing about the artifact (an allocation failure): the next poll tries again', async () => {
    const v1 = (await reg.publish(1)).version;
    running = await startServer(testConfig({ pollIntervalMs: 60_000 }), { registry: reg.registry, logger: silentLogger() });
    const v2 = (await reg.publish(2)).version;
    // After the bytes arrived and verified: the loader cannot get memory (the fault cannot be produced on demand, so it is injected).
    jest.spyOn(forestLoader, 'loadForestInWorker').mockRejectedValueOnce(new RangeError('Array buffer allocation failed'));
    await running.service.manager.refresh();
    expect(running.service.manager.champion?.version).toBe(v1);
    expect(running.service.manager.status().lastLoadFailure?.error).toMatch(/allocation failed/);
    expect(running.service.manager.status().failedVersions).toBeUndefined();
    await running.service.manager.refresh();
    expect(running.service.manager.champion?.version).toBe(v2);
  });

  it('withdraws a champion rejected meanwhile even when the registry listing fails (the served version is re-checked on its own)', async () => {
    const v1 = (await reg.publish(1)).version;
    running = await startServer(testConfig({ pollIntervalMs: 60_000 }), { registry: reg.registry, logger: silentLogger() });
    await reg.registry.reject(v1, 'withdraw', 'test');
    jest.spyOn(reg.registry, 'latestServable').mockRejectedValue(new Error('registry corrupt: versions/000009/version.json is not valid JSON'));
    await running.service.manager.refresh();
    expect(running.service.manager.champion).toBeUndefined();
    const ready = JSON.parse((await call(running.port, 'GET', '/ready')).body);
    expect(ready.reason).toMatch(/no longer Approved.*could not be listed/);
    expect(ready.lastPoll).toMatchObject({ ok: false });
  });

  it('keeps serving through a failed registry listing while the served version is still Approved, and reports the failed poll', async () => {
    const v1 = (await reg.publish(1)).version;
    running = await startServer(testConfig({ pollIntervalMs: 60_000 }), { registry: reg.registry, logger: silentLogger() });
    jest.spyOn(reg.registry, 'latestServable').mockRejectedValue(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    for (let poll = 0; poll < 3; poll++) await running.service.manager.refresh();
    expect(running.service.manager.champion?.version).toBe(v1);
    expect((await call(running.port, 'POST', '/predict', sampleRow())).status).toBe(200);
    const ready = await call(running.port, 'GET', '/ready');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body).lastPoll).toMatchObject({ ok: false });
  });

  it('never withdraws the served model because the registry briefly said "nothing approved" (an empty page) while it is still Approved', async () => {
    const v1 = (await reg.publish(1)).version;
    running = await startServer(testConfig({ pollIntervalMs: 60_000 }), { registry: reg.registry, logger: silentLogger() });
    jest.spyOn(reg.registry, 'latestServable').mockResolvedValueOnce({ latest: undefined, broken: [] });
    await running.service.manager.refresh();
    expect(running.service.manager.champion?.version).toBe(v1);
    expect((await call(running.port, 'POST', '/predict', sampleRow())).status).toBe(200);
    // When it really is no longer Approved, it is withdrawn.
    await reg.registry.reject(v1, 'withdraw', 'test');
    await running.service.manager.refresh();
    expect(running.service.manager.champion).toBeUndefined();
    expect((await call(running.port, 'POST', '/predict', sampleRow())).status).toBe(503);
  });

  it('keeps the challenger through a transient registry error, and drops it when its version is really gone', async () => {
    // The shadow is version 1, below the champion, so resolving the champion never reads it: the injected failure hits the challenger check.
    const shadow = (await reg.publish(3, { approve: false })).version;
    await reg.publish(1);
    running = await startServer(testConfig({ challenger: { version: shadow, mode: 'shadow', percent: 0 } }), { registry: reg.registry, logger: silentLogger() });
    expect(running.service.manager.challenger?.model.version).toBe(shadow);
    const show = reg.registry.show.bind(reg.registry);
    let failures = 1;
    jest.spyOn(reg.registry, 'show').mockImplementation(async (v: number) => {
      if (v === shadow && failures-- > 0) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      return show(v);
    });
    await running.service.manager.refresh();
    expect(running.service.manager.challenger?.model.version).toBe(shadow);
    expect(JSON.parse((await call(running.port, 'GET', '/ready')).body).challengerProblem).toMatch(/ECONNRESET/);
    await rm(reg.versionDir(shadow), { recursive: true });
    await running.service.manager.refresh();
    expect(running.service.manager.challenger).toBeUndefined();
    expect(JSON.parse((await call(running.port, 'GET', '/ready')).body).challengerProblem).toMatch(/not found/);
  });

  it('refuses to serve a version whose audit trail is broken: /ready says why, a metric counts it, the previous version serves', async () => {
    const v1 = (await reg.publish(1)).version;
    const v2 = (await reg.publish(2)).version;
    running = await startServer(testConfig(), { registry: reg.registry, logger: silentLogger() });
    await reg.registry.reject(v2, 'rolled back', 'test');
    await running.service.manager.refresh();
    expect(running.service.manager.champion?.version).toBe(v1);
    // Deleting the rejection would re-approve version 2 if the trail were just files.
    const audit = (v: number) => path.join(reg.versionDir(v), 'audit');
    await rm(path.join(audit(v2), '000003.json'));
    await running.service.manager.refresh();
    expect(running.service.manager.champion?.version).toBe(v1);
    const ready = JSON.parse((await call(running.port, 'GET', '/ready')).body);
    expect(ready).toMatchObject({ ready: true, auditProblems: [{ version: v2, problem: expect.stringMatching(/the last entry was deleted/) }] });
    let metrics = (await call(running.port, 'GET', '/metrics')).body;
    expect(metrics).toContain(`pricesense_registry_audit_broken{model_version="${v2}"} 1`);
    // With the served version's trail broken too, nothing is servable: it is withdrawn and /ready says why.
    await rm(path.join(audit(v1), 'HEAD.json'));
    await running.service.manager.refresh();
    const down = await call(running.port, 'GET', '/ready');
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body).reason).toMatch(new RegExp(`no Approved model version .*passed over because their audit trail does not verify: version ${v2} .*version ${v1} \\(.*HEAD\\.json is missing`));
    metrics = (await call(running.port, 'GET', '/metrics')).body;
    expect(metrics).toContain(`pricesense_registry_audit_broken{model_version="${v1}"} 1`);
  });

  it('withdraws a rejected model when the rollback target fails to load, rather than keep serving it', async () => {
    const v1 = (await reg.publish(1)).version;
    const v2 = (await reg.publish(2)).version;
    running = await startServer(testConfig({ pollIntervalMs: 60_000 }), { registry: reg.registry, logger: silentLogger() });
    expect(running.service.manager.champion?.version).toBe(v2);
    // Roll back to v1, whose stored artifact is corrupt.
    await reg.tamper(v1);
    await reg.registry.reject(v2, 'rollback', 'test');
    await running.service.manager.refresh();

    const ready = await call(running.port, 'GET', '/ready');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body).lastLoadFailure).toMatchObject({ version: v1, role: 'champion' });
    expect((await call(running.port, 'POST', '/predict', sampleRow())).status).toBe(503);
  });

  it('follows latestApproved when the pinned champion version does not exist', async () => {
    const v1 = (await reg.publish(1)).version;
    running = await startServer(testConfig({ championVersion: 99 }), { registry: reg.registry, logger: silentLogger() });
    expect(running.service.manager.ready).toBe(true);
    expect(running.service.manager.champion?.version).toBe(v1);
  });

  it('splits traffic to a canary close to its percentage', async () => {
    const v1 = (await reg.publish(1)).version;
    const v2 = (await reg.publish(2)).version;
    running = await startServer(testConfig({ championVersion: v1, challenger: { version: v2, mode: 'canary', percent: 30 } }), { registry: reg.registry, logger: silentLogger() });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const N = 2000;
    const counts = new Map<string, number>();
    const canary = CompiledForest.compile(makeForest(2));
    const rng = mulberry32(3);
    let mismatches = 0;
    for (let i = 0; i < N; i += 4) {
      const rows = [sampleRow(rng), sampleRow(rng), sampleRow(rng), sampleRow(rng)];
      const results = await Promise.all(rows.map((r) => call(running!.port, 'POST', '/predict', r, agent)));
      results.forEach((res, j) => {
        const body = JSON.parse(res.body) as { label: string; model: { version: number; role: string } };
        counts.set(body.model.role, (counts.get(body.model.role) ?? 0) + 1);
        if (body.model.role === 'canary' && (body.model.version !== v2 || body.label !== canary.predict(rows[j]).label)) mismatches++;
      });
    }
    agent.destroy();
    const share = counts.get('canary') ?? 0;
    // Binomial(2000, 0.3): mean 600, sd 20.5; ±6 sd fails once in 10^9 runs.
    expect(share).toBeGreaterThan(600 - 123);
    expect(share).toBeLessThan(600 + 123);
    expect(share + (counts.get('champion') ?? 0)).toBe(N);
    expect(mismatches).toBe(0);
    const model = JSON.parse((await call(running.port, 'GET', '/model')).body);
    expect(model.champion.version).toBe(v1);
    expect(model.challenger).toMatchObject({ mode: 'canary', percent: 30, version: v2 });
  });

  it('scores a shadow on every request without ever changing the response', async () => {
    const v1 = (await reg.publish(1)).version;
    const shadow = (await reg.publish(3, { approve: false })).version; // a shadow may still be pending approval
    running = await startServer(testConfig({ challenger: { version: shadow, mode: 'shadow', percent: 0 } }), { registry: reg.registry, logger: silentLogger() });
    const champion = CompiledForest.compile(makeForest(1));
    const rng = mulberry32(4);
    for (let i = 0; i < 100; i++) {
      const row = sampleRow(rng);
      const res = await call(running.port, 'POST', '/predict', row);
      const body = JSON.parse(res.body);
      expect(body.model).toMatchObject({ version: v1, role: 'champion' });
      expect(body.label).toBe(champion.predict(row).label);
    }
    await new Promise((r) => setImmediate(r));
    // The shadow's scoring runs in an immediate after the answer: it goes through the load shedder, which sees it as deferred work.
    const working = jest.spyOn(running.service.shedder, 'working');
    const deferred = jest.spyOn(running.service.shedder, 'deferred');
    await call(running.port, 'POST', '/predict', sampleRow(rng));
    await new Promise((r) => setImmediate(r));
    const fromShadow = [working.mock.calls.length, deferred.mock.calls.length];
    working.mockClear();
    deferred.mockClear();
    await call(running.port, 'GET', '/health');
    await new Promise((r) => setImmediate(r));
    // A request's arrival and its body's end open (or join) a turn; the pass that answers it and the shadow's scoring
    // are deferred work; a probe: its arrival only.
    expect([fromShadow, [working.mock.calls.length, deferred.mock.calls.length]]).toEqual([[2, 2], [1, 0]]);
    working.mockRestore();
    deferred.mockRestore();
    const metrics = (await call(running.port, 'GET', '/metrics')).body;
    const compared = [...metrics.matchAll(/pricesense_shadow_comparisons_total\{champion_version="\d+",shadow_version="(\d+)",outcome="(agree|disagree)"\} (\d+)/g)];
    expect(compared.every((m) => m[1] === String(shadow))).toBe(true);
    expect(compared.reduce((s, m) => s + Number(m[3]), 0)).toBe(101);
    expect(metrics).toMatch(new RegExp(`pricesense_predictions_total\\{model_version="${shadow}",role="shadow"`));
    // Shadows are never addressable as the answer (they may be unapproved), and a Rejected one is dropped.
    const direct = await call(running.port, 'POST', `/v2/models/pricesense/versions/${shadow}/infer`, { inputs: [] });
    expect(direct.status).toBe(404);
    await reg.registry.reject(shadow, 'no', 'test');
    await running.service.manager.refresh();
    const ready = JSON.parse((await call(running.port, 'GET', '/ready')).body);
    expect(ready.challenger).toBeUndefined();
    expect(ready.challengerProblem).toMatch(/Rejected/);
  });

  it('drains in-flight requests on shutdown and refuses new ones', async () => {
    await reg.publish(1);
    running = await startServer(testConfig(), { registry: reg.registry, logger: silentLogger() });
    const port = running.port;
    const body = Buffer.from(JSON.stringify(sampleRow()));
    // A request whose body is still arriving when shutdown starts.
    const inFlight = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/predict', headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.write(body.subarray(0, 10));
      setTimeout(() => req.end(body.subarray(10)), 300);
    });
    await waitFor('the request to be in flight', () => running!.inFlight() === 1);
    const closing = running.close(5000);
    await waitFor('readiness to drop', async () => !running!.service.manager.ready);
    await expect(call(port, 'GET', '/health')).rejects.toThrow(/ECONNREFUSED/);
    const finished = await inFlight;
    expect(finished).toEqual({ status: 200, connection: 'close' });
    expect(await closing).toEqual({ drained: true });
    running = undefined;
  });

  it('is drained once every connection is gone, even after a client reset a connection holding pipelined requests', async () => {
    await reg.publish(1);
    running = await startServer(testConfig(), { registry: reg.registry, logger: silentLogger() });
    // /metrics answers asynchronously, so the requests behind the first wait in Node's queue of pipelined responses.
    const one = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';
    for (let c = 0; c < 3; c++) {
      const socket = net.connect(running.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(one.repeat(3));
      await new Promise((r) => setImmediate(r));
      socket.resetAndDestroy();
    }
    await waitFor('no request counted in flight', () => running!.inFlight() === 0);
    expect(await running.close(2000)).toEqual({ drained: true });
    running = undefined;
  });

  it('gives up at the shutdown deadline', async () => {
    await reg.publish(1);
    running = await startServer(testConfig(), { registry: reg.registry, logger: silentLogger() });
    const req = http.request({ host: '127.0.0.1', port: running.port, method: 'POST', path: '/predict', headers: { 'content-type': 'application/json', 'content-length': '1000' } });
    req.on('error', () => undefined);
    req.write('{"SPEND":');
    await waitFor('the request to be in flight', () => running!.inFlight() === 1);
    expect(await running.close(200)).toEqual({ drained: false });
    running = undefined;
  });
});
