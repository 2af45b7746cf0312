/**
 * The PSI drift window: running counts over a ring of bin indexes must equal the
 * counts of the last N rows, whatever the number of bins — including features with
 * more categories than a 16-bit ring index can hold.
 */
import type { FeatureStats } from '../../etl/gold-schema';
import type { FeatureSpec } from '../../model/format';
import { DriftMonitor, minRowsForBins } from '../drift';
import { DRIFT_THRESHOLDS } from '../metrics';
import { mulberry32 } from './fixtures';

function categorical(n: number): { spec: FeatureSpec; stats: FeatureStats } {
  const categories = Array.from({ length: n }, (_, i) => `c${i}`);
  const frequencies: Record<string, number> = {};
  for (const c of categories) frequencies[c] = 1 / n;
  return { spec: { name: 'STORE', kind: 'categorical', categories }, stats: { kind: 'categorical', count: 1000, missing: 0, frequencies } };
}

describe('drift window', () => {
  it.each([10, 70_000])('after wrapping, a window over %i categories equals a fresh window of the same last rows', (n) => {
    const { spec, stats } = categorical(n);
    const window = 50;
    const rng = mulberry32(n);
    // Values near the top of the category range, where a 16-bit ring index wraps (65,536 and up).
    const rows = Array.from({ length: 3 * window + 7 }, () => ({ STORE: `c${n - 1 - Math.floor(rng() * Math.min(n, 8000))}` }));
    const wrapped = new DriftMonitor([spec], { STORE: stats }, window);
    for (const r of rows) wrapped.observe(r);
    const fresh = new DriftMonitor([spec], { STORE: stats }, window);
    for (const r of rows.slice(-window)) fresh.observe(r);
    expect(wrapped.size).toBe(window);
    expect(wrapped.psi().get('STORE')).toBeCloseTo(fresh.psi().get('STORE')!, 9);
  });
});

describe('rows a drift window needs', () => {
  it('grow with the bins: the 200-row floor for a few, more for deciles, ~900 for 60 categories', () => {
    expect(minRowsForBins(2)).toBe(DRIFT_THRESHOLDS.minWindowRows);
    expect(minRowsForBins(11)).toBe(259); // 10 decile bins + missing
    expect(minRowsForBins(62)).toBeGreaterThan(900); // 60 categories + unknown + missing
    for (let k = 2; k < 500; k++) expect(minRowsForBins(k + 1)).toBeGreaterThanOrEqual(minRowsForBins(k));
  });

  it('no drift from noise at that many rows of the training distribution itself, where 200 rows would page on noise', () => {
    const { spec, stats } = categorical(60);
    const rng = mulberry32(60);
    const psiOf = (rows: number) => {
      const m = new DriftMonitor([spec], { STORE: stats }, 5000);
      for (let i = 0; i < rows; i++) m.observe({ STORE: `c${Math.floor(rng() * 60)}` });
      return { psi: m.psi().get('STORE')!, reliable: m.reliable };
    };
    const needed = new DriftMonitor([spec], { STORE: stats }, 5000).minRows;
    expect(needed).toBe(minRowsForBins(62));
    const atNeeded = Array.from({ length: 40 }, () => psiOf(needed));
    const at200 = Array.from({ length: 40 }, () => psiOf(200));
    // Unchanged inputs: the largest of 40 windows stays under half the threshold at the scaled minimum…
    expect(Math.max(...atNeeded.map((r) => r.psi))).toBeLessThan(DRIFT_THRESHOLDS.psi / 2);
    expect(atNeeded.every((r) => r.reliable)).toBe(true);
    // …while at the old fixed 200 rows the noise alone is above the alert threshold on average, and those windows do not count now.
    expect(at200.reduce((a, r) => a + r.psi, 0) / at200.length).toBeGreaterThan(DRIFT_THRESHOLDS.psi);
    expect(at200.some((r) => r.reliable)).toBe(false);
  });

  it('a window smaller than the minimum counts once full', () => {
    const { spec, stats } = categorical(60);
    const m = new DriftMonitor([spec], { STORE: stats }, 100);
    expect(m.minRows).toBe(100);
    for (let i = 0; i < 99; i++) m.observe({ STORE: 'c1' });
    expect(m.reliable).toBe(false);
    m.observe({ STORE: 'c2' });
    expect(m.reliable).toBe(true);
  });
});
