/**
 * The console on the SageMaker backend: the same pages and decisions through the same
 * Registry interface. SageMaker is aws-sdk-client-mock behind the registry tests' in-memory
 * package group (model/test/sagemaker-fake.ts); artifacts and audit objects go over real
 * HTTP to the S3-compatible test server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import request from 'supertest';
import { S3Lake } from '../../etl/lake/s3';
import { startS3Server, type S3TestServer } from '../../etl/testing/s3-server';
import { SageMakerRegistry } from '../../model/registry/sagemaker';
import { writeFixtureForest } from '../../model/test/registry-fixtures';
import { fakeSageMakerClient, GROUP } from '../../model/test/sagemaker-fake';
import { createConsoleApp } from '../app';
import { Authenticator } from '../auth';
import { writeAuthFile } from './fixtures';

describe('registry console on the SageMaker backend', () => {
  let s3: S3TestServer;
  let dir: string;

  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['lake'] });
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-console-sm-'));
  });
  afterAll(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists, shows and verifies versions, and records an approval in SageMaker and the lake', async () => {
    const lake = new S3Lake('s3://lake/console', { client: s3.client });
    const { client, fake, close } = fakeSageMakerClient();
    const packages = fake.packages;
    const registry = new SageMakerRegistry(GROUP, { lake, client, image: 'example/pricesense-api:1' });
    await registry.register(await writeFixtureForest(dir, 'a.json', { seed: 1, gatesPassed: true }), { by: 'trainer' });
    await registry.register(await writeFixtureForest(dir, 'b.json', { seed: 2, gatesPassed: true }), { by: 'trainer' });
    await registry.approve(1, 'first', 'alice');
    const tokens = await writeAuthFile(dir);
    const app = createConsoleApp({ registry, auth: await Authenticator.open(tokens.file), logger: pino({ level: 'silent' }), lake });
    const as = (token: string) => ({ Authorization: `Bearer ${token}` });

    const list = await request(app).get('/').set(as(tokens.viewer));
    expect(list.status).toBe(200);
    expect(list.text).toContain(`registry <code>sagemaker://${GROUP}</code>`);
    expect([...list.text.matchAll(/<tr data-version="(\d+)">/g)].map((m) => m[1])).toEqual(['2', '1']);
    const page = await request(app).get('/versions/2').set(as(tokens.viewer));
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/data-chart="importance" id="importance">[\s\S]*?data-marks="1"/); // read from the S3 artifact
    const verified = await request(app).post('/versions/2/verify').set(as(tokens.viewer)).type('form').send({});
    expect(verified.text).toContain('data-verify="ok"');

    const approved = await request(app).post('/versions/2/approve').set(as(tokens.approver)).type('form').send({ note: 'reviewed in the console', expected: 'PendingManualApproval' });
    expect(approved.status).toBe(303);
    expect(packages[1]).toMatchObject({ ModelApprovalStatus: 'Approved', ApprovalDescription: 'reviewed in the console (by approver@example.com)' });
    const v2 = await registry.show(2);
    expect(v2.audit.at(-1)).toMatchObject({ by: 'approver@example.com', to: 'Approved', note: 'reviewed in the console' });
    expect(rowHasServed(await request(app).get('/').set(as(tokens.viewer)), 2)).toBe(true);
    close();
  });
});

function rowHasServed(res: { text: string }, version: number): boolean {
  return new RegExp(`<tr data-version="${version}">[\\s\\S]*?</tr>`).exec(res.text)![0].includes('data-marker="served"');
}
