/**
 * The SageMaker backend at the request level: SageMaker is aws-sdk-client-mock
 * behind a small in-memory model of a package group (so status and listing behave
 * like the service), the artifacts go over real HTTP to the S3-compatible test
 * server through the lake's S3 backend. Throttling retries are exercised against a
 * loopback HTTP server speaking SageMaker's JSON protocol.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  DescribeModelPackageCommand,
  DescribeModelPackageGroupCommand,
  ListModelPackagesCommand,
  type SageMakerClient,
  UpdateModelPackageCommand,
} from '@aws-sdk/client-sagemaker';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { S3Lake } from '../../etl/lake/s3';
import { startS3Server, type S3TestServer } from '../../etl/testing/s3-server';
import { MAX_AUDIT_ENTRY_BYTES, MAX_RECORD_BYTES, MAX_TRAIL_BYTES, sha256Hex } from '../registry/common';
import { AuditChainError, ChecksumMismatchError, ConcurrentChangeError, GateOverrideRequiredError, UnmigratedVersionError, type ModelStatus, type ModelVersion } from '../registry';
import { createSageMakerClient, SageMakerRegistry, SAGEMAKER_MAX_ATTEMPTS } from '../registry/sagemaker';
import { legacySageMakerAuditObject, legacyTrail, writeFixtureForest } from './registry-fixtures';
import { ACCOUNT_ARN, awsError, fakeSageMakerClient, type FakeSageMaker, GROUP, IMAGE } from './sagemaker-fake';


let s3: S3TestServer;
let dir: string;
let lake: S3Lake;
let client: SageMakerClient;
let sm: AwsClientStub<SageMakerClient>;
let fake: FakeSageMaker;
let registry: SageMakerRegistry;
let closeSageMaker: () => void;

beforeAll(async () => {
  s3 = await startS3Server({ buckets: ['lake'] });
});
afterAll(async () => {
  await s3.stop();
});

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-registry-sm-'));
  // A fresh lake prefix per test: the S3 server lives for the whole file.
  lake = new S3Lake(`s3://lake/t${Math.random().toString(36).slice(2, 10)}`, { client: s3.client });
  ({ client, sm, fake, close: closeSageMaker } = fakeSageMakerClient());
  registry = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
});

afterEach(async () => {
  closeSageMaker();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Packages created directly in the fake, as the SageMaker pipeline's RegisterModel step
 * would (no pricesense audit trail), reusing package 1's artifact: quick to make in bulk.
 */
function addPipelinePackages(n: number): void {
  const template = fake.packages[0];
  for (let i = 0; i < n; i++) {
    const version = fake.packages.length + 1;
    const p = structuredClone(template);
    delete p.CustomerMetadataProperties!['pricesense:lineage'];
    fake.packages.push({ ...p, ModelApprovalStatus: 'PendingManualApproval', ModelPackageVersion: version, ModelPackageArn: `${ACCOUNT_ARN}:model-package/${GROUP}/${version}`, CreationTime: new Date(Date.now() + 3_600_000 + version * 1000) });
  }
}

/** The lake, except that conditional creates wait until `parties` of them are pending, then all go: a race made certain. */
function barrierLake(inner: S3Lake, parties: number): S3Lake {
  let waiting: (() => void)[] = [];
  return Object.assign(Object.create(inner) as S3Lake, {
    async writeIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
      await new Promise<void>((go) => {
        waiting.push(go);
        if (waiting.length >= parties) {
          for (const w of waiting) w();
          waiting = [];
        }
      });
      return inner.writeIfAbsent(key, body);
    },
  });
}

async function registerSeeds(...seeds: number[]): Promise<void> {
  for (const seed of seeds) await registry.register(await writeFixtureForest(dir, `f${seed}.json`, { seed, gatesPassed: true }), { by: 'trainer' });
}

describe('SageMaker registry: register', () => {
  it('uploads the artifact and metrics to the lake and sends exactly the documented requests', async () => {
    const file = await writeFixtureForest(dir, 'model.json', { seed: 4, gatesPassed: true, datasetManifestSha256: 'b'.repeat(64) });
    const v = await registry.register(file, { by: 'alice', note: 'weekly retrain' });

    // Group created once, because Describe said it did not exist.
    expect(sm.commandCalls(DescribeModelPackageGroupCommand)[0].args[0].input).toEqual({ ModelPackageGroupName: GROUP });
    expect(sm.commandCalls(CreateModelPackageGroupCommand)).toHaveLength(1);
    expect(sm.commandCalls(CreateModelPackageGroupCommand)[0].args[0].input).toMatchObject({ ModelPackageGroupName: GROUP });

    const calls = sm.commandCalls(CreateModelPackageCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0].args[0].input;
    const forestKey = input.InferenceSpecification!.Containers![0].ModelDataUrl!.slice(`${lake.root}/`.length);
    const metricsKey = input.ModelMetrics!.ModelQuality!.Statistics!.S3Uri!.slice(`${lake.root}/`.length);
    expect(forestKey).toMatch(new RegExp(`^artifacts/registry/${GROUP}/packages/[0-9TZ]+-[0-9a-f]{8}/forest\\.json$`));
    const bytes = await lake.read(forestKey);
    const forest = JSON.parse(bytes.toString('utf8')) as { sha256: string; metrics: unknown };
    const metricsBody = await lake.read(metricsKey);
    expect(JSON.parse(metricsBody.toString('utf8'))).toEqual(forest.metrics);

    expect(input).toEqual({
      ModelPackageGroupName: GROUP,
      ModelPackageDescription: 'weekly retrain',
      InferenceSpecification: {
        Containers: [{ Image: IMAGE, ModelDataUrl: `${lake.root}/${forestKey}` }],
        SupportedContentTypes: ['application/json'],
        SupportedResponseMIMETypes: ['application/json'],
      },
      ModelApprovalStatus: 'PendingManualApproval',
      ModelMetrics: {
        ModelQuality: {
          Statistics: { ContentType: 'application/json', S3Uri: `${lake.root}/${metricsKey}`, ContentDigest: `sha256:${sha256Hex(metricsBody)}` },
        },
      },
      CustomerMetadataProperties: {
        'pricesense:forestSha256': forest.sha256,
        'pricesense:artifactSha256': sha256Hex(bytes),
        'pricesense:formatVersion': '1',
        'pricesense:datasetManifestSha256': 'b'.repeat(64),
        'pricesense:codeVersion': 'fixture-commit',
        'pricesense:registeredBy': 'alice',
        'pricesense:forced': 'false',
        'pricesense:lineage': `${lake.root}/${forestKey.replace(/forest\.json$/, 'lineage.json')}`,
      },
      ClientToken: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    // CustomerMetadataProperties values must match SageMaker's pattern.
    for (const value of Object.values(input.CustomerMetadataProperties!)) expect(value).toMatch(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,256}$/u);

    expect(v).toMatchObject({
      version: 1,
      status: 'PendingManualApproval',
      forestSha256: forest.sha256,
      artifactSha256: sha256Hex(bytes),
      formatVersion: 1,
      artifactUri: `${lake.root}/${forestKey}`,
      lineage: { registeredBy: 'alice', forced: false, hyperparameters: { trees: 1, maxDepth: 4, seed: 4 }, codeVersion: 'fixture-commit' },
    });
    expect(v.audit).toEqual([{ at: v.lineage.registeredAt, by: 'alice', from: null, to: 'PendingManualApproval', note: 'weekly retrain' }]);
    expect(await registry.fetch(1)).toEqual(bytes);
  });

  it('does not create the group again when it exists (idempotent), including when another registrant wins the race', async () => {
    await registerSeeds(1);
    await registerSeeds(2);
    expect(sm.commandCalls(CreateModelPackageGroupCommand)).toHaveLength(1);

    // A second registry instance whose Describe misses the group (created concurrently): Create says "already exists", fine.
    const other = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    fake.hideGroupOnce = true;
    const v = await other.register(await writeFixtureForest(dir, 'f3.json', { seed: 3 }));
    expect(v.version).toBe(3);
    expect(sm.commandCalls(CreateModelPackageGroupCommand)).toHaveLength(2);
  });

  it('refuses a failed-gates forest before any request, and records --force in the metadata', async () => {
    const file = await writeFixtureForest(dir, 'bad.json', { seed: 5, gatesPassed: false });
    await expect(registry.register(file)).rejects.toThrow(/refusing to register .*--force/);
    expect(sm.calls()).toHaveLength(0);
    const v = await registry.register(file, { force: true });
    expect(sm.commandCalls(CreateModelPackageCommand)[0].args[0].input.CustomerMetadataProperties!['pricesense:forced']).toBe('true');
    expect(v.lineage.forced).toBe(true);
    expect(v.audit[0].note).toMatch(/FORCED registration/);
  });

  it('needs the API image', async () => {
    const saved = process.env.PRICESENSE_IMAGE;
    delete process.env.PRICESENSE_IMAGE;
    try {
      const noImage = new SageMakerRegistry(GROUP, { lake, client });
      await expect(noImage.register(await writeFixtureForest(dir, 'f.json'))).rejects.toThrow(/needs the API container image: set PRICESENSE_IMAGE/);
    } finally {
      if (saved !== undefined) process.env.PRICESENSE_IMAGE = saved;
    }
  });
});

describe('SageMaker registry: approval workflow', () => {
  it('approves and rejects with UpdateModelPackage and ApprovalDescription, appending audit objects to the lake', async () => {
    await registerSeeds(1);
    const approved = await registry.approve(1, 'beats v0 on macro-F1', 'carol');
    const arn = `${ACCOUNT_ARN}:model-package/${GROUP}/1`;
    expect(sm.commandCalls(UpdateModelPackageCommand).map((c) => c.args[0].input)).toEqual([
      { ModelPackageArn: arn, ModelApprovalStatus: 'Approved', ApprovalDescription: 'beats v0 on macro-F1 (by carol)' },
    ]);
    expect(approved.status).toBe('Approved');
    await registry.reject(1, 'rollback', 'dave');
    expect(sm.commandCalls(UpdateModelPackageCommand)[1].args[0].input).toEqual({
      ModelPackageArn: arn,
      ModelApprovalStatus: 'Rejected',
      ApprovalDescription: 'rollback (by dave)',
    });
    const v = await registry.show(1);
    expect(v.audit.map(({ by, from, to, note }) => ({ by, from, to, note }))).toEqual([
      { by: 'trainer', from: null, to: 'PendingManualApproval', note: '' },
      { by: 'carol', from: 'PendingManualApproval', to: 'Approved', note: 'beats v0 on macro-F1' },
      { by: 'dave', from: 'Approved', to: 'Rejected', note: 'rollback' },
    ]);
    const objects = await lake.list(`artifacts/registry/${GROUP}/audit/000001/`);
    expect(objects).toHaveLength(3);
  });

  it('makes a change conditional: of a concurrent approve and reject (two processes), one lands and the other is refused as a race', async () => {
    await registerSeeds(1);
    const other = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    // Both read the package before either changes it: the race UpdateModelPackage alone cannot see.
    fake.describeBarrier = 2;
    const results = await Promise.allSettled([registry.approve(1, 'yes', 'ann'), other.reject(1, 'no', 'rob')]);
    const won = results.filter((r): r is PromiseFulfilledResult<ModelVersion> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(lost.map((r) => String(r.reason))).toHaveLength(1);
    expect(won).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(ConcurrentChangeError);
    expect(sm.commandCalls(UpdateModelPackageCommand)).toHaveLength(1);
    const v = await registry.show(1);
    expect(v.status).toBe(won[0].value.status);
    expect(v.audit.map((e) => [e.from, e.to])).toEqual([
      [null, 'PendingManualApproval'],
      ['PendingManualApproval', v.status],
    ]);
    // One object per sequence number, created with If-None-Match: *; the trail verifies and takes the next change.
    expect((await lake.list(`artifacts/registry/${GROUP}/audit/000001/`)).map((o) => o.key.split('/').at(-1))).toEqual(['000001.json', '000002.json']);
    expect((await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).verify()).ok).toBe(true);
    await registry[v.status === 'Approved' ? 'reject' : 'approve'](1, 'after the race', 'ann');
    expect((await registry.show(1)).audit).toHaveLength(3);
  });

  it('the loser of the conditional write on entry N (both read the same trail) is told what landed, and nothing else is written', async () => {
    await registerSeeds(1);
    // Both writers reach the conditional create of entry 2 before either makes it: S3 lets one create it (412 for the other).
    const gated = barrierLake(lake, 2);
    const ann = new SageMakerRegistry(GROUP, { lake: gated, client, image: IMAGE });
    const rob = new SageMakerRegistry(GROUP, { lake: gated, client, image: IMAGE });
    const results = await Promise.allSettled([ann.approve(1, 'yes', 'ann'), rob.reject(1, 'no', 'rob')]);
    const won = results.filter((r): r is PromiseFulfilledResult<ModelVersion> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect([won.length, lost.length]).toEqual([1, 1]);
    const winner = won[0].value.audit.at(-1)!;
    expect(lost[0].reason).toBeInstanceOf(ConcurrentChangeError);
    expect(String(lost[0].reason)).toBe(
      `ConcurrentChangeError: version 1 changed while this change was being made: it was PendingManualApproval, it is now ${winner.to} (by ${winner.by} at ${winner.at}); nothing was changed — re-run if the change is still wanted`,
    );
    expect(sm.commandCalls(UpdateModelPackageCommand).map((c) => c.args[0].input.ModelApprovalStatus)).toEqual([winner.to]);
    const entry2 = JSON.parse((await lake.read(`artifacts/registry/${GROUP}/audit/000001/000002.json`)).toString('utf8')) as { by: string; to: string };
    expect([entry2.by, entry2.to]).toEqual([winner.by, winner.to]);
  });

  it('refuses to record a change on an S3 store that ignores conditional writes, before changing SageMaker', async () => {
    const plain = await startS3Server({ buckets: ['lake'], conditionalWrites: false });
    try {
      const plainLake = new S3Lake('s3://lake/p', { client: plain.client });
      const reg = new SageMakerRegistry(GROUP, { lake: plainLake, client, image: IMAGE });
      await expect(reg.register(await writeFixtureForest(dir, 'f.json', { seed: 1, gatesPassed: true }))).rejects.toThrow(
        /ignores conditional writes \(PutObject If-None-Match: \*\), so two concurrent changes to one version could both be recorded; the SageMaker registry needs AWS S3 .* Nothing was changed in SageMaker\.$/,
      );
      expect(sm.commandCalls(CreateModelPackageCommand)).toHaveLength(0);
    } finally {
      await plain.stop();
    }
  });

  it('still reads audit objects written by the earlier claim protocol (<seq>-<random>.json)', async () => {
    await registerSeeds(1);
    await registry.approve(1, 'ok', 'ann');
    for (const o of await lake.list(`artifacts/registry/${GROUP}/audit/000001/`)) {
      await lake.write(o.key.replace(/\.json$/, '-0a1b2c3d4e5f.json'), await lake.read(o.key));
      await lake.delete(o.key);
    }
    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    expect((await fresh.show(1)).audit.map((e) => e.to)).toEqual(['PendingManualApproval', 'Approved']);
    await fresh.reject(1, 'rollback', 'rob');
    expect((await lake.list(`artifacts/registry/${GROUP}/audit/000001/`)).map((o) => o.key.split('/').at(-1))).toEqual(['000001-0a1b2c3d4e5f.json', '000002-0a1b2c3d4e5f.json', '000003.json']);
    expect((await fresh.verify()).ok).toBe(true);
  });

  it('gives way to a writer of the earlier claim protocol whose <seq>-<random>.json claim lands next to its <seq>.json (that writer cannot see it)', async () => {
    await registerSeeds(1);
    const prefix = `artifacts/registry/${GROUP}/audit/000001/`;
    const first = await lake.read(`${prefix}000001.json`);
    // An older CLI rejecting the version at the same moment: its claim is written after this one read the trail, before this one looks.
    const rivalBody = `${JSON.stringify({ seq: 2, prev: sha256Hex(first), at: new Date().toISOString(), by: 'rob', from: 'PendingManualApproval', to: 'Rejected', note: 'no' })}\n`;
    const racing = Object.assign(Object.create(lake) as S3Lake, {
      async writeIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
        if (key.endsWith('/000002.json')) await lake.write(`${prefix}000002-0a1b2c3d4e5f.json`, rivalBody);
        return lake.writeIfAbsent(key, body);
      },
    });
    const err = await new SageMakerRegistry(GROUP, { lake: racing, client, image: IMAGE }).approve(1, 'yes', 'ann').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConcurrentChangeError);
    // Its change may not have reached SageMaker: in progress, not "it is now Rejected" (SageMaker says PendingManualApproval).
    expect(String(err)).toMatch(/it was PendingManualApproval, another change to it is in progress; nothing was changed/);
    expect(sm.commandCalls(UpdateModelPackageCommand)).toHaveLength(0);
    // Its own entry is withdrawn: the old writer's claim is the only entry 2.
    expect((await lake.list(prefix)).map((o) => o.key.split('/').at(-1))).toEqual(['000001.json', '000002-0a1b2c3d4e5f.json']);
  });

  it('does not give way to stale claims of the earlier protocol (older than the claim window): two left by writers that died do not block the version for good', async () => {
    await registerSeeds(1);
    const prefix = `artifacts/registry/${GROUP}/audit/000001/`;
    const first = sha256Hex(await lake.read(`${prefix}000001.json`));
    // Two old CLIs that both claimed entry 2 an hour ago and died before withdrawing: neither applied (SageMaker says PendingManualApproval).
    const stale = (by: string, to: ModelStatus) => `${JSON.stringify({ seq: 2, prev: first, at: new Date(Date.now() - 3_600_000).toISOString(), by, from: 'PendingManualApproval', to, note: 'old' })}\n`;
    await lake.write(`${prefix}000002-0a0a0a0a0a0a.json`, stale('olga', 'Approved'));
    await lake.write(`${prefix}000002-0b0b0b0b0b0b.json`, stale('oleg', 'Rejected'));
    const fresh = () => new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    expect((await fresh().show(1)).audit.map((e) => e.to)).toEqual(['PendingManualApproval']);

    const approved = await fresh().approve(1, 'ship', 'ann');
    expect(approved.status).toBe('Approved');
    expect(sm.commandCalls(UpdateModelPackageCommand)).toHaveLength(1);
    // Entry 2 is this change's <seq>.json, not the stale claim that happens to say Approved too.
    const trail = (v: ModelVersion) => v.audit.map((e) => [e.by, e.from, e.to]);
    expect(trail(await fresh().show(1))).toEqual([
      ['trainer', null, 'PendingManualApproval'],
      ['ann', 'PendingManualApproval', 'Approved'],
    ]);
    await fresh().reject(1, 'rollback', 'rob');
    expect(trail(await fresh().show(1)).at(-1)).toEqual(['rob', 'Approved', 'Rejected']);
    expect((await fresh().verify()).ok).toBe(true);
  });

  it('applies a change only in the expected status, and a gate override only with a reason, recorded in the audit object and ApprovalDescription', async () => {
    await registerSeeds(1);
    await registry.register(await writeFixtureForest(dir, 'bad.json', { seed: 5, gatesPassed: false }), { force: true, by: 'trainer' });
    await registry.reject(1, 'no', 'rob');
    await expect(registry.approve(1, 'yes', 'ann', { expected: 'PendingManualApproval' })).rejects.toThrow(
      /^version 1 changed while this change was being made: it was PendingManualApproval, it is now Rejected \(by rob at /,
    );
    await expect(registry.approve(2, 'ship', 'ann')).rejects.toThrow(GateOverrideRequiredError);
    expect(sm.commandCalls(UpdateModelPackageCommand)).toHaveLength(1);
    const v = await registry.approve(2, 'ship', 'ann', { expected: 'PendingManualApproval', overrideGates: { reason: 'pilot' } });
    expect(v.audit.at(-1)).toMatchObject({ by: 'ann', note: 'ship', override: { reason: 'pilot', gates: expect.stringMatching(/^quality gate failed on test: accuracy/) } });
    expect(sm.commandCalls(UpdateModelPackageCommand)[1].args[0].input.ApprovalDescription).toBe('ship [GATE OVERRIDE: pilot] (by ann)');
    expect((await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).show(2)).audit.at(-1)!.override!.reason).toBe('pilot');
  });

  it('refuses invalid transitions without calling UpdateModelPackage', async () => {
    await registerSeeds(1);
    await registry.approve(1, 'ok');
    await expect(registry.approve(1, 'again')).rejects.toThrow('version 1 is already Approved: nothing to change');
    expect(sm.commandCalls(UpdateModelPackageCommand)).toHaveLength(1);
    await expect(registry.approve(9, 'x')).rejects.toThrow(`version 9 not found in SageMaker model package group ${GROUP}`);
  });

  it('shows a change made outside pricesense (e.g. in Studio) as a reconstructed audit entry', async () => {
    await registerSeeds(1);
    Object.assign(fake.packages[0], {
      ModelApprovalStatus: 'Approved',
      ApprovalDescription: 'approved in Studio',
      LastModifiedTime: new Date('2024-06-01T00:00:00Z'),
      LastModifiedBy: { UserProfileName: 'erin' },
    });
    const v = await registry.show(1);
    expect(v.status).toBe('Approved');
    expect(v.audit[1]).toEqual({
      at: '2024-06-01T00:00:00.000Z',
      by: 'erin',
      from: 'PendingManualApproval',
      to: 'Approved',
      note: 'approved in Studio (changed outside pricesense; recorded by SageMaker LastModifiedBy/Time)',
      chain: 'outside',
    });
  });

  it('latestApproved uses ListModelPackages (Approved, CreationTime, Descending) then DescribeModelPackage, through approve -> reject -> approve', async () => {
    await registerSeeds(1, 2, 3);
    expect(await registry.latestApproved()).toBeUndefined();
    await registry.approve(1, 'ok');
    await registry.approve(2, 'better');
    sm.resetHistory();
    expect((await registry.latestApproved())?.version).toBe(2);
    expect(sm.commandCalls(ListModelPackagesCommand).map((c) => c.args[0].input)).toEqual([
      { ModelPackageGroupName: GROUP, ModelApprovalStatus: 'Approved', SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 20 },
    ]);
    expect(sm.commandCalls(DescribeModelPackageCommand).map((c) => c.args[0].input)).toEqual([{ ModelPackageName: `${ACCOUNT_ARN}:model-package/${GROUP}/2` }]);

    await registry.reject(2, 'rollback');
    expect((await registry.latestApproved())?.version).toBe(1);
    await registry.approve(2, 'fixed');
    expect((await registry.latestApproved())?.version).toBe(2);
    await registry.reject(3, 'no');
    await registry.reject(2, 'again');
    await registry.reject(1, 'all');
    expect(await registry.latestApproved()).toBeUndefined();
  });

  it('latestApproved follows NextToken past empty filtered pages instead of reporting "nothing approved"', async () => {
    await registerSeeds(1);
    await registry.approve(1, 'the only approved one');
    addPipelinePackages(45);
    fake.filterAfterPaging = true;
    sm.resetHistory();
    expect((await registry.latestApproved())?.version).toBe(1);
    const pages = sm.commandCalls(ListModelPackagesCommand).map((c) => c.args[0].input);
    expect(pages.length).toBeGreaterThan(1);
    expect(pages.slice(1).every((p) => p.NextToken !== undefined)).toBe(true);
  });

  it('lists every page (NextToken) with a status filter', async () => {
    const seeds = Array.from({ length: 101 }, (_, i) => i + 1);
    await registerSeeds(1);
    addPipelinePackages(100);
    fake.packages[50].ModelApprovalStatus = 'Approved';
    fake.packages[100].ModelApprovalStatus = 'Approved';
    sm.resetHistory();
    const all = await registry.list();
    expect(all.map((v) => v.version)).toEqual(seeds);
    const listCalls = sm.commandCalls(ListModelPackagesCommand).map((c) => c.args[0].input);
    expect(listCalls).toEqual([
      { ModelPackageGroupName: GROUP, SortBy: 'CreationTime', SortOrder: 'Ascending', MaxResults: 100 },
      { ModelPackageGroupName: GROUP, SortBy: 'CreationTime', SortOrder: 'Ascending', MaxResults: 100, NextToken: '100' },
    ]);
    expect((await registry.list({ status: 'Approved' })).map((v) => v.version)).toEqual([51, 101]);
  });
});

describe('SageMaker registry: tamper-evident audit trail, cross-checked with SageMaker', () => {
  const auditObjects = async (v: number) => (await lake.list(`artifacts/registry/${GROUP}/audit/${String(v).padStart(6, '0')}/`)).map((o) => o.key).sort();

  beforeEach(async () => {
    await registerSeeds(1, 2);
    await registry.approve(1, 'ok');
    await registry.approve(2, 'better');
  });

  it('chains the S3 audit objects: a deleted or rewritten one makes the version unservable, and serving passes over it', async () => {
    const keys = await auditObjects(2);
    expect(keys.map((k) => k.split('/').at(-1)!.slice(0, 6))).toEqual(['000001', '000002']);
    // Rewriting the registration entry (say, to hide who registered it) breaks entry 2's link.
    const first = (await lake.read(keys[0])).toString('utf8');
    await lake.write(keys[0], first.replace('"by":"trainer"', '"by":"someone-else"'));
    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    await expect(fresh.show(2)).rejects.toThrow(/version 2: audit trail does not verify: audit object .*000002\.json does not link to entry 1/);
    // SageMaker still says Approved, but the trail cannot be trusted: the previous version is served.
    expect(await fresh.latestServable()).toMatchObject({ latest: { version: 1 }, broken: [{ version: 2 }] });
  });

  it('a package whose audit objects are over the trail budget is passed over without reading them, not a failed poll', async () => {
    const [first] = await auditObjects(2);
    // One entry over MAX_AUDIT_ENTRY_BYTES: refused from the listing's size.
    await lake.write(first, Buffer.alloc(MAX_AUDIT_ENTRY_BYTES + 1, 0x20));
    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    await expect(fresh.show(2)).rejects.toThrow(AuditChainError);
    await expect(fresh.show(2)).rejects.toThrow(`holds an audit entry of ${(MAX_AUDIT_ENTRY_BYTES + 1).toLocaleString('en-US')} bytes, more than the ${MAX_AUDIT_ENTRY_BYTES.toLocaleString('en-US')} (MAX_AUDIT_ENTRY_BYTES)`);
    expect(await fresh.latestServable()).toMatchObject({ latest: { version: 1 }, broken: [{ version: 2 }] });
    const report = await fresh.verify();
    expect(report.versions.find((c) => c.version === 2)?.problems.join('\n')).toMatch(/MAX_AUDIT_ENTRY_BYTES/);
  });

  it('stops reading a trail at MAX_TRAIL_BYTES of bytes actually read, whatever sizes the listing gave (objects rewritten larger after the LIST)', async () => {
    const [first] = await auditObjects(2);
    const prefix = first.slice(0, first.lastIndexOf('/') + 1);
    // Each object within MAX_AUDIT_ENTRY_BYTES, together three times MAX_TRAIL_BYTES.
    const count = 3 * Math.ceil(MAX_TRAIL_BYTES / MAX_AUDIT_ENTRY_BYTES);
    for (let i = 0; i < count; i++) await lake.write(`${prefix}${String(900 + i).padStart(6, '0')}.json`, Buffer.alloc(MAX_AUDIT_ENTRY_BYTES, 0x20));
    let auditBytesRead = 0;
    // The listing says 1 byte per object, as it would have before a writer replaced them all.
    const lying = Object.assign(Object.create(lake) as S3Lake, {
      async list(p: string) {
        return (await lake.list(p)).map((o) => ({ ...o, size: 1 }));
      },
      async read(key: string, options?: { maxBytes?: number }) {
        const bytes = await lake.read(key, options);
        if (key.startsWith(prefix)) auditBytesRead += bytes.length;
        return bytes;
      },
    });
    const fresh = new SageMakerRegistry(GROUP, { lake: lying, client, image: IMAGE });
    await expect(fresh.show(2)).rejects.toThrow(AuditChainError);
    await expect(fresh.show(2)).rejects.toThrow(`holds more than ${MAX_TRAIL_BYTES.toLocaleString('en-US')} bytes of audit entries (MAX_TRAIL_BYTES), more than its listing said; the rest was not read`);
    auditBytesRead = 0;
    expect(await fresh.latestServable()).toMatchObject({ latest: { version: 1 }, broken: [{ version: 2 }] });
    // The budget plus at most the eight reads in flight when it was passed; before the running total, all of them (3 × the budget).
    expect(auditBytesRead).toBeGreaterThan(MAX_TRAIL_BYTES);
    expect(auditBytesRead).toBeLessThanOrEqual(MAX_TRAIL_BYTES + 8 * MAX_AUDIT_ENTRY_BYTES);
  });

  it('one package with an unparsable or missing lineage object is passed over and reported, not a failed poll', async () => {
    const lineageKey = (await lake.list(`artifacts/registry/${GROUP}/packages/`)).map((o) => o.key).filter((k) => k.endsWith('lineage.json')).sort();
    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    const newest = (await fresh.show(2)).lineage;
    expect(newest.registeredBy).toBe('trainer');
    // The newest package's lineage.json is truncated.
    let key = '';
    for (const k of lineageKey) if ((await lake.read(k)).toString('utf8').includes('"seed": 2')) key = k;
    expect(key).not.toBe('');
    await lake.write(key, '{"lineage": {');
    const resolution = await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).latestServable();
    expect(resolution.latest?.version).toBe(1);
    expect(resolution.broken).toEqual([expect.objectContaining({ version: 2, problem: expect.stringMatching(/lineage\.json is not valid JSON/) })]);
    await lake.delete(key);
    const again = await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).latestServable();
    expect(again.broken).toEqual([expect.objectContaining({ problem: expect.stringMatching(/lineage\.json is missing/) })]);
    // One over MAX_RECORD_BYTES is refused on its Content-Length: never downloaded, the version passed over.
    await lake.write(key, Buffer.alloc(MAX_RECORD_BYTES + 1, 0x20));
    const large = await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).latestServable();
    expect(large.latest?.version).toBe(1);
    expect(large.broken).toEqual([expect.objectContaining({ version: 2, problem: expect.stringContaining(`lineage.json is ${(MAX_RECORD_BYTES + 1).toLocaleString('en-US')} bytes, more than the`) })]);
  });

  it('deleting every audit object of a pricesense-registered package is caught', async () => {
    for (const key of await auditObjects(1)) await lake.delete(key);
    await expect(registry.show(1)).rejects.toThrow(/no audit entries under .* although pricesense registered it/);
  });

  it('SageMaker stays the authority: a change made outside pricesense shows as such, and verify warns about it', async () => {
    const when = new Date(Date.now() + 5000);
    Object.assign(fake.packages[1], { ModelApprovalStatus: 'Rejected', ApprovalDescription: 'rejected in Studio', LastModifiedTime: when, LastModifiedBy: { UserProfileName: 'erin' } });
    const v = await registry.show(2);
    expect(v.status).toBe('Rejected');
    expect(v.audit.at(-1)).toMatchObject({ from: 'Approved', to: 'Rejected', by: 'erin' });
    const report = await registry.verify();
    expect(report.ok).toBe(true);
    expect(report.versions.map((x) => [x.version, x.status, x.problems])).toEqual([
      [1, 'Approved', []],
      [2, 'Rejected', []],
    ]);
    expect(report.versions[1].warnings).toEqual([
      `SageMaker says Rejected, the audit trail ends at Approved: changed outside pricesense (erin at ${when.toISOString()}) or a change that did not complete`,
    ]);
    expect((await registry.latestApproved())?.version).toBe(1);
  });

  it('audit objects written before the chain that a chain started without a genesis entry does not cover are shown as unsealed, and verify says so', async () => {
    // A pipeline package the pre-chain release approved (one old-style object), then rejected by a chain-aware release before `migrate` existed.
    const { modelDataUrl, artifactSha256 } = { modelDataUrl: (await registry.show(1)).artifactUri, artifactSha256: (await registry.show(1)).artifactSha256 };
    const version = fake.addPipelinePackage({ modelDataUrl, artifactSha256, status: 'Approved' });
    const old = legacySageMakerAuditObject(GROUP, version, { at: new Date(Date.now() - 7_200_000).toISOString(), by: 'olga', from: 'PendingManualApproval', to: 'Approved', note: 'approved before the upgrade' }, '00000000');
    await registry.reject(version, 'rollback', 'rob');
    await lake.write(old.key, old.body);
    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    expect((await fresh.show(version)).audit.map((e) => [e.by, e.from, e.to, e.chain])).toEqual([
      ['arn:aws:sts::123456789012:assumed-role/sagemaker/pipeline', null, 'PendingManualApproval', 'outside'],
      ['olga', 'PendingManualApproval', 'Approved', 'unsealed'],
      ['rob', 'Approved', 'Rejected', undefined],
    ]);
    const report = await fresh.verify({ version });
    expect(report.ok).toBe(true);
    expect(report.versions[0].warnings).toEqual([
      `1 audit object under ${lake.root}/artifacts/registry/${GROUP}/audit/000003/ written before the chain is not sealed by it (an earlier release started the chain without a genesis entry): shown as unsealed, not tamper-evident`,
    ]);
  });

  it('verify reports a tampered artifact and a broken chain', async () => {
    const v = await registry.show(1);
    const key = v.artifactUri.slice(`${lake.root}/`.length);
    await lake.write(key, Buffer.concat([await lake.read(key), Buffer.from(' ')]));
    const keys = await auditObjects(2);
    await lake.delete(keys[0]);
    const report = await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).verify();
    expect(report.ok).toBe(false);
    expect(report.versions[0].problems).toEqual([expect.stringMatching(/artifact s3:.*forest\.json hashes to [0-9a-f]{64}, registered [0-9a-f]{64}/)]);
    expect(report.versions[1].problems).toEqual([expect.stringMatching(/entry 1 is missing/)]);
    // One version only: the same check, without listing the group or reading other versions.
    sm.resetHistory();
    expect(await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).verify({ version: 1 })).toEqual({ registry: registry.uri, ok: false, versions: [report.versions[0]] });
    expect(sm.commandCalls(ListModelPackagesCommand)).toHaveLength(0);
    expect(sm.commandCalls(DescribeModelPackageCommand).map((c) => c.args[0].input)).toEqual([{ ModelPackageName: `${ACCOUNT_ARN}:model-package/${GROUP}/1` }]);
  });
});

describe('SageMaker registry: fetch and errors', () => {
  it('refuses a corrupted artifact in S3 with an error naming both digests', async () => {
    await registerSeeds(1);
    const v = await registry.show(1);
    const key = v.artifactUri.slice(`${lake.root}/`.length);
    const bytes = await lake.read(key);
    const corrupt = Buffer.concat([bytes.subarray(0, bytes.length - 2), Buffer.from(' \n')]);
    await lake.write(key, corrupt);
    const err = (await registry.fetch(1).catch((e: unknown) => e)) as ChecksumMismatchError;
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect(err.message).toContain(v.artifactSha256);
    expect(err.message).toContain(sha256Hex(corrupt));
  });

  it('turns AccessDeniedException into an error naming the action and the resource', async () => {
    sm.on(CreateModelPackageCommand).rejects(
      awsError('AccessDeniedException', 'User: arn:aws:sts::123456789012:assumed-role/ml/ci is not authorized to perform: sagemaker:CreateModelPackage'),
    );
    const err = (await registry.register(await writeFixtureForest(dir, 'f.json')).catch((e: unknown) => e)) as Error & { kind?: string };
    expect(err.message).toMatch(new RegExp(`^access denied to ${GROUP} \\(CreateModelPackage\\): the credentials in use need sagemaker:CreateModelPackage on ${GROUP}; .*\\(SageMaker: User: .* is not authorized`));
    expect(err.message).toContain('docs/registry.md');
    expect(err.kind).toBe('denied');
  });

  describe('UpdateModelPackage fails after the audit entry was created', () => {
    const entries = async () => (await lake.list(`artifacts/registry/${GROUP}/audit/000001/`)).map((o) => o.key.split('/').at(-1));

    it('the change did not happen (SageMaker still shows the old status): its entry is withdrawn and the error stands', async () => {
      await registerSeeds(1);
      sm.on(UpdateModelPackageCommand).rejects(awsError('ValidationException', 'bad description'));
      await expect(registry.approve(1, 'ok')).rejects.toThrow(/bad description/);
      expect(await entries()).toEqual(['000001.json']);
    });

    it('the change happened but the response was lost: SageMaker says so, the entry stays and the change succeeds', async () => {
      await registerSeeds(1);
      sm.on(UpdateModelPackageCommand).callsFake((input: { ModelApprovalStatus: string }) => {
        fake.packages[0].ModelApprovalStatus = input.ModelApprovalStatus as typeof fake.packages[0]['ModelApprovalStatus'];
        throw awsError('ValidationException', 'response lost');
      });
      expect((await registry.approve(1, 'ok', 'ann')).status).toBe('Approved');
      expect(await entries()).toEqual(['000001.json', '000002.json']);
      expect((await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).show(1)).audit.map((e) => e.to)).toEqual(['PendingManualApproval', 'Approved']);
    });

    it('a failed withdrawal is reported, not swallowed', async () => {
      await registerSeeds(1);
      sm.on(UpdateModelPackageCommand).rejects(awsError('ValidationException', 'bad description'));
      const stuck = Object.assign(Object.create(lake) as S3Lake, {
        delete(): Promise<void> {
          return Promise.reject(new Error('AWS denied s3:DeleteObject'));
        },
      });
      const err = (await new SageMakerRegistry(GROUP, { lake: stuck, client, image: IMAGE }).approve(1, 'ok').catch((e: unknown) => e)) as Error;
      expect(err.message).toMatch(/bad description.*The change was not applied \(SageMaker still shows PendingManualApproval\), but its audit entry s3:\/\/lake\/.*000002\.json could not be withdrawn \(AWS denied s3:DeleteObject\): it records a change that did not happen; delete that object by hand/);
    });
  });

  it('a lone last entry SageMaker never took (its process stopped before UpdateModelPackage), past the settle window, is void: shown as not applied, and the next change links onto it recording that', async () => {
    await registerSeeds(1);
    const prefix = `artifacts/registry/${GROUP}/audit/000001/`;
    // What a change leaves when its process dies between creating entry 2 and UpdateModelPackage, ten minutes ago.
    const orphan = { seq: 2, prev: sha256Hex(await lake.read(`${prefix}000001.json`)), at: new Date(Date.now() - 600_000).toISOString(), by: 'ann', from: 'PendingManualApproval', to: 'Approved', note: 'ship' };
    await lake.write(`${prefix}000002.json`, `${JSON.stringify(orphan)}\n`);
    const fresh = () => new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    const trail = (v: ModelVersion) => v.audit.map((e) => [e.from, e.to, e.chain]);

    const v = await fresh().show(1);
    expect(v.status).toBe('PendingManualApproval');
    // Not an approval followed by a change back outside pricesense: the approval never happened.
    expect(trail(v)).toEqual([
      [null, 'PendingManualApproval', undefined],
      ['PendingManualApproval', 'Approved', 'not-applied'],
    ]);
    const report = await fresh().verify();
    expect(report.ok).toBe(true);
    expect(report.versions[0].warnings).toEqual([
      `audit entry 2 (PendingManualApproval -> Approved by ann at ${orphan.at}) was not applied: SageMaker says PendingManualApproval and was not modified after it was written (its UpdateModelPackage failed, or the process stopped before it); it is shown as not applied, and the next change records that`,
    ]);
    expect(await fresh().latestApproved()).toBeUndefined();

    // The next change is entry 3, linked onto entry 2 (the chain stays whole) and saying entry 2 was void.
    const rejected = await fresh().reject(1, 'not this one', 'rob');
    expect(trail(rejected)).toEqual([
      [null, 'PendingManualApproval', undefined],
      ['PendingManualApproval', 'Approved', 'not-applied'],
      ['PendingManualApproval', 'Rejected', undefined],
    ]);
    expect(JSON.parse((await lake.read(`${prefix}000003.json`)).toString('utf8'))).toMatchObject({ seq: 3, prev: sha256Hex(await lake.read(`${prefix}000002.json`)), voids: 2, from: 'PendingManualApproval', to: 'Rejected' });
    // Every voids link is said by verify (it is the next writer's claim), without making the registry fail.
    expect(await fresh().verify()).toMatchObject({
      ok: true,
      versions: [{ version: 1, status: 'Rejected', problems: [], warnings: [expect.stringMatching(/^audit entry 3 \(by rob at .*\) says entry 2 \(PendingManualApproval -> Approved by ann at .*\) was not applied; a void is the next writer's claim/)] }],
    });
    expect(trail(await fresh().show(1))).toEqual(trail(rejected));
  });

  it('a forged voids entry appended to relabel a real, applied rejection as "not applied" is caught; one that a later change hides is still said by verify', async () => {
    await registerSeeds(1);
    await registry.approve(1, 'ship', 'alice');
    await registry.reject(1, 'worse than v0', 'bob');
    const prefix = `artifacts/registry/${GROUP}/audit/000001/`;
    const e3 = JSON.parse((await lake.read(`${prefix}000003.json`)).toString('utf8')) as { at: string };
    const prev = sha256Hex(await lake.read(`${prefix}000003.json`));
    const forge = (at: number) => `${JSON.stringify({ seq: 4, prev, at: new Date(at).toISOString(), by: 'carol', from: 'Approved', to: 'Rejected', note: 'rollback', voids: 3 })}\n`;
    const fresh = () => new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    const trail = (v: ModelVersion) => v.audit.map((e) => [e.by, e.to, e.chain]);

    // Written right after bob's entry: bob's change was still within its window, nobody could have found it void.
    await lake.write(`${prefix}000004.json`, forge(Date.parse(e3.at) + 1_000));
    await expect(fresh().show(1)).rejects.toThrow(/000004\.json says entry 3 was not applied, but it was written at .*, within 120 s of that entry .*: a hand-made entry/);
    expect((await fresh().verify()).ok).toBe(false);

    // Dated past the window: but SageMaker was Rejected (bob) before it was written and not changed since, so carol's entry changed nothing.
    const modified = fake.packages[0].LastModifiedTime!.getTime();
    await lake.write(`${prefix}000004.json`, forge(Math.max(Date.parse(e3.at) + 121_000, modified + 60_000)));
    expect(trail(await fresh().show(1))).toEqual([
      ['trainer', 'PendingManualApproval', undefined],
      ['alice', 'Approved', undefined],
      ['bob', 'Rejected', undefined],
      ['carol', 'Rejected', 'not-applied'],
    ]);
    const report = await fresh().verify();
    expect(report.ok).toBe(false);
    expect(report.versions[0].problems).toEqual([
      expect.stringMatching(/^audit entry 4 \(by carol at .*\) says entry 3 \(Approved -> Rejected by bob at .*\) was not applied, but SageMaker was already Rejected before entry 4 was written .*: entry 3 was applied and entry 4 is a hand-made entry/),
    ]);
    // Serving never depended on it: SageMaker's status stands.
    expect((await fresh().show(1)).status).toBe('Rejected');

    // A later real change moves SageMaker past the forged entry: it can no longer be disproved, but verify still says it.
    await fresh().approve(1, 'back', 'dave');
    const later = await fresh().verify();
    expect(later.ok).toBe(true);
    expect(later.versions[0].warnings).toEqual([expect.stringMatching(/^audit entry 4 \(by carol at .*\) says entry 3 \(Approved -> Rejected by bob at .*\) was not applied; a void is the next writer's claim/)]);
  });

  it('turns persistent throttling into a clear error', async () => {
    await registerSeeds(1);
    sm.on(UpdateModelPackageCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));
    await expect(registry.approve(1, 'ok')).rejects.toThrow(/SageMaker kept throttling UpdateModelPackage on arn:.*model-package\/pricesense-test\/1 .*Rate exceeded/);
  });
});

describe('SageMaker client retries throttling (real HTTP, loopback)', () => {
  let server: Server;
  let endpoint: string;
  let requests: string[];
  let throttleFirst: number;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target']);
        requests.push(target);
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        if (requests.length <= throttleFirst) {
          res.statusCode = 400;
          res.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
          return;
        }
        res.end(JSON.stringify({ ModelPackageGroupName: JSON.parse(body).ModelPackageGroupName, ModelPackageGroupArn: `${ACCOUNT_ARN}:model-package-group/${GROUP}` }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    requests = [];
  });

  const realClient = (maxAttempts?: number): SageMakerClient =>
    createSageMakerClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, ...(maxAttempts ? { maxAttempts } : {}) });

  it(`uses adaptive retries with ${SAGEMAKER_MAX_ATTEMPTS} attempts and succeeds after throttled attempts`, async () => {
    throttleFirst = 1;
    const c = realClient();
    try {
      expect(await c.config.maxAttempts()).toBe(SAGEMAKER_MAX_ATTEMPTS);
      expect(((await c.config.retryStrategy()) as { mode?: string }).mode).toBe('adaptive');
      const out = await c.send(new DescribeModelPackageGroupCommand({ ModelPackageGroupName: GROUP }));
      expect(out.ModelPackageGroupArn).toBe(`${ACCOUNT_ARN}:model-package-group/${GROUP}`);
      expect(requests).toEqual(Array(2).fill('SageMaker.DescribeModelPackageGroup'));
    } finally {
      c.destroy();
    }
  });

  it('gives up after the attempts are spent with the throttling message', async () => {
    throttleFirst = Infinity;
    // Two attempts, not the default eight: throttling back-off grows to seconds per retry.
    const c = realClient(2);
    const registryOverHttp = new SageMakerRegistry(GROUP, { lake, client: c, image: IMAGE });
    try {
      await expect(registryOverHttp.show(1)).rejects.toThrow(new RegExp(`SageMaker kept throttling DescribeModelPackageGroup on ${GROUP} after 2 attempts \\(Rate exceeded\\)`));
      expect(requests).toHaveLength(2);
    } finally {
      c.destroy();
    }
  });
});

describe('SageMaker registry: a group written before the audit chain, and `registry migrate`', () => {
  const prefix = `artifacts/registry/${GROUP}/audit/`;
  async function objects(): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const o of await lake.list(prefix)) out.set(o.key, await lake.read(o.key));
    return out;
  }

  beforeEach(async () => {
    // The packages and lake objects the earlier pricesense made (its CreateModelPackage request is this one's), with its audit objects instead of the chain.
    await registerSeeds(1, 2);
    for (const o of await lake.list(prefix)) await lake.delete(o.key);
    const t0 = Date.now() - 3_600_000;
    const trails = [legacyTrail(new Date(t0).toISOString(), 'olga', 'Approved'), legacyTrail(new Date(t0 + 1000).toISOString(), 'olga')];
    for (const [i, trail] of trails.entries()) {
      for (const [j, entry] of trail.entries()) {
        const { key, body } = legacySageMakerAuditObject(GROUP, i + 1, entry, `0000000${j}`);
        await lake.write(key, body);
      }
    }
    // Its approval went to SageMaker first, then to the lake.
    await client.send(new UpdateModelPackageCommand({ ModelPackageArn: `${ACCOUNT_ARN}:model-package/${GROUP}/1`, ModelApprovalStatus: 'Approved', ApprovalDescription: 'approved before the upgrade (by olga)' }));
    addPipelinePackages(1);
    sm.resetHistory();
  });

  it('unmigrated: reads fail naming the command, nothing is served, a change is refused before UpdateModelPackage', async () => {
    await expect(registry.show(1)).rejects.toThrow(new UnmigratedVersionError(1, `sagemaker://${GROUP}`, 2));
    await expect(registry.show(1)).rejects.toThrow(`run \`pricesense registry migrate --registry sagemaker://${GROUP}\` once`);
    expect(await registry.latestServable()).toEqual({ latest: undefined, broken: [{ version: 1, problem: expect.stringContaining('pricesense registry migrate') }] });
    await expect(registry.approve(2, 'ship', 'ann')).rejects.toThrow(UnmigratedVersionError);
    expect(sm.commandCalls(UpdateModelPackageCommand)).toHaveLength(0);
    // The pipeline's package never had pricesense entries: it reads as before.
    expect((await registry.show(3)).audit).toHaveLength(1);
  });

  it('migrate adds one genesis object per sealed version, keeps every old object, and the trail goes on', async () => {
    const before = await objects();
    const report = await registry.migrate({ by: 'ops' });
    expect(report).toEqual({
      registry: `sagemaker://${GROUP}`,
      ok: true,
      versions: [
        { version: 1, result: 'sealed', legacyEntries: 2 },
        { version: 2, result: 'sealed', legacyEntries: 1 },
        { version: 3, result: 'chained' },
      ],
    });
    const after = await objects();
    for (const [key, bytes] of before) expect(after.get(key)).toEqual(bytes);
    expect([...after.keys()].filter((k) => !before.has(k)).sort()).toEqual([`${prefix}000001/000001.json`, `${prefix}000002/000001.json`, `${prefix}CHAIN-complete.json`, `${prefix}CHAIN.json`]);
    // The group's marker lists the versions that were written before the chain; the run that sealed them all closes sealing.
    expect(JSON.parse(after.get(`${prefix}CHAIN.json`)!.toString('utf8'))).toEqual({ layout: 'pricesense.registry.chain/1', state: 'migrating', legacy: [1, 2] });
    expect(JSON.parse(after.get(`${prefix}CHAIN-complete.json`)!.toString('utf8'))).toMatchObject({ state: 'complete', legacy: [1, 2], by: 'ops' });
    expect(sm.commandCalls(UpdateModelPackageCommand)).toHaveLength(0);

    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    const v1 = await fresh.show(1);
    expect(v1.audit.map((e) => [e.by, e.from, e.to, e.genesis?.legacyEntries])).toEqual([
      ['olga', null, 'PendingManualApproval', undefined],
      ['olga', 'PendingManualApproval', 'Approved', undefined],
      ['ops', 'Approved', 'Approved', 2],
    ]);
    expect((await fresh.latestApproved())?.version).toBe(1);
    expect((await fresh.verify()).ok).toBe(true);
    await fresh.approve(2, 'after the upgrade', 'ann');
    expect((await lake.list(`${prefix}000002/`)).map((o) => o.key.split('/').at(-1))).toEqual(['000001.json', '000002.json', expect.stringMatching(/^\d{8}T\d{9}Z-00000000\.json$/)]);
    expect((await fresh.latestApproved())?.version).toBe(2);

    // Idempotent: a second run writes nothing.
    const once = await objects();
    expect((await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).migrate()).versions.map((v) => v.result)).toEqual(['chained', 'chained', 'chained']);
    expect(await objects()).toEqual(once);
  });

  it('after migration, a rewritten old object breaks the genesis link (and migrate reports it, untouched)', async () => {
    await registry.migrate({ by: 'ops' });
    const old = [...(await objects()).keys()].find((k) => k.startsWith(`${prefix}000001/`) && !k.endsWith('/000001.json'))!;
    await lake.write(old, (await lake.read(old)).toString('utf8').replace('"by":"olga"', '"by":"mallory"'));
    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    await expect(fresh.show(1)).rejects.toThrow(/000001\.json does not seal the 2 entries written before the chain/);
    const report = await fresh.migrate();
    expect(report.ok).toBe(false);
    expect(report.versions[0]).toMatchObject({ version: 1, result: 'failed' });
  });

  /** Replaces a version's audit objects with old-style ones (registered, then each move), as someone with write access to the bucket could. */
  async function forgeLegacyTrail(version: number, ...moves: ModelStatus[]): Promise<void> {
    const own = `${prefix}${String(version).padStart(6, '0')}/`;
    for (const o of await lake.list(own)) await lake.delete(o.key);
    for (const [j, entry] of legacyTrail(new Date(Date.now() - 7_200_000).toISOString(), 'mallory', ...moves).entries()) {
      const { key, body } = legacySageMakerAuditObject(GROUP, version, entry, `f000000${j}`);
      await lake.write(key, body);
    }
  }

  it('(a) a version the chain-aware pricesense wrote, its objects replaced by old-style ones ending in Approved, is reported as tampered and never sealed', async () => {
    await registry.migrate({ by: 'ops' });
    const v = await registry.register(await writeFixtureForest(dir, 'f4.json', { seed: 4, gatesPassed: true }), { by: 'trainer' });
    await registry.approve(v.version, 'ship', 'ann');
    await registry.reject(v.version, 'worse than v1', 'rob');
    await forgeLegacyTrail(v.version, 'Approved');
    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    const err = await fresh.show(v.version).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuditChainError);
    expect(err).not.toBeInstanceOf(UnmigratedVersionError);
    expect((err as Error).message).toMatch(
      /version 4: audit trail does not verify: its audit objects are all of the kind written before the chain \(no <seq>\.json\), but it was not written before the chain \(s3:\/\/.*\/audit\/CHAIN\.json does not list it\), so its chained entries were replaced: written without the chain \(by a pricesense older than the hash-chained audit trail still in use, or by hand\)\. `registry migrate` will not seal it: retire every pricesense from before the chain that writes to this registry; then restore s3:\/\/.*\/audit\/000004\/ /,
    );
    const before = await objects();
    const report = await fresh.migrate({ by: 'ops' });
    expect(report.ok).toBe(false);
    expect(report.versions.find((x) => x.version === 4)).toEqual({ version: 4, result: 'failed', problem: expect.stringContaining('written without the chain (by a pricesense older than the hash-chained audit trail still in use, or by hand)') });
    expect(await objects()).toEqual(before);
  });

  it('(b) a sealed version later Rejected: deleting its chained objects (genesis and Rejected) is tampering once sealing is complete, not an unmigrated version', async () => {
    await registry.migrate({ by: 'ops' });
    // (This file's `registry` read version 1 before its trail was replaced by the old-style one: a new process.)
    await new SageMakerRegistry(GROUP, { lake, client, image: IMAGE }).reject(1, 'rollback', 'rob');
    for (const o of await lake.list(`${prefix}000001/`)) if (/\/\d{6}\.json$/.test(o.key)) await lake.delete(o.key);
    const fresh = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE });
    await expect(fresh.show(1)).rejects.toThrow(/this registry's migration is complete \(s3:\/\/.*\/audit\/CHAIN-complete\.json\), so its sealed trail was replaced: written without the chain \(by a pricesense older than the hash-chained audit trail still in use, or by hand\)/);
    const before = await objects();
    expect((await fresh.migrate()).versions[0]).toMatchObject({ version: 1, result: 'failed' });
    expect(await objects()).toEqual(before);
    // Deleting the marker as well does not reopen sealing: the object that closed it says a marker existed.
    await lake.delete(`${prefix}CHAIN.json`);
    await expect(fresh.migrate()).rejects.toThrow(/audit\/CHAIN\.json is missing but .*audit\/CHAIN-complete\.json, written after it, exists: the registry's chain marker was deleted/);
    await expect(fresh.show(1)).rejects.toThrow(/version 1: audit trail does not verify: .*CHAIN\.json is missing but/);
  });

  it('a group chained before the marker existed: old-style versions are sealed only with --accept-unchained naming every one', async () => {
    // A version registered by the chain-aware release that wrote no marker; 1 and 2 as the pre-chain release left them.
    await registry.register(await writeFixtureForest(dir, 'f4.json', { seed: 4, gatesPassed: true }), { by: 'trainer' });
    await lake.delete(`${prefix}CHAIN.json`);
    const before = await objects();
    await expect(registry.migrate()).rejects.toThrow(
      new RegExp(`audit/CHAIN\\.json is missing, yet versions of this registry have hash-chained trails .* versions 1, 2 look written before the chain: .* will not seal them on its own; .*run \`pricesense registry migrate --registry sagemaker://${GROUP} --accept-unchained 1,2\``),
    );
    await expect(registry.migrate({ acceptUnchained: [1] })).rejects.toThrow(/will not seal them on its own/);
    expect(await objects()).toEqual(before);
    // Any other write goes ahead (an emergency reject must always work), chained, and says what to run; no marker is made.
    const warned = [expect.stringMatching(/^the registry's chain marker was not created, so its older versions stay unmigrated .* until `pricesense registry migrate` is run once; this change was made and recorded in the hash chain\. .*--accept-unchained 1,2`$/)];
    expect((await registry.approve(4, 'ship', 'ann')).warnings).toEqual(warned);
    const rejected = await registry.reject(4, 'emergency: bad prices', 'rob');
    expect([rejected.status, rejected.warnings]).toEqual(['Rejected', warned]);
    expect(sm.commandCalls(UpdateModelPackageCommand).map((c) => c.args[0].input.ModelApprovalStatus)).toEqual(['Approved', 'Rejected']);
    const registered = await registry.register(await writeFixtureForest(dir, 'f5.json', { seed: 5, gatesPassed: true }), { by: 'trainer' });
    expect([registered.version, registered.warnings]).toEqual([5, warned]);
    expect((await lake.list(`${prefix}CHAIN.json`))).toHaveLength(0);
    const report = await registry.migrate({ by: 'ops', acceptUnchained: [1, 2] });
    expect(report.versions.map((v) => [v.version, v.result])).toEqual([
      [1, 'sealed'],
      [2, 'sealed'],
      [3, 'chained'],
      [4, 'chained'],
      [5, 'chained'],
    ]);
    // With the marker made, writes carry no warning.
    expect((await registry.approve(5, 'ship', 'ann')).warnings).toBeUndefined();
  });
});
