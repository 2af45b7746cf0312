/**
 * The lean request path for the one request that matters for throughput: a plain
 * single-row or batch POST /predict. It runs in the HTTP server's request listener
 * before Express and handles the request itself when it is the common shape — exact
 * path, JSON content type with UTF-8, no content encoding, a Content-Length within the
 * body limit: a raw body read, JSON.parse, the model's compiled ajv validator, the
 * walker, a response string assembled from per-model parts (api/predict.ts), one
 * writeHead with precomputed security headers, one end. Requests that complete in the
 * same pass of the event loop are answered together (see flush below).
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
import { CLIENT_CLOSED, type ApiMetrics } from './metrics';
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
  readonly metrics: ApiMetrics;
}

const JSON_UTF8 = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8']);
const CONTENT_TYPE = 'application/json; charset=utf-8';
const ROUTE = '/predict';
/** The most requests one pass answers together; a full pass is answered at once. */
export const MAX_PASS = 64;
/** A body larger than this (a batch; one row of 17 features is ~400 bytes) is answered as soon as it is in, outside any pass. */
export const MAX_PASS_BODY_BYTES = 2 * 1024;

/**
 * The request's leave() from the shedder, at most once (its answer and an aborted upload
 * can both call it). A returned arrow, not a named one: the bundle keeps function names
 * (esbuild's keepNames), which costs a named closure a defineProperty per request.
 */
function leaveOnce(shedder: LoadShedder): () => void {
  let admitted = true;
  return () => {
    if (admitted) {
      admitted = false;
      shedder.leave();
    }
  };
}

export function createLeanPredict(options: LeanPredictOptions): LeanHandler {
  const { manager, predictor, shedder, logger, bodyLimitBytes, access, metrics } = options;
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

  /** The answer to one admitted request: scored now, sent later (see flush). */
  interface Answer {
    status: number;
    json: string;
    modelVersion: string | undefined;
    role: string;
    retry: string | undefined;
  }

  const answer = (body: Buffer, requestId: string): Answer => {
    let modelVersion: string | undefined;
    let role = '';
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
      return { status: 200, json: predictJson(predictor, route, route.model.validator.parsePredict(parsed), NO_EXTRAS, requestId), modelVersion, role, retry: undefined };
    } catch (err) {
      return errorAnswer(err, requestId, modelVersion, role);
    }
  };

  /** The answer for an error: the API's own, or a 500 if even translating it fails (one bad request must not strand its pass). */
  const errorAnswer = (err: unknown, requestId: string, modelVersion: string | undefined, role: string): Answer => {
    try {
      const apiError = toApiError(err, bodyLimitBytes, logger, requestId);
      return { status: apiError.status, json: JSON.stringify(errorBody(apiError, requestId)), modelVersion, role, retry: apiError.status === 503 ? retryAfter(apiError) : undefined };
    } catch {
      return { status: 500, json: JSON.stringify({ error: { code: 'internal_error', message: 'Internal error', requestId } }), modelVersion: undefined, role: '', retry: undefined };
    }
  };

  /*
   * Requests of up to MAX_PASS_BODY_BYTES (single rows, small batches) whose bodies complete
   * in one pass of the event loop's poll phase are answered together in its check phase
   * (setImmediate): first all scored, then all sent.
   * Scoring walks some 1,400 nodes scattered over megabytes; every send is a system call
   * whose kernel work (and, on kernels without PCID, TLB flush) evicts what the walk
   * before it brought into cache, so scoring back to back keeps the trees' upper levels
   * warm from one row to the next. A pass holds at most MAX_PASS requests and at most a
   * quarter of the in-flight cap (a full one is answered at once), so the cap counts what is
   * really queued; a larger body (a batch) is answered as soon as it is in, right after the
   * requests queued before it, never holding them up. docs/api.md, "Answered together".
   */
  interface Pending {
    req: IncomingMessage;
    res: ServerResponse;
    body: Buffer;
    requestId: string;
    trace: TraceContext;
    started: number;
    leave: () => void;
  }
  let pending: Pending[] = [];
  // A pipelined request's response has no socket until those before it are answered: ask the request's.
  const closed = (p: Pending) => p.res.destroyed || p.req.socket.destroyed;

  const answerAll = (batch: Pending[]) => {
    const answers: (Answer | undefined)[] = new Array(batch.length);
    // A connection reset or destroyed before its pass has nobody to answer: its row is not
    // scored, so not counted as a prediction (nor seen by the drift monitor or a shadow
    // model). A client that half-closes (FIN) after its request still gets its answer.
    for (let i = 0; i < batch.length; i++) answers[i] = closed(batch[i]) ? undefined : answer(batch[i].body, batch[i].requestId);
    for (let i = 0; i < batch.length; i++) {
      const { req, res, requestId, trace, started, leave } = batch[i];
      const a = answers[i];
      try {
        // Also skipped when an earlier answer on the same connection failed and destroyed it.
        if (a === undefined || closed(batch[i])) {
          // nginx's "client closed request": logged and counted, never sent.
          access.record(req, ROUTE, CLIENT_CLOSED, a?.modelVersion ?? 'none', a?.role ?? '', requestId, trace, started);
        } else {
          send(res, a.status, a.json, requestId, trace, a.modelVersion, a.retry);
          access.record(req, ROUTE, a.status, a.modelVersion ?? 'none', a.role, requestId, trace, started);
        }
      } catch (err) {
        // A half-written answer would leave the socket (and a drain) waiting for its end.
        if (!res.writableEnded) res.destroy();
        try {
          logger.error({ reqId: requestId, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'answering a request failed');
        } catch {
          // The log is gone too; the rest of the pass must still be answered.
        }
      } finally {
        leave();
      }
    }
  };

  const flush = () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    try {
      metrics.observeCoalesced(batch.length);
    } finally {
      // In an immediate, between turns, its duration counts in the next turn's delay; a full pass
      // flushed while a turn is read is that turn's work (LoadShedder.deferred).
      shedder.deferred(() => answerAll(batch));
    }
  };

  // A quarter of the in-flight cap at most, so that a pass never fills it (a cap below 8 answers each request at once).
  const passLimit = Math.max(1, Math.min(MAX_PASS, Math.floor(shedder.maxInFlight / 4)));
  const queue = (entry: Pending) => {
    if (entry.body.length > MAX_PASS_BODY_BYTES) {
      // The rows queued before it are answered first: a batch never holds them up.
      flush();
      answerAll([entry]);
      return;
    }
    const queued = pending.push(entry);
    if (queued >= passLimit) flush();
    else if (queued === 1) setImmediate(flush);
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
      access.record(req, ROUTE, 503, 'none', '', requestId, trace, started, true);
      return true;
    }
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    const leave = leaveOnce(shedder);
    req.on('data', (chunk: Buffer) => {
      if (first === undefined) first = chunk;
      else (more ??= [first]).push(chunk);
    });
    req.on('end', () => {
      // A body that ends in a later turn than its headers came in is scored in this one: the shedder counts it here.
      shedder.working();
      const body = more ? Buffer.concat(more) : (first ?? Buffer.alloc(0));
      queue({ req, res, body, requestId, trace, started, leave });
    });
    // An aborted upload has nobody to answer; the socket is already gone.
    req.on('error', leave);
    return true;
  };
}
