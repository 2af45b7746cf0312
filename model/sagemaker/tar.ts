/**
 * A small tar (ustar) reader and writer for SageMaker model artifacts (model.tar.gz).
 * SageMaker packs /opt/ml/model with GNU tar or Python's tarfile, so the reader accepts
 * what those write: ustar names with a prefix, PAX extended headers (path, size), GNU
 * long names, directory entries and "./" prefixes. Only regular files are returned;
 * links and devices are skipped. The writer emits plain ustar with fixed metadata
 * (mtime 0, mode 0644, root owner), so the same files always give the same bytes.
 *
 * Artifacts come from a bucket that people and pipelines write to, so the reader
 * trusts nothing in them: every size is a non-negative integer that fits the archive,
 * every step moves forward, and decompression stops at MAX_ARTIFACT_BYTES (a gzip
 * bomb of a few MB would otherwise inflate to gigabytes in the serving process).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { UserError } from '../../etl/errors';

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

/** The regular files of a tar archive (uncompressed bytes). */
export function readTar(archive: Buffer, source = '<tar>'): TarEntry[] {
  const entries: TarEntry[] = [];
  let pos = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  while (pos + BLOCK <= archive.length) {
    const header = archive.subarray(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const stored = numeric(header, 148, 8, 'checksum', source);
    if (stored !== checksumOf(header)) throw new UserError(`${source}: tar header at byte ${pos} has a bad checksum: not a tar archive, or a corrupt one`);
    let size = numeric(header, 124, 12, 'size', source);
    if (pax.size !== undefined) {
      // A PAX size overrides the header's; it must be a plain non-negative integer (a negative one would move the reader backwards forever).
      if (!/^[0-9]{1,16}$/.test(pax.size)) throw new UserError(`${source}: tar entry at byte ${pos} has PAX size ${JSON.stringify(pax.size.slice(0, 30))}: expected a non-negative integer (a corrupt or crafted archive)`);
      size = Number(pax.size);
    }
    const type = String.fromCharCode(header[156] || 0x30);
    const dataStart = pos + BLOCK;
    if (size > archive.length - dataStart) throw new UserError(`${source}: tar entry at byte ${pos} claims ${size} bytes but the archive ends first (truncated)`);
    const data = archive.subarray(dataStart, dataStart + size);
    // Always forward by at least one block: no header can make the reader revisit one.
    pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (type === 'x') {
      pax = parsePax(data, `${source}: tar entry at byte ${dataStart - BLOCK}`);
      continue;
    }
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    if (type === 'g' || type === 'K') continue;
    const magic = field(header, 257, 6);
    const prefix = magic.startsWith('ustar') ? field(header, 345, 155) : '';
    const baseName = field(header, 0, 100);
    const name = normalize(pax.path ?? longName ?? (prefix ? `${prefix}/${baseName}` : baseName));
    pax = {};
    longName = undefined;
    if ((type === '0' || type === '7') && name !== '') entries.push({ name, data: Buffer.from(data) });
  }
  return entries;
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

export function isGzip(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gunzip with an output cap; a stream that would exceed it is refused, not inflated. */
export function gunzipBounded(bytes: Buffer, source: string, maxBytes = MAX_ARTIFACT_BYTES): Buffer {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new UserError(`${source}: decompresses to more than ${maxBytes} bytes (MAX_ARTIFACT_BYTES): a gzip bomb, or not a model artifact`);
    }
    throw new UserError(`${source}: cannot decompress (${err.message}): a truncated or corrupt .tar.gz`);
  }
}

/** The regular files of a .tar.gz (or a plain .tar). */
export function readTarGz(bytes: Buffer, source = '<tar.gz>', limits: ReadLimits = {}): TarEntry[] {
  const maxBytes = limits.maxBytes ?? MAX_ARTIFACT_BYTES;
  if (!isGzip(bytes) && bytes.length > maxBytes) throw new UserError(`${source}: ${bytes.length} bytes, more than ${maxBytes} (MAX_ARTIFACT_BYTES)`);
  return readTar(isGzip(bytes) ? gunzipBounded(bytes, source, maxBytes) : bytes, source);
}

/** A .tar.gz of the given files; the same files give the same bytes (gzip mtime is 0). */
export function writeTarGz(entries: readonly TarEntry[]): Buffer {
  return gzipSync(writeTar(entries), { level: 9 });
}

/**
 * The forest JSON inside a model artifact: SageMaker training and the pipeline's
 * evaluate step publish `model.tar.gz` holding `forest.json`; locally registered
 * artifacts are the JSON itself. Either way the caller gets the JSON bytes.
 */
export function forestBytesOfArtifact(bytes: Buffer, source = '<artifact>', limits: ReadLimits = {}): Buffer {
  if (!isGzip(bytes)) return bytes;
  const entries = readTarGz(bytes, source, limits).filter((e) => e.name.split('/').at(-1) === 'forest.json');
  if (entries.length !== 1) throw new UserError(`${source}: expected exactly one forest.json in the archive, found ${entries.length}`);
  return entries[0].data;
}
