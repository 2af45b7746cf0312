/**
 * The lean request path for the one request that matters for throughput: a plain
 * single-row or batch POST /predict. It runs in the HTTP server's request listener
 * before Express and handles the request itself when it is the common shape — exact
 * path, JSON content type with UTF-8, no content encoding, a Content-Length within the
 * body limit: a raw body read, JSON.parse, the model's compiled ajv validator, the
 * walker, a response string assembled from per-model parts (api/predict.ts), one
 * writeHead with precomputed security headers, one end.
 *
 * Anything else (a query string, a charset or encoding to negotiate, chunked bodies,
 * other paths and methods) goes to Express untouched, which answers /predict with the
 * same scoring code and the same error bodies. Express costs far more CPU than this path
 * per request (about 10× in a one-off profile) (router, per-middleware closures, helmet's 13 middlewares, body-parser).
 * Overload shedding (api/load-shedding.ts) happens here before the body is read.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorBody, fromHttpError } from './errors';
import type { LoadShedder } from './load-shedding';
import type { ModelManager } from './model-manager';
import { NO_EXTRAS, predictJson } from './predict';
import type { Predictor } from './prediction';
import { newRequestId, notReady, retryAfter, shedError, toApiError, type AccessLog } from './request-context';
import { traceresponse, type TraceContext } from './tracing';

/** Returns true when it took the request; false leaves it (body unread) to Express. */
export type LeanHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface LeanPredictOptions {
  readonly manager: ModelManager;
  readonly predictor: Predictor;
  readonly shedder: LoadShedder;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  /** Headers every response carries (security headers), as [name, value] pairs. */
  readonly headers: readonly (readonly [string, string])[];
  readonly access: AccessLog;
}

const JSON_UTF8 = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8']);
const CONTENT_TYPE = 'application/json; charset=utf-8';
const ROUTE = '/predict';

export function createLeanPredict(options: LeanPredictOptions): LeanHandler {
  const { manager, predictor, shedder, logger, bodyLimitBytes, access } = options;
  const fixed: string[] = [];
  for (const [name, value] of options.headers) fixed.push(name, value);

  const send = (res: ServerResponse, status: number, json: string, requestId: string, trace: TraceContext, modelVersion: string | undefined, retry: string | undefined) => {
    const headers = fixed.slice();
    headers.push('X-Request-Id', requestId, 'traceresponse', traceresponse(trace));
    if (modelVersion !== undefined) headers.push('X-Model-Version', modelVersion);
    if (retry !== undefined) headers.push('Retry-After', retry);
    headers.push('Content-Type', CONTENT_TYPE, 'Content-Length', String(Buffer.byteLength(json)));
    res.writeHead(status, headers);
    res.end(json);
  };

  const respond = (req: IncomingMessage, res: ServerResponse, body: Buffer, requestId: string, trace: TraceContext, started: number) => {
    let modelVersion: string | undefined;
    let role = '';
    let status = 200;
    let retry: string | undefined;
    let json: string;
    try {
      let parsed: unknown;
      // body-parser's behaviour, which Express's path keeps: a UTF-8 BOM is dropped and an empty body is {}.
      const text = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.toString('utf8', 3) : body.toString('utf8');
      try {
        parsed = text.length === 0 ? {} : JSON.parse(text);
      } catch (err) {
        throw fromHttpError({ type: 'entity.parse.failed', message: (err as Error).message }, bodyLimitBytes);
      }
      const route = manager.route();
      if (!route) throw notReady(manager);
      modelVersion = route.model.versionLabel;
      role = route.role;
      json = predictJson(predictor, route, route.model.validator.parsePredict(parsed), NO_EXTRAS, requestId);
    } catch (err) {
      const apiError = toApiError(err, bodyLimitBytes, logger, requestId);
      status = apiError.status;
      if (status === 503) retry = retryAfter(apiError);
      json = JSON.stringify(errorBody(apiError, requestId));
    }
    if (res.destroyed) return;
    send(res, status, json, requestId, trace, modelVersion, retry);
    access.record(req, ROUTE, status, modelVersion ?? 'none', role, requestId, trace, started);
  };

  return (req, res) => {
    if (req.method !== 'POST' || req.url !== ROUTE) return false;
    const h = req.headers;
    const type = h['content-type'];
    if (type === undefined || (type !== 'application/json' && !JSON_UTF8.has(type.toLowerCase()))) return false;
    const encoding = h['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    const lengthHeader = h['content-length'];
    if (lengthHeader === undefined || h['transfer-encoding'] !== undefined) return false;
    const length = Number(lengthHeader);
    if (!(length <= bodyLimitBytes)) return false;

    const started = performance.now();
    const requestId = newRequestId(h['x-request-id']);
    const trace = access.trace(req);
    const shed = shedder.enter(ROUTE);
    if (shed !== undefined) {
      // Answered before the body is read (Node discards it): shedding must cost less than serving.
      const err = shedError(shed);
      send(res, 503, JSON.stringify(errorBody(err, requestId)), requestId, trace, undefined, retryAfter(err));
      access.record(req, ROUTE, 503, 'none', '', requestId, trace, started);
      return true;
    }
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    let admitted = true;
    const leave = () => {
      if (admitted) {
        admitted = false;
        shedder.leave();
      }
    };
    req.on('data', (chunk: Buffer) => {
      if (first === undefined) first = chunk;
      else (more ??= [first]).push(chunk);
    });
    req.on('end', () => {
      // A body that ends in a later turn than its headers came in is scored in this one: the shedder counts it here.
      shedder.working();
      const body = more ? Buffer.concat(more) : (first ?? Buffer.alloc(0));
      try {
        respond(req, res, body, requestId, trace, started);
      } finally {
        leave();
      }
    });
    // An aborted upload has nobody to answer; the socket is already gone.
    req.on('error', leave);
    return true;
  };
}
