import type { EvaluationMetrics } from '../format';
import { checkGates, DEFAULT_GATES, evaluateWithGates, formatGateReport, gateFailureMessage, resolveGateConfig } from '../gates';
import { trainForest } from '../trainer';
import { RULE_FEATURES, ruleTable } from './trainer-fixtures';

function metrics(accuracy: number, macroF1: number, precision: [number, number, number], rows = 100): EvaluationMetrics {
  const cls = (p: number) => ({ precision: p, recall: 0.8, f1: 0.8, support: 10 });
  return { split: 'test', rows, accuracy, macroF1, logLoss: 0.5, perClass: { Low: cls(precision[0]), Medium: cls(precision[1]), High: cls(precision[2]) }, confusion: [] };
}

describe('quality gates', () => {
  it('pass when every default floor is met', () => {
    const r = checkGates(metrics(0.85, 0.75, [0.7, 0.8, 0.9]));
    expect(r.passed).toBe(true);
    expect(r.results.map((g) => g.gate)).toEqual(['accuracy', 'macroF1', 'precision[Low]', 'precision[Medium]', 'precision[High]']);
    expect(r.results.every((g) => g.shortfall === 0)).toBe(true);
  });

  it('fail naming each failed gate with required, actual and shortfall', () => {
    const r = checkGates(metrics(0.78, 0.75, [0.6, 0.8, 0.9]));
    expect(r.passed).toBe(false);
    const failed = r.results.filter((g) => !g.passed);
    expect(failed.map((g) => g.gate)).toEqual(['accuracy', 'precision[Low]']);
    expect(failed[0].required).toBe(0.8);
    expect(failed[0].actual).toBe(0.78);
    expect(failed[0].shortfall).toBeCloseTo(0.02, 12);
    expect(failed[1].shortfall).toBeCloseTo(0.05, 12);
    expect(gateFailureMessage(r)).toMatch(/accuracy 0\.7800 < required 0\.8000 \(short by 0\.0200\).*precision\[Low\] 0\.6000 < required 0\.6500 \(short by 0\.0500\)/);
    expect(formatGateReport(r)).toMatch(/FAIL\s+accuracy/);
  });

  it('champion/challenger: within the margin passes, beyond it fails', () => {
    const champion = { ...metrics(0.9, 0.85, [0.9, 0.9, 0.9]), sha256: 'c'.repeat(64) };
    expect(checkGates(metrics(0.895, 0.845, [0.9, 0.9, 0.9]), DEFAULT_GATES, champion).passed).toBe(true);
    const worse = checkGates(metrics(0.88, 0.845, [0.9, 0.9, 0.9]), DEFAULT_GATES, champion);
    expect(worse.passed).toBe(false);
    const g = worse.results.find((x) => x.gate === 'champion.accuracy')!;
    expect(g).toMatchObject({ passed: false, actual: 0.88 });
    expect(g.required).toBeCloseTo(0.89, 12);
    expect(g.shortfall).toBeCloseTo(0.01, 12);
    expect(worse.champion).toEqual({ sha256: 'c'.repeat(64), accuracy: 0.9, macroF1: 0.85 });
    // A wider margin lets it through; a different split is refused.
    expect(checkGates(metrics(0.88, 0.845, [0.9, 0.9, 0.9]), resolveGateConfig({ championMargin: { accuracy: 0.05 } }), champion).passed).toBe(true);
    expect(() => checkGates(metrics(0.88, 0.8, [0.9, 0.9, 0.9], 50), DEFAULT_GATES, champion)).toThrow(/same split/);
  });

  it('rejects gate settings outside 0..1', () => {
    expect(() => resolveGateConfig({ minAccuracy: 1.5 })).toThrow(/minAccuracy must be a number from 0 to 1/);
  });

  it('evaluates a real candidate against a real champion on the same split', async () => {
    const train = ruleTable(2000, 1);
    const test = ruleTable(1000, 2);
    const good = await trainForest(train, { features: RULE_FEATURES, trees: 5, maxFeatures: 'all', minSamplesLeaf: 1, threads: 1, progress: false });
    const weak = await trainForest(train, { features: RULE_FEATURES, trees: 5, maxDepth: 1, threads: 1, progress: false });
    const asChallenger = evaluateWithGates(weak, test, 'test', { champion: good });
    expect(asChallenger.gates.passed).toBe(false);
    expect(asChallenger.metrics.accuracy).toBeLessThan(asChallenger.championMetrics!.accuracy);
    expect(asChallenger.gates.results.find((g) => g.gate === 'champion.accuracy')!.passed).toBe(false);
    const asChampion = evaluateWithGates(good, test, 'test', { champion: weak });
    expect(asChampion.metrics.accuracy).toBeGreaterThan(0.99);
    expect(asChampion.gates.passed).toBe(true);
  });
});
