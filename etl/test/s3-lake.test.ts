import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { UserError } from '../../core/errors';
import { openLake } from '../lake';
import { S3Lake, S3LakeError, S3_MIN_PART_SIZE, parseS3Uri, s3ClientConfigFromEnv } from '../lake/s3';
import { startS3Server, type S3TestServer } from '../testing/s3-server';
import { describeLakeConformance } from './lake-conformance';

let server: S3TestServer;
let tmp: string;
const BUCKET = 'lake-test';

beforeAll(async () => {
  server = await startS3Server({ buckets: [BUCKET] });
  tmp = await mkdtemp(path.join(os.tmpdir(), 's3-lake-test-'));
});

afterAll(async () => {
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

let lakeCounter = 0;

// The backend-agnostic suite, each case on a fresh prefix of the shared server's bucket.
describeLakeConformance('S3Lake (s3rver over HTTP)', async () => ({
  lake: new S3Lake(`s3://${BUCKET}/conformance-${++lakeCounter}`, { client: server.client }),
}));

/** A fresh lake under its own prefix, so tests don't see each other's objects. */
function freshLake(options: ConstructorParameters<typeof S3Lake>[1] = {}): S3Lake {
  return new S3Lake(`s3://${BUCKET}/t${++lakeCounter}/lake`, { client: server.client, ...options });
}

/** Records the SDK command names a client sends; optionally fails chosen requests. */
function recordCommands(client: S3Client, fail?: (name: string, nth: number) => boolean): string[] {
  const names: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '?';
      names.push(name);
      const nth = names.filter((n) => n === name).length;
      if (fail?.(name, nth)) throw new Error(`injected failure in ${name} #${nth}`);
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  return names;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('S3Lake basics over HTTP (s3rver)', () => {
  test('write, read, exists, list, delete round trip under the root prefix', async () => {
    const lake = freshLake();
    await lake.write('gold/_SUCCESS', '{"ok":true}');
    await lake.write('gold/train.parquet', Buffer.from([0, 1, 2, 255]));
    await lake.write('raw/a.csv', 'x\n');
    expect((await lake.read('gold/train.parquet')).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
    expect((await lake.read('gold/_SUCCESS')).toString()).toBe('{"ok":true}');
    expect(await lake.exists('gold/_SUCCESS')).toBe(true);
    expect(await lake.exists('gold/nope')).toBe(false);
    expect(await lake.list('gold/')).toEqual([
      { key: 'gold/_SUCCESS', size: 11 },
      { key: 'gold/train.parquet', size: 4 },
    ]);
    expect((await lake.list('')).map((o) => o.key)).toEqual(['gold/_SUCCESS', 'gold/train.parquet', 'raw/a.csv']);
    await lake.delete('gold/_SUCCESS');
    await lake.delete('gold/_SUCCESS'); // deleting a missing key is fine
    expect(await lake.exists('gold/_SUCCESS')).toBe(false);
    expect((await lake.list('gold')).map((o) => o.key)).toEqual(['gold/train.parquet']);
  });

  test('objects outside the root prefix are invisible, including a sibling prefix sharing its start', async () => {
    const lake = new S3Lake(`s3://${BUCKET}/iso/lake`, { client: server.client });
    const sibling = new S3Lake(`s3://${BUCKET}/iso/lake2`, { client: server.client });
    await lake.write('raw/x.csv', 'a');
    await sibling.write('raw/y.csv', 'b');
    expect((await lake.list('')).map((o) => o.key)).toEqual(['raw/x.csv']);
    expect((await sibling.list('raw/')).map((o) => o.key)).toEqual(['raw/y.csv']);
    expect(lake.uri('raw/x.csv')).toBe(`s3://${BUCKET}/iso/lake/raw/x.csv`);
  });

  test('a lake at the bucket root (no prefix) works', async () => {
    await server.createBucket('rootless');
    const lake = new S3Lake('s3://rootless', { client: server.client });
    expect(lake.root).toBe('s3://rootless');
    await lake.write('logs/run.json', '{}');
    expect(await lake.list('')).toEqual([{ key: 'logs/run.json', size: 2 }]);
    expect(lake.uri('logs/run.json')).toBe('s3://rootless/logs/run.json');
  });

  test('list is sorted by key whatever order the names were written in', async () => {
    const lake = freshLake();
    const keys = ['silver/w=10/b.parquet', 'silver/w=1/a.parquet', 'silver/_rejects/r.csv', 'silver/W/up.csv'];
    for (const k of keys) await lake.write(k, k);
    expect((await lake.list('silver/')).map((o) => o.key)).toEqual([...keys].sort());
  });

  test('overwriting replaces the whole object', async () => {
    const lake = freshLake();
    await lake.write('gold/m.json', 'a much longer first version');
    await lake.write('gold/m.json', 'v2');
    expect((await lake.read('gold/m.json')).toString()).toBe('v2');
  });

  test('download streams to a local file (creating its directory) and leaves no temp file', async () => {
    const lake = freshLake();
    const body = randomBytes(300_000);
    await lake.write('raw/t.bin', body);
    const dest = path.join(tmp, 'dl', 'nested', 't.bin');
    await lake.download('raw/t.bin', dest);
    expect((await readFile(dest)).equals(body)).toBe(true);
    expect(await readdir(path.dirname(dest))).toEqual(['t.bin']);
  });

  test('upload of a small file is a single PutObject', async () => {
    const lake = freshLake({ client: server.makeClient() });
    const names = recordCommands(lake.client);
    const src = path.join(tmp, 'small.csv');
    await writeFile(src, 'a,b\n1,2\n');
    await lake.upload(src, 'raw/small.csv');
    expect((await lake.read('raw/small.csv')).toString()).toBe('a,b\n1,2\n');
    expect(names.filter((n) => n !== 'GetObjectCommand')).toEqual(['PutObjectCommand']);
  });

  test('invalid keys are refused before any request', async () => {
    const lake = freshLake();
    for (const key of ['', '/abs', 'a/../b', 'a//b', 'dir/']) {
      await expect(lake.write(key, 'x')).rejects.toThrow(/invalid lake key/);
    }
    await expect(lake.list('../x')).rejects.toThrow(/invalid lake key/);
  });
});

describe('S3Lake listing pagination', () => {
  test('lists past 1,000 keys (more than one S3 page at the default page size)', async () => {
    const lake = freshLake({ client: server.makeClient() });
    const names = recordCommands(lake.client);
    const keys = Array.from({ length: 1005 }, (_, i) => `silver/part-${String(i).padStart(5, '0')}.parquet`);
    for (let i = 0; i < keys.length; i += 25) {
      await Promise.all(keys.slice(i, i + 25).map((k) => lake.write(k, 'p')));
    }
    const listed = await lake.list('silver/');
    expect(listed.map((o) => o.key)).toEqual(keys);
    expect(names.filter((n) => n === 'ListObjectsV2Command')).toHaveLength(2);
  });

  test('a small page size walks every page with continuation tokens, and only within the prefix', async () => {
    const lake = freshLake({ client: server.makeClient(), maxKeys: 4 });
    const names = recordCommands(lake.client);
    const keys = Array.from({ length: 13 }, (_, i) => `gold/f${String(i).padStart(2, '0')}`);
    await Promise.all([...keys, 'golden/not-me', 'raw/not-me'].map((k) => lake.write(k, k)));
    expect((await lake.list('gold/')).map((o) => o.key)).toEqual(keys);
    expect(names.filter((n) => n === 'ListObjectsV2Command')).toHaveLength(4); // 4+4+4+1
  });

  test('page sizes outside 1..1000 are refused', () => {
    expect(() => freshLake({ maxKeys: 0 })).toThrow(/maxKeys/);
    expect(() => freshLake({ maxKeys: 1001 })).toThrow(/maxKeys/);
  });
});

describe('S3Lake multipart upload', () => {
  const size = 2 * S3_MIN_PART_SIZE + 123_457; // three parts at the minimum part size

  test('a file larger than the part size is uploaded in parts and reads back byte-identical', async () => {
    const lake = freshLake({ client: server.makeClient(), partSize: S3_MIN_PART_SIZE, partConcurrency: 2 });
    const names = recordCommands(lake.client);
    const src = path.join(tmp, 'big.bin');
    const body = randomBytes(size);
    await writeFile(src, body);
    await lake.upload(src, 'raw/big.bin');
    expect(names.filter((n) => n === 'UploadPartCommand')).toHaveLength(3);
    expect(names).toContain('CompleteMultipartUploadCommand');
    expect(await lake.list('raw/')).toEqual([{ key: 'raw/big.bin', size }]);
    const dest = path.join(tmp, 'big-back.bin');
    await lake.download('raw/big.bin', dest);
    expect(sha256(await readFile(dest))).toBe(sha256(body));
  });

  test('a failed part aborts the upload and leaves the previous object intact', async () => {
    const lake = freshLake({ client: server.makeClient(), partSize: S3_MIN_PART_SIZE, partConcurrency: 1 });
    await lake.write('raw/big.bin', 'previous version');
    const names = recordCommands(lake.client, (name, nth) => name === 'UploadPartCommand' && nth === 2);
    const src = path.join(tmp, 'big-fail.bin');
    await writeFile(src, randomBytes(size));
    await expect(lake.upload(src, 'raw/big.bin')).rejects.toThrow(/injected failure in UploadPartCommand #2/);
    expect(names).toContain('AbortMultipartUploadCommand');
    expect(names).not.toContain('CompleteMultipartUploadCommand');
    expect((await lake.read('raw/big.bin')).toString()).toBe('previous version');
  });

  test('a new key stays absent when its multipart upload fails', async () => {
    const lake = freshLake({ client: server.makeClient(), partSize: S3_MIN_PART_SIZE });
    recordCommands(lake.client, (name) => name === 'CompleteMultipartUploadCommand');
    const src = path.join(tmp, 'big-new.bin');
    await writeFile(src, randomBytes(size));
    await expect(lake.upload(src, 'raw/new.bin')).rejects.toThrow(/injected failure/);
    expect(await lake.exists('raw/new.bin')).toBe(false);
    expect(await lake.list('raw/')).toEqual([]);
  });

  test('never leaves a multipart upload open when the local file goes away as the upload starts', async () => {
    const lake = freshLake({ client: server.makeClient(), partSize: S3_MIN_PART_SIZE });
    const names = recordCommands(lake.client);
    const src = path.join(tmp, 'vanishing.bin');
    await writeFile(src, randomBytes(size));
    // A cleanup job removes the file just as the upload is created.
    lake.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CreateMultipartUploadCommand') await rm(src, { force: true });
        return next(args);
      },
      { step: 'initialize', name: 'removeSource' },
    );
    await lake.upload(src, 'raw/vanishing.bin').catch(() => undefined);
    const count = (name: string) => names.filter((n) => n === name).length;
    // The race happened (else the check below holds with nothing created).
    expect(count('CreateMultipartUploadCommand')).toBeGreaterThan(0);
    // Every upload S3 was asked to create is either completed or aborted (an open one keeps its parts billed).
    expect(count('CreateMultipartUploadCommand')).toBe(count('CompleteMultipartUploadCommand') + count('AbortMultipartUploadCommand'));
  });

  test('part sizes under the S3 minimum are refused', () => {
    expect(() => freshLake({ partSize: 1024 })).toThrow(/at least 5242880 bytes/);
  });

  test('uploading a missing local file names the file', async () => {
    const lake = freshLake();
    await expect(lake.upload(path.join(tmp, 'nope.csv'), 'raw/nope.csv')).rejects.toThrow(
      /cannot upload '.*nope\.csv' to s3:\/\/lake-test\/.*raw\/nope\.csv/,
    );
  });
});

/**
 * A loopback proxy in front of the test server that cuts the body of the next `cuts` GET
 * responses half way (headers and Content-Length sent, then the socket destroyed), the way a
 * connection reset mid-download looks to the client.
 */
async function bodyCuttingProxy(upstream: string): Promise<{ endpoint: string; cut(n: number): void; close(): Promise<void> }> {
  const target = new URL(upstream);
  let cuts = 0;
  const proxy = http.createServer((req, res) => {
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (req.method === 'GET' && body.length > 1 && cuts > 0) {
            cuts--;
            res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
          } else {
            res.end(body);
          }
        });
      },
    );
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    cut: (n) => {
      cuts = n;
    },
    close: () => new Promise<void>((r) => proxy.close(() => r())),
  };
}

describe('S3Lake reads whose body is cut off', () => {
  test('are read again; a body cut on every attempt is an S3LakeError naming the object', async () => {
    const proxy = await bodyCuttingProxy(server.endpoint);
    try {
      const key = 'tmp/etl-lease/000000000001.json';
      const prefix = `t${++lakeCounter}/lake`;
      await new S3Lake(`s3://${BUCKET}/${prefix}`, { client: server.client }).write(key, JSON.stringify({ pad: 'x'.repeat(4096) }));
      const lake = new S3Lake(`s3://${BUCKET}/${prefix}`, { client: server.makeClient({ endpoint: proxy.endpoint, maxAttempts: 1 }) });
      proxy.cut(1);
      expect(JSON.parse((await lake.read(key)).toString('utf8'))).toEqual({ pad: 'x'.repeat(4096) });
      proxy.cut(100);
      const err = await lake.read(key).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain(`s3://${BUCKET}/${prefix}/${key}`);
    } finally {
      await proxy.close();
    }
  });
});

describe('S3Lake errors name what is wrong', () => {
  test('a missing bucket is reported as such by every operation', async () => {
    const lake = new S3Lake('s3://no-such-bucket/lake', { client: server.client });
    const ops: Array<[string, () => Promise<unknown>]> = [
      ['list', () => lake.list('')],
      ['read', () => lake.read('gold/_SUCCESS')],
      ['write', () => lake.write('gold/x', 'x')],
      ['exists', () => lake.exists('gold/x')],
      ['download', () => lake.download('gold/x', path.join(tmp, 'never'))],
    ];
    for (const [op, run] of ops) {
      const err = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect({ op, err }).toEqual({ op, err: expect.any(S3LakeError) });
      expect((err as S3LakeError).code).toBe('NoSuchBucket');
      expect((err as Error).message).toMatch(/S3 bucket 'no-such-bucket' does not exist/);
    }
    expect(existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  test('a missing key names the key and the full URI, and download leaves no file', async () => {
    const lake = freshLake();
    const err = await lake.read('gold/missing.parquet').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3LakeError);
    expect(err).toBeInstanceOf(UserError);
    expect((err as S3LakeError).code).toBe('NoSuchKey');
    expect((err as Error).message).toMatch(/lake object not found: s3:\/\/lake-test\/t\d+\/lake\/gold\/missing\.parquet \(key 'gold\/missing\.parquet'\)/);
    const dest = path.join(tmp, 'missing-dl', 'x.parquet');
    await expect(lake.download('gold/missing.parquet', dest)).rejects.toThrow(/lake object not found/);
    expect(existsSync(dest)).toBe(false);
  });

  test('rejected credentials are reported without echoing the secret', async () => {
    const client = server.makeClient({ credentials: { accessKeyId: 'not-a-key', secretAccessKey: 'hush-hush' } });
    const lake = new S3Lake(`s3://${BUCKET}/lake`, { client });
    const err = await lake.list('').catch((e: unknown) => e);
    expect((err as S3LakeError).code).toBe('BadCredentials');
    expect((err as Error).message).toMatch(/InvalidAccessKeyId.*AWS_ACCESS_KEY_ID/);
    expect((err as Error).message).not.toContain('hush-hush');
  });

  test('AccessDenied names the bucket, the key, the permission needed and what S3 said', async () => {
    // s3rver answers AccessDenied to a request without a date; strip it after signing.
    const client = server.makeClient();
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { headers: Record<string, string> };
        delete req.headers['x-amz-date'];
        return next(args);
      },
      { step: 'finalizeRequest', name: 'dropDate', priority: 'low' },
    );
    const lake = new S3Lake(`s3://${BUCKET}/denied`, { client });
    const err = await lake.write('gold/x.parquet', 'x').catch((e: unknown) => e);
    expect((err as S3LakeError).code).toBe('AccessDenied');
    expect((err as Error).message).toBe(
      `access denied to s3://${BUCKET}/denied/gold/x.parquet (write): the credentials in use need s3:PutObject ` +
        `on arn:aws:s3:::${BUCKET}/denied/* (S3: AWS authentication requires a valid Date or x-amz-date header)`,
    );
    const listErr = await lake.list('').catch((e: unknown) => e);
    expect((listErr as Error).message).toMatch(new RegExp(`need s3:ListBucket on arn:aws:s3:::${BUCKET} \\(S3: `));
  });

  test('an unreachable endpoint says so', async () => {
    const stopped = await startS3Server();
    const client = stopped.makeClient({ maxAttempts: 1 });
    await stopped.stop();
    const lake = new S3Lake('s3://any-bucket/lake', { client });
    await expect(lake.read('x')).rejects.toThrow(/cannot reach the S3 endpoint for s3:\/\/any-bucket\/lake \(ECONNREFUSED\)/);
  });
});

describe('S3 lake URIs', () => {
  test.each([
    ['s3://bucket/pre/fix', 'bucket', 'pre/fix'],
    ['s3://bucket/pre/fix/', 'bucket', 'pre/fix'],
    ['s3://bucket', 'bucket', ''],
    ['s3://bucket/', 'bucket', ''],
    ['s3://my.bucket-1/lake', 'my.bucket-1', 'lake'],
  ])('%s parses', (uri, bucket, prefix) => {
    expect(parseS3Uri(uri)).toEqual({ bucket, prefix });
  });

  test.each([
    ['/data/lake', /not an S3 lake URI: '\/data\/lake' \(expected s3:\/\/bucket\/prefix/],
    ['s3:/bucket/x', /not an S3 lake URI/],
    ['S3://bucket/x', /not an S3 lake URI/],
    ['s3://', /has no bucket name/],
    ['s3:///prefix', /has no bucket name/],
    ['s3://My_Bucket/x', /'My_Bucket' is not a valid bucket name/],
    ['s3://ab/x', /'ab' is not a valid bucket name/],
    ['s3://-bucket/x', /not a valid bucket name/],
    ['s3://a..b/x', /not a valid bucket name/],
    ['s3://192.168.1.1/x', /not a valid bucket name/],
    ['s3://bucket/a//b', /empty, '\.' or '\.\.' path segment/],
    ['s3://bucket/a/../b', /empty, '\.' or '\.\.' path segment/],
  ])('%s is refused with a clear message', (uri, message) => {
    expect(() => parseS3Uri(uri)).toThrow(UserError);
    expect(() => parseS3Uri(uri)).toThrow(message);
    expect(() => new S3Lake(uri, { client: server.client })).toThrow(message);
  });

  test('root is normalised and kind is s3', () => {
    const lake = new S3Lake('s3://bucket/pre/fix/', { client: server.client });
    expect(lake.root).toBe('s3://bucket/pre/fix');
    expect(lake.kind).toBe('s3');
    expect(lake.uri('gold/_SUCCESS')).toBe('s3://bucket/pre/fix/gold/_SUCCESS');
  });
});

describe('client configuration from the environment', () => {
  test('defaults: us-east-1, AWS endpoints, SDK checksum defaults', () => {
    expect(s3ClientConfigFromEnv({})).toEqual({ region: 'us-east-1' });
    expect(s3ClientConfigFromEnv({ AWS_REGION: 'eu-west-1' })).toEqual({ region: 'eu-west-1' });
  });

  test('an endpoint override turns on path style and required-only checksums', () => {
    expect(s3ClientConfigFromEnv({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000' })).toEqual({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const both = s3ClientConfigFromEnv({
      PRICESENSE_S3_ENDPOINT: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_SUPPORTED',
    });
    expect(both.endpoint).toBe('http://127.0.0.1:1');
    expect(both.requestChecksumCalculation).toBeUndefined(); // left to the SDK, which reads the variable
  });

  test('a malformed endpoint is refused naming the variable', () => {
    expect(() => s3ClientConfigFromEnv({ PRICESENSE_S3_ENDPOINT: 'localhost:9000' })).toThrow(
      /PRICESENSE_S3_ENDPOINT='localhost:9000' must be an http:\/\/ or https:\/\/ URL/,
    );
    expect(() => s3ClientConfigFromEnv({ AWS_ENDPOINT_URL_S3: 'not a url' })).toThrow(
      /AWS_ENDPOINT_URL_S3='not a url' is not a URL/,
    );
  });

  describe('with the environment pointing at the test server', () => {
    const saved: Record<string, string | undefined> = {};
    beforeAll(() => {
      for (const [k, v] of Object.entries(server.env())) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
    });
    afterAll(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });

    test('openLake("s3://…") returns an S3Lake configured from the environment that round-trips a streamed upload', async () => {
      const lake = await openLake(`s3://${BUCKET}/from-env`);
      expect(lake).toBeInstanceOf(S3Lake);
      expect(lake.kind).toBe('s3');
      expect(lake.root).toBe(`s3://${BUCKET}/from-env`);
      // With the SDK's default checksums s3rver would store the aws-chunked framing as content.
      const src = path.join(tmp, 'env.csv');
      await writeFile(src, 'SHOP_WEEK\n200607\n');
      await lake.upload(src, 'raw/env.csv');
      expect((await lake.read('raw/env.csv')).toString()).toBe('SHOP_WEEK\n200607\n');
      (lake as S3Lake).client.destroy();
    });
  });

  test('openLake passes an explicit client through', async () => {
    const lake = await openLake(`s3://${BUCKET}/explicit`, { s3Client: server.client });
    expect(lake).toBeInstanceOf(S3Lake);
    expect((lake as S3Lake).client).toBe(server.client);
  });
});

describe('test server helper', () => {
  test('objects written with the raw client are visible to the lake', async () => {
    await server.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'raw-client/lake/raw/a.csv', Body: 'a' }));
    const lake = new S3Lake(`s3://${BUCKET}/raw-client/lake`, { client: server.client });
    expect(await lake.list('raw/')).toEqual([{ key: 'raw/a.csv', size: 1 }]);
  });
});
