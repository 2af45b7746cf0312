/**
 * Loading a forest file for scoring: bytes → validated, decoded, packed → a
 * CompiledForest, without building the document's per-node JavaScript arrays.
 *
 * loadForest does it in the calling thread (the CLI). loadForestInWorker does it in a
 * worker thread, so a server keeps answering requests while a new version loads: the
 * worker parses and packs, then transfers the packed typed arrays (no copy), and the
 * calling thread only wraps them (the feature maps of RowEncoder: microseconds). The
 * parse's garbage dies with the worker instead of lingering in the server's heap.
 */
import { UserError } from '../etl/errors';
import { ForestFormatError } from './forest-error';
import { parseForestFlat, type ForestSummary, type ParseForestOptions } from './forest-file';
import { CompiledForest, type CompileOptions } from './walker';
import { packForest, type PackedForest } from './walker/layout';
import { startWorker } from './worker-thread';

export interface LoadedForest {
  /** The document without its trees. */
  readonly summary: ForestSummary;
  readonly forest: CompiledForest;
  /** Milliseconds: parse (JSON, schema, digest, decode) and pack, where they ran; adopt on the calling thread. */
  readonly phasesMs: { readonly parse: number; readonly pack: number; readonly adopt: number };
}

/** What the worker sends back. */
export type LoaderReply =
  | { readonly ok: true; readonly summary: ForestSummary; readonly packed: PackedForest; readonly parseMs: number; readonly packMs: number }
  | { readonly ok: false; readonly error: { readonly message: string; readonly kind: 'format' | 'user' | 'internal'; readonly source?: string; readonly fieldPath?: string; readonly problem?: string; readonly exitCode?: number } };

export interface LoaderRequest {
  readonly bytes: Uint8Array;
  readonly source: string;
  readonly options: ParseForestOptions;
}

function msSince(t: bigint): number {
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Parses and packs (in whatever thread runs it). */
export function parseAndPack(bytes: Uint8Array, source: string, options: ParseForestOptions): { summary: ForestSummary; packed: PackedForest; parseMs: number; packMs: number } {
  const t0 = process.hrtime.bigint();
  const { summary, flat } = parseForestFlat(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), source, options);
  const parseMs = msSince(t0);
  const t1 = process.hrtime.bigint();
  const packed = packForest(flat, summary.aggregation);
  return { summary, packed, parseMs, packMs: msSince(t1) };
}

/** Loads a forest in the calling thread. Errors as parseForest's (ForestFormatError). */
export function loadForest(bytes: Uint8Array, source: string, options: ParseForestOptions = {}, compile: CompileOptions = {}): LoadedForest {
  const { summary, packed, parseMs, packMs } = parseAndPack(bytes, source, options);
  const t = process.hrtime.bigint();
  const forest = CompiledForest.fromPacked(summary, packed, compile);
  return { summary, forest, phasesMs: { parse: parseMs, pack: packMs, adopt: msSince(t) } };
}

/**
 * Loads a forest in a worker thread (one per load: loads are rare, and the worker's
 * memory is returned when it exits). Resolves like loadForest; a bad file rejects with
 * the same ForestFormatError (or UserError) it would raise in this thread.
 */
export function loadForestInWorker(bytes: Uint8Array, source: string, options: ParseForestOptions = {}, compile: CompileOptions = {}): Promise<LoadedForest> {
  // The worker gets its own copy of the bytes, moved rather than cloned.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const request: LoaderRequest = { bytes: copy, source, options };
  return new Promise<LoadedForest>((resolve, reject) => {
    const worker = startWorker(__filename, 'forest-loader-worker');
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.once('message', (reply: LoaderReply) => {
      finish(() => {
        if (!reply.ok) {
          reject(errorOf(reply.error));
          return;
        }
        const t = process.hrtime.bigint();
        const forest = CompiledForest.fromPacked(reply.summary, reply.packed, compile);
        resolve({ summary: reply.summary, forest, phasesMs: { parse: reply.parseMs, pack: reply.packMs, adopt: msSince(t) } });
      });
    });
    worker.once('error', (err) => finish(() => reject(new Error(`loading ${source} failed in its worker thread: ${err.message}`, { cause: err }))));
    worker.once('exit', (code) => finish(() => reject(new Error(`the worker loading ${source} exited (code ${code}) before answering`))));
    worker.postMessage(request, [copy.buffer]);
  });
}

function errorOf(e: Extract<LoaderReply, { ok: false }>['error']): Error {
  if (e.kind === 'format') return new ForestFormatError(e.source ?? '', e.fieldPath ?? '', e.problem ?? '');
  if (e.kind === 'user') return new UserError(e.message, e.exitCode);
  return new Error(e.message);
}

/** The reply for an error raised while loading (used by the worker). */
export function replyForError(err: unknown): LoaderReply {
  if (err instanceof ForestFormatError) return { ok: false, error: { kind: 'format', message: err.message, source: err.source, fieldPath: err.fieldPath, problem: err.problem } };
  if (err instanceof UserError) return { ok: false, error: { kind: 'user', message: err.message, exitCode: err.exitCode } };
  return { ok: false, error: { kind: 'internal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } };
}

