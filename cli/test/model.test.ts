/**
 * @jest-environment ./bench/ort-jest-environment.js
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ortScorer, ortSession } from '../../bench/onnx-peer';
import { LocalLake } from '../../etl/lake/local';
import { runEtl } from '../../etl/pipeline';
import { synthesize } from '../../etl/synth/generate';
import { parseForest, writeForestFile } from '../../model/forest-file';
import { openRegistry } from '../../model/registry';
import { SKLEARN_FIXTURE as FIXTURE, sklearnFixture, trainedForest } from '../../model/test/onnx-fixtures';
import { CompiledForest } from '../../model/walker';
import { runCli as run } from './run-cli';

describe('pricesense model export / import', () => {
  let dir: string;
  let lakeDir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-cli-model-'));
    lakeDir = path.join(dir, 'lake');
    const lake = new LocalLake(lakeDir);
    await synthesize(lake, { baskets: 3000, weeks: 2, seed: 5 });
    await runEtl(lake, { threads: 2 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('exports a forest file and an approved registry version with its provenance; ORT scores the file as the walker does', async () => {
    const forest = await trainedForest(5, 3);
    const file = path.join(dir, 'forest.json');
    await writeForestFile(file, forest);
    const out = path.join(dir, 'forest.onnx');
    const exported = await run(['model', 'export', '--model', file, '--format', 'onnx', '--out', out]);
    expect(exported.err).toBe('');
    expect(exported.code).toBe(0);
    expect(exported.out).toMatch(/exported .* 5 trees.*\nwrote .*forest\.onnx: input X double/);

    const registry = path.join(dir, 'registry');
    const reg = await openRegistry(registry);
    const v = await reg.register(file, { note: 'test', by: 'tester' });
    await reg.approve(v.version, 'reviewed', 'tester');
    const fromRegistry = path.join(dir, 'v.onnx');
    const viaRegistry = await run(['model', 'export', '--model', 'latest', '--registry', registry, '--out', fromRegistry, '--json']);
    expect(viaRegistry.code).toBe(0);
    const report = JSON.parse(viaRegistry.out);
    expect(report).toMatchObject({ forestSha256: forest.sha256, registry: { version: v.version, status: 'Approved', artifactSha256: v.artifactSha256 } });

    const bytes = await readFile(fromRegistry);
    const scorer = ortScorer(await ortSession(bytes), forest.features.length, 3);
    const cf = CompiledForest.compile(forest);
    const { x, n } = cf.encodeBatch(Array.from({ length: 200 }, (_, i) => ({ a: i * 5, b: (i % 40) / 4, k: i % 7 === 0 ? null : i % 5, cat: `r${i % 45}`, cat2: i % 3 ? 'x' : 'y' })));
    expect((await scorer.score(x, n)).labels).toEqual(cf.predictBatchEncoded(x, n).labels);
    await scorer.release();

    // --out into a directory that does not exist yet: created, as import does; a parent that is a file: a clear error.
    const nested = path.join(dir, 'new', 'sub', 'forest.onnx');
    expect(await run(['model', 'export', '--model', file, '--out', nested])).toMatchObject({ code: 0, err: '' });
    expect(existsSync(nested)).toBe(true);
    const underFile = await run(['model', 'export', '--model', file, '--out', path.join(file, 'x.onnx')]);
    expect(underFile).toMatchObject({ code: 2, err: expect.stringMatching(/cannot write .*forest\.json\/x\.onnx: a parent is a file, not a directory/) });

    const refused = await run(['model', 'export', '--model', file, '--format', 'pmml', '--out', out]);
    expect(refused).toMatchObject({ code: 2, err: expect.stringContaining("option '--format <format>' argument 'pmml' is invalid. Allowed choices are onnx.") });
  });

  it('imports the scikit-learn model with --features, evaluates it on the gold test split (--lake), registers it; it can be approved and served', async () => {
    const out = path.join(dir, 'sk.json');
    const registry = path.join(dir, 'registry-sk');
    const spec = path.join(dir, 'spec.json');
    await copyFile(path.join(FIXTURE, 'spec.json'), spec);
    const r = await run([
      'model', 'import', path.join(FIXTURE, 'model.onnx'), '--features', spec, '--out', out, '--lake', lakeDir, '--register', '--registry', registry,
      '--min-accuracy', '0.3', '--min-macro-f1', '0.2', '--min-class-precision', '0.1', '--json',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.lineage).toMatch(/^imported from [0-9a-f]{64}$/);
    expect(report.metrics.gates.passed).toBe(true);
    expect(report.registered.version).toBe(1);
    const forest = parseForest(await readFile(out), out);
    expect(forest.metrics).toMatchObject({ test: { split: 'test' }, gates: { passed: true } });
    const approved = await run(['registry', 'approve', '1', '--note', 'imported scikit-learn model reviewed', '--registry', registry]);
    expect(approved.code).toBe(0);
    const served = await (await openRegistry(registry)).latestApproved();
    expect(served?.forestSha256).toBe(forest.sha256);
    // The served version answers as scikit-learn does, and carries the gold train split's statistics as its drift baseline.
    const servedForest = parseForest(await (await openRegistry(registry)).fetch(1));
    const fx = sklearnFixture();
    expect(CompiledForest.compile(servedForest).predictBatch(fx.rows).labels).toEqual(fx.expectedLabel);
    expect(Object.keys(servedForest.featureStats)).toEqual(expect.arrayContaining(['SPEND', 'STORE_FORMAT']));
  });

  it('exits 3 when the imported model fails a gate, and explains bad input files', async () => {
    const spec = path.join(dir, 'spec2.json');
    await copyFile(path.join(FIXTURE, 'spec.json'), spec);
    const failed = await run(['model', 'import', path.join(FIXTURE, 'model.onnx'), '--features', spec, '--out', path.join(dir, 'g.json'), '--lake', lakeDir, '--min-accuracy', '0.999']);
    expect(failed.code).toBe(3);
    expect(failed.err).toMatch(/gate/i);

    const junk = path.join(dir, 'junk.onnx');
    await writeFile(junk, 'definitely not an onnx file');
    const bad = await run(['model', 'import', junk, '--features', spec, '--out', path.join(dir, 'j.json')]);
    expect(bad).toMatchObject({ code: 2, err: expect.stringMatching(/junk\.onnx: cannot import: not a valid ONNX model/) });
    const badSpec = path.join(dir, 'bad-spec.json');
    await writeFile(badSpec, '{"features": "SPEND"}');
    const specErr = await run(['model', 'import', path.join(FIXTURE, 'model.onnx'), '--features', badSpec, '--out', path.join(dir, 'j.json')]);
    expect(specErr).toMatchObject({ code: 2, err: expect.stringMatching(/bad-spec\.json: invalid feature spec: "features" must be a non-empty array of strings/) });
    // Registering a model nobody evaluated takes an explicit --skip-gates.
    const registry = path.join(dir, 'registry-skip');
    const unevaluated = await run(['model', 'import', path.join(FIXTURE, 'model.onnx'), '--features', spec, '--out', path.join(dir, 'u.json'), '--register', '--registry', registry]);
    expect(unevaluated).toMatchObject({ code: 2, err: expect.stringMatching(/--register needs --lake <uri> .* or --skip-gates/) });
    expect(existsSync(path.join(dir, 'u.json'))).toBe(false);
    const skipped = await run(['model', 'import', path.join(FIXTURE, 'model.onnx'), '--features', spec, '--out', path.join(dir, 'u.json'), '--register', '--skip-gates', '--registry', registry]);
    expect(skipped.code).toBe(0);
    expect((await (await openRegistry(registry)).show(1))?.audit[0].note).toMatch(/not evaluated \(--skip-gates\)/);

    const missing = await run(['model', 'import', path.join(dir, 'nope.onnx'), '--out', path.join(dir, 'j.json')]);
    expect(missing).toMatchObject({ code: 2, err: expect.stringMatching(/cannot read ONNX model .*nope\.onnx: no such file/) });
    expect(existsSync(path.join(dir, 'j.json'))).toBe(false);
  });
});
