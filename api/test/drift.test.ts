/**
 * The PSI drift window: running counts over a ring of bin indexes must equal the
 * counts of the last N rows, whatever the number of bins — including features with
 * more categories than a 16-bit ring index can hold.
 */
import type { FeatureStats } from '../../etl/gold-schema';
import type { FeatureSpec } from '../../model/format';
import { DriftMonitor } from '../drift';
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
