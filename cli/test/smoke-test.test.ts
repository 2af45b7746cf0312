import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type RunningServer } from '../../api/server';
import { testConfig, testRegistry, type TestRegistry } from '../../api/test/fixtures';
import { smokeTest } from '../smoke-test';

describe('smoke test against a real API', () => {
  let reg: TestRegistry;
  let running: RunningServer;

  beforeAll(async () => {
    reg = await testRegistry();
    await reg.publish(7);
    running = await startServer(testConfig({ registry: reg.registry.uri }));
  });
  afterAll(async () => {
    await running?.close(2000);
    await reg?.cleanup();
  });

  it('passes every check against a healthy deployment', async () => {
    const report = await smokeTest({ url: `http://127.0.0.1:${running.port}/`, timeoutSeconds: 5 });
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['ready', true],
      ['model', true],
      ['predict', true],
      ['rejects bad input', true],
    ]);
    expect(report.ok).toBe(true);
    expect(String(report.version)).toBe('1');
  });

  it('fails when the service never becomes ready', async () => {
    const server = http.createServer((_req, res) => {
      res.statusCode = 503;
      res.end('{"ready":false,"reason":"no approved model"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const report = await smokeTest({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutSeconds: 1.5 });
      expect(report.ok).toBe(false);
      expect(report.checks[0]).toMatchObject({ name: 'ready', ok: false });
      expect(report.checks[0].detail).toContain('no approved model');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('fails a deployment whose /predict answers a broken distribution', async () => {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/ready') return res.end('{"ready":true}');
      if (req.url === '/model') return res.end(JSON.stringify({ champion: { version: 3, classes: ['Low', 'High'], features: [{ name: 'A', kind: 'numeric' }] } }));
      res.end(JSON.stringify({ label: 'Low', probabilities: { Low: 0.9, High: 0.3 }, model: { version: 3 } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const report = await smokeTest({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutSeconds: 2 });
      expect(report.ok).toBe(false);
      expect(report.checks.find((c) => c.name === 'predict')).toMatchObject({ ok: false });
      expect(report.checks.find((c) => c.name === 'predict')?.detail).toMatch(/sum to 1\.2/);
      expect(report.checks.find((c) => c.name === 'rejects bad input')).toMatchObject({ ok: false });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
