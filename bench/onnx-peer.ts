/**
 * ONNX Runtime as the scoring peer: the same forest exported by model/onnx/export.ts,
 * scored by onnxruntime-node with one intra-op thread (the walker is one thread too).
 * Used by `npm run bench:scoring` (and so `bench:model`) and by the parity tests; onnxruntime-node is a dev
 * dependency, so nothing in the product imports this module.
 */
import * as ort from 'onnxruntime-node';
import { forestToOnnx, type OnnxExportOptions } from '../model/onnx/export';
import type { ForestFileV1 } from '../model/format';
import type { BatchPrediction, CompiledForest } from '../model/walker';

export interface OrtScorer {
  readonly session: ort.InferenceSession;
  readonly features: number;
  readonly classes: number;
  /** Labels and probabilities (row-major n×K, float32 widened) of an encoded row-major n×F matrix. */
  score(x: Float64Array, n: number): Promise<{ labels: string[]; probabilities: Float64Array }>;
  release(): Promise<void>;
}

/** An ORT session on ONNX bytes, one intra-op (unless told) and one inter-op thread, sequential execution. */
export async function ortSession(bytes: Uint8Array, intraOpNumThreads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
}

/** Runs an ONNX model whose input X is double [N, F] and whose outputs are label and probabilities. */
export function ortScorer(session: ort.InferenceSession, features: number, classes: number): OrtScorer {
  return {
    session,
    features,
    classes,
    async score(x, n) {
      const out = await session.run({ X: new ort.Tensor('float64', x.subarray(0, n * features), [n, features]) });
      const labels = out.label.data as string[];
      const probabilities = Float64Array.from(out.probabilities.data as Float32Array | Float64Array);
      return { labels, probabilities };
    },
    release: () => session.release(),
  };
}

/** Exports the forest and opens it in ORT. */
export async function ortForForest(forest: ForestFileV1, options: OnnxExportOptions = {}): Promise<OrtScorer> {
  const session = await ortSession(forestToOnnx(forest, options));
  return ortScorer(session, forest.features.length, forest.classes.length);
}

export interface OrtAgreement {
  readonly mine: BatchPrediction;
  readonly theirs: { labels: string[]; probabilities: Float64Array };
  readonly labelMismatches: number;
  /** Max |Δp| over every row and class. */
  readonly maxProbDiff: number;
}

/** The walker and ORT on the same encoded rows (row-major n×F): both answers, label mismatches and max |Δp|. */
export async function againstOrt(cf: CompiledForest, scorer: OrtScorer, x: Float64Array, n: number): Promise<OrtAgreement> {
  const mine = cf.predictBatchEncoded(x, n);
  const theirs = await scorer.score(x, n);
  let labelMismatches = 0;
  let maxProbDiff = 0;
  for (let r = 0; r < n; r++) if (mine.labels[r] !== theirs.labels[r]) labelMismatches++;
  for (let i = 0; i < mine.probabilities.length; i++) maxProbDiff = Math.max(maxProbDiff, Math.abs(mine.probabilities[i] - theirs.probabilities[i]));
  return { mine, theirs, labelMismatches, maxProbDiff };
}

export interface PeerTiming {
  /** Batch: wall-clock ns per tree per row. */
  readonly batchNsPerTreeRow: number;
  readonly batchCpuNsPerTreeRow: number;
  /** One row per run() call: µs per row. */
  readonly singleRowUs: number;
  readonly singleRowCpuUs: number;
}

/** Runs fn for at least minMs after one warm-up call: wall and CPU (all threads) ns per call (for the walker beside ORT). */
export function timeSync(fn: () => unknown, minMs: number): { wall: number; cpu: number } {
  fn();
  let calls = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let elapsed: bigint;
  do {
    fn();
    calls++;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < BigInt(minMs) * 1_000_000n);
  const cpu = process.cpuUsage(cpu0);
  return { wall: Number(elapsed) / calls, cpu: ((cpu.user + cpu.system) * 1000) / calls };
}

/** timeSync for a promise-returning fn (ORT's run()). */
export async function timeAsync(fn: () => Promise<unknown>, minMs: number): Promise<{ wall: number; cpu: number }> {
  await fn();
  let calls = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let elapsed: bigint;
  do {
    await fn();
    calls++;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < BigInt(minMs) * 1_000_000n);
  const cpu = process.cpuUsage(cpu0);
  return { wall: Number(elapsed) / calls, cpu: ((cpu.user + cpu.system) * 1000) / calls };
}

/** One-row feeds for the first 1,000 rows of an encoded matrix (row-major n×F doubles). */
export function singleRowFeeds(scorer: OrtScorer, x: Float64Array, n: number): { X: ort.Tensor }[] {
  const F = scorer.features;
  return Array.from({ length: Math.min(n, 1000) }, (_, r) => ({ X: new ort.Tensor('float64', x.subarray(r * F, r * F + F), [1, F]) }));
}

/**
 * ORT's batch and single-row cost on an encoded matrix (row-major n×F doubles): the
 * whole matrix per run() for batch, one row per run() for single row (cycling through
 * the first 1,000 rows), tensors built outside the timed calls.
 */
export async function measureOrt(scorer: OrtScorer, x: Float64Array, n: number, trees: number, options: { batchMs?: number; singleMs?: number } = {}): Promise<PeerTiming> {
  const F = scorer.features;
  const batchTensor = { X: new ort.Tensor('float64', x.subarray(0, n * F), [n, F]) };
  const batch = await timeAsync(() => scorer.session.run(batchTensor), options.batchMs ?? 3000);
  const singles = singleRowFeeds(scorer, x, n);
  let i = 0;
  const single = await timeAsync(() => scorer.session.run(singles[i++ % singles.length]), options.singleMs ?? 2000);
  return {
    batchNsPerTreeRow: batch.wall / n / trees,
    batchCpuNsPerTreeRow: batch.cpu / n / trees,
    singleRowUs: single.wall / 1000,
    singleRowCpuUs: single.cpu / 1000,
  };
}
