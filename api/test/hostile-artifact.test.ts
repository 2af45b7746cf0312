/**
 * Someone with write access to the registry (SageMaker packages, the artifact bucket)
 * must not be able to take the API down: an approved version whose artifact is a gzip
 * bomb, a looping tar, a corrupt archive or a mutated one is refused with a clear
 * failure in /ready, not retried every poll, and the previous version keeps serving.
 * The registry is the real SageMaker backend, over aws-sdk-client-mock and the
 * S3-compatible test server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import request from 'supertest';
import { S3Lake } from '../../etl/lake/s3';
import { mulberry32 } from '../../etl/synth/rng';
import { startS3Server, type S3TestServer } from '../../etl/testing/s3-server';
import { forestDigest, forestJson as sealedJson, upgradeForest, writeForestFile } from '../../model/forest-file';
import type { ForestFileV1 } from '../../model/format';
import { writeTarGz } from '../../model/sagemaker/tar';
import { maxDocumentBytes } from '../../model/forest-loader';
import { LocalRegistry } from '../../model/registry';
import { sha256Hex } from '../../model/registry/common';
import { SageMakerRegistry } from '../../model/registry/sagemaker';
import { hostileCases, mutated } from '../../model/test/hostile-artifacts';
import { FakeSageMaker, GROUP, IMAGE } from '../../model/test/sagemaker-fake';
import { createService, type Service } from '../server';
import { makeForest, sampleRow, silentLogger, testConfig } from './fixtures';

const MAX_ARTIFACT_BYTES = 4 * 1024 * 1024;

describe('hostile artifacts in the registry', () => {
  let s3: S3TestServer;
  let dir: string;
  let sm: AwsClientStub<SageMakerClient>;
  let client: SageMakerClient;
  let service: Service;
  let lake: S3Lake;
  let fake: FakeSageMaker;

  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['lake'] });
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-hostile-'));
    lake = new S3Lake('s3://lake/hostile', { client: s3.client });
    client = new SageMakerClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    sm = mockClient(client);
    fake = new FakeSageMaker();
    fake.install(sm);
    // The bomb case is ~2 MB compressed: every case is under this cap but the one that tests it.
    const registry = new SageMakerRegistry(GROUP, { lake, client, image: IMAGE, maxArtifactBytes: MAX_ARTIFACT_BYTES });
    const file = path.join(dir, 'forest.json');
    await writeForestFile(file, makeForest(1));
    const v1 = await registry.register(file, { by: 'test' });
    await registry.approve(v1.version, 'good', 'test');
    service = await createService(testConfig(), { registry, logger: silentLogger() });
    await service.manager.start();
  });
  afterAll(async () => {
    service.manager.stop();
    sm.restore();
    client.destroy();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A newer Approved package (as the pipeline registers them) whose artifact is `bytes`. */
  async function approveArtifact(name: string, bytes: Buffer, forestSha256?: string): Promise<number> {
    const key = `artifacts/pipeline/${name.replace(/[^a-z0-9]+/gi, '-')}/model.tar.gz`;
    await lake.write(key, bytes);
    return fake.addPipelinePackage({ modelDataUrl: lake.uri(key), artifactSha256: sha256Hex(bytes), status: 'Approved', forestSha256 });
  }

  /** Two polls: the refused version is fetched once (remembered, not retried); /ready still serves version 1. */
  async function refusedOnce(version: number): Promise<request.Response> {
    const fetches = jest.spyOn(service.manager.registry, 'fetchArtifact');
    try {
      await service.manager.refresh();
      await service.manager.refresh();
      expect(fetches.mock.calls.filter(([v]) => v === version)).toHaveLength(1);
    } finally {
      fetches.mockRestore();
    }
    const ready = await request(service.handler).get('/ready').expect(200);
    expect(ready.body.champion.version).toBe(1);
    return ready;
  }

  const forestJson = Buffer.from(JSON.stringify({ format: 'pricesense.forest', pad: 'x'.repeat(3000) }));
  const rng = mulberry32(5);
  const cases: [string, Buffer][] = [...hostileCases(forestJson), ...Array.from({ length: 5 }, (_, i): [string, Buffer] => [`mutation ${i}`, mutated(rng, forestJson)])];

  it.each(cases)('refuses %s, reports it, does not retry it, and keeps serving version 1', async (name, bytes) => {
    const version = await approveArtifact(name, bytes);
    const ready = await refusedOnce(version);
    expect(ready.body.lastLoadFailure).toMatchObject({ version, role: 'champion' });
    expect(ready.body.lastLoadFailure.error).toMatch(/tar|gzip|decompress|PAX|archive|forest|JSON|MAX_ARTIFACT_BYTES/i);
    expect(ready.body.failedVersions.map((f: { version: number }) => f.version)).toContain(version);
    const res = await request(service.handler).post('/predict').send(sampleRow()).expect(200);
    expect(res.body.model.version).toBe(1);
  });

  // Well-formed archives around forest documents sealed anew after a hostile edit, registered with that digest (as
  // someone with write access to the registry can): they pass the archive reader and the digest check, and reach the decoder.
  type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const hostileForests: [string, (d: Doc) => void, RegExp][] = [
    ['a forest stating more nodes than FOREST_LIMITS.nodes', (d) => (d.trees.nodes = 2 ** 25 + 1), /FOREST_LIMITS\.nodes\b/],
    ['a forest stating 2^31 trees', (d) => (d.trees.count = 2 ** 31), /FOREST_LIMITS\.trees\b/],
    ['a forest whose trees never close', (d) => (d.trees.split.base64 = Buffer.from(Buffer.from(d.trees.split.base64, 'base64').map(() => 1)).toString('base64')), /missing node/],
    ['a forest with a 65,536-category feature', (d) => (d.features.find((f: Doc) => f.kind === 'categorical').categories = Array.from({ length: 65_536 }, (_, i) => `c${i}`)), /FOREST_LIMITS\.categoriesPerFeature\b/],
  ];
  it.each(hostileForests)('refuses %s inside a valid archive, naming the problem, and keeps serving version 1', async (name, mutate, problem) => {
    const d = JSON.parse(sealedJson(upgradeForest(makeForest(1)))) as Doc;
    mutate(d);
    d.sha256 = forestDigest(d as ForestFileV1);
    const version = await approveArtifact(name, writeTarGz([{ name: 'forest.json', data: Buffer.from(JSON.stringify(d)) }]), d.sha256);
    const ready = await refusedOnce(version);
    expect(ready.body.lastLoadFailure).toMatchObject({ version, role: 'champion' });
    expect(ready.body.lastLoadFailure.error).toMatch(/invalid forest file/);
    expect(ready.body.lastLoadFailure.error).toMatch(problem);
    const res = await request(service.handler).post('/predict').send(sampleRow()).expect(200);
    expect(res.body.model.version).toBe(1);
  });

  it('refuses an artifact over maxArtifactBytes on its Content-Length, before downloading it, and keeps serving version 1', async () => {
    const size = MAX_ARTIFACT_BYTES + 1024 * 1024;
    const version = await approveArtifact('over the size limit', randomBytes(size));
    const ready = await refusedOnce(version);
    // The exact size: it came from the object's Content-Length, not from counting a download.
    expect(ready.body.lastLoadFailure).toMatchObject({ version, role: 'champion' });
    expect(ready.body.lastLoadFailure.error).toContain(`is ${size.toLocaleString('en-US')} bytes, more than the ${MAX_ARTIFACT_BYTES.toLocaleString('en-US')} bytes this registry client allows`);
    expect(ready.body.lastLoadFailure.error).toContain('refused on its size, before it was downloaded');
    const res = await request(service.handler).post('/predict').send(sampleRow()).expect(200);
    expect(res.body.model.version).toBe(1);
  });
});

describe('the API caps an artifact at what its load budget can parse', () => {
  let dir: string;
  const saved = process.env.PRICESENSE_LOADER_MEMORY_MB;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-budget-'));
    // 64 MiB of load budget parses documents of up to 6.7 MB (PARSE_MEMORY_FACTOR 10).
    process.env.PRICESENSE_LOADER_MEMORY_MB = '64';
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.PRICESENSE_LOADER_MEMORY_MB;
    else process.env.PRICESENSE_LOADER_MEMORY_MB = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a larger artifact on its size, naming the budget, and keeps serving version 1', async () => {
    const registry = new LocalRegistry(path.join(dir, 'registry'));
    const file = path.join(dir, 'forest.json');
    await writeForestFile(file, makeForest(1));
    await registry.approve((await registry.register(file, { by: 'test' })).version, 'good', 'test');
    const service = await createService(testConfig({ registry: path.join(dir, 'registry') }), { logger: silentLogger() });
    try {
      await service.manager.start();
      // Version 2's artifact replaced in place by 8 MB (sparse): over the 6,710,886 bytes the budget parses.
      const v2 = await registry.register(file, { by: 'test' });
      await registry.approve(v2.version, 'better', 'test');
      await truncate(v2.artifactUri, 8_000_000);
      await service.manager.refresh();
      const ready = await request(service.handler).get('/ready').expect(200);
      expect(ready.body.champion.version).toBe(1);
      expect(ready.body.lastLoadFailure.error).toContain(
        `version 2's artifact ${v2.artifactUri} is 8,000,000 bytes, more than the ${maxDocumentBytes(64).toLocaleString('en-US')} bytes this service loads (the largest forest document its load budget of 64 MiB parses`,
      );
    } finally {
      service.manager.stop();
    }
  });
});
