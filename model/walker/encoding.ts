/**
 * Input encoding: raw values → one int32 per feature, v = (b << 5) | s, the pair the
 * kernels compare (model/walker/kernels.ts), computed once per row so every split is
 * integer work. A row has F + 1 ints: the last is the constant slot leaves test.
 *
 *   numeric             b = the value's bin (how many of the feature's thresholds
 *                       are below it: x <= threshold j exactly when bin <= j), s = 31;
 *                       missing: b = MISSING_BIN (above every threshold index).
 *   narrow categorical  b = MISSING_BIN, s = the category code; missing or unknown: 31.
 *   wide categorical    b = the category code, s = code & 31; missing or unknown: the
 *                       category count C in both (bit C of a split's bitset says
 *                       where missing goes).
 *
 * What counts as missing (docs/model-format.md): numeric features take JavaScript
 * numbers only (±Infinity included); anything else — null, undefined, NaN, strings,
 * even numeric-looking ones — is missing. Categorical features match a value's string
 * form (numbers and booleans are stringified, so 3 matches category "3") against the
 * categories learned at training; a value not listed, or of another type, is unknown
 * and behaves like missing. Encoding never throws.
 */
import type { FeatureSpec } from '../format';
import { MISSING_BIN } from './kernels';
import { NARROW, NUMERIC, type PackedForest } from './layout';

export type RawRow = Record<string, unknown>;

/** Columnar input: one array per feature name, each with at least `rows` entries. */
export interface ColumnarRows {
  readonly columns: Record<string, ArrayLike<unknown>>;
  readonly rows: number;
}

const MISSING_NUMERIC = (MISSING_BIN << 5) | 31;
const MISSING_NARROW = (MISSING_BIN << 5) | 31;

/** The encoding of a wide categorical feature's code (the category count for missing). */
function wide(code: number): number {
  return (code << 5) | (code & 31);
}

export class RowEncoder {
  readonly names: readonly string[];
  /** Ints per encoded row: one per feature and the constant slot. */
  readonly stride: number;
  private readonly F: number;
  private readonly codeMaps: (Map<string, number> | null)[];
  /** Per feature: the encoding of a missing value. */
  private readonly missing: Int32Array;
  private readonly kind: Uint8Array;
  private readonly thresholds: Float64Array;
  private readonly thresholdStart: Int32Array;

  constructor(features: readonly FeatureSpec[], packed: PackedForest) {
    this.F = features.length;
    this.stride = this.F + 1;
    this.names = features.map((f) => f.name);
    this.kind = packed.featureKind;
    this.thresholds = packed.thresholds;
    this.thresholdStart = packed.thresholdStart;
    this.missing = Int32Array.from(features, (f, i) => (f.kind === 'numeric' ? MISSING_NUMERIC : this.kind[i] === NARROW ? MISSING_NARROW : wide(f.categories.length)));
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

  /**
   * Number of the feature's thresholds below x (x a number that is not NaN): a binary
   * search whose step is arithmetic (-(a < b) is 0 or -1), twice as fast as one that
   * branches on unpredictable comparisons.
   */
  private bin(f: number, x: number): number {
    const t = this.thresholds;
    const start = this.thresholdStart[f];
    let base = start;
    let len = this.thresholdStart[f + 1] - start;
    while (len > 1) {
      const half = len >>> 1;
      base += half & -(t[base + half - 1] < x);
      len -= half;
    }
    return base - start + (len === 1 && t[base] < x ? 1 : 0);
  }

  /** The encoding of feature f's value v (a number, a code, or NaN). */
  private encode(f: number, v: number): number {
    if (v !== v) return this.missing[f];
    switch (this.kind[f]) {
      case NUMERIC:
        return (this.bin(f, v) << 5) | 31;
      case NARROW:
        return (MISSING_BIN << 5) | v;
      default:
        return wide(v);
    }
  }

  /** Encodes one raw row into V at offset o (stride ints). */
  encodeRow(row: RawRow | null | undefined, V: Int32Array, o: number): void {
    const F = this.F;
    const valid = row !== null && row !== undefined && typeof row === 'object';
    for (let f = 0; f < F; f++) V[o + f] = valid ? this.encode(f, this.value(f, row[this.names[f]])) : this.missing[f];
    V[o + F] = 31;
  }

  /** Encodes rows [start, start + count) of an array of raw rows into V (row-major, stride per row). */
  encodeRows(rows: readonly (RawRow | null | undefined)[], start: number, count: number, V: Int32Array): void {
    for (let r = 0; r < count; r++) this.encodeRow(rows[start + r], V, r * this.stride);
  }

  /**
   * Encodes rows [start, start + count) of feature values — a row-major matrix of F
   * values per row, as value() gives them (numbers; category codes; NaN for missing) —
   * into V. A categorical value that is not one of the feature's codes is unknown.
   */
  encodeValues(x: Float64Array, start: number, count: number, V: Int32Array): void {
    const F = this.F;
    const stride = this.stride;
    for (let r = 0; r < count; r++) {
      const o = (start + r) * F;
      for (let f = 0; f < F; f++) {
        let v = x[o + f];
        if (this.kind[f] !== NUMERIC && !(Number.isInteger(v) && v >= 0 && v < this.codeMaps[f]!.size)) v = NaN;
        V[r * stride + f] = this.encode(f, v);
      }
      V[r * stride + F] = 31;
    }
  }

  /** Encodes rows [start, start + count) of columnar input into V (row-major, stride per row). */
  encodeColumns(input: ColumnarRows, start: number, count: number, V: Int32Array): void {
    const F = this.F;
    const stride = this.stride;
    for (let r = 0; r < count; r++) V[r * stride + F] = 31;
    for (let f = 0; f < F; f++) {
      const col = input.columns[this.names[f]];
      if (col === undefined || col === null) {
        for (let r = 0; r < count; r++) V[r * stride + f] = this.missing[f];
      } else if (this.kind[f] === NUMERIC && col instanceof Float64Array) {
        for (let r = 0; r < count; r++) {
          const i = start + r;
          const x = i < col.length ? col[i] : NaN;
          V[r * stride + f] = x === x ? (this.bin(f, x) << 5) | 31 : MISSING_NUMERIC;
        }
      } else if (this.kind[f] !== NUMERIC) {
        // Categorical columns repeat few values: remember the last one's encoding.
        let lastRaw: unknown = undefined;
        let last = this.missing[f];
        for (let r = 0; r < count; r++) {
          const i = start + r;
          const raw = i < col.length ? col[i] : undefined;
          if (raw !== lastRaw || raw === undefined) {
            lastRaw = raw;
            last = this.encode(f, this.value(f, raw));
          }
          V[r * stride + f] = last;
        }
      } else {
        for (let r = 0; r < count; r++) {
          const i = start + r;
          V[r * stride + f] = this.encode(f, this.value(f, i < col.length ? col[i] : undefined));
        }
      }
    }
  }
}
