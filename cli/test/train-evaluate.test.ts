import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalLake } from '../../etl/lake/local';
import { runEtl } from '../../etl/pipeline';
import { synthesize } from '../../etl/synth/generate';
import { parseForest } from '../../model/forest-file';
import { runCli as run } from './run-cli';


describe('pricesense train / evaluate', () => {
  let dir: string;
  let lakeDir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-cli-train-'));
    lakeDir = path.join(dir, 'lake');
    const lake = new LocalLake(lakeDir);
    await synthesize(lake, { baskets: 3000, weeks: 2, seed: 5 });
    await runEtl(lake, { threads: 2 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('trains, writes a sealed forest with metrics and gate results, and evaluates it', async () => {
    const out = path.join(dir, 'model.json');
    const trained = await run(['train', '--lake', lakeDir, '--out', out, '--trees', '20', '--threads', '1', '--seed', '9', '--min-accuracy', '0.5', '--min-macro-f1', '0.4', '--min-class-precision', '0.3', '--json']);
    expect(trained.err).toBe('');
    expect(trained.code).toBe(0);
    const report = JSON.parse(trained.out);
    const forest = parseForest(await readFile(out), out);
    expect(report.sha256).toBe(forest.sha256);
    expect(forest.trees).toHaveLength(20);
    expect(forest.training.hyperparameters).toMatchObject({ trees: 20 });
    expect(forest.training.seed).toBe(9);
    const metrics = forest.metrics as { validation: { split: string }; test: { split: string; accuracy: number }; gates: { passed: boolean } };
    expect(metrics.validation.split).toBe('validation');
    expect(metrics.test.accuracy).toBeGreaterThan(0.7);
    expect(metrics.gates.passed).toBe(true);

    const evaluated = await run(['evaluate', '--lake', lakeDir, '--model', out, '--min-accuracy', '0.5', '--min-macro-f1', '0.4', '--min-class-precision', '0.3']);
    expect(evaluated.code).toBe(0);
    expect(evaluated.out).toMatch(/accuracy/);
    expect(evaluated.out).toMatch(/confusion \(rows actual, columns predicted\)/);
    expect(evaluated.out).toMatch(/quality gates on test: PASSED/);

    const asJson = await run(['evaluate', '--lake', lakeDir, '--model', out, '--json', '--min-accuracy', '0.5', '--min-macro-f1', '0.4', '--min-class-precision', '0.3']);
    expect(JSON.parse(asJson.out).test.accuracy).toBeCloseTo(metrics.test.accuracy, 12);
  });

  it('exits 3 with a gate report when a gate fails, and applies the champion/challenger rule', async () => {
    const good = path.join(dir, 'good.json');
    const stump = path.join(dir, 'stump.json');
    expect((await run(['train', '--lake', lakeDir, '--out', good, '--trees', '10', '--threads', '1', '--min-accuracy', '0', '--min-macro-f1', '0', '--min-class-precision', '0'])).code).toBe(0);
    const strict = await run(['evaluate', '--lake', lakeDir, '--model', good, '--min-accuracy', '0.999']);
    expect(strict.code).toBe(3);
    expect(strict.out).toMatch(/FAIL\s+accuracy/);
    expect(strict.err).toMatch(/quality gate failed on test: accuracy 0\.\d{4} < required 0\.9990 \(short by 0\.\d{4}\)/);

    const weak = await run(['train', '--lake', lakeDir, '--out', stump, '--trees', '3', '--max-depth', '1', '--threads', '1', '--champion', good, '--min-accuracy', '0', '--min-macro-f1', '0', '--min-class-precision', '0']);
    expect(weak.code).toBe(3);
    expect(weak.err).toMatch(/champion\.accuracy/);
    const vsChampion = await run(['evaluate', '--lake', lakeDir, '--model', stump, '--champion', good, '--json', '--min-accuracy', '0', '--min-macro-f1', '0', '--min-class-precision', '0']);
    expect(vsChampion.code).toBe(3);
    const gates = JSON.parse(vsChampion.out).gates;
    expect(gates.results.find((g: { gate: string }) => g.gate === 'champion.accuracy').passed).toBe(false);
  });

  it('refuses bad flags with a clear message', async () => {
    const bad = await run(['train', '--lake', lakeDir, '--out', path.join(dir, 'x.json'), '--trainer', 'xgboost']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("option '--trainer <name>' argument 'xgboost' is invalid. Allowed choices are histogram, ml-random-forest.");
    const missing = await run(['evaluate', '--lake', lakeDir, '--model', path.join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/forest file not found/);
  });
});
