/**
 * The Express app (no listen: tests drive it with supertest, api/server.ts listens).
 *
 * The throughput path, a plain POST /predict, is answered before Express by
 * api/fast-predict.ts (see `createRequestListener`); Express serves everything else,
 * including /predict requests of a less common shape, with the same scoring code
 * (api/predict.ts) and error bodies. Everything derivable from the model (validators,
 * response parts, OpenAPI, metric label children) is built once per model load.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import swaggerUi from 'swagger-ui-express';
import { ApiError, errorBody, fromHttpError } from './errors';
import { createLeanPredict } from './fast-predict';
import type { ModelManager, Route, ServedModel } from './model-manager';
import { oipModelMetadata, oipRequestedOutputs, oipToRows } from './oip';
import { buildOpenApi } from './openapi';
import { predictResponse, scoreShadow } from './predict';
import { AccessLog, newRequestId, notReady } from './request-context';

export interface AppOptions {
  readonly manager: ModelManager;
  readonly logger: Logger;
  readonly bodyLimitBytes?: number;
  readonly serviceVersion?: string;
  /** Shared with the lean /predict path; one is made when not given. */
  readonly access?: AccessLog;
  /** Security headers for every response; `securityHeaders()` when not given. */
  readonly headers?: readonly (readonly [string, string])[];
}

/** Per-request facts the access log and the duration histogram need. */
interface RequestState {
  requestId: string;
  modelVersion: string;
  role: string;
}

/**
 * helmet's headers, computed once: its configuration is static, so running its 13
 * middlewares on every request would recompute the same strings each time.
 */
export function securityHeaders(): [string, string][] {
  const out: [string, string][] = [];
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => out.push([name, String(value)]),
    removeHeader: () => undefined,
  };
  const middleware = helmet({
    // TLS ends at the load balancer; upgrading Swagger UI's asset URLs to https would break /docs over plain HTTP.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  let called = false;
  middleware({} as IncomingMessage, recorder as unknown as ServerResponse, () => (called = true));
  if (!called) throw new Error('helmet did not complete synchronously; cannot precompute security headers');
  return out;
}

const DEFAULT_BODY_LIMIT = 2 * 1024 * 1024;

function state(res: Response): RequestState {
  return res.locals as RequestState;
}

function isJson(req: Request): boolean {
  const ct = req.headers['content-type'];
  if (!ct) return false;
  const type = ct.split(';', 1)[0].trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** Swagger UI's static files: next to the bundle (Docker image) or from node_modules (development). */
export function swaggerAssetsDir(): string {
  const bundled = path.join(__dirname, 'swagger-ui');
  if (existsSync(path.join(bundled, 'swagger-ui-bundle.js'))) return bundled;
  return path.dirname(require.resolve('swagger-ui-dist/package.json'));
}

export function serviceVersionDefault(): string {
  // The bundle defines this at build time; from sources, read package.json.
  if (process.env.PRICESENSE_SERVICE_VERSION) return process.env.PRICESENSE_SERVICE_VERSION;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../etl/version') as typeof import('../etl/version')).packageVersion();
  } catch {
    return 'unknown';
  }
}

export function createApp(options: AppOptions): express.Express {
  const { manager, logger } = options;
  const metrics = manager.metrics;
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const serviceVersion = options.serviceVersion ?? serviceVersionDefault();
  const batchLimit = manager.batchLimit;
  const access = options.access ?? new AccessLog(metrics, logger);
  const headers = options.headers ?? securityHeaders();
  const app = express();
  app.disable('x-powered-by');
  // ETags on prediction responses would hash every body for nothing.
  app.set('etag', false);

  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    const requestId = newRequestId(req.headers['x-request-id']);
    const s = state(res);
    s.requestId = requestId;
    s.modelVersion = 'none';
    s.role = '';
    res.setHeader('X-Request-Id', requestId);
    for (const [name, value] of headers) res.setHeader(name, value);
    res.on('finish', () => {
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : req.path.startsWith('/docs') ? '/docs' : 'unmatched';
      access.record(req, route, res.statusCode, s.modelVersion, s.role, requestId, started);
    });
    next();
  });

  const parseJson = express.json({ limit: bodyLimit, strict: false, type: () => true });
  const requireJson = (req: Request, _res: Response, next: NextFunction) => {
    if (!isJson(req)) {
      next(
        new ApiError(415, 'unsupported_media_type', `Expected a JSON body (Content-Type: application/json), got ${req.headers['content-type'] ? JSON.stringify(req.headers['content-type'].slice(0, 100)) : 'no Content-Type'}`, [
          { where: 'Content-Type', problem: 'not JSON', expected: 'application/json' },
        ]),
      );
      return;
    }
    next();
  };

  const routeOrUnavailable = (res: Response): Route => {
    const route = manager.route();
    if (!route) throw notReady(manager);
    const s = state(res);
    s.modelVersion = route.model.versionLabel;
    s.role = route.role;
    res.setHeader('X-Model-Version', route.model.versionLabel);
    return route;
  };

  // ---- predictions ----
  app.post('/predict', requireJson, parseJson, (req: Request, res: Response) => {
    const route = routeOrUnavailable(res);
    const { rows, batch } = route.model.validator.parsePredict(req.body);
    const explain = req.url.includes('?') && isTrue(req.query.explain);
    const json = predictResponse(manager, logger, route, rows, batch, explain, state(res).requestId);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.send(json);
  });

  // ---- probes and introspection ----
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime() * 10) / 10, pid: process.pid });
  });

  app.get('/ready', (_req, res) => {
    const status = manager.status();
    res.status(status.ready ? 200 : 503);
    if (!status.ready) res.setHeader('Retry-After', '5');
    res.json(status);
  });

  app.get('/model', (_req, res) => {
    const champion = manager.champion;
    if (!champion) throw notReady(manager);
    const ch = manager.challenger;
    res.json({
      name: manager.modelName,
      champion: describeModel(champion),
      challenger: ch ? { mode: ch.mode, percent: ch.percent, ...describeModel(ch.model) } : null,
      registry: manager.registry.uri,
      pollIntervalMs: manager.pollIntervalMs,
      batchLimit,
    });
  });

  app.get('/metrics', async (_req, res) => {
    const text = await metrics.registry.metrics();
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(text);
  });

  const openapiCache = new WeakMap<ServedModel, Record<string, unknown>>();
  let openapiEmpty: Record<string, unknown> | undefined;
  app.get('/openapi.json', (_req, res) => {
    const champion = manager.champion;
    let doc: Record<string, unknown> | undefined;
    if (champion) {
      doc = openapiCache.get(champion);
      if (!doc) {
        doc = buildOpenApi({ name: champion.name, version: champion.version, features: champion.features, classes: champion.classes }, batchLimit, serviceVersion);
        openapiCache.set(champion, doc);
      }
    } else {
      openapiEmpty ??= buildOpenApi({ name: manager.modelName, version: undefined, features: [], classes: [] }, batchLimit, serviceVersion);
      doc = openapiEmpty;
    }
    res.json(doc);
  });

  // Swagger UI loads the live document, so it follows hot swaps (the categories can change between versions).
  const swaggerOptions = { swaggerUrl: '../openapi.json', customSiteTitle: 'pricesense API' };
  const docsHtml = swaggerUi.generateHTML(undefined, swaggerOptions);
  const [swaggerInit] = swaggerUi.serveFiles(undefined, swaggerOptions);
  app.get('/docs', (req, res) => {
    if (!req.originalUrl.split('?', 1)[0].endsWith('/')) {
      res.redirect(301, 'docs/');
      return;
    }
    res.type('html').send(docsHtml);
  });
  app.use('/docs', swaggerInit, express.static(swaggerAssetsDir(), { index: false, redirect: false, maxAge: '1h' }));

  // ---- Open Inference Protocol (KServe v2) ----
  app.get('/v2', (_req, res) => {
    res.json({ name: 'pricesense', version: serviceVersion, extensions: [] });
  });
  app.get('/v2/health/live', (_req, res) => {
    res.json({ live: true });
  });
  // The protocol signals "not ready" with a 4xx status (Triton uses 400).
  app.get('/v2/health/ready', (_req, res) => {
    const ready = manager.ready;
    res.status(ready ? 200 : 400).json({ ready });
  });
  const oipModel = (req: Request, version?: string): ServedModel => {
    const name = String(req.params.name);
    if (name !== manager.modelName) throw new ApiError(404, 'model_not_found', `Unknown model ${JSON.stringify(name.slice(0, 100))}; this server serves ${JSON.stringify(manager.modelName)}`);
    const champion = manager.champion;
    if (!champion) throw notReady(manager);
    if (version === undefined) return champion;
    const model = manager.byVersion(version);
    if (!model) throw new ApiError(404, 'version_not_found', `Version ${JSON.stringify(version.slice(0, 20))} of ${name} is not served here; served: ${servedVersions(manager).join(', ')}`);
    return model;
  };
  app.get('/v2/models/:name', (req, res) => {
    res.json(oipModelMetadata(oipModel(req), servedVersions(manager)));
  });
  app.get('/v2/models/:name/versions/:version', (req, res) => {
    const model = oipModel(req, String(req.params.version));
    res.json(oipModelMetadata(model, [model.versionLabel]));
  });
  const modelReady = (req: Request, res: Response, version?: string) => {
    try {
      oipModel(req, version);
      res.status(manager.ready ? 200 : 400).json({ name: manager.modelName, ready: manager.ready });
    } catch (err) {
      if (err instanceof ApiError && err.status === 503) res.status(400).json({ name: manager.modelName, ready: false });
      else throw err;
    }
  };
  app.get('/v2/models/:name/ready', (req, res) => modelReady(req, res));
  app.get('/v2/models/:name/versions/:version/ready', (req, res) => modelReady(req, res, String(req.params.version)));
  const infer = (req: Request, res: Response, version?: string) => {
    const name = String(req.params.name);
    oipModel(req, version); // 404 / 503 before looking at the body
    let route: Route;
    if (version === undefined) route = routeOrUnavailable(res);
    else {
      const model = oipModel(req, version);
      route = { model, role: model === manager.champion ? 'champion' : 'canary', shadow: undefined };
      state(res).modelVersion = model.versionLabel;
      state(res).role = route.role;
      res.setHeader('X-Model-Version', model.versionLabel);
    }
    const model = route.model;
    const request = model.validator.parseOip(req.body);
    const outputs = oipRequestedOutputs(request);
    const rows = oipToRows(request, model, batchLimit);
    for (let i = 0; i < rows.length; i++) model.drift.observe(rows[i]);
    const result = model.forest.predictBatch(rows);
    metrics.batchSize.observe({ route: '/v2/models/:name/infer' }, rows.length);
    for (let i = 0; i < result.labels.length; i++) metrics.countPrediction(model.versionLabel, route.role, result.labels[i]);
    const tensors: Record<string, unknown>[] = [];
    if (outputs.has('label')) tensors.push({ name: 'label', shape: [rows.length], datatype: 'BYTES', data: result.labels });
    if (outputs.has('probabilities')) {
      tensors.push({ name: 'probabilities', shape: [rows.length, model.classes.length], datatype: 'FP64', data: Array.from(result.probabilities) });
    }
    const body: Record<string, unknown> = { model_name: name, model_version: model.versionLabel, outputs: tensors, parameters: { role: route.role } };
    if (request.id !== undefined) body.id = request.id;
    res.json(body);
    if (route.shadow) scoreShadow(manager, logger, route, rows, result.labels, state(res).requestId);
  };
  app.post('/v2/models/:name/infer', requireJson, parseJson, (req, res) => infer(req, res));
  app.post('/v2/models/:name/versions/:version/infer', requireJson, parseJson, (req, res) => infer(req, res, String(req.params.version)));

  // ---- wrong method, unknown route, errors ----
  const allowed: Record<string, string> = {
    '/predict': 'POST',
    '/v2/models/:name/infer': 'POST',
    '/v2/models/:name/versions/:version/infer': 'POST',
    '/health': 'GET',
    '/ready': 'GET',
    '/model': 'GET',
    '/metrics': 'GET',
    '/openapi.json': 'GET',
  };
  for (const [route, method] of Object.entries(allowed)) {
    app.all(route, (req, res, next) => {
      if (method === 'GET' && req.method === 'HEAD') {
        next();
        return;
      }
      res.setHeader('Allow', method);
      next(new ApiError(405, 'method_not_allowed', `${req.method} is not allowed on ${route}; use ${method}`, [{ where: 'method', problem: 'method not allowed', expected: method, got: req.method }]));
    });
  }
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new ApiError(404, 'not_found', `No route ${req.method} ${req.path.slice(0, 200)}; see /docs for the API`));
  });

  // Express recognises error handlers by their four parameters.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const s = state(res);
    let apiError = err instanceof ApiError ? err : fromHttpError(err, bodyLimit);
    if (!apiError) {
      logger.error({ reqId: s.requestId, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'unhandled error');
      apiError = new ApiError(500, 'internal_error', 'Internal error; the request id identifies it in the server logs');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(apiError.status);
    if (apiError.status === 503) res.setHeader('Retry-After', '5');
    if (req.path.startsWith('/v2/')) {
      // OIP error shape: {"error": "<message>"}; details are an extension clients may ignore.
      const body: Record<string, unknown> = { error: apiError.message };
      if (apiError.details.length > 0) body.details = apiError.details;
      res.json(body);
      return;
    }
    res.json(errorBody(apiError, s.requestId));
  });

  return app;
}

/**
 * The HTTP server's request listener: the lean POST /predict path first, Express for
 * everything it does not take. Both share the access log, headers and scoring code.
 */
export function createRequestListener(options: AppOptions): { listener: RequestListener; app: express.Express; access: AccessLog } {
  const access = options.access ?? new AccessLog(options.manager.metrics, options.logger);
  const headers = options.headers ?? securityHeaders();
  const app = createApp({ ...options, access, headers });
  const lean = createLeanPredict({
    manager: options.manager,
    logger: options.logger,
    bodyLimitBytes: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
    headers,
    access,
  });
  const listener: RequestListener = (req, res) => {
    if (!lean(req, res)) app(req as Request, res as Response);
  };
  return { listener, app, access };
}

function isTrue(v: unknown): boolean {
  return v === 'true' || v === '1' || v === '';
}


function servedVersions(manager: ModelManager): string[] {
  const out: string[] = [];
  if (manager.champion) out.push(manager.champion.versionLabel);
  const ch = manager.challenger;
  if (ch && ch.model.versionLabel !== manager.champion?.versionLabel) out.push(ch.model.versionLabel);
  return out;
}

function describeModel(m: ServedModel): Record<string, unknown> {
  return {
    name: m.name,
    version: m.version,
    sha256: m.sha256,
    status: m.registryEntry.status,
    loadedAt: m.loadedAt,
    loadSeconds: m.loadSeconds,
    loadPhasesMs: m.loadPhasesMs,
    trees: m.trees,
    aggregation: m.aggregation,
    classes: m.classes,
    features: m.features,
    training: m.training,
    evaluation: m.evaluation,
    registryMetrics: m.registryEntry.metrics,
    lineage: m.registryEntry.lineage,
  };
}
