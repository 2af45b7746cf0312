import { randomHex, randomUuid, xoshiro128ss } from '../random-ids';

describe('random ids', () => {
  it('are version-4 UUIDs, all different, over many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) {
      const id = randomUuid();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(50_000);
  });

  it('spread evenly over every hex digit at every position (no stuck bits in the generator)', () => {
    const n = 20_000;
    const counts = Array.from({ length: 16 }, () => new Array<number>(16).fill(0));
    for (let i = 0; i < n; i++) {
      const h = randomHex(8);
      for (let p = 0; p < 16; p++) counts[p][parseInt(h[p], 16)]++;
    }
    // Expected 1,250 per digit and position; a stuck or biased bit would halve or double some.
    for (const perPosition of counts) for (const c of perPosition) expect(c).toBeGreaterThan(1000);
    for (const perPosition of counts) for (const c of perPosition) expect(c).toBeLessThan(1500);
  });
});

describe('xoshiro128**', () => {
  it('gives the reference outputs (Blackman & Vigna) for seed [1, 2, 3, 4]', () => {
    const state = Uint32Array.from([1, 2, 3, 4]);
    const out = new Uint32Array(6);
    xoshiro128ss(state, out);
    expect(Array.from(out)).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });
});
