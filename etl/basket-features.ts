/**
 * The gold features of one basket computed in TypeScript from its raw lines — the
 * serving side of etl/feature-definitions.ts, compiled from the same definitions the
 * ETL's SQL is generated from, with DuckDB's semantics (exact sums of cents, ENUM order
 * for min/max of codes, NULL handling, one rounding to double at the end). A parity test
 * (api/test/raw-lines-parity.test.ts) holds it to gold row by row.
 *
 * Lines arrive as JSON objects keyed by the raw column names; a field is read as the text
 * a CSV would hold (a JSON number as its shortest decimal form) and checked with the
 * ETL's rules and messages (etl/raw-line.ts). Dependency-free.
 */
import { FEATURE_DEFINITIONS, FEATURE_DEFINITIONS_VERSION, FEATURE_SOURCE_COLUMNS, type BasketExpr, type FeatureDefinition, type LineExpr } from './feature-definitions';
import { enumRank, expectedOf, INVALID, invalidValueReason, nullableColumn, numericColumn, parseRawField, RAW_SCALE, type TypedValue } from './raw-line';
import { RAW_COLUMNS, type RawColumn } from './schema';

/** A line as a client sends it: raw column → value (string, number or null). Other keys are ignored, as the ETL ignores extra CSV columns. */
export type RawLineObject = Readonly<Record<string, unknown>>;

/** A feature row: numeric features as numbers (null when missing), categorical ones as strings or null. */
export type FeatureRow = Record<string, number | string | null>;

export interface LineProblem {
  /** Index of the line in the request's `lines`. */
  readonly line: number;
  readonly field: RawColumn;
  /** The ETL's reject reason for this value (etl/raw-line.ts). */
  readonly reason: string;
  readonly expected: string;
  readonly value: unknown;
  /** The value was given once beside the lines (a basket-level field), not on the line. */
  readonly fromBasket: boolean;
}

type Typed = TypedValue[];
/** A compiled expression: its value for a line (LineFn) or a basket (BasketFn), and how to read it as a double. */
type Value = number | bigint | string | null;
type LineFn = (line: Typed) => Value;
type BasketFn = (lines: readonly Typed[]) => Value;
/** 'double' for a ratio; otherwise the decimal scale of an exact value (SPEND: 2), or 'code' for a string. */
type Scale = number | 'double' | 'code';

const COLUMN_INDEX: ReadonlyMap<RawColumn, number> = new Map(RAW_COLUMNS.map((c, i) => [c, i]));
const POW10 = [1, 10, 100, 1000];

function toDouble(v: Value, scale: Scale): number | null {
  if (v === null) return null;
  if (typeof v === 'string') throw new Error('a code cannot be read as a number');
  if (scale === 'double' || scale === 'code' || scale === 0) return Number(v);
  return Number(v) / POW10[scale];
}

/** a / b as doubles; null when either is null or b is 0 (SQL: a::DOUBLE / NULLIF(b::DOUBLE, 0)). */
function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

function compileLine(e: LineExpr): { fn: LineFn; scale: Scale; rank?: ReadonlyMap<string, number> } {
  if ('column' in e) {
    const i = COLUMN_INDEX.get(e.column)!;
    const rank = enumRank(e.column);
    return { fn: (line) => line[i], scale: numericColumn(e.column) ? (RAW_SCALE[e.column] ?? 0) : 'code', rank };
  }
  const [a, b] = e.ratio.map(compileLine);
  return { fn: (line) => ratio(toDouble(a.fn(line), a.scale), toDouble(b.fn(line), b.scale)), scale: 'double' };
}

function compileBasket(e: BasketExpr): { fn: BasketFn; scale: Scale } {
  if ('count' in e) return { fn: (lines) => lines.length, scale: 0 };
  if ('ratio' in e) {
    const [a, b] = e.ratio.map(compileBasket);
    return { fn: (lines) => ratio(toDouble(a.fn(lines), a.scale), toDouble(b.fn(lines), b.scale)), scale: 'double' };
  }
  if ('distinct' in e) {
    const { fn } = compileLine(e.distinct);
    return {
      fn: (lines) => {
        const seen = new Set<Value>();
        for (const l of lines) {
          const v = fn(l);
          if (v !== null) seen.add(v);
        }
        return seen.size;
      },
      scale: 0,
    };
  }
  if ('sum' in e) {
    const { fn, scale } = compileLine(e.sum);
    if (scale === 'code') throw new Error('sum of a code column');
    return {
      fn: (lines) => {
        let total: number | bigint | null = null;
        for (const l of lines) {
          const v = fn(l) as number | bigint | null;
          if (v === null) continue;
          if (total === null) total = v;
          // Exact while it fits a double's integers; a bigint beyond (a DECIMAL sum is exact in DuckDB).
          else if (typeof total === 'number' && typeof v === 'number' && scale !== 'double') {
            const s: number = total + v;
            total = Number.isSafeInteger(s) ? s : BigInt(total) + BigInt(v);
          } else total = scale === 'double' ? Number(total) + Number(v) : BigInt(total) + BigInt(v);
        }
        return total;
      },
      scale,
    };
  }
  const [arg, wantMin] = 'min' in e ? [e.min, true] : [e.max, false];
  const { fn, scale, rank } = compileLine(arg);
  if (scale === 'code' && !rank) throw new Error('min/max of a free-text column is not defined (DuckDB orders its bytes)');
  return {
    fn: (lines) => {
      let best: Value = null;
      let bestRank = 0;
      for (const l of lines) {
        const v = fn(l);
        if (v === null) continue;
        if (rank) {
          const r = rank.get(v as string)!;
          if (best === null || (wantMin ? r < bestRank : r > bestRank)) {
            best = v;
            bestRank = r;
          }
        } else if (best === null || (wantMin ? v < best : v > best)) best = v;
      }
      return best;
    },
    scale,
  };
}

interface CompiledFeature {
  readonly name: string;
  readonly fn: BasketFn;
  readonly numeric: boolean;
  readonly scale: Scale;
}

function compileFeature(d: FeatureDefinition): CompiledFeature {
  const { fn, scale } = compileBasket(d.value);
  return { name: d.name, fn, numeric: d.kind === 'numeric', scale };
}

const FEATURES: readonly CompiledFeature[] = FEATURE_DEFINITIONS.map(compileFeature);

/** Gold features of typed lines (what the ETL's aggregate computes for the same lines). */
export function featuresOfTypedLines(lines: readonly Typed[]): FeatureRow {
  const row: FeatureRow = {};
  for (const f of FEATURES) {
    const v = f.fn(lines);
    row[f.name] = f.numeric ? toDouble(v, f.scale) : (v as string | null);
  }
  return row;
}

/** The text a CSV field would hold for a JSON value; undefined for a value no CSV field can be (an object, a boolean, a non-finite number). */
function fieldText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  return undefined;
}

/**
 * Type raw lines with the ETL's rules: every field present is checked; a field no feature
 * reads may be left out (a point of sale has no BASKET_PRICE_SENSITIVITY), a field a
 * feature reads must be there unless the ETL accepts it blank. A field missing from a line
 * is taken from `basket` (basket-level fields given once beside the lines).
 */
export function typeRawLines(lines: readonly RawLineObject[], basket?: RawLineObject): { typed: Typed[]; problems: LineProblem[] } {
  const typed: Typed[] = new Array(lines.length);
  const problems: LineProblem[] = [];
  const lastText: (string | undefined)[] = new Array(RAW_COLUMNS.length);
  const lastValue: TypedValue[] = new Array(RAW_COLUMNS.length);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const out: Typed = new Array(RAW_COLUMNS.length).fill(null);
    for (let c = 0; c < RAW_COLUMNS.length; c++) {
      const column = RAW_COLUMNS[c];
      let v = line[column];
      const fromBasket = v === undefined && basket !== undefined && basket[column] !== undefined;
      if (fromBasket) v = basket![column];
      if (v === undefined || v === null) {
        if (!REQUIRED[c]) continue;
        problems.push({ line: i, field: column, reason: `${column} is missing; expected ${expectedOf(column)}`, expected: expectedOf(column), value: v ?? null, fromBasket });
        continue;
      }
      const text = fieldText(v);
      // Basket-level fields repeat on every line: a value equal to the previous line's is not checked again.
      const typedValue = text === undefined ? INVALID : text === lastText[c] ? lastValue[c] : parseRawField(column, text);
      if (text !== undefined && typedValue !== INVALID) {
        lastText[c] = text;
        lastValue[c] = typedValue;
      }
      if (typedValue === INVALID) {
        const reason = text === undefined ? `${column} is ${JSON.stringify(v)}; expected ${expectedOf(column)}` : invalidValueReason(column, text);
        problems.push({ line: i, field: column, reason, expected: expectedOf(column), value: v, fromBasket });
        continue;
      }
      out[c] = typedValue;
    }
    typed[i] = out;
  }
  return { typed, problems };
}

/** Per raw column (schema order): whether a raw-line request must give it — a feature reads it and the ETL refuses it blank. */
const REQUIRED: readonly boolean[] = RAW_COLUMNS.map((c) => FEATURE_SOURCE_COLUMNS.includes(c) && !nullableColumn(c));

/** The raw columns a raw-line request must give (on every line, or once beside the lines). */
export const REQUIRED_LINE_COLUMNS: readonly RawColumn[] = RAW_COLUMNS.filter((_, i) => REQUIRED[i]);

/** Features of a basket given as raw lines, or the problems of its lines (each naming line index and field). */
export function basketFeatures(lines: readonly RawLineObject[], basket?: RawLineObject): { row: FeatureRow; problems?: undefined } | { row?: undefined; problems: LineProblem[] } {
  const { typed, problems } = typeRawLines(lines, basket);
  if (problems.length) return { problems };
  return { row: featuresOfTypedLines(typed) };
}

/** The columns of a typed line, in order: what featuresOfTypedLines reads (the batch scorer selects these from DuckDB's typed lines). */
export const TYPED_LINE_COLUMNS: readonly RawColumn[] = RAW_COLUMNS;

/**
 * Why features cannot be computed from raw lines for a model trained on features of
 * definition version `modelVersion` (a phrase to follow "it"), or undefined when they can:
 * the API's 409 and the batch scorer's refusal say the same.
 */
export function definitionsMismatch(modelVersion: string | undefined): string | undefined {
  if (modelVersion === FEATURE_DEFINITIONS_VERSION) return undefined;
  return modelVersion
    ? `was trained on features from definition version ${modelVersion}`
    : 'records no feature-definition version (trained on gold built before definitions were versioned, or imported)';
}
