/**
 * The gold features of one basket computed in TypeScript from its raw lines — the
 * serving side of etl/feature-definitions.ts, compiled from the same definitions the
 * ETL's SQL is generated from, with DuckDB's semantics (exact sums of cents, ENUM order
 * for min/max of codes, NULL handling, one rounding to double at the end). A parity test
 * (api/test/raw-lines-parity.test.ts) holds it to gold row by row.
 *
 * Lines arrive as JSON objects keyed by the raw column names; a field is read as the text
 * a CSV would hold (a JSON number as its shortest decimal form) and checked with the
 * ETL's rules and messages (etl/raw-line.ts). The batch scorer (model/batch-score-lines.ts)
 * feeds featuresOfTypedLines lines DuckDB typed with the ETL's schema. Dependency-free.
 */
import { FEATURE_DEFINITIONS, FEATURE_DEFINITIONS_VERSION, FEATURE_SOURCE_COLUMNS, type BasketExpr, type FeatureDefinition, type LineExpr } from './feature-definitions';
import { enumRank, expectedOf, fieldText, INVALID, invalidValueReason, nullableColumn, numericColumn, RAW_SCALE, rawValueTyper, type TypedValue } from './raw-line';
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

/** The columns of a typed line, in order: those the features read (the batch scorer selects these from DuckDB's typed lines). */
export const TYPED_LINE_COLUMNS: readonly RawColumn[] = FEATURE_SOURCE_COLUMNS;

const COLUMN_INDEX: ReadonlyMap<RawColumn, number> = new Map(TYPED_LINE_COLUMNS.map((c, i) => [c, i]));
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
          // A basket-level code repeats on every line: the same value again cannot change the answer.
          if (v === best) continue;
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

/**
 * A line's problems, as LineProblem: a required field missing, or a value its column's
 * rules refuse (the ETL's reason).
 */
function missingField(problems: LineProblem[], line: number, column: RawColumn, v: unknown, fromBasket: boolean): void {
  problems.push({ line, field: column, reason: `${column} is missing; expected ${expectedOf(column)}`, expected: expectedOf(column), value: v ?? null, fromBasket });
}

function invalidField(problems: LineProblem[], line: number, column: RawColumn, v: unknown, fromBasket: boolean): void {
  const text = fieldText(v);
  const reason = text === undefined ? `${column} is ${JSON.stringify(v)}; expected ${expectedOf(column)}` : invalidValueReason(column, text);
  problems.push({ line, field: column, reason, expected: expectedOf(column), value: v, fromBasket });
}

/** Types one line into `out` (TYPED_LINE_COLUMNS), appending its problems; `last`/`lastTyped` remember each column's previous value. */
type LineTyper = (line: RawLineObject, basket: RawLineObject | undefined, index: number, out: Typed, problems: LineProblem[], last: unknown[], lastTyped: TypedValue[]) => void;

/**
 * The line typer, generated once from the schema: per raw column, a named property read
 * (line.SPEND, not line[column]: the 22 reads of a keyed loop share one megamorphic site)
 * and a direct call of that column's typer (etl/raw-line.ts), with what the column needs
 * and nothing else — required or not, kept in the typed line or only checked. The rules
 * stay the raw-line module's; the code only unrolls the loop over the columns.
 */
function compileLineTyper(): LineTyper {
  const body = RAW_COLUMNS.map((column, c) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(column)) throw new Error(`internal: raw column ${column} is not an identifier`);
    const slot = TYPED_LINE_COLUMNS.indexOf(column);
    const keep = (value: string) => (slot >= 0 ? `out[${slot}] = ${value};` : '');
    return `
    v = line.${column}; fromBasket = false;
    if (v === undefined && basket !== undefined) { v = basket.${column}; fromBasket = v !== undefined; }
    if (v === undefined || v === null) { ${REQUIRED[c] ? `missing(problems, index, C[${c}], v, fromBasket);` : keep('null')} }
    else if (v === last[${c}]) { ${keep(`lastTyped[${c}]`)} }
    else { t = T${c}(v); if (t === INVALID) invalid(problems, index, C[${c}], v, fromBasket); else { last[${c}] = v; lastTyped[${c}] = t; ${keep('t')} } }`;
  });
  const typers = RAW_COLUMNS.map((_, c) => `const T${c} = T[${c}];`).join(' ');
  const source = `${typers}
return function typeLine(line, basket, index, out, problems, last, lastTyped) {
  let v, t, fromBasket;${body.join('')}
};`;
  // Generated once from the schema's column names (checked above), never from input.
  return new Function('T', 'C', 'INVALID', 'missing', 'invalid', source)(RAW_COLUMNS.map(rawValueTyper), RAW_COLUMNS, INVALID, missingField, invalidField) as LineTyper;
}

/**
 * Type raw lines with the ETL's rules: every field present is checked; a field no feature
 * reads may be left out (a point of sale has no BASKET_PRICE_SENSITIVITY), a field a
 * feature reads must be there unless the ETL accepts it blank. A field missing from a line
 * is taken from `basket` (basket-level fields given once beside the lines). A typed line
 * keeps only what the features read (TYPED_LINE_COLUMNS). Basket-level fields repeat on
 * every line: a value identical to the previous line's is not typed again.
 */
export function typeRawLines(lines: readonly RawLineObject[], basket?: RawLineObject): { typed: Typed[]; problems: LineProblem[] } {
  const typed: Typed[] = new Array<Typed>(lines.length);
  const problems: LineProblem[] = [];
  const last: unknown[] = new Array<unknown>(RAW_COLUMNS.length);
  const lastTyped: TypedValue[] = new Array<TypedValue>(RAW_COLUMNS.length);
  for (let i = 0; i < lines.length; i++) {
    const out: Typed = new Array<TypedValue>(TYPED_LINE_COLUMNS.length);
    typeLine(lines[i], basket, i, out, problems, last, lastTyped);
    typed[i] = out;
  }
  return { typed, problems };
}

/** Per raw column (schema order): whether a raw-line request must give it — a feature reads it and the ETL refuses it blank. */
const REQUIRED: readonly boolean[] = RAW_COLUMNS.map((c) => FEATURE_SOURCE_COLUMNS.includes(c) && !nullableColumn(c));

/** The raw columns a raw-line request must give (on every line, or once beside the lines). */
export const REQUIRED_LINE_COLUMNS: readonly RawColumn[] = RAW_COLUMNS.filter((_, i) => REQUIRED[i]);

const typeLine: LineTyper = compileLineTyper();

/** Features of a basket given as raw lines, or the problems of its lines (each naming line index and field). */
export function basketFeatures(lines: readonly RawLineObject[], basket?: RawLineObject): { row: FeatureRow; problems?: undefined } | { row?: undefined; problems: LineProblem[] } {
  const { typed, problems } = typeRawLines(lines, basket);
  if (problems.length) return { problems };
  return { row: featuresOfTypedLines(typed) };
}

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
