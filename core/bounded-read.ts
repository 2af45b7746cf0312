/**
 * Reads that refuse an object larger than the caller can afford before holding it: the
 * size is known before the bytes (a file's fstat, an S3 object's Content-Length) and is
 * checked again while the bytes arrive (a file that grows, a body without a length).
 * Whoever can write an object a service reads must not be able to make that service
 * allocate without bound.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { UserError } from './errors';

export interface ReadOptions {
  /** Refuse (ObjectTooLargeError) an object of more bytes than this, before reading it whole. */
  readonly maxBytes?: number;
}

/** An object larger than a read accepts. */
export class ObjectTooLargeError extends UserError {
  readonly location: string;
  readonly bytes: number;
  readonly maxBytes: number;
  /** False when the object was refused while its bytes arrived: it has more than `bytes`, how many more is not known. */
  readonly sizeKnown: boolean;
  constructor(location: string, bytes: number, maxBytes: number, known: boolean) {
    super(`${location} is ${known ? '' : 'more than '}${bytes.toLocaleString('en-US')} bytes, more than the ${maxBytes.toLocaleString('en-US')} bytes this read accepts; it was not read`, 'validation');
    this.name = 'ObjectTooLargeError';
    this.location = location;
    this.bytes = bytes;
    this.maxBytes = maxBytes;
    this.sizeKnown = known;
  }
}

/** A whole file, or ObjectTooLargeError when it has (or grows to) more than maxBytes. ENOENT and the like pass through. */
export async function readFileAtMost(file: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new ObjectTooLargeError(file, size, maxBytes, true);
    // One byte more than the stat said tells a file that grew since from one that did not.
    const first = Buffer.allocUnsafe(size + 1);
    let total = await readInto(handle, first);
    if (total < first.length) return first.subarray(0, total);
    const parts: Buffer[] = [first];
    for (;;) {
      if (total > maxBytes) throw new ObjectTooLargeError(file, total, maxBytes, false);
      const chunk = Buffer.allocUnsafe(GROWN_CHUNK_BYTES);
      const n = await readInto(handle, chunk);
      if (n === 0) return Buffer.concat(parts, total);
      parts.push(chunk.subarray(0, n));
      total += n;
    }
  } finally {
    await handle.close();
  }
}

const GROWN_CHUNK_BYTES = 1 << 16;

/** Fills buffer with the file's next bytes until it is full or the file ends; returns the bytes read. Sequential (no position): pipes cannot seek. */
async function readInto(handle: FileHandle, buffer: Buffer): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** The chunks of a body joined, or ObjectTooLargeError as soon as they pass maxBytes (the rest is not read). */
export async function collectAtMost(chunks: AsyncIterable<Uint8Array>, location: string, maxBytes: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.length;
    if (total > maxBytes) throw new ObjectTooLargeError(location, total, maxBytes, false);
    parts.push(chunk);
  }
  return Buffer.concat(parts, total);
}
