import { execFileSync } from 'node:child_process';
import { open as openFile } from 'node:fs/promises';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors';
import { collectAtMost, ObjectTooLargeError, readFileAtMost } from '../bounded-read';

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
    expect((err as Error).message).toBe(`${file} is 1,001 bytes, more than the 1,000 bytes this read accepts; it was not read`);
  });

  it('refuses a 3 GiB (sparse) file without allocating it, where readFile would fail with an engine message', async () => {
    const file = path.join(dir, 'sparse');
    await writeFile(file, '');
    await truncate(file, 3 * 1024 ** 3);
    await expect(readFileAtMost(file, 512 * 1024 * 1024)).rejects.toMatchObject({ name: 'ObjectTooLargeError', bytes: 3 * 1024 ** 3, sizeKnown: true });
  });

  it('counts the bytes as they arrive when the size is not known up front (a FIFO: its stat says 0)', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const feed = async (n: number) => {
      const w = await openFile(fifo, 'w');
      try {
        await w.write(Buffer.alloc(n, 0x61));
      } catch {
        // The reader stopped early and closed its end (EPIPE): what a refusal does.
      } finally {
        await w.close();
      }
    };
    const [within] = await Promise.all([readFileAtMost(fifo, 300_000), feed(200_000)]);
    expect(within.length).toBe(200_000);
    expect(within.every((b) => b === 0x61)).toBe(true);
    const [refused] = await Promise.all([readFileAtMost(fifo, 100_000).catch((e: unknown) => e), feed(200_000)]);
    expect(refused).toBeInstanceOf(ObjectTooLargeError);
    expect(refused).toMatchObject({ maxBytes: 100_000, sizeKnown: false });
    expect((refused as ObjectTooLargeError).bytes).toBeGreaterThan(100_000);
    expect((refused as Error).message).toMatch(/ is more than [\d,]+ bytes, more than the 100,000 bytes this read accepts/);
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

  it('stops at the chunk that passes maxBytes: the rest of the body is never pulled', async () => {
    const pulled = { n: 0 };
    const err = await collectAtMost(chunks([40, 40, 40, 40], pulled), 's3://b/k', 60).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ObjectTooLargeError', location: 's3://b/k', bytes: 80, maxBytes: 60, sizeKnown: false });
    expect(pulled.n).toBe(2);
  });
});
