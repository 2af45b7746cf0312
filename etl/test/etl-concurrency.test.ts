import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readGoldManifest, readGoldSplit } from '../gold';
import { GOLD_SPLITS } from '../gold-schema';
import { LEASE_FORMAT, LEASE_PREFIX, Lease, LeaseHeldError } from '../lake/lease';
import { LocalLake } from '../lake/local';
import { S3Lake } from '../lake/s3';
import type { Lake, ReadOptions } from '../lake/types';
import { runEtl } from '../pipeline';
import { packageRoot } from '../../core/version';
import { startS3Server, type S3TestServer } from '../testing/s3-server';
import { csv, lines, range } from './drop-fixtures';
import { CrashingLake } from './lake-conformance';

async function seed(lake: Lake, weeks = 3): Promise<void> {
  for (let w = 0; w < weeks; w++) await lake.write(`raw/week${w}.csv`, csv(lines(range(w * 40, w * 40 + 40))));
}

/** Every gold split reads back, every byte checked against the manifest. */
async function goldVerifies(lake: Lake): Promise<number> {
  const m = await readGoldManifest(lake);
  let rows = 0;
  for (const s of GOLD_SPLITS) rows += (await readGoldSplit(lake, s, m)).rows;
  return rows;
}

async function goldBytes(lake: Lake): Promise<Map<string, string>> {
  const m = await readGoldManifest(lake);
  const out = new Map<string, string>([['_SUCCESS', m.sha256]]);
  for (const f of m.manifest.files) out.set(f.path, (await lake.read(`gold/${f.path}`)).toString('base64'));
  return out;
}

// Child processes (ts-node) and several ETL runs per test on a loaded 2-core machine: generous, still bounded.
jest.setTimeout(300_000);

describe('one writer per lake', () => {
  let dir: string;
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['leases'] });
  });
  afterAll(() => s3.stop());
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-lease-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const backends: [string, () => Lake][] = [
    ['a local lake', () => new LocalLake(path.join(dir, 'lake'))],
    ['an S3 lake (conditional writes)', () => new S3Lake(`s3://leases/${path.basename(dir)}`, { client: s3.client })],
  ];

  for (const [name, make] of backends) {
    it(`on ${name}: of two concurrent runs one commits, the other refuses naming the holder; with --wait both commit`, async () => {
      const lake = make();
      await seed(lake);
      const results = await Promise.allSettled([runEtl(lake, { threads: 1 }), runEtl(lake, { threads: 1 })]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(ok).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(refused[0].reason).toBeInstanceOf(LeaseHeldError);
      expect(String(refused[0].reason.message)).toMatch(new RegExp(`another ETL run is writing .*: \\S+@${os.hostname()} pid ${process.pid} \\(run .*\\), started \\d{4}-\\d\\d-\\d\\dT.*--wait`));
      expect(await goldVerifies(lake)).toBe(120);

      await lake.write('raw/week3.csv', csv(lines(range(120, 160))));
      const both = await Promise.all([runEtl(lake, { threads: 1, waitSeconds: 120 }), runEtl(lake, { threads: 1, waitSeconds: 120 })]);
      expect(both.map((r) => r.silver.parsed).sort()).toEqual([0, 1]);
      expect(await goldVerifies(lake)).toBe(160);
    });
  }

  it('refuses a ttl past 7 days (from ~99 days its renewal timer, ttl/4, would be clamped by Node to 1 ms) and a negative wait, before writing anything to the lake', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await expect(Lease.acquire(lake, { ttlSeconds: 120 * 86_400 })).rejects.toThrow('the lease TTL (--lease-ttl) must be a whole number of seconds from 1 to 604,800 (7 days), got 10368000');
    await expect(runEtl(lake, { threads: 1, waitSeconds: -5 })).rejects.toThrow('the wait for the lease (--wait) must be a whole number of seconds from 0 to 604,800 (7 days), got -5');
    expect(await lake.list('')).toEqual([]);
  });

  it('a lease not renewed within its ttl expires; a lease of a process that is gone on this host is free at once', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await seed(lake, 1);
    const stale = (gen: number, pid: number, renewedAt: string) =>
      lake.write(
        `${LEASE_PREFIX}${String(gen).padStart(12, '0')}.json`,
        JSON.stringify({ format: LEASE_FORMAT, run: 'ghost', holder: { host: 'elsewhere', bootId: null, pid, user: 'etl', command: '' }, startedAt: renewedAt, renewedAt, ttlSeconds: 60, released: false, scratch: ['tmp/etl-ghost/'] }),
      );
    await stale(7, 1, new Date().toISOString());
    await expect(runEtl(lake, { threads: 1 })).rejects.toThrow(/etl@elsewhere pid 1 \(run ghost\)/);
    await lake.write('tmp/etl-ghost/debris.bin', 'left by the killed run');
    await stale(8, 1, new Date(Date.now() - 61_000).toISOString());
    const taken: string[] = [];
    const lease = await Lease.acquire(lake, { onTakeover: (d) => taken.push(d) });
    expect(taken[0]).toMatch(/expired at .* \(not renewed for 60 s\)/);
    expect(await lake.list('tmp/etl-ghost/')).toEqual([]);
    await lease.release();
    expect(await goldVerifies(await (async () => (await runEtl(lake, { threads: 1 }), lake))())).toBe(40);
  });

  it('judges a holder dead only from its own PID namespace, and tells a reused pid by its start time', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const me = JSON.parse((await (async () => {
      const l = await Lease.acquire(lake);
      const body = await lake.read(l.key);
      await l.release();
      return body;
    })()).toString()) as { holder: Record<string, unknown> };
    const exited = spawn(process.execPath, ['-e', '0']);
    const deadPid = exited.pid!;
    await new Promise((r) => exited.once('exit', r));
    let gen = 100;
    const holdBy = async (holder: Record<string, unknown>): Promise<void> => {
      const now = new Date().toISOString();
      await lake.write(`${LEASE_PREFIX}${String(++gen).padStart(12, '0')}.json`, JSON.stringify({ format: LEASE_FORMAT, run: `r${gen}`, holder: { ...me.holder, ...holder }, startedAt: now, renewedAt: now, ttlSeconds: 600, released: false, scratch: [] }));
    };
    const tryTake = async (): Promise<string> => {
      try {
        const l = await Lease.acquire(lake);
        await l.release();
        return 'taken';
      } catch (err) {
        expect(err).toBeInstanceOf(LeaseHeldError);
        return 'refused';
      }
    };
    // Another container on this host (same host name and boot id, its own PIDs): its pid means nothing here.
    await holdBy({ pid: deadPid, pidNamespace: 'pid:[1]' });
    expect(await tryTake()).toBe('refused');
    // A record without a namespace (written elsewhere or by an older version): only the ttl counts.
    await holdBy({ pid: deadPid, pidNamespace: null });
    expect(await tryTake()).toBe('refused');
    // Same namespace: a gone pid is free at once; a live pid started at another time is a reused pid.
    await holdBy({ pid: deadPid });
    expect(await tryTake()).toBe('taken');
    await holdBy({ pid: process.ppid, processStart: '1' });
    expect(await tryTake()).toBe('taken');
    await holdBy({ pid: process.ppid, processStart: undefined });
    expect(await tryTake()).toBe('refused');
  });

  it('a lease record that fails to read while its holder replaces it is read again, not called unreadable', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const held = await Lease.acquire(lake);
    try {
      let reads = 0;
      // A read cut off mid-transfer, twice, as an S3-compatible store can do while the object is rewritten.
      const flaky: Lake = Object.assign(Object.create(lake) as Lake, {
        read: async (key: string, options?: ReadOptions): Promise<Buffer> => {
          if (key === held.key && ++reads <= 2) throw new Error('aborted');
          return lake.read(key, options);
        },
      });
      const err = await Lease.acquire(flaky).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LeaseHeldError);
      expect(reads).toBe(3);
    } finally {
      await held.release();
    }
  });

  it('a renewal that fails once (a network blip) does not lose the lease; the run still commits', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await seed(lake, 1);
    let leaseWrites = 0;
    // The 1st lease write is the acquisition; the next two (renewals) fail.
    const flaky = new CrashingLake(lake, (key) => key.startsWith(LEASE_PREFIX) && [2, 3].includes(++leaseWrites));
    const report = await runEtl(flaky, { threads: 1, leaseTtlSeconds: 30 });
    expect(flaky.crashes).toBeGreaterThanOrEqual(1);
    expect(report.gold.rows.train).toBeGreaterThan(0);
  });

  for (const stage of ['silver', 'gold']) {
    it(`a run killed with SIGKILL while writing ${stage} leaves the previous gold readable; the rerun's gold is byte-identical to a clean run's`, async () => {
      const lake = new LocalLake(path.join(dir, 'lake'));
      await seed(lake, 2);
      await runEtl(lake, { threads: 1 });
      const before = await goldBytes(lake);
      await lake.write('raw/week2.csv', csv(lines(range(80, 120))));

      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join('etl', 'testing', 'etl-child.ts'), lake.root, `^${stage}/(parts/|train-)`], {
        cwd: packageRoot(),
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, PRICESENSE_PROGRESS: 'off' },
      });
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('PAUSED')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`child exited (${code}) before pausing: ${out} ${err}`)));
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));

      // Mid-write: the previous gold is exactly as it was and reads back whole.
      expect(await goldBytes(lake)).toEqual(before);
      expect(await goldVerifies(lake)).toBe(80);

      // The killed run's lease is free at once (its process is gone); the rerun cleans up after it.
      const again = await runEtl(lake, { threads: 1 });
      const clean = new LocalLake(path.join(dir, 'clean'));
      await seed(clean, 3);
      const reference = await runEtl(clean, { threads: 1 });
      expect(again.gold.manifestSha256).toBe(reference.gold.manifestSha256);
      expect(await goldBytes(lake)).toEqual(await goldBytes(clean));
      expect((await lake.list('tmp/')).filter((o) => !o.key.startsWith(LEASE_PREFIX))).toEqual([]);
    });
  }
});

describe('S3 stores without conditional writes', () => {
  it('are refused with a clear error instead of silently letting two runs write', async () => {
    const server = await startS3Server({ buckets: ['plain'], conditionalWrites: false });
    try {
      const lake = new S3Lake('s3://plain/lake', { client: server.client });
      await seed(lake, 1);
      await expect(runEtl(lake, { threads: 1 })).rejects.toThrow(/ignores conditional writes .* If-None-Match/);
    } finally {
      await server.stop();
    }
  });
});
