import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors';
import { collectAtMost, ObjectTooLargeError, readFileAtMost, RefusedReadError } from '../bounded-read';

describe('readFileAtMost', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-bounded-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file of up to maxBytes whole, and an empty one', async () => {
    const file = path.join(dir, 'a');
    const bytes = Buffer.from('x'.repeat(1000));
    await writeFile(file, bytes);
    expect((await readFileAtMost(file, 1000)).equals(bytes)).toBe(true);
    await writeFile(file, '');
    expect((await readFileAtMost(file, 1000)).length).toBe(0);
  });

  it('refuses a file of maxBytes + 1 on its size, naming the file, its size and the limit', async () => {
    const file = path.join(dir, 'big');
    await writeFile(file, Buffer.alloc(1001));
    const err = await readFileAtMost(file, 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectTooLargeError);
    expect(err).toBeInstanceOf(UserError);
    expect(err).toMatchObject({ bytes: 1001, maxBytes: 1000, sizeKnown: true, location: file });
    expect((err as Error).message).toBe(`${file} is 1,001 bytes, more than the 1,000 bytes this read accepts; refused on its size, before it was read`);
  });

  it('returns a buffer of its own (offset 0, the whole ArrayBuffer): a worker thread can take it by transfer, without a copy', async () => {
    const file = path.join(dir, 'owned');
    await writeFile(file, Buffer.alloc(100_000, 3));
    const bytes = await readFileAtMost(file, 1_000_000);
    expect(bytes.length).toBe(100_000);
    expect([bytes.byteOffset, bytes.buffer.byteLength]).toEqual([0, 100_000]);
  });

  it('refuses a limit that is not a non-negative integer (it would silently lift the bound)', async () => {
    const file = path.join(dir, 'a');
    await writeFile(file, 'x');
    for (const bad of [NaN, -1, 1.5, Infinity]) await expect(readFileAtMost(file, bad)).rejects.toThrow(RangeError);
  });

  it('refuses a 3 GiB (sparse) file without allocating it, where readFile would fail with an engine message', async () => {
    const file = path.join(dir, 'sparse');
    await writeFile(file, '');
    await truncate(file, 3 * 1024 ** 3);
    await expect(readFileAtMost(file, 512 * 1024 * 1024)).rejects.toMatchObject({ name: 'ObjectTooLargeError', bytes: 3 * 1024 ** 3, sizeKnown: true });
  });

  it('counts the bytes as they arrive when the stat does not tell the size (a /proc file says 0, then has more)', async () => {
    const status = await readFileAtMost('/proc/self/status', 1_000_000);
    expect(status.toString('utf8')).toMatch(/^Name:/);
    const err = await readFileAtMost('/proc/self/status', 100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectTooLargeError);
    expect(err).toMatchObject({ maxBytes: 100, sizeKnown: false });
    expect((err as Error).message).toMatch(/^\/proc\/self\/status grew past the 100 bytes this read accepts while it was read \([\d,]+ bytes read\); the rest was not read$/);
  });

  it('refuses a FIFO at once, without waiting for a writer (a blocking open would hold a libuv thread for good)', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await expect(readFileAtMost(fifo, 1000)).rejects.toThrow(`${fifo} is not a regular file (a FIFO, socket or device); refused without reading it`);
    // Its own class (a RefusedReadError, as a too-large object is), so a registry can pass over the one version it belongs to.
    await expect(readFileAtMost(fifo, 1000)).rejects.toMatchObject({ name: 'NotRegularFileError', code: 'ENOTREG', location: fifo });
    await expect(readFileAtMost(fifo, 1000)).rejects.toBeInstanceOf(RefusedReadError);
  });

  it('gives a directory as EISDIR (a lake reads it as "not found")', async () => {
    await expect(readFileAtMost(dir, 1000)).rejects.toMatchObject({ code: 'EISDIR', name: 'NotRegularFileError' });
    await expect(readFileAtMost(dir, 1000)).rejects.toThrow(`${dir} is a directory, not a file; refused without reading it`);
  });

  it('passes a missing file through as ENOENT (callers tell "not there" from "too big")', async () => {
    await expect(readFileAtMost(path.join(dir, 'nope'), 10)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('collectAtMost', () => {
  async function* chunks(sizes: number[], pulled: { n: number }) {
    for (const s of sizes) {
      pulled.n++;
      yield Buffer.alloc(s, 1);
    }
  }

  it('joins a body of up to maxBytes', async () => {
    const pulled = { n: 0 };
    const body = await collectAtMost(chunks([10, 20, 30], pulled), 's3://b/k', 60);
    expect(body.length).toBe(60);
    expect(pulled.n).toBe(3);
  });

  it('with the announced length, fills one buffer of its own; more than announced still joins right', async () => {
    const pulled = { n: 0 };
    // Under 4 KiB, where a join would share Node's buffer pool (another offset, a larger ArrayBuffer).
    const body = await collectAtMost(chunks([500, 500], pulled), 's3://b/k', 20_000, 1000);
    expect([body.length, body.byteOffset, body.buffer.byteLength]).toEqual([1000, 0, 1000]);
    const lied = await collectAtMost(chunks([5000, 5000, 3000], { n: 0 }), 's3://b/k', 20_000, 8000);
    expect(lied.length).toBe(13_000);
    expect(lied.every((b) => b === 1)).toBe(true);
  });

  it('stops at the chunk that passes maxBytes: the rest of the body is never pulled', async () => {
    const pulled = { n: 0 };
    const err = await collectAtMost(chunks([40, 40, 40, 40], pulled), 's3://b/k', 60).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ObjectTooLargeError', location: 's3://b/k', bytes: 80, maxBytes: 60, sizeKnown: false });
    expect(pulled.n).toBe(2);
  });
});
