/**
 * Feature importance two ways:
 * - impurity-based (mean decrease in Gini impurity, from the trees alone: each split's
 *   weighted impurity decrease credited to its feature, normalised per tree, averaged
 *   over trees — scikit-learn's feature_importances_);
 * - mean absolute Saabas contribution on a labelled split: per row, the walker's
 *   explain() credits each feature with the change of the class distribution along the
 *   paths; the mean over rows of Σ_class |contribution| is how much probability the
 *   feature moves, on real inputs rather than on training impurity.
 * Both are returned as raw values and as shares (summing to 1) so they can be compared.
 */
import type { GoldTable } from '../etl/gold-schema';
import type { ForestFileV1 } from '../model/format';
import { CompiledForest, type RawRow } from '../model/walker';

export interface Importance {
  readonly feature: string;
  readonly value: number;
  /** value / Σ values (0 when all are 0). */
  readonly share: number;
}

function withShares(features: readonly string[], values: ArrayLike<number>): Importance[] {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return features.map((feature, i) => ({ feature, value: values[i], share: total > 0 ? values[i] / total : 0 }));
}

export function impurityImportance(forest: ForestFileV1): Importance[] {
  const K = forest.classes.length;
  const F = forest.features.length;
  const sum = new Float64Array(F);
  const perTree = new Float64Array(F);
  let trees = 0;
  const gini = (value: readonly number[], node: number): number => {
    let s = 1;
    for (let k = 0; k < K; k++) s -= value[node * K + k] ** 2;
    return s;
  };
  for (const tree of forest.trees) {
    perTree.fill(0);
    let treeTotal = 0;
    for (let i = 0; i < tree.feature.length; i++) {
      const f = tree.feature[i];
      if (f < 0) continue;
      const l = tree.left[i];
      const r = tree.right[i];
      const decrease = tree.count[i] * gini(tree.value, i) - tree.count[l] * gini(tree.value, l) - tree.count[r] * gini(tree.value, r);
      if (decrease > 0) {
        perTree[f] += decrease;
        treeTotal += decrease;
      }
    }
    if (treeTotal <= 0) continue; // a single-leaf tree says nothing about features
    for (let f = 0; f < F; f++) sum[f] += perTree[f] / treeTotal;
    trees++;
  }
  if (trees > 0) for (let f = 0; f < F; f++) sum[f] /= trees;
  return withShares(
    forest.features.map((f) => f.name),
    sum,
  );
}

/** One gold row as the raw input a client would send (NaN and null are missing). */
function rowOf(table: GoldTable, i: number): RawRow {
  const row: RawRow = {};
  for (const [name, col] of Object.entries(table.numeric)) row[name] = col[i];
  for (const [name, col] of Object.entries(table.categorical)) row[name] = col[i];
  return row;
}

export interface SaabasImportance {
  readonly importances: Importance[];
  /** Rows explained (the first maxRows of the table). */
  readonly rows: number;
}

export function saabasImportance(forest: ForestFileV1 | CompiledForest, table: GoldTable, maxRows = 5000): SaabasImportance {
  const compiled = forest instanceof CompiledForest ? forest : CompiledForest.compile(forest);
  const names = compiled.features.map((f) => f.name);
  const sums = new Float64Array(names.length);
  const n = Math.min(table.rows, maxRows);
  for (let i = 0; i < n; i++) {
    const { contributions } = compiled.explain(rowOf(table, i));
    for (let f = 0; f < names.length; f++) {
      const c = contributions[names[f]];
      let s = 0;
      for (let k = 0; k < c.length; k++) s += Math.abs(c[k]);
      sums[f] += s;
    }
  }
  if (n > 0) for (let f = 0; f < names.length; f++) sums[f] /= n;
  return { importances: withShares(names, sums), rows: n };
}
