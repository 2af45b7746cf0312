import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { formatSummary, runDemo } from '../demo';

describe('pricesense demo (the whole loop, small)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-demo-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('goes from synthetic transactions to an approved model answering /predict', async () => {
    const target = path.join(dir, 'demo');
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const { summary, server } = await runDemo({ dir: target, baskets: 4000, trees: 20, seed: 7, port: 0, requests: 40, keepServing: false, out });
    try {
      expect(summary.servedVersion).toBe(1);
      expect(summary.gates.passed).toBe(true);
      expect(summary.data.baskets).toBe(4000);
      expect(summary.data.goldRows.train + summary.data.goldRows.validation + summary.data.goldRows.test).toBeGreaterThan(3500);
      expect(summary.testAccuracy).toBeGreaterThan(0.8);
      expect(summary.testAccuracy).toBeLessThanOrEqual(summary.bayesOptimalAccuracy + 0.05);
      expect(summary.http.requests).toBe(40);
      expect(summary.samples).toHaveLength(5);
      for (const s of summary.samples) expect(['Low', 'Medium', 'High']).toContain(s.predicted);
      expect(text).toContain('[7/7] summary');
      expect(formatSummary(summary, false)).toContain('Bayes-optimal');
      expect((await readdir(target)).sort()).toEqual(['.pricesense-demo', 'lake', 'model.json', 'registry']);
    } finally {
      await server.close(1000);
    }
  });

  it('refuses to wipe a directory it did not make', async () => {
    const foreign = path.join(dir, 'foreign');
    await rm(foreign, { recursive: true, force: true });
    await mkdir(foreign);
    await writeFile(path.join(foreign, 'precious.txt'), 'keep me');
    await expect(runDemo({ dir: foreign, baskets: 1000, trees: 1, seed: 1, port: 0, requests: 1, keepServing: false, out: new PassThrough() })).rejects.toThrow(/not made by pricesense demo/);
    expect(await readdir(foreign)).toEqual(['precious.txt']);
  });
});
