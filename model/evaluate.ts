/**
 * Evaluation of a classifier on a labelled split: accuracy, macro F1, per-class
 * precision/recall/F1, confusion matrix, log loss and a calibration summary.
 * docs/training.md ("Evaluation") defines each figure and its edge cases.
 */
import { UserError } from '../core/errors';
import type { GoldTable } from '../etl/gold-schema';
import type { ClassMetrics, EvaluationMetrics, ForestFileV1 } from './format';
import { CompiledForest } from './walker';

/** Probabilities are clipped to [LOG_LOSS_EPSILON, 1] before the log (sklearn's convention). */
export const LOG_LOSS_EPSILON = 1e-15;
export const DEFAULT_CALIBRATION_BINS = 10;

export interface ReliabilityBin {
  /** Confidence interval [lower, upper) (the last bin includes 1). */
  readonly lower: number;
  readonly upper: number;
  readonly count: number;
  /** Mean top-class probability of the rows in the bin (0 when empty). */
  readonly meanConfidence: number;
  /** Fraction of those rows predicted correctly (0 when empty). */
  readonly accuracy: number;
}

export interface CalibrationSummary {
  /** Reliability diagram of the top-class probability. */
  readonly bins: ReliabilityBin[];
  /** Sum over bins of (count / rows) * |accuracy - meanConfidence|. */
  readonly expectedCalibrationError: number;
  /** Largest |accuracy - meanConfidence| over non-empty bins. */
  readonly maxCalibrationError: number;
  /** Multiclass Brier score: mean over rows of sum_k (p_k - [k = actual])^2. */
  readonly brierScore: number;
}

export interface Evaluation extends EvaluationMetrics {
  readonly calibration: CalibrationSummary;
}

export interface MetricsInput {
  readonly split: string;
  readonly classes: readonly string[];
  /** Actual class index per row. */
  readonly actual: ArrayLike<number>;
  /** Row-major class probabilities, rows * classes.length. */
  readonly probabilities: ArrayLike<number>;
  /** Predicted class index per row; default the argmax of the probabilities (ties: lowest index). */
  readonly predicted?: ArrayLike<number>;
  readonly calibrationBins?: number;
}

export function computeMetrics(input: MetricsInput): Evaluation {
  const K = input.classes.length;
  const n = input.actual.length;
  if (n === 0) throw new UserError(`cannot evaluate on split ${input.split}: it has no rows`);
  if (input.probabilities.length !== n * K) {
    throw new Error(`computeMetrics: ${input.probabilities.length} probabilities for ${n} rows x ${K} classes`);
  }
  const probs = input.probabilities;
  const predicted = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (input.predicted) {
      predicted[i] = input.predicted[i];
      continue;
    }
    let best = 0;
    for (let k = 1; k < K; k++) if (probs[i * K + k] > probs[i * K + best]) best = k;
    predicted[i] = best;
  }

  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let correct = 0;
  let logLoss = 0;
  let brier = 0;
  const binCount = input.calibrationBins ?? DEFAULT_CALIBRATION_BINS;
  const binN = new Float64Array(binCount);
  const binConf = new Float64Array(binCount);
  const binCorrect = new Float64Array(binCount);
  for (let i = 0; i < n; i++) {
    const a = input.actual[i];
    if (!Number.isInteger(a) || a < 0 || a >= K) throw new Error(`computeMetrics: row ${i} has actual class index ${a}`);
    const p = predicted[i];
    confusion[a][p]++;
    if (a === p) correct++;
    const pTrue = Math.min(1, Math.max(LOG_LOSS_EPSILON, probs[i * K + a]));
    logLoss -= Math.log(pTrue);
    for (let k = 0; k < K; k++) {
      const d = probs[i * K + k] - (k === a ? 1 : 0);
      brier += d * d;
    }
    const confidence = probs[i * K + p];
    const b = Math.min(binCount - 1, Math.max(0, Math.floor(confidence * binCount)));
    binN[b]++;
    binConf[b] += confidence;
    if (a === p) binCorrect[b]++;
  }

  const perClass: Record<string, ClassMetrics> = {};
  let f1Sum = 0;
  let f1Classes = 0;
  for (let k = 0; k < K; k++) {
    const tp = confusion[k][k];
    let support = 0;
    let predictedK = 0;
    for (let j = 0; j < K; j++) {
      support += confusion[k][j];
      predictedK += confusion[j][k];
    }
    const precision = predictedK > 0 ? tp / predictedK : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass[input.classes[k]] = { precision, recall, f1, support };
    // Macro average over the classes that occur (actual or predicted), as sklearn does.
    if (support > 0 || predictedK > 0) {
      f1Sum += f1;
      f1Classes++;
    }
  }

  const bins: ReliabilityBin[] = [];
  let ece = 0;
  let mce = 0;
  for (let b = 0; b < binCount; b++) {
    const count = binN[b];
    const meanConfidence = count > 0 ? binConf[b] / count : 0;
    const accuracy = count > 0 ? binCorrect[b] / count : 0;
    if (count > 0) {
      const gap = Math.abs(accuracy - meanConfidence);
      ece += (count / n) * gap;
      mce = Math.max(mce, gap);
    }
    bins.push({ lower: b / binCount, upper: (b + 1) / binCount, count, meanConfidence, accuracy });
  }

  return {
    split: input.split,
    rows: n,
    accuracy: correct / n,
    macroF1: f1Classes > 0 ? f1Sum / f1Classes : 0,
    logLoss: logLoss / n,
    perClass,
    confusion,
    calibration: { bins, expectedCalibrationError: ece, maxCalibrationError: mce, brierScore: brier / n },
  };
}

/** Class index per row of a gold table, in the forest's class order. */
export function labelIndexes(table: GoldTable, classes: readonly string[]): Int32Array {
  const index = new Map(classes.map((c, i) => [c, i]));
  const out = new Int32Array(table.rows);
  for (let i = 0; i < table.rows; i++) {
    const k = index.get(table.labels[i]);
    if (k === undefined) throw new UserError(`row ${i} has label ${JSON.stringify(table.labels[i])}, which the model's classes (${classes.join(', ')}) do not include`);
    out[i] = k;
  }
  return out;
}

/** Scores a gold table with the tree-walker and evaluates the predictions. */
export function evaluateForest(forest: ForestFileV1 | CompiledForest, table: GoldTable, split: string): Evaluation {
  const compiled = forest instanceof CompiledForest ? forest : CompiledForest.compile(forest);
  const columns: Record<string, ArrayLike<unknown>> = { ...table.numeric, ...table.categorical };
  for (const f of compiled.features) {
    if (!(f.name in columns)) throw new UserError(`split ${split} has no column ${f.name}, which the model needs`);
  }
  const scored = compiled.predictBatch({ columns, rows: table.rows });
  return computeMetrics({
    split,
    classes: compiled.classes,
    actual: labelIndexes(table, compiled.classes),
    probabilities: scored.probabilities,
    predicted: scored.classIndex,
  });
}

function pct(x: number): string {
  return (x * 100).toFixed(2).padStart(6);
}

/** A readable multi-line report of one evaluation. */
export function formatEvaluation(e: Evaluation, classes: readonly string[]): string {
  const lines: string[] = [];
  lines.push(`split ${e.split}: ${e.rows} rows`);
  lines.push(`  accuracy ${pct(e.accuracy)}%   macro F1 ${pct(e.macroF1)}%   log loss ${e.logLoss.toFixed(4)}`);
  lines.push(`  ${'class'.padEnd(10)} ${'precision'.padStart(9)} ${'recall'.padStart(9)} ${'F1'.padStart(9)} ${'support'.padStart(9)}`);
  for (const c of classes) {
    const m = e.perClass[c];
    lines.push(`  ${c.padEnd(10)} ${pct(m.precision).padStart(8)}% ${pct(m.recall).padStart(8)}% ${pct(m.f1).padStart(8)}% ${String(m.support).padStart(9)}`);
  }
  const width = Math.max(9, ...e.confusion.flat().map((v) => String(v).length + 1));
  lines.push(`  confusion (rows actual, columns predicted):`);
  lines.push(`  ${''.padEnd(10)}${classes.map((c) => c.padStart(width)).join('')}`);
  e.confusion.forEach((row, i) => lines.push(`  ${classes[i].padEnd(10)}${row.map((v) => String(v).padStart(width)).join('')}`));
  const cal = e.calibration;
  lines.push(`  calibration: ECE ${cal.expectedCalibrationError.toFixed(4)}   max gap ${cal.maxCalibrationError.toFixed(4)}   Brier ${cal.brierScore.toFixed(4)}`);
  const used = cal.bins.filter((b) => b.count > 0);
  lines.push(`  ${'confidence'.padEnd(12)}${'rows'.padStart(9)}${'mean conf'.padStart(11)}${'accuracy'.padStart(10)}`);
  for (const b of used) {
    lines.push(`  ${`${b.lower.toFixed(1)}-${b.upper.toFixed(1)}`.padEnd(12)}${String(b.count).padStart(9)}${pct(b.meanConfidence).padStart(10)}%${pct(b.accuracy).padStart(9)}%`);
  }
  return lines.join('\n');
}
