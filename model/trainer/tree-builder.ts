/**
 * Grows one classification tree on binned data: the core of the histogram
 * RandomForest trainer (docs/training.md explains the choices).
 *
 * - Bootstrap as integer weights: cnt[r] = how often row r was drawn. The drawn rows'
 *   records (codes, label, count) are copied into a per-tree buffer, and a node owns
 *   records [start..end) of it: a split moves the records themselves (stable
 *   partition), so every pass over a node reads memory sequentially instead of
 *   chasing row indices around a large table.
 * - Every open node has exact Int32 class histograms for all features (F x 256 bins x
 *   K classes). They are filled while the parent's rows are partitioned — the row's
 *   record is in cache at that moment — for the smaller child only; the larger child's
 *   histograms are the parent's minus the smaller child's (sibling subtraction). Small
 *   nodes, where scanning is cheaper than subtracting 256-bin histograms, are scanned.
 * - Histogram buffers are pooled and always all-zero when free: a small node is
 *   cleaned by revisiting its rows, so it costs O(rows), not O(bins).
 * - Per-node feature subsampling only chooses which features are *searched*; Gini
 *   impurity over class-weighted counts; numeric splits sweep bins in order,
 *   categorical splits sweep categories ordered by each class's share (one-vs-rest
 *   orderings); missing values are tried on both sides.
 *
 * Every random choice comes from the tree's own PRNG stream, so a tree is a pure
 * function of (data, parameters, seed, tree index).
 */
import { BIN_SLOTS, MISSING_CODE, type BinnedData } from './binning';
import { Xoshiro128 } from './prng';

export interface TreeParams {
  readonly maxDepth: number;
  readonly minSamplesSplit: number;
  readonly minSamplesLeaf: number;
  readonly minImpurityDecrease: number;
  /** Features searched per node (already resolved from 'sqrt' etc.), 1..F. */
  readonly maxFeatures: number;
  /** Weight per class, in class order; all > 0. */
  readonly classWeight: readonly number[];
  readonly bootstrap: boolean;
  /** Rows drawn per tree (with replacement) when bootstrapping. */
  readonly sampleSize: number;
  readonly seed: number;
}

/** One tree as typed arrays (format v1 semantics, see model/format.ts). */
export interface BuiltTree {
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly defaultLeft: Uint8Array;
  readonly value: Float64Array;
  readonly count: Float64Array;
  readonly catBits: Uint32Array;
}

/** Relative gain below which a split counts as no improvement (float noise). */
const GAIN_EPSILON = 1e-12;

interface Pending {
  readonly id: number;
  readonly start: number;
  readonly end: number;
  readonly depth: number;
  hist: Int32Array | null;
}

class NodeStore {
  capacity = 0;
  size = 0;
  feature = new Int32Array(0);
  threshold = new Float64Array(0);
  left = new Int32Array(0);
  right = new Int32Array(0);
  defaultLeft = new Uint8Array(0);
  /** Raw (bootstrap-weighted, not class-weighted) class counts, K per node. */
  classCounts = new Float64Array(0);
  catBits: number[] = [];

  constructor(private readonly K: number) {
    this.grow(1024);
  }

  private grow(capacity: number): void {
    const K = this.K;
    const size = this.size;
    const feature = new Int32Array(capacity);
    feature.set(this.feature.subarray(0, size));
    const threshold = new Float64Array(capacity);
    threshold.set(this.threshold.subarray(0, size));
    const left = new Int32Array(capacity);
    left.set(this.left.subarray(0, size));
    const right = new Int32Array(capacity);
    right.set(this.right.subarray(0, size));
    const defaultLeft = new Uint8Array(capacity);
    defaultLeft.set(this.defaultLeft.subarray(0, size));
    const classCounts = new Float64Array(capacity * K);
    classCounts.set(this.classCounts.subarray(0, size * K));
    Object.assign(this, { feature, threshold, left, right, defaultLeft, classCounts, capacity });
  }

  add(counts: ArrayLike<number>): number {
    if (this.size === this.capacity) this.grow(this.capacity * 2);
    const id = this.size++;
    this.feature[id] = -1;
    this.threshold[id] = 0;
    this.left[id] = -1;
    this.right[id] = -1;
    this.defaultLeft[id] = 0;
    for (let k = 0; k < this.K; k++) this.classCounts[id * this.K + k] = counts[k];
    return id;
  }
}

export class TreeBuilder {
  private readonly N: number;
  private readonly F: number;
  private readonly K: number;
  private readonly S: number;
  private readonly rec: Uint8Array;
  private readonly kinds: Uint8Array;
  private readonly nBins: Int32Array;
  private readonly binLower: Float64Array;
  private readonly binUpper: Float64Array;
  private readonly cw: Float64Array;
  private readonly params: TreeParams;

  private readonly cnt: Int32Array;
  /** Per-tree records of the drawn rows (stride S; count at F+1, F+2), and word views for moves. */
  private readonly work: Uint8Array;
  private readonly work32: Int32Array;
  private readonly scratch32: Int32Array;
  private readonly W: number;
  private readonly pool: Int32Array[] = [];
  /** Histogram slots per feature (BIN_SLOTS * K). */
  private readonly SK: number;
  /** Slots a whole-histogram subtraction or clear touches (used bins + missing, all features). */
  private readonly usedSlots: number;
  private readonly perm: Int32Array;
  private store: NodeStore;

  // Scratch for split search (no allocation per node).
  private readonly mark = new Uint8Array(BIN_SLOTS);
  private readonly present = new Int32Array(BIN_SLOTS);
  private readonly sortKey = new Float64Array(BIN_SLOTS);
  private readonly goLeft = new Uint8Array(BIN_SLOTS);
  private readonly acc: Float64Array;
  private readonly totals: Float64Array;
  private readonly missing: Float64Array;

  // The best split found so far at the current node.
  private bestScore = 0;
  private bestFeature = -1;
  private bestBin = -1;
  private bestNextBin = -1;
  private bestOrderClass = -1;
  private bestMissingLeft = 0;
  private readonly bestLeftCounts: Float64Array;

  constructor(data: BinnedData, params: TreeParams) {
    this.params = params;
    this.N = data.rows;
    this.F = data.nFeatures;
    this.K = data.nClasses;
    this.S = data.stride;
    this.rec = data.records;
    this.kinds = data.kinds;
    this.nBins = data.nBins;
    this.binLower = data.binLower;
    this.binUpper = data.binUpper;
    this.cw = Float64Array.from(params.classWeight);
    this.cnt = new Int32Array(this.N);
    this.W = this.S >> 2;
    const bytes = Math.max(4, this.N * this.S);
    this.work = new Uint8Array(bytes);
    this.work32 = new Int32Array(this.work.buffer);
    this.scratch32 = new Int32Array(bytes >> 2);
    this.SK = BIN_SLOTS * this.K;
    let used = 0;
    for (let f = 0; f < this.F; f++) used += (this.nBins[f] + 1) * this.K;
    this.usedSlots = used;
    this.perm = new Int32Array(this.F);
    this.acc = new Float64Array(this.K);
    this.totals = new Float64Array(this.K);
    this.missing = new Float64Array(this.K);
    this.bestLeftCounts = new Float64Array(this.K);
    this.store = new NodeStore(this.K);
  }

  build(treeIndex: number): BuiltTree {
    const { N, K, params } = this;
    const rng = new Xoshiro128(params.seed, treeIndex);
    const cnt = this.cnt;
    if (params.bootstrap) {
      cnt.fill(0);
      for (let s = 0; s < params.sampleSize; s++) cnt[rng.nextInt(N)]++;
    } else {
      cnt.fill(1);
    }
    const { rec, S, F, W, work, work32 } = this;
    const rec32 = new Int32Array(rec.buffer, rec.byteOffset, (N * S) >> 2);
    let n = 0;
    const rootCounts = new Float64Array(K);
    for (let r = 0; r < N; r++) {
      const c = cnt[r];
      if (c > 0) {
        if (c > 0xffff) throw new Error(`row ${r} was drawn ${c} times; bootstrap counts above 65535 are not supported (lower maxSamples)`);
        const dst = n * W;
        for (let q = 0, src = r * W; q < W; q++) work32[dst + q] = rec32[src + q];
        work[n * S + F + 1] = c & 0xff;
        work[n * S + F + 2] = c >>> 8;
        rootCounts[rec[r * S + F]] += c;
        n++;
      }
    }
    let totalWeight = 0;
    for (let k = 0; k < K; k++) totalWeight += this.cw[k] * rootCounts[k];

    const store = new NodeStore(K);
    this.store = store;
    const root: Pending = { id: store.add(rootCounts), start: 0, end: n, depth: 0, hist: null };
    if (this.splittable(rootCounts, 0)) {
      root.hist = this.allocHist();
      for (let i = 0; i < n; i++) this.addRow(root.hist, i);
    }
    const stack: Pending[] = [root];
    const leftCounts = new Float64Array(K);
    const rightCounts = new Float64Array(K);
    while (stack.length > 0) {
      const node = stack.pop()!;
      const hist = node.hist;
      if (hist === null) continue; // a leaf from birth
      this.shufflePerm(rng);
      if (!this.findSplit(node, hist, totalWeight)) {
        this.releaseHist(hist, node.start, node.end);
        continue;
      }
      this.describeSplit(node, hist);
      let wL = 0;
      let wR = 0;
      for (let k = 0; k < K; k++) {
        leftCounts[k] = this.bestLeftCounts[k];
        rightCounts[k] = store.classCounts[node.id * K + k] - leftCounts[k];
        wL += leftCounts[k];
        wR += rightCounts[k];
      }
      const leftId = store.add(leftCounts);
      const rightId = store.add(rightCounts);
      store.left[node.id] = leftId;
      store.right[node.id] = rightId;
      const mid = this.partition(node, hist, this.splittable(leftCounts, node.depth + 1), this.splittable(rightCounts, node.depth + 1), wL, wR);
      this.releaseHist(hist, node.start, node.end);
      const left: Pending = { id: leftId, start: node.start, end: mid, depth: node.depth + 1, hist: this.childHists[0] };
      const right: Pending = { id: rightId, start: mid, end: node.end, depth: node.depth + 1, hist: this.childHists[1] };
      stack.push(right, left);
    }
    if (this.pool.length > 64) this.pool.length = 64;
    return this.finish(store);
  }

  private splittable(counts: Float64Array, depth: number): boolean {
    if (depth >= this.params.maxDepth) return false;
    let total = 0;
    let classes = 0;
    for (let k = 0; k < this.K; k++) {
      total += counts[k];
      if (counts[k] > 0) classes++;
    }
    return classes >= 2 && total >= this.params.minSamplesSplit && total >= 2 * this.params.minSamplesLeaf;
  }

  private shufflePerm(rng: Xoshiro128): void {
    const F = this.F;
    const perm = this.perm;
    for (let i = 0; i < F; i++) perm[i] = i;
    for (let i = 0; i < F - 1; i++) {
      const j = i + rng.nextInt(F - i);
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
  }

  private allocHist(): Int32Array {
    return this.pool.pop() ?? new Int32Array(this.F * this.SK);
  }

  /** Zeroes exactly what the node's rows touched (or the used slots, when cheaper), then pools it. */
  private releaseHist(h: Int32Array, start: number, end: number): void {
    const { work, S, F, K, SK } = this;
    if ((end - start) * F * K < this.usedSlots) {
      for (let i = start; i < end; i++) {
        const base = i * S;
        for (let j = 0, off = 0; j < F; j++, off += SK) {
          const idx = off + work[base + j] * K;
          for (let k = 0; k < K; k++) h[idx + k] = 0;
        }
      }
    } else {
      for (let j = 0, off = 0; j < F; j++, off += SK) {
        h.fill(0, off, off + this.nBins[j] * K);
        h.fill(0, off + MISSING_CODE * K, off + SK);
      }
    }
    this.pool.push(h);
  }

  /** Adds the record at position i (weighted by its count) to every feature's histogram. */
  private addRow(h: Int32Array, i: number): void {
    const { work, S, F, K, SK } = this;
    const base = i * S;
    const c = work[base + F + 1] | (work[base + F + 2] << 8);
    const y = work[base + F];
    for (let j = 0, off = y; j < F; j++, off += SK) h[off + work[base + j] * K] += c;
  }

  private subtractHist(into: Int32Array, parent: Int32Array, small: Int32Array): void {
    const { F, K, SK } = this;
    for (let j = 0, off = 0; j < F; j++, off += SK) {
      const end = off + this.nBins[j] * K;
      for (let i = off; i < end; i++) into[i] = parent[i] - small[i];
      for (let i = off + MISSING_CODE * K; i < off + SK; i++) into[i] = parent[i] - small[i];
    }
  }

  /** The children's histograms after partition(): [left, right], null for a leaf. */
  private childHists: [Int32Array | null, Int32Array | null] = [null, null];

  /**
   * Stable partition of the node's rows by the split in this.goLeft, filling the
   * children's histograms on the way: the smaller child (by weight) is accumulated,
   * the larger is parent - smaller, unless the larger is small enough that scanning
   * it beats subtracting whole histograms. Returns the boundary.
   */
  private partition(node: Pending, parent: Int32Array, needL: boolean, needR: boolean, wL: number, wR: number): number {
    const { work, work32, scratch32, S, W, F } = this;
    const leftSmaller = wL <= wR;
    const needSmall = leftSmaller ? needL : needR;
    const needLarge = leftSmaller ? needR : needL;
    const wLarge = leftSmaller ? wR : wL;
    const scanLarge = needLarge && wLarge * F < this.usedSlots;
    const subtract = needLarge && !scanLarge;
    const accSmall = needSmall || subtract;
    const histSmall = accSmall ? this.allocHist() : null;
    const histLarge = needLarge ? this.allocHist() : null;
    const hL = leftSmaller ? histSmall : scanLarge ? histLarge : null;
    const hR = leftSmaller ? (scanLarge ? histLarge : null) : histSmall;

    const f = this.bestFeature;
    const goLeft = this.goLeft;
    let w = node.start;
    let s = 0;
    for (let i = node.start; i < node.end; i++) {
      const src = i * W;
      if (goLeft[work[i * S + f]] === 1) {
        if (hL !== null) this.addRow(hL, i);
        if (w !== i) for (let q = 0, dst = w * W; q < W; q++) work32[dst + q] = work32[src + q];
        w++;
      } else {
        if (hR !== null) this.addRow(hR, i);
        for (let q = 0, dst = s * W; q < W; q++) scratch32[dst + q] = work32[src + q];
        s++;
      }
    }
    work32.set(scratch32.subarray(0, s * W), w * W);
    const mid = w;

    if (subtract) this.subtractHist(histLarge!, parent, histSmall!);
    let keepSmall = histSmall;
    if (histSmall !== null && !needSmall) {
      // Accumulated only to derive the larger sibling.
      if (leftSmaller) this.releaseHist(histSmall, node.start, mid);
      else this.releaseHist(histSmall, mid, node.end);
      keepSmall = null;
    }
    this.childHists = leftSmaller ? [keepSmall, histLarge] : [histLarge, keepSmall];
    return mid;
  }

  /** Searches the sampled features (then the others, if none of them splits); true when a split is worth making. */
  private findSplit(node: Pending, hist: Int32Array, totalWeight: number): boolean {
    const { K, cw } = this;
    const totals = this.totals;
    let w = 0;
    let sq = 0;
    for (let k = 0; k < K; k++) {
      totals[k] = this.store.classCounts[node.id * K + k];
      const wk = cw[k] * totals[k];
      w += wk;
      sq += wk * wk;
    }
    const parentScore = sq / w;
    this.bestScore = parentScore + GAIN_EPSILON * parentScore;
    this.bestFeature = -1;
    const m = this.params.maxFeatures;
    for (let j = 0; j < this.F; j++) {
      if (j >= m && this.bestFeature >= 0) break;
      const f = this.perm[j];
      if (this.kinds[f] === 0) this.searchNumeric(node, hist, f);
      else this.searchCategorical(node, hist, f);
    }
    if (this.bestFeature < 0) return false;
    const decrease = (this.bestScore - parentScore) / totalWeight;
    return decrease >= this.params.minImpurityDecrease;
  }

  /** Sorted codes (missing excluded) with rows in this node, into this.present; returns how many. */
  private presentCodes(node: Pending, h: Int32Array, f: number): number {
    const K = this.K;
    const nb = this.nBins[f];
    const base = f * this.SK;
    const present = this.present;
    let p = 0;
    if (node.end - node.start >= nb) {
      for (let b = 0; b < nb; b++) {
        let t = 0;
        for (let k = 0; k < K; k++) t += h[base + b * K + k];
        if (t > 0) present[p++] = b;
      }
      return p;
    }
    // Few rows: collect their codes instead of sweeping every bin.
    const { work, S, mark } = this;
    for (let i = node.start; i < node.end; i++) {
      const c = work[i * S + f];
      if (c !== MISSING_CODE && mark[c] === 0) {
        mark[c] = 1;
        present[p++] = c;
      }
    }
    for (let i = 0; i < p; i++) mark[present[i]] = 0;
    for (let i = 1; i < p; i++) {
      const v = present[i];
      let j = i - 1;
      while (j >= 0 && present[j] > v) {
        present[j + 1] = present[j];
        j--;
      }
      present[j + 1] = v;
    }
    return p;
  }

  private loadMissing(h: Int32Array, f: number): number {
    const K = this.K;
    const base = f * this.SK + MISSING_CODE * K;
    let t = 0;
    for (let k = 0; k < K; k++) {
      this.missing[k] = h[base + k];
      t += this.missing[k];
    }
    return t;
  }

  /**
   * The Gini proxy sum_k w_k^2 / W summed over both children for "left = acc (plus
   * missing when missingLeft)", or -1 when a child would be under minSamplesLeaf.
   * (Weighted Gini impurity of the children = W_node - proxy, so the largest proxy wins.)
   */
  private score(missingLeft: boolean): number {
    const { K, cw, acc, totals, missing } = this;
    const minLeaf = this.params.minSamplesLeaf;
    let nL = 0;
    let nR = 0;
    let wL = 0;
    let wR = 0;
    let sL = 0;
    let sR = 0;
    for (let k = 0; k < K; k++) {
      const l = missingLeft ? acc[k] + missing[k] : acc[k];
      const r = totals[k] - l;
      nL += l;
      nR += r;
      const wl = cw[k] * l;
      const wr = cw[k] * r;
      wL += wl;
      wR += wr;
      sL += wl * wl;
      sR += wr * wr;
    }
    if (nL < minLeaf || nR < minLeaf || nL === 0 || nR === 0) return -1;
    return sL / wL + sR / wR;
  }

  private consider(s: number, f: number, bin: number, nextBin: number, orderClass: number, missingLeft: boolean): void {
    if (s > this.bestScore) {
      this.bestScore = s;
      this.bestFeature = f;
      this.bestBin = bin;
      this.bestNextBin = nextBin;
      this.bestOrderClass = orderClass;
      this.bestMissingLeft = missingLeft ? 1 : 0;
      for (let k = 0; k < this.K; k++) this.bestLeftCounts[k] = missingLeft ? this.acc[k] + this.missing[k] : this.acc[k];
    }
  }

  private searchNumeric(node: Pending, h: Int32Array, f: number): void {
    const K = this.K;
    const p = this.presentCodes(node, h, f);
    const missingTotal = this.loadMissing(h, f);
    if (p === 0 || (p === 1 && missingTotal === 0)) return;
    const base = f * this.SK;
    const acc = this.acc;
    acc.fill(0);
    const present = this.present;
    // Split after present[j]: bins <= present[j] go left. j = p-1 separates missing from the rest.
    const last = missingTotal > 0 ? p : p - 1;
    for (let j = 0; j < last; j++) {
      const b = present[j];
      for (let k = 0; k < K; k++) acc[k] += h[base + b * K + k];
      const next = j + 1 < p ? present[j + 1] : -1;
      this.consider(this.score(false), f, b, next, -1, false);
      if (missingTotal > 0 && next >= 0) this.consider(this.score(true), f, b, next, -1, true);
    }
  }

  /**
   * Categorical subset splits: for each class k, order the node's categories by the
   * class-weighted share of class k and sweep the prefixes. With two classes one order
   * is exact (Breiman); with more, trying every class's one-vs-rest order is the
   * heuristic (exact search is exponential in the categories).
   */
  private searchCategorical(node: Pending, h: Int32Array, f: number): void {
    const p = this.presentCodes(node, h, f);
    const missingTotal = this.loadMissing(h, f);
    if (p === 0 || (p === 1 && missingTotal === 0)) return;
    const orders = this.K === 2 ? 1 : this.K;
    for (let k = 0; k < orders; k++) {
      this.orderByShare(h, f, p, k);
      this.sweepCategories(h, f, p, k, missingTotal);
    }
  }

  private orderByShare(h: Int32Array, f: number, p: number, cls: number): void {
    const { K, cw } = this;
    const base = f * this.SK;
    const present = this.present;
    const key = this.sortKey;
    for (let i = 0; i < p; i++) {
      const c = present[i];
      let w = 0;
      for (let k = 0; k < K; k++) w += cw[k] * h[base + c * K + k];
      key[c] = (cw[cls] * h[base + c * K + cls]) / w;
    }
    // Insertion sort by (share, code): deterministic, and p is small.
    for (let i = 1; i < p; i++) {
      const v = present[i];
      const kv = key[v];
      let j = i - 1;
      while (j >= 0 && (key[present[j]] > kv || (key[present[j]] === kv && present[j] > v))) {
        present[j + 1] = present[j];
        j--;
      }
      present[j + 1] = v;
    }
  }

  private sweepCategories(h: Int32Array, f: number, p: number, cls: number, missingTotal: number): void {
    const K = this.K;
    const base = f * this.SK;
    const acc = this.acc;
    acc.fill(0);
    const last = missingTotal > 0 ? p : p - 1;
    for (let j = 0; j < last; j++) {
      const c = this.present[j];
      for (let k = 0; k < K; k++) acc[k] += h[base + c * K + k];
      // bin = prefix length - 1; describeSplit rebuilds the prefix from (cls, bin).
      this.consider(this.score(false), f, j, -1, cls, false);
      if (missingTotal > 0 && j + 1 < p) this.consider(this.score(true), f, j, -1, cls, true);
    }
  }

  /** Writes the winning split into the node and this.goLeft (code -> goes left). */
  private describeSplit(node: Pending, h: Int32Array): void {
    const { K, store } = this;
    const f = this.bestFeature;
    const goLeft = this.goLeft;
    const id = node.id;
    const nb = this.nBins[f];
    let defaultLeft = this.bestMissingLeft;
    if (this.loadMissing(h, f) === 0) {
      // No missing values reached this node: unseen ones follow the larger child.
      let nL = 0;
      let n = 0;
      for (let k = 0; k < K; k++) {
        nL += this.bestLeftCounts[k];
        n += store.classCounts[id * K + k];
      }
      defaultLeft = nL >= n - nL ? 1 : 0;
    }
    store.feature[id] = f;
    store.defaultLeft[id] = defaultLeft;
    if (this.kinds[f] === 0) {
      const b = this.bestBin;
      for (let c = 0; c < BIN_SLOTS; c++) goLeft[c] = c <= b ? 1 : 0;
      const upper = this.binUpper[f * BIN_SLOTS + b];
      let threshold: number;
      if (this.bestNextBin >= 0) {
        // Midway between the largest value going left and the smallest going right.
        const next = this.binLower[f * BIN_SLOTS + this.bestNextBin];
        threshold = upper / 2 + next / 2;
        if (!(threshold < next) || threshold < upper) threshold = upper;
      } else {
        // Missing against everything else: every value seen in training goes left.
        threshold = this.binUpper[f * BIN_SLOTS + nb - 1];
      }
      store.threshold[id] = threshold;
    } else {
      // The winning prefix goes left, the node's other categories right, and
      // categories absent from the node follow the default direction.
      const p = this.presentCodes(node, h, f);
      for (let c = 0; c < BIN_SLOTS; c++) goLeft[c] = defaultLeft;
      for (let i = 0; i < p; i++) goLeft[this.present[i]] = 0;
      this.orderByShare(h, f, p, this.bestOrderClass);
      for (let i = 0; i <= this.bestBin; i++) goLeft[this.present[i]] = 1;
      const words = Math.ceil(nb / 32);
      const offset = store.catBits.length;
      for (let w = 0; w < words; w++) {
        let word = 0;
        for (let bit = 0; bit < 32; bit++) {
          const c = w * 32 + bit;
          if (c < nb && goLeft[c]) word |= 1 << bit;
        }
        store.catBits.push(word >>> 0);
      }
      store.threshold[id] = offset;
    }
    goLeft[MISSING_CODE] = defaultLeft;
  }

  private finish(store: NodeStore): BuiltTree {
    const { K, cw } = this;
    const n = store.size;
    const value = new Float64Array(n * K);
    const count = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let w = 0;
      let c = 0;
      for (let k = 0; k < K; k++) {
        w += cw[k] * store.classCounts[i * K + k];
        c += store.classCounts[i * K + k];
      }
      for (let k = 0; k < K; k++) value[i * K + k] = (cw[k] * store.classCounts[i * K + k]) / w;
      count[i] = c;
    }
    return {
      feature: store.feature.slice(0, n),
      threshold: store.threshold.slice(0, n),
      left: store.left.slice(0, n),
      right: store.right.slice(0, n),
      defaultLeft: store.defaultLeft.slice(0, n),
      value,
      count,
      catBits: Uint32Array.from(store.catBits),
    };
  }
}
