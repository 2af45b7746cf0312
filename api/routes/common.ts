/**
 * What the routers share: the per-request state the access log reads, JSON body
 * handling, the route a prediction uses, overload shedding, and 405 answers.
 */
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { ApiError, errorBody } from '../errors';
import type { LoadShedder } from '../load-shedding';
import type { ModelManager } from '../model-manager';
import { notReady, retryAfter, shedError, toApiError } from '../request-context';
import type { Route, ServedModel } from '../served-model';

/** Per-request facts the access log and the duration histogram need (res.locals). */
export interface RequestState {
  requestId: string;
  modelVersion: string;
  role: string;
  /** Answered 503 by the load shedder: counted, logged at debug only (see AccessLog.record). */
  shed?: boolean;
}

export function state(res: Response): RequestState {
  return res.locals as RequestState;
}

function isJson(req: Request): boolean {
  const ct = req.headers['content-type'];
  if (!ct) return false;
  const type = ct.split(';', 1)[0].trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** 415 unless the body is JSON, then body-parser (any JSON value, within the limit). */
export function jsonBody(limitBytes: number, shedder: LoadShedder): RequestHandler[] {
  const requireJson: RequestHandler = (req, _res, next) => {
    if (isJson(req)) return next();
    const got = req.headers['content-type'] ? JSON.stringify(req.headers['content-type'].slice(0, 100)) : 'no Content-Type';
    next(new ApiError(415, 'unsupported_media_type', `Expected a JSON body (Content-Type: application/json), got ${got}`, [{ where: 'Content-Type', problem: 'not JSON', expected: 'application/json' }]));
  };
  // A body that ends in a later turn than its headers came in is parsed and scored in that turn: body-parser's
  // verify hook runs once the body is in, before the parse, so the shedder counts both there.
  const bodyIn = () => shedder.working();
  return [requireJson, express.json({ limit: limitBytes, strict: false, type: () => true, verify: bodyIn })];
}

/** Records which model answers (header, access log) and returns the route; 503 when none is loaded. */
export function useRoute(manager: ModelManager, res: Response, route: Route | undefined = manager.route()): Route {
  if (!route) throw notReady(manager);
  const s = state(res);
  s.modelVersion = route.model.versionLabel;
  s.role = route.role;
  res.setHeader('X-Model-Version', route.model.versionLabel);
  return route;
}

/** A route to one served model by version (OIP version-addressed calls): never a shadow. */
export function routeTo(manager: ModelManager, model: ServedModel): Route {
  return { model, role: model === manager.champion ? 'champion' : 'canary', shadow: undefined };
}

/** Admits a prediction request or answers 503 + Retry-After; an admitted one leaves the count when its response closes. */
export function shed(shedder: LoadShedder, route: string): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction) => {
    const reason = shedder.enter(route);
    if (reason !== undefined) {
      state(res).shed = true;
      return next(shedError(reason));
    }
    res.once('close', () => shedder.leave());
    next();
  };
}

/** After a router's routes: any other method on its paths is a 405 naming the allowed one (HEAD rides on GET). */
export function methodNotAllowed(router: express.Router, paths: Record<string, 'GET' | 'POST'>): void {
  for (const [path, method] of Object.entries(paths)) {
    router.all(path, (req, res, next) => {
      if (method === 'GET' && req.method === 'HEAD') return next();
      res.setHeader('Allow', method);
      next(new ApiError(405, 'method_not_allowed', `${req.method} is not allowed on ${req.baseUrl}${path}; use ${method}`, [{ where: 'method', problem: 'method not allowed', expected: method, got: req.method }]));
    });
  }
}

/**
 * The error answer: our {error: {code, message, details, requestId}} body, or the Open
 * Inference Protocol's {error: "<message>"} (details and omittedDetails as extensions).
 * Express recognises error handlers by their four parameters.
 */
export function errorHandler(options: { logger: Logger; bodyLimitBytes: number; shape: 'pricesense' | 'oip' }): ErrorRequestHandler {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const s = state(res);
    const apiError = toApiError(err, options.bodyLimitBytes, options.logger, s.requestId);
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(apiError.status);
    if (apiError.status === 503) res.setHeader('Retry-After', retryAfter(apiError));
    if (options.shape === 'oip') {
      const body: Record<string, unknown> = { error: apiError.message };
      if (apiError.details.length > 0) body.details = apiError.details;
      if (apiError.omitted > 0) body.omittedDetails = apiError.omitted;
      res.json(body);
      return;
    }
    res.json(errorBody(apiError, s.requestId));
  };
}
