/**
 * ONNX Runtime as the scoring peer in `npm run bench:model`, at production size: a
 * forest trained by our trainer on ≥ 100k gold rows (100 trees, depth 16), exported by
 * model/onnx/export.ts, scored by onnxruntime-node with one intra-op thread, beside the
 * walker on the identical forest and the identical encoded rows, in the same process.
 * Parity (labels, max |Δp|) is checked on the rows before anything is timed.
 * Environment: BENCH_ONNX_TRAIN_ROWS (default 100000), BENCH_ONNX_TREES (100),
 * BENCH_ONNX_FRESH=1 to retrain the cached forest (.pricesense/bench/).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { readGoldManifest, readGoldSplit } from '../etl/gold';
import { packageRoot } from '../etl/version';
import { readForestFile, writeForestFile } from '../model/forest-file';
import type { ForestFileV1 } from '../model/format';
import { exportForestToOnnx } from '../model/onnx/export';
import { defaultThreads, trainForest } from '../model/trainer';
import { CompiledForest } from '../model/walker';
import { benchLake } from './model-training';
import { measureOrt, ortScorer, ortSession, timeSync } from './onnx-peer';

async function productionForest(trainRows: number, trees: number): Promise<{ forest: ForestFileV1; lakeRoot: string }> {
  const lake = await benchLake(trainRows);
  const file = path.join(packageRoot(), '.pricesense', 'bench', `forest-${trainRows}rows-${trees}trees-depth16.json`);
  if (existsSync(file) && process.env.BENCH_ONNX_FRESH !== '1') return { forest: await readForestFile(file), lakeRoot: lake.root };
  const manifest = await readGoldManifest(lake);
  const train = await readGoldSplit(lake, 'train', manifest);
  process.stderr.write(`bench: training ${trees} trees (depth 16) on ${train.rows.toLocaleString('en-US')} gold rows for the ONNX peer (once; cached in ${file})\n`);
  const forest = await trainForest(train, { trees, maxDepth: 16, threads: defaultThreads(), progress: false, seed: 42 });
  mkdirSync(path.dirname(file), { recursive: true });
  await writeForestFile(file, forest);
  return { forest, lakeRoot: lake.root };
}

export async function runOnnxPeerBench(): Promise<Record<string, number>> {
  const trainRows = Number(process.env.BENCH_ONNX_TRAIN_ROWS ?? 100_000);
  const trees = Number(process.env.BENCH_ONNX_TREES ?? 100);
  const { forest, lakeRoot } = await productionForest(trainRows, trees);
  const lake = await benchLake(trainRows);
  const test = await readGoldSplit(lake, 'test', await readGoldManifest(lake));
  const cf = CompiledForest.compile(forest);
  const { x, n } = cf.encodeBatch({ columns: { ...test.numeric, ...test.categorical }, rows: Math.min(test.rows, 10_000) });
  const T = forest.trees.length;
  const K = forest.classes.length;

  const t0 = process.hrtime.bigint();
  const { bytes, summary } = exportForestToOnnx(forest);
  const exportSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const t1 = process.hrtime.bigint();
  const scorer = ortScorer(await ortSession(bytes), forest.features.length, K);
  const ortLoadSeconds = Number(process.hrtime.bigint() - t1) / 1e9;

  // Same forest, same rows, same answers: checked before timing.
  const want = cf.predictBatchEncoded(x, n);
  const got = await scorer.score(x, n);
  let labelAgreement = 0;
  let maxProbDiff = 0;
  for (let r = 0; r < n; r++) if (got.labels[r] === want.labels[r]) labelAgreement++;
  for (let i = 0; i < n * K; i++) maxProbDiff = Math.max(maxProbDiff, Math.abs(got.probabilities[i] - want.probabilities[i]));
  if (labelAgreement !== n || maxProbDiff > 1e-6) throw new Error(`ONNX peer bench: ORT and the walker disagree (${n - labelAgreement} labels, max |Δp| ${maxProbDiff})`);

  const walkerBatch = timeSync(() => cf.predictBatchEncoded(x, n), 3000);
  let i = 0;
  const F = forest.features.length;
  const rows = Array.from({ length: Math.min(n, 1000) }, (_, r) => x.slice(r * F, r * F + F));
  const out = new Float64Array(K);
  const walkerSingle = timeSync(() => cf.predictEncoded(rows[i++ % rows.length], out), 2000);
  const ortTiming = await measureOrt(scorer, x, n, T);
  await scorer.release();

  const walkerBatchNs = walkerBatch.wall / n / T;
  const walkerSingleUs = walkerSingle.wall / 1000;
  const f1 = (v: number) => v.toFixed(1);
  const f2 = (v: number) => v.toFixed(2);
  console.log(
    `scoring vs ONNX Runtime (onnxruntime-node, 1 intra-op thread), identical forest: ${T} trees, depth ≤ 16, ${summary.forestNodes.toLocaleString('en-US')} nodes, ` +
      `trained on ${forest.training.rows.toLocaleString('en-US')} gold rows (${lakeRoot}); exported in ${f2(exportSeconds)} s to ${summary.onnxNodes.toLocaleString('en-US')} ONNX nodes, ` +
      `${(summary.bytes / 2 ** 20).toFixed(1)} MiB, ORT session ready in ${f2(ortLoadSeconds)} s`,
  );
  console.log(`  parity on ${n.toLocaleString('en-US')} test rows: labels ${labelAgreement}/${n} identical, max |Δp| ${maxProbDiff.toExponential(2)}`);
  console.log(`  batch of ${n} encoded rows         walker ${f1(walkerBatchNs).padStart(7)} ns/tree/row (cpu ${f1(walkerBatch.cpu / n / T)})   ORT ${f1(ortTiming.batchNsPerTreeRow).padStart(7)} ns/tree/row (cpu ${f1(ortTiming.batchCpuNsPerTreeRow)})   walker/ORT ${f2(walkerBatchNs / ortTiming.batchNsPerTreeRow)}`);
  console.log(`  single row (encoded)              walker ${f2(walkerSingleUs).padStart(7)} µs/row      (cpu ${f2(walkerSingle.cpu / 1000)})   ORT ${f2(ortTiming.singleRowUs).padStart(7)} µs/row      (cpu ${f2(ortTiming.singleRowCpuUs)})   walker/ORT ${f2(walkerSingleUs / ortTiming.singleRowUs)}`);
  return {
    onnxPeerNodes: summary.forestNodes,
    onnxPeerLabelAgreement: labelAgreement / n,
    onnxPeerMaxProbDiff: maxProbDiff,
    onnxPeerWalkerBatchNsPerTreeRow: walkerBatchNs,
    onnxPeerOrtBatchNsPerTreeRow: ortTiming.batchNsPerTreeRow,
    onnxPeerWalkerSingleRowUs: walkerSingleUs,
    onnxPeerOrtSingleRowUs: ortTiming.singleRowUs,
  };
}

if (require.main === module) {
  runOnnxPeerBench().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
