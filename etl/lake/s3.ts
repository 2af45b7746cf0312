import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { awsErrorName as nameOf, awsHttpStatus as statusOf, networkErrorCode, translateAwsError, type AwsError, type AwsProblem } from '../../core/aws-errors';
import type { ErrorKind } from '../../core/error-kinds';
import { UserError } from '../../core/errors';
import { assertByteLimit, collectAtMost, ObjectTooLargeError, type ReadOptions } from '../../core/bounded-read';
import { assertLakeKey } from './keys';
import type { Lake, LakeObject } from './types';

/** S3's own limits: every part but the last is at least 5 MiB, and at most 10,000 parts. */
export const S3_MIN_PART_SIZE = 5 * 1024 * 1024;
const S3_MAX_PARTS = 10_000;

export interface S3LakeOptions {
  /** A configured client; by default one is built from the environment (s3ClientFromEnv). */
  client?: S3Client;
  /** Part size of multipart uploads in bytes (default 8 MiB, at least 5 MiB). */
  partSize?: number;
  /** Files larger than this are uploaded in parts (default: partSize). */
  multipartThreshold?: number;
  /** Parts uploaded at once; memory use of an upload is about partConcurrency × partSize. */
  partConcurrency?: number;
  /** Keys per ListObjectsV2 page (default and S3 maximum 1000); small values exercise paging. */
  maxKeys?: number;
}

export interface S3Location {
  readonly bucket: string;
  /** The key prefix of the lake root without leading or trailing '/', possibly ''. */
  readonly prefix: string;
}

/** The lake's name for each AWS problem (core/aws-errors.ts), the codes callers and tests branch on. */
const S3_CODES = {
  no_credentials: 'NoCredentials',
  bad_credentials: 'BadCredentials',
  no_region: 'NoRegion',
  denied: 'AccessDenied',
  throttled: 'SlowDown',
  quota: 'SlowDown',
  unreachable: 'Unreachable',
  not_found: 'NoSuchKey',
} as const satisfies Record<AwsProblem, string>;

export type S3LakeErrorCode = (typeof S3_CODES)[AwsProblem] | 'NoSuchBucket' | 'NoConditionalWrites';

/** Stops a body that will not be read: a Node stream is destroyed (its socket closed, not kept alive with unread bytes); a web stream is cancelled. */
function discardBody(body: unknown): void {
  const b = body as { destroy?: () => void; cancel?: () => Promise<void> };
  if (typeof b.destroy === 'function') b.destroy();
  else if (typeof b.cancel === 'function') void b.cancel().catch(() => undefined);
}

/** Thrown for S3 failures the user can act on (missing bucket or key, denied access, …); the kind follows the code. */
export class S3LakeError extends UserError {
  readonly code: S3LakeErrorCode;
  constructor(code: S3LakeErrorCode, message: string, kind: ErrorKind) {
    super(message, kind);
    this.name = 'S3LakeError';
    this.code = code;
  }

  static fromAws(err: AwsError): S3LakeError {
    return new S3LakeError(S3_CODES[err.problem], err.message, err.kind);
  }
}

// Bucket naming rules for general-purpose buckets (3-63 chars, lowercase letters, digits,
// dots and hyphens, starting and ending with a letter or digit, not an IP address).
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parse `s3://bucket[/prefix]`; throws a UserError saying what is wrong with the URI. */
export function parseS3Uri(uri: string): S3Location {
  const expected = 'expected s3://bucket/prefix, e.g. s3://my-bucket/pricesense/lake';
  if (!uri.startsWith('s3://')) {
    throw new UserError(`not an S3 lake URI: '${uri}' (${expected})`);
  }
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
  if (bucket === '') {
    throw new UserError(`S3 lake URI '${uri}' has no bucket name (${expected})`);
  }
  if (!BUCKET_RE.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw new UserError(
      `S3 lake URI '${uri}': '${bucket}' is not a valid bucket name ` +
        '(3-63 characters: lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)',
    );
  }
  if (prefix !== '') {
    const bad = prefix.split('/').find((s) => s === '' || s === '.' || s === '..');
    if (bad !== undefined) {
      throw new UserError(
        `S3 lake URI '${uri}': the prefix '${prefix}' has an empty, '.' or '..' path segment`,
      );
    }
  }
  return { bucket, prefix };
}

/** The endpoint override from the environment, if any (PRICESENSE_S3_ENDPOINT wins). */
export function s3EndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const name of ['PRICESENSE_S3_ENDPOINT', 'AWS_ENDPOINT_URL_S3'] as const) {
    const value = env[name]?.trim();
    if (!value) continue;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new UserError(`${name}='${value}' is not a URL (expected e.g. http://127.0.0.1:9000)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UserError(`${name}='${value}' must be an http:// or https:// URL`);
    }
    return value;
  }
  return undefined;
}

/**
 * Client settings from the environment: AWS_REGION (default us-east-1), an endpoint override
 * for S3-compatible stores, and the SDK's usual credential chain.
 *
 * With an endpoint override we also use path-style addressing (most S3-compatible servers have
 * no per-bucket DNS) and compute checksums only when an operation requires them: since SDK
 * 3.729 the default sends streaming bodies as aws-chunked with a trailing CRC32, which many
 * third-party servers reject or, worse, store verbatim (s3rver does the latter).
 * AWS_REQUEST_CHECKSUM_CALCULATION / AWS_RESPONSE_CHECKSUM_VALIDATION still take precedence.
 */
export function s3ClientConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const config: S3ClientConfig = { region: env.AWS_REGION?.trim() || 'us-east-1' };
  const endpoint = s3EndpointFromEnv(env);
  if (endpoint !== undefined) {
    config.endpoint = endpoint;
    config.forcePathStyle = true;
    if (!env.AWS_REQUEST_CHECKSUM_CALCULATION) config.requestChecksumCalculation = 'WHEN_REQUIRED';
    if (!env.AWS_RESPONSE_CHECKSUM_VALIDATION) config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return config;
}

export function s3ClientFromEnv(env: NodeJS.ProcessEnv = process.env): S3Client {
  return new S3Client(s3ClientConfigFromEnv(env));
}

type Operation = 'list' | 'exists' | 'read' | 'write' | 'download' | 'upload' | 'delete' | 'writeIfAbsent';

/** The IAM action each lake operation needs, for AccessDenied messages. */
const PERMISSION: Record<Operation, string> = {
  list: 's3:ListBucket',
  exists: 's3:GetObject (and s3:ListBucket, without which S3 answers 403 instead of 404 for a missing key)',
  read: 's3:GetObject',
  download: 's3:GetObject',
  write: 's3:PutObject',
  writeIfAbsent: 's3:PutObject (a conditional write, If-None-Match: *)',
  upload: 's3:PutObject (and s3:AbortMultipartUpload to clean up failed uploads)',
  delete: 's3:DeleteObject',
};

/**
 * A lake in an S3 bucket under a key prefix. Every method is a handful of S3 requests; single
 * objects are atomic because S3 makes a PutObject or a completed multipart upload visible whole.
 */
export class S3Lake implements Lake {
  readonly root: string;
  readonly kind = 's3' as const;
  readonly bucket: string;
  /** Key prefix of the root, '' or ending in '/'. */
  private readonly keyPrefix: string;
  readonly client: S3Client;
  private readonly partSize: number;
  private readonly multipartThreshold: number;
  private readonly partConcurrency: number;
  private readonly maxKeys: number;

  constructor(uri: string, options: S3LakeOptions = {}) {
    const { bucket, prefix } = parseS3Uri(uri);
    this.bucket = bucket;
    this.keyPrefix = prefix === '' ? '' : `${prefix}/`;
    this.root = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
    this.client = options.client ?? s3ClientFromEnv();
    this.partSize = options.partSize ?? 8 * 1024 * 1024;
    if (!Number.isInteger(this.partSize) || this.partSize < S3_MIN_PART_SIZE) {
      throw new UserError(`S3 partSize must be an integer of at least ${S3_MIN_PART_SIZE} bytes (5 MiB), got ${this.partSize}`);
    }
    this.multipartThreshold = options.multipartThreshold ?? this.partSize;
    this.partConcurrency = Math.max(1, Math.floor(options.partConcurrency ?? 4));
    this.maxKeys = options.maxKeys ?? 1000;
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1 || this.maxKeys > 1000) {
      throw new UserError(`S3 maxKeys must be an integer from 1 to 1000, got ${this.maxKeys}`);
    }
  }

  /** Accepts a prefix too ('raw/'), for messages that name a zone, like LocalLake. */
  uri(key: string): string {
    assertLakeKey(key, true);
    return this.location(key);
  }

  /** uri() without the key check, for messages about prefixes. */
  private location(keyOrPrefix: string): string {
    return `s3://${this.bucket}/${this.keyPrefix}${keyOrPrefix}`;
  }

  async list(prefix: string, options: { versions?: boolean } = {}): Promise<LakeObject[]> {
    if (prefix !== '') assertLakeKey(prefix, true);
    const out: LakeObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.keyPrefix + prefix,
            MaxKeys: this.maxKeys,
            ContinuationToken: token,
          }),
        ),
      );
      for (const obj of page.Contents ?? []) {
        // Zero-byte "folder" markers (keys ending in '/', made by consoles) are not lake objects.
        if (obj.Key === undefined || obj.Key.endsWith('/')) continue;
        const entry = { key: obj.Key.slice(this.keyPrefix.length), size: obj.Size ?? 0 };
        // The ETag changes with the bytes (an MD5 for single-part uploads, a digest of part digests otherwise).
        out.push(options.versions ? { ...entry, version: `${entry.size}-${obj.ETag ?? ''}` } : entry);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && token === undefined) {
        throw new Error(`S3 listing of ${this.location(prefix)} is truncated but has no continuation token`);
      }
    } while (token !== undefined);
    // S3 lists in UTF-8 byte order; sort by UTF-16 code units like the local backend.
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async exists(key: string): Promise<boolean> {
    assertLakeKey(key);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }));
      return true;
    } catch (err) {
      if (statusOf(err) === 404 || nameOf(err) === 'NotFound' || nameOf(err) === 'NoSuchKey') {
        // HEAD responses have no body, so a missing bucket also looks like 404: tell them apart.
        await this.assertBucketExists('exists', key);
        return false;
      }
      throw this.translate(err, 'exists', key);
    }
  }

  async read(key: string, options: ReadOptions = {}): Promise<Buffer> {
    assertLakeKey(key);
    const { maxBytes } = options;
    if (maxBytes !== undefined) assertByteLimit(maxBytes);
    // The SDK retries a request, not a body cut off mid-stream (a reset connection, a server
    // restarting): that is retried here, then translated like any other read failure.
    for (let attempt = 0; ; attempt++) {
      const res = await this.call('read', key, () =>
        this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key })),
      );
      if (!res.Body) throw new Error(`S3 returned no body for ${this.location(key)}`);
      if (maxBytes !== undefined && res.ContentLength !== undefined && res.ContentLength > maxBytes) {
        // Refused on its Content-Length: the body is never downloaded.
        discardBody(res.Body);
        throw new ObjectTooLargeError(this.location(key), res.ContentLength, maxBytes, true);
      }
      try {
        if (maxBytes === undefined) return Buffer.from(await res.Body.transformToByteArray());
        return await collectAtMost(res.Body as AsyncIterable<Uint8Array>, this.location(key), maxBytes, res.ContentLength);
      } catch (err) {
        if (err instanceof ObjectTooLargeError) {
          discardBody(res.Body);
          throw err;
        }
        if (attempt >= BODY_READ_RETRIES) {
          throw new S3LakeError(
            'Unreachable',
            `the download of ${this.location(key)} was cut off ${attempt + 1} times (${networkErrorCode(err) ?? (err as Error).message}): ` +
              'the connection to S3 failed mid-transfer; check the network or endpoint, then rerun',
            'unavailable',
          );
        }
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  async write(key: string, body: Buffer | string): Promise<void> {
    assertLakeKey(key);
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    await this.call('write', key, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.keyPrefix + key,
          Body: buf,
          ContentLength: buf.length,
        }),
      ),
    );
  }

  /**
   * PutObject with If-None-Match: * (S3 conditional writes, on AWS since August 2024): S3
   * answers 412 Precondition Failed if the key exists, and 409 ConditionalRequestConflict
   * when a concurrent write to the key is in flight, which is retried. A store that ignores
   * the header would silently overwrite, so the first call checks that it honours it.
   */
  async writeIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    assertLakeKey(key);
    await (this.conditionalCheck ??= this.checkConditionalWrites());
    return this.putIfAbsent(key, typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  }

  private conditionalCheck: Promise<void> | undefined;

  private async putIfAbsent(key: string, buf: Buffer): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key, Body: buf, ContentLength: buf.length, IfNoneMatch: '*' }),
        );
        return true;
      } catch (err) {
        if (statusOf(err) === 412 || nameOf(err) === 'PreconditionFailed') return false;
        if ((statusOf(err) === 409 || nameOf(err) === 'ConditionalRequestConflict') && attempt < 5) {
          await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
          continue;
        }
        throw this.translate(err, 'writeIfAbsent', key);
      }
    }
  }

  async version(key: string): Promise<string | null> {
    assertLakeKey(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }));
      return `${head.ContentLength ?? 0}-${head.ETag ?? ''}`;
    } catch (err) {
      if (statusOf(err) === 404 || nameOf(err) === 'NotFound' || nameOf(err) === 'NoSuchKey') {
        await this.assertBucketExists('exists', key);
        return null;
      }
      throw this.translate(err, 'exists', key);
    }
  }

  /** PutObject with If-Match on the ETag the version token holds (AWS S3 since November 2024). */
  async writeIfVersion(key: string, body: Buffer | string, expected: string | null): Promise<boolean> {
    if (expected === null) return this.writeIfAbsent(key, body);
    assertLakeKey(key);
    await (this.conditionalCheck ??= this.checkConditionalWrites());
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const etag = expected.slice(expected.indexOf('-') + 1);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key, Body: buf, ContentLength: buf.length, IfMatch: etag }));
        return true;
      } catch (err) {
        if (statusOf(err) === 412 || nameOf(err) === 'PreconditionFailed' || statusOf(err) === 404 || nameOf(err) === 'NoSuchKey') return false;
        if ((statusOf(err) === 409 || nameOf(err) === 'ConditionalRequestConflict') && attempt < 5) {
          await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
          continue;
        }
        throw this.translate(err, 'writeIfAbsent', key);
      }
    }
  }

  /** Two conditional creates of one fresh key: the second must be refused, or leases cannot be enforced. */
  private async checkConditionalWrites(): Promise<void> {
    const probe = `tmp/.conditional-write-probe-${randomBytes(8).toString('hex')}`;
    try {
      const first = await this.putIfAbsent(probe, Buffer.from('1'));
      const second = await this.putIfAbsent(probe, Buffer.from('2'));
      if (!first || second) {
        this.conditionalCheck = undefined;
        throw new S3LakeError(
          'NoConditionalWrites',
          `the S3 store behind ${this.root} ignores conditional writes (PutObject with If-None-Match: * overwrote an existing object), ` +
            'so two ETL runs could not be kept from writing the lake at once; use AWS S3 or a store that supports conditional writes (If-None-Match / If-Match)',
          'validation',
        );
      }
    } finally {
      await this.delete(probe).catch(() => undefined);
    }
  }

  /** Streams the object into a temporary file beside localPath, renamed into place when whole. */
  async download(key: string, localPath: string): Promise<void> {
    assertLakeKey(key);
    const res = await this.call('download', key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key })),
    );
    if (!(res.Body instanceof Readable)) {
      throw new Error(`S3 returned no readable body for ${this.location(key)}`);
    }
    await mkdir(path.dirname(localPath), { recursive: true });
    const tmp = `${localPath}.${randomBytes(6).toString('hex')}.part`;
    try {
      await pipeline(res.Body, createWriteStream(tmp));
      await rename(tmp, localPath);
    } catch (err) {
      await rm(tmp, { force: true });
      throw this.translate(err, 'download', key);
    }
  }

  async upload(localPath: string, key: string): Promise<void> {
    assertLakeKey(key);
    let size: number;
    try {
      const st = await stat(localPath);
      if (!st.isFile()) throw new UserError(`cannot upload '${localPath}' to ${this.location(key)}: not a regular file`);
      size = st.size;
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`cannot upload '${localPath}' to ${this.location(key)}: ${(err as Error).message}`);
    }
    if (size <= this.multipartThreshold) {
      const fh = await open(localPath, 'r');
      let buf: Buffer;
      try {
        buf = Buffer.alloc(size);
        await readFully(fh, buf, 0);
      } finally {
        await fh.close();
      }
      await this.call('upload', key, () =>
        this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key, Body: buf, ContentLength: size }),
        ),
      );
      return;
    }
    await this.multipartUpload(localPath, size, key);
  }

  async delete(key: string): Promise<void> {
    assertLakeKey(key);
    await this.call('delete', key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key })),
    );
  }

  /**
   * Parts are read from the file into buffers (so the SDK can retry them) by a small pool of
   * workers. The object only appears when CompleteMultipartUpload succeeds; on any failure the
   * upload is aborted so S3 frees the parts, and the previous object (if any) stays as it was.
   */
  private async multipartUpload(localPath: string, size: number, key: string): Promise<void> {
    const Key = this.keyPrefix + key;
    const partSize = Math.max(this.partSize, Math.ceil(size / S3_MAX_PARTS));
    const partCount = Math.ceil(size / partSize);
    // Declare the checksum up front when the client computes them (AWS), so that every part is
    // verified by S3 and CompleteMultipartUpload carries the part checksums consistently.
    const withChecksum = (await this.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
    // Opened before the upload is created: a file that cannot be opened must leave no upload open (its parts billed).
    const fh = await open(localPath, 'r').catch((err: Error) => {
      throw new UserError(`cannot upload '${localPath}' to ${this.location(key)}: ${err.message}`);
    });
    let UploadId: string | undefined;
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          ...(withChecksum ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
        }),
      );
      UploadId = created.UploadId;
      if (!UploadId) throw new Error(`S3 returned no UploadId for ${this.location(key)}`);
      const parts: CompletedPart[] = new Array<CompletedPart>(partCount);
      let next = 0;
      let failed = false;
      const worker = async (): Promise<void> => {
        while (!failed && next < partCount) {
          const index = next++;
          const offset = index * partSize;
          const body = Buffer.alloc(Math.min(partSize, size - offset));
          await readFully(fh, body, offset);
          const res = await this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key,
              UploadId,
              PartNumber: index + 1,
              Body: body,
              ContentLength: body.length,
              ...(withChecksum ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
            }),
          );
          parts[index] = { PartNumber: index + 1, ETag: res.ETag, ChecksumCRC32: res.ChecksumCRC32 };
        }
      };
      const workers = Array.from({ length: Math.min(this.partConcurrency, partCount) }, () =>
        worker().catch((err: unknown) => {
          failed = true;
          throw err;
        }),
      );
      const results = await Promise.allSettled(workers);
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) throw rejected.reason;
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (err) {
      try {
        if (UploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }));
      } catch {
        // The original failure is what the caller needs; an upload left unaborted is invisible
        // and is reclaimed by the bucket's AbortIncompleteMultipartUpload lifecycle rule.
      }
      throw this.translate(err, 'upload', key);
    } finally {
      await fh.close();
    }
  }

  private async call<T>(op: Operation, key: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw this.translate(err, op, key);
    }
  }

  private bucketCheck: Promise<void> | undefined;

  private assertBucketExists(op: Operation, key: string): Promise<void> {
    this.bucketCheck ??= this.client.send(new HeadBucketCommand({ Bucket: this.bucket })).then(
      () => undefined,
      (err: unknown) => {
        this.bucketCheck = undefined;
        if (statusOf(err) === 404) throw this.noSuchBucket();
        throw this.translate(err, op, key);
      },
    );
    return this.bucketCheck;
  }

  private noSuchBucket(): S3LakeError {
    return new S3LakeError(
      'NoSuchBucket',
      `S3 bucket '${this.bucket}' does not exist (lake ${this.root}); create it or fix the lake URI` +
        ' (and the endpoint, if PRICESENSE_S3_ENDPOINT / AWS_ENDPOINT_URL_S3 is set)',
      'not_found',
    );
  }

  /** Turn an SDK error into one that names the bucket, the key and what to do about it (core/aws-errors.ts words it). */
  private translate(err: unknown, op: Operation, key: string): Error {
    if (err instanceof UserError) return err;
    if (nameOf(err) === 'NoSuchBucket') return this.noSuchBucket();
    const target = key === '' && op === 'list' ? this.root : this.location(key);
    const aws = translateAwsError(err, {
      service: 'S3',
      scope: this.root,
      action: op,
      target,
      permission: `${PERMISSION[op]} on arn:aws:s3:::${this.bucket}${op === 'list' ? '' : `/${this.keyPrefix}*`}`,
      endpointSettings: 'PRICESENSE_S3_ENDPOINT / AWS_ENDPOINT_URL_S3',
      // A 404 from other operations (a multipart upload gone, …) is not "the object is missing".
      notFound: nameOf(err) === 'NoSuchKey' || op === 'read' || op === 'download' ? `lake object not found: ${this.location(key)} (key '${key}')` : undefined,
    });
    if (aws) return S3LakeError.fromAws(aws);
    if (err instanceof Error) {
      err.message = `S3 ${op} of ${target} failed: ${err.message}`;
      return err;
    }
    return new Error(`S3 ${op} of ${target} failed: ${String(err)}`);
  }
}

/** Re-reads of an object whose body stream failed after the response began. */
const BODY_READ_RETRIES = 2;

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`file ended early: expected ${buf.length} bytes at offset ${position}`);
    done += bytesRead;
  }
}
