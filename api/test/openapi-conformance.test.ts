/**
 * The served OpenAPI document against outside checkers: the document itself through
 * @seriousme/openapi-schema-validator (the OpenAPI 3.1 meta-schema), and real answers
 * of every route — successes, 4xx error bodies, 503 with Retry-After — against the
 * schemas and headers the document declares for that status (ajv, JSON Schema 2020-12,
 * the dialect of OpenAPI 3.1).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import request from 'supertest';
import { createService, type Service } from '../server';
import { FEATURES, mulberry32, sampleRow, silentLogger, testConfig, testRegistry, type TestRegistry } from './fixtures';

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }>; headers?: Record<string, { $ref?: string }> }> }>>; components: { headers: Record<string, { required?: boolean; schema: Record<string, unknown> }> } };

function validateDocument(file: string): Promise<{ valid: boolean; errors?: unknown }> {
  const cli = path.join(path.dirname(require.resolve('@seriousme/openapi-schema-validator/package.json')), 'bin', 'validate-api-cli.js');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, file], (err, stdout) => {
      try {
        resolve(JSON.parse(stdout) as { valid: boolean; errors?: unknown });
      } catch {
        reject(err ?? new Error(`validate-api printed no verdict: ${stdout}`));
      }
    });
  });
}

const pointer = (...segments: string[]) => segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

describe('the served OpenAPI document', () => {
  let reg: TestRegistry;
  let empty: TestRegistry;
  let ready: Service;
  let notReady: Service;
  let shedding: Service;
  let doc: Doc;
  let ajv: Ajv2020;

  beforeAll(async () => {
    reg = await testRegistry();
    empty = await testRegistry();
    await reg.publish(1);
    const logger = silentLogger();
    ready = await createService(testConfig({ batchLimit: 5, bodyLimitBytes: 16 * 1024 }), { registry: reg.registry, logger });
    notReady = await createService(testConfig(), { registry: empty.registry, logger });
    // Every prediction request is over a cap of 0: the overloaded answer on both paths.
    shedding = await createService(testConfig({ maxInFlight: 0 }), { registry: reg.registry, logger });
    await Promise.all([ready.manager.start(), notReady.manager.start(), shedding.manager.start()]);
    doc = (await request(ready.handler).get('/openapi.json').expect(200)).body as Doc;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema(doc, 'openapi.json');
  });
  afterAll(async () => {
    for (const s of [ready, notReady, shedding]) s.manager.stop();
    await reg.cleanup();
    await empty.cleanup();
  });

  it('is a valid OpenAPI 3.1 document by @seriousme/openapi-schema-validator', async () => {
    const file = path.join(reg.dir, 'openapi.json');
    await writeFile(file, JSON.stringify(doc));
    const verdict = await validateDocument(file);
    expect(verdict.errors).toBeUndefined();
    expect(verdict.valid).toBe(true);
  });

  it('the validator is not a rubber stamp: a document with a broken response is refused', async () => {
    const broken = structuredClone(doc);
    (broken.paths['/predict'].post.responses as Record<string, unknown>)['200'] = { content: {} };
    const file = path.join(reg.dir, 'broken.json');
    await writeFile(file, JSON.stringify(broken));
    expect((await validateDocument(file)).valid).toBe(false);
  });

  const row = sampleRow(mulberry32(3));
  const tensors = (r: Record<string, unknown>) => ({
    inputs: FEATURES.map((f) => ({ name: f.name, shape: [1], datatype: f.kind === 'numeric' ? 'FP64' : 'BYTES', data: [r[f.name]] })),
  });
  type Case = { what: string; service: () => Service; method: 'get' | 'post'; url: string; template: string; status: number; body?: unknown; raw?: string; type?: string };
  const cases: Case[] = [
    { what: 'one basket', service: () => ready, method: 'post', url: '/predict', template: '/predict', status: 200, body: row },
    { what: 'a batch', service: () => ready, method: 'post', url: '/predict', template: '/predict', status: 200, body: { instances: [row, row] } },
    { what: 'an explained basket (Express path)', service: () => ready, method: 'post', url: '/predict?explain=true', template: '/predict', status: 200, body: row },
    { what: 'an unknown category, scored as missing', service: () => ready, method: 'post', url: '/predict', template: '/predict', status: 200, body: { ...row, STORE_REGION: 'Z99' } },
    { what: 'malformed JSON', service: () => ready, method: 'post', url: '/predict', template: '/predict', status: 400, raw: '{"SPEND": ', type: 'application/json' },
    { what: 'a batch over the limit', service: () => ready, method: 'post', url: '/predict', template: '/predict', status: 413, body: { instances: Array.from({ length: 6 }, () => row) } },
    { what: 'a body over the limit', service: () => ready, method: 'post', url: '/predict', template: '/predict', status: 413, raw: JSON.stringify({ instances: Array.from({ length: 200 }, () => row) }), type: 'application/json' },
    { what: 'not JSON', service: () => ready, method: 'post', url: '/predict', template: '/predict', status: 415, raw: 'SPEND=1', type: 'text/plain' },
    { what: 'a basket not matching the spec', service: () => ready, method: 'post', url: '/predict', template: '/predict', status: 422, body: { ...row, SPEND: 'lots', SPNED: 1 } },
    { what: 'no model loaded', service: () => notReady, method: 'post', url: '/predict', template: '/predict', status: 503, body: row },
    { what: 'overloaded (lean path)', service: () => shedding, method: 'post', url: '/predict', template: '/predict', status: 503, body: row },
    { what: 'overloaded (Express path)', service: () => shedding, method: 'post', url: '/predict?explain=true', template: '/predict', status: 503, body: row },
    { what: 'liveness', service: () => ready, method: 'get', url: '/health', template: '/health', status: 200 },
    { what: 'ready', service: () => ready, method: 'get', url: '/ready', template: '/ready', status: 200 },
    { what: 'not ready', service: () => notReady, method: 'get', url: '/ready', template: '/ready', status: 503 },
    { what: 'the model', service: () => ready, method: 'get', url: '/model', template: '/model', status: 200 },
    { what: 'no model', service: () => notReady, method: 'get', url: '/model', template: '/model', status: 503 },
    { what: 'OIP server metadata', service: () => ready, method: 'get', url: '/v2', template: '/v2', status: 200 },
    { what: 'OIP live', service: () => ready, method: 'get', url: '/v2/health/live', template: '/v2/health/live', status: 200 },
    { what: 'OIP ready', service: () => ready, method: 'get', url: '/v2/health/ready', template: '/v2/health/ready', status: 200 },
    { what: 'OIP not ready', service: () => notReady, method: 'get', url: '/v2/health/ready', template: '/v2/health/ready', status: 400 },
    { what: 'OIP model metadata', service: () => ready, method: 'get', url: '/v2/models/pricesense', template: '/v2/models/{name}', status: 200 },
    { what: 'OIP unknown model', service: () => ready, method: 'get', url: '/v2/models/other', template: '/v2/models/{name}', status: 404 },
    { what: 'OIP infer', service: () => ready, method: 'post', url: '/v2/models/pricesense/infer', template: '/v2/models/{name}/infer', status: 200, body: tensors(row) },
    { what: 'OIP infer, malformed', service: () => ready, method: 'post', url: '/v2/models/pricesense/infer', template: '/v2/models/{name}/infer', status: 400, body: { inputs: 'none' } },
    { what: 'OIP infer, unknown model', service: () => ready, method: 'post', url: '/v2/models/other/infer', template: '/v2/models/{name}/infer', status: 404, body: tensors(row) },
    { what: 'OIP infer, no model', service: () => notReady, method: 'post', url: '/v2/models/pricesense/infer', template: '/v2/models/{name}/infer', status: 503, body: tensors(row) },
    { what: 'OIP infer, overloaded', service: () => shedding, method: 'post', url: '/v2/models/pricesense/infer', template: '/v2/models/{name}/infer', status: 503, body: tensors(row) },
    { what: 'OIP version not served', service: () => ready, method: 'get', url: '/v2/models/pricesense/versions/99', template: '/v2/models/{name}/versions/{version}', status: 404 },
  ];

  it.each(cases)('$what: $method $url answers $status as the document declares it', async (c) => {
    let req = request(c.service().handler)[c.method](c.url);
    if (c.raw !== undefined) req = req.set('Content-Type', c.type ?? 'application/json').send(c.raw);
    else if (c.body !== undefined) req = req.send(c.body as object);
    const res = await req;
    expect(res.status).toBe(c.status);
    const declared = doc.paths[c.template]?.[c.method]?.responses[String(c.status)];
    if (!declared) throw new Error(`the document declares no ${c.status} for ${c.method.toUpperCase()} ${c.template}`);
    const media = declared.content?.['application/json'];
    if (media) {
      const validate = ajv.getSchema(`openapi.json#/${pointer('paths', c.template, c.method, 'responses', String(c.status), 'content', 'application/json', 'schema')}`);
      if (!validate) throw new Error('schema not found in the document');
      if (!validate(res.body)) throw new Error(`${c.what}: body ${JSON.stringify(res.body).slice(0, 300)} does not match: ${ajv.errorsText(validate.errors)}`);
    }
    for (const [name, ref] of Object.entries(declared.headers ?? {})) {
      const header = ref.$ref ? doc.components.headers[ref.$ref.split('/').pop() ?? ''] : (ref as unknown as Doc['components']['headers'][string]);
      const value = res.headers[name.toLowerCase()] as string | undefined;
      if (value === undefined) {
        expect(header.required).not.toBe(true);
        continue;
      }
      const typed = header.schema.type === 'integer' && /^\d+$/.test(value) ? Number(value) : value;
      expect(ajv.validate(header.schema, typed)).toBe(true);
    }
    if (c.status === 503) expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  });
});
