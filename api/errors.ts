/**
 * Client-facing errors. Every 4xx body has the same shape: a stable code, a sentence
 * saying what was wrong, and details saying where (a JSON pointer into the request)
 * and what was expected. Internal errors never leak their message or stack.
 */

export interface ErrorDetail {
  /** JSON pointer into the request body ("" is the body itself), or a header/query name. */
  readonly where: string;
  readonly problem: string;
  readonly expected?: string;
  /** The offending value (truncated when long). */
  readonly got?: unknown;
  /** For unknown categories: the values the model knows. */
  readonly allowed?: readonly (string | null)[];
  readonly field?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: readonly ErrorDetail[];
  /** Details left out of `details` to keep the response small. */
  readonly omitted: number;
  constructor(status: number, code: string, message: string, details: readonly ErrorDetail[] = [], omitted = 0) {
    // Client errors are expected and frequent under bad traffic; their stack is never
    // shown or logged, so skip capturing it (the most expensive part of new Error()).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.omitted = omitted;
  }
}

export interface ErrorBody {
  error: {
    code: string;
    message: string;
    details?: readonly ErrorDetail[];
    omittedDetails?: number;
    requestId?: string;
  };
}

export function errorBody(err: ApiError, requestId: string | undefined): ErrorBody {
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  if (err.details.length > 0) body.error.details = err.details;
  if (err.omitted > 0) body.error.omittedDetails = err.omitted;
  if (requestId) body.error.requestId = requestId;
  return body;
}

/** Shortens a client value echoed back in an error (no megabyte strings in responses or logs). */
export function preview(value: unknown): unknown {
  if (typeof value === 'string') return value.length > 80 ? `${value.slice(0, 77)}...` : value;
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return `array(${value.length})`;
  if (typeof value === 'object') return 'object';
  return String(value);
}

export function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * Errors thrown by body-parser and the HTTP layer carry a status and a type; map the
 * client ones to our codes and messages (body-parser's own messages are safe but terse).
 */
export function fromHttpError(err: unknown, bodyLimitBytes: number): ApiError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string; expose?: boolean };
  const status = e.status ?? e.statusCode;
  switch (e.type) {
    case 'entity.parse.failed':
      return new ApiError(400, 'invalid_json', `The request body is not valid JSON: ${e.message ?? 'parse error'}`, [
        { where: '', problem: 'invalid JSON', expected: 'a JSON object: one basket, or {"instances": [...]}' },
      ]);
    case 'entity.too.large':
      return new ApiError(413, 'body_too_large', `The request body is larger than the limit of ${bodyLimitBytes} bytes`, [
        { where: '', problem: 'body too large', expected: `at most ${bodyLimitBytes} bytes; split the batch` },
      ]);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_encoding', e.message ?? 'Unsupported content encoding or charset', [
        { where: 'Content-Type', problem: 'unsupported encoding or charset', expected: 'identity, gzip or deflate; charset utf-8' },
      ]);
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
    case 'entity.verify.failed':
      return new ApiError(400, 'bad_request', e.message ?? 'Bad request');
  }
  if (status !== undefined && status >= 400 && status < 500 && e.expose !== false) {
    return new ApiError(status, 'bad_request', e.message ?? 'Bad request');
  }
  return undefined;
}
