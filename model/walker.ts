/**
 * The tree-walker: CompiledForest, a forest packed into typed arrays and scored by
 * branch-free integer kernels. docs/model-format.md describes the semantics and the
 * design; the work is split by concern:
 *
 *   model/forest-flat.ts       v1 trees → the canonical pre-order form
 *   model/walker/layout.ts     pre-order form → packed node records and tables
 *   model/walker/encoding.ts   raw rows → per-feature integers (bins, category codes)
 *   model/walker/kernels.ts    the walks
 *   model/walker/scoring.ts    single-row and batch scoring, the label rule
 *   model/walker/explain.ts    Saabas explanations
 *
 * Scoring never throws on input values: missing and unknown values follow each
 * split's default direction (see encoding.ts for what counts as missing).
 */
import type { FeatureSpec, ForestFileV1 } from './format';
import { flattenForest } from './forest-flat';
import { attribute } from './walker/explain';
import { RowEncoder, type ColumnarRows, type RawRow } from './walker/encoding';
import { packedBytes, packForest, type PackedForest } from './walker/layout';
import { scoreBlock, scoreRow } from './walker/scoring';

export type { ColumnarRows, RawRow } from './walker/encoding';

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

export interface Explanation extends Prediction {
  /** Mean over trees of the root's class distribution. */
  bias: Float64Array;
  /** Per feature name: its summed contributions to each class. Features never on the paths get zeros. */
  contributions: Record<string, Float64Array>;
  /** bias + Σ contributions: the mean of the leaf distributions reached. */
  explained: Float64Array;
  /**
   * What `explained` is: 'probabilities' when it equals `probabilities` (soft forests);
   * 'mean-leaf-distribution' for hard-vote forests, whose vote fractions are not
   * additive along paths, so the soft-vote surrogate is explained instead. Label and
   * probabilities are always the forest's own prediction, as predict() gives them.
   */
  explains: 'probabilities' | 'mean-leaf-distribution';
}

export interface CompileOptions {
  /** Rows per batch block (default: as many as fit a 512 KiB budget of encodings). */
  readonly blockRows?: number;
}

/** What a compiled forest needs from its document besides the trees. */
export type ForestHeader = Pick<ForestFileV1, 'classes' | 'features' | 'sha256' | 'aggregation' | 'voteTieBreak'>;

/**
 * Rows per batch block, from a budget for the block's encodings (4 bytes per row and
 * feature): large enough that each tree's nodes, fetched once per block, serve many
 * rows; small enough that the encodings stay in the core's L2 cache with the tree.
 */
const BLOCK_BYTES = 256 * 1024;

export class CompiledForest {
  readonly classes: readonly string[];
  readonly features: readonly FeatureSpec[];
  readonly sha256: string;
  readonly aggregation: 'soft' | 'hard';
  readonly treeCount: number;
  readonly nodeCount: number;
  /** Edges on the longest root-to-leaf path of any tree. */
  readonly maxDepth: number;
  /** Bytes of the packed arrays (node records, distributions, tables). */
  readonly byteLength: number;

  private readonly packed: PackedForest;
  private readonly encoder: RowEncoder;
  private readonly K: number;
  private readonly F: number;
  private readonly firstToReach: boolean;
  private readonly blockRows: number;
  /** Scratch for single-row calls (JavaScript is single-threaded per isolate). */
  private readonly V: Int32Array;
  private readonly pos: Int32Array;
  private readonly path: Int32Array;

  private constructor(header: ForestHeader, packed: PackedForest, options: CompileOptions) {
    this.classes = header.classes.slice();
    this.features = header.features;
    this.sha256 = header.sha256;
    this.aggregation = header.aggregation;
    this.firstToReach = header.aggregation === 'hard' && header.voteTieBreak === 'first-to-reach';
    this.packed = packed;
    this.encoder = new RowEncoder(header.features, packed);
    this.K = header.classes.length;
    this.F = header.features.length;
    this.treeCount = packed.roots.length;
    this.nodeCount = packed.nodes.length / 2;
    this.byteLength = packedBytes(packed);
    this.blockRows = options.blockRows ?? Math.max(64, Math.floor(BLOCK_BYTES / (4 * this.encoder.stride)));
    this.V = new Int32Array(this.encoder.stride);
    this.pos = new Int32Array(this.treeCount);
    this.maxDepth = packed.depths.reduce((a, b) => Math.max(a, b), 0);
    this.path = new Int32Array(this.maxDepth + 1);
  }

  /** Compiles a (validated) forest document; see parseForest / readForestFile. */
  static compile(forest: ForestFileV1, options: CompileOptions = {}): CompiledForest {
    const flat = flattenForest(forest);
    return new CompiledForest(forest, packForest(flat, forest.aggregation), options);
  }

  /** A forest packed elsewhere (model/forest-loader.ts packs in a worker thread). */
  static fromPacked(header: ForestHeader, packed: PackedForest, options: CompileOptions = {}): CompiledForest {
    return new CompiledForest(header, packed, options);
  }

  /** Raw values → feature values: numbers, or categorical codes; missing/unknown → NaN. Never throws. */
  encode(row: RawRow, out: Float64Array): void {
    for (let f = 0; f < this.F; f++) out[f] = this.encoder.value(f, row == null ? undefined : row[this.encoder.names[f]]);
  }

  /** K class probabilities for one raw row. */
  predictProba(row: RawRow, out: Float64Array = new Float64Array(this.K)): Float64Array {
    this.encoder.encodeRow(row, this.V, 0);
    scoreRow(this.packed, this.firstToReach, this.V, this.pos, out);
    return out;
  }

  /** Label, class index and probabilities for one raw row. */
  predict(row: RawRow): Prediction {
    const probabilities = new Float64Array(this.K);
    this.encoder.encodeRow(row, this.V, 0);
    const classIndex = scoreRow(this.packed, this.firstToReach, this.V, this.pos, probabilities);
    return { label: this.classes[classIndex], classIndex, probabilities };
  }

  /**
   * Scores many rows — an array of raw rows, or columnar input
   * `{ columns: { name: ArrayLike }, rows }` (a Float64Array numeric column is read as
   * is) — in blocks: each block is encoded once, then walked tree by tree.
   */
  predictBatch(rows: readonly RawRow[] | ColumnarRows): BatchPrediction {
    if (isColumnar(rows)) return this.scoreBlocks(rows.rows, (start, count, V) => this.encoder.encodeColumns(rows, start, count, V));
    return this.scoreBlocks(rows.length, (start, count, V) => this.encoder.encodeRows(rows, start, count, V));
  }

  /** Feature values of raw rows (see encode), row-major n×F: the matrix the ONNX export of this forest takes. */
  encodeBatch(rows: readonly RawRow[]): { x: Float64Array; n: number } {
    const F = this.F;
    const x = new Float64Array(rows.length * F);
    rows.forEach((row, r) => {
      for (let f = 0; f < F; f++) x[r * F + f] = this.encoder.value(f, row == null ? undefined : row[this.encoder.names[f]]);
    });
    return { x, n: rows.length };
  }

  /** predictBatch over feature values (encodeBatch's matrix, n rows). */
  predictBatchEncoded(x: Float64Array, n: number): BatchPrediction {
    return this.scoreBlocks(n, (start, count, V) => this.encoder.encodeValues(x, start, count, V));
  }

  private scoreBlocks(n: number, encodeBlock: (start: number, count: number, V: Int32Array) => void): BatchPrediction {
    const K = this.K;
    const probabilities = new Float64Array(n * K);
    const classIndex = new Int32Array(n);
    const block = Math.min(this.blockRows, n);
    const stride = this.encoder.stride;
    const V = new Int32Array(block * stride);
    const pos = new Int32Array(block);
    const winnerCount = new Float64Array(block);
    for (let start = 0; start < n; start += block) {
      const count = Math.min(block, n - start);
      encodeBlock(start, count, V);
      scoreBlock(this.packed, this.firstToReach, V, stride, count, pos, winnerCount, start, probabilities, classIndex);
    }
    const labels = new Array<string>(n);
    for (let r = 0; r < n; r++) labels[r] = this.classes[classIndex[r]];
    return { labels, classIndex, probabilities };
  }

  /**
   * The prediction for one raw row (exactly predict()'s label and probabilities) with
   * its Saabas explanation: bias + Σ contributions = explained (see Explanation).
   */
  explain(row: RawRow): Explanation {
    const K = this.K;
    this.encoder.encodeRow(row, this.V, 0);
    const probabilities = new Float64Array(K);
    const classIndex = scoreRow(this.packed, this.firstToReach, this.V, this.pos, probabilities);
    const a = attribute(this.packed, this.V, this.path);
    const contributions: Record<string, Float64Array> = {};
    this.features.forEach((f, i) => (contributions[f.name] = a.contributions.subarray(i * K, i * K + K)));
    return {
      label: this.classes[classIndex],
      classIndex,
      probabilities,
      bias: a.bias,
      contributions,
      explained: a.explained,
      explains: this.aggregation === 'soft' ? 'probabilities' : 'mean-leaf-distribution',
    };
  }

  /** Index of a feature by name, or -1. */
  featureIndexOf(name: string): number {
    return this.encoder.names.indexOf(name);
  }
}

function isColumnar(rows: readonly RawRow[] | ColumnarRows): rows is ColumnarRows {
  return !Array.isArray(rows);
}
