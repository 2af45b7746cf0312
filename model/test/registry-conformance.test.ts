/**
 * The registry conformance suite (registry-conformance.ts) against both backends: the local
 * directory, and SageMaker on aws-sdk-client-mock (the in-memory package group of
 * sagemaker-fake.ts) with its artifacts in an S3 lake on the loopback S3 test server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3Lake } from '../../etl/lake/s3';
import { startS3Server, type S3TestServer } from '../../etl/testing/s3-server';
import { LocalRegistry } from '../registry';
import { SageMakerRegistry } from '../registry/sagemaker';
import { describeRegistryConformance } from './registry-conformance';
import { fakeSageMakerClient, GROUP, IMAGE } from './sagemaker-fake';

/** Far above the fixture forests (a few kB), low enough that one over it is cheap to write. */
const MAX_ARTIFACT_BYTES = 1024 * 1024;

describeRegistryConformance('local directory', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-registry-local-'));
  return {
    registry: new LocalRegistry(path.join(dir, 'registry'), { maxArtifactBytes: MAX_ARTIFACT_BYTES }),
    tamperArtifact: (version, bytes) => writeFile(version.artifactUri, bytes),
    maxArtifactBytes: MAX_ARTIFACT_BYTES,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3Server({ buckets: ['lake'] });
});
afterAll(async () => {
  await s3.stop();
});

describeRegistryConformance('SageMaker (mocked client, S3 lake)', async () => {
  // A fresh lake prefix per test: the S3 server lives for the whole file.
  const lake = new S3Lake(`s3://lake/c${Math.random().toString(36).slice(2, 10)}`, { client: s3.client });
  const { client, close } = fakeSageMakerClient();
  return {
    registry: new SageMakerRegistry(GROUP, { lake, client, image: IMAGE, maxArtifactBytes: MAX_ARTIFACT_BYTES }),
    tamperArtifact: (version, bytes) => lake.write(version.artifactUri.slice(`${lake.root}/`.length), bytes),
    maxArtifactBytes: MAX_ARTIFACT_BYTES,
    cleanup: async () => close(),
  };
});
