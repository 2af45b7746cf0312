/**
 * Backend-agnostic conformance suite for Lake implementations and the stage commit
 * protocol on top of them. Each backend's test file calls describeLakeConformance with
 * a factory that returns a fresh, empty lake.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { localCopyOf, MANIFEST_NAME, readCommittedFile, readStageManifest, StageCommit } from '../lake/commit';
import { ObjectTooLargeError, type Lake, type LakeObject, type ReadOptions } from '../lake/types';

export interface LakeFixture {
  lake: Lake;
  cleanup?: () => Promise<void>;
}

/** Wraps a lake and fails the first write/upload whose key matches, like a crash at that point. */
export class CrashingLake implements Lake {
  crashes = 0;
  constructor(
    private readonly inner: Lake,
    private readonly crashOn: (key: string) => boolean,
  ) {}
  get root(): string {
    return this.inner.root;
  }
  get kind(): 'local' | 's3' {
    return this.inner.kind;
  }
  list(prefix: string, options?: { versions?: boolean }): Promise<LakeObject[]> {
    return this.inner.list(prefix, options);
  }
  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }
  read(key: string, options?: ReadOptions): Promise<Buffer> {
    return this.inner.read(key, options);
  }
  async write(key: string, body: Buffer | string): Promise<void> {
    this.maybeCrash(key);
    return this.inner.write(key, body);
  }
  async writeIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    this.maybeCrash(key);
    return this.inner.writeIfAbsent(key, body);
  }
  version(key: string): Promise<string | null> {
    return this.inner.version(key);
  }
  async writeIfVersion(key: string, body: Buffer | string, expected: string | null): Promise<boolean> {
    this.maybeCrash(key);
    return this.inner.writeIfVersion(key, body, expected);
  }
  download(key: string, localPath: string): Promise<void> {
    return this.inner.download(key, localPath);
  }
  async upload(localPath: string, key: string): Promise<void> {
    this.maybeCrash(key);
    return this.inner.upload(localPath, key);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  uri(key: string): string {
    return this.inner.uri(key);
  }
  private maybeCrash(key: string): void {
    if (this.crashOn(key)) {
      this.crashes++;
      throw new Error(`injected crash writing ${key}`);
    }
  }
}

export function describeLakeConformance(name: string, makeLake: () => Promise<LakeFixture>): void {
  describe(`Lake conformance: ${name}`, () => {
    let fx: LakeFixture;
    let lake: Lake;
    let local: string;

    beforeEach(async () => {
      fx = await makeLake();
      lake = fx.lake;
      local = await mkdtemp(path.join(os.tmpdir(), 'pricesense-conformance-'));
    });
    afterEach(async () => {
      await fx.cleanup?.();
      await rm(local, { recursive: true, force: true });
    });

    it('writes and reads back bytes and strings, and overwrites whole', async () => {
      const bin = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
      await lake.write('raw/a.bin', bin);
      await lake.write('raw/b.txt', 'héllo\n');
      expect(await lake.read('raw/a.bin')).toEqual(bin);
      expect((await lake.read('raw/b.txt')).toString('utf8')).toBe('héllo\n');
      await lake.write('raw/b.txt', 'second version, longer than the first');
      expect((await lake.read('raw/b.txt')).toString('utf8')).toBe('second version, longer than the first');
      await lake.write('raw/b.txt', 'x');
      expect((await lake.read('raw/b.txt')).toString('utf8')).toBe('x');
    });

    it('reads with maxBytes: an object of up to that many bytes whole, a larger one refused on its size before its bytes are held', async () => {
      const body = Buffer.alloc(100_000, 7);
      await lake.write('artifacts/m.bin', body);
      expect((await lake.read('artifacts/m.bin', { maxBytes: 100_000 })).equals(body)).toBe(true);
      const err = await lake.read('artifacts/m.bin', { maxBytes: 99_999 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ObjectTooLargeError);
      expect(err).toMatchObject({ bytes: 100_000, maxBytes: 99_999, sizeKnown: true });
      expect((err as Error).message).toContain(lake.uri('artifacts/m.bin').replace(/^file:\/\//, ''));
      expect((err as Error).message).toContain('100,000 bytes, more than the 99,999 bytes this read accepts; refused on its size, before it was read');
      await expect(lake.read('artifacts/missing.bin', { maxBytes: 10 })).rejects.toThrow(/artifacts\/missing\.bin/);
    });

    it('lists recursively by string prefix, sorted, with sizes, and nothing else', async () => {
      await lake.write('gold/b/2.txt', '22');
      await lake.write('gold/a.txt', '1');
      await lake.write('gold/b/1.txt', '333');
      await lake.write('golden/x.txt', 'x');
      await lake.write('silver/y.txt', 'y');
      expect(await lake.list('gold/')).toEqual([
        { key: 'gold/a.txt', size: 1 },
        { key: 'gold/b/1.txt', size: 3 },
        { key: 'gold/b/2.txt', size: 2 },
      ]);
      expect((await lake.list('gold')).map((o) => o.key)).toEqual(['gold/a.txt', 'gold/b/1.txt', 'gold/b/2.txt', 'golden/x.txt']);
      expect((await lake.list('gold/b/1')).map((o) => o.key)).toEqual(['gold/b/1.txt']);
      expect(await lake.list('nothing/here/')).toEqual([]);
    });

    it('exists, delete (idempotent) and a clear error for a missing key', async () => {
      await lake.write('tmp/x', 'x');
      expect(await lake.exists('tmp/x')).toBe(true);
      expect(await lake.exists('tmp/y')).toBe(false);
      expect(await lake.exists('tmp')).toBe(false);
      await lake.delete('tmp/x');
      await lake.delete('tmp/x');
      expect(await lake.exists('tmp/x')).toBe(false);
      await expect(lake.read('tmp/x')).rejects.toThrow(/tmp\/x/);
      expect(await lake.list('tmp/')).toEqual([]);
    });

    it('uploads and downloads files byte for byte', async () => {
      const body = Buffer.alloc(3 * 1024 * 1024 + 17);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 9)) & 0xff;
      const src = path.join(local, 'src.bin');
      await writeFile(src, body);
      await lake.upload(src, 'artifacts/big.bin');
      expect((await lake.list('artifacts/'))[0]).toEqual({ key: 'artifacts/big.bin', size: body.length });
      const dst = path.join(local, 'nested', 'dir', 'dst.bin');
      await lake.download('artifacts/big.bin', dst);
      expect((await readFile(dst)).equals(body)).toBe(true);
      await expect(lake.download('artifacts/missing.bin', path.join(local, 'm.bin'))).rejects.toThrow(/missing\.bin/);
    });

    it('names every key under its root', async () => {
      expect(lake.uri('gold/_SUCCESS')).toContain('gold/_SUCCESS'.split('/').pop());
      expect(lake.uri('gold/_SUCCESS').startsWith(lake.root)).toBe(true);
      // Zone prefixes are nameable too: messages say where a zone lives.
      expect(lake.uri('raw/').startsWith(lake.root)).toBe(true);
      expect(lake.uri('raw/')).toMatch(/raw\/?$/);
      expect(() => lake.uri('../escape')).toThrow(/invalid lake key/);
    });

    describe('stage commit', () => {
      async function commitGold(l: Lake, contents: Record<string, string>, meta: Record<string, unknown> = {}) {
        const stage = new StageCommit(l, 'gold');
        for (const [file, body] of Object.entries(contents)) stage.addBuffer(file, body, body.split('\n').length);
        return stage.commit(meta);
      }

      it('publishes content-addressed files and the manifest last, readable through the manifest', async () => {
        const r = await commitGold(lake, { 'train.csv': 'a\nb', 'test.csv': 'c' }, { note: 'v1' });
        expect(r.key).toBe(`gold/${MANIFEST_NAME}`);
        const m = await readStageManifest(lake, 'gold');
        expect(m?.sha256).toBe(r.sha256);
        expect(m?.manifest.meta).toEqual({ note: 'v1' });
        expect(m?.manifest.rows).toBe(3);
        const names = m!.manifest.files.map((f) => f.path);
        expect(names).toEqual([expect.stringMatching(/^test-[0-9a-f]{16}\.csv$/), expect.stringMatching(/^train-[0-9a-f]{16}\.csv$/)]);
        const train = m!.manifest.files.find((f) => f.path.startsWith('train'))!;
        expect((await readCommittedFile(lake, 'gold', train)).toString()).toBe('a\nb');
        const copy = await localCopyOf(lake, 'gold', train, local, { verify: true });
        expect((await readFile(copy)).toString()).toBe('a\nb');
      });

      it('a rerun with the same content rewrites nothing and produces an identical manifest', async () => {
        const first = await commitGold(lake, { 'train.csv': 'a\nb', 'test.csv': 'c' });
        const bytes = await lake.read(first.key);
        const second = await commitGold(lake, { 'test.csv': 'c', 'train.csv': 'a\nb' });
        expect(second.sha256).toBe(first.sha256);
        expect((await lake.read(second.key)).equals(bytes)).toBe(true);
        expect(second.uploaded).toBe(0);
        expect(second.reused).toBe(2);
      });

      it('a crash before the manifest leaves the previous output intact; the next commit collects the debris', async () => {
        const v1 = await commitGold(lake, { 'train.csv': 'old train', 'test.csv': 'old test' });
        const crashing = new CrashingLake(lake, (key) => key.endsWith(`/${MANIFEST_NAME}`));
        await expect(commitGold(crashing, { 'train.csv': 'new train', 'test.csv': 'new test' })).rejects.toThrow(/injected crash/);
        expect(crashing.crashes).toBe(1);
        const after = await readStageManifest(lake, 'gold');
        expect(after?.sha256).toBe(v1.sha256);
        for (const f of after!.manifest.files) expect((await readCommittedFile(lake, 'gold', f)).toString()).toMatch(/^old /);
        // The half-written new files are there (the ledger lists them as pending) but unreachable ...
        const keys = async (): Promise<string[]> => (await lake.list('gold/')).map((o) => o.key.slice('gold/'.length));
        expect((await keys()).length).toBe(6);
        // ... until the next successful commit removes them; the generation it replaces stays for its readers.
        const v3 = await commitGold(lake, { 'train.csv': 'newer train' });
        expect(v3.garbageDeleted).toBe(2);
        const v1files = v1.manifest.files.map((f) => f.path);
        expect((await keys()).sort()).toEqual([MANIFEST_NAME, '_LEDGER.json', ...v1files, v3.manifest.files[0].path].sort());
        // One commit later, v1 goes too.
        const v4 = await commitGold(lake, { 'train.csv': 'newest train' });
        expect(v4.garbageDeleted).toBe(2);
        expect((await keys()).sort()).toEqual([MANIFEST_NAME, '_LEDGER.json', v3.manifest.files[0].path, v4.manifest.files[0].path].sort());
      });

      it('never deletes what no ledger lists: other tools\' objects under the prefix survive every commit', async () => {
        await lake.write('gold/pipeline/e1/p.parquet', 'written by the SageMaker pipeline');
        await lake.write('gold/notes.txt', 'an operator note');
        for (const round of ['a', 'b', 'c', 'd']) await commitGold(lake, { 'train.csv': `train ${round}` });
        expect((await lake.read('gold/pipeline/e1/p.parquet')).toString()).toBe('written by the SageMaker pipeline');
        expect((await lake.read('gold/notes.txt')).toString()).toBe('an operator note');
        expect((await lake.list('gold/')).length).toBe(2 + 2 + 2); // foreign, manifest + ledger, two generations
      });

      it('creates an object only if absent, atomically: of racing creators exactly one wins', async () => {
        expect(await lake.writeIfAbsent('tmp/lock', 'first')).toBe(true);
        expect(await lake.writeIfAbsent('tmp/lock', 'second')).toBe(false);
        expect((await lake.read('tmp/lock')).toString()).toBe('first');
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => lake.writeIfAbsent('tmp/race', `writer ${i}`)));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await lake.read('tmp/race')).toString()).toBe(`writer ${results.indexOf(true)}`);
      });

      it('a crash in the middle of the data files also leaves the previous output intact', async () => {
        const v1 = await commitGold(lake, { 'a.csv': '1', 'b.csv': '2', 'c.csv': '3' });
        const crashing = new CrashingLake(lake, (key) => key.startsWith('gold/b-'));
        await expect(commitGold(crashing, { 'a.csv': '10', 'b.csv': '20', 'c.csv': '30' })).rejects.toThrow(/injected crash/);
        expect((await readStageManifest(lake, 'gold'))?.sha256).toBe(v1.sha256);
        for (const f of v1.manifest.files) await expect(readCommittedFile(lake, 'gold', f)).resolves.toBeInstanceOf(Buffer);
      });

      it('detects a committed file changed behind its back', async () => {
        const r = await commitGold(lake, { 'train.csv': 'genuine' });
        const f = r.manifest.files[0];
        await lake.write(`gold/${f.path}`, 'tampered');
        await expect(readCommittedFile(lake, 'gold', f)).rejects.toThrow(/does not match its manifest/);
        await expect(localCopyOf(lake, 'gold', f, local, { verify: true })).rejects.toThrow(/modified outside pricesense/);
      });

      it('fences a writer that stalled past its lease: its publish is refused when another commit came in between', async () => {
        await commitGold(lake, { 'train.csv': 'v1' });
        const stalled = new StageCommit(lake, 'gold', {
          run: 'stalled',
          // While this run stalls before its commit point, another run commits (and cleans up this run's pending files).
          beforePublish: async () => {
            if (!(await lake.exists('gold/_LEDGER.json')) || (await readStageManifest(lake, 'gold'))?.manifest.meta?.note === 'other') return;
            await commitGold(lake, { 'train.csv': 'other run' }, { note: 'other' });
          },
        });
        stalled.addBuffer('train.csv', 'stalled run', 1);
        await expect(stalled.commit({ note: 'stalled' })).rejects.toThrow(/another run committed .*_SUCCESS while this run was writing gold.*nothing of this run was published/);
        const m = await readStageManifest(lake, 'gold');
        expect(m?.manifest.meta).toEqual({ note: 'other' });
        for (const f of m!.manifest.files) expect((await readCommittedFile(lake, 'gold', f)).toString()).toBe('other run');
        // The fence on a fresh key is create-if-absent.
        expect(await lake.writeIfVersion('tmp/fenced', 'a', null)).toBe(true);
        expect(await lake.writeIfVersion('tmp/fenced', 'b', null)).toBe(false);
        const v = await lake.version('tmp/fenced');
        expect(await lake.writeIfVersion('tmp/fenced', 'c', v)).toBe(true);
        expect(await lake.writeIfVersion('tmp/fenced', 'd', v)).toBe(false);
        expect((await lake.read('tmp/fenced')).toString()).toBe('c');
      });

      it('has no manifest before the first commit', async () => {
        expect(await readStageManifest(lake, 'gold')).toBeUndefined();
      });
    });
  });
}
