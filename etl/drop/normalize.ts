/**
 * The byte-level pass every CSV of a drop goes through before DuckDB parses it: one
 * streaming read that hashes the content, finds the header line, and makes the bytes
 * DuckDB sees uniform — LF line endings (CRLF, CR and mixtures are all line breaks), no
 * byte-order mark, valid UTF-8 — so that DuckDB's strict CSV reader never meets a
 * line ending or an encoding it would stop on, and its line numbers stay the file's.
 *
 * Lines that cannot be made uniform are taken out here (left blank, which DuckDB skips,
 * so line numbers do not move) and reported as rejects with their line number: bytes that are not UTF-8, NUL bytes, and an odd number of double
 * quotes (no dunnhumby field holds a line break, so an unbalanced quote can only be a
 * broken line, and left in it would swallow the lines after it).
 *
 * A file that needs none of this (the common case) is only scanned, never copied:
 * `scan` reports `clean` and DuckDB reads the original.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { once } from 'node:events';

const LF = 10;
const CR = 13;
const QUOTE = 34;
const NUL = 0;
const FINAL_LF = Buffer.from([LF]);
/** A header line longer than this is not a CSV header. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Past this share of NUL bytes at its start, a file is binary (not a text file with a damaged line). */
const MAX_NUL_SHARE = 0.01;
/** Only so much of a rejected line is kept as its raw text. */
const MAX_REJECT_TEXT = 4096;
/** Lines rewritten one by one are gathered into a buffer of this size before they go to the output stream. */
const OUT_BUFFER_BYTES = 1 << 20;

export type FileProblem =
  | { readonly kind: 'empty' }
  | { readonly kind: 'binary'; readonly detail: string }
  | { readonly kind: 'utf16' }
  | { readonly kind: 'no-header' }
  | { readonly kind: 'too-large'; readonly limit: number };

export interface RemovedLine {
  /** 1-based line number in the file, the header being line 1. */
  readonly line: number;
  readonly reason: string;
  /** The line as text; bytes that are not UTF-8 appear as \xNN. */
  readonly raw: string;
}

export interface NormalizeResult {
  /** SHA-256 of the bytes read (the file, or the decompressed member). */
  readonly sha256: string;
  /**
   * SHA-256 of the text DuckDB reads: no byte-order mark, every line break (CRLF, CR) an LF,
   * a final LF — and a removed line's own bytes where the uniform copy leaves it blank. Equal
   * for copies of a file that differ only in line endings, a BOM or compression. Computed
   * from the bytes this pass writes (no second read); for a clean file it is `sha256` itself
   * (plus the final LF when the file lacks one). Meaningless (set to `sha256`) for a file with
   * a problem, a refused header, or a scan that stopped at something to change.
   */
  readonly textSha256: string;
  readonly bytes: number;
  /** The header line (without BOM and line ending), or null when there is none. */
  readonly header: string | null;
  /** Lines after the header, blank lines not counted. */
  readonly dataLines: number;
  /** Nothing to change: DuckDB may read the source as it is. */
  readonly clean: boolean;
  readonly lineEndings: { readonly lf: number; readonly crlf: number; readonly cr: number };
  readonly bom: boolean;
  /** Lines taken out, in order (they are not in the output). */
  readonly removed: RemovedLine[];
  readonly problem?: FileProblem;
}

export interface NormalizeOptions {
  /** Write the uniform bytes here (omit to only scan). */
  readonly output?: string;
  /** Stop with a 'too-large' problem past this many bytes read. */
  readonly maxBytes?: number;
  /** Judge the header line as soon as it is read: false stops writing the output (lines are still counted). */
  readonly acceptHeader?: (header: string) => boolean;
}

/**
 * Read a stream of CSV bytes once. Without output, stops at the first byte that would need
 * changing (clean: false) — the caller then runs it again with an output.
 */
export async function normalizeCsv(input: AsyncIterable<Buffer>, options: NormalizeOptions = {}): Promise<NormalizeResult> {
  const n = new Normalizer(options.output ? createWriteStream(options.output) : undefined, options.maxBytes ?? Infinity, options.acceptHeader);
  try {
    for await (const chunk of input) {
      if (n.draining) {
        // A file found unusable is still hashed to its end, so that its content hash is its own.
        if (!n.drain(chunk)) break;
      } else if (!(await n.push(chunk)) && !n.draining) break;
    }
    return await n.end();
  } catch (err) {
    await n.abort();
    // How far the read got (a truncated .csv.gz fails near its end): the caller counts those lines as lost.
    throw Object.assign(err as Error, { partial: { bytes: n.bytesRead, dataLines: n.dataLinesRead } satisfies PartialRead });
  }
}

/**
 * A local file's bytes in chunks of one reused buffer: each chunk is valid only until the
 * next is requested. For normalizeCsv's scan (no output), which keeps no chunk — a stream
 * allocates a fresh buffer per chunk, which cost more CPU than hashing the bytes.
 */
export async function* scanChunks(file: string, size = 4 << 20): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, size, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** Attached to an error thrown while reading (as `partial`): what was read before it. */
export interface PartialRead {
  readonly bytes: number;
  readonly dataLines: number;
}

export function partialReadOf(err: unknown): PartialRead {
  const p = (err as { partial?: PartialRead } | null)?.partial;
  return p ?? { bytes: 0, dataLines: 0 };
}

class Normalizer {
  private readonly hash = createHash('sha256');
  /** The uniform text's digest (see NormalizeResult.textSha256), fed from what goes to the output, one update per buffer. */
  private readonly textHash = createHash('sha256');
  /** Bytes of outBuf already in textHash. */
  private outHashed = 0;
  private lastByte = -1;
  private bytes = 0;
  private carry: Buffer | null = null;
  private first = true;
  private header: string | null = null;
  private headerDone = false;
  private line = 0; // lines completed so far
  private dataLines = 0;
  private clean = true;
  private bom = false;
  private readonly endings = { lf: 0, crlf: 0, cr: 0 };
  private readonly removed: RemovedLine[] = [];
  private problem: FileProblem | undefined;
  private stopped = false;

  /** The header was refused: the output is not needed any more. */
  private discard = false;
  /**
   * Rewritten lines waiting for the output: a stream write per line (two, with its LF) cost
   * more CPU than the rest of the byte pass on a CRLF file. A fresh buffer after each flush,
   * since the stream keeps the flushed one until it is written.
   */
  private outBuf: Buffer | null = null;
  private outLen = 0;

  constructor(
    private readonly out: WriteStream | undefined,
    private readonly maxBytes: number,
    private readonly acceptHeader?: (header: string) => boolean,
  ) {}

  get bytesRead(): number {
    return this.bytes;
  }

  get dataLinesRead(): number {
    return this.dataLines;
  }

  /** The content is unusable (a problem other than the size cap), but the rest is still hashed. */
  get draining(): boolean {
    return this.problem !== undefined && this.problem.kind !== 'too-large';
  }

  /** Hash a chunk of an unusable file; false past the size cap (the hash then covers the first maxBytes). */
  drain(chunk: Buffer): boolean {
    if (this.bytes + chunk.length > this.maxBytes) return false;
    this.bytes += chunk.length;
    this.hash.update(chunk);
    return true;
  }

  /** false: stop reading (a problem was found, or a scan found something to change). */
  async push(chunk: Buffer): Promise<boolean> {
    if (this.stopped) return false;
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.problem = { kind: 'too-large', limit: this.maxBytes };
      this.stopped = true;
      return false;
    }
    this.hash.update(chunk);
    if (chunk.length > 0) this.lastByte = chunk[chunk.length - 1];
    let buf = chunk;
    if (this.first) {
      buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
      this.carry = null;
      if (buf.length < 4 && chunk.length > 0) {
        this.carry = Buffer.from(buf); // too little to judge the start yet (and the chunk's memory may be reused)
        return true;
      }
      this.first = false;
      buf = this.start(buf);
      if (this.stopped) return false;
    } else if (this.carry) {
      // The line left over from the last chunk, completed by this chunk's first line break: only
      // that line is copied, not the whole chunk (a full copy per chunk cost as much as the hash).
      const brk = firstBreak(chunk);
      // A CR at the end of the chunk may be the first half of a CRLF: keep carrying.
      if (brk < 0 || (chunk[brk] === CR && brk === chunk.length - 1)) {
        this.carry = Buffer.concat([this.carry, chunk]);
        return true;
      }
      const cut = brk + (chunk[brk] === CR && chunk[brk + 1] === LF ? 2 : 1);
      const head = Buffer.concat([this.carry, chunk.subarray(0, cut)]);
      this.carry = null;
      await this.lines(head);
      if (this.stopped) return false;
      buf = chunk.subarray(cut);
    }
    // Complete lines only; a trailing CR may be the first half of a CRLF.
    let end = lastBreak(buf);
    if (end > 0 && buf[end - 1] === CR && end === buf.length) end = lastBreak(buf.subarray(0, end - 1));
    this.carry = end < buf.length ? Buffer.from(buf.subarray(end)) : null;
    if (end > 0) await this.lines(buf.subarray(0, end));
    return !this.stopped;
  }

  async end(): Promise<NormalizeResult> {
    if (!this.stopped) {
      if (this.first && this.carry) {
        this.first = false;
        this.carry = this.start(this.carry);
      }
      if (this.carry && this.carry.length > 0 && !this.stopped) {
        await this.lines(Buffer.concat([this.carry, Buffer.from([LF])]));
      }
      this.carry = null;
    }
    if (this.out) {
      await this.flush();
      this.out.end();
      await once(this.out, 'close');
    }
    const scanStopped = !this.out && !this.clean;
    if (!this.problem && this.header === null && !scanStopped) this.problem = { kind: 'empty' };
    let textSha256: string | undefined;
    if (!this.problem && this.out && !this.discard) textSha256 = this.textHash.digest('hex');
    else if (!this.problem && this.clean && this.removed.length === 0 && this.lastByte !== LF) textSha256 = this.hash.copy().update(FINAL_LF).digest('hex');
    const sha256 = this.hash.digest('hex');
    return {
      sha256,
      // A clean file ending in LF is its own uniform text.
      textSha256: textSha256 ?? sha256,
      bytes: this.bytes,
      header: this.header,
      dataLines: this.dataLines,
      clean: this.clean && this.removed.length === 0,
      lineEndings: { ...this.endings },
      bom: this.bom,
      removed: this.removed,
      problem: this.problem,
    };
  }

  async abort(): Promise<void> {
    this.stopped = true;
    if (this.out && !this.out.closed) {
      this.out.destroy();
      await once(this.out, 'close').catch(() => undefined);
    }
  }

  /** The start of the content: byte-order marks and binary content. */
  private start(buf: Buffer): Buffer {
    if ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff)) {
      this.problem = { kind: 'utf16' };
      this.stopped = true;
      return buf;
    }
    // Binary content: a NUL in the first line, or NULs dense at the start. A stray NUL on a
    // later line is a damaged line, rejected on its own (see lineProblem).
    const head = buf.subarray(0, Math.min(buf.length, MAX_HEADER_BYTES));
    const brk = firstBreak(head);
    const firstLine = head.subarray(0, brk >= 0 ? brk : head.length);
    let nuls = 0;
    for (let i = head.indexOf(NUL); i >= 0; i = head.indexOf(NUL, i + 1)) nuls++;
    const nul = head.indexOf(NUL);
    if (firstLine.indexOf(NUL) >= 0 || nuls > head.length * MAX_NUL_SHARE) {
      this.problem = { kind: 'binary', detail: `${nuls} NUL byte(s) in the first ${head.length} bytes, the first at offset ${nul}` };
      this.stopped = true;
      return buf;
    }
    if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
      this.bom = true;
      this.changed();
      return buf.subarray(3);
    }
    return buf;
  }

  private changed(): void {
    this.clean = false;
    if (!this.out) this.stopped = true; // a scan stops here; the caller rewrites the file
  }

  /** Process complete lines (seg ends with a line break). */
  private async lines(seg: Buffer): Promise<void> {
    if (!this.headerDone) {
      const cut = firstBreak(seg);
      if (cut < 0 || cut > MAX_HEADER_BYTES) {
        this.problem = { kind: 'no-header' };
        this.stopped = true;
        return;
      }
      const headerLine = seg.subarray(0, cut);
      if (!isUtf8(headerLine)) {
        this.problem = { kind: 'binary', detail: 'the first line is not UTF-8 text' };
        this.stopped = true;
        return;
      }
      this.header = headerLine.toString('utf8');
      this.headerDone = true;
      if (this.acceptHeader && !this.acceptHeader(this.header)) this.discard = true;
      const after = this.breakLength(seg, cut);
      this.line = 1;
      if (this.stopped) return;
      await this.write(seg.subarray(0, cut), true);
      seg = seg.subarray(cut + after);
      if (seg.length === 0) return;
    }
    // Fast path: only LF breaks, no NUL, no quotes, valid UTF-8 — count lines, copy as is.
    if (seg.indexOf(CR) < 0 && seg.indexOf(NUL) < 0 && seg.indexOf(QUOTE) < 0 && isUtf8(seg)) {
      let count = 0;
      let blank = 0;
      for (let i = seg.indexOf(LF); i >= 0; i = seg.indexOf(LF, i + 1)) {
        count++;
        if (i === 0 || seg[i - 1] === LF) blank++;
      }
      this.endings.lf += count;
      this.line += count;
      this.dataLines += count - blank;
      await this.write(seg, false);
      return;
    }
    // Slow path: line by line. The next LF and the next CR are each looked up again only once
    // passed: a fresh search for both per line scans to the end of the segment for a break kind
    // the file lacks (an LF file with quoted fields, a CR-only file) — quadratic in the chunk size.
    let pos = 0;
    let lf = seg.indexOf(LF);
    let cr = seg.indexOf(CR);
    while (pos < seg.length && !this.stopped) {
      if (lf >= 0 && lf < pos) lf = seg.indexOf(LF, pos);
      if (cr >= 0 && cr < pos) cr = seg.indexOf(CR, pos);
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (end < 0) break;
      const body = seg.subarray(pos, end);
      pos = end + this.breakLength(seg, end);
      this.line++;
      if (body.length === 0) {
        await this.write(body, true);
        continue;
      }
      this.dataLines++;
      const bad = lineProblem(body);
      if (bad) {
        this.removed.push({ line: this.line, reason: bad, raw: escapeRaw(body) });
        this.changed();
        // The text digest keeps the line's own bytes (two copies differing in a removed line are not the same text).
        if (this.out && !this.discard) {
          this.hashPendingText();
          this.textHash.update(body);
        }
        // A blank line in its place: DuckDB skips blank lines, so its line numbers stay the file's.
        await this.write(Buffer.alloc(0), true);
        continue;
      }
      await this.write(body, true);
    }
  }

  /** Length of the line break at seg[i] (1 or 2), counting its kind. */
  private breakLength(seg: Buffer, i: number): number {
    if (seg[i] === LF) {
      this.endings.lf++;
      return 1;
    }
    this.changed();
    if (seg[i + 1] === LF) {
      this.endings.crlf++;
      return 2;
    }
    this.endings.cr++;
    return 1;
  }

  private async write(bytes: Buffer, addLf: boolean): Promise<void> {
    if (!this.out || this.discard) return;
    const need = bytes.length + (addLf ? 1 : 0);
    if (this.outBuf && this.outLen + need > this.outBuf.length) await this.flush();
    if (need > OUT_BUFFER_BYTES) {
      // A whole segment of the fast path (or a very long line): straight to the stream, after what is buffered.
      this.textHash.update(bytes);
      if (addLf) this.textHash.update(FINAL_LF);
      const ok = this.out.write(bytes);
      const ok2 = addLf ? this.out.write('\n') : true;
      if (!ok || !ok2) await once(this.out, 'drain');
      return;
    }
    this.outBuf ??= Buffer.allocUnsafe(OUT_BUFFER_BYTES);
    this.outLen += bytes.copy(this.outBuf, this.outLen);
    if (addLf) this.outBuf[this.outLen++] = LF;
  }

  /** Hash what is buffered for the output and not hashed yet. */
  private hashPendingText(): void {
    if (!this.outBuf || this.outLen === this.outHashed) return;
    this.textHash.update(this.outBuf.subarray(this.outHashed, this.outLen));
    this.outHashed = this.outLen;
  }

  private async flush(): Promise<void> {
    if (!this.out || !this.outBuf || this.outLen === 0) return;
    this.hashPendingText();
    const full = this.outBuf.subarray(0, this.outLen);
    this.outBuf = null;
    this.outLen = 0;
    this.outHashed = 0;
    if (!this.out.write(full)) await once(this.out, 'drain');
  }
}

function lineProblem(body: Buffer): string | undefined {
  const nul = body.indexOf(NUL);
  if (nul >= 0) return `a NUL byte at column ${nul + 1} (binary data in a text file)`;
  if (!isUtf8(body)) return `bytes that are not UTF-8 text at column ${firstInvalidUtf8(body) + 1} (expected UTF-8; re-export the file as UTF-8)`;
  let quotes = 0;
  for (let i = body.indexOf(QUOTE); i >= 0; i = body.indexOf(QUOTE, i + 1)) quotes++;
  if (quotes % 2 === 1) return 'an unbalanced double quote (a quoted field is not closed on this line)';
  return undefined;
}

function firstBreak(seg: Buffer): number {
  const lf = seg.indexOf(LF);
  const cr = seg.indexOf(CR);
  if (lf < 0) return cr;
  if (cr < 0) return lf;
  return Math.min(lf, cr);
}

/** Index just past the last line break in buf, 0 if none. */
function lastBreak(buf: Buffer): number {
  const lf = buf.lastIndexOf(LF);
  const cr = buf.lastIndexOf(CR);
  return Math.max(lf, cr) + 1;
}

/** Byte offset of the first byte where the UTF-8 decoding fails. */
function firstInvalidUtf8(b: Buffer): number {
  let i = 0;
  while (i < b.length) {
    const len = utf8Length(b, i);
    if (len === 0) return i;
    i += len;
  }
  return b.length;
}

/** The line as text, with every byte that is not part of valid UTF-8 written as \xNN. */
export function escapeRaw(body: Buffer): string {
  const b = body.subarray(0, MAX_REJECT_TEXT);
  if (isUtf8(b)) return b.toString('utf8');
  let out = '';
  let i = 0;
  while (i < b.length) {
    const len = utf8Length(b, i);
    if (len > 0) {
      out += b.subarray(i, i + len).toString('utf8');
      i += len;
    } else {
      out += `\\x${b[i].toString(16).padStart(2, '0').toUpperCase()}`;
      i++;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence at b[i], or 0. */
function utf8Length(b: Buffer, i: number): number {
  const c = b[i];
  const len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (len === 0 || i + len > b.length) return 0;
  return isUtf8(b.subarray(i, i + len)) ? len : 0;
}
