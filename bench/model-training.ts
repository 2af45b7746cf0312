/**
 * Training half of `npm run bench:model`:
 * 1. the histogram trainer against ml-random-forest on the same gold rows, at a size
 *    ml-random-forest finishes (≈ 2k training rows): seconds, test accuracy, ratio;
 * 2. the histogram trainer alone at 100k and 1M gold training rows × 100 trees: seconds,
 *    test accuracy, peak RSS (each size in a child process, so RSS is the training's own).
 *
 * Gold comes from the synthetic generator through the real ETL (synthesize → runEtl),
 * built once per size and cached under .pricesense/bench/ (regenerated when missing).
 * Environment: BENCH_TRAIN_SIZES (default "100000,1000000" training rows),
 * BENCH_TRAIN_TREES (default 100), BENCH_TRAIN_THREADS (default all cores),
 * BENCH_COMPARE_TREES (default 30: trees for the ml-random-forest comparison).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readGoldManifest, readGoldSplit } from '../etl/gold';
import { LocalLake } from '../etl/lake/local';
import { runEtl } from '../etl/pipeline';
import { synthesize } from '../etl/synth/generate';
import { packageRoot } from '../core/version';
import { evaluateForest } from '../model/evaluate';
import { defaultThreads, trainForest } from '../model/trainer';
import { trainMlRandomForest } from '../model/trainer/ml-random-forest';

/** Gold training rows per synthetic basket (labelled share × train fraction), measured. */
const TRAIN_ROWS_PER_BASKET = 0.78;

/** Where benchLake keeps the lake of about `trainRows` training rows. */
export function benchLakeDir(trainRows: number): string {
  return path.join(packageRoot(), '.pricesense', 'bench', `gold-${Math.ceil(trainRows / TRAIN_ROWS_PER_BASKET)}-seed42`);
}

/** A lake with the synthetic gold of about `trainRows` training rows (built once, cached under .pricesense/bench/). */
export async function benchLake(trainRows: number): Promise<LocalLake> {
  const dir = benchLakeDir(trainRows);
  const baskets = Math.ceil(trainRows / TRAIN_ROWS_PER_BASKET);
  const lake = new LocalLake(dir);
  if (!existsSync(path.join(dir, 'gold', '_SUCCESS'))) {
    process.stderr.write(`bench: generating ${baskets.toLocaleString('en-US')} synthetic baskets and running the ETL into ${dir} (once; cached)\n`);
    await synthesize(lake, { baskets, weeks: Math.max(4, Math.ceil(baskets / 100_000)), seed: 42 });
    await runEtl(lake, {});
  }
  return lake;
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

export interface TrainingFigures {
  [key: string]: number;
}

/** One size, run in this process: read gold, train, evaluate on test. Prints one JSON line. */
export async function trainOnce(lakeDir: string, trees: number, threads: number): Promise<Record<string, number>> {
  const lake = new LocalLake(lakeDir);
  const manifest = await readGoldManifest(lake);
  const train = await readGoldSplit(lake, 'train', manifest);
  const test = await readGoldSplit(lake, 'test', manifest);
  // maxRSS also covers reading gold (DuckDB + JS columns); sample RSS during training for its own peak.
  const rssBefore = process.memoryUsage.rss();
  let trainingPeak = rssBefore;
  const sampler = setInterval(() => {
    trainingPeak = Math.max(trainingPeak, process.memoryUsage.rss());
  }, 25);
  const t0 = process.hrtime.bigint();
  const forest = await trainForest(train, { trees, threads, progress: false, featureStats: manifest.manifest.meta.stats.train });
  const trainSeconds = seconds(t0);
  clearInterval(sampler);
  trainingPeak = Math.max(trainingPeak, process.memoryUsage.rss());
  const cpu = process.cpuUsage();
  const accuracy = evaluateForest(forest, test, 'test').accuracy;
  return {
    rows: train.rows,
    testRows: test.rows,
    trees,
    threads,
    seconds: trainSeconds,
    accuracy,
    nodes: forest.trees.reduce((a, t) => a + t.feature.length, 0),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    rssBeforeTrainingMiB: rssBefore / 2 ** 20,
    trainingPeakRssMiB: trainingPeak / 2 ** 20,
    processCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

export async function runTrainingBench(): Promise<TrainingFigures> {
  const figures: TrainingFigures = {};
  const threads = Number(process.env.BENCH_TRAIN_THREADS ?? defaultThreads());
  const trees = Number(process.env.BENCH_TRAIN_TREES ?? 100);
  const compareTrees = Number(process.env.BENCH_COMPARE_TREES ?? 30);
  const sizes = (process.env.BENCH_TRAIN_SIZES ?? '100000,1000000').split(',').map(Number);

  // 1. Histogram trainer vs ml-random-forest on ~2k gold rows, same hyperparameters. Both
  //    search every feature (ml-random-forest samples features per tree, default all).
  const small = await benchLake(2000);
  const manifest = await readGoldManifest(small);
  const train = await readGoldSplit(small, 'train', manifest);
  const test = await readGoldSplit(small, 'test', manifest);
  const common = { trees: compareTrees, maxDepth: 16, minSamplesLeaf: 5, seed: 1, progress: false } as const;
  let t0 = process.hrtime.bigint();
  const hist = await trainForest(train, { ...common, maxFeatures: 'all', threads: 1 });
  const histSeconds = seconds(t0);
  t0 = process.hrtime.bigint();
  const mlrf = await trainMlRandomForest(train, common);
  const mlrfSeconds = seconds(t0);
  const histAcc = evaluateForest(hist, test, 'test').accuracy;
  const mlrfAcc = evaluateForest(mlrf, test, 'test').accuracy;
  process.stdout.write(
    `training, ${train.rows} gold rows x ${compareTrees} trees (depth <= 16, min leaf 5, all features), one thread each:\n` +
      `  histogram trainer    ${histSeconds.toFixed(2).padStart(8)} s   test accuracy ${histAcc.toFixed(4)}\n` +
      `  ml-random-forest     ${mlrfSeconds.toFixed(2).padStart(8)} s   test accuracy ${mlrfAcc.toFixed(4)}\n` +
      `  speed-up             ${(mlrfSeconds / histSeconds).toFixed(1).padStart(8)} x\n`,
  );
  Object.assign(figures, { smallRows: train.rows, histSmallSeconds: histSeconds, mlrfSmallSeconds: mlrfSeconds, smallSpeedup: mlrfSeconds / histSeconds, histSmallAccuracy: histAcc, mlrfSmallAccuracy: mlrfAcc });

  // 2. Histogram trainer alone at scale, one child process per size (clean peak RSS).
  for (const size of sizes) {
    const lake = await benchLake(size);
    const out = execFileSync(process.execPath, [__filename, '--train-once', lake.root, String(trees), String(threads)], {
      encoding: 'utf8',
      env: { ...process.env, PRICESENSE_PROGRESS: 'off' },
      maxBuffer: 1 << 20,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
    process.stdout.write(
      `training, ${r.rows.toLocaleString('en-US')} gold rows x ${r.trees} trees on ${r.threads} threads: ${r.seconds.toFixed(1)} s, ` +
        `test accuracy ${r.accuracy.toFixed(4)} (${r.testRows.toLocaleString('en-US')} rows), ${r.nodes.toLocaleString('en-US')} nodes, ` +
        `peak RSS ${r.trainingPeakRssMiB.toFixed(0)} MiB while training (${r.rssBeforeTrainingMiB.toFixed(0)} MiB with gold loaded; process peak incl. reading gold ${r.peakRssMiB.toFixed(0)} MiB), ` +
        `process CPU ${r.processCpuSeconds.toFixed(1)} s\n`,
    );
    figures[`rows${size}Seconds`] = r.seconds;
    figures[`rows${size}Accuracy`] = r.accuracy;
    figures[`rows${size}PeakRssMiB`] = r.peakRssMiB;
    figures[`rows${size}TrainingPeakRssMiB`] = r.trainingPeakRssMiB;
  }
  return figures;
}

if (require.main === module && process.argv[2] === '--train-once') {
  trainOnce(process.argv[3], Number(process.argv[4]), Number(process.argv[5])).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
