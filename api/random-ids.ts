/**
 * Per-request ids (trace, span, request) cut from a pool of pseudo-random bytes:
 * xoshiro128** seeded once per process from the operating system's CSPRNG. Such ids
 * must be unique, not unguessable — the W3C Trace Context asks for random or
 * pseudo-random trace ids and says they are no security mechanism — and refilling the
 * pool from the CSPRNG (randomFillSync) plus crypto.randomUUID cost about 0.5 µs a
 * request in a profile of the lean /predict path, this about a tenth of that.
 * Cluster workers are separate processes, each with its own seed.
 */
import { randomFillSync } from 'node:crypto';

const WORDS = new Uint32Array(1024);
const POOL = Buffer.from(WORDS.buffer);
let offset = POOL.length;

const state = new Uint32Array(4);
do randomFillSync(state);
while ((state[0] | state[1] | state[2] | state[3]) === 0);

/** Fills `out` with xoshiro128** (Blackman & Vigna) outputs, advancing `state` (4 words, not all zero). */
export function xoshiro128ss(state: Uint32Array, out: Uint32Array): void {
  let [a, b, c, d] = state;
  for (let i = 0; i < out.length; i++) {
    // result = rotl(b * 5, 7) * 9
    const x = Math.imul(b, 5);
    out[i] = Math.imul((x << 7) | (x >>> 25), 9);
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
  }
  state[0] = a;
  state[1] = b;
  state[2] = c;
  state[3] = d;
}

function refill(): void {
  xoshiro128ss(state, WORDS);
  offset = 0;
}

/** `bytes` pseudo-random bytes as lowercase hex. */
export function randomHex(bytes: number): string {
  if (offset + bytes > POOL.length) refill();
  const hex = POOL.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

const VARIANT = ['8', '9', 'a', 'b'];

/** A version-4 UUID (RFC 9562 layout: version nibble 4, variant bits 10). */
export function randomUuid(): string {
  const h = randomHex(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${VARIANT[h.charCodeAt(16) & 3]}${h.slice(17, 20)}-${h.slice(20)}`;
}
