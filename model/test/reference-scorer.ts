/**
 * Test-only reference scorer: the forest file's documented semantics written the
 * plain way — recursive, over the JSON document, no typed arrays — so the
 * tree-walker can be checked against an independent reading of docs/model-format.md.
 */
import type { ForestFileV1, TreeV1 } from '../format';

function featureValue(forest: ForestFileV1, f: number, raw: unknown): number | null {
  const spec = forest.features[f];
  if (spec.kind === 'numeric') return typeof raw === 'number' && !Number.isNaN(raw) ? raw : null;
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') return null;
  const code = spec.categories.indexOf(String(raw));
  return code < 0 ? null : code;
}

function goesLeft(forest: ForestFileV1, tree: TreeV1, node: number, row: Record<string, unknown>): boolean {
  const f = tree.feature[node];
  const v = featureValue(forest, f, row[forest.features[f].name]);
  if (v === null) return tree.defaultLeft[node] === 1;
  if (forest.features[f].kind === 'numeric') return v <= tree.threshold[node];
  const word = tree.catBits[tree.threshold[node] + Math.floor(v / 32)];
  return Math.floor(((word < 0 ? word + 2 ** 32 : word) / 2 ** (v % 32)) % 2) === 1;
}

function leafOf(forest: ForestFileV1, tree: TreeV1, node: number, row: Record<string, unknown>): number {
  if (tree.feature[node] === -1) return node;
  return leafOf(forest, tree, goesLeft(forest, tree, node, row) ? tree.left[node] : tree.right[node], row);
}

function dist(forest: ForestFileV1, tree: TreeV1, node: number): number[] {
  const K = forest.classes.length;
  return tree.value.slice(node * K, node * K + K);
}

export function referenceProba(forest: ForestFileV1, row: Record<string, unknown>): { probabilities: number[]; classIndex: number } {
  const K = forest.classes.length;
  const T = forest.trees.length;
  const sum: number[] = new Array(K).fill(0);
  if (forest.aggregation === 'soft') {
    for (const tree of forest.trees) {
      const d = dist(forest, tree, leafOf(forest, tree, 0, row));
      for (let k = 0; k < K; k++) sum[k] += d[k];
    }
    const probabilities = sum.map((s) => s / T);
    return { probabilities, classIndex: probabilities.indexOf(Math.max(...probabilities)) };
  }
  const votes: number[] = [];
  for (const tree of forest.trees) {
    const d = dist(forest, tree, leafOf(forest, tree, 0, row));
    votes.push(d.indexOf(Math.max(...d)));
  }
  for (const v of votes) sum[v]++;
  const top = Math.max(...sum);
  let classIndex = sum.indexOf(top);
  if (forest.voteTieBreak === 'first-to-reach') {
    const seen: number[] = new Array(K).fill(0);
    classIndex = -1;
    for (const v of votes) {
      if (++seen[v] === top) {
        classIndex = v;
        break;
      }
    }
  }
  return { probabilities: sum.map((s) => s / T), classIndex };
}
