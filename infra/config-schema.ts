/**
 * A small typed validator for stack config. Each spec both checks a value and gives
 * its TypeScript type (Infer<typeof spec>), so the schema is written once. Problems
 * are collected, not thrown one by one: a user fixing a stack file sees every wrong
 * key in one run, each with its full key path and the expected type.
 */

export interface Issue {
  /** Full key as the user sets it, e.g. `pricesense:app.maxReplicas` or `pricesense:nodeGroups[1].name`. */
  readonly key: string;
  readonly expected: string;
  readonly got: string;
}

export interface Spec<T> {
  /** What a valid value looks like, for messages and docs. */
  readonly expected: string;
  /** The value, or undefined after recording issues. `value` is undefined when the key is absent. */
  parse(value: unknown, key: string, issues: Issue[]): T | undefined;
}

export type Infer<S> = S extends Spec<infer T> ? T : never;

export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the key is missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `a list (${truncate(JSON.stringify(value))})`;
  if (typeof value === 'object') return `an object (${truncate(JSON.stringify(value))})`;
  return `${typeof value} ${truncate(JSON.stringify(value))}`;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function fail<T>(issues: Issue[], key: string, expected: string, value: unknown): T | undefined {
  issues.push({ key, expected, got: describeValue(value) });
  return undefined;
}

export interface StringOptions {
  readonly pattern?: RegExp;
  /** Human wording of the pattern, e.g. "an IPv4 CIDR such as 10.0.0.0/16". */
  readonly patternText?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly check?: (value: string) => string | undefined;
}

export function str(options: StringOptions = {}): Spec<string> {
  const expected = options.patternText ?? 'a non-empty string';
  return {
    expected,
    parse(value, key, issues) {
      if (typeof value !== 'string') return fail(issues, key, expected, value);
      const min = options.minLength ?? 1;
      if (value.length < min) return fail(issues, key, expected, value);
      if (options.maxLength !== undefined && value.length > options.maxLength) {
        return fail(issues, key, `${expected} of at most ${options.maxLength} characters`, value);
      }
      if (options.pattern && !options.pattern.test(value)) return fail(issues, key, expected, value);
      const problem = options.check?.(value);
      if (problem !== undefined) return fail(issues, key, problem, value);
      return value;
    },
  };
}

export function oneOf<const T extends readonly string[]>(values: T): Spec<T[number]> {
  const expected = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  return {
    expected,
    parse(value, key, issues) {
      if (typeof value !== 'string' || !values.includes(value)) return fail(issues, key, expected, value);
      return value as T[number];
    },
  };
}

export function int(min: number, max: number = Number.MAX_SAFE_INTEGER, allowed?: readonly number[]): Spec<number> {
  const expected = allowed
    ? `an integer, one of ${allowed.join(', ')}`
    : max === Number.MAX_SAFE_INTEGER
      ? `an integer >= ${min}`
      : `an integer from ${min} to ${max}`;
  return {
    expected,
    parse(value, key, issues) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) return fail(issues, key, expected, value);
      if (allowed && !allowed.includes(value)) return fail(issues, key, expected, value);
      return value;
    },
  };
}

/** A finite number within [min, max] (thresholds such as a PSI of 0.25). */
export function num(min: number, max: number): Spec<number> {
  const expected = `a number from ${min} to ${max}`;
  return {
    expected,
    parse(value, key, issues) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) return fail(issues, key, expected, value);
      return value;
    },
  };
}

export function bool(): Spec<boolean> {
  const expected = 'a boolean (true or false)';
  return {
    expected,
    parse(value, key, issues) {
      if (typeof value !== 'boolean') return fail(issues, key, expected, value);
      return value;
    },
  };
}

export function list<T>(item: Spec<T>, minItems = 0, maxItems = Number.MAX_SAFE_INTEGER): Spec<T[]> {
  const bounds = maxItems === Number.MAX_SAFE_INTEGER ? `at least ${minItems}` : `${minItems} to ${maxItems}`;
  const expected = `a list of ${bounds} item(s), each ${item.expected}`;
  return {
    expected,
    parse(value, key, issues) {
      if (!Array.isArray(value) || value.length < minItems || value.length > maxItems) return fail(issues, key, expected, value);
      const before = issues.length;
      const out = value.map((v, i) => item.parse(v, `${key}[${i}]`, issues));
      return issues.length === before ? (out as T[]) : undefined;
    },
  };
}

/** Present or not; absent (undefined) is valid. */
export function optional<T>(spec: Spec<T>): Spec<T | undefined> {
  return {
    expected: `${spec.expected} (optional)`,
    parse(value, key, issues) {
      return value === undefined ? undefined : spec.parse(value, key, issues);
    },
  };
}

type Fields = Record<string, Spec<unknown>>;
export type ObjectOf<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/** An object with exactly these keys: unknown keys are reported (they are usually typos). */
export function obj<F extends Fields>(fields: F): Spec<ObjectOf<F>> {
  const expected = `an object with keys ${Object.keys(fields).join(', ')}`;
  return {
    expected,
    parse(value, key, issues) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(issues, key, expected, value);
      const before = issues.length;
      const record = value as Record<string, unknown>;
      for (const k of Object.keys(record)) {
        if (!(k in fields)) {
          issues.push({ key: `${key}.${k}`, expected: `no such key (known keys: ${Object.keys(fields).join(', ')})`, got: describeValue(record[k]) });
        }
      }
      const out: Record<string, unknown> = {};
      for (const [k, spec] of Object.entries(fields)) out[k] = spec.parse(record[k], `${key}.${k}`, issues);
      return issues.length === before ? (out as ObjectOf<F>) : undefined;
    },
  };
}

export const CIDR_PATTERN = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/(3[0-2]|[12]?\d)$/;

export function cidr(): Spec<string> {
  return str({ pattern: CIDR_PATTERN, patternText: 'an IPv4 CIDR such as 10.0.0.0/16' });
}

/** Deep merge for config layers: objects merge key by key, anything else (lists included) replaces. */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (override === undefined) return base;
  if (isPlainObject(base) && isPlainObject(override)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(override)) out[k] = deepMerge(base[k], v);
    return out;
  }
  return override;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
