/**
 * The tree-walker: a forest compiled into struct-of-arrays typed arrays spanning the
 * whole forest (one allocation per array per forest), scored with iterative loops —
 * no recursion, no per-node objects, and no allocation per prediction beyond the
 * result. docs/model-format.md describes the semantics implemented here.
 *
 * Encoding raw inputs (encode): numeric features accept JavaScript numbers only
 * (±Infinity included); anything else — null, undefined, NaN, strings, even numeric
 * looking ones — is missing. Categorical features match a value's string form
 * (numbers and booleans are stringified, so 3 matches category "3") against the
 * categories learned at training; a value not listed, or of another type, is unknown
 * and behaves like missing. Missing/unknown follow each node's defaultLeft.
 */
import type { FeatureSpec, ForestFileV1 } from './format';

export type RawRow = Record<string, unknown>;

/** Columnar input: one array per feature name, each with at least `rows` entries. */
export interface ColumnarRows {
  readonly columns: Record<string, ArrayLike<unknown>>;
  readonly rows: number;
}

export interface Prediction {
  label: string;
  classIndex: number;
  probabilities: Float64Array;
}

export interface BatchPrediction {
  labels: string[];
  classIndex: Int32Array;
  /** n×K, row-major: probabilities[r*K + k]. */
  probabilities: Float64Array;
}

export interface Explanation {
  /** Mean over trees of the root's class distribution. */
  bias: Float64Array;
  /** Per feature name: its summed contributions to each class. Features never on the paths get zeros. */
  contributions: Record<string, Float64Array>;
  /** bias + Σ contributions: the mean of the leaf distributions reached. */
  probabilities: Float64Array;
  /**
   * What `probabilities` is: 'probabilities' when it equals predictProba (soft
   * forests); 'mean-leaf-distribution' for hard-vote forests, whose vote fractions
   * are not additive along paths, so the soft-vote surrogate is explained instead.
   */
  explains: 'probabilities' | 'mean-leaf-distribution';
}

/**
 * The hot loop: the leaf (global node index) that the encoded row at x[xo ..] reaches
 * from node n. A plain function over its arguments, which V8 inlines into the callers'
 * loops (measured ~2× faster than the same code as a method reading fields). One load
 * of feature[n] tells leaf (< 0), numeric (< F) or categorical (F + f); the numeric test
 * is written so NaN (missing) needs no branch of its own: it fails `v > t`, so it goes
 * left unless missRight.
 */
function walkTree(
  feature: Int32Array,
  threshold: Float64Array,
  children: Int32Array,
  missRight: Uint8Array,
  catBits: Int32Array,
  F: number,
  x: Float64Array,
  xo: number,
  n: number,
): number {
  let f = feature[n];
  while (f >= 0) {
    let right: number;
    if (f < F) {
      const v = x[xo + f];
      right = (v > threshold[n] ? 1 : 0) | (v !== v ? missRight[n] : 0);
    } else {
      const v = x[xo + f - F];
      right = v !== v ? missRight[n] : ((catBits[(threshold[n] | 0) + (v >>> 5)] >>> (v & 31)) & 1) ^ 1;
    }
    n = children[2 * n + right];
    f = feature[n];
  }
  return n;
}

/** Rows per block in predictBatch: the block's encoded rows and sums stay in cache while every tree streams over them. */
const BATCH_BLOCK = 1024;

export class CompiledForest {
  readonly classes: readonly string[];
  readonly features: readonly FeatureSpec[];
  readonly sha256: string;
  readonly aggregation: 'soft' | 'hard';
  readonly treeCount: number;
  readonly nodeCount: number;

  private readonly K: number;
  private readonly F: number;
  private readonly firstToReach: boolean;
  /**
   * Per node (global index): -1 for a leaf, f for a numeric split on feature f,
   * F + f for a categorical split on feature f — one load tells the walker both.
   */
  private readonly feature: Int32Array;
  /** Per node: numeric threshold, or the catBits offset (global) of a categorical split. */
  private readonly threshold: Float64Array;
  /** Per node: children[2i] left, children[2i+1] right (global indices). */
  private readonly children: Int32Array;
  /** Per node: 1 when missing/unknown values go right (the complement of defaultLeft). */
  private readonly missRight: Uint8Array;
  /** Per node: K class probabilities. */
  private readonly value: Float64Array;
  /** Per node: argmax of value (lowest index on ties): a leaf's vote. */
  private readonly vote: Int32Array;
  private readonly catBits: Int32Array;
  /** Per tree: global index of its root. */
  private readonly roots: Int32Array;
  /** Per feature: 1 when categorical. */
  private readonly isCategorical: Uint8Array;
  private readonly codeMaps: (Map<string, number> | null)[];
  private readonly featureIndex: Map<string, number>;
  private readonly names: string[];
  /** Scratch for single-row calls (JavaScript is single-threaded per isolate). */
  private readonly rowScratch: Float64Array;
  private readonly voteScratch: Float64Array;

  private constructor(forest: ForestFileV1) {
    const K = forest.classes.length;
    const F = forest.features.length;
    this.classes = forest.classes.slice();
    this.features = forest.features;
    this.sha256 = forest.sha256;
    this.aggregation = forest.aggregation;
    this.firstToReach = forest.aggregation === 'hard' && forest.voteTieBreak === 'first-to-reach';
    this.K = K;
    this.F = F;
    this.treeCount = forest.trees.length;

    let nodes = 0;
    let words = 0;
    for (const t of forest.trees) {
      nodes += t.feature.length;
      words += t.catBits.length;
    }
    this.nodeCount = nodes;

    // One buffer for the whole forest; each array is a view at an aligned offset.
    const bytes = (n: number, size: number) => Math.ceil((n * size) / 8) * 8;
    const layout = [
      bytes(nodes, 8), // threshold
      bytes(nodes * K, 8), // value
      bytes(nodes, 4), // feature
      bytes(nodes * 2, 4), // children
      bytes(nodes, 4), // vote
      bytes(words, 4), // catBits
      bytes(forest.trees.length, 4), // roots
      bytes(nodes, 1), // missRight
      bytes(F, 1), // isCategorical
    ];
    const buffer = new ArrayBuffer(layout.reduce((a, b) => a + b, 0));
    let at = 0;
    const take = <T>(i: number, make: (off: number) => T): T => {
      const v = make(at);
      at += layout[i];
      return v;
    };
    this.threshold = take(0, (o) => new Float64Array(buffer, o, nodes));
    this.value = take(1, (o) => new Float64Array(buffer, o, nodes * K));
    this.feature = take(2, (o) => new Int32Array(buffer, o, nodes));
    this.children = take(3, (o) => new Int32Array(buffer, o, nodes * 2));
    this.vote = take(4, (o) => new Int32Array(buffer, o, nodes));
    this.catBits = take(5, (o) => new Int32Array(buffer, o, words));
    this.roots = take(6, (o) => new Int32Array(buffer, o, forest.trees.length));
    this.missRight = take(7, (o) => new Uint8Array(buffer, o, nodes));
    this.isCategorical = take(8, (o) => new Uint8Array(buffer, o, F));

    this.codeMaps = forest.features.map((f, i) => {
      if (f.kind !== 'categorical') return null;
      this.isCategorical[i] = 1;
      return new Map(f.categories.map((c, code) => [c, code]));
    });
    this.featureIndex = new Map(forest.features.map((f, i) => [f.name, i]));
    this.names = forest.features.map((f) => f.name);

    // Nodes are renumbered in depth-first pre-order (a node's left child is the next
    // node), so a walk down the left side stays within the same cache lines.
    let maxNodes = 0;
    for (const t of forest.trees) maxNodes = Math.max(maxNodes, t.feature.length);
    const order = new Int32Array(maxNodes); // pre-order position → file index
    const position = new Int32Array(maxNodes); // file index → pre-order position
    const stack = new Int32Array(maxNodes + 1);
    let base = 0;
    let wordBase = 0;
    forest.trees.forEach((tree, t) => {
      const n = tree.feature.length;
      let top = 0;
      let next = 0;
      stack[top++] = 0;
      while (top > 0) {
        const i = stack[--top];
        order[next] = i;
        position[i] = next++;
        if (tree.feature[i] >= 0) {
          stack[top++] = tree.right[i];
          stack[top++] = tree.left[i];
        }
      }
      if (next !== n) throw new Error(`CompiledForest.compile: trees[${t}] is not a tree (${n - next} node(s) unreachable); validate it with parseForest`);
      this.roots[t] = base;
      for (let p = 0; p < n; p++) {
        const i = order[p];
        const g = base + p;
        const f = tree.feature[i];
        this.feature[g] = f >= 0 && this.isCategorical[f] ? F + f : f;
        this.missRight[g] = tree.defaultLeft[i] ? 0 : 1;
        if (f >= 0) {
          this.children[2 * g] = base + position[tree.left[i]];
          this.children[2 * g + 1] = base + position[tree.right[i]];
          this.threshold[g] = this.isCategorical[f] ? wordBase + tree.threshold[i] : tree.threshold[i];
        } else {
          this.children[2 * g] = -1;
          this.children[2 * g + 1] = -1;
        }
        let best = 0;
        for (let k = 0; k < K; k++) {
          const v = tree.value[i * K + k];
          this.value[g * K + k] = v;
          if (v > tree.value[i * K + best]) best = k;
        }
        this.vote[g] = best;
      }
      for (let w = 0; w < tree.catBits.length; w++) this.catBits[wordBase + w] = tree.catBits[w] | 0;
      base += n;
      wordBase += tree.catBits.length;
    });

    this.rowScratch = new Float64Array(F);
    this.voteScratch = new Float64Array(K);
  }

  /** Compiles a (validated) forest document; see parseForest / readForestFile. */
  static compile(forest: ForestFileV1): CompiledForest {
    return new CompiledForest(forest);
  }

  /** Raw values → feature values: numbers, or categorical codes; missing/unknown → NaN. Never throws. */
  encode(row: RawRow, out: Float64Array): void {
    const F = this.F;
    const names = this.names;
    if (row == null) {
      out.fill(NaN, 0, F);
      return;
    }
    for (let f = 0; f < F; f++) out[f] = this.encodeValue(f, row[names[f]]);
  }

  private encodeValue(f: number, raw: unknown): number {
    const map = this.codeMaps[f];
    if (map === null) return typeof raw === 'number' ? raw : NaN;
    let key: string;
    if (typeof raw === 'string') key = raw;
    else if (typeof raw === 'number' || typeof raw === 'boolean') key = String(raw);
    else return NaN;
    const code = map.get(key);
    return code === undefined ? NaN : code;
  }

  /**
   * One step down from internal node n (split code f, see `feature`) for the encoded
   * row at x[xo ..]. Numeric: NaN fails `v > t`, so it goes left unless missRight.
   */
  private step(x: Float64Array, xo: number, n: number, f: number): number {
    const F = this.F;
    let right: number;
    if (f < F) {
      const v = x[xo + f];
      right = (v > this.threshold[n] ? 1 : 0) | (v !== v ? this.missRight[n] : 0);
    } else {
      const v = x[xo + f - F];
      right = v !== v ? this.missRight[n] : ((this.catBits[(this.threshold[n] | 0) + (v >>> 5)] >>> (v & 31)) & 1) ^ 1;
    }
    return this.children[2 * n + right];
  }

  /** Leaf (global node index) that the encoded row at x[xo ..] reaches from node n. */
  private leaf(x: Float64Array, xo: number, n: number): number {
    return walkTree(this.feature, this.threshold, this.children, this.missRight, this.catBits, this.F, x, xo, n);
  }

  /** Class probabilities of an already encoded row (see encode). */
  predictEncoded(x: Float64Array, out: Float64Array = new Float64Array(this.K)): Float64Array {
    this.scoreEncoded(x, out);
    return out;
  }

  /** Fills `out` with probabilities and returns the predicted class index. */
  private scoreEncoded(x: Float64Array, out: Float64Array): number {
    const K = this.K;
    const T = this.treeCount;
    const roots = this.roots;
    out.fill(0, 0, K);
    if (this.aggregation === 'soft') {
      const value = this.value;
      for (let t = 0; t < T; t++) {
        const base = this.leaf(x, 0, roots[t]) * K;
        for (let k = 0; k < K; k++) out[k] += value[base + k];
      }
      let best = 0;
      for (let k = 0; k < K; k++) {
        out[k] /= T;
        if (out[k] > out[best]) best = k;
      }
      return best;
    }
    const vote = this.vote;
    let winner = 0;
    let winnerCount = 0;
    for (let t = 0; t < T; t++) {
      const c = vote[this.leaf(x, 0, roots[t])];
      const count = ++out[c];
      // ml-array-mode's rule: the first class to reach a new maximum count leads.
      if (count > winnerCount) {
        winnerCount = count;
        winner = c;
      }
    }
    let best = 0;
    for (let k = 0; k < K; k++) {
      out[k] /= T;
      if (out[k] > out[best]) best = k;
    }
    return this.firstToReach ? winner : best;
  }

  /** K class probabilities for one raw row. */
  predictProba(row: RawRow, out: Float64Array = new Float64Array(this.K)): Float64Array {
    this.encode(row, this.rowScratch);
    this.scoreEncoded(this.rowScratch, out);
    return out;
  }

  /** Label, class index and probabilities for one raw row. */
  predict(row: RawRow): Prediction {
    const probabilities = new Float64Array(this.K);
    this.encode(row, this.rowScratch);
    const classIndex = this.scoreEncoded(this.rowScratch, probabilities);
    return { label: this.classes[classIndex], classIndex, probabilities };
  }

  /** Encodes a batch into a row-major n×F matrix. */
  encodeBatch(rows: RawRow[] | ColumnarRows): { x: Float64Array; n: number } {
    const F = this.F;
    if (Array.isArray(rows)) {
      const n = rows.length;
      const x = new Float64Array(n * F);
      for (let r = 0; r < n; r++) {
        const row = rows[r];
        for (let f = 0; f < F; f++) x[r * F + f] = this.encodeValue(f, row == null ? undefined : row[this.names[f]]);
      }
      return { x, n };
    }
    const n = rows.rows;
    const x = new Float64Array(n * F);
    for (let f = 0; f < F; f++) {
      const col = rows.columns[this.features[f].name];
      if (col === undefined || col === null) {
        for (let r = 0; r < n; r++) x[r * F + f] = NaN;
      } else if (this.isCategorical[f] === 0 && col instanceof Float64Array) {
        for (let r = 0; r < n; r++) x[r * F + f] = r < col.length ? col[r] : NaN;
      } else {
        for (let r = 0; r < n; r++) x[r * F + f] = this.encodeValue(f, r < col.length ? col[r] : undefined);
      }
    }
    return { x, n };
  }

  /**
   * Scores many rows: encodes them into one matrix, then walks tree-major within
   * blocks of rows, so each tree's nodes are reused across the block while the
   * block's rows stay in cache.
   */
  predictBatch(rows: RawRow[] | ColumnarRows): BatchPrediction {
    const { x, n } = this.encodeBatch(rows);
    return this.predictBatchEncoded(x, n);
  }

  /** predictBatch over an encoded row-major n×F matrix (see encodeBatch). */
  predictBatchEncoded(x: Float64Array, n: number): BatchPrediction {
    const K = this.K;
    const F = this.F;
    const T = this.treeCount;
    const roots = this.roots;
    const probabilities = new Float64Array(n * K);
    const classIndex = new Int32Array(n);
    const soft = this.aggregation === 'soft';
    const value = this.value;
    const vote = this.vote;
    const feature = this.feature;
    const threshold = this.threshold;
    const children = this.children;
    const missRight = this.missRight;
    const catBits = this.catBits;

    for (let start = 0; start < n; start += BATCH_BLOCK) {
      const end = Math.min(n, start + BATCH_BLOCK);
      for (let t = 0; t < T; t++) {
        const root = roots[t];
        if (soft) {
          for (let r = start; r < end; r++) {
            const base = walkTree(feature, threshold, children, missRight, catBits, F, x, r * F, root) * K;
            const o = r * K;
            for (let k = 0; k < K; k++) probabilities[o + k] += value[base + k];
          }
        } else {
          for (let r = start; r < end; r++) {
            probabilities[r * K + vote[walkTree(feature, threshold, children, missRight, catBits, F, x, r * F, root)]]++;
          }
        }
      }
      for (let r = start; r < end; r++) {
        const o = r * K;
        let best = 0;
        let tied = false;
        for (let k = 1; k < K; k++) {
          if (probabilities[o + k] > probabilities[o + best]) {
            best = k;
            tied = false;
          } else if (probabilities[o + k] === probabilities[o + best]) {
            tied = true;
          }
        }
        // A tied hard vote under 'first-to-reach' depends on the order of the votes, which
        // the counts lost: replay this row tree by tree (ties are rare, so this is cheap).
        classIndex[r] = tied && this.firstToReach ? this.firstToReachWinner(x, r * F) : best;
        for (let k = 0; k < K; k++) probabilities[o + k] /= T;
      }
    }
    const labels = new Array<string>(n);
    for (let r = 0; r < n; r++) labels[r] = this.classes[classIndex[r]];
    return { labels, classIndex, probabilities };
  }

  /** ml-array-mode's winner for the encoded row at x[xo ..]: the first class to reach the final top count. */
  private firstToReachWinner(x: Float64Array, xo: number): number {
    const T = this.treeCount;
    const counts = this.voteScratch;
    counts.fill(0);
    let winner = 0;
    let winnerCount = 0;
    for (let t = 0; t < T; t++) {
      const c = this.vote[this.leaf(x, xo, this.roots[t])];
      const count = ++counts[c];
      if (count > winnerCount) {
        winnerCount = count;
        winner = c;
      }
    }
    return winner;
  }

  /**
   * Saabas explanation of one row: along each tree's path, value(child) − value(parent)
   * is credited to the parent's split feature; the sums are averaged over trees, and
   * bias is the mean root distribution, so bias + Σ contributions equals the mean
   * leaf distribution (the soft probabilities) up to rounding.
   */
  explain(row: RawRow): Explanation {
    const K = this.K;
    const F = this.F;
    const T = this.treeCount;
    const x = this.rowScratch;
    this.encode(row, x);
    const bias = new Float64Array(K);
    const contrib = new Float64Array(F * K);
    const probabilities = new Float64Array(K);
    const value = this.value;
    const feature = this.feature;
    for (let t = 0; t < T; t++) {
      const root = this.roots[t];
      for (let k = 0; k < K; k++) bias[k] += value[root * K + k];
      let n = root;
      let f = feature[n];
      while (f >= 0) {
        const child = this.step(x, 0, n, f);
        const real = f < F ? f : f - F;
        for (let k = 0; k < K; k++) contrib[real * K + k] += value[child * K + k] - value[n * K + k];
        n = child;
        f = feature[n];
      }
      for (let k = 0; k < K; k++) probabilities[k] += value[n * K + k];
    }
    for (let k = 0; k < K; k++) {
      bias[k] /= T;
      probabilities[k] /= T;
    }
    const contributions: Record<string, Float64Array> = {};
    for (let f = 0; f < F; f++) {
      const c = contrib.subarray(f * K, f * K + K);
      for (let k = 0; k < K; k++) c[k] /= T;
      contributions[this.features[f].name] = c;
    }
    return {
      bias,
      contributions,
      probabilities,
      explains: this.aggregation === 'soft' ? 'probabilities' : 'mean-leaf-distribution',
    };
  }

  /** Index of a feature by name, or -1. */
  featureIndexOf(name: string): number {
    return this.featureIndex.get(name) ?? -1;
  }
}
