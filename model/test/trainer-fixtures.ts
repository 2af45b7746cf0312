/** In-memory gold tables with known structure, for the trainer tests. */
import { createHash } from 'node:crypto';
import type { GoldTable } from '../../etl/gold-schema';
import type { ClassLabel } from '../../etl/schema';
import type { FeatureRef } from '../trainer';

export function fakeManifestSha(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export const RULE_FEATURES: FeatureRef[] = [
  { name: 'x', kind: 'numeric' },
  { name: 'm', kind: 'numeric' },
  { name: 'noise', kind: 'numeric' },
  { name: 'c', kind: 'categorical' },
];

/**
 * The known answer: High when x > 50 (x is an integer 0..99); otherwise Medium when
 * c is A or C; otherwise Low — except that a missing m always means Low.
 */
export function ruleLabel(x: number, m: number, c: string | null): ClassLabel {
  if (Number.isNaN(m)) return 'Low';
  if (x > 50) return 'High';
  return c === 'A' || c === 'C' ? 'Medium' : 'Low';
}

export function ruleTable(n: number, seed = 1): GoldTable {
  const rnd = lcg(seed);
  const x = new Float64Array(n);
  const m = new Float64Array(n);
  const noise = new Float64Array(n);
  const c: (string | null)[] = [];
  const labels: ClassLabel[] = [];
  for (let i = 0; i < n; i++) {
    x[i] = Math.floor(rnd() * 100);
    m[i] = rnd() < 0.15 ? NaN : rnd() * 10;
    noise[i] = rnd();
    c.push(['A', 'B', 'C', 'D'][Math.floor(rnd() * 4)]);
    labels.push(ruleLabel(x[i], m[i], c[i]));
  }
  return { rows: n, basketIds: labels.map((_, i) => `b${i}`), labels, numeric: { x, m, noise }, categorical: { c }, manifestSha256: fakeManifestSha('rule') };
}

/** A noisy table with > 255 distinct values, missing values and many categories: every code path of the builder. */
export function noisyTable(n: number, seed = 7): GoldTable {
  const rnd = lcg(seed);
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  const k = new Float64Array(n);
  const cat: (string | null)[] = [];
  const cat2: (string | null)[] = [];
  const labels: ClassLabel[] = [];
  for (let i = 0; i < n; i++) {
    a[i] = rnd() < 0.05 ? NaN : rnd() * 1000;
    b[i] = Math.round(rnd() * 40) / 4;
    k[i] = rnd() < 0.3 ? NaN : Math.floor(rnd() * 5);
    cat.push(rnd() < 0.1 ? null : `r${Math.floor(rnd() * 40)}`);
    cat2.push(['x', 'y'][Math.floor(rnd() * 2)]);
    const z = (a[i] > 500 ? 1 : 0) + (b[i] > 4 ? 0.7 : 0) + (cat[i] !== null && Number(cat[i]!.slice(1)) % 3 === 0 ? 0.8 : 0) + rnd() * 1.5;
    labels.push(z < 1 ? 'Low' : z < 2 ? 'Medium' : 'High');
  }
  return { rows: n, basketIds: labels.map((_, i) => `n${i}`), labels, numeric: { a, b, k }, categorical: { cat, cat2 }, manifestSha256: fakeManifestSha('noisy') };
}

export const NOISY_FEATURES: FeatureRef[] = [
  { name: 'a', kind: 'numeric' },
  { name: 'b', kind: 'numeric' },
  { name: 'k', kind: 'numeric' },
  { name: 'cat', kind: 'categorical' },
  { name: 'cat2', kind: 'categorical' },
];
