/** Commander option parsers: a bad value fails with the flag's name and what it expects. */
import { InvalidArgumentError } from 'commander';

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

/** A positive number (seconds, sizes). */
export function positive(name: string) {
  return (value: string): number => {
    const x = Number(value);
    if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`${name} must be a number > 0, got '${value}'`);
    return x;
  };
}
