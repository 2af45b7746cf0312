import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readGoldManifest, readGoldSplit } from '../gold';
import { GOLD_SPLITS } from '../gold-schema';
import { openLake } from '../lake';
import { S3Lake } from '../lake/s3';
import { runEtl } from '../pipeline';
import { SYNTH_MANIFEST_KEY, synthesize, type SynthManifest } from '../synth/generate';
import { startS3Server, type S3TestServer } from '../testing/s3-server';

// synth + ETL end to end on an S3 lake, over HTTP against s3rver.
let server: S3TestServer;

beforeAll(async () => {
  server = await startS3Server({ buckets: ['pipeline'] });
});

afterAll(async () => {
  await server?.stop();
});

test('synth writes weekly CSVs and its manifest into an S3 lake', async () => {
  const lake = new S3Lake('s3://pipeline/synth-only', { client: server.client });
  const manifest = await synthesize(lake, { baskets: 300, weeks: 2, seed: 7 });
  const listed = await lake.list('raw/');
  expect(listed.map((o) => o.key)).toEqual([...manifest.files.map((f) => f.key), SYNTH_MANIFEST_KEY].sort());
  for (const f of manifest.files) {
    expect(listed.find((o) => o.key === f.key)?.size).toBe(f.bytes);
  }
  const stored = JSON.parse((await lake.read(SYNTH_MANIFEST_KEY)).toString('utf8')) as SynthManifest;
  expect(stored).toEqual(manifest);
  const first = (await lake.read(manifest.files[0].key)).toString('utf8');
  expect(first.slice(0, first.indexOf('\n'))).toMatch(/^SHOP_WEEK,SHOP_DATE,SHOP_WEEKDAY,/);
});

describe('ETL on an S3 lake', () => {
  let local: string;
  beforeAll(async () => {
    local = await mkdtemp(path.join(os.tmpdir(), 's3-pipeline-local-'));
  });
  afterAll(async () => {
    if (local) await rm(local, { recursive: true, force: true });
  });

  test('synth + etl publish gold with its manifest, reruns are byte-identical, and match a local lake', async () => {
    const drop = { baskets: 1500, weeks: 3, seed: 11 };
    const s3 = new S3Lake('s3://pipeline/lake', { client: server.client });
    await synthesize(s3, drop);
    const report = await runEtl(s3, { threads: 1 });

    // gold/ holds the manifest, the files it lists (matching sizes) and the ETL's ledger.
    const gold = await readGoldManifest(s3);
    expect(gold.key).toBe('gold/_SUCCESS');
    const goldObjects = await s3.list('gold/');
    expect(goldObjects.map((o) => o.key)).toEqual(
      ['gold/_LEDGER.json', 'gold/_SUCCESS', ...gold.manifest.files.map((f) => `gold/${f.path}`)].sort(),
    );
    for (const f of gold.manifest.files) {
      expect(goldObjects.find((o) => o.key === `gold/${f.path}`)?.size).toBe(f.bytes);
    }
    expect(Object.keys(gold.manifest.meta.files).sort()).toEqual([...GOLD_SPLITS].sort());
    const total = GOLD_SPLITS.reduce((n, s) => n + gold.manifest.meta.rows[s], 0);
    expect(total).toBe(gold.manifest.rows);
    expect(total).toBeGreaterThan(1000); // 1,500 baskets less ~3% XX
    expect(report.gold.manifestSha256).toBe(gold.sha256);
    expect(await s3.exists('silver/_SUCCESS')).toBe(true);

    // The trainer's read path works from S3 and checks every byte against the manifest.
    const train = await readGoldSplit(s3, 'train', gold);
    expect(train.rows).toBe(gold.manifest.meta.rows.train);
    expect(train.manifestSha256).toBe(gold.sha256);

    // Nothing is left in the lake's scratch zone but the released lease.
    expect((await s3.list('tmp/')).map((o) => o.key)).toEqual(['tmp/etl-lease/000000000001.json']);

    // Rerun on the same input: identical gold, nothing rewritten.
    const again = await runEtl(s3, { threads: 1 });
    expect(again.gold.manifestSha256).toBe(gold.sha256);
    expect(again.gold.unchanged).toBe(true);
    expect(await s3.list('gold/')).toEqual(goldObjects);

    // The same drop through a local lake gives the same gold bytes: the backend is invisible.
    const localLake = await openLake(path.join(local, 'lake'));
    await synthesize(localLake, drop);
    const localReport = await runEtl(localLake, { threads: 1 });
    expect(localReport.gold.manifestSha256).toBe(gold.sha256);
  });
});
