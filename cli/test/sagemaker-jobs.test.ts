/**
 * The SageMaker entrypoints against temp directories laid out exactly like /opt/ml: the ETL
 * processing job on two raw shards, single- and 3-host training, merge, and evaluation.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalLake } from '../../etl/lake/local';
import { runEtl } from '../../etl/pipeline';
import { synthesize } from '../../etl/synth/generate';
import { parseForest, readForestFile } from '../../model/forest-file';
import type { ForestFileV1 } from '../../model/format';
import { forestFromArtifact } from '../../model/sagemaker/jobs';
import { writeTarGz } from '../../model/sagemaker/tar';
import { runCli as run } from './run-cli';


const HYPERPARAMETERS = { trees: '12', max_depth: '8', min_leaf: '5', seed: '17', threads: '1' };
const ACCURACY = /metric validation:accuracy=([0-9.]+)/;
const MACRO_F1 = /metric validation:macro_f1=([0-9.]+)/;

/** A training container's /opt/ml: config files and the gold channel (a copy of `gold`). */
async function trainingRoot(dir: string, gold: string, resourceConfig?: { current_host: string; hosts: string[] }, hp: Record<string, string> = HYPERPARAMETERS): Promise<string> {
  await mkdir(path.join(dir, 'input', 'config'), { recursive: true });
  await writeFile(path.join(dir, 'input', 'config', 'hyperparameters.json'), JSON.stringify(hp));
  if (resourceConfig) await writeFile(path.join(dir, 'input', 'config', 'resourceconfig.json'), JSON.stringify({ ...resourceConfig, network_interface_name: 'eth0' }));
  await cp(gold, path.join(dir, 'input', 'data', 'gold'), { recursive: true });
  await mkdir(path.join(dir, 'model'), { recursive: true });
  await mkdir(path.join(dir, 'output'), { recursive: true });
  return dir;
}

describe('pricesense sagemaker', () => {
  let dir: string;
  let lakeDir: string;
  /** The gold zone of one ETL over all raw files (the reference). */
  let wholeGold: string;
  /** output/gold of the ETL processing job run on two shards. */
  let shardedGold: string;
  let rawFiles: string[];
  let single: ForestFileV1;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-sm-'));
    lakeDir = path.join(dir, 'lake');
    const lake = new LocalLake(lakeDir);
    await synthesize(lake, { baskets: 3000, weeks: 2, seed: 23 });
    await runEtl(lake, { threads: 2 });
    wholeGold = lake.uri('gold');
    rawFiles = (await readdir(lake.uri('raw'))).filter((f) => f.endsWith('.csv')).sort();
    expect(rawFiles).toHaveLength(2);

    // ETL processing job: ShardedByS3Key gives each of two instances one weekly file.
    const processing = path.join(dir, 'etl-job');
    for (const [i, file] of rawFiles.entries()) {
      const root = path.join(processing, `instance-${i + 1}`);
      await mkdir(path.join(root, 'processing', 'input', 'raw'), { recursive: true });
      await cp(path.join(lakeDir, 'raw', file), path.join(root, 'processing', 'input', 'raw', file));
      await mkdir(path.join(root, 'config'), { recursive: true });
      await writeFile(path.join(root, 'config', 'resourceconfig.json'), JSON.stringify({ current_host: `algo-${i + 1}`, hosts: ['algo-1', 'algo-2'] }));
      const r = await run(['sagemaker', 'etl', '--root', root, '--threads', '1']);
      expect(r.err).not.toMatch(/pricesense:/);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`shard algo-${i + 1}: 1 raw file\\(s\\)`));
    }
    // What S3 holds after both instances upload their output/gold: the union.
    shardedGold = path.join(processing, 'uploaded-gold');
    for (const i of [1, 2]) await cp(path.join(processing, `instance-${i}`, 'processing', 'output', 'gold'), shardedGold, { recursive: true });
  }, 120_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('etl: each instance writes its own committed gold zone under output/gold/<host>/gold', async () => {
    expect((await readdir(shardedGold)).sort()).toEqual(['algo-1', 'algo-2']);
    for (const host of ['algo-1', 'algo-2']) {
      const files = await readdir(path.join(shardedGold, host, 'gold'));
      expect(files).toContain('_SUCCESS');
      expect(files.filter((f) => f.endsWith('.parquet'))).toHaveLength(3);
    }
  });

  /** The single-host job (the reference every other test compares with), run once. */
  let singleRun: Promise<{ root: string; out: string; code: number }> | undefined;
  function singleHost(): Promise<{ root: string; out: string; code: number }> {
    singleRun ??= (async () => {
      const root = await trainingRoot(path.join(dir, 'single'), wholeGold);
      const r = await run(['sagemaker', 'train', '--root', root]);
      single = await readForestFile(path.join(root, 'model', 'forest-part-000.json'));
      return { root, out: r.out, code: r.code };
    })();
    return singleRun;
  }

  /** The simulated 3-host job: three containers whose resourceconfig names algo-1, -2, -3, run once. */
  let multiRun: Promise<{ root: string; out: string; code: number }[]> | undefined;
  function multiHost(): Promise<{ root: string; out: string; code: number }[]> {
    multiRun ??= (async () => {
      const hosts = ['algo-3', 'algo-1', 'algo-2']; // SageMaker's order is not relied on
      const runs = [];
      for (const host of ['algo-1', 'algo-2', 'algo-3']) {
        const root = await trainingRoot(path.join(dir, `multi-${host}`), wholeGold, { current_host: host, hosts });
        const r = await run(['sagemaker', 'train', '--root', root]);
        runs.push({ root, out: r.out, code: r.code });
      }
      return runs;
    })();
    return multiRun;
  }

  it('train, single host: writes a sealed partial forest of every tree and parseable metric lines', async () => {
    const r = await singleHost();
    const root = r.root;
    expect(r.code).toBe(0);
    const accuracy = Number(ACCURACY.exec(r.out)?.[1]);
    const macroF1 = Number(MACRO_F1.exec(r.out)?.[1]);
    expect(accuracy).toBeGreaterThan(0.5);
    expect(accuracy).toBeLessThanOrEqual(1);
    expect(macroF1).toBeGreaterThan(0.3);
    expect(await readdir(path.join(root, 'model'))).toEqual(['forest-part-000.json']);
    expect(single.trees).toHaveLength(12);
    expect(single.training.treeRange).toEqual({ start: 0, end: 12, trees: 12 });
    expect(single.training.seed).toBe(17);
    expect(single.training.hyperparameters).toMatchObject({ trees: 12, maxDepth: 8, minSamplesLeaf: 5 });
    expect((single.metrics.validation as { accuracy: number }).accuracy).toBeCloseTo(accuracy, 5);
  });

  it('train, 3 hosts: the merged forest equals the single-host forest tree for tree', async () => {
    await singleHost();
    const runs = await multiHost();
    for (const r of runs) {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(ACCURACY);
      expect(r.out).toMatch(/partial forest/);
    }
    const parts = path.join(dir, 'parts');
    await mkdir(parts);
    for (const r of runs) for (const file of await readdir(path.join(r.root, 'model'))) await cp(path.join(r.root, 'model', file), path.join(parts, file));
    expect((await readdir(parts)).sort()).toEqual(['forest-part-000.json', 'forest-part-001.json', 'forest-part-002.json']);
    const second = await readForestFile(path.join(parts, 'forest-part-001.json'));
    expect(second.training.treeRange).toEqual({ start: 4, end: 8, trees: 12 });

    const out = path.join(dir, 'merged.json');
    const m = await run(['sagemaker', 'merge', '--parts', parts, '--out', out]);
    expect(m.code).toBe(0);
    const merged = await readForestFile(out);
    expect(merged.trees).toHaveLength(12);
    expect(merged.trees).toEqual(single.trees);
    expect(merged.features).toEqual(single.features);
    expect(merged.training.treeRange).toBeUndefined();
    expect(m.out).toContain(merged.sha256);

    // A missing host is a gap; a duplicated share an overlap.
    await rm(path.join(parts, 'forest-part-001.json'));
    const gap = await run(['sagemaker', 'merge', '--parts', parts, '--out', path.join(dir, 'bad.json')]);
    expect(gap.code).not.toBe(0);
    expect(gap.err).toMatch(/trees \[4, 8\) of 12 missing/);
    await cp(path.join(dir, 'multi-algo-2', 'model', 'forest-part-001.json'), path.join(parts, 'forest-part-001.json'));
    await cp(path.join(dir, 'single', 'model', 'forest-part-000.json'), path.join(parts, 'forest-part-009.json'));
    const overlap = await run(['sagemaker', 'merge', '--parts', parts, '--out', path.join(dir, 'bad.json')]);
    expect(overlap.err).toMatch(/partial forests overlap/);
  });

  it('train on the sharded ETL output: the same forest as on one ETL over all the files', async () => {
    await singleHost();
    const root = await trainingRoot(path.join(dir, 'sharded'), shardedGold);
    const r = await run(['sagemaker', 'train', '--root', root]);
    expect(r.code).toBe(0);
    const fromShards = await readForestFile(path.join(root, 'model', 'forest-part-000.json'));
    expect(fromShards.training.rows).toBe(single.training.rows);
    expect(fromShards.features).toEqual(single.features);
    expect(fromShards.trees).toEqual(single.trees);
    // Lineage names both shards (not either one's manifest), and the drift baseline covers their union.
    expect(fromShards.training.datasetManifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(fromShards.training.datasetManifestSha256).not.toBe(single.training.datasetManifestSha256);
    // computed as the ETL computes them, on the basket-ordered union: the same figures as one ETL's.
    expect(fromShards.featureStats).toEqual(single.featureStats);
  });

  it('evaluate: merges the parts from model.tar.gz, writes evaluation.json with the gates and model.tar.gz with the merged forest', async () => {
    await singleHost();
    const root = path.join(dir, 'evaluate-job');
    const modelIn = path.join(root, 'processing', 'input', 'model');
    await mkdir(modelIn, { recursive: true });
    const files = (await multiHost()).map((r, i) => path.join(r.root, 'model', `forest-part-00${i}.json`));
    await writeFile(
      path.join(modelIn, 'model.tar.gz'),
      writeTarGz(await Promise.all(files.map(async (f) => ({ name: path.basename(f), data: await readFile(f) })))),
    );
    await cp(shardedGold, path.join(root, 'processing', 'input', 'gold'), { recursive: true });
    const r = await run(['sagemaker', 'evaluate', '--root', root]);
    expect(r.err).not.toMatch(/pricesense:/);
    expect(r.code).toBe(0);

    const report = JSON.parse(await readFile(path.join(root, 'processing', 'output', 'evaluation', 'evaluation.json'), 'utf8'));
    expect(typeof report.gates.passed).toBe('boolean');
    expect(Array.isArray(report.gates.failures)).toBe(true);
    expect(report.gates.passed).toBe(report.gates.failures.length === 0);
    expect(report.gates.results.map((g: { gate: string }) => g.gate)).toEqual(expect.arrayContaining(['accuracy', 'macroF1', 'precision[High]']));
    expect(report.metrics.test.split).toBe('test');
    expect(report.metrics.test.accuracy).toBeGreaterThan(0.5);
    expect(report.model).toMatchObject({ trees: 12, seed: 17, parts: 3 });

    const artifact = await readFile(path.join(root, 'processing', 'output', 'model', 'model.tar.gz'));
    expect(report.registry.artifactSha256).toBe(createHash('sha256').update(artifact).digest('hex'));
    const forest = await forestFromArtifact(artifact, 'model.tar.gz');
    expect(report.registry).toMatchObject({ forestSha256: forest.sha256, formatVersion: 2 });
    expect(forest.trees).toEqual(single.trees);
    expect((forest.metrics.test as { accuracy: number }).accuracy).toBe(report.metrics.test.accuracy);
    expect((forest.metrics.gates as { passed: boolean }).passed).toBe(report.gates.passed);
    // The API and registry read it as a plain forest file once unpacked (GNU tar agrees).
    execFileSync('tar', ['-xzf', path.join(root, 'processing', 'output', 'model', 'model.tar.gz'), '-C', root]);
    expect(parseForest(await readFile(path.join(root, 'forest.json'))).sha256).toBe(forest.sha256);
  });

  it('failure contract: a bad hyperparameter writes output/failure and exits non-zero', async () => {
    const root = await trainingRoot(path.join(dir, 'bad'), wholeGold, undefined, { ...HYPERPARAMETERS, max_depth: 'deep' });
    const r = await run(['sagemaker', 'train', '--root', root]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/hyperparameter max_depth must be an integer >= 0, got "deep"/);
    expect(await readFile(path.join(root, 'output', 'failure'), 'utf8')).toMatch(/hyperparameters\.json: hyperparameter max_depth must be an integer >= 0, got "deep"/);
    expect(await readdir(path.join(root, 'model'))).toEqual([]);

    // More hosts than trees: a clear failure, not an empty part.
    const crowded = await trainingRoot(path.join(dir, 'crowded'), wholeGold, { current_host: 'algo-1', hosts: ['algo-1', 'algo-2', 'algo-3'] }, { ...HYPERPARAMETERS, trees: '2' });
    const c = await run(['sagemaker', 'train', '--root', crowded]);
    expect(c.code).not.toBe(0);
    expect(await readFile(path.join(crowded, 'output', 'failure'), 'utf8')).toMatch(/cannot split 2 tree\(s\) across 3 hosts/);

    // Processing jobs report through output/message (DescribeProcessingJob's ExitMessage).
    const noGold = path.join(dir, 'no-gold');
    await mkdir(path.join(noGold, 'processing', 'input', 'model'), { recursive: true });
    const e = await run(['sagemaker', 'evaluate', '--root', noGold]);
    expect(e.code).not.toBe(0);
    expect(await readFile(path.join(noGold, 'output', 'message'), 'utf8')).toMatch(/no partial forests in/);
  });

  it('SM_ROOT selects the root when --root is absent', async () => {
    const root = await trainingRoot(path.join(dir, 'env'), wholeGold, undefined, { ...HYPERPARAMETERS, trees: '2' });
    const before = process.env.SM_ROOT;
    process.env.SM_ROOT = root;
    try {
      const r = await run(['sagemaker', 'train']);
      expect(r.code).toBe(0);
      expect(await readdir(path.join(root, 'model'))).toEqual(['forest-part-000.json']);
    } finally {
      if (before === undefined) delete process.env.SM_ROOT;
      else process.env.SM_ROOT = before;
    }
  });
});
