/**
 * `pricesense sagemaker score` against temp directories laid out like /opt/ml, and
 * `pricesense model upgrade`: the model as SageMaker ships it (model.tar.gz), two
 * instances each scoring their share of the input files, the failure contract.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { FOREST_FORMAT_V2, type ForestFileV1 } from '../../model/format';
import { forestJson, parseForest, readForestFile, writeForestFile } from '../../model/forest-file';
import { writeTarGz } from '../../model/sagemaker/tar';
import { CompiledForest } from '../../model/walker';
import { randomForest, randomRow, rng } from '../../model/test/random-forest-fixture';
import { query } from './duckdb-query';
import { runCli as run } from './run-cli';

/** A raw value as a CSV cell: finite numbers and strings as text, anything else empty. */
function cell(v: unknown): string {
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' && !v.includes(',') ? v : '';
}

/** CSV of rows over the forest's features, with an ID column. */
function csvOf(forest: ForestFileV1, rows: Record<string, unknown>[]): string {
  const names = forest.features.map((f) => f.name);
  return [['ID', ...names].join(','), ...rows.map((r, i) => [`r${i}`, ...names.map((n) => cell(r[n]))].join(','))].join('\n') + '\n';
}

/** What a CSV cell means: empty is missing; numeric columns hold numbers, categorical ones category names. */
function readBack(forest: ForestFileV1, row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(forest.features.map((f) => [f.name, cell(row[f.name]) === '' ? null : f.kind === 'numeric' ? Number(cell(row[f.name])) : cell(row[f.name])]));
}

describe('pricesense sagemaker score', () => {
  let dir: string;
  let forest: ForestFileV1;
  let rows: Record<string, unknown>[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-sm-score-'));
    forest = randomForest(41, { trees: 9, maxDepth: 7 });
    const rand = rng(5);
    rows = Array.from({ length: 300 }, () => randomRow(rand, forest.features));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A processing container's /opt/ml: resourceconfig, the model input as model.tar.gz, some data files. */
  async function processingRoot(name: string, host: string, data: Record<string, Buffer | string>): Promise<string> {
    const root = path.join(dir, name);
    await mkdir(path.join(root, 'config'), { recursive: true });
    await writeFile(path.join(root, 'config', 'resourceconfig.json'), JSON.stringify({ current_host: host, hosts: ['algo-1', 'algo-2'] }));
    await mkdir(path.join(root, 'processing', 'input', 'model'), { recursive: true });
    await mkdir(path.join(root, 'processing', 'input', 'data'), { recursive: true });
    await writeFile(path.join(root, 'processing', 'input', 'model', 'model.tar.gz'), writeTarGz([{ name: 'forest.json', data: Buffer.from(`${forestJson(forest)}\n`) }]));
    for (const [file, body] of Object.entries(data)) {
      await mkdir(path.dirname(path.join(root, 'processing', 'input', 'data', file)), { recursive: true });
      await writeFile(path.join(root, 'processing', 'input', 'data', file), body);
    }
    return root;
  }

  it('scores each instance\'s share of the files into output/scores/<instance>/, one output per input, with a summary', async () => {
    const cf = CompiledForest.compile(forest);
    const first = await processingRoot('job-a', 'algo-1', { 'week-1.csv.gz': gzipSync(csvOf(forest, rows.slice(0, 150))) });
    const second = await processingRoot('job-b', 'algo-2', { 'weeks/week-2.csv': csvOf(forest, rows.slice(150)), 'notes.txt': 'ignored' });
    for (const root of [first, second]) {
      const res = await run(['sagemaker', 'score', '--root', root, '--id', 'ID', '--model-version', '7']);
      expect(res.err).toBe('');
      expect(res.code).toBe(0);
    }
    const outA = path.join(first, 'processing', 'output', 'scores', 'algo-1');
    const outB = path.join(second, 'processing', 'output', 'scores', 'algo-2');
    const scored = [
      ...(await query(`SELECT * FROM read_parquet('${path.join(outA, 'week-1.parquet')}') ORDER BY "row"`)),
      ...(await query(`SELECT * FROM read_parquet('${path.join(outB, 'weeks', 'week-2.parquet')}') ORDER BY "row"`)),
    ];
    expect(scored).toHaveLength(300);
    expect(scored.map((r) => [r.ID, r.label, r.model_sha256, r.model_version])).toEqual(rows.map((r, i) => [`r${i % 150}`, cf.predict(readBack(forest, r)).label, forest.sha256, 7]));
    const summary = JSON.parse(await readFile(path.join(outB, '_summary.json'), 'utf8'));
    expect(summary).toMatchObject({ shard: 'algo-2', model: { sha256: forest.sha256, version: 7 }, files: [{ input: 'weeks/week-2.csv', output: 'weeks/week-2.parquet', rows: 150, badRows: 0 }] });
  });

  it('refuses inputs that would write the same output (a.csv and a.parquet), before scoring any', async () => {
    const root = await processingRoot('job-clash', 'algo-1', { 'a.csv': csvOf(forest, rows.slice(0, 5)), 'a.csv.gz': gzipSync(csvOf(forest, rows.slice(5, 10))), 'b.csv': csvOf(forest, rows.slice(10, 15)) });
    const res = await run(['sagemaker', 'score', '--root', root]);
    expect(res.code).not.toBe(0);
    const message = await readFile(path.join(root, 'output', 'message'), 'utf8');
    expect(message).toMatch(/input files would overwrite each other's output: a\.csv and a\.csv\.gz → a\.parquet\. Keep one/);
    await expect(stat(path.join(root, 'processing', 'output', 'scores', 'algo-1', 'b.parquet'))).rejects.toThrow(/ENOENT/);
  });

  it('succeeds with no output on an instance that got no files, and reports a missing model through output/message', async () => {
    const empty = await processingRoot('job-empty', 'algo-2', {});
    const res = await run(['sagemaker', 'score', '--root', empty]);
    expect(res.code).toBe(0);
    expect(res.out).toMatch(/nothing to do/);
    const noModel = await processingRoot('job-no-model', 'algo-1', { 'x.csv': csvOf(forest, rows.slice(0, 3)) });
    await rm(path.join(noModel, 'processing', 'input', 'model'), { recursive: true });
    const failed = await run(['sagemaker', 'score', '--root', noModel]);
    expect(failed.code).not.toBe(0);
    expect(await readFile(path.join(noModel, 'output', 'message'), 'utf8')).toMatch(/cannot read the model input/);
  });
});

describe('pricesense model upgrade', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-upgrade-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('rewrites a v1 file as v2 in place: smaller, the same predictions, a new sha256; a v2 file is left alone', async () => {
    const v1 = randomForest(9, { trees: 20, maxDepth: 8 });
    const file = path.join(dir, 'model.json');
    await writeForestFile(file, v1);
    const before = (await stat(file)).size;
    const res = await run(['model', 'upgrade', '--model', file, '--json']);
    expect(res.err).toBe('');
    const report = JSON.parse(res.out);
    const v2 = await readForestFile(file);
    expect(v2.formatVersion).toBe(FOREST_FORMAT_V2);
    expect(report).toMatchObject({ upgraded: true, from: { formatVersion: 1, sha256: v1.sha256, bytes: before }, to: { formatVersion: 2, sha256: v2.sha256 } });
    expect(report.to.bytes).toBeLessThan(before);
    expect(v2.sha256).not.toBe(v1.sha256);
    const a = CompiledForest.compile(v1);
    const b = CompiledForest.compile(v2);
    const rand = rng(3);
    const sample = Array.from({ length: 200 }, () => randomRow(rand, v1.features));
    expect(Array.from(b.predictBatch(sample).probabilities)).toEqual(Array.from(a.predictBatch(sample).probabilities));

    const again = await run(['model', 'upgrade', '--model', file]);
    expect(again.out).toMatch(/already format v2; nothing to do/);
    expect(parseForest(await readFile(file), file).sha256).toBe(v2.sha256);
    expect((await run(['model', 'upgrade', '--model', path.join(dir, 'absent.json')])).err).toMatch(/forest file not found/);
  });
});
