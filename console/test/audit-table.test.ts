import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3Lake } from '../../etl/lake/s3';
import { startS3Server } from '../../etl/testing/s3-server';
import { LocalRegistry } from '../../model/registry';
import { SageMakerRegistry } from '../../model/registry/sagemaker';
import { legacySageMakerAuditObject, legacyTrail, writeFixtureForest, writeLegacyLocalVersion } from '../../model/test/registry-fixtures';
import { ACCOUNT_ARN, fakeSageMakerClient, GROUP } from '../../model/test/sagemaker-fake';
import { auditTable } from '../pages/version';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'console-audit-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The chain column of each rendered audit row, in order. */
function chainColumn(markup: string): string[] {
  return [...markup.matchAll(/<td data-chain="([a-z-]+)">/g)].map((m) => m[1]);
}

describe('the version page audit table', () => {
  it('shows entries written before the chain as sealed by the migration entry, never as linked', async () => {
    const root = path.join(dir, 'registry');
    // Registered then approved by an earlier pricesense (no chain), migrated, then rejected.
    await writeLegacyLocalVersion(root, 1, await writeFixtureForest(dir, 'v1.json', { seed: 1, gatesPassed: true }), legacyTrail('2026-06-01T09:00:00.000Z', 'olga', 'Approved'));
    const registry = new LocalRegistry(root);
    await registry.migrate({ by: 'ops' });
    await registry.reject(1, 'rolled back', 'ann');
    const markup = auditTable(await registry.show(1)).text;
    expect(chainColumn(markup)).toEqual(['sealed', 'sealed', 'linked', 'linked']);
    expect(markup).toContain('2 entries, each linked');
    expect(markup).toContain('2 earlier entries were written before the chain and are sealed as found by the migration entry');
  });

  it('takes each row\'s chain state from the registry, not from its position: a pipeline package\'s reconstructed registration before a sealed history is outside the chain, not sealed', async () => {
    const s3 = await startS3Server({ buckets: ['lake'] });
    const { client, fake, close } = fakeSageMakerClient();
    try {
      const lake = new S3Lake('s3://lake/audit-table', { client: s3.client });
      // Registered by the SageMaker pipeline, approved by a pricesense from before the chain (one old-style object), then migrated.
      await lake.write('models/v1/model.tar.gz', 'not read here');
      fake.groupArn = `${ACCOUNT_ARN}:model-package-group/${GROUP}`; // the pipeline created the group
      const version = fake.addPipelinePackage({ modelDataUrl: `${lake.root}/models/v1/model.tar.gz`, artifactSha256: '0'.repeat(64), status: 'Approved' });
      const old = legacySageMakerAuditObject(GROUP, version, { at: '2026-06-01T09:00:00.000Z', by: 'olga', from: 'PendingManualApproval', to: 'Approved', note: 'approved before the upgrade' }, '00000000');
      await lake.write(old.key, old.body);
      const registry = new SageMakerRegistry(GROUP, { lake, client, image: 'example/pricesense-api:1' });
      expect((await registry.migrate({ by: 'ops' })).ok).toBe(true);
      const markup = auditTable(await registry.show(version)).text;
      expect(chainColumn(markup)).toEqual(['outside', 'sealed', 'linked']);
      expect(markup).toContain('1 entry, each linked');
      expect(markup).toContain('1 earlier entry was written before the chain and is sealed as found by the migration entry');
      expect(markup).toContain('1 entry reconstructed from SageMaker (outside pricesense) is not part of it');
    } finally {
      close();
      await s3.stop();
    }
  });

  it('marks every entry of a trail chained from its start as linked', async () => {
    const root = path.join(dir, 'fresh');
    const registry = new LocalRegistry(root);
    const v = await registry.register(await writeFixtureForest(dir, 'v2.json', { seed: 2, gatesPassed: true }), { by: 'ann' });
    await registry.approve(v.version, 'ship', 'ann');
    const markup = auditTable(await registry.show(v.version)).text;
    expect(chainColumn(markup)).toEqual(['linked', 'linked']);
    expect(markup).not.toContain('sealed');
  });
});
