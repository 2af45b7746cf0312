/**
 * Reading a registered version's metrics. A version's metrics are whatever its forest
 * carried at registration: for our trainer, `{ validation, test, gates }` with the
 * shapes of model/evaluate.ts and model/gates.ts; for an imported or unevaluated forest,
 * less (or flat headline numbers). Everything here checks shapes instead of trusting
 * them, so a page shows "not recorded" rather than failing on an old or foreign version.
 */
import type { CalibrationSummary, ReliabilityBin } from '../model/evaluate';
import type { ClassMetrics } from '../model/format';
import { DEFAULT_GATES, type GateConfig, type GateReport, type GateResult } from '../model/gates';
import { gateFailure, hasGateResults, type ModelVersion } from '../model/registry';

export interface EvaluationView {
  readonly split: string;
  readonly rows: number;
  readonly accuracy: number;
  readonly macroF1: number;
  readonly logLoss: number | null;
  readonly classes: string[];
  readonly perClass: Record<string, ClassMetrics>;
  /** confusion[actual][predicted] in `classes` order. */
  readonly confusion: number[][];
  readonly calibration: CalibrationSummary | null;
}

const isObject = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function calibrationOf(x: unknown): CalibrationSummary | null {
  if (!isObject(x) || !Array.isArray(x.bins) || !isNumber(x.expectedCalibrationError)) return null;
  const bins = x.bins.filter(
    (b): b is ReliabilityBin => isObject(b) && isNumber(b.lower) && isNumber(b.upper) && isNumber(b.count) && isNumber(b.meanConfidence) && isNumber(b.accuracy),
  );
  if (bins.length !== x.bins.length) return null;
  return {
    bins,
    expectedCalibrationError: x.expectedCalibrationError,
    maxCalibrationError: isNumber(x.maxCalibrationError) ? x.maxCalibrationError : NaN,
    brierScore: isNumber(x.brierScore) ? x.brierScore : NaN,
  };
}

/** The evaluation on one split ('test' by default), or null when the version does not record one. */
export function evaluationOf(metrics: Record<string, unknown>, split = 'test'): EvaluationView | null {
  const e = metrics[split];
  if (!isObject(e) || !isNumber(e.accuracy) || !isNumber(e.macroF1) || !isObject(e.perClass) || !Array.isArray(e.confusion)) return null;
  const classes = Object.keys(e.perClass);
  const K = classes.length;
  const confusion = e.confusion as unknown[];
  const wellFormed = confusion.length === K && confusion.every((r) => Array.isArray(r) && r.length === K && r.every(isNumber));
  const perClassOk = classes.every((c) => {
    const m = (e.perClass as Record<string, unknown>)[c];
    return isObject(m) && isNumber(m.precision) && isNumber(m.recall) && isNumber(m.f1) && isNumber(m.support);
  });
  if (!wellFormed || !perClassOk) return null;
  return {
    split: typeof e.split === 'string' ? e.split : split,
    rows: isNumber(e.rows) ? e.rows : (confusion as number[][]).flat().reduce((a, b) => a + b, 0),
    accuracy: e.accuracy,
    macroF1: e.macroF1,
    logLoss: isNumber(e.logLoss) ? e.logLoss : null,
    classes,
    perClass: e.perClass as Record<string, ClassMetrics>,
    confusion: confusion as number[][],
    calibration: calibrationOf(e.calibration),
  };
}

/** Accuracy, macro F1 and log loss wherever the evaluation put them (test split, or flat). */
export function headlineOf(metrics: Record<string, unknown>): { accuracy: number | null; macroF1: number | null; logLoss: number | null; ece: number | null } {
  const test = evaluationOf(metrics);
  if (test) return { accuracy: test.accuracy, macroF1: test.macroF1, logLoss: test.logLoss, ece: test.calibration?.expectedCalibrationError ?? null };
  const pick = (k: string): number | null => (isNumber(metrics[k]) ? (metrics[k] as number) : null);
  return { accuracy: pick('accuracy'), macroF1: pick('macroF1'), logLoss: pick('logLoss'), ece: null };
}

/** The gate report recorded at training, when it has the full shape of model/gates.ts. */
export function gateReportOf(metrics: Record<string, unknown>): GateReport | null {
  const g = metrics.gates;
  if (!isObject(g) || typeof g.passed !== 'boolean' || !Array.isArray(g.results)) return null;
  const results = g.results.filter(
    (r): r is GateResult => isObject(r) && typeof r.gate === 'string' && typeof r.passed === 'boolean' && isNumber(r.required) && isNumber(r.actual),
  );
  if (results.length !== g.results.length) return null;
  return {
    passed: g.passed,
    split: typeof g.split === 'string' ? g.split : 'test',
    config: gateConfigOf(g.config),
    results: results.map((r) => ({ ...r, shortfall: isNumber(r.shortfall) ? r.shortfall : r.passed ? 0 : r.required - r.actual })),
    champion: isObject(g.champion) ? (g.champion as unknown as GateReport['champion']) : null,
  };
}

function gateConfigOf(x: unknown): GateConfig {
  if (!isObject(x)) return DEFAULT_GATES;
  const margin = isObject(x.championMargin) ? x.championMargin : {};
  const num = (v: unknown, d: number): number => (isNumber(v) ? v : d);
  return {
    minAccuracy: num(x.minAccuracy, DEFAULT_GATES.minAccuracy),
    minMacroF1: num(x.minMacroF1, DEFAULT_GATES.minMacroF1),
    minClassPrecision: num(x.minClassPrecision, DEFAULT_GATES.minClassPrecision),
    championMargin: { accuracy: num(margin.accuracy, DEFAULT_GATES.championMargin.accuracy), macroF1: num(margin.macroF1, DEFAULT_GATES.championMargin.macroF1) },
  };
}

export type GateStatus = 'passed' | 'failed' | 'forced' | 'not evaluated';

/** The gate verdict as the registry sees it: failed gates on a --force registration show as 'forced'. */
export function gateStatus(v: ModelVersion): GateStatus {
  if (!hasGateResults(v.metrics)) return 'not evaluated';
  if (gateFailure(v.metrics)) return v.lineage.forced ? 'forced' : 'failed';
  return 'passed';
}

/** The gate thresholds a metric is held to (for marking them on charts). */
export function metricThresholds(config: GateConfig, classes: readonly string[]): Record<string, number> {
  const out: Record<string, number> = { accuracy: config.minAccuracy, macroF1: config.minMacroF1 };
  for (const c of classes) out[`precision[${c}]`] = config.minClassPrecision;
  return out;
}
