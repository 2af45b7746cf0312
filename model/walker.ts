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

/*
 * Packed node records: 16 bytes per node, viewed both as Float64Array (nf) and
 * Int32Array (ni), so one cache line serves a whole step. For node g:
 *   nf[2g]      numeric: the threshold. Categorical: 2^52 + m, above every category
 *               code (so `v > t` is false and `v <= t` just says "not missing"),
 *               whose low word ni[4g + LO] is m: the mask of categories going left
 *               (≤ 32 categories) or, with WIDE, the split's offset in catBits.
 *               Leaf: high word 0x7ff00000 (+Inf or NaN, so `v > t` is false for
 *               every v) and low word its payload (soft: offset of its distribution
 *               in `value`; hard: its vote).
 *   ni[4g + 2]  info: feature index | CAT | MISS_RIGHT | WIDE (0 for a leaf)
 *   ni[4g + 3]  left child; right = left + 1 (siblings are laid out adjacently). A
 *               leaf points at itself, so a step from a leaf stays put: walkers can
 *               step several trees or rows at once until none moves.
 */
const FEATURE_MASK = 0xffffff;
const WIDE = 1 << 28;
const MISS_RIGHT = 1 << 29;
const CAT = 1 << 30;
/** Index (within a node's four Int32 words) of the low word of its Float64 threshold. */
const LO = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI = 1 - LO;

/**
 * The hot step: the child of node n that the encoded row at x[xo ..] takes (n itself
 * for a leaf). Branch-free but for wide categorical features, so walking several
 * trees or rows at once overlaps their memory and compare latencies instead of
 * stalling on mispredicted branches. Numeric: NaN fails `v > t`. Categorical: right
 * when the code's bit is clear. Missing (NaN): right iff MISS_RIGHT. A plain function
 * over its arguments, which V8 inlines into the callers' loops.
 */
function step(nf: Float64Array, ni: Int32Array, catBits: Int32Array, x: Float64Array, xo: number, n: number): number {
  const b = n << 2;
  const info = ni[b + 2];
  const v = x[xo + (info & FEATURE_MASK)];
  const t = nf[n << 1];
  const le = v <= t ? 1 : 0;
  let mask = ni[b + LO];
  if ((info & WIDE) !== 0) mask = catBits[mask + ((v | 0) >>> 5)];
  const right = (v > t ? 1 : 0) | ((info >>> 29) & (le ^ 1)) | ((info >>> 30) & le & ~(mask >>> v));
  return ni[b + 3] + (right & 1);
}

/**
 * Leaf (global node index) that the encoded row at x[xo ..] reaches from node n, one
 * tree on its own. Branchy on purpose: with a single chain of dependent loads there is
 * no latency to overlap, and predicted branches cost fewer instructions than `step`.
 */
function walkTree(nf: Float64Array, ni: Int32Array, catBits: Int32Array, x: Float64Array, xo: number, n: number): number {
  for (;;) {
    const b = n << 2;
    const left = ni[b + 3];
    if (left === n) return n;
    const info = ni[b + 2];
    const v = x[xo + (info & FEATURE_MASK)];
    if (info < CAT) {
      // Numeric (no WIDE/CAT bit). NaN fails both tests and goes by MISS_RIGHT.
      n = v > nf[n << 1] ? left + 1 : v <= nf[n << 1] ? left : left + ((info >>> 29) & 1);
    } else if (v !== v) {
      n = left + ((info >>> 29) & 1);
    } else {
      const mask = (info & WIDE) === 0 ? ni[b + LO] : catBits[ni[b + LO] + (v >>> 5)];
      n = left + (~(mask >>> v) & 1);
    }
  }
}

/** Rows per block in predictBatch: the block's encoded rows and sums stay in cache while every tree streams over them. */
const BATCH_BLOCK = 256;

/**
 * Forests with more nodes than this (1 MiB of node records) are walked several trees or
 * rows at once. Measured: a cache-resident forest (the bench's ml-random-forest one,
 * 31k nodes, ~6 steps per tree) is fastest walked one tree at a time with branches
 * (interleaving costs ~10-40% more instructions and steps); a forest that outgrows L2
 * (a gold-trained one, 286k nodes, ~13 steps per tree) is bound by load latency,
 * which interleaving overlaps (single row ~1.5-2x faster, batch ~1.3x).
 */
const INTERLEAVE_MIN_NODES = 65536;

export class CompiledForest {
  readonly classes: readonly string[];
  readonly features: readonly FeatureSpec[];
  readonly sha256: string;
  readonly aggregation: 'soft' | 'hard';
  readonly treeCount: number;
  readonly nodeCount: number;

  private readonly K: number;
  private readonly F: number;
  private readonly soft: boolean;
  private readonly firstToReach: boolean;
  /** Walk four trees (single row) or four rows (batch) at once; see INTERLEAVE_MIN_NODES. */
  private readonly interleave: boolean;
  /** Packed node records as doubles (thresholds); see the layout note above. */
  private readonly nf: Float64Array;
  /** The same records as 32-bit words (masks, payloads, info, left child). */
  private readonly ni: Int32Array;
  /** Per node: K class probabilities (leaves: the prediction; internal: for explain). */
  private readonly value: Float64Array;
  /** Category bitsets of splits on features with more than 32 categories. */
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
    const T = forest.trees.length;
    if (F > FEATURE_MASK) throw new Error(`CompiledForest.compile: ${F} features; at most ${FEATURE_MASK} are supported`);
    this.classes = forest.classes.slice();
    this.features = forest.features;
    this.sha256 = forest.sha256;
    this.aggregation = forest.aggregation;
    this.soft = forest.aggregation === 'soft';
    this.firstToReach = forest.aggregation === 'hard' && forest.voteTieBreak === 'first-to-reach';
    this.K = K;
    this.F = F;
    this.treeCount = T;

    const wide = forest.features.map((f) => f.kind === 'categorical' && f.categories.length > 32);
    let nodes = 0;
    let words = 0;
    for (const t of forest.trees) {
      nodes += t.feature.length;
      for (let i = 0; i < t.feature.length; i++) if (t.feature[i] >= 0 && wide[t.feature[i]]) words += Math.ceil((forest.features[t.feature[i]] as { categories: string[] }).categories.length / 32);
    }
    this.nodeCount = nodes;
    this.interleave = nodes > INTERLEAVE_MIN_NODES;

    // One buffer for the whole forest; each array is a view at an aligned offset.
    const bytes = (n: number, size: number) => Math.ceil((n * size) / 16) * 16;
    const layout = [bytes(nodes, 16), bytes(nodes * K, 8), bytes(words, 4), bytes(T, 4), bytes(F, 1)];
    const buffer = new ArrayBuffer(layout.reduce((a, b) => a + b, 0));
    let at = 0;
    const take = <A>(i: number, make: (off: number) => A): A => {
      const v = make(at);
      at += layout[i];
      return v;
    };
    this.nf = take(0, (o) => new Float64Array(buffer, o, nodes * 2));
    this.ni = new Int32Array(buffer, 0, nodes * 4);
    this.value = take(1, (o) => new Float64Array(buffer, o, nodes * K));
    this.catBits = take(2, (o) => new Int32Array(buffer, o, words));
    this.roots = take(3, (o) => new Int32Array(buffer, o, T));
    this.isCategorical = take(4, (o) => new Uint8Array(buffer, o, F));
    const ni = this.ni;

    this.codeMaps = forest.features.map((f, i) => {
      if (f.kind !== 'categorical') return null;
      this.isCategorical[i] = 1;
      return new Map(f.categories.map((c, code) => [c, code]));
    });
    this.featureIndex = new Map(forest.features.map((f, i) => [f.name, i]));
    this.names = forest.features.map((f) => f.name);

    // Layout per tree: the root, then children in adjacent pairs, pairs allocated in
    // depth-first order of their parents (left subtree first), so a walk stays within
    // few cache lines and right = left + 1 needs no second pointer.
    let maxNodes = 0;
    for (const t of forest.trees) maxNodes = Math.max(maxNodes, t.feature.length);
    const position = new Int32Array(maxNodes); // file index → position within the tree
    const stack = new Int32Array(maxNodes + 1);
    let base = 0;
    let wordBase = 0;
    forest.trees.forEach((tree, t) => {
      const n = tree.feature.length;
      position.fill(-1, 0, n);
      let top = 0;
      let next = 1;
      position[0] = 0;
      stack[top++] = 0;
      while (top > 0) {
        const i = stack[--top];
        if (tree.feature[i] >= 0) {
          const l = tree.left[i];
          const r = tree.right[i];
          if (position[l] >= 0 || position[r] >= 0 || l === r) throw new Error(`CompiledForest.compile: trees[${t}] is not a tree (node ${i}'s children are reached twice); validate it with parseForest`);
          position[l] = next++;
          position[r] = next++;
          stack[top++] = r;
          stack[top++] = l;
        }
      }
      if (next !== n) throw new Error(`CompiledForest.compile: trees[${t}] is not a tree (${n - next} node(s) unreachable); validate it with parseForest`);
      this.roots[t] = base;
      for (let i = 0; i < n; i++) {
        const g = base + position[i];
        const f = tree.feature[i];
        let best = 0;
        for (let k = 0; k < K; k++) {
          const v = tree.value[i * K + k];
          this.value[g * K + k] = v;
          if (v > tree.value[i * K + best]) best = k;
        }
        const w = 4 * g;
        if (f < 0) {
          ni[w + HI] = 0x7ff00000;
          ni[w + LO] = this.soft ? g * K : best;
          ni[w + 2] = 0;
          ni[w + 3] = g;
          continue;
        }
        let info = f | (tree.defaultLeft[i] ? 0 : MISS_RIGHT);
        if (this.isCategorical[f]) {
          info |= CAT;
          if (wide[f]) {
            info |= WIDE;
            const count = Math.ceil((forest.features[f] as { categories: string[] }).categories.length / 32);
            for (let c = 0; c < count; c++) this.catBits[wordBase + c] = tree.catBits[tree.threshold[i] + c] | 0;
            this.nf[2 * g] = 2 ** 52 + wordBase;
            wordBase += count;
          } else {
            this.nf[2 * g] = 2 ** 52 + (tree.catBits[tree.threshold[i]] >>> 0);
          }
        } else {
          this.nf[2 * g] = tree.threshold[i];
        }
        ni[w + 2] = info;
        ni[w + 3] = base + position[tree.left[i]];
      }
      base += n;
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

  /** Class probabilities of an already encoded row (see encode). */
  predictEncoded(x: Float64Array, out: Float64Array = new Float64Array(this.K)): Float64Array {
    this.scoreEncoded(x, out);
    return out;
  }

  /**
   * Fills `out` with probabilities and returns the predicted class index. Four trees
   * are walked at once, stepping until none moves: their node loads overlap, which
   * matters most when the forest is larger than the cache.
   */
  private scoreEncoded(x: Float64Array, out: Float64Array): number {
    const K = this.K;
    const T = this.treeCount;
    const roots = this.roots;
    const nf = this.nf;
    const ni = this.ni;
    const catBits = this.catBits;
    const soft = this.soft;
    const value = this.value;
    out.fill(0, 0, K);
    let winner = 0;
    let winnerCount = 0;
    let t = 0;
    if (!this.interleave) {
      for (; t < T; t++) {
        const payload = ni[(walkTree(nf, ni, catBits, x, 0, roots[t]) << 2) + LO];
        if (soft) {
          for (let k = 0; k < K; k++) out[k] += value[payload + k];
        } else {
          const count = ++out[payload];
          if (count > winnerCount) {
            winnerCount = count;
            winner = payload;
          }
        }
      }
    }
    for (; t < T; t += 4) {
      let a = roots[t];
      let b = t + 1 < T ? roots[t + 1] : a;
      let c = t + 2 < T ? roots[t + 2] : a;
      let d = t + 3 < T ? roots[t + 3] : a;
      for (;;) {
        const na = step(nf, ni, catBits, x, 0, a);
        const nb = step(nf, ni, catBits, x, 0, b);
        const nc = step(nf, ni, catBits, x, 0, c);
        const nd = step(nf, ni, catBits, x, 0, d);
        if (((na ^ a) | (nb ^ b) | (nc ^ c) | (nd ^ d)) === 0) break;
        a = na;
        b = nb;
        c = nc;
        d = nd;
      }
      const m = T - t < 4 ? T - t : 4;
      for (let j = 0; j < m; j++) {
        const payload = ni[((j === 0 ? a : j === 1 ? b : j === 2 ? c : d) << 2) + LO];
        if (soft) {
          for (let k = 0; k < K; k++) out[k] += value[payload + k];
        } else {
          // ml-array-mode's rule: the first class to reach a new maximum count leads.
          const count = ++out[payload];
          if (count > winnerCount) {
            winnerCount = count;
            winner = payload;
          }
        }
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
    const soft = this.soft;
    const interleave = this.interleave;
    const value = this.value;
    const nf = this.nf;
    const ni = this.ni;
    const catBits = this.catBits;

    for (let start = 0; start < n; start += BATCH_BLOCK) {
      const end = Math.min(n, start + BATCH_BLOCK);
      for (let t = 0; t < T; t++) {
        const root = roots[t];
        // Four rows at once down the same tree (see scoreEncoded).
        let r = start;
        for (; interleave && r + 4 <= end; r += 4) {
          const xa = r * F;
          const xb = xa + F;
          const xc = xb + F;
          const xd = xc + F;
          let a = root;
          let b = root;
          let c = root;
          let d = root;
          for (;;) {
            const na = step(nf, ni, catBits, x, xa, a);
            const nb = step(nf, ni, catBits, x, xb, b);
            const nc = step(nf, ni, catBits, x, xc, c);
            const nd = step(nf, ni, catBits, x, xd, d);
            if (((na ^ a) | (nb ^ b) | (nc ^ c) | (nd ^ d)) === 0) break;
            a = na;
            b = nb;
            c = nc;
            d = nd;
          }
          const o = r * K;
          if (soft) {
            const pa = ni[(a << 2) + LO];
            const pb = ni[(b << 2) + LO];
            const pc = ni[(c << 2) + LO];
            const pd = ni[(d << 2) + LO];
            for (let k = 0; k < K; k++) {
              probabilities[o + k] += value[pa + k];
              probabilities[o + K + k] += value[pb + k];
              probabilities[o + 2 * K + k] += value[pc + k];
              probabilities[o + 3 * K + k] += value[pd + k];
            }
          } else {
            probabilities[o + ni[(a << 2) + LO]]++;
            probabilities[o + K + ni[(b << 2) + LO]]++;
            probabilities[o + 2 * K + ni[(c << 2) + LO]]++;
            probabilities[o + 3 * K + ni[(d << 2) + LO]]++;
          }
        }
        for (; r < end; r++) {
          const payload = ni[(walkTree(nf, ni, catBits, x, r * F, root) << 2) + LO];
          const o = r * K;
          if (soft) {
            for (let k = 0; k < K; k++) probabilities[o + k] += value[payload + k];
          } else {
            probabilities[o + payload]++;
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
      const c = this.ni[(walkTree(this.nf, this.ni, this.catBits, x, xo, this.roots[t]) << 2) + LO];
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
    const nf = this.nf;
    const ni = this.ni;
    const catBits = this.catBits;
    for (let t = 0; t < T; t++) {
      const root = this.roots[t];
      for (let k = 0; k < K; k++) bias[k] += value[root * K + k];
      let n = root;
      for (;;) {
        const child = step(nf, ni, catBits, x, 0, n);
        if (child === n) break;
        const f = ni[(n << 2) + 2] & FEATURE_MASK;
        for (let k = 0; k < K; k++) contrib[f * K + k] += value[child * K + k] - value[n * K + k];
        n = child;
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
