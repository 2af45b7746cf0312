/**
 * Reads that refuse an object larger than the caller can afford before holding it: the
 * size is known before the bytes (a file's fstat, an S3 object's Content-Length) and is
 * checked again while the bytes arrive (a file that grows, a body without a length).
 * Whoever can write an object a service reads must not be able to make that service
 * allocate without bound.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { UserError } from './errors';

export interface ReadOptions {
  /** Refuse (ObjectTooLargeError) an object of more bytes than this, before reading it whole. */
  readonly maxBytes?: number;
}

/**
 * An object a bounded read refused without holding it: too large (ObjectTooLargeError) or
 * not a regular file (NotRegularFileError). A caller that reads one version's or one
 * entry's object maps this to that version's defect, so one planted object does not fail
 * a whole registry poll.
 */
export abstract class RefusedReadError extends UserError {
  abstract readonly location: string;
}

/** An object larger than a read accepts. */
export class ObjectTooLargeError extends RefusedReadError {
  readonly location: string;
  readonly bytes: number;
  readonly maxBytes: number;
  /** False when the object was refused while its bytes arrived: it has more than `bytes`, how many more is not known. */
  readonly sizeKnown: boolean;
  constructor(location: string, bytes: number, maxBytes: number, known: boolean) {
    super(
      known
        ? `${location} is ${bytes.toLocaleString('en-US')} bytes, more than the ${maxBytes.toLocaleString('en-US')} bytes this read accepts; refused on its size, before it was read`
        : `${location} grew past the ${maxBytes.toLocaleString('en-US')} bytes this read accepts while it was read (${bytes.toLocaleString('en-US')} bytes read); the rest was not read`,
      'validation',
    );
    this.name = 'ObjectTooLargeError';
    this.location = location;
    this.bytes = bytes;
    this.maxBytes = maxBytes;
    this.sizeKnown = known;
  }
}

/**
 * A path that is not a regular file: a directory (code EISDIR, which a lake reads as "not
 * found"), or a FIFO, socket or device (code ENOTREG), which reading could block on or
 * never finish.
 */
export class NotRegularFileError extends RefusedReadError {
  readonly location: string;
  readonly code: 'EISDIR' | 'ENOTREG';
  constructor(location: string, directory: boolean) {
    super(
      directory
        ? `${location} is a directory, not a file; refused without reading it`
        : `${location} is not a regular file (a FIFO, socket or device); refused without reading it, since reading it could block or never end`,
      'validation',
    );
    this.name = 'NotRegularFileError';
    this.location = location;
    this.code = directory ? 'EISDIR' : 'ENOTREG';
  }
}

/** A limit that is not a non-negative safe integer would silently remove the bound: a programming error. */
export function assertByteLimit(maxBytes: number, what = 'maxBytes'): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`${what} must be a non-negative integer, got ${String(maxBytes)}`);
}

/**
 * A whole regular file, or ObjectTooLargeError when it has (or grows to) more than
 * maxBytes. Anything but a regular file (a FIFO, a device, a directory) is refused without
 * blocking (NotRegularFileError): opened non-blocking, then checked. ENOENT and the like pass through. The
 * buffer returned is the file's own (not a slice of a larger one), so it can be
 * transferred to a worker thread without a copy.
 */
export async function readFileAtMost(file: string, maxBytes: number): Promise<Buffer> {
  assertByteLimit(maxBytes);
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, holding a libuv thread.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    // A Unix socket cannot be opened at all (ENXIO): it is refused like any other non-file.
    throw err.code === 'ENXIO' ? new NotRegularFileError(file, false) : err;
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new NotRegularFileError(file, stat.isDirectory());
    if (stat.size > maxBytes) throw new ObjectTooLargeError(file, stat.size, maxBytes, true);
    const first = Buffer.allocUnsafeSlow(stat.size);
    const filled = await readInto(handle, first);
    if (filled < first.length) return first.subarray(0, filled); // shrank since the stat
    // One byte more tells a file that grew since the stat (or one whose stat says 0, as /proc's do) from one that did not.
    const probe = Buffer.allocUnsafe(1);
    if ((await readInto(handle, probe)) === 0) return first;
    const parts: Buffer[] = [first, probe];
    let total = filled + 1;
    for (;;) {
      if (total > maxBytes) throw new ObjectTooLargeError(file, total, maxBytes, false);
      const chunk = Buffer.allocUnsafe(GROWN_CHUNK_BYTES);
      const n = await readInto(handle, chunk);
      if (n === 0) return Buffer.concat(parts, total);
      total += n;
      parts.push(chunk.subarray(0, n));
    }
  } finally {
    await handle.close();
  }
}

const GROWN_CHUNK_BYTES = 1 << 16;

/** Fills buffer with the file's next bytes until it is full or the file ends; returns the bytes read. */
async function readInto(handle: FileHandle, buffer: Buffer): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/**
 * The chunks of a body joined, or ObjectTooLargeError as soon as they pass maxBytes (the
 * rest is not pulled). With the body's announced length, the bytes go straight into one
 * buffer of that size: the peak is the object once, not its chunks and their join.
 */
export async function collectAtMost(chunks: AsyncIterable<Uint8Array>, location: string, maxBytes: number, announcedLength?: number): Promise<Buffer> {
  assertByteLimit(maxBytes);
  let out = announcedLength !== undefined && announcedLength <= maxBytes ? Buffer.allocUnsafeSlow(announcedLength) : undefined;
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    if (total + chunk.length > maxBytes) throw new ObjectTooLargeError(location, total + chunk.length, maxBytes, false);
    if (out !== undefined && total + chunk.length > out.length) {
      // More than announced (a server that lied): from here on, chunks and a join.
      parts.push(out.subarray(0, total));
      out = undefined;
    }
    if (out !== undefined) out.set(chunk, total);
    else parts.push(chunk);
    total += chunk.length;
  }
  if (out === undefined) return Buffer.concat(parts, total);
  return total === out.length ? out : out.subarray(0, total);
}
