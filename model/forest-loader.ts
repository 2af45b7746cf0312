/**
 * Loading a forest file for scoring: bytes → validated, decoded, packed → a
 * CompiledForest, without building the document's per-node JavaScript arrays.
 *
 * loadForest does it in the calling thread (the CLI). loadForestInWorker does it in a
 * worker thread, so a server keeps answering requests while a new version loads: the
 * worker parses and packs, then transfers the packed typed arrays (no copy), and the
 * calling thread receives the header (a structured clone) and wraps the arrays (the
 * feature maps of RowEncoder). The parse's garbage dies with the worker instead of
 * lingering in the server's heap.
 *
 * Everything proportional to the trees happens in the worker: the artifact's
 * SHA-256 and unpacking (openArtifact) when given a registry artifact, and the bytes
 * reach it by transfer, not copy, when the caller hands over a buffer of its own. A
 * worker that runs past its deadline or its heap limit is terminated and the load
 * rejects: a hung or oversized load costs the server nothing but the failed version.
 * What the serving thread does is proportional to the header (category names, the drift
 * baseline), which FOREST_LIMITS.headerValues bounds: ~0.3 s at the limit, microseconds
 * for a trained forest (docs/model-format.md, "Limits").
 */
import { readFileSync } from 'node:fs';
import { isArrayBuffer } from 'node:util/types';
import { configuredSetting } from '../core/config';
import type { ErrorKind } from '../core/error-kinds';
import { checkTimerMs } from '../core/durations';
import { UserError } from '../core/errors';
import { ForestFormatError } from './forest-error';
import { parseForestFlat, type ForestSummary, type ParseForestOptions } from './forest-file';
import { InvalidArtifactError, openArtifact } from './registry/common';
import { MAX_ARTIFACT_BYTES } from './sagemaker/tar';
import type { StoredArtifact } from './registry/types';
import { CompiledForest, type CompileOptions } from './walker';
import { packForest, type PackBudget, type PackedForest } from './walker/layout';
import { nodeCount, type FlatForest } from './forest-flat';
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
  | { readonly ok: false; readonly error: { readonly message: string; readonly kind: 'format' | 'artifact' | 'user' | 'internal'; readonly source?: string; readonly fieldPath?: string; readonly problem?: string; readonly errorKind?: ErrorKind } };

export interface LoaderRequest {
  readonly bytes: Uint8Array;
  readonly source: string;
  readonly options: ParseForestOptions;
  /** Set when `bytes` are a registry artifact: verified against this digest and unpacked first. */
  readonly artifact?: { readonly sha256: string; readonly source: string };
  /** The load's memory budget, MiB (checkLoadMemory). */
  readonly memoryMb?: number;
}

/** How a worker load is bounded. */
export interface WorkerLoadLimits {
  /** Milliseconds before the worker is terminated and the load rejects (default: loadTimeoutMs of the artifact's size). */
  readonly timeoutMs?: number;
  /** The memory a load may take, MiB (default: loaderMemoryMb()); see checkLoadMemory. */
  readonly memoryMb?: number;
}

/** A large artifact gets longer: 5 MB/s is far below any load measured, even on a loaded 2-core host. */
export function loadTimeoutMs(bytes: number): number {
  return 30_000 + Math.ceil(bytes / 5e6) * 1000;
}

/**
 * The memory one load may take: half the container's memory limit (cgroup v2, else v1),
 * 2 GiB without one; PRICESENSE_LOADER_MEMORY_MB overrides. The other half is the
 * serving heap and the model already served.
 */
export function loaderMemoryMb(env: NodeJS.ProcessEnv = process.env): number {
  const given = configuredSetting('loaderMemoryMb', undefined, env);
  if (given !== undefined) return given;
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    const bytes = Number(text);
    // "max", or v1's "no limit" (a page-rounded 2^63): unlimited.
    if (Number.isFinite(bytes) && bytes > 0 && bytes < 2 ** 50) return Math.max(64, Math.floor(bytes / 2 ** 21));
  }
  return 2048;
}

/**
 * Parsing a JSON document takes up to about this many times its size at the peak (a
 * format v1 file's number arrays: measured 292 MiB for 29 MB; v2's base64 far less).
 */
export const PARSE_MEMORY_FACTOR = 10;

/** The largest forest document a load budget of memoryMb parses (checkLoadMemory): also the most an artifact for it may be. */
export function maxDocumentBytes(memoryMb: number): number {
  return Math.floor((memoryMb * 2 ** 20) / PARSE_MEMORY_FACTOR);
}

/**
 * Refuses, before anything is parsed, a document the load budget cannot hold. This is the
 * memory bound that holds: a worker's V8 heap limit is only a backstop, since an
 * allocation inside JSON.parse that crosses it can abort the whole process (nodejs/node#47224)
 * rather than just the worker, and the packed forest's ArrayBuffers are outside the heap
 * (their size is bounded by FOREST_LIMITS.nodeClassCells, checked before allocating).
 */
export function checkLoadMemory(source: string, bytes: number, memoryMb: number): void {
  const needMb = (bytes * PARSE_MEMORY_FACTOR) / 2 ** 20;
  if (needMb <= memoryMb) return;
  throw new UserError(
    `${source}: a ${(bytes / 1e6).toFixed(1)} MB forest document needs about ${needMb.toFixed(0)} MiB to load, more than this service's load budget of ${memoryMb} MiB ` +
      '(half the container memory limit, or PRICESENSE_LOADER_MEMORY_MB). A format v1 file is about 4–12× its v2 form: convert it with `pricesense model upgrade` and register that, or give the service more memory.',
  );
}

/** Bytes of the parsed forest's arrays: alive while it is packed. */
function flatBytes(flat: FlatForest): number {
  const d = flat.distributions;
  let bytes = flat.treeSizes.byteLength + flat.split.byteLength + flat.defaultLeft.byteLength + flat.splitIndex.byteLength + flat.depths.byteLength;
  bytes += d.kind === 'counts' ? d.leafCounts.byteLength : d.value.byteLength + d.count.byteLength;
  for (const t of flat.thresholds) bytes += t.byteLength;
  for (const w of flat.subsets) bytes += w.byteLength;
  return bytes;
}

/**
 * Refuses, before each stage of packing allocates, a forest whose packing the load budget
 * cannot hold: the parsed arrays, what the parse still holds (`heldBytes`: the document, its
 * decoded buffers, an archive), and what the stage
 * will hold at once (PackBudget, model/walker/layout.ts). The document check
 * (checkLoadMemory) bounds the parse by the document's size, but a compact format v2
 * document holds a node in about 5 bytes while packing takes some 50 bytes a node (3
 * classes) in ArrayBuffers outside the worker's heap limit: a document within the budget
 * can describe a forest whose packing takes several times it, which in a container is an
 * out-of-memory kill of the whole process rather than a refused load.
 */
export function checkPackMemory(source: string, flat: FlatForest, heldBytes: number, memoryMb: number): PackBudget {
  const fixed = flatBytes(flat) + heldBytes;
  return (stageBytes) => {
    const needMb = (fixed + stageBytes) / 2 ** 20;
    if (needMb <= memoryMb) return;
    throw new UserError(
      `${source}: a forest of ${nodeCount(flat).toLocaleString('en-US')} nodes and ${flat.classes} classes needs about ${needMb.toFixed(0)} MiB to pack for scoring, more than this service's load budget of ${memoryMb} MiB ` +
        '(half the container memory limit, or PRICESENSE_LOADER_MEMORY_MB). Give the service more memory, or train a smaller forest (fewer trees, a lower maximum depth).',
    );
  };
}

function msSince(t: bigint): number {
  return Number(process.hrtime.bigint() - t) / 1e6;
}

type ParsedAndPacked = { summary: ForestSummary; packed: PackedForest; parseMs: number; packMs: number };

/** Parses and packs a forest document (in whatever thread runs it); parseMs counts from t0. */
function parseAndPackJson(json: Buffer, source: string, options: ParseForestOptions, memoryMb: number | undefined, heldBytes: number, t0: bigint): ParsedAndPacked {
  if (memoryMb !== undefined) checkLoadMemory(source, json.byteLength, memoryMb);
  const { summary, flat } = parseForestFlat(json, source, options);
  const parseMs = msSince(t0);
  const t1 = process.hrtime.bigint();
  const packed = packForest(flat, summary.aggregation, memoryMb === undefined ? undefined : checkPackMemory(source, flat, heldBytes, memoryMb));
  return { summary, packed, parseMs, packMs: msSince(t1) };
}

/**
 * Verifies and unpacks the artifact if it is one (asynchronously: a model.tar.gz is
 * streamed, see openArtifact), then parses and packs; parseMs includes the artifact's
 * digest and unpacking.
 */
export async function parseAndPack(bytes: Uint8Array, source: string, options: ParseForestOptions, request: Pick<LoaderRequest, 'artifact' | 'memoryMb'> = {}): Promise<ParsedAndPacked> {
  const t0 = process.hrtime.bigint();
  let json = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { artifact, memoryMb } = request;
  // With a budget, an archive inflates no further than the largest document the budget parses (a bomb of whitespace stops there).
  const budgeted = memoryMb === undefined ? MAX_ARTIFACT_BYTES : Math.min(MAX_ARTIFACT_BYTES, maxDocumentBytes(memoryMb));
  const limits = budgeted === MAX_ARTIFACT_BYTES ? {} : { maxBytes: budgeted, maxBytesName: `the largest forest document this service's load budget of ${memoryMb} MiB parses` };
  if (artifact) json = await openArtifact({ bytes: json, sha256: artifact.sha256, source: artifact.source }, limits);
  // Held while the forest is packed: the document, the buffers its parse decoded (base64
  // arrays: at most its size; garbage, maybe not collected) and an archive's bytes (the
  // request holds them).
  const heldBytes = 2 * json.byteLength + (json.buffer === bytes.buffer ? 0 : bytes.byteLength);
  return parseAndPackJson(json, source, options, memoryMb, heldBytes, t0);
}

/** Loads a forest document (JSON bytes, not an archive: see openArtifact) in the calling thread. Errors as parseForest's (ForestFormatError). */
export function loadForest(bytes: Uint8Array, source: string, options: ParseForestOptions = {}, compile: CompileOptions = {}): LoadedForest {
  const { summary, packed, parseMs, packMs } = parseAndPackJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), source, options, undefined, 0, process.hrtime.bigint());
  const t = process.hrtime.bigint();
  const forest = CompiledForest.fromPacked(summary, packed, compile);
  return { summary, forest, phasesMs: { parse: parseMs, pack: packMs, adopt: msSince(t) } };
}

/** The loader worker was stopped (deadline, heap limit) or died: says nothing certain about the artifact. */
export class WorkerLoadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WorkerLoadError';
  }
}

/** What loadForestInWorker loads: a forest file's bytes, or a registry artifact (verified and unpacked in the worker). */
export type WorkerLoadInput = { readonly bytes: Uint8Array } | { readonly artifact: StoredArtifact };

/**
 * Loads a forest in a worker thread (one per load: loads are rare, and the worker's
 * memory is returned when it exits). Resolves like loadForest; a bad file rejects with
 * the same ForestFormatError (or UserError, InvalidArtifactError) it would raise in this
 * thread; a worker past its deadline or heap limit, or one that dies, rejects with an Error
 * saying so. A registry artifact's buffer is transferred to the worker (the caller's
 * Buffer is detached: StoredArtifact.bytes is the caller's own); plain bytes are copied.
 */
export function loadForestInWorker(input: WorkerLoadInput, source: string, options: ParseForestOptions = {}, compile: CompileOptions = {}, limits: WorkerLoadLimits = {}): Promise<LoadedForest> {
  // Rejected, as every other failure here; before the input is copied.
  if (limits.timeoutMs !== undefined) {
    try {
      checkTimerMs('WorkerLoadLimits timeoutMs', limits.timeoutMs);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
  const memoryMb = limits.memoryMb ?? loaderMemoryMb();
  let request: LoaderRequest;
  let transfer: ArrayBuffer;
  if ('artifact' in input) {
    const { bytes, sha256 } = input.artifact;
    // isArrayBuffer, not instanceof: a buffer made in another realm (a vm context, a test runner's sandbox) is still transferable.
    const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && isArrayBuffer(bytes.buffer);
    const sent = owned ? bytes : new Uint8Array(bytes);
    request = { bytes: sent, source, options, artifact: { sha256, source: input.artifact.source }, memoryMb };
    transfer = sent.buffer as ArrayBuffer;
  } else {
    const copy = new Uint8Array(input.bytes);
    request = { bytes: copy, source, options, memoryMb };
    transfer = copy.buffer;
  }
  const byteLength = request.bytes.byteLength;
  const timeoutMs = limits.timeoutMs ?? loadTimeoutMs(byteLength);
  // The heap limit is a backstop above the checked budget (see checkLoadMemory).
  const maxHeapMb = 2 * memoryMb + 64;
  return new Promise<LoadedForest>((resolve, reject) => {
    const worker = startWorker(__filename, 'forest-loader-worker', { resourceLimits: { maxOldGenerationSizeMb: maxHeapMb } });
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      fn();
      void worker.terminate();
    };
    const deadline = setTimeout(
      () => finish(() => reject(new WorkerLoadError(`loading ${source} took longer than ${timeoutMs} ms; its worker thread was stopped (a ${(byteLength / 1e6).toFixed(1)} MB artifact)`))),
      timeoutMs,
    );
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
    worker.once('error', (err: Error & { code?: string }) => {
      const why = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `needed more than its ${maxHeapMb} MiB heap (twice the load budget, PRICESENSE_LOADER_MEMORY_MB)` : `failed: ${err.message}`;
      finish(() => reject(new WorkerLoadError(`loading ${source} in its worker thread ${why}`, { cause: err })));
    });
    // A reply this thread cannot deserialize is the file's doing, not the host's: refused, and so remembered.
    worker.once('messageerror', (err: Error) => finish(() => reject(new UserError(`${source}: the loaded forest could not be received from its worker thread (${err.message}); the file's header is too large or too deeply nested`))));
    worker.once('exit', (code) => finish(() => reject(new WorkerLoadError(`the worker loading ${source} exited (code ${code}) before answering`))));
    worker.postMessage(request, [transfer]);
  });
}

function errorOf(e: Extract<LoaderReply, { ok: false }>['error']): Error {
  if (e.kind === 'format') return new ForestFormatError(e.source ?? '', e.fieldPath ?? '', e.problem ?? '');
  if (e.kind === 'artifact') return new InvalidArtifactError(e.message);
  if (e.kind === 'user') return new UserError(e.message, e.errorKind);
  return new Error(e.message);
}

/** The reply for an error raised while loading (used by the worker). */
export function replyForError(err: unknown): LoaderReply {
  if (err instanceof ForestFormatError) return { ok: false, error: { kind: 'format', message: err.message, source: err.source, fieldPath: err.fieldPath, problem: err.problem } };
  if (err instanceof InvalidArtifactError) return { ok: false, error: { kind: 'artifact', message: err.message } };
  if (err instanceof UserError) return { ok: false, error: { kind: 'user', message: err.message, errorKind: err.kind } };
  return { ok: false, error: { kind: 'internal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } };
}

