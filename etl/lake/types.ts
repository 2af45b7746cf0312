/**
 * A lake is a root URI (a local directory or s3://bucket/prefix) holding the zones
 * raw/, silver/, gold/, artifacts/, logs/ and tmp/. Keys are always relative to the
 * root and use '/' separators, whatever the backend.
 *
 * Backends only promise single-object atomicity (a write is visible whole or not at
 * all). Multi-file stage outputs get their atomicity from the commit protocol built
 * on top of this interface (see commit.ts).
 */
import type { ReadOptions } from '../../core/bounded-read';

export { LAKE_ZONES, type LakeZone } from '../../contracts/lake-zones';
export { ObjectTooLargeError, type ReadOptions } from '../../core/bounded-read';

export interface LakeObject {
  readonly key: string;
  readonly size: number;
  /**
   * A token that changes whenever the object's bytes may have changed (local: size, mtime
   * and ctime in ns, inode; S3: size and ETag). Only filled in when list() is asked for it.
   */
  readonly version?: string;
}

export interface Lake {
  /** The root URI as configured, e.g. `/data/lake` or `s3://bucket/prefix`. */
  readonly root: string;
  /** 'local' or 's3'. */
  readonly kind: 'local' | 's3';
  /** Every object whose key starts with prefix, recursively, sorted by key. */
  list(prefix: string, options?: { versions?: boolean }): Promise<LakeObject[]>;
  exists(key: string): Promise<boolean>;
  /** The whole object; with maxBytes, ObjectTooLargeError (core/bounded-read.ts) for a larger one, before its bytes are held. */
  read(key: string, options?: ReadOptions): Promise<Buffer>;
  /** Visible all-or-nothing: readers see the old object or the new one, never a part. */
  write(key: string, body: Buffer | string): Promise<void>;
  /**
   * Create the object only if no object exists under key, atomically with respect to every
   * other writer (local: link(2) of a complete temp file; S3: PutObject with If-None-Match: *).
   * Returns false, writing nothing, when the key already exists. The building block of leases.
   */
  writeIfAbsent(key: string, body: Buffer | string): Promise<boolean>;
  /** The object's version token (as list() with versions gives it), or null when there is no object. */
  version(key: string): Promise<string | null>;
  /**
   * Replace the object only if its version is still `expected` (null: only if there is no
   * object); returns false, writing nothing, otherwise. S3: PutObject with If-Match on the
   * ETag (If-None-Match: * for null). Local: the version is compared right before the
   * rename (atomic with respect to other writers only up to that instant; the lake's
   * lease keeps writers apart, this fences a holder that stalled past its lease).
   * The commit point of every stage.
   */
  writeIfVersion(key: string, body: Buffer | string, expected: string | null): Promise<boolean>;
  /** Stream an object to a local file (for DuckDB, which reads local files). */
  download(key: string, localPath: string): Promise<void>;
  /** Stream a local file into an object; all-or-nothing like write. */
  upload(localPath: string, key: string): Promise<void>;
  /** Delete one object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Full URI of a key (an absolute path, or s3://bucket/prefix/key). */
  uri(key: string): string;
}
