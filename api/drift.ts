/**
 * Input drift: population stability index of the live inputs against the training
 * statistics stored in the forest file, over a sliding window of the last N rows.
 *
 * Each feature keeps a ring buffer of bin indexes and running bin counts, so
 * observing a row is O(features) with no allocation, and PSI is computed only when
 * Prometheus scrapes. Missing values get their own bin, so a feature that starts
 * arriving empty shows up as drift too.
 */
import type { FeatureStats } from '../etl/gold-schema';
import { lowerBound } from '../model/forest-flat';
import type { FeatureSpec } from '../model/format';
import type { RawRow } from '../model/walker';
import { DRIFT_THRESHOLDS } from './metrics';

/**
 * Rows a window needs before a feature of `bins` bins has drift figures worth alerting on.
 * With n rows drawn from the training distribution itself, PSI ≈ χ²(bins − 1) / n: mean
 * (bins − 1)/n, standard deviation √(2(bins − 1))/n. The window must hold enough rows that
 * this noise, at its mean plus 5 standard deviations (the largest over every feature and
 * every process CloudWatch takes the Maximum of stays below it), is at most half the alert
 * threshold; never fewer than DRIFT_THRESHOLDS.minWindowRows. Deciles + missing (11 bins):
 * 259 rows; 60 categories: ~900.
 */
export function minRowsForBins(bins: number, psi: number = DRIFT_THRESHOLDS.psi): number {
  const df = Math.max(1, bins - 1);
  return Math.max(DRIFT_THRESHOLDS.minWindowRows, Math.ceil((df + 5 * Math.sqrt(2 * df)) / (psi / 2)));
}

/** Floor for empty bins: keeps ln(a/e) finite (the usual PSI smoothing). */
const EPSILON = 1e-4;

interface FeatureWindow {
  readonly name: string;
  /** Maps a raw value to its bin. */
  readonly bin: (value: unknown) => number;
  /** Expected fraction per bin (training). */
  readonly expected: Float64Array;
  readonly counts: Int32Array;
  /** The bin of missing values, and of categories unseen at training (-1: numeric, no such bin). */
  readonly missingBin: number;
  readonly unknownBin: number;
  /** Bin index per row of the window: 16 bits while the bins fit, else 32 (a 16-bit index would wrap above 65,535 bins). */
  readonly ring: Uint16Array | Uint32Array;
}

function ringFor(bins: number, size: number): Uint16Array | Uint32Array {
  return bins <= 0xffff ? new Uint16Array(size) : new Uint32Array(size);
}

/**
 * Missing share of the training rows. `count` counts the non-missing values and
 * `missing` the missing ones (the gold manifest's convention), so the total is their sum.
 */
function missingShare(stats: FeatureStats): number {
  const total = stats.count + stats.missing;
  return total > 0 ? stats.missing / total : 0;
}

function numericWindow(name: string, stats: Extract<FeatureStats, { kind: 'numeric' }>, size: number): FeatureWindow {
  const edges = Float64Array.from(stats.edges);
  const m = missingShare(stats);
  const bins = edges.length + 2; // edges.length + 1 value bins, then the missing bin
  const expected = new Float64Array(bins);
  for (let i = 0; i < edges.length + 1; i++) expected[i] = (stats.fractions[i] ?? 0) * (1 - m);
  expected[bins - 1] = m;
  const missingBin = bins - 1;
  const bin = (value: unknown): number => {
    if (typeof value !== 'number' || Number.isNaN(value)) return missingBin;
    // Bin i holds edges[i-1] < v <= edges[i]: the first edge >= v (~4 steps for deciles).
    return lowerBound(edges, value);
  };
  return { name, bin, expected, counts: new Int32Array(bins), missingBin, unknownBin: -1, ring: ringFor(bins, size) };
}

function categoricalWindow(
  name: string,
  stats: Extract<FeatureStats, { kind: 'categorical' }>,
  spec: FeatureSpec | undefined,
  size: number,
): FeatureWindow {
  const categories = [...Object.keys(stats.frequencies)];
  const index = new Map(categories.map((c, i) => [c, i]));
  if (spec?.kind === 'categorical') {
    for (const c of spec.categories) {
      if (!index.has(c)) {
        index.set(c, categories.length);
        categories.push(c);
      }
    }
  }
  // A value unseen at training (scored as missing by default, see api/prediction.ts) gets its own bin:
  // a new store format arriving in volume shows up as drift.
  const other = categories.length;
  const missingBin = categories.length + 1;
  const m = missingShare(stats);
  const expected = new Float64Array(categories.length + 2);
  categories.forEach((c, i) => (expected[i] = (stats.frequencies[c] ?? 0) * (1 - m)));
  expected[missingBin] = m;
  const bin = (value: unknown): number => {
    if (value === null || value === undefined) return missingBin;
    return index.get(value as string) ?? other;
  };
  return { name, bin, expected, counts: new Int32Array(categories.length + 2), missingBin, unknownBin: other, ring: ringFor(categories.length + 2, size) };
}

/** One feature's drift over the window (see docs/api.md, "Drift", for the thresholds). */
export interface FeatureDrift {
  readonly feature: string;
  readonly psi: number;
  readonly missingShare: number;
  readonly trainingMissingShare: number;
  /** Categorical features only. */
  readonly unknownShare: number | undefined;
}

export class DriftMonitor {
  readonly windowSize: number;
  private readonly windows: FeatureWindow[];
  private filled = 0;
  private cursor = 0;

  constructor(features: readonly FeatureSpec[], stats: Record<string, FeatureStats>, windowSize: number) {
    this.windowSize = windowSize;
    const specs = new Map(features.map((f) => [f.name, f]));
    this.windows = [];
    for (const f of features) {
      const s = stats[f.name];
      if (!s) continue; // no baseline recorded: nothing to compare against
      if (s.kind === 'numeric' && s.edges.length + 1 === s.fractions.length) this.windows.push(numericWindow(f.name, s, windowSize));
      else if (s.kind === 'categorical') this.windows.push(categoricalWindow(f.name, s, specs.get(f.name), windowSize));
    }
  }

  /**
   * Rows the window needs before its figures count: the most any of its features needs
   * (minRowsForBins), or the whole window when it is smaller than that.
   */
  get minRows(): number {
    let need: number = DRIFT_THRESHOLDS.minWindowRows;
    for (const w of this.windows) need = Math.max(need, minRowsForBins(w.counts.length));
    return Math.min(need, this.windowSize);
  }

  /** Whether the window holds enough rows for its drift figures to count (minRows). */
  get reliable(): boolean {
    return this.filled > 0 && this.filled >= this.minRows;
  }

  get features(): string[] {
    return this.windows.map((w) => w.name);
  }

  /** Rows currently in the window. */
  get size(): number {
    return this.filled;
  }

  observe(row: RawRow): void {
    const at = this.cursor;
    const full = this.filled === this.windowSize;
    for (let i = 0; i < this.windows.length; i++) {
      const w = this.windows[i];
      const b = w.bin(row[w.name]);
      if (full) w.counts[w.ring[at]]--;
      w.ring[at] = b;
      w.counts[b]++;
    }
    this.cursor = at + 1 === this.windowSize ? 0 : at + 1;
    if (!full) this.filled++;
  }

  /** PSI per feature over the current window (empty when no rows were seen). */
  psi(): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.featureDrift()) out.set(s.feature, s.psi);
    return out;
  }

  /**
   * Per feature over the current window: PSI, the share of missing values (and the
   * training share it compares with) and, for categorical features, the share of
   * categories unseen at training. Empty when no rows were seen.
   */
  featureDrift(): FeatureDrift[] {
    const out: FeatureDrift[] = [];
    if (this.filled === 0) return out;
    for (const w of this.windows) {
      let sum = 0;
      for (let b = 0; b < w.counts.length; b++) {
        const actual = Math.max(w.counts[b] / this.filled, EPSILON);
        const expected = Math.max(w.expected[b], EPSILON);
        sum += (actual - expected) * Math.log(actual / expected);
      }
      out.push({
        feature: w.name,
        psi: sum,
        missingShare: w.counts[w.missingBin] / this.filled,
        trainingMissingShare: w.expected[w.missingBin],
        unknownShare: w.unknownBin < 0 ? undefined : w.counts[w.unknownBin] / this.filled,
      });
    }
    return out;
  }
}
