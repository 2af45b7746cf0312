/**
 * µs per call of each function, measured in interleaved rounds (so that load from other
 * work on the machine falls on all of them alike), the fastest round of each: the figures
 * are ratios to one another, and the fastest round is the one least disturbed.
 */
export function interleaved(fns: readonly ((i: number) => unknown)[], iterations: number, rounds = 9): number[] {
  for (const fn of fns) for (let i = 0; i < iterations; i++) fn(i);
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, k) => {
      const t0 = performance.now();
      for (let i = 0; i < iterations; i++) fn(i);
      best[k] = Math.min(best[k], ((performance.now() - t0) * 1000) / iterations);
    });
  }
  return best;
}
