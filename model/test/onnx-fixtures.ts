/**
 * Test-only inputs for the ONNX tests: forests from the real trainer (numeric and
 * categorical features, missing values) and probe rows that sit exactly on every
 * numeric threshold and one double either side of it, with every category code,
 * unknown categories and missing values.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ForestFileV1 } from '../format';
import { parseInputSpec } from '../onnx/input-spec';
import { nextDown } from '../import-ml-rf';
import { trainForest } from '../trainer';
import type { RawRow } from '../walker';
import { NOISY_FEATURES, lcg, noisyTable } from './trainer-fixtures';

export const rng = lcg;

export function nextUp(x: number): number {
  return -nextDown(-x);
}

const trained = new Map<string, Promise<ForestFileV1>>();

/**
 * A forest from the histogram trainer on the noisy table (>255 distinct values, missing
 * values, 40 categories), memoized per test file.
 */
export function trainedForest(trees: number, seed: number, rows = trees > 100 ? 1000 : 2000): Promise<ForestFileV1> {
  const key = `${trees}/${seed}/${rows}`;
  if (!trained.has(key)) {
    trained.set(key, trainForest(noisyTable(rows, seed), { features: NOISY_FEATURES, trees, maxDepth: 12, minSamplesLeaf: 2, threads: 2, progress: false, seed, createdAt: '2024-01-01T00:00:00.000Z' }));
  }
  return trained.get(key)!;
}

/**
 * At least `count` raw rows for a forest: rows of a fresh table, then copies of them
 * with one numeric feature set exactly to a split threshold or its neighbouring
 * doubles, one categorical feature set to every category, an unknown one or null.
 */
export function probeRows(forest: ForestFileV1, count: number, seed: number): RawRow[] {
  const rand = rng(seed);
  const table = noisyTable(Math.ceil(count / 3), seed + 1000);
  const base: RawRow[] = [];
  for (let i = 0; i < table.rows; i++) {
    const row: RawRow = {};
    for (const [k, col] of Object.entries(table.numeric)) row[k] = col[i];
    for (const [k, col] of Object.entries(table.categorical)) row[k] = col[i];
    base.push(row);
  }
  const rows = base.slice();
  const thresholds: [string, number][] = [];
  for (const tree of forest.trees) {
    for (let i = 0; i < tree.feature.length; i++) {
      const f = tree.feature[i];
      if (f >= 0 && forest.features[f].kind === 'numeric') thresholds.push([forest.features[f].name, tree.threshold[i]]);
    }
  }
  const pick = () => base[Math.floor(rand() * base.length)];
  for (let j = 0; rows.length < count || j < Math.min(thresholds.length, 4000); j++) {
    if (thresholds.length > 0) {
      const [name, t] = thresholds[j % thresholds.length];
      for (const v of [t, nextUp(t), nextDown(t)]) rows.push({ ...pick(), [name]: v });
    }
    for (const f of forest.features) {
      if (f.kind !== 'categorical') continue;
      const choice = Math.floor(rand() * (f.categories.length + 2));
      rows.push({ ...pick(), [f.name]: choice < f.categories.length ? f.categories[choice] : choice === f.categories.length ? 'never-seen' : null });
    }
    rows.push({ ...pick(), [forest.features[Math.floor(rand() * forest.features.length)].name]: null });
  }
  return rows;
}

/** shared/ sits beside the repository (CI's clone, /work/main) or beside the worktrees' parent. */
export const SKLEARN_FIXTURE = ['../../../shared', '../../../../shared'].map((p) => path.resolve(__dirname, p, 'fixtures/sklearn-rf')).find((d) => existsSync(d)) ?? 'shared/fixtures/sklearn-rf not found beside the repository';

/** The scikit-learn fixture: its spec, ONNX bytes, raw rows as a client sends them, and scikit-learn's answers. */
export function sklearnFixture() {
  const spec = parseInputSpec(JSON.parse(readFileSync(path.join(SKLEARN_FIXTURE, 'spec.json'), 'utf8')), 'spec.json');
  const bytes = readFileSync(path.join(SKLEARN_FIXTURE, 'model.onnx'));
  const [header, ...lines] = readFileSync(path.join(SKLEARN_FIXTURE, 'inputs.csv'), 'utf8').trim().split(/\r?\n/);
  const names = header.split(',');
  // Raw rows as a client sends them: category names, null for missing (-1 in the fixture's encoding).
  const rows = lines.map((line) => {
    const v = line.split(',').map(Number);
    const row: RawRow = {};
    names.forEach((name, j) => {
      const cats = spec.categoricalCodes[name];
      row[name] = v[j] === -1 ? null : cats ? cats[v[j]] : v[j];
    });
    return row;
  });
  const expectedProba = readFileSync(path.join(SKLEARN_FIXTURE, 'expected_proba.csv'), 'utf8').trim().split(/\r?\n/).slice(1).map((l) => l.split(',').map(Number));
  const expectedLabel = readFileSync(path.join(SKLEARN_FIXTURE, 'expected_label.csv'), 'utf8').trim().split(/\r?\n/).slice(1);
  return { spec, bytes, rows, expectedProba, expectedLabel };
}

