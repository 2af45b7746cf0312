/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) for every request: the
 * caller's `traceparent` is continued when it is valid, otherwise a new trace starts.
 * Each request is one span of ours: its trace id and span id go on the request's log
 * lines, and the response carries them in `traceresponse` (Trace Context Level 2), so a
 * caller can find our lines for its call. The API makes no outgoing calls for a request,
 * so there is nothing further to propagate to.
 *
 * Cheap on purpose: a header check, a slice, ids cut from a pooled pseudo-random buffer (api/random-ids.ts); no
 * span objects unless OTLP export is on (api/otlp.ts).
 */
import { randomHex } from './random-ids';

export interface TraceContext {
  /** 32 lowercase hex digits, never all zero. */
  readonly traceId: string;
  /** Our span: 16 lowercase hex digits. */
  readonly spanId: string;
  /** The caller's span, when the request came with a valid traceparent. */
  readonly parentSpanId: string | undefined;
  /** The trace flags (bit 0: sampled), two hex digits. */
  readonly flags: string;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/**
 * The parts of a valid `traceparent`, or undefined. Version 00 is exactly 55 characters;
 * a later version (not ff) may append fields after a dash, whose first four fields are
 * read as version 00's (the specification's forward compatibility). Uppercase hex,
 * all-zero ids, version ff and repeated headers (Node joins them with a comma) are invalid.
 */
export function parseTraceparent(header: string | string[] | undefined): { traceId: string; parentSpanId: string; flags: string } | undefined {
  if (typeof header !== 'string' || header.length < 55) return undefined;
  const h = header.trim();
  if (h.length < 55 || h[2] !== '-' || h[35] !== '-' || h[52] !== '-') return undefined;
  const version = h.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return undefined;
  if (version === '00' ? h.length !== 55 : h.length > 55 && h[55] !== '-') return undefined;
  const traceId = h.slice(3, 35);
  const parentSpanId = h.slice(36, 52);
  const flags = h.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentSpanId) || !HEX.test(flags)) return undefined;
  if (traceId === ZERO_TRACE || parentSpanId === ZERO_SPAN) return undefined;
  return { traceId, parentSpanId, flags };
}

function newTraceId(): string {
  let id = randomHex(16);
  while (id === ZERO_TRACE) id = randomHex(16);
  return id;
}

function newSpanId(): string {
  let id = randomHex(8);
  while (id === ZERO_SPAN) id = randomHex(8);
  return id;
}

/**
 * The request's trace: the caller's continued, or a new one. A new trace is marked
 * sampled when `sampleNew` (OTLP export on records it), otherwise not.
 */
export function traceFor(header: string | string[] | undefined, sampleNew: boolean): TraceContext {
  const parent = parseTraceparent(header);
  if (parent) return { traceId: parent.traceId, spanId: newSpanId(), parentSpanId: parent.parentSpanId, flags: parent.flags };
  return { traceId: newTraceId(), spanId: newSpanId(), parentSpanId: undefined, flags: sampleNew ? '01' : '00' };
}

/** The `traceresponse` value: version 00, the trace, our span, the flags. */
export function traceresponse(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}

export function isSampled(t: TraceContext): boolean {
  return (parseInt(t.flags, 16) & 1) === 1;
}
