/**
 * A version whose load runs past its deadline, or needs more memory than the load budget,
 * fails that version only: the manager keeps serving the model it had, says why in its
 * status, and picks the version up once the bound allows it.
 */
import type { WorkerLoadLimits } from '../../model/forest-loader';
import { ModelManager } from '../model-manager';
import { ApiMetrics } from '../metrics';
import { silentLogger, testRegistry, type TestRegistry } from './fixtures';

describe('model manager: bounded loads', () => {
  let reg: TestRegistry;
  let manager: ModelManager | undefined;
  beforeEach(async () => {
    reg = await testRegistry();
  });
  afterEach(async () => {
    manager?.stop();
    await reg.cleanup();
  });

  async function servingV1(limits: { -readonly [K in keyof WorkerLoadLimits]: WorkerLoadLimits[K] }): Promise<ModelManager> {
    await reg.publish(1);
    const m = new ModelManager({ registry: reg.registry, metrics: new ApiMetrics({ defaultMetrics: false }), logger: silentLogger(), pollIntervalMs: 60_000, loaderLimits: limits });
    manager = m;
    await m.start();
    expect(m.champion?.version).toBe(1);
    return m;
  }

  it('keeps serving the old version when the new one does not load by its deadline, and loads it later', async () => {
    const limits: { timeoutMs?: number } = {};
    const m = await servingV1(limits);
    await reg.publish(2);
    limits.timeoutMs = 1;
    await m.refresh();
    expect(m.champion?.version).toBe(1);
    expect(m.status().ready).toBe(true);
    expect(m.status().lastLoadFailure).toMatchObject({ version: 2, role: 'champion', error: expect.stringMatching(/took longer than 1 ms; its worker thread was stopped/) });
    // A deadline says nothing certain about the artifact: not remembered, tried again next poll.
    expect(m.status().failedVersions).toBeUndefined();
    delete limits.timeoutMs;
    await m.refresh();
    expect(m.champion?.version).toBe(2);
  }, 60_000);

  it('keeps serving the old version when the new one needs more memory than the load budget', async () => {
    const limits: { memoryMb?: number } = {};
    const m = await servingV1(limits);
    await reg.publish(2, { trees: 40, depth: 8 });
    limits.memoryMb = 0.5;
    await m.refresh();
    expect(m.champion?.version).toBe(1);
    expect(m.status().ready).toBe(true);
    expect(m.status().lastLoadFailure?.error).toMatch(/needs about \d+ MiB to load, more than this service's load budget of 0\.5 MiB/);
    expect(m.status().failedVersions?.map((f) => f.version)).toEqual([2]);
  }, 60_000);
});
