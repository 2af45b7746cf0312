/**
 * Fuzz: 10,000+ generated malformed requests (broken JSON, wrong shapes and types,
 * hostile keys, odd encodings and content types) against /predict and the OIP infer
 * endpoint. Never a 5xx, always a JSON error without a stack, and the process stays up.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createService, type Service } from '../server';
import { FEATURES, mulberry32, sampleRow, silentLogger, testConfig, testRegistry, type TestRegistry } from './fixtures';

const PAYLOADS = 10_500;
const CONCURRENCY = 16;

interface Payload {
  path: string;
  body: Buffer;
  headers: Record<string, string>;
}

function generator(seed: number): () => Payload {
  const rng = mulberry32(seed);
  const int = (n: number) => Math.floor(rng() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const weird: unknown[] = [
    null, true, false, 0, -1, 1e308, -1e-308, 'NaN', '', ' ', '\u0000', '💥', 'E01 ', 's', 'S'.repeat(5000), [], {}, [[]], { a: 1 }, '12', 1.5, -0,
    { __proto__: { polluted: true } }, 'constructor', '__proto__', 'toString', Array.from({ length: 50 }, () => 1),
  ];
  const randomValue = (depth = 0): unknown => {
    const r = rng();
    if (depth > 3 || r < 0.5) return pick(weird);
    if (r < 0.75) return Array.from({ length: int(4) }, () => randomValue(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0; i < int(4); i++) o[pick(['a', '__proto__', 'constructor', 'instances', 'inputs', 'SPEND', 'prototype'])] = randomValue(depth + 1);
    return o;
  };
  const mutateRow = (): Record<string, unknown> => {
    const row: Record<string, unknown> = sampleRow(rng);
    const n = 1 + int(3);
    for (let i = 0; i < n; i++) {
      const f = pick(FEATURES).name;
      const op = int(3);
      if (op === 0) delete row[f];
      else if (op === 1) row[f] = randomValue();
      else row[pick(['spend', 'SPEND ', '__proto__', 'extra', 'constructor'])] = randomValue();
    }
    return row;
  };
  const oip = (): unknown => {
    const rows = Array.from({ length: 1 + int(3) }, () => sampleRow(rng));
    const inputs: Record<string, unknown>[] = FEATURES.map((f) => ({ name: f.name, shape: [rows.length], datatype: f.kind === 'numeric' ? 'FP64' : 'BYTES', data: rows.map((r) => r[f.name]) }));
    const t = pick(inputs);
    const key = pick(['name', 'shape', 'datatype', 'data', 'parameters']);
    if (rng() < 0.3) delete t[key];
    else t[key] = randomValue();
    if (rng() < 0.2) inputs.splice(int(inputs.length), 1);
    return rng() < 0.1 ? { inputs: randomValue() } : { inputs, outputs: rng() < 0.2 ? randomValue() : undefined };
  };
  const mangle = (text: string): string => {
    const chars = [...text];
    const n = 1 + int(4);
    for (let i = 0; i < n; i++) {
      const at = int(chars.length + 1);
      const op = int(3);
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, pick(['{', '}', '[', ']', '"', ',', ':', '\\', 'e', '-', '\u2028', '\uD800']));
      else chars.length = Math.min(chars.length, at);
    }
    return chars.join('');
  };
  return () => {
    const path = rng() < 0.75 ? pick(['/predict', '/predict?explain=true', '/predict?explain=%ZZ&explain=1']) : pick(['/v2/models/pricesense/infer', '/v2/models/pricesense/versions/1/infer', '/v2/models/x/infer']);
    const predict = path.startsWith('/predict');
    const kind = int(10);
    let body: Buffer;
    if (kind < 3) body = Buffer.from(JSON.stringify(predict ? mutateRow() : oip()));
    else if (kind < 5) body = Buffer.from(JSON.stringify(predict ? { instances: Array.from({ length: 1 + int(5) }, () => (rng() < 0.5 ? sampleRow(rng) : mutateRow())) } : oip()));
    else if (kind < 7) body = Buffer.from(mangle(JSON.stringify(predict ? { instances: [sampleRow(rng)] } : oip())));
    else if (kind < 8) body = Buffer.from(JSON.stringify(randomValue()) ?? 'null');
    else if (kind < 9) body = Buffer.from(Array.from({ length: int(200) }, () => int(256)));
    else body = Buffer.from(pick(['[', '{"instances": ' + '['.repeat(5000), '"' + 'x'.repeat(70_000) + '"', '{"instances": [' + Array(120).fill('{}').join(',') + ']}', '']));
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const h = int(20);
    if (h === 0) delete headers['content-type'];
    else if (h === 1) headers['content-type'] = pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'application/vnd.api+json']);
    else if (h === 2) headers['content-encoding'] = pick(['gzip', 'deflate', 'br', 'x-unknown']);
    else if (h === 3) headers['x-request-id'] = pick(['a'.repeat(500), '\u00ff', 'ok-id', '']);
    return { path, body, headers };
  };
}

function send(port: number, agent: http.Agent, p: Payload): Promise<{ status: number; body: string; contentType: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: p.path, agent, headers: { ...p.headers, 'content-length': String(p.body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), contentType: String(res.headers['content-type'] ?? '') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(p.body);
  });
}

describe('fuzz', () => {
  let reg: TestRegistry;
  let service: Service;
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    reg = await testRegistry();
    await reg.publish(1);
    service = await createService(testConfig({ batchLimit: 100, bodyLimitBytes: 64 * 1024 }), { registry: reg.registry, logger: silentLogger() });
    await service.manager.start();
    server = http.createServer(service.handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    service.manager.stop();
    await new Promise((resolve) => server.close(resolve));
    await reg.cleanup();
  });

  it(`answers ${PAYLOADS} malformed requests with 4xx (or 200 when a mutation happens to be valid), never 5xx`, async () => {
    const next = generator(20240601);
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const statuses = new Map<number, number>();
    const problems: string[] = [];
    let sent = 0;
    const worker = async () => {
      while (sent < PAYLOADS) {
        sent++;
        const p = next();
        const res = await send(port, agent, p);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500 || res.status < 200) problems.push(`${res.status} ${p.path} ${p.body.subarray(0, 120).toString()} -> ${res.body.slice(0, 200)}`);
        else if (res.status >= 400) {
          if (!/application\/json/.test(res.contentType)) problems.push(`non-JSON error ${res.status}: ${res.body.slice(0, 100)}`);
          const parsed = JSON.parse(res.body) as { error: unknown };
          if (parsed.error === undefined) problems.push(`error body without "error": ${res.body.slice(0, 100)}`);
          if (/\n\s+at |node_modules|\.ts:\d+/.test(res.body)) problems.push(`stack leaked: ${res.body.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();
    expect(problems.slice(0, 10)).toEqual([]);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(10_000);
    const clientErrors = [...statuses].filter(([s]) => s >= 400 && s < 500).reduce((a, [, n]) => a + n, 0);
    // Most payloads are malformed by construction.
    expect(clientErrors).toBeGreaterThan(total * 0.7);
    // Still alive and still serving.
    const health = await send(port, new http.Agent(), { path: '/predict', body: Buffer.from(JSON.stringify(sampleRow())), headers: { 'content-type': 'application/json' } });
    expect(health.status).toBe(200);
    // 10k+ requests: ~30 s on an idle 2-core machine, far longer when it is shared.
  }, 240_000);
});
