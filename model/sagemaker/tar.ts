/**
 * A small tar (ustar) reader and writer for SageMaker model artifacts (model.tar.gz).
 * SageMaker packs /opt/ml/model with GNU tar or Python's tarfile, so the reader accepts
 * what those write: ustar names with a prefix, PAX extended headers (path, size), GNU
 * long names, directory entries and "./" prefixes. Only regular files are returned;
 * links and devices are skipped. The writer emits plain ustar with fixed metadata
 * (mtime 0, mode 0644, root owner), so the same files always give the same bytes.
 *
 * The reader streams (readTarMembers): gunzip as a zlib stream, tar headers parsed over
 * the chunks, only the members asked for held. Artifacts come from a bucket that people
 * and pipelines write to, so it trusts nothing in them: every size is a non-negative
 * integer that fits the cap, every step moves forward, and both the compressed input and
 * the decompressed output stop at MAX_ARTIFACT_BYTES (a gzip bomb of a few MB would
 * otherwise inflate to gigabytes in the serving process).
 *
 * Why not tar-stream (the usual npm parser): it accepts malformed PAX records silently
 * (a record of length 0 or -5 is skipped, one without its newline is read short), reads on
 * past the end-of-archive blocks, releases before 3.1.8 do not check for a negative size, and
 * the releases that do depend on the bare-* runtime packages. The parser below is the
 * one the fuzz test (model/test/artifact-fuzz.test.ts) already holds to strict refusals,
 * made incremental.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { assertByteLimit } from '../../core/bounded-read';
import { UserError } from '../../core/errors';

export interface TarEntry {
  /** Normalized path inside the archive: '/' separators, no leading './' or '/'. */
  readonly name: string;
  readonly data: Buffer;
}

const BLOCK = 512;

/**
 * The most an artifact may decompress to: 16x the largest forest seen so far (a 100-tree
 * depth-16 forest trained on 1M rows is ~50 MB of JSON), and small enough that one
 * refused bomb cannot take a serving pod's memory.
 */
export const MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;

export interface ReadLimits {
  /** Decompressed bytes at most (default MAX_ARTIFACT_BYTES). */
  readonly maxBytes?: number;
  /** How a refusal names maxBytes (default "MAX_ARTIFACT_BYTES"; a load budget's cap says so). */
  readonly maxBytesName?: string;
  /** Compressed (input) bytes at most (default MAX_ARTIFACT_BYTES). */
  readonly maxCompressedBytes?: number;
}
function field(header: Buffer, offset: number, length: number): string {
  const raw = header.subarray(offset, offset + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul >= 0 ? nul : raw.length).toString('utf8');
}

function numeric(header: Buffer, offset: number, length: number, what: string, source: string): number {
  const raw = header.subarray(offset, offset + length);
  if (raw[0] & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as a marker (0xff: negative, never a valid size).
    if (raw[0] === 0xff) throw new UserError(`${source}: tar ${what} is negative (base-256): a corrupt or crafted archive`);
    let n = raw[0] & 0x7f;
    for (let i = 1; i < raw.length; i++) n = n * 256 + raw[i];
    if (!Number.isSafeInteger(n)) throw new UserError(`${source}: tar ${what} is too large`);
    return n;
  }
  const text = raw.toString('ascii').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new UserError(`${source}: tar header ${what} is not an octal number (${JSON.stringify(text)}): not a tar archive, or a corrupt one`);
  return parseInt(text, 8);
}

function checksumOf(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return sum;
}

function normalize(name: string): string {
  return name.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.').join('/');
}

/**
 * PAX extended header records: "<len> <key>=<value>\n", where len counts the whole
 * record. A length that does not fit (zero, negative, past the header, no newline
 * where it says) is refused rather than guessed around.
 */
function parsePax(body: Buffer, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  // Trailing NUL padding is allowed after the last record.
  while (pos < body.length && body[pos] !== 0) {
    const space = body.indexOf(0x20, pos);
    const digits = space < 0 ? '' : body.subarray(pos, space).toString('ascii');
    const len = /^[0-9]{1,10}$/.test(digits) ? Number(digits) : NaN;
    if (!(len > digits.length + 1) || pos + len > body.length || body[pos + len - 1] !== 0x0a) {
      throw new UserError(`${where}: malformed PAX record at byte ${pos} of the extended header (length ${JSON.stringify(digits.slice(0, 20))}): a corrupt or crafted archive`);
    }
    const record = body.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** PAX and GNU long-name bodies are a few hundred bytes; one larger is refused, not buffered. */
export const MAX_META_BYTES = 1024 * 1024;

/** Which members to keep, by normalized name; everything else is skipped without being held. */
export type MemberFilter = (name: string) => boolean;

/**
 * A tar parser fed chunk by chunk: headers are checked as they complete, the bodies of
 * the members `keep` selects are copied into one buffer each (their size is known from
 * the header, so nothing is concatenated twice), every other body is skipped as it
 * passes. It holds one header block, the kept members and at most one PAX or long-name
 * body (MAX_META_BYTES) at a time, whatever the archive's size.
 */
class TarChunkParser {
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** Bytes of the current body still to come, then its padding to the next block. */
  private remaining = 0;
  private padding = 0;
  /** The entry whose body is passing, kept or not (for a truncation message). */
  private current = { label: '', at: 0, size: 0 };
  /** Where its bytes go when it is kept: a member asked for, or a PAX or long-name body. */
  private body: { kind: 'member' | 'pax' | 'long'; name: string; at: number; data: Buffer; filled: number } | undefined;
  private pax: Record<string, string> = {};
  private longName: string | undefined;
  private ended = false;
  /** Bytes of tar consumed so far: where the next header starts, for messages. */
  private pos = 0;
  readonly entries: TarEntry[] = [];

  constructor(
    private readonly source: string,
    private readonly keep: MemberFilter,
    private readonly maxBytes: number,
    private readonly maxBytesName: string,
  ) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - off);
        if (this.body) this.body.filled += chunk.copy(this.body.data, this.body.filled, off, off + n);
        off += n;
        this.pos += n;
        this.remaining -= n;
        if (this.remaining === 0) this.finishBody();
      } else if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - off);
        off += n;
        this.pos += n;
        this.padding -= n;
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - off);
        chunk.copy(this.header, this.headerFill, off, off + n);
        off += n;
        this.headerFill += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.pos += BLOCK;
          this.onHeader(this.pos - BLOCK);
        }
      }
    }
  }

  /** The kept members, once the input has ended; a truncated archive is refused, saying where. */
  end(): TarEntry[] {
    if (this.ended) return this.entries;
    const { label, at, size } = this.current;
    const what =
      this.remaining > 0
        ? `${label} at byte ${at} declares ${size} bytes but only ${size - this.remaining} follow`
        : this.headerFill > 0
          ? `the tar header at byte ${this.pos} is cut after ${this.headerFill} of its 512 bytes`
          : `the archive ends at byte ${this.pos} without its end-of-archive blocks`;
    throw new UserError(`${this.source}: truncated tar archive: ${what}; expected a complete model.tar.gz (re-upload the artifact, or re-run the step that wrote it)`);
  }

  private onHeader(at: number): void {
    const header = this.header;
    const source = this.source;
    if (header.every((b) => b === 0)) {
      // End-of-archive marker: what follows (the second zero block, record padding) is not read.
      this.ended = true;
      return;
    }
    const stored = numeric(header, 148, 8, 'checksum', source);
    if (stored !== checksumOf(header)) throw new UserError(`${source}: tar header at byte ${at} has a bad checksum: not a tar archive, or a corrupt one`);
    let size = numeric(header, 124, 12, 'size', source);
    if (this.pax.size !== undefined) {
      // A PAX size overrides the header's; it must be a plain non-negative integer (a negative one would move a reader backwards forever).
      if (!/^[0-9]{1,16}$/.test(this.pax.size)) throw new UserError(`${source}: tar entry at byte ${at} has PAX size ${JSON.stringify(this.pax.size.slice(0, 30))}: expected a non-negative integer (a corrupt or crafted archive)`);
      size = Number(this.pax.size);
    }
    const type = String.fromCharCode(header[156] || 0x30);
    // Refused from the header alone: a member larger than what the whole archive may decompress to is never read, let alone held.
    if (size > this.maxBytes - this.pos) {
      throw new UserError(`${source}: tar entry at byte ${at} declares ${size} bytes, more than the ${this.maxBytes} bytes (${this.maxBytesName}) an artifact may decompress to: a corrupt or crafted archive, or not a model artifact`);
    }
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'x' || type === 'L') {
      const label = type === 'x' ? 'a PAX header' : 'a GNU long-name header';
      if (size > MAX_META_BYTES) throw new UserError(`${source}: ${label} at byte ${at} is ${size} bytes, more than ${MAX_META_BYTES} (MAX_META_BYTES): a corrupt or crafted archive`);
      this.current = { label, at, size };
      this.startBody(type === 'x' ? 'pax' : 'long', '', at, size);
      return;
    }
    if (type === 'g' || type === 'K') {
      // Global PAX records and GNU long link names: nothing a member's name or size depends on.
      this.current = { label: 'an extended header', at, size };
      return;
    }
    const magic = field(header, 257, 6);
    const prefix = magic.startsWith('ustar') ? field(header, 345, 155) : '';
    const baseName = field(header, 0, 100);
    const name = normalize(this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${baseName}` : baseName));
    this.pax = {};
    this.longName = undefined;
    this.current = { label: `member ${JSON.stringify(name)}`, at, size };
    if ((type === '0' || type === '7') && name !== '' && this.keep(name)) this.startBody('member', name, at, size);
  }

  private startBody(kind: 'member' | 'pax' | 'long', name: string, at: number, size: number): void {
    this.body = { kind, name, at, data: Buffer.allocUnsafe(size), filled: 0 };
    if (size === 0) this.finishBody();
  }

  private finishBody(): void {
    const body = this.body;
    this.body = undefined;
    if (!body) return;
    if (body.kind === 'pax') this.pax = parsePax(body.data, `${this.source}: tar entry at byte ${body.at}`);
    else if (body.kind === 'long') this.longName = body.data.toString('utf8').replace(/\0+$/, '');
    else this.entries.push({ name: body.name, data: body.data });
  }
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** What an archive is read from: bytes already in memory, or a stream of them (a file, an S3 body). */
export type ArchiveInput = Uint8Array | AsyncIterable<Uint8Array>;

export interface StreamReadOptions extends ReadLimits {
  /** Sees every compressed byte, in order, as it passes (the artifact's SHA-256 is computed here). */
  readonly onChunk?: (chunk: Buffer) => void;
}

/** In-memory bytes are fed in slices of this size, so the gunzip stream holds no more than its window and one slice. */
const SLICE = 1024 * 1024;

async function* slicesOf(input: ArchiveInput): AsyncGenerator<Buffer> {
  if (input instanceof Uint8Array) {
    for (let at = 0; at < input.byteLength; at += SLICE) yield Buffer.from(input.buffer, input.byteOffset + at, Math.min(SLICE, input.byteLength - at));
    return;
  }
  for await (const chunk of input) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function decompressError(err: NodeJS.ErrnoException, source: string, compressed: number): UserError {
  if (err.code === 'Z_BUF_ERROR') return new UserError(`${source}: cannot decompress: the gzip stream ends early, after ${compressed} compressed bytes (truncated); expected a complete model.tar.gz (re-upload the artifact, or re-run the step that wrote it)`);
  return new UserError(`${source}: cannot decompress (${err.message}): a corrupt .tar.gz, or not one`);
}

/**
 * The members `keep` selects from a .tar.gz (or a plain .tar), read as a stream: the
 * input is gunzipped chunk by chunk and the tar parsed over the chunks, so neither the
 * decompressed archive nor any member not kept is ever held. Both sizes are capped as
 * they pass: the compressed input at maxCompressedBytes, the decompressed output at
 * maxBytes (a gzip bomb stops at the cap, a member larger than it is refused at its
 * header). Errors are UserErrors naming the source.
 */
export async function readTarMembers(input: ArchiveInput, source: string, keep: MemberFilter, options: StreamReadOptions = {}): Promise<TarEntry[]> {
  const maxBytes = options.maxBytes ?? MAX_ARTIFACT_BYTES;
  const maxBytesName = options.maxBytesName ?? 'MAX_ARTIFACT_BYTES';
  const maxCompressed = options.maxCompressedBytes ?? MAX_ARTIFACT_BYTES;
  // A NaN or negative cap (say, from a memory budget that failed to parse) would compare false and lift the bound.
  assertByteLimit(maxBytes, 'maxBytes');
  assertByteLimit(maxCompressed, 'maxCompressedBytes');
  const parser = new TarChunkParser(source, keep, maxBytes, maxBytesName);
  let compressed = 0;
  // Our own refusal, kept: stream.pipeline reports a stage that threw as an AbortError of the others.
  let refusal: UserError | undefined;
  const refuse = (message: string): never => {
    throw (refusal = new UserError(message));
  };
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of slicesOf(input)) {
      compressed += chunk.length;
      if (compressed > maxCompressed) refuse(`${source}: more than ${maxCompressed} bytes (MAX_ARTIFACT_BYTES, compressed): not a model artifact`);
      options.onChunk?.(chunk);
      yield chunk;
    }
  }
  let decompressed = 0;
  const sink = async (tar: AsyncIterable<Buffer>) => {
    for await (const chunk of tar) {
      const within = Math.min(chunk.length, maxBytes - decompressed);
      decompressed += chunk.length;
      try {
        // The part within the cap first: a header there may say more precisely what is wrong.
        parser.push(within < chunk.length ? chunk.subarray(0, within) : chunk);
      } catch (err) {
        if (err instanceof UserError) refusal = err;
        throw err;
      }
      if (decompressed > maxBytes) refuse(`${source}: decompresses to more than ${maxBytes.toLocaleString('en-US')} bytes (${maxBytesName}): a forest larger than this service loads, a corrupt or crafted archive (a gzip bomb), or not a model artifact`);
    }
  };
  const chunks = counted();
  const first = await chunks.next();
  if (!first.done) {
    const all = async function* () {
      yield first.value;
      yield* chunks;
    };
    if (!isGzip(first.value)) await sink(all());
    else {
      await pipeline(Readable.from(all()), createGunzip({ chunkSize: 64 * 1024 }), sink).catch((err: NodeJS.ErrnoException) => {
        throw refusal ?? (err instanceof UserError ? err : decompressError(err, source, compressed));
      });
    }
  }
  return parser.end();
}
function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

/** A ustar archive of the given files (names up to 100 bytes, sizes below 8 GiB). */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const name = normalize(e.name);
    if (name === '' || Buffer.byteLength(name) > 100) throw new Error(`writeTar: entry name ${JSON.stringify(e.name)} must be 1 to 100 bytes`);
    const header = Buffer.alloc(BLOCK);
    header.write(name, 0, 100, 'utf8');
    writeOctal(header, 100, 8, 0o644);
    writeOctal(header, 108, 8, 0);
    writeOctal(header, 116, 8, 0);
    writeOctal(header, 124, 12, e.data.length);
    writeOctal(header, 136, 12, 0);
    header[156] = 0x30; // '0': regular file
    header.write('ustar\0', 257, 6, 'ascii');
    header.write('00', 263, 2, 'ascii');
    header.write('root', 265, 32, 'ascii');
    header.write('root', 297, 32, 'ascii');
    writeOctal(header, 148, 7, checksumOf(header));
    header[155] = 0x20;
    blocks.push(header, e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(blocks);
}

/** The regular files of a .tar.gz (or a plain .tar), all of them (read as readTarMembers reads). */
export function readTarGz(input: ArchiveInput, source = '<tar.gz>', limits: ReadLimits = {}): Promise<TarEntry[]> {
  return readTarMembers(input, source, () => true, limits);
}

/** A .tar.gz of the given files; the same files give the same bytes (gzip mtime is 0). */
export function writeTarGz(entries: readonly TarEntry[]): Buffer {
  return gzipSync(writeTar(entries), { level: 9 });
}

/**
 * The forest JSON inside a model artifact: SageMaker training and the pipeline's
 * evaluate step publish `model.tar.gz` holding `forest.json`; locally registered
 * artifacts are the JSON itself. Either way the caller gets the JSON bytes; of an
 * archive only forest.json is ever held (see readTarMembers).
 */
export async function forestBytesOfArtifact(bytes: Buffer, source = '<artifact>', options: StreamReadOptions = {}): Promise<Buffer> {
  if (!isGzip(bytes)) {
    options.onChunk?.(bytes);
    return bytes;
  }
  const entries = await readTarMembers(bytes, source, (name) => name.split('/').at(-1) === 'forest.json', options);
  if (entries.length !== 1) throw new UserError(`${source}: expected exactly one forest.json in the archive, found ${entries.length}`);
  return entries[0].data;
}
