/**
 * The HTTP application, assembled from one router per concern (the shape of Express's
 * route-separation and multi-router examples, and of KServe's data-plane/endpoint split):
 *
 *   api/routes/predict.ts   POST /predict (the Express path; the lean one is api/fast-predict.ts)
 *   api/routes/oip.ts       /v2: the Open Inference Protocol data plane
 *   api/routes/probes.ts    /health, /ready, /model, /metrics
 *   api/routes/docs.ts      /openapi.json, /docs
 *
 * Both prediction protocols score through one prediction layer (api/prediction.ts), and
 * both request paths share the access log, the security headers and the load shedder.
 * createApp has no `listen`: tests drive it with supertest, api/server.ts listens.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import type { UnknownCategoryPolicy } from './config';
import { ApiError } from './errors';
import { createLeanPredict } from './fast-predict';
import { LoadShedder } from './load-shedding';
import type { ModelManager } from './model-manager';
import { Predictor } from './prediction';
import { AccessLog, newRequestId } from './request-context';
import { traceresponse } from './tracing';
import { errorHandler, state } from './routes/common';
import { docsRouter } from './routes/docs';
import { oipRouter } from './routes/oip';
import { predictRouter } from './routes/predict';
import { probesRouter } from './routes/probes';

export interface AppOptions {
  readonly manager: ModelManager;
  readonly logger: Logger;
  readonly bodyLimitBytes?: number;
  readonly serviceVersion?: string;
  readonly unknownCategories?: UnknownCategoryPolicy;
  /** Shared with the lean /predict path; one is made when not given. */
  readonly access?: AccessLog;
  readonly predictor?: Predictor;
  /** Shared with the lean /predict path; one with the default limits is made when not given. */
  readonly shedder?: LoadShedder;
  /** Security headers for every API response; API_SECURITY_HEADERS when not given. */
  readonly headers?: readonly (readonly [string, string])[];
}

/**
 * The security headers of the JSON API (every response but the /docs pages): the set the
 * OWASP REST Security Cheat Sheet lists for APIs. helmet's browser-page set (a CSP
 * allowing scripts and styles, cross-origin policies, ...) is for the Swagger UI pages,
 * which get it in api/routes/docs.ts; on a JSON answer it would only be bytes to write.
 */
export const API_SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ['Cache-Control', 'no-store'],
  ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
  ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
];

export const DEFAULT_BODY_LIMIT = 2 * 1024 * 1024;

export function serviceVersionDefault(): string {
  // The bundle defines this at build time; from sources, read package.json.
  if (process.env.PRICESENSE_SERVICE_VERSION) return process.env.PRICESENSE_SERVICE_VERSION;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../core/version') as typeof import('../core/version')).packageVersion();
  } catch {
    return 'unknown';
  }
}

export function createApp(options: AppOptions): express.Express {
  const { manager, logger } = options;
  const bodyLimitBytes = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const serviceVersion = options.serviceVersion ?? serviceVersionDefault();
  const unknownCategories = options.unknownCategories ?? 'missing';
  const access = options.access ?? new AccessLog(manager.metrics, logger);
  const predictor = options.predictor ?? new Predictor(manager.metrics, logger);
  const shedder = options.shedder ?? new LoadShedder({ maxInFlight: 256, maxEventLoopDelayMs: 0, metrics: manager.metrics });
  const headers = options.headers ?? API_SECURITY_HEADERS;
  const app = express();
  app.disable('x-powered-by');
  // ETags on prediction responses would hash every body for nothing.
  app.set('etag', false);

  // Request context: id, headers, and the access record when the response is done.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    const requestId = newRequestId(req.headers['x-request-id']);
    const trace = access.trace(req);
    const s = state(res);
    s.requestId = requestId;
    s.modelVersion = 'none';
    s.role = '';
    res.setHeader('X-Request-Id', requestId);
    res.setHeader('traceresponse', traceresponse(trace));
    for (const [name, value] of headers) res.setHeader(name, value);
    res.on('finish', () => {
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : req.path.startsWith('/docs') ? '/docs' : 'unmatched';
      access.record(req, route === '/v2/' ? '/v2' : route, res.statusCode, s.modelVersion, s.role, requestId, trace, started, s.shed === true);
    });
    next();
  });

  app.use(predictRouter({ manager, predictor, shedder, bodyLimitBytes }));
  app.use(probesRouter(manager));
  app.use(docsRouter(manager, { serviceVersion, unknownCategories }));
  app.use('/v2', oipRouter({ manager, predictor, shedder, logger, bodyLimitBytes, serviceVersion }));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new ApiError(404, 'not_found', `No route ${req.method} ${req.path.slice(0, 200)}; see /docs for the API`));
  });
  app.use(errorHandler({ logger, bodyLimitBytes, shape: 'pricesense' }));
  return app;
}

export interface RequestListenerParts {
  readonly listener: RequestListener;
  readonly app: express.Express;
  readonly access: AccessLog;
  readonly shedder: LoadShedder;
}

/**
 * The HTTP server's request listener: the lean POST /predict path first, Express for
 * everything it does not take. Both share the access log, headers, shedder and the
 * prediction layer.
 */
export function createRequestListener(options: AppOptions & { maxInFlight?: number; maxEventLoopDelayMs?: number }): RequestListenerParts {
  const metrics = options.manager.metrics;
  const access = options.access ?? new AccessLog(metrics, options.logger);
  const headers = options.headers ?? API_SECURITY_HEADERS;
  const predictor = options.predictor ?? new Predictor(metrics, options.logger);
  const shedder = options.shedder ?? new LoadShedder({ maxInFlight: options.maxInFlight ?? 256, maxEventLoopDelayMs: options.maxEventLoopDelayMs ?? 0, metrics });
  // Shadow scoring runs in an immediate after the answers: deferred work, which the shedder must see.
  predictor.runDeferred = (work) => shedder.deferred(work);
  const app = createApp({ ...options, access, headers, predictor, shedder });
  const lean = createLeanPredict({
    manager: options.manager,
    predictor,
    shedder,
    logger: options.logger,
    bodyLimitBytes: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
    headers,
    access,
    metrics,
  });
  const listener: RequestListener = (req, res) => {
    // Every request's arrival is work of its loop turn, probes included: it counts in the delay of the predictions after it.
    shedder.working();
    if (!lean(req, res)) app(req as Request, res as Response);
  };
  return { listener, app, access, shedder };
}
