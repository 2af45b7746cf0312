import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../etl/errors';
import { sha256Hex } from '../registry/common';
import { ChecksumMismatchError, LocalRegistry, openRegistry, type Registry } from '../registry';
import { writeFixtureForest } from './registry-fixtures';

let dir: string;
let root: string;
let registry: Registry;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-registry-'));
  root = path.join(dir, 'registry');
  registry = new LocalRegistry(root);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function registerSeeds(...seeds: number[]): Promise<void> {
  for (const seed of seeds) {
    await registry.register(await writeFixtureForest(dir, `f${seed}.json`, { seed, gatesPassed: true }), { by: 'trainer' });
  }
}

describe('local registry: register', () => {
  it('creates version 1 in PendingManualApproval with digests, metrics, lineage and a registration audit entry', async () => {
    const file = await writeFixtureForest(dir, 'model.json', { seed: 3, gatesPassed: true });
    const bytes = await readFile(file);
    const v = await registry.register(file, { by: 'alice', note: 'first forest' });
    const forest = JSON.parse(bytes.toString('utf8')) as { sha256: string };

    expect(v.version).toBe(1);
    expect(v.status).toBe('PendingManualApproval');
    expect(v.forestSha256).toBe(forest.sha256);
    expect(v.artifactSha256).toBe(sha256Hex(bytes));
    expect(v.formatVersion).toBe(1);
    expect(v.metrics).toMatchObject({ accuracy: 0.8, gates: { passed: true } });
    expect(v.lineage).toMatchObject({
      datasetManifestSha256: 'a'.repeat(64),
      codeVersion: 'fixture-commit',
      hyperparameters: { trees: 1, maxDepth: 3, seed: 3 },
      registeredBy: 'alice',
      forced: false,
    });
    expect(Date.parse(v.lineage.registeredAt)).not.toBeNaN();
    expect(v.audit).toEqual([{ at: v.lineage.registeredAt, by: 'alice', from: null, to: 'PendingManualApproval', note: 'first forest' }]);
    expect(await readFile(v.artifactUri)).toEqual(bytes);
    expect(await registry.fetch(1)).toEqual(bytes);
  });

  it('numbers versions consecutively and lists them in order, with a status filter', async () => {
    await registerSeeds(1, 2, 3);
    await registry.approve(2, 'good');
    await registry.reject(3, 'bad');
    expect((await registry.list()).map((v) => [v.version, v.status])).toEqual([
      [1, 'PendingManualApproval'],
      [2, 'Approved'],
      [3, 'Rejected'],
    ]);
    expect((await registry.list({ status: 'Approved' })).map((v) => v.version)).toEqual([2]);
    expect((await registry.list({ status: 'PendingManualApproval' })).map((v) => v.version)).toEqual([1]);
  });

  it('refuses a forest whose gates failed, and registers it with force, recording that in lineage and audit', async () => {
    const file = await writeFixtureForest(dir, 'failed.json', { seed: 9, gatesPassed: false });
    await expect(registry.register(file)).rejects.toThrow(/refusing to register .*failed\.json': quality gate failed on test: accuracy 0\.80+ < required 0\.90+ \(short by 0\.10+\)\. .*--force/);
    expect(await registry.list()).toEqual([]);

    const v = await registry.register(file, { force: true, note: 'needed for a demo', by: 'bob' });
    expect(v.lineage.forced).toBe(true);
    expect(v.audit[0].note).toMatch(/^needed for a demo \| FORCED registration despite failed gates \(quality gate failed on test: accuracy/);
  });

  it('refuses an invalid forest file with the forest validator\'s error and leaves nothing behind', async () => {
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '{"format":"pricesense.forest"}');
    await expect(registry.register(bad)).rejects.toThrow(/bad\.json: invalid forest file/);
    await expect(registry.register(path.join(dir, 'missing.json'))).rejects.toThrow(/cannot read model file .*missing\.json.*no such file/);
    expect(await registry.list()).toEqual([]);
    expect(await readdir(path.join(root, '.staging')).catch(() => [])).toEqual([]);
  });

  it('never lists a half-written version (a staging folder left by a crash)', async () => {
    await registerSeeds(1);
    const crashed = path.join(root, '.staging', 'v-crashed');
    await mkdir(crashed, { recursive: true });
    await writeFile(path.join(crashed, 'forest.json'), '{"trunc');
    expect((await registry.list()).map((v) => v.version)).toEqual([1]);
    await registerSeeds(2);
    expect((await registry.list()).map((v) => v.version)).toEqual([1, 2]);
  });
});

describe('local registry: status machine', () => {
  beforeEach(() => registerSeeds(1));

  it('allows Pending -> Approved -> Rejected -> Approved (rollback and back)', async () => {
    expect((await registry.approve(1, 'ok')).status).toBe('Approved');
    expect((await registry.reject(1, 'regression in prod')).status).toBe('Rejected');
    expect((await registry.approve(1, 'false alarm')).status).toBe('Approved');
  });

  it('allows Pending -> Rejected', async () => {
    expect((await registry.reject(1, 'no')).status).toBe('Rejected');
  });

  it('refuses a move to the current status, with a clear error', async () => {
    await registry.approve(1, 'ok');
    await expect(registry.approve(1, 'again')).rejects.toThrow(new UserError('version 1 is already Approved: nothing to change'));
    await registry.reject(1, 'no');
    await expect(registry.reject(1, 'again')).rejects.toThrow('version 1 is already Rejected');
  });

  it('names a version that does not exist, and rejects malformed numbers', async () => {
    await expect(registry.approve(7, 'x')).rejects.toThrow(/version 7 not found in registry .* \(it has versions 1\.\.1\)/);
    await expect(registry.show(0)).rejects.toThrow(/invalid model version '0'/);
    await expect(registry.fetch(1.5)).rejects.toThrow(/invalid model version '1.5'/);
    await expect(new LocalRegistry(path.join(dir, 'empty')).show(1)).rejects.toThrow(/it has no versions yet/);
  });

  it('serialises concurrent changes on one version: exactly one of ten simultaneous approvals wins', async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => registry.approve(1, `attempt ${i}`, `user${i}`)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(9);
    for (const r of lost) expect(String(r.reason)).toContain('version 1 is already Approved');
    const v = await registry.show(1);
    expect(v.audit.map((e) => [e.from, e.to])).toEqual([
      [null, 'PendingManualApproval'],
      ['PendingManualApproval', 'Approved'],
    ]);
  });

  it('serialises a concurrent approve and reject from Pending: both land in some order, each checked against the other\'s result', async () => {
    const [a, r] = await Promise.allSettled([registry.approve(1, 'yes', 'ann'), registry.reject(1, 'no', 'rob')]);
    // Pending -> X, then X -> Y is always a valid move for {Approved, Rejected}, so neither is lost.
    expect(a.status).toBe('fulfilled');
    expect(r.status).toBe('fulfilled');
    const v = await registry.show(1);
    expect(v.audit).toHaveLength(3);
    expect(v.audit[1].from).toBe('PendingManualApproval');
    expect(v.audit[2].from).toBe(v.audit[1].to);
    expect(v.status).toBe(v.audit[2].to);
  });
});

describe('local registry: audit trail', () => {
  it('records who, when, from, to and note for every change, oldest first, and never rewrites an entry', async () => {
    await registerSeeds(1);
    const auditDir = path.join(root, 'versions', '000001', 'audit');
    const first = await readFile(path.join(auditDir, '000001.json'));
    const firstMtime = (await stat(path.join(auditDir, '000001.json'))).mtimeMs;

    await registry.approve(1, 'passes review', 'carol');
    await registry.reject(1, 'rollback: drift alarm', 'dave');
    const v = await registry.approve(1, 're-approved after fix', 'carol');

    expect(v.audit.map(({ by, from, to, note }) => ({ by, from, to, note }))).toEqual([
      { by: 'trainer', from: null, to: 'PendingManualApproval', note: '' },
      { by: 'carol', from: 'PendingManualApproval', to: 'Approved', note: 'passes review' },
      { by: 'dave', from: 'Approved', to: 'Rejected', note: 'rollback: drift alarm' },
      { by: 'carol', from: 'Rejected', to: 'Approved', note: 're-approved after fix' },
    ]);
    const times = v.audit.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(await readFile(path.join(auditDir, '000001.json'))).toEqual(first);
    expect((await stat(path.join(auditDir, '000001.json'))).mtimeMs).toBe(firstMtime);
    expect((await readdir(auditDir)).sort()).toEqual(['000001.json', '000002.json', '000003.json', '000004.json']);
  });

  it('defaults "who" to PRICESENSE_USER, then the OS user', async () => {
    const saved = process.env.PRICESENSE_USER;
    try {
      process.env.PRICESENSE_USER = 'ci-bot';
      const v = await registry.register(await writeFixtureForest(dir, 'a.json', { seed: 1 }));
      expect(v.lineage.registeredBy).toBe('ci-bot');
      delete process.env.PRICESENSE_USER;
      const approved = await registry.approve(1, 'ok');
      expect(approved.audit[1].by).toBe(os.userInfo().username);
    } finally {
      if (saved === undefined) delete process.env.PRICESENSE_USER;
      else process.env.PRICESENSE_USER = saved;
    }
  });
});

describe('local registry: latestApproved', () => {
  it('is the highest-numbered Approved version through approve -> reject -> approve sequences', async () => {
    await registerSeeds(1, 2, 3);
    expect(await registry.latestApproved()).toBeUndefined();
    await registry.approve(1, 'ok');
    expect((await registry.latestApproved())?.version).toBe(1);
    await registry.approve(2, 'better');
    expect((await registry.latestApproved())?.version).toBe(2);
    await registry.reject(2, 'rollback');
    expect((await registry.latestApproved())?.version).toBe(1);
    await registry.approve(2, 'fixed');
    expect((await registry.latestApproved())?.version).toBe(2);
    // Approving an older version later does not make it "latest": latest means newest registered.
    await registry.reject(1, 'retire');
    await registry.approve(1, 'back');
    expect((await registry.latestApproved())?.version).toBe(2);
    await registry.reject(3, 'never');
    expect((await registry.latestApproved())?.version).toBe(2);
    await registry.reject(2, 'rollback again');
    await registry.reject(1, 'all bad');
    expect(await registry.latestApproved()).toBeUndefined();
  });
});

describe('local registry: fetch verifies the checksum', () => {
  it('refuses a corrupted stored forest with an error naming both digests', async () => {
    await registerSeeds(1);
    const v = await registry.approve(1, 'ok');
    const bytes = await readFile(v.artifactUri);
    const corrupt = Buffer.from(bytes);
    corrupt[Math.floor(corrupt.length / 2)] ^= 0x01;
    await writeFile(v.artifactUri, corrupt);

    const err = await registry.fetch(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    const mismatch = err as ChecksumMismatchError;
    expect(mismatch.expected).toBe(v.artifactSha256);
    expect(mismatch.actual).toBe(sha256Hex(corrupt));
    expect(mismatch.message).toContain(v.artifactSha256);
    expect(mismatch.message).toContain(sha256Hex(corrupt));
    expect(mismatch.message).toMatch(/refusing to return this model/);

    await writeFile(v.artifactUri, bytes);
    expect(await registry.fetch(1)).toEqual(bytes);
  });
});

describe('openRegistry', () => {
  const saved = process.env.PRICESENSE_REGISTRY;
  afterEach(() => {
    if (saved === undefined) delete process.env.PRICESENSE_REGISTRY;
    else process.env.PRICESENSE_REGISTRY = saved;
  });

  it('opens a local directory, file:// URI or PRICESENSE_REGISTRY', async () => {
    expect((await openRegistry(root)).uri).toBe(root);
    expect((await openRegistry(`file://${root}`)).uri).toBe(root);
    process.env.PRICESENSE_REGISTRY = root;
    expect((await openRegistry()).uri).toBe(root);
    delete process.env.PRICESENSE_REGISTRY;
    expect((await openRegistry()).uri).toBe(path.resolve('.pricesense/registry'));
  });

  it('refuses other schemes and bad SageMaker group names clearly', async () => {
    await expect(openRegistry('s3://bucket/registry')).rejects.toThrow(
      "unsupported registry URI 's3://bucket/registry': use a local directory, file:///path, or sagemaker://<model-package-group>",
    );
    await expect(openRegistry('sagemaker://bad_name', { lake: { kind: 's3', root: 's3://b' } as never })).rejects.toThrow(/invalid SageMaker model package group name 'bad_name'/);
  });

  it('refuses a SageMaker registry over a local lake (ModelDataUrl must be s3://)', async () => {
    await expect(openRegistry('sagemaker://pricesense', { lake: { kind: 'local', root: '/tmp/lake' } as never })).rejects.toThrow(
      /stores artifacts in an S3 lake, but the lake is \/tmp\/lake \(local\)/,
    );
  });
});
