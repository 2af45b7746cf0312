/**
 * Binning: every feature is mapped once, before any tree is grown, to one byte per
 * row. Numeric features get at most `maxBins` quantile bins; categorical features
 * get their category code (index in the sorted distinct training values, which
 * becomes the forest file's encoding). Code 255 (MISSING_CODE) is missing (NaN /
 * null) or, for categoricals beyond the 255 most frequent, "unknown".
 *
 * The codes live in a SharedArrayBuffer so worker threads read them without copies.
 * For every numeric bin we keep the smallest and largest training value in it: split
 * thresholds are placed between real values, so the forest file never refers to
 * bins (and can be scored on raw values by anything).
 */
import { UserError } from '../../core/errors';
import type { FeatureKind, GoldTable } from '../../etl/gold-schema';
import { CLASS_LABELS } from '../../etl/schema';
import type { FeatureSpec } from '../format';

export const MISSING_CODE = 255;
/** Histogram slots per feature: 255 value codes + the missing code. */
export const BIN_SLOTS = 256;
export const MAX_VALUE_BINS = 255;

export interface FeatureRef {
  readonly name: string;
  readonly kind: FeatureKind;
}

/** Everything a tree builder needs; plain data, cloneable to workers (the big arrays are shared). */
export interface BinnedData {
  readonly rows: number;
  readonly nFeatures: number;
  readonly nClasses: number;
  /**
   * Row-major records: feature f of row r is records[r * stride + f], and the row's
   * class index (into CLASS_LABELS) is records[r * stride + nFeatures]. The two bytes
   * after it are zero here; tree builders copy records into per-tree buffers and keep
   * the row's bootstrap count there. stride is a multiple of 4 (records move as words).
   */
  readonly records: Uint8Array;
  readonly stride: number;
  /** 0 numeric, 1 categorical. */
  readonly kinds: Uint8Array;
  /** Value codes in use per feature (codes 0 .. nBins-1; 255 is missing). */
  readonly nBins: Int32Array;
  /** Smallest / largest training value in each numeric bin: [f * BIN_SLOTS + bin]. */
  readonly binLower: Float64Array;
  readonly binUpper: Float64Array;
}

export interface BinningResult {
  readonly data: BinnedData;
  readonly specs: FeatureSpec[];
  /** Training rows per class (unweighted). */
  readonly classCounts: number[];
}

function sharedBytes(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(Math.max(1, n)), 0, n);
}

export function binTable(table: GoldTable, features: readonly FeatureRef[], maxBins = MAX_VALUE_BINS): BinningResult {
  if (!Number.isInteger(maxBins) || maxBins < 2 || maxBins > MAX_VALUE_BINS) {
    throw new UserError(`maxBins must be an integer from 2 to ${MAX_VALUE_BINS}, got ${maxBins}`);
  }
  const n = table.rows;
  if (n < 1) throw new UserError('cannot train on an empty table (0 rows)');
  const F = features.length;
  if (F < 1) throw new UserError('cannot train without features');
  const K = CLASS_LABELS.length;

  const stride = (F + 3 + 3) & ~3;
  const records = sharedBytes(stride * n);
  const classCounts = new Array<number>(K).fill(0);
  const classIndex = new Map<string, number>(CLASS_LABELS.map((c, i) => [c, i]));
  if (table.labels.length !== n) throw new UserError(`gold table has ${table.labels.length} labels for ${n} rows`);
  for (let r = 0; r < n; r++) {
    const k = classIndex.get(table.labels[r]);
    if (k === undefined) {
      throw new UserError(`row ${r} (basket ${table.basketIds[r] ?? '?'}) has label ${JSON.stringify(table.labels[r])}; expected one of ${CLASS_LABELS.join(', ')}`);
    }
    records[r * stride + F] = k;
    classCounts[k]++;
  }

  const out = new Uint8Array(n);
  const kinds = new Uint8Array(F);
  const nBins = new Int32Array(F);
  const binLower = new Float64Array(F * BIN_SLOTS);
  const binUpper = new Float64Array(F * BIN_SLOTS);
  const specs: FeatureSpec[] = [];

  features.forEach((feature, f) => {
    if (feature.kind === 'numeric') {
      const column = table.numeric[feature.name];
      if (!column) throw new UserError(`gold table has no numeric column ${feature.name}`);
      if (column.length !== n) throw new UserError(`numeric column ${feature.name} has ${column.length} values for ${n} rows`);
      const edges = binNumeric(column, maxBins, out);
      nBins[f] = edges.upper.length;
      binLower.set(edges.lower, f * BIN_SLOTS);
      binUpper.set(edges.upper, f * BIN_SLOTS);
      specs.push({ name: feature.name, kind: 'numeric' });
    } else if (feature.kind === 'categorical') {
      const column = table.categorical[feature.name];
      if (!column) throw new UserError(`gold table has no categorical column ${feature.name}`);
      if (column.length !== n) throw new UserError(`categorical column ${feature.name} has ${column.length} values for ${n} rows`);
      const categories = binCategorical(column, out);
      kinds[f] = 1;
      nBins[f] = categories.length;
      specs.push({ name: feature.name, kind: 'categorical', categories });
    } else {
      throw new UserError(`feature ${String((feature as FeatureRef).name)} has unknown kind ${String((feature as FeatureRef).kind)}`);
    }
    for (let r = 0, at = f; r < n; r++, at += stride) records[at] = out[r];
  });

  return { data: { rows: n, nFeatures: F, nClasses: K, records, stride, kinds, nBins, binLower, binUpper }, specs, classCounts };
}

/**
 * Quantile bins over the non-missing values: one bin per distinct value when there
 * are at most maxBins of them, otherwise greedy equal-frequency bins over the sorted
 * distinct values (a heavy value gets a bin of its own). Writes codes to `out`.
 */
function binNumeric(column: Float64Array, maxBins: number, out: Uint8Array): { lower: Float64Array; upper: Float64Array } {
  const n = column.length;
  let present = 0;
  for (let r = 0; r < n; r++) if (!Number.isNaN(column[r])) present++;
  const sorted = new Float64Array(present);
  for (let r = 0, j = 0; r < n; r++) {
    const v = column[r];
    if (!Number.isNaN(v)) sorted[j++] = v;
  }
  sorted.sort();

  const lower: number[] = [];
  const upper: number[] = [];
  if (present > 0) {
    let distinct = 1;
    for (let i = 1; i < present; i++) if (sorted[i] !== sorted[i - 1]) distinct++;
    if (distinct <= maxBins) {
      for (let i = 0; i < present; i++) {
        if (i === 0 || sorted[i] !== sorted[i - 1]) {
          lower.push(sorted[i]);
          upper.push(sorted[i]);
        }
      }
    } else {
      let binsLeft = maxBins;
      let remaining = present;
      let target = remaining / binsLeft;
      let acc = 0;
      let binStart = sorted[0];
      let i = 0;
      while (i < present) {
        const v = sorted[i];
        let j = i + 1;
        while (j < present && sorted[j] === v) j++;
        acc += j - i;
        i = j;
        if (acc >= target || i === present) {
          lower.push(binStart);
          upper.push(v);
          remaining -= acc;
          binsLeft--;
          acc = 0;
          target = remaining / Math.max(binsLeft, 1);
          if (i < present) binStart = sorted[i];
        }
      }
    }
  }

  const upperArr = Float64Array.from(upper);
  const last = upperArr.length - 1;
  for (let r = 0; r < n; r++) {
    const v = column[r];
    if (Number.isNaN(v)) {
      out[r] = MISSING_CODE;
      continue;
    }
    // Smallest bin whose upper edge is >= v.
    let lo = 0;
    let hi = last;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (upperArr[mid] >= v) hi = mid;
      else lo = mid + 1;
    }
    out[r] = lo;
  }
  return { lower: Float64Array.from(lower), upper: upperArr };
}

/**
 * Categorical encoding: the sorted distinct non-missing training values (sorted by
 * UTF-16 code units, so the encoding does not depend on locale). Above 255 distinct
 * values only the 255 most frequent are kept; the rest are "unknown", exactly as an
 * unseen value is at serving time.
 */
function binCategorical(column: readonly (string | null)[], out: Uint8Array): string[] {
  const counts = new Map<string, number>();
  for (const v of column) if (v !== null && v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
  let kept = [...counts.keys()];
  if (kept.length > MAX_VALUE_BINS) {
    kept = kept
      .sort((a, b) => counts.get(b)! - counts.get(a)! || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, MAX_VALUE_BINS);
  }
  const categories = kept.sort();
  const code = new Map<string, number>(categories.map((c, i) => [c, i]));
  for (let r = 0; r < column.length; r++) {
    const v = column[r];
    out[r] = v === null || v === undefined ? MISSING_CODE : (code.get(v) ?? MISSING_CODE);
  }
  return categories;
}
