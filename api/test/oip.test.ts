/**
 * Open Inference Protocol (KServe v2) REST endpoints against the protocol's JSON
 * shapes, written out here from the specification independently of api/schemas.ts.
 */
import Ajv from 'ajv';
import request from 'supertest';
import { CompiledForest } from '../../model/walker';
import { createService, type Service } from '../server';
import { CLASSES, FEATURES, makeForest, mulberry32, sampleRow, silentLogger, testConfig, testRegistry, type TestRegistry } from './fixtures';

const tensorMetadata = {
  type: 'object',
  properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } } },
  required: ['name', 'datatype', 'shape'],
};
const SPEC = {
  serverMetadata: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } }, required: ['name', 'version', 'extensions'] },
  live: { type: 'object', properties: { live: { type: 'boolean' } }, required: ['live'] },
  ready: { type: 'object', properties: { ready: { type: 'boolean' } }, required: ['ready'] },
  modelReady: { type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } }, required: ['name', 'ready'] },
  modelMetadata: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      versions: { type: 'array', items: { type: 'string' } },
      platform: { type: 'string' },
      inputs: { type: 'array', items: tensorMetadata },
      outputs: { type: 'array', items: tensorMetadata },
    },
    required: ['name', 'platform', 'inputs', 'outputs'],
  },
  inferResponse: {
    type: 'object',
    properties: {
      model_name: { type: 'string' },
      model_version: { type: 'string' },
      id: { type: 'string' },
      parameters: { type: 'object' },
      outputs: {
        type: 'array',
        items: {
          type: 'object',
          properties: { name: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } }, datatype: { type: 'string' }, parameters: { type: 'object' }, data: { type: 'array' } },
          required: ['name', 'shape', 'datatype', 'data'],
        },
      },
    },
    required: ['model_name', 'outputs'],
  },
  error: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] },
};
const ajv = new Ajv({ strict: false });
const conforms = (schema: object, body: unknown) => {
  const validate = ajv.compile(schema);
  const ok = validate(body);
  if (!ok) throw new Error(`not OIP-shaped: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body).slice(0, 300)}`);
};

function tensors(rows: Record<string, string | number | null>[]) {
  return FEATURES.map((f) => ({ name: f.name, shape: [rows.length], datatype: f.kind === 'numeric' ? 'FP64' : 'BYTES', data: rows.map((r) => r[f.name]) }));
}

describe('Open Inference Protocol v2', () => {
  let reg: TestRegistry;
  let service: Service;
  let version: string;
  const reference = CompiledForest.compile(makeForest(1));

  beforeAll(async () => {
    reg = await testRegistry();
    version = String((await reg.publish(1)).version);
    service = await createService(testConfig({ batchLimit: 20 }), { registry: reg.registry, logger: silentLogger() });
    await service.manager.start();
  });
  afterAll(async () => {
    service.manager.stop();
    await reg.cleanup();
  });
  const api = () => request(service.handler);

  it('server metadata, liveness and readiness', async () => {
    conforms(SPEC.serverMetadata, (await api().get('/v2').expect(200)).body);
    const live = await api().get('/v2/health/live').expect(200);
    conforms(SPEC.live, live.body);
    expect(live.body.live).toBe(true);
    const ready = await api().get('/v2/health/ready').expect(200);
    conforms(SPEC.ready, ready.body);
    expect(ready.body.ready).toBe(true);
  });

  it('model metadata and readiness, by name and by version', async () => {
    const meta = await api().get('/v2/models/pricesense').expect(200);
    conforms(SPEC.modelMetadata, meta.body);
    expect(meta.body.versions).toEqual([version]);
    expect(meta.body.inputs).toEqual(FEATURES.map((f) => ({ name: f.name, datatype: f.kind === 'numeric' ? 'FP64' : 'BYTES', shape: [-1] })));
    expect(meta.body.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'probabilities', datatype: 'FP64', shape: [-1, 3] },
    ]);
    conforms(SPEC.modelReady, (await api().get('/v2/models/pricesense/ready').expect(200)).body);
    conforms(SPEC.modelMetadata, (await api().get(`/v2/models/pricesense/versions/${version}`).expect(200)).body);
    await api().get(`/v2/models/pricesense/versions/${version}/ready`).expect(200);
    conforms(SPEC.error, (await api().get('/v2/models/other').expect(404)).body);
    conforms(SPEC.error, (await api().get('/v2/models/pricesense/versions/999').expect(404)).body);
  });

  it('infers: label and probabilities tensors, matching the walker', async () => {
    const rng = mulberry32(9);
    const rows = Array.from({ length: 4 }, () => sampleRow(rng));
    const res = await api().post('/v2/models/pricesense/infer').send({ id: 'req-1', inputs: tensors(rows) }).expect(200);
    conforms(SPEC.inferResponse, res.body);
    expect(res.body).toMatchObject({ model_name: 'pricesense', model_version: version, id: 'req-1' });
    const [label, probabilities] = res.body.outputs;
    expect(label).toEqual({ name: 'label', shape: [4], datatype: 'BYTES', data: rows.map((r) => reference.predict(r).label) });
    expect(probabilities).toMatchObject({ name: 'probabilities', shape: [4, CLASSES.length], datatype: 'FP64' });
    expect(probabilities.data).toEqual(rows.flatMap((r) => Array.from(reference.predict(r).probabilities)));
    // Version-addressed inference and requested outputs.
    const only = await api()
      .post(`/v2/models/pricesense/versions/${version}/infer`)
      .send({ inputs: tensors(rows), outputs: [{ name: 'label' }] })
      .expect(200);
    expect(only.body.outputs.map((o: { name: string }) => o.name)).toEqual(['label']);
  });

  it('accepts [n, 1] shapes, nested data and integer datatypes', async () => {
    const row = sampleRow(mulberry32(2));
    const inputs = FEATURES.map((f) => ({
      name: f.name,
      shape: [1, 1],
      datatype: f.name === 'QUANTITY' ? 'INT32' : f.kind === 'numeric' ? 'FP32' : 'BYTES',
      data: [[row[f.name]]],
    }));
    const res = await api().post('/v2/models/pricesense/infer').send({ inputs }).expect(200);
    expect(res.body.outputs[0].data).toEqual([reference.predict(row).label]);
  });

  it('rejects malformed tensors with 4xx and the OIP error shape', async () => {
    const rows = [sampleRow(), sampleRow()];
    const cases: [unknown, RegExp][] = [
      [{ inputs: tensors(rows).slice(1) }, /missing input SPEND/],
      [{ inputs: [...tensors(rows), { name: 'EXTRA', shape: [2], datatype: 'FP64', data: [1, 2] }] }, /unknown input/],
      [{ inputs: tensors(rows).map((t) => (t.name === 'BASKET_SIZE' ? { ...t, datatype: 'FP64' } : t)) }, /wrong datatype/],
      [{ inputs: tensors(rows).map((t) => (t.name === 'SPEND' ? { ...t, shape: [3] } : t)) }, /does not match shape/],
      [{ inputs: tensors(rows).map((t) => (t.name === 'STORE_REGION' ? { ...t, data: ['E01', 7] } : t)) }, /wrong type at \/inputs\/4\/data\/1/],
      [{ inputs: tensors(rows).map((t) => (t.name === 'QUANTITY' ? { ...t, datatype: 'INT64', data: [1.5, 2] } : t)) }, /integer/],
      [{ inputs: tensors(rows), outputs: [{ name: 'logits' }] }, /Unknown output/],
      [{ inputs: 'x' }, /Invalid request/],
      [{ inputs: tensors(Array.from({ length: 21 }, () => sampleRow())) }, /limit is 20/],
    ];
    for (const [body, message] of cases) {
      const res = await api().post('/v2/models/pricesense/infer').send(body as object);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      conforms(SPEC.error, res.body);
      expect(res.body.error).toMatch(message);
    }
    const bad = await api().post('/v2/models/pricesense/infer').set('Content-Type', 'application/json').send('{');
    expect(bad.status).toBe(400);
    conforms(SPEC.error, bad.body);
  });

  it('scores an unknown category as missing and names it per row in parameters.unknown_categories', async () => {
    const rows = [sampleRow(mulberry32(4)), { ...sampleRow(mulberry32(5)), STORE_REGION: 'ZZZ' }];
    const res = await api().post('/v2/models/pricesense/infer').send({ inputs: tensors(rows) }).expect(200);
    conforms(SPEC.inferResponse, res.body);
    expect(res.body.parameters).toEqual({ role: 'champion', unknown_categories: { STORE_REGION: [1] } });
    expect(res.body.outputs[0].data).toEqual([reference.predict(rows[0]).label, reference.predict({ ...rows[1], STORE_REGION: null }).label]);
  });

  it('caps the error details of a request with thousands of problems, like /predict does', async () => {
    const junk = Array.from({ length: 5000 }, (_, i) => ({ name: `X${i}`, shape: [1], datatype: 'FP64', data: [1] }));
    const res = await api().post('/v2/models/pricesense/infer').send({ inputs: [...tensors([sampleRow()]), ...junk] }).expect(400);
    conforms(SPEC.error, res.body);
    expect(res.body.details).toHaveLength(50);
    expect(res.body.omittedDetails).toBe(5000 - 50);
    expect(res.body.error).toMatch(/^Invalid inference request: unknown input at \/inputs\/6\/name .*; 4997 more$/);
    expect(JSON.stringify(res.body).length).toBeLessThan(64 * 1024);
  });
});
