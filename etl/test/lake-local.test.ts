import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/errors';
import { LocalLake, openLake } from '../lake';
import { describeLakeConformance } from './lake-conformance';

describeLakeConformance('LocalLake', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-lake-'));
  return { lake: new LocalLake(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('LocalLake specifics', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-lake-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('leaves no temp files behind and removes directories a delete empties', async () => {
    const lake = new LocalLake(dir);
    await lake.write('gold/deep/x.txt', 'x');
    await lake.write('gold/deep/x.txt', 'y');
    expect(await readdir(path.join(dir, 'gold', 'deep'))).toEqual(['x.txt']);
    await lake.delete('gold/deep/x.txt');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses keys that escape the root or are not relative', async () => {
    const lake = new LocalLake(dir);
    for (const key of ['../x', '/etc/passwd', 'a/../../b', 'a//b', '', 'a\\b']) {
      await expect(lake.write(key, 'x')).rejects.toThrow(/invalid lake key/);
    }
  });

  it('openLake: argument, then PRICESENSE_LAKE, then .pricesense/lake; unknown schemes are a user error', async () => {
    const saved = process.env.PRICESENSE_LAKE;
    try {
      expect((await openLake(dir)).root).toBe(path.resolve(dir));
      process.env.PRICESENSE_LAKE = path.join(dir, 'env');
      expect((await openLake()).root).toBe(path.join(dir, 'env'));
      delete process.env.PRICESENSE_LAKE;
      expect((await openLake()).root).toBe(path.resolve('.pricesense/lake'));
      await expect(openLake('gs://bucket/x')).rejects.toThrow(UserError);
      const s3 = await openLake('s3://bucket/prefix');
      expect(s3.kind).toBe('s3');
      expect(s3.root).toBe('s3://bucket/prefix');
    } finally {
      if (saved === undefined) delete process.env.PRICESENSE_LAKE;
      else process.env.PRICESENSE_LAKE = saved;
    }
  });
});
