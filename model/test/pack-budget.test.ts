/**
 * Packing's memory budget (PackBudget, model/walker/layout.ts; checked by the loader's
 * checkPackMemory): told each stage's bytes before it allocates, it can refuse a forest, and
 * the default pod's budget still packs a forest the size pricesense trains on 1M rows.
 */
import type { FlatForest } from '../forest-flat';
import { checkPackMemory } from '../forest-loader';
import { packForest } from '../walker/layout';

/** 100 complete numeric trees of depth `depth` over 17 features, 3 classes; `distinct` of the leaves' class counts distinct. */
function completeForest(depth: number, distinct: number): FlatForest {
  const T = 100;
  const F = 17;
  const K = 3;
  const per = 2 ** (depth + 1) - 1;
  const N = per * T;
  const internal = ((per - 1) / 2) * T;
  const leaves = N - internal;
  const split = new Uint8Array(N);
  const splitIndex = new Uint16Array(internal);
  let g = 0;
  let i = 0;
  const walk = (d: number): void => {
    if (d === depth) {
      split[g++] = 0;
      return;
    }
    split[g++] = 1 + (i % F);
    splitIndex[i] = i % 255;
    i++;
    walk(d + 1);
    walk(d + 1);
  };
  for (let t = 0; t < T; t++) walk(0);
  const leafCounts = new Uint32Array(leaves * K);
  const kinds = Math.max(1, Math.ceil(leaves * distinct));
  for (let l = 0; l < leaves; l++) {
    const v = l % kinds;
    leafCounts.set([1 + v, 1 + (v >> 3), 1], l * K);
  }
  return {
    classes: K,
    features: Array.from({ length: F }, (_, f) => ({ name: `f${f}`, kind: 'numeric' as const })),
    treeSizes: new Uint32Array(T).fill(per),
    split,
    defaultLeft: new Uint8Array(internal),
    splitIndex,
    thresholds: Array.from({ length: F }, () => Float64Array.from({ length: 255 }, (_, k) => k)),
    subsets: Array.from({ length: F }, () => new Uint32Array(0)),
    distributions: { kind: 'counts', leafCounts },
    depths: new Int32Array(T).fill(depth),
    leaves,
  };
}

describe('packing within a memory budget', () => {
  it('is told each stage before it allocates; a refusal stops it there', () => {
    const flat = completeForest(8, 0.05);
    const stages: number[] = [];
    const before = process.memoryUsage().arrayBuffers;
    packForest(flat, 'soft', (bytes) => void stages.push(bytes));
    // Stage 2 counts everything packing allocates from stage 1 on, garbage included, whatever the GC did meanwhile.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThanOrEqual(stages[1]);
    expect(stages).toHaveLength(2);
    // Stage 2 holds the pre-order arrays and blocking's at once: more than 32 bytes a node.
    expect(stages[1]).toBeGreaterThan(32 * flat.split.length);
    const refusal = new Error('over budget');
    let told = 0;
    expect(() =>
      packForest(flat, 'soft', () => {
        if (++told === 2) throw refusal;
      }),
    ).toThrow(refusal);
    // Every leaf distinct: the table and the distributions take more, and stage 2 says so.
    const distinct: number[] = [];
    packForest(completeForest(8, 1), 'soft', (bytes) => void distinct.push(bytes));
    expect(distinct[1]).toBeGreaterThan(stages[1]);
  });

  it('keeps each distinct leaf distribution once, from counts or from values, reading them back from the source', () => {
    const counted = completeForest(8, 0.05);
    const kinds = Math.ceil(counted.leaves * 0.05);
    const K = counted.classes;
    const N = counted.split.length;
    const internal = N - counted.leaves;
    const fromCounts = packForest(counted, 'soft');
    expect(fromCounts.values.length / K - internal).toBe(kinds);
    // The same forest with its distributions as values (format v1): node g's row, leaves normalized as the counts were.
    const value = new Float64Array(N * K);
    const leafCounts = (counted.distributions as { leafCounts: Uint32Array }).leafCounts;
    let leaf = 0;
    for (let g = 0; g < N; g++) {
      if (counted.split[g] !== 0) {
        value.fill(1 / K, g * K, g * K + K);
        continue;
      }
      const c = leafCounts.subarray(leaf * K, leaf * K + K);
      const total = c.reduce((a, b) => a + b, 0);
      for (let k = 0; k < K; k++) value[g * K + k] = c[k] / total;
      leaf++;
    }
    const fromValues = packForest({ ...counted, distributions: { kind: 'values', value, count: new Float64Array(N).fill(1) } }, 'soft');
    expect(fromValues.values.length / K - internal).toBe(kinds);
    // Both hold the same distinct rows, in the same order (first seen first).
    expect(Array.from(fromValues.values.subarray(0, kinds * K))).toEqual(Array.from(fromCounts.values.subarray(0, kinds * K)));
    // Computed apart: the distinct normalized leaf distributions are exactly those rows, and every leaf points at its own.
    const rowOf = (v: Float64Array, r: number) => Array.from(v.subarray(r * K, r * K + K)).join(',');
    const expected = new Set<string>();
    for (let l = 0; l < counted.leaves; l++) {
      const c = Array.from(leafCounts.subarray(l * K, l * K + K));
      const total = c.reduce((a, b) => a + b, 0);
      expected.add(c.map((x) => x / total).join(','));
    }
    expect(new Set(Array.from({ length: kinds }, (_, r) => rowOf(fromCounts.values, r)))).toEqual(expected);
    const pointed = new Set<string>();
    for (let q = 0; q < N; q++) if (fromCounts.nodes[2 * q + 1] >> 11 === -1) pointed.add(rowOf(fromCounts.values, fromCounts.valueIndex[q]));
    expect(pointed).toEqual(expected);
    // Hard votes: each leaf's vote is the first largest class of its own distribution.
    const hard = packForest(counted, 'hard');
    let leaves = 0;
    let wrongVotes = 0;
    for (let q = 0; q < N; q++) {
      if (hard.nodes[2 * q + 1] >> 11 !== -1) continue;
      leaves++;
      const row = hard.values.subarray(hard.valueIndex[q] * K, hard.valueIndex[q] * K + K);
      if (~hard.nodes[2 * q] !== row.indexOf(Math.max(...row))) wrongVotes++;
    }
    expect([leaves, wrongVotes]).toEqual([counted.leaves, 0]);
  });

  it("fits a forest the size of the 1M-row production forest (3.3M nodes, 5% of leaves distinct) in the default 512Mi pod's budget", () => {
    // Half the pod's memory limit (loaderMemoryMb); infra/app/config.ts sets 512Mi by default.
    const memoryMb = 256;
    const flat = completeForest(14, 0.05);
    expect(flat.split.length).toBeGreaterThan(2_900_000);
    // Held meanwhile (parseAndPack): the document, a trained format v2 forest at about 5 bytes a node, and its decoded buffers.
    const held = 2 * 5 * flat.split.length;
    const packed = packForest(flat, 'soft', checkPackMemory('1M-row forest', flat, held, memoryMb));
    expect(packed.nodes.length).toBe(2 * flat.split.length);
    // And a budget a quarter smaller refuses it, naming the forest and the budget.
    expect(() => packForest(flat, 'soft', checkPackMemory('1M-row forest', flat, held, 192))).toThrow(
      /^1M-row forest: a forest of 3,276,700 nodes and 3 classes needs about \d+ MiB to pack for scoring, more than this service's load budget of 192 MiB/,
    );
  });
});
