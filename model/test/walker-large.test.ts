import { CompiledForest } from '../walker';
import { referenceProba } from './reference-scorer';
import { randomForest, randomRow, rng } from './random-forest-fixture';

/**
 * Forests too large for the cache are walked four trees (single row) or four rows
 * (batch) at once — a separate code path from the small forests of walker.test.ts.
 * These forests are large enough to take it (asserted), and must still agree exactly
 * with the reference, including trees and rows that finish at different depths.
 */
describe('CompiledForest on forests large enough to be walked interleaved', () => {
  it.each([
    ['soft', {}],
    ['hard, lowest-index', { aggregation: 'hard' as const, voteTieBreak: 'lowest-index' as const, classes: 2 }],
    ['hard, first-to-reach', { aggregation: 'hard' as const, voteTieBreak: 'first-to-reach' as const, classes: 2 }],
  ])('%s: exactly equal to the reference scorer', (_name, options) => {
    // 41 trees: not a multiple of four, so the last group of trees is partial.
    const forest = randomForest(31, { trees: 41, maxDepth: 16, ...options });
    const cf = CompiledForest.compile(forest);
    expect(cf.nodeCount).toBeGreaterThan(65536);
    const K = forest.classes.length;
    const rand = rng(4242);
    // 258 rows: one full block plus a remainder that is not a multiple of four.
    const rows = Array.from({ length: 258 }, () => randomRow(rand, forest.features));
    const batch = cf.predictBatch(rows);
    const got: unknown[] = [];
    const want: unknown[] = [];
    rows.forEach((row, r) => {
      const ref = referenceProba(forest, row);
      const single = cf.predict(row);
      got.push([Array.from(single.probabilities), single.classIndex], [Array.from(batch.probabilities.subarray(r * K, r * K + K)), batch.classIndex[r]]);
      want.push([ref.probabilities, ref.classIndex], [ref.probabilities, ref.classIndex]);
    });
    expect(got).toEqual(want);
  });
});
