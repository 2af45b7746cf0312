/**
 * Seeded pseudo-random numbers for training: xoshiro128** (32-bit state words, so
 * every operation stays in fast small-integer arithmetic — no BigInt), seeded through
 * splitmix32. Each tree gets its own generator, derived from the forest seed and the
 * tree index only, which is what makes a forest independent of the thread count.
 */

/** One splitmix32 step: a well-mixed 32-bit word from a 32-bit counter. */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Seeds the four state words from `seed` and `stream` (e.g. a tree index). */
  constructor(seed: number, stream = 0) {
    // Fold the (possibly > 32-bit) seed and the stream into distinct splitmix inputs.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x100000000) >>> 0;
    let s = splitmix32(lo ^ splitmix32(hi ^ splitmix32(stream + 0x632be5ab)));
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      return splitmix32(s);
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1; // the all-zero state is a fixed point
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9);
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result >>> 0;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32 (multiply-shift; bias < n / 2^32). */
  nextInt(n: number): number {
    return Math.floor((this.nextU32() * n) / 0x100000000);
  }

  /** Uniform float in [0, 1). */
  nextFloat(): number {
    return this.nextU32() / 0x100000000;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
