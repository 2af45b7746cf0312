/** Commander option parsers: a bad value fails with the flag's name and what it expects. */
import { InvalidArgumentError } from 'commander';
import { SETTINGS, type SettingName } from '../core/config';
import { secondsProblem, type SecondsBounds } from '../core/durations';

export function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${value}'`);
    return n;
  };
}

export function fraction(name: string) {
  return (value: string): number => {
    const x = Number(value);
    if (!Number.isFinite(x) || x < 0 || x > 1) throw new InvalidArgumentError(`${name} must be a number from 0 to 1, got '${value}'`);
    return x;
  };
}

/** Seconds within the setting's bounds (core/durations.ts: never past what a timer holds). */
export function seconds(name: string, bounds: SecondsBounds) {
  return (value: string): number => {
    const x = value.trim() === '' ? NaN : Number(value);
    const problem = secondsProblem(name, x, bounds, `'${value}'`);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
    return x;
  };
}

/**
 * The "(default: …)" of a flag backed by a shared setting, written from core/config.ts's table
 * so the help cannot drift from it: what commander's env() would print, without commander
 * reading the variable (README "Configuration" says why). `otherwise` names a default the
 * command computes ('the OS user'); null says there is none (the setting is used only when set).
 */
export function defaultFrom(name: SettingName, otherwise?: string | null): string {
  const spec: { env: string; inFile: boolean; fallback?: unknown } = SETTINGS[name];
  const sources = [`$${spec.env}`, ...(spec.inFile ? [`the configuration file's "${name}"`] : [])].join(', then ');
  const fallback = otherwise === undefined ? (spec.fallback === undefined ? undefined : String(spec.fallback)) : otherwise;
  return `(default: ${sources}${fallback === null || fallback === undefined ? ', when set' : `, else ${fallback}`})`;
}
