/**
 * Forest (format v1) → ONNX, evaluated by ONNX Runtime exactly as the walker does.
 * docs/model-format.md ("ONNX export") is the reference. One ai.onnx.ml
 * TreeEnsembleClassifier (opset 3), understood by every ONNX-ML runtime:
 * - Leaves carry their raw class distribution (soft) or a one-hot vote (hard), so the
 *   classifier's label is the argmax of the same double sums the walker takes, summed
 *   in the same tree order, ties to the lowest index; a Div node makes the sums means
 *   ("probabilities", float32 as the operator outputs them).
 * - A categorical subset split is a chain of BRANCH_EQ nodes over the codes that do not
 *   take the missing-value side, whose true edges share one child (the LightGBM
 *   converters' encoding of set membership, which ORT accepts and collapses) and whose
 *   end is the default child: NaN and any other non-code (-1, C, 1.5) go where the
 *   walker sends an unknown category.
 *
 * Two classes: ORT labels a two-class TreeEnsembleClassifier by "p(class 1) > 0.5" or
 * "> 0" and writes 0 as class 0's probability, so the classifier is declared with a
 * third, never-weighted class (ORT leaves a class without weights out of the argmax)
 * and a Slice keeps the two real columns.
 *
 * TreeEnsemble (opset 5) is not written: a v5 leaf feeds one target, so a K-class
 * distribution needs K copies of every tree, and ONNX Runtime 1.30 mis-routes some
 * BRANCH_MEMBER splits (two set splits on one feature below a numeric split; see
 * docs/model-format.md). The importer reads it.
 *
 * Both: the input is a double tensor and thresholds are doubles — with a float input
 * ORT compares float32(x) with float32(t), moving every row that lies between a
 * double threshold and its float32 rounding. Missing values (NaN) follow
 * nodes_missing_value_tracks_true = defaultLeft. Hard voting with voteTieBreak
 * 'first-to-reach' (ml-random-forest's rule) depends on the order of the votes, which
 * a sum cannot see: refused unless the caller accepts lowest-index ties.
 *
 * Trees are read through index and length only (ArrayLike), so typed-array trees work.
 */
import { UserError } from '../../core/errors';
import { packageVersion } from '../../core/version';
import type { FeatureSpec, ForestFileV1 } from '../format';
import { INPUT_ENCODING_TEXT, INPUT_NAME, LABEL_OUTPUT, META, ONNX_ML_DOMAIN, PROBABILITIES_OUTPUT, PRODUCER_NAME } from './metadata';
import {
  AttrType,
  DataType,
  encodeModel,
  type AttributeMessage,
  type ModelMessage,
  type NodeMessage,
  type TensorMessage,
  type ValueInfoMessage,
} from './proto';

export interface OnnxExportOptions {
  /**
   * A hard-vote forest with voteTieBreak 'first-to-reach' cannot be expressed in ONNX.
   * 'refuse' (default) throws; 'lowest-index' exports it with ties going to the lowest
   * class index (recorded in metadata), so labels can differ on tied votes.
   */
  readonly hardVoteTies?: 'refuse' | 'lowest-index';
  /** Provenance when the forest came from the model registry (stored in metadata_props). */
  readonly registry?: { readonly uri: string; readonly version: number; readonly status: string; readonly artifactSha256: string };
}

export interface OnnxExportSummary {
  readonly trees: number;
  /** Nodes in the forest file. */
  readonly forestNodes: number;
  /** Nodes in the ONNX tree ensemble (equality chains add some). */
  readonly onnxNodes: number;
  readonly bytes: number;
}

interface ArrayLikeTree {
  readonly feature: ArrayLike<number>;
  readonly threshold: ArrayLike<number>;
  readonly left: ArrayLike<number>;
  readonly right: ArrayLike<number>;
  readonly defaultLeft: ArrayLike<number>;
  readonly value: ArrayLike<number>;
  readonly catBits: ArrayLike<number>;
}

/** Growable column of numbers, so a 900k-node forest needs no per-node objects. */
class Column {
  private data: Float64Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Float64Array(capacity);
  }
  push(v: number): number {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length] = v;
    return this.length++;
  }
  set(i: number, v: number): void {
    this.data[i] = v;
  }
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

/** The codes (0..C-1) of a categorical split's left side, as 0/1 flags. */
function codesGoingLeft(tree: ArrayLikeTree, node: number, categories: number): Uint8Array {
  const offset = tree.threshold[node];
  const left = new Uint8Array(categories);
  for (let c = 0; c < categories; c++) left[c] = (tree.catBits[offset + (c >>> 5)] >>> (c & 31)) & 1;
  return left;
}

/**
 * How one split is written: `x <= value` (LEQ, with whether NaN takes the true child)
 * or `x ∈ members` (SET), with the child taken when the test holds and the other child. A categorical split is always SET over the codes of the side missing values
 * do NOT take, its false edge reaching the default side: every input that is not one
 * of those codes — NaN, but also -1, C, 1.5, what real encoders write for an unknown
 * category — then goes where the walker sends an unknown category. (A `x <= m` prefix
 * test would send -1 one way and C the other.) A split whose every code takes the
 * default side is an always-true LEQ +∞ towards it.
 */
type Split =
  | { kind: 'LEQ'; value: number; trueChild: number; falseChild: number; nanTrue: number }
  | { kind: 'SET'; members: number[]; trueChild: number; falseChild: number };

function splitOf(tree: ArrayLikeTree, i: number, spec: FeatureSpec): Split {
  const l = tree.left[i];
  const r = tree.right[i];
  const missLeft = tree.defaultLeft[i] ? 1 : 0;
  if (spec.kind === 'numeric') return { kind: 'LEQ', value: tree.threshold[i], trueChild: l, falseChild: r, nanTrue: missLeft };
  const left = codesGoingLeft(tree, i, spec.categories.length);
  const [defaultChild, otherChild] = missLeft ? [l, r] : [r, l];
  const members: number[] = [];
  for (let c = 0; c < left.length; c++) if (left[c] !== missLeft) members.push(c);
  if (members.length === 0) return { kind: 'LEQ', value: Infinity, trueChild: defaultChild, falseChild: otherChild, nanTrue: 1 };
  return { kind: 'SET', members, trueChild: otherChild, falseChild: defaultChild };
}

/** The leaf's vote: its first most likely class (the walker's rule). */
function voteOf(tree: ArrayLikeTree, node: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (tree.value[node * K + k] > tree.value[node * K + best]) best = k;
  return best;
}

function intsAttr(name: string, values: ArrayLike<number>): AttributeMessage {
  return { name, type: AttrType.INTS, ints: Array.from(values) };
}

function stringAttr(name: string, value: string): AttributeMessage {
  return { name, type: AttrType.STRING, s: Buffer.from(value, 'utf8') };
}

function stringsAttr(name: string, values: readonly string[]): AttributeMessage {
  // One buffer per distinct string: nodes_modes repeats a few strings a million times.
  const buffers = new Map<string, Buffer>();
  return { name, type: AttrType.STRINGS, strings: values.map((v) => buffers.get(v) ?? buffers.set(v, Buffer.from(v, 'utf8')).get(v)!) };
}

function doubleTensor(name: string, values: ArrayLike<number>, dims: number[] = [values.length]): TensorMessage {
  const raw = Buffer.alloc(values.length * 8);
  for (let i = 0; i < values.length; i++) raw.writeDoubleLE(values[i], i * 8);
  return { name, dims, data_type: DataType.DOUBLE, raw_data: raw };
}

function tensorAttr(t: TensorMessage): AttributeMessage {
  return { name: t.name, type: AttrType.TENSOR, t };
}

function tensorValue(name: string, elemType: number, dims: (number | string)[]): ValueInfoMessage {
  return {
    name,
    type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  };
}

/** The label of the never-weighted class a two-class forest is declared with (see the module note). */
export const UNUSED_CLASS_LABEL = '__pricesense_unused__';

interface Encoded {
  nodes: NodeMessage[];
  initializer: TensorMessage[];
  onnxNodes: number;
}

/**
 * TreeEnsembleClassifier rows, one per ONNX node, emitted tree by tree in depth-first
 * pre-order (a tree's first row is its root, as ORT requires; ids in emission order).
 * Each pending child carries the edges (row * 2 + 1 true, row * 2 false) that must
 * point at it: one usually, every row of an equality chain for its shared true child.
 */
function encodeClassifier(forest: ForestFileV1): Encoded {
  const K = forest.classes.length;
  const soft = forest.aggregation === 'soft';
  const c = {
    treeIds: new Column(),
    nodeIds: new Column(),
    featureIds: new Column(),
    modes: [] as string[],
    values: new Column(),
    trueIds: new Column(),
    falseIds: new Column(),
    missingTrue: new Column(),
    classTreeIds: new Column(),
    classNodeIds: new Column(),
    classIds: new Column(),
    classWeights: new Column(),
  };
  const add = (t: number, id: number, mode: string, feature: number, value: number, missingTrue: number): number => {
    c.nodeIds.push(id);
    c.modes.push(mode);
    c.featureIds.push(feature);
    c.values.push(value);
    c.trueIds.push(0);
    c.falseIds.push(0);
    c.missingTrue.push(missingTrue);
    return c.treeIds.push(t);
  };
  forest.trees.forEach((tree: ArrayLikeTree, t) => {
    let nextId = 0;
    // chainFeature: the feature of the equality chain whose edge points here (-1: none).
    const stack: { node: number; edges: number[]; chainFeature: number }[] = [{ node: 0, edges: [], chainFeature: -1 }];
    while (stack.length > 0) {
      const { node: i, edges, chainFeature } = stack.pop()!;
      let id = nextId++;
      for (const e of edges) ((e & 1) === 1 ? c.trueIds : c.falseIds).set(e >>> 1, id);
      const f = tree.feature[i];
      if (f < 0) {
        add(t, id, 'LEAF', 0, 0, 0);
        const vote = soft ? -1 : voteOf(tree, i, K);
        for (let k = 0; k < K; k++) {
          c.classTreeIds.push(t);
          c.classNodeIds.push(id);
          c.classIds.push(k);
          c.classWeights.push(soft ? tree.value[i * K + k] : k === vote ? 1 : 0);
        }
        continue;
      }
      const s = splitOf(tree, i, forest.features[f]);
      if (s.kind === 'LEQ') {
        const row = add(t, id, 'BRANCH_LEQ', f, s.value, s.nanTrue);
        // The false child is pushed last so it is emitted first: any order works for ORT.
        stack.push({ node: s.trueChild, edges: [row * 2 + 1], chainFeature: -1 }, { node: s.falseChild, edges: [row * 2], chainFeature: -1 });
        continue;
      }
      if (chainFeature === f) {
        // ORT 1.30 folds an equality chain into the next one on the same feature even when
        // their true children differ; an always-true node between them keeps them apart
        // (every number is <= +∞, +∞ included; NaN is tracked to true; the false leaf is never reached).
        const separator = add(t, id, 'BRANCH_LEQ', f, Infinity, 1);
        const unreachable = nextId++;
        add(t, unreachable, 'LEAF', 0, 0, 0);
        c.falseIds.set(separator, unreachable);
        id = nextId++;
        c.trueIds.set(separator, id);
      }
      // NaN and every non-member fail every equality and reach the chain's end, the default child.
      const trueEdges: number[] = [];
      let previous = -1;
      for (const code of s.members) {
        let chainId = id;
        if (previous >= 0) {
          chainId = nextId++;
          c.falseIds.set(previous, chainId);
        }
        previous = add(t, chainId, 'BRANCH_EQ', f, code, 0);
        trueEdges.push(previous * 2 + 1);
      }
      stack.push({ node: s.trueChild, edges: trueEdges, chainFeature: f }, { node: s.falseChild, edges: [previous * 2], chainFeature: f });
    }
  });

  const binary = K === 2;
  const attributes: AttributeMessage[] = [
    stringsAttr('classlabels_strings', binary ? [...forest.classes, UNUSED_CLASS_LABEL] : forest.classes),
    intsAttr('nodes_treeids', c.treeIds.view()),
    intsAttr('nodes_nodeids', c.nodeIds.view()),
    intsAttr('nodes_featureids', c.featureIds.view()),
    stringsAttr('nodes_modes', c.modes),
    tensorAttr(doubleTensor('nodes_values_as_tensor', c.values.view())),
    intsAttr('nodes_truenodeids', c.trueIds.view()),
    intsAttr('nodes_falsenodeids', c.falseIds.view()),
    intsAttr('nodes_missing_value_tracks_true', c.missingTrue.view()),
    intsAttr('class_treeids', c.classTreeIds.view()),
    intsAttr('class_nodeids', c.classNodeIds.view()),
    intsAttr('class_ids', c.classIds.view()),
    tensorAttr(doubleTensor('class_weights_as_tensor', c.classWeights.view())),
    stringAttr('post_transform', 'NONE'),
  ];
  const nodes: NodeMessage[] = [
    { name: 'forest', op_type: 'TreeEnsembleClassifier', domain: ONNX_ML_DOMAIN, input: [INPUT_NAME], output: [LABEL_OUTPUT, 'sums'], attribute: attributes },
    { name: 'mean_over_trees', op_type: 'Div', domain: '', input: ['sums', 'tree_count'], output: [binary ? 'means' : PROBABILITIES_OUTPUT] },
  ];
  const initializer: TensorMessage[] = [{ name: 'tree_count', dims: [], data_type: DataType.FLOAT, float_data: [forest.trees.length] }];
  if (binary) {
    nodes.push({ name: 'drop_unused_class', op_type: 'Slice', domain: '', input: ['means', 'slice_start', 'slice_end', 'slice_axis'], output: [PROBABILITIES_OUTPUT] });
    initializer.push(
      { name: 'slice_start', dims: [1], data_type: DataType.INT64, int64_data: [0] },
      { name: 'slice_end', dims: [1], data_type: DataType.INT64, int64_data: [2] },
      { name: 'slice_axis', dims: [1], data_type: DataType.INT64, int64_data: [1] },
    );
  }
  return { nodes, initializer, onnxNodes: c.treeIds.length };
}

/** Why a forest cannot be exported as asked, or undefined. */
export function onnxExportRefusal(forest: ForestFileV1, options: OnnxExportOptions = {}): string | undefined {
  if (forest.aggregation === 'hard' && forest.voteTieBreak === 'first-to-reach' && options.hardVoteTies !== 'lowest-index') {
    return (
      "this forest votes (aggregation 'hard') and breaks tied votes 'first-to-reach' (the class that reached the top count first, " +
      "ml-random-forest's rule); ONNX tree ensembles add up votes and cannot see their order, so this rule cannot be expressed. " +
      'Export with ties going to the lowest class index instead (--hard-vote-ties lowest-index): labels then differ only on rows whose vote is tied'
    );
  }
  if (forest.training.treeRange) {
    const r = forest.training.treeRange;
    return `this is a partial forest (trees ${r.start}..${r.end - 1} of ${r.trees}); merge the parts first (pricesense sagemaker merge)`;
  }
  return undefined;
}

/** Forest → ONNX ModelProto bytes, plus what was written. Throws UserError for what ONNX cannot express. */
export function exportForestToOnnx(forest: ForestFileV1, options: OnnxExportOptions = {}): { bytes: Uint8Array; summary: OnnxExportSummary } {
  const refusal = onnxExportRefusal(forest, options);
  if (refusal !== undefined) throw new UserError(`cannot export to ONNX: ${refusal}`);
  const K = forest.classes.length;
  const T = forest.trees.length;
  const encoded = encodeClassifier(forest);

  const categorical: Record<string, string[]> = {};
  for (const f of forest.features) if (f.kind === 'categorical') categorical[f.name] = f.categories.slice();
  const metadata: [string, string][] = [
    [META.features, JSON.stringify(forest.features.map((f) => f.name))],
    [META.categoricalCodes, JSON.stringify(categorical)],
    [META.missingEncodedAs, 'NaN'],
    [META.classes, JSON.stringify(forest.classes)],
    [META.inputEncoding, INPUT_ENCODING_TEXT],
    [META.forestSha256, forest.sha256],
    [META.formatVersion, String(forest.formatVersion)],
    [META.aggregation, forest.aggregation],
    [META.lineage, JSON.stringify(forest.training)],
  ];
  if (forest.aggregation === 'hard' && forest.voteTieBreak === 'first-to-reach') {
    metadata.push([META.labelTieBreak, 'lowest-index (the forest itself breaks tied votes first-to-reach; exported with --hard-vote-ties lowest-index)']);
  }
  if (options.registry) metadata.push([META.registry, JSON.stringify(options.registry)]);
  if (K === 2) metadata.push([META.paddingClass, `${UNUSED_CLASS_LABEL}: the classifier node lists a third class that no leaf weights (ONNX Runtime labels two-class ensembles by p(class 1) > 0.5, not by argmax); the Slice drops its column, so "probabilities" has the 2 columns of "classes"`]);

  const model: ModelMessage = {
    ir_version: 8,
    opset_import: [
      { domain: '', version: 17 },
      { domain: ONNX_ML_DOMAIN, version: 3 },
    ],
    producer_name: PRODUCER_NAME,
    producer_version: packageVersion(),
    doc_string: `pricesense forest ${forest.sha256} (${T} trees, ${K} classes, ${forest.aggregation} voting). ${INPUT_ENCODING_TEXT}`,
    graph: {
      name: 'pricesense_forest',
      node: encoded.nodes,
      initializer: encoded.initializer,
      input: [tensorValue(INPUT_NAME, DataType.DOUBLE, ['N', forest.features.length])],
      output: [tensorValue(LABEL_OUTPUT, DataType.STRING, ['N']), tensorValue(PROBABILITIES_OUTPUT, DataType.FLOAT, ['N', K])],
    },
    metadata_props: metadata.map(([key, value]) => ({ key, value })),
  };
  const bytes = encodeModel(model);
  let forestNodes = 0;
  for (const t of forest.trees) forestNodes += t.feature.length;
  return { bytes, summary: { trees: T, forestNodes, onnxNodes: encoded.onnxNodes, bytes: bytes.length } };
}

/** Forest → ONNX ModelProto bytes (exportForestToOnnx also returns a summary). */
export function forestToOnnx(forest: ForestFileV1, options: OnnxExportOptions = {}): Uint8Array {
  return exportForestToOnnx(forest, options).bytes;
}
