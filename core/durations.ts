/**
 * Bounds for durations that end up in a timer. Node clamps any delay above 2^31-1 ms
 * (~24.9 days) to 1 ms with only a TimeoutOverflowWarning, so an oversized interval turns
 * into a tight loop (a registry polled, a lease renewed, SageMaker asked, every millisecond).
 */
import { UserError } from './errors';

export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A seconds setting's bounds; `max` is what makes sense for it, never past what a timer can hold. */
export interface SecondsBounds {
  readonly min: number;
  readonly max: number;
  /** Integers only (a lease's TTL is stored as whole seconds). */
  readonly integer?: boolean;
}

/** The message for a seconds value outside its bounds: what, the value (as `shown`: a flag's text), what was expected. */
export function secondsProblem(what: string, value: number, bounds: SecondsBounds, shown = String(value)): string | undefined {
  const max = Math.min(bounds.max, MAX_TIMER_MS / 1000);
  const ok = Number.isFinite(value) && value >= bounds.min && value <= max && (!bounds.integer || Number.isInteger(value));
  if (ok) return undefined;
  return `${what} must be ${bounds.integer ? 'a whole number' : 'a number'} of seconds from ${bounds.min} to ${max.toLocaleString('en-US')} (${humanSeconds(max)}), got ${shown}`;
}

/** Throws a UserError naming the setting and its bounds when value is outside them. */
export function checkSeconds(what: string, value: number, bounds: SecondsBounds): number {
  const problem = secondsProblem(what, value, bounds);
  if (problem !== undefined) throw new UserError(problem);
  return value;
}

/**
 * For a library option in milliseconds that feeds a timer (no flag of its own: the CLI and the
 * API's configuration bound the settings users give): a whole number from 1 to
 * MAX_TIMER_MS, or a RangeError — a caller's mistake, never blamed on a model or a file.
 */
export function checkTimerMs(what: string, ms: number): number {
  if (Number.isInteger(ms) && ms >= 1 && ms <= MAX_TIMER_MS) return ms;
  throw new RangeError(`${what} must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS.toLocaleString('en-US')} (${humanSeconds(MAX_TIMER_MS / 1000)}: Node runs a timer set longer after 1 ms), got ${String(ms)}`);
}

function humanSeconds(s: number): string {
  const [n, unit] = s >= 86_400 ? [s / 86_400, 'day'] : s >= 3_600 ? [s / 3_600, 'hour'] : s >= 60 ? [s / 60, 'minute'] : [s, 'second'];
  const rounded = +n.toFixed(1);
  return `${rounded} ${unit}${rounded === 1 ? '' : 's'}`;
}
