/**
 * Quality gates: absolute floors on test metrics and a champion/challenger rule. A
 * candidate that fails any gate is reported gate by gate (required, actual,
 * shortfall), and nothing downstream — registration — may happen.
 */
import { UserError } from '../core/errors';
import type { GoldTable } from '../etl/gold-schema';
import type { EvaluationMetrics, ForestFileV1 } from './format';
import { evaluateForest, type Evaluation } from './evaluate';

export interface GateConfig {
  readonly minAccuracy: number;
  readonly minMacroF1: number;
  /** Every class's precision must reach this. */
  readonly minClassPrecision: number;
  /** How much worse than the champion the candidate may be, per metric (absolute). */
  readonly championMargin: { readonly accuracy: number; readonly macroF1: number };
}

export const DEFAULT_GATES: GateConfig = {
  minAccuracy: 0.8,
  minMacroF1: 0.7,
  minClassPrecision: 0.65,
  championMargin: { accuracy: 0.01, macroF1: 0.01 },
};

export interface GateResult {
  /** e.g. "accuracy", "precision[High]", "champion.macroF1". */
  readonly gate: string;
  readonly passed: boolean;
  /** The value the metric had to reach (>=). */
  readonly required: number;
  readonly actual: number;
  /** required - actual when failed, else 0. */
  readonly shortfall: number;
}

export interface ChampionInfo {
  readonly sha256: string | null;
  readonly accuracy: number;
  readonly macroF1: number;
}

export interface GateReport {
  readonly passed: boolean;
  readonly split: string;
  readonly config: GateConfig;
  readonly results: GateResult[];
  readonly champion: ChampionInfo | null;
}

export function resolveGateConfig(partial: Partial<Omit<GateConfig, 'championMargin'>> & { championMargin?: Partial<GateConfig['championMargin']> } = {}): GateConfig {
  const config: GateConfig = {
    minAccuracy: partial.minAccuracy ?? DEFAULT_GATES.minAccuracy,
    minMacroF1: partial.minMacroF1 ?? DEFAULT_GATES.minMacroF1,
    minClassPrecision: partial.minClassPrecision ?? DEFAULT_GATES.minClassPrecision,
    championMargin: {
      accuracy: partial.championMargin?.accuracy ?? DEFAULT_GATES.championMargin.accuracy,
      macroF1: partial.championMargin?.macroF1 ?? DEFAULT_GATES.championMargin.macroF1,
    },
  };
  for (const [name, v] of [
    ['minAccuracy', config.minAccuracy],
    ['minMacroF1', config.minMacroF1],
    ['minClassPrecision', config.minClassPrecision],
    ['championMargin.accuracy', config.championMargin.accuracy],
    ['championMargin.macroF1', config.championMargin.macroF1],
  ] as const) {
    if (!(v >= 0 && v <= 1)) throw new UserError(`gate ${name} must be a number from 0 to 1, got ${v}`);
  }
  return config;
}

function gate(name: string, required: number, actual: number): GateResult {
  // Metrics are ratios of counts; a hair of float error must not fail a gate set exactly at the achieved value.
  const passed = actual >= required - 1e-12;
  return { gate: name, passed, required, actual, shortfall: passed ? 0 : required - actual };
}

/**
 * Checks a candidate's metrics; with a champion's metrics on the same split, also
 * the champion/challenger rule (candidate >= champion - margin, per metric).
 */
export function checkGates(
  candidate: EvaluationMetrics,
  config: GateConfig = DEFAULT_GATES,
  champion?: (EvaluationMetrics & { readonly sha256?: string | null }) | null,
): GateReport {
  const results: GateResult[] = [gate('accuracy', config.minAccuracy, candidate.accuracy), gate('macroF1', config.minMacroF1, candidate.macroF1)];
  for (const [cls, m] of Object.entries(candidate.perClass)) results.push(gate(`precision[${cls}]`, config.minClassPrecision, m.precision));
  let info: ChampionInfo | null = null;
  if (champion) {
    if (champion.split !== candidate.split || champion.rows !== candidate.rows) {
      throw new Error(`champion/challenger must compare the same split: candidate ${candidate.split} (${candidate.rows} rows), champion ${champion.split} (${champion.rows} rows)`);
    }
    info = { sha256: champion.sha256 ?? null, accuracy: champion.accuracy, macroF1: champion.macroF1 };
    results.push(gate('champion.accuracy', Math.max(0, champion.accuracy - config.championMargin.accuracy), candidate.accuracy));
    results.push(gate('champion.macroF1', Math.max(0, champion.macroF1 - config.championMargin.macroF1), candidate.macroF1));
  }
  return { passed: results.every((r) => r.passed), split: candidate.split, config, results, champion: info };
}

export interface GatedEvaluation {
  readonly metrics: Evaluation;
  readonly championMetrics: Evaluation | null;
  readonly gates: GateReport;
}

/**
 * Evaluates a candidate (and the champion, when given) on the same split and checks
 * the gates. The champion is a forest document, so any source — a file, or the
 * registry's latest approved version — plugs in.
 */
export function evaluateWithGates(
  candidate: ForestFileV1,
  table: GoldTable,
  split: string,
  options: { config?: GateConfig; champion?: ForestFileV1 | null } = {},
): GatedEvaluation {
  const metrics = evaluateForest(candidate, table, split);
  const championMetrics = options.champion ? evaluateForest(options.champion, table, split) : null;
  const gates = checkGates(metrics, options.config ?? DEFAULT_GATES, championMetrics ? { ...championMetrics, sha256: options.champion!.sha256 } : null);
  return { metrics, championMetrics, gates };
}

function fmt(x: number): string {
  return x.toFixed(4);
}

/** One line per gate, failures marked and quantified. */
export function formatGateReport(report: GateReport): string {
  const lines = [`quality gates on ${report.split}: ${report.passed ? 'PASSED' : 'FAILED'}`];
  if (report.champion) {
    lines.push(`  champion ${report.champion.sha256 ? report.champion.sha256.slice(0, 12) : '(unsealed)'}: accuracy ${fmt(report.champion.accuracy)}, macro F1 ${fmt(report.champion.macroF1)}`);
  }
  for (const r of report.results) {
    const status = r.passed ? 'pass' : 'FAIL';
    const tail = r.passed ? '' : `  short by ${fmt(r.shortfall)}`;
    lines.push(`  ${status}  ${r.gate.padEnd(20)} ${fmt(r.actual)} >= ${fmt(r.required)}${tail}`);
  }
  return lines.join('\n');
}

/** The message of the error a failed gate raises. */
export function gateFailureMessage(report: GateReport): string {
  const failed = report.results.filter((r) => !r.passed);
  return `quality gate${failed.length > 1 ? 's' : ''} failed on ${report.split}: ${failed
    .map((r) => `${r.gate} ${fmt(r.actual)} < required ${fmt(r.required)} (short by ${fmt(r.shortfall)})`)
    .join('; ')}`;
}
