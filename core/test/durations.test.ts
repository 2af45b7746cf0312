import { UserError } from '../errors';
import { checkSeconds, checkTimerMs, MAX_TIMER_MS, secondsProblem } from '../durations';

describe('durations that feed a timer', () => {
  it('a seconds setting names itself, the value as given and its bounds, capped at what a timer holds', () => {
    expect(secondsProblem('--poll-seconds', 30, { min: 1, max: 3600 })).toBeUndefined();
    expect(secondsProblem('--poll-seconds', 25 * 86_400, { min: 1, max: 1e12 }, '25d')).toBe(
      '--poll-seconds must be a number of seconds from 1 to 2,147,483.647 (24.9 days), got 25d',
    );
    expect(secondsProblem('--lease-ttl', 1.5, { min: 1, max: 60, integer: true })).toMatch(/must be a whole number of seconds from 1 to 60 \(1 minute\), got 1\.5/);
    for (const bad of [NaN, Infinity, -1, 0]) expect(() => checkSeconds('x', bad, { min: 1, max: 10 })).toThrow(UserError);
  });

  it.each([0, -5, 1.5, NaN, Infinity, MAX_TIMER_MS + 1, 25 * 86_400_000])('a library option in milliseconds refuses %p', (ms) => {
    expect(() => checkTimerMs('intervalMs', ms)).toThrow(new RangeError(`intervalMs must be a whole number of milliseconds from 1 to 2,147,483,647 (24.9 days: Node runs a timer set longer after 1 ms), got ${String(ms)}`));
  });

  it('accepts the edges', () => {
    expect(checkTimerMs('intervalMs', 1)).toBe(1);
    expect(checkTimerMs('intervalMs', MAX_TIMER_MS)).toBe(MAX_TIMER_MS);
  });
});
