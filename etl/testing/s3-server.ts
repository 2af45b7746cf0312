/**
 * An S3-compatible server for tests: s3rver on 127.0.0.1, an ephemeral port and a fresh temp
 * directory, with an S3Client configured for it (path-style, fake static credentials, checksums
 * only when required). Tests only; excluded from the production build.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import bucketController from 's3rver/lib/controllers/bucket';
import S3Error from 's3rver/lib/models/error';

/** The access key s3rver accepts (its built-in dummy account); not a real credential. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3TestServer {
  /** e.g. http://127.0.0.1:40123 */
  readonly endpoint: string;
  /** A client for this server; more via makeClient(). */
  readonly client: S3Client;
  /** The directory holding the server's objects (removed by stop()). */
  readonly directory: string;
  /** A new client for this server, with overrides (e.g. other credentials or middleware). */
  makeClient(overrides?: Partial<S3ClientConfig>): S3Client;
  createBucket(name: string): Promise<void>;
  /** The environment variables that point S3Lake / s3ClientFromEnv at this server. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

export interface S3TestServerOptions {
  buckets?: string[];
  /**
   * Honour If-None-Match / If-Match on PutObject as AWS S3 does (default true). s3rver
   * 3.7.1 ignores both headers; false keeps that behaviour, to test stores without them.
   */
  conditionalWrites?: boolean;
}

export async function startS3Server(options: S3TestServerOptions = {}): Promise<S3TestServer> {
  installListV2Fix();
  const directory = await mkdtemp(path.join(os.tmpdir(), 'pricesense-s3-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    // Path-style only: virtual-host detection would treat 127.0.0.1 as a bucket name.
    vhostBuckets: false,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
  });
  if (options.conditionalWrites !== false) installConditionalWrites(server);
  let address;
  try {
    address = await server.run();
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `http://127.0.0.1:${address.port}`;
  const clients: S3Client[] = [];
  const makeClient = (overrides: Partial<S3ClientConfig> = {}): S3Client => {
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...overrides,
    });
    clients.push(client);
    return client;
  };
  const client = makeClient();
  let stopped = false;
  return {
    endpoint,
    client,
    directory,
    makeClient,
    async createBucket(name: string) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    env() {
      return {
        PRICESENSE_S3_ENDPOINT: endpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of clients) c.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver 3.7.1 (the last release) encrypts ListObjectsV2 continuation tokens with DES, which
 * OpenSSL 3 (Node >= 17) no longer provides, so any truncated v2 listing fails with a 500
 * (jamhall/s3rver#818). We route v2 listings through s3rver's own v1 (marker) listing and
 * translate the response to v2 with a plain base64 token of the last key, which is what S3
 * clients need: an opaque string to send back.
 */
let listV2FixInstalled = false;

function installListV2Fix(): void {
  if (listV2FixInstalled) return;
  const original = bucketController.getBucket;
  if (typeof original !== 'function') {
    throw new Error('s3rver internals changed: controllers/bucket.getBucket is missing; revisit installListV2Fix');
  }
  bucketController.getBucket = async function getBucketV2Fixed(ctx) {
    const query = { ...ctx.query };
    if (query['list-type'] !== '2') return original(ctx);
    const bucket = ctx.params.bucket;
    const token = typeof query['continuation-token'] === 'string' ? query['continuation-token'] : undefined;
    let marker = typeof query['start-after'] === 'string' ? query['start-after'] : undefined;
    if (token !== undefined) {
      const decoded = Buffer.from(token, 'base64').toString('utf8');
      const sep = decoded.indexOf('\n');
      if (sep === -1 || decoded.slice(0, sep) !== bucket) {
        // Let s3rver answer as S3 does for a token it did not issue.
        return original(ctx);
      }
      marker = decoded.slice(sep + 1);
    }
    const v1Query: Record<string, string | string[] | undefined> = { ...query };
    delete v1Query['list-type'];
    delete v1Query['continuation-token'];
    delete v1Query['start-after'];
    delete v1Query['fetch-owner'];
    if (marker !== undefined) v1Query.marker = marker;
    ctx.query = v1Query;
    await original(ctx);
    const body = ctx.body as { ListBucketResult?: Record<string, unknown> } | undefined;
    const v1 = body?.ListBucketResult;
    if (!v1) return;
    const contents = (v1.Contents as { Key: string; Owner?: unknown }[] | undefined) ?? [];
    const prefixes = (v1.CommonPrefixes as { Prefix: string }[] | undefined) ?? [];
    const lastKey = [...contents.map((c) => c.Key), ...prefixes.map((p) => p.Prefix)].sort().pop();
    const truncated = v1.IsTruncated === true && lastKey !== undefined;
    ctx.body = {
      ListBucketResult: {
        '@': v1['@'],
        Name: v1.Name,
        Prefix: v1.Prefix,
        StartAfter: token === undefined ? query['start-after'] : undefined,
        ContinuationToken: token,
        NextContinuationToken: truncated
          ? Buffer.from(`${bucket}\n${lastKey}`, 'utf8').toString('base64')
          : undefined,
        KeyCount: contents.length + prefixes.length,
        MaxKeys: v1.MaxKeys,
        Delimiter: v1.Delimiter,
        IsTruncated: truncated,
        Contents: contents.map(({ Owner: _owner, ...rest }) => rest),
        CommonPrefixes: v1.CommonPrefixes,
      },
    };
  };
  listV2FixInstalled = true;
}

/**
 * AWS S3's conditional writes on PutObject, which s3rver lacks (it ignores the headers):
 *
 * - `If-None-Match: *` — write only if no object exists under the key, else 412 PreconditionFailed;
 * - `If-Match: <etag>` — write only if the object exists with that ETag, else 412 (404 NoSuchKey
 *   when there is no object at all);
 *
 * evaluated atomically with the write: every PutObject to a key (conditional or not) holds that
 * key's lock from the check until s3rver has stored the object, so two racing conditional
 * creates see one success and one 412. (AWS may instead answer the loser 409
 * ConditionalRequestConflict; S3Lake retries that.) The middleware goes just before s3rver's
 * router, so errors are rendered by s3rver as S3 XML errors.
 */
function installConditionalWrites(server: S3rver): void {
  const locks = new Map<string, Promise<void>>();
  const conditional = async (ctx: Parameters<S3rver['middleware'][number]>[0], next: () => Promise<void>): Promise<void> => {
    const parts = ctx.path.split('/').filter((p, i) => i > 0 || p !== '');
    const isObjectPut = ctx.method === 'PUT' && parts.length >= 2 && ctx.query.uploadId === undefined && ctx.headers['x-amz-copy-source'] === undefined;
    if (!isObjectPut) return next();
    const bucket = decodeURIComponent(parts[0]);
    const key = parts.slice(1).map(decodeURIComponent).join('/');
    const id = `${bucket}/${key}`;
    const previous = locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = previous.then(() => mine);
    locks.set(id, chained);
    await previous;
    try {
      const ifNoneMatch = header(ctx.headers['if-none-match']);
      const ifMatch = header(ctx.headers['if-match']);
      if (ifNoneMatch !== undefined || ifMatch !== undefined) {
        const etag = await server.store.getMetadata(bucket, key).then(
          (m) => m.etag,
          (err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return undefined;
            throw err;
          },
        );
        if (ifNoneMatch !== undefined) {
          if (ifNoneMatch !== '*') throw new S3Error('NotImplemented', 'If-None-Match on PutObject only accepts *', { Header: 'If-None-Match' });
          if (etag !== undefined) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' });
        }
        if (ifMatch !== undefined) {
          if (etag === undefined) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
          if (unquote(ifMatch) !== unquote(etag)) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
        }
      }
      await next();
    } finally {
      release();
      if (locks.get(id) === chained) locks.delete(id);
    }
  };
  // s3rver's router is the last middleware; Koa composes the list when the server starts.
  server.middleware.splice(server.middleware.length - 1, 0, conditional);
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}
