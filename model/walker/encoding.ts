/**
 * Input encoding: raw values → the two integers per feature the kernels compare
 * (model/walker/kernels.ts), computed once per row so every split is integer work.
 *
 *   numeric      B = the value's bin (how many of the feature's thresholds are below
 *                it: x <= threshold j exactly when bin <= j), S = 31;
 *                missing: B = MISSING_BIN (above every threshold index), S = 31.
 *   categorical  B = MISSING_BIN, S = the category code; missing or unknown: S = 31
 *                (≤ 31 categories) or S = the category count (more).
 *
 * What counts as missing (docs/model-format.md): numeric features take JavaScript
 * numbers only (±Infinity included); anything else — null, undefined, NaN, strings,
 * even numeric-looking ones — is missing. Categorical features match a value's string
 * form (numbers and booleans are stringified, so 3 matches category "3") against the
 * categories learned at training; a value not listed, or of another type, is unknown
 * and behaves like missing. Encoding never throws.
 */
import type { FeatureSpec } from '../format';
import { MISSING_BIN, NARROW_CATEGORIES, NUMERIC, type PackedForest } from './layout';

export type RawRow = Record<string, unknown>;

/** Columnar input: one array per feature name, each with at least `rows` entries. */
export interface ColumnarRows {
  readonly columns: Record<string, ArrayLike<unknown>>;
  readonly rows: number;
}

export class RowEncoder {
  readonly names: readonly string[];
  private readonly F: number;
  private readonly codeMaps: (Map<string, number> | null)[];
  /** Per feature: S of a missing value. */
  private readonly missingShift: Int32Array;
  private readonly kind: Uint8Array;
  private readonly thresholds: Float64Array;
  private readonly thresholdStart: Int32Array;

  constructor(features: readonly FeatureSpec[], packed: PackedForest) {
    this.F = features.length;
    this.names = features.map((f) => f.name);
    this.kind = packed.featureKind;
    this.thresholds = packed.thresholds;
    this.thresholdStart = packed.thresholdStart;
    this.missingShift = Int32Array.from(features, (f) => (f.kind === 'numeric' || f.categories.length <= NARROW_CATEGORIES ? 31 : f.categories.length));
    this.codeMaps = features.map((f) => (f.kind === 'categorical' ? new Map(f.categories.map((c, code) => [c, code])) : null));
  }

  /** A raw value's feature value: the number, or the category code; NaN when missing or unknown. */
  value(f: number, raw: unknown): number {
    const map = this.codeMaps[f];
    if (map === null) return typeof raw === 'number' ? raw : NaN;
    let key: string;
    if (typeof raw === 'string') key = raw;
    else if (typeof raw === 'number' || typeof raw === 'boolean') key = String(raw);
    else return NaN;
    const code = map.get(key);
    return code === undefined ? NaN : code;
  }

  /** Number of the feature's thresholds below x (x a number that is not NaN). */
  private bin(f: number, x: number): number {
    const t = this.thresholds;
    const start = this.thresholdStart[f];
    let lo = start;
    let hi = this.thresholdStart[f + 1];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (t[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo - start;
  }

  /** Sets B[o + f], S[o + f] for feature f from its feature value v (a number, a code, or NaN). */
  private put(f: number, v: number, B: Int32Array, S: Int32Array, o: number): void {
    if (this.kind[f] === NUMERIC) {
      B[o + f] = v === v ? this.bin(f, v) : MISSING_BIN;
      S[o + f] = 31;
    } else {
      B[o + f] = MISSING_BIN;
      S[o + f] = v === v ? v : this.missingShift[f];
    }
  }

  /** Encodes one raw row into B/S at offset o (F entries each). */
  encodeRow(row: RawRow | null | undefined, B: Int32Array, S: Int32Array, o: number): void {
    const F = this.F;
    if (row === null || row === undefined || typeof row !== 'object') {
      for (let f = 0; f < F; f++) this.put(f, NaN, B, S, o);
      return;
    }
    for (let f = 0; f < F; f++) this.put(f, this.value(f, row[this.names[f]]), B, S, o);
  }

  /** Encodes rows [start, start + count) of an array of raw rows into B/S (row-major, F per row). */
  encodeRows(rows: readonly (RawRow | null | undefined)[], start: number, count: number, B: Int32Array, S: Int32Array): void {
    for (let r = 0; r < count; r++) this.encodeRow(rows[start + r], B, S, r * this.F);
  }

  /** Encodes rows [start, start + count) of columnar input into B/S (row-major, F per row). */
  encodeColumns(input: ColumnarRows, start: number, count: number, B: Int32Array, S: Int32Array): void {
    const F = this.F;
    for (let f = 0; f < F; f++) {
      const col = input.columns[this.names[f]];
      if (col === undefined || col === null) {
        for (let r = 0; r < count; r++) this.put(f, NaN, B, S, r * F);
      } else if (this.kind[f] === NUMERIC && col instanceof Float64Array) {
        for (let r = 0; r < count; r++) {
          const i = start + r;
          const x = i < col.length ? col[i] : NaN;
          B[r * F + f] = x === x ? this.bin(f, x) : MISSING_BIN;
          S[r * F + f] = 31;
        }
      } else if (this.kind[f] !== NUMERIC) {
        // Categorical columns repeat few values: remember the last string's code.
        let lastRaw: unknown = undefined;
        let lastValue = NaN;
        for (let r = 0; r < count; r++) {
          const i = start + r;
          const raw = i < col.length ? col[i] : undefined;
          if (raw !== lastRaw || raw === undefined) {
            lastRaw = raw;
            lastValue = this.value(f, raw);
          }
          this.put(f, lastValue, B, S, r * F);
        }
      } else {
        for (let r = 0; r < count; r++) {
          const i = start + r;
          this.put(f, this.value(f, i < col.length ? col[i] : undefined), B, S, r * F);
        }
      }
    }
  }
}
