import Ajv from 'ajv';
import request from 'supertest';
import { CompiledForest } from '../../model/walker';
import { instanceSchema } from '../schemas';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { API_SECURITY_HEADERS } from '../app';
import { createLeanPredict, MAX_PASS, MAX_PASS_BODY_BYTES } from '../fast-predict';
import { CLIENT_CLOSED } from '../metrics';
import { Predictor } from '../prediction';
import { createService, type Service } from '../server';
import { CLASSES, FEATURES, makeForest, makeImportedForest, mulberry32, sampleRow, silentLogger, testConfig, testRegistry, type TestRegistry } from './fixtures';

describe('inference API (in-process)', () => {
  let reg: TestRegistry;
  let service: Service;
  let version: number;
  const reference = CompiledForest.compile(makeForest(1));

  beforeAll(async () => {
    reg = await testRegistry();
    version = (await reg.publish(1)).version;
    service = await createService(testConfig({ batchLimit: 50, bodyLimitBytes: 64 * 1024 }), { registry: reg.registry, logger: silentLogger() });
    await service.manager.start();
  });
  afterAll(async () => {
    service.manager.stop();
    await reg.cleanup();
  });

  const api = () => request(service.handler);

  describe('POST /predict', () => {
    it('scores one basket exactly like the tree-walker, and says which version answered', async () => {
      const row = sampleRow(mulberry32(7));
      const res = await api().post('/predict').send(row).expect(200).expect('Content-Type', /json/);
      const expected = reference.predict(row);
      expect(res.body.label).toBe(expected.label);
      expect(CLASSES.map((c) => res.body.probabilities[c])).toEqual(Array.from(expected.probabilities));
      expect(res.body.model).toEqual({ name: 'pricesense', version, sha256: reference.sha256, role: 'champion' });
      expect(res.headers['x-model-version']).toBe(String(version));
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('accepts explicit nulls for missing values', async () => {
      const row = { ...sampleRow(mulberry32(3)), SPEND: null, CUST_LIFESTAGE: null };
      const res = await api().post('/predict').send(row).expect(200);
      expect(res.body.label).toBe(reference.predict(row).label);
    });

    it('scores a batch in order', async () => {
      const rng = mulberry32(11);
      const rows = Array.from({ length: 20 }, () => sampleRow(rng));
      const res = await api().post('/predict').send({ instances: rows }).expect(200);
      expect(res.body.predictions).toHaveLength(20);
      rows.forEach((row, i) => {
        expect(res.body.predictions[i].label).toBe(reference.predict(row).label);
        expect(CLASSES.map((c) => res.body.predictions[i].probabilities[c])).toEqual(Array.from(reference.predict(row).probabilities));
      });
      expect(res.body.model.version).toBe(version);
    });

    it('explains with per-feature contributions that add up to the probabilities', async () => {
      const row = sampleRow(mulberry32(5));
      const res = await api().post('/predict?explain=true').send(row).expect(200);
      const { bias, contributions } = res.body.explanation;
      expect(Object.keys(contributions).sort()).toEqual(FEATURES.map((f) => f.name).sort());
      for (const c of CLASSES) {
        const total = bias[c] + Object.values(contributions as Record<string, Record<string, number>>).reduce((s, v) => s + v[c], 0);
        expect(total).toBeCloseTo(res.body.probabilities[c], 10);
      }
      const batch = await api().post('/predict?explain=1').send({ instances: [row, row] }).expect(200);
      expect(batch.body.predictions[1].explanation.contributions).toEqual(contributions);
    });

    it('?explain=true answers with the same label and probabilities as the plain prediction, also for a hard-vote (imported ml-random-forest) model', async () => {
      const hard = await testRegistry();
      try {
        const forest = makeImportedForest(3);
        expect(forest.aggregation).toBe('hard');
        await hard.publish(3, { forest });
        const s = await createService(testConfig(), { registry: hard.registry, logger: silentLogger() });
        await s.manager.start();
        s.manager.stop();
        const rng = mulberry32(17);
        const rows = Array.from({ length: 60 }, () => sampleRow(rng));
        const strip = (p: Record<string, unknown>) => ({ label: p.label, probabilities: p.probabilities });
        for (const row of rows) {
          const plain = (await request(s.handler).post('/predict').send(row).expect(200)).body;
          const explained = (await request(s.handler).post('/predict?explain=true').send(row).expect(200)).body;
          expect(strip(explained)).toEqual(strip(plain));
          expect(explained.explanation).toBeDefined();
          // A hard-vote forest's explanation attributes the mean leaf distribution, and says so.
          expect(explained.explanation.explains).toBe('mean-leaf-distribution');
        }
        const plainBatch = (await request(s.handler).post('/predict').send({ instances: rows }).expect(200)).body;
        const explainedBatch = (await request(s.handler).post('/predict?explain=true').send({ instances: rows }).expect(200)).body;
        expect(explainedBatch.predictions.map(strip)).toEqual(plainBatch.predictions.map(strip));
      } finally {
        await hard.cleanup();
      }
    });

    it('echoes a well-formed X-Request-Id and replaces a malformed one', async () => {
      const ok = await api().post('/predict').set('X-Request-Id', 'abc-123.x').send(sampleRow()).expect(200);
      expect(ok.headers['x-request-id']).toBe('abc-123.x');
      const bad = await api().post('/predict').set('X-Request-Id', 'has spaces <script>').send(sampleRow()).expect(200);
      expect(bad.headers['x-request-id']).not.toContain(' ');
    });
  });

  describe('the lean /predict path answers exactly like Express', () => {
    // service.handler takes a plain POST /predict before Express; service.app is Express alone.
    const bothWays = async (body: string, contentType = 'application/json') => {
      const send = (target: Service['handler'] | Service['app']) =>
        request(target).post('/predict').set('Content-Type', contentType).set('X-Request-Id', 'same-id').set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01').send(body);
      const [lean, viaExpress] = await Promise.all([send(service.handler), send(service.app)]);
      expect(lean.status).toBe(viaExpress.status);
      expect(lean.text).toBe(viaExpress.text);
      const headers = (r: request.Response) => {
        const h = { ...r.headers };
        for (const volatile of ['date', 'connection', 'keep-alive']) delete h[volatile];
        // The caller's trace on both paths; the span id is new per request.
        h.traceresponse = String(h.traceresponse).replace(/^(00-4bf92f3577b34da6a3ce929d0e0e4736-)[0-9a-f]{16}(-01)$/, '$1<span>$2');
        return h;
      };
      expect(headers(lean)).toEqual(headers(viaExpress));
      return lean;
    };

    it('for a single row, a batch, and every kind of client error', async () => {
      const row = sampleRow(mulberry32(21));
      expect((await bothWays(JSON.stringify(row))).status).toBe(200);
      expect((await bothWays(JSON.stringify(row), 'application/json; charset=utf-8')).status).toBe(200);
      expect((await bothWays(`\ufeff${JSON.stringify(row)}`)).status).toBe(200);
      expect((await bothWays(JSON.stringify({ instances: [row, row] }))).status).toBe(200);
      expect((await bothWays(JSON.stringify({ ...row, STORE_REGION: 'NEW' }))).status).toBe(200);
      expect((await bothWays('{"SPEND": ')).status).toBe(400);
      expect((await bothWays('')).status).toBe(422);
      expect((await bothWays('[1, 2]')).status).toBe(422);
      expect((await bothWays(JSON.stringify({ ...row, SPEND: 'x', SPNED: 1 }))).status).toBe(422);
      expect((await bothWays(JSON.stringify({ instances: Array.from({ length: 51 }, () => row) }))).status).toBe(413);
    });

    it('really takes plain POST /predict requests (and leaves the rest to Express)', async () => {
      const lean = createLeanPredict({
        manager: service.manager,
        predictor: new Predictor(service.metrics, silentLogger()),
        shedder: service.shedder,
        logger: silentLogger(),
        bodyLimitBytes: 1 << 20,
        headers: API_SECURITY_HEADERS,
        access: service.access,
        metrics: service.metrics,
      });
      // Whatever the lean path declines gets a 599, so a 200 can only come from it.
      const onlyLean = (req: IncomingMessage, res: ServerResponse) => {
        if (!lean(req, res)) {
          res.statusCode = 599;
          res.end();
        }
      };
      const row = sampleRow(mulberry32(22));
      expect((await request(onlyLean).post('/predict').set('Content-Type', 'application/json').send(JSON.stringify(row))).status).toBe(200);
      expect((await request(onlyLean).post('/predict?explain=true').set('Content-Type', 'application/json').send(JSON.stringify(row))).status).toBe(599);
      expect((await request(onlyLean).get('/model')).status).toBe(599);
    });
  });

  describe('requests that complete in one pass of the event loop', () => {
    /** Pipelines the bodies on one connection in one write (Node parses them in one pass) and reads every answer. */
    const pipelined = async (bodies: string[], after?: (req: IncomingMessage) => void) => {
      const wire = bodies.map((b, i) => `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: r${i}\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`).join('');
      const server = http.createServer(service.handler);
      // Runs after the service's own listener has taken each request.
      if (after) server.on('request', after);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        return await new Promise<{ status: number; id: string; body: string }[]>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1', () => socket.end(wire));
          let text = '';
          socket.setEncoding('utf8').on('data', (d: string) => (text += d));
          socket.on('error', reject);
          socket.on('close', () => {
            const out: { status: number; id: string; body: string }[] = [];
            let at = 0;
            while (at < text.length) {
              const headEnd = text.indexOf('\r\n\r\n', at);
              const head = text.slice(at, headEnd);
              const length = Number(/content-length: (\d+)/i.exec(head)![1]);
              out.push({ status: Number(head.slice(9, 12)), id: /x-request-id: (\S+)/i.exec(head)![1], body: text.slice(headEnd + 4, headEnd + 4 + length) });
              at = headEnd + 4 + length;
            }
            resolve(out);
          });
        });
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    };
    const passes = async () => {
      const v = (await service.metrics.coalescedRequests.get()).values;
      const pick = (name: string, le?: number) => v.find((x) => x.metricName === name && (le === undefined || x.labels.le === le))?.value ?? 0;
      return { count: pick('pricesense_predict_coalesced_requests_count'), sum: pick('pricesense_predict_coalesced_requests_sum'), upTo64: pick('pricesense_predict_coalesced_requests_bucket', 64) };
    };

    it('are answered together, each with its own answer, in order; a batch body on its own, after those before it', async () => {
      const rng = mulberry32(23);
      const rows = Array.from({ length: 6 }, () => sampleRow(rng));
      const batch = { instances: Array.from({ length: 40 }, () => sampleRow(rng)) };
      expect(Buffer.byteLength(JSON.stringify(batch))).toBeGreaterThan(MAX_PASS_BODY_BYTES);
      const bodies = [...rows.slice(0, 3).map((r) => JSON.stringify(r)), '{"SPEND": ', JSON.stringify({ ...rows[3], SPEND: 'x' }), JSON.stringify(batch), ...rows.slice(4).map((r) => JSON.stringify(r))];
      const before = await passes();
      const answers = await pipelined(bodies);
      expect(answers.map((a) => [a.id, a.status])).toEqual([['r0', 200], ['r1', 200], ['r2', 200], ['r3', 400], ['r4', 422], ['r5', 200], ['r6', 200], ['r7', 200]]);
      const scored: [number, Record<string, unknown>][] = [[0, rows[0]], [1, rows[1]], [2, rows[2]], [6, rows[4]], [7, rows[5]]];
      for (const [i, row] of scored) {
        const expected = reference.predict(row);
        const body = JSON.parse(answers[i].body);
        expect([body.label, CLASSES.map((c) => body.probabilities[c])]).toEqual([expected.label, Array.from(expected.probabilities)]);
      }
      expect(JSON.parse(answers[5].body).predictions.map((p: { label: string }) => p.label)).toEqual(batch.instances.map((r) => reference.predict(r).label));
      const after = await passes();
      // The batch is answered outside any pass, right after the five small bodies before it (a pass of
      // their own); the two after it make another pass.
      expect([after.count - before.count, after.sum - before.sum]).toEqual([2, 7]);
      expect(service.shedder.inFlight).toBe(0);
    });

    it('never holds more than MAX_PASS requests: a full pass is answered at once', async () => {
      const rng = mulberry32(24);
      const rows = Array.from({ length: MAX_PASS + 6 }, () => sampleRow(rng));
      const before = await passes();
      const answers = await pipelined(rows.map((r) => JSON.stringify(r)));
      expect(answers.map((a) => a.status)).toEqual(rows.map(() => 200));
      expect(answers.map((a) => JSON.parse(a.body).label)).toEqual(rows.map((r) => reference.predict(r).label));
      const after = await passes();
      expect(after.sum - before.sum).toBe(rows.length);
      expect(after.count - before.count).toBeGreaterThanOrEqual(2);
      // Every pass, this test's included, within the cap; the histogram's buckets end at it.
      expect(after.upTo64).toBe(after.count);
      const les = (await service.metrics.coalescedRequests.get()).values.map((v) => v.labels.le).filter((le): le is number => typeof le === 'number');
      expect(Math.max(...les)).toBe(MAX_PASS);
      expect(service.shedder.inFlight).toBe(0);
    });

    it('skips the rows of a connection that closed before its pass: not scored or counted as predictions, logged as 499, nothing held', async () => {
      const rng = mulberry32(25);
      const bodies = Array.from({ length: 3 }, () => JSON.stringify(sampleRow(rng)));
      const predicted = async () => (await service.metrics.predictions.get()).values.reduce((a, v) => a + v.value, 0);
      const closedByClient = async () =>
        (await service.metrics.requestDuration.get()).values.filter((v) => v.metricName === 'pricesense_http_request_duration_seconds_count' && v.labels.status === String(CLIENT_CLOSED)).reduce((a, v) => a + v.value, 0);
      const before = [await predicted(), await passes(), await closedByClient()] as const;
      // The last body's end queues it (the service's listener runs first), then the connection dies, before the pass.
      const answers = await pipelined(bodies, (req) => {
        if (req.headers['x-request-id'] === 'r2') req.on('end', () => req.socket.destroy());
      });
      expect(answers).toEqual([]);
      const after = [await predicted(), await passes(), await closedByClient()] as const;
      // The pass ran, with all three; none was scored, each was counted as closed by its client.
      expect([after[1].count - before[1].count, after[1].sum - before[1].sum]).toEqual([1, 3]);
      expect(after[0]).toBe(before[0]);
      expect(after[2] - before[2]).toBe(3);
      expect(service.shedder.inFlight).toBe(0);
      // And the service answers the next connection as before.
      expect((await pipelined(bodies.slice(0, 1))).map((a) => a.status)).toEqual([200]);
    });
  });

  describe('bad input: 4xx with what, where and expected; never a stack', () => {
    const expectClean = (body: unknown) => {
      const text = JSON.stringify(body);
      expect(text).not.toMatch(/\bat .*\.(ts|js):\d+/);
      expect(text).not.toContain('node_modules');
    };

    it('lists every missing field', async () => {
      const row: Record<string, unknown> = sampleRow();
      delete row.SPEND;
      delete row.BASKET_SIZE;
      const res = await api().post('/predict').send(row).expect(422);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.message).toContain('SPEND');
      expect(res.body.error.message).toContain('BASKET_SIZE');
      const missing = res.body.error.details.filter((d: { problem: string }) => d.problem === 'missing field');
      expect(missing.map((d: { field: string }) => d.field).sort()).toEqual(['BASKET_SIZE', 'SPEND']);
      expect(missing.find((d: { field: string }) => d.field === 'SPEND').expected).toContain('number');
      expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
      expectClean(res.body);
    });

    it('reports wrong types with where and expected', async () => {
      const res = await api().post('/predict').send({ ...sampleRow(), SPEND: '12.5', BASKET_SIZE: 3 }).expect(422);
      const byWhere = Object.fromEntries(res.body.error.details.map((d: { where: string }) => [d.where, d]));
      expect(byWhere['/SPEND']).toMatchObject({ problem: 'wrong type', got: '12.5' });
      expect(byWhere['/SPEND'].expected).toMatch(/number/);
      expect(byWhere['/BASKET_SIZE']).toMatchObject({ problem: 'wrong type', got: 3, allowed: ['S', 'M', 'L', null] });
      expect(res.body.error.details).toHaveLength(2);
    });

    it('rejects unknown fields, naming the expected ones', async () => {
      const res = await api().post('/predict').send({ ...sampleRow(), SPNED: 1 }).expect(422);
      expect(res.body.error.details[0]).toMatchObject({ where: '/SPNED', problem: 'unknown field', field: 'SPNED' });
      expect(res.body.error.details[0].expected).toContain('SPEND');
    });

    it('rejects a batch over the limit with 413', async () => {
      const res = await api().post('/predict').send({ instances: Array.from({ length: 51 }, () => sampleRow()) }).expect(413);
      expect(res.body.error).toMatchObject({ code: 'batch_too_large' });
      expect(res.body.error.details[0]).toMatchObject({ where: '/instances', got: 51 });
    });

    it('rejects a body over the limit with 413', async () => {
      const res = await api().post('/predict').set('Content-Type', 'application/json').send(`{"pad":"${'x'.repeat(70 * 1024)}"}`).expect(413);
      expect(res.body.error.code).toBe('body_too_large');
      expect(res.body.error.message).toContain(String(64 * 1024));
    });

    it('rejects invalid JSON with 400 and the parse position', async () => {
      const res = await api().post('/predict').set('Content-Type', 'application/json').send('{"SPEND": 1,').expect(400);
      expect(res.body.error.code).toBe('invalid_json');
      expect(res.body.error.message).toMatch(/JSON/);
      expectClean(res.body);
    });

    it('rejects a non-JSON content type with 415', async () => {
      const res = await api().post('/predict').set('Content-Type', 'text/plain').send('SPEND=1').expect(415);
      expect(res.body.error.details[0]).toMatchObject({ where: 'Content-Type', expected: 'application/json' });
    });

    it('rejects an empty batch, a top-level array and a scalar', async () => {
      expect((await api().post('/predict').send({ instances: [] }).expect(422)).body.error.details[0]).toMatchObject({ where: '/instances', problem: 'too few items' });
      expect((await api().post('/predict').send([sampleRow()]).expect(422)).body.error.details[0]).toMatchObject({ where: '', got: 'array' });
      await api().post('/predict').set('Content-Type', 'application/json').send('42').expect(422);
    });

    it('caps the details of a large bad batch', async () => {
      const rows = Array.from({ length: 50 }, () => ({}));
      const res = await api().post('/predict').send({ instances: rows }).expect(422);
      expect(res.body.error.details).toHaveLength(50);
      expect(res.body.error.omittedDetails).toBe(50 * FEATURES.length - 50);
    });

    it('answers a wrong method with 405 and Allow, an unknown route with 404', async () => {
      const res = await api().get('/predict').expect(405);
      expect(res.headers.allow).toBe('POST');
      expect(res.body.error.code).toBe('method_not_allowed');
      expect((await api().get('/nope').expect(404)).body.error.code).toBe('not_found');
    });
  });

  describe('probes, model, metrics, docs', () => {
    it('GET /health and /ready', async () => {
      expect((await api().get('/health').expect(200)).body.status).toBe('ok');
      const ready = await api().get('/ready').expect(200);
      expect(ready.body).toMatchObject({ ready: true, champion: { version, sha256: reference.sha256 }, lastPoll: { ok: true } });
    });

    it('GET /model gives version, feature spec, metrics and load time', async () => {
      const res = await api().get('/model').expect(200);
      expect(res.body.champion).toMatchObject({ version, sha256: reference.sha256, status: 'Approved', trees: 5, classes: CLASSES, features: FEATURES });
      expect(res.body.champion.evaluation).toEqual({ accuracy: 0.8, macroF1: 0.75 });
      expect(typeof res.body.champion.loadedAt).toBe('string');
      expect(res.body.champion.loadSeconds).toBeGreaterThan(0);
      const phases = res.body.champion.loadPhasesMs;
      expect(Object.keys(phases).sort()).toEqual(['compile', 'fetch', 'parse', 'validators']);
      const phaseSum = (Object.values(phases) as number[]).reduce((a, b) => a + b, 0);
      expect(phaseSum).toBeLessThanOrEqual(res.body.champion.loadSeconds * 1000 + 1);
      expect(res.body.challenger).toBeNull();
    });

    it('GET /metrics exposes request durations, predictions by class, loads and drift, labelled with the version', async () => {
      await api().post('/predict').send({ instances: Array.from({ length: 30 }, () => ({ ...sampleRow(), SPEND: 5000 })) }).expect(200);
      const res = await api().get('/metrics').expect(200).expect('Content-Type', /text\/plain/);
      const text = res.text;
      expect(text).toMatch(new RegExp(`pricesense_http_request_duration_seconds_count\\{route="/predict",method="POST",status="200",model_version="${version}"\\} \\d+`));
      expect(text).toMatch(new RegExp(`pricesense_predictions_total\\{model_version="${version}",role="champion",class="(Low|Medium|High)"\\}`));
      expect(text).toContain(`pricesense_model_loads_total{model_version="${version}",role="champion"} 1`);
      expect(text).toMatch(/pricesense_model_load_failures_total/);
      const spend = new RegExp(`pricesense_feature_drift_psi\\{feature="SPEND",model_version="${version}",role="champion"\\} ([0-9.e+-]+)`).exec(text);
      expect(spend).not.toBeNull();
      // SPEND=5000 is above every training decile: the live window is shifted.
      expect(Number(spend![1])).toBeGreaterThan(0.1);
      expect(text).toContain('process_resident_memory_bytes');
    });

    it('GET /openapi.json holds the very schema the server validates with', async () => {
      const res = await api().get('/openapi.json').expect(200);
      expect(res.body.openapi).toBe('3.1.0');
      expect(res.body.components.schemas.Instance).toEqual(instanceSchema(FEATURES));
      expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/predict', '/health', '/ready', '/model', '/metrics', '/v2/models/{name}/infer']));
      const validate = new Ajv({ strict: false }).compile(res.body.components.schemas.Instance);
      expect(validate(sampleRow())).toBe(true);
      expect(validate({ ...sampleRow(), BASKET_SIZE: 3 })).toBe(false);
      // Unknown categories are accepted (scored as missing) by default; the known ones are documented.
      expect(validate({ ...sampleRow(), BASKET_SIZE: 'XL' })).toBe(true);
      expect(res.body.components.schemas.Instance.properties.BASKET_SIZE.examples).toEqual(['S', 'M', 'L']);
      // The example in the docs is itself valid.
      expect(validate(res.body.paths['/predict'].post.requestBody.content['application/json'].examples.single.value)).toBe(true);
    });

    it('GET /docs serves Swagger UI pointed at the live document', async () => {
      const redirect = await api().get('/docs').expect(301);
      expect(redirect.headers.location).toBe('docs/');
      const html = await api().get('/docs/').expect(200).expect('Content-Type', /html/);
      expect(html.text).toContain('swagger-ui');
      const init = await api().get('/docs/swagger-ui-init.js').expect(200);
      expect(init.text).toContain('../openapi.json');
      await api().get('/docs/swagger-ui-bundle.js').expect(200).expect('Content-Type', /javascript/);
      await api().get('/docs/package.json').expect(404);
    });

    it('sets security headers and hides the framework: the API set on JSON answers, helmet\'s on the Swagger UI pages', async () => {
      for (const res of [await api().get('/health'), await api().post('/predict').send(sampleRow()), await api().post('/predict?explain=1').send(sampleRow())]) {
        expect(res.headers['x-powered-by']).toBeUndefined();
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['cache-control']).toBe('no-store');
        expect(res.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
        expect(res.headers['x-frame-options']).toBe('DENY');
        expect(res.headers['strict-transport-security']).toBeDefined();
      }
      const page = await api().get('/docs/');
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
      expect(page.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      expect(page.headers['cross-origin-opener-policy']).toBe('same-origin');
    });
  });

  describe('unknown categories', () => {
    const unknownCounts = async () => {
      const text = (await api().get('/metrics').expect(200)).text;
      const out: Record<string, number> = {};
      for (const m of text.matchAll(new RegExp(`pricesense_unknown_categories_total\\{model_version="${version}",feature="(\\w+)"\\} (\\d+)`, 'g'))) out[m[1]] = Number(m[2]);
      return out;
    };

    it('are scored as missing by default, named in the response and counted per feature', async () => {
      const before = await unknownCounts();
      const row = { ...sampleRow(mulberry32(31)), STORE_REGION: 'N07' };
      const res = await api().post('/predict').send(row).expect(200);
      const asMissing = reference.predict({ ...row, STORE_REGION: null });
      expect(res.body.label).toBe(asMissing.label);
      expect(CLASSES.map((c) => res.body.probabilities[c])).toEqual(Array.from(asMissing.probabilities));
      expect(res.body.unknownCategories).toEqual(['STORE_REGION']);
      expect(Object.keys(res.body)).toEqual(['label', 'probabilities', 'unknownCategories', 'model']);
      // Known values carry no mark; in a batch only the affected rows do.
      expect((await api().post('/predict').send(sampleRow()).expect(200)).body.unknownCategories).toBeUndefined();
      const batch = await api().post('/predict').send({ instances: [sampleRow(), { ...row, BASKET_SIZE: 'XXL' }] }).expect(200);
      expect(batch.body.predictions.map((p: { unknownCategories?: string[] }) => p.unknownCategories)).toEqual([undefined, ['BASKET_SIZE', 'STORE_REGION']]);
      const explained = await api().post('/predict?explain=true').send(row).expect(200);
      expect(explained.body.unknownCategories).toEqual(['STORE_REGION']);
      const after = await unknownCounts();
      expect(after.STORE_REGION - (before.STORE_REGION ?? 0)).toBe(3);
      expect(after.BASKET_SIZE - (before.BASKET_SIZE ?? 0)).toBe(1);
    });

    it('--unknown-categories reject keeps the strict behaviour: a 422 naming the value, where it is and the allowed ones', async () => {
      const strict = await createService(testConfig({ unknownCategories: 'reject' }), { registry: reg.registry, logger: silentLogger() });
      await strict.manager.start();
      strict.manager.stop();
      const rows = [sampleRow(), { ...sampleRow(), STORE_REGION: 'X99' }];
      const res = await request(strict.handler).post('/predict').send({ instances: rows }).expect(422);
      expect(res.body.error.details).toEqual([
        expect.objectContaining({ where: '/instances/1/STORE_REGION', problem: 'unknown category', got: 'X99', allowed: ['E01', 'E02', 'W01', 'W02', null] }),
      ]);
      const doc = (await request(strict.handler).get('/openapi.json').expect(200)).body;
      expect(doc.components.schemas.Instance.properties.STORE_REGION.enum).toEqual(['E01', 'E02', 'W01', 'W02', null]);
    });
  });

  describe('without an approved model', () => {
    it('is alive but not ready, and says why', async () => {
      const empty = await testRegistry();
      try {
        await empty.publish(2, { approve: false });
        const s = await createService(testConfig(), { registry: empty.registry, logger: silentLogger() });
        await s.manager.start();
        s.manager.stop();
        await request(s.handler).get('/health').expect(200);
        const ready = await request(s.handler).get('/ready').expect(503);
        expect(ready.body.ready).toBe(false);
        expect(ready.body.reason).toMatch(/no Approved model version/);
        const res = await request(s.handler).post('/predict').send(sampleRow()).expect(503);
        expect(res.body.error.code).toBe('not_ready');
        expect(res.headers['retry-after']).toBe('5');
        await request(s.handler).get('/model').expect(503);
        await request(s.handler).get('/v2/health/ready').expect(400);
        await request(s.handler).get('/v2/health/live').expect(200);
        expect((await request(s.handler).get('/openapi.json').expect(200)).body.components.schemas.Instance.required).toEqual([]);
      } finally {
        await empty.cleanup();
      }
    });
  });
});
