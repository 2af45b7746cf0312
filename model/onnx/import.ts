/**
 * ONNX tree ensemble → forest (format v1) whose walker reproduces the model.
 * docs/model-format.md ("ONNX import") is the reference. Reads one ai.onnx.ml
 * TreeEnsembleClassifier (opsets 1-4) or TreeEnsemble (opset 5) whose class scores are
 * sums of per-leaf weights (post_transform NONE, no base values), optionally scaled by
 * Div/Mul by a constant (pricesense's own exports divide by the tree count) — the form
 * skl2onnx writes for RandomForestClassifier and ExtraTreesClassifier. Presentation nodes
 * around it (ZipMap, Identity, Cast, ArgMax, LabelEncoder, Slice of unused classes) are
 * accepted; anything else is refused naming the node and attribute.
 *
 * Semantics preserved exactly:
 * - every branch mode becomes `x <= t` with the branch taken when true or false on
 *   the left: for a float input ORT compares float32(x) with float32(t), so t becomes
 *   the largest double that rounds to a float32 on the left side (rows sent as doubles
 *   split as if the client rounded them to float32, as the model's input type asks);
 * - splits on categorical features (the spec's categorical_codes) become category
 *   bitsets, whatever their mode (LEQ on codes, EQ/NEQ chains, BRANCH_MEMBER); chains
 *   whose edges share a child on the same feature are folded into one split;
 * - missing values follow nodes_missing_value_tracks_true (NaN fails every comparison
 *   but NEQ), or, when the spec says missing is encoded as a number, the side that
 *   number takes; unknown categories behave as missing (the walker's rule);
 * - a leaf's class distribution is its weights normalized; every leaf must carry the
 *   same total (an average of per-tree distributions), else the model is refused.
 *
 * Bounded work: decoding allocates in proportion to the file; node ids live in maps
 * (never arrays indexed by id); nodes are capped (maxNodes); cycles are found before
 * any expansion; subtrees shared by several parents (DAG) are copied, within the cap.
 */
import { createHash } from 'node:crypto';
import { UserError } from '../../core/errors';
import { codeVersion } from '../../core/version';
import { sealForest } from '../forest-file';
import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION, type FeatureSpec, type ForestFileV1, type TreeV1 } from '../format';
import { nextDown } from '../import-ml-rf';
import { META, ONNX_ML_DOMAIN } from './metadata';
import { parseInputSpec, type InputSpec } from './input-spec';
import { DataType, ProtobufDecodeError, decodeModel, int64Number, scanAttributeCounts, type AttributeMessage, type GraphMessage, type ModelMessage, type NodeMessage, type TensorMessage } from './proto';

/** Default cap on tree-ensemble nodes (declared, and after copying shared subtrees): 5.5× a 900k-node production forest. */
export const DEFAULT_MAX_NODES = 5_000_000;

export interface OnnxImportOptions {
  /** The input description when the file does not carry one (see input-spec.ts). */
  readonly spec?: InputSpec;
  /** Names the file in errors. */
  readonly source?: string;
  readonly maxNodes?: number;
  readonly createdAt?: string;
}

export interface OnnxImportSummary {
  readonly operator: string;
  readonly opset: number;
  readonly onnxSha256: string;
  readonly onnxNodes: number;
  readonly trees: number;
  readonly forestNodes: number;
  readonly inputType: 'float' | 'double';
}

export class OnnxImportError extends UserError {
  constructor(source: string, problem: string) {
    super(`${source}: cannot import: ${problem}`);
    this.name = 'OnnxImportError';
  }
}

const MODES = ['BRANCH_LEQ', 'BRANCH_LT', 'BRANCH_GTE', 'BRANCH_GT', 'BRANCH_EQ', 'BRANCH_NEQ', 'BRANCH_MEMBER'] as const;
const LEAF = -1;
const PRESENTATION_OPS = new Set(['ZipMap', 'Identity', 'Cast', 'ArgMax', 'LabelEncoder', 'Slice', 'Div', 'Mul', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

/* ---------- float32 rounding of inputs ---------- */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 above t32 (t32 a float32 value, not +∞), as a double; 2^128 above the largest float. */
function nextUpFloat32(t32: number): number {
  if (t32 === 3.4028234663852886e38) return 2 ** 128;
  if (t32 === 0) return 2 ** -149;
  f32[0] = t32;
  u32[0] += t32 > 0 ? 1 : -1;
  return f32[0];
}

function prevFloat32(t32: number): number {
  return -nextUpFloat32(-t32);
}

/** The largest double x with float32(x) <= t32 (round to nearest, ties to even). */
export function largestDoubleRoundingAtMost(t32: number): number {
  if (t32 === Infinity) return Infinity;
  if (t32 === -Infinity) return -(2 ** 128 - 2 ** 103);
  const up = nextUpFloat32(t32);
  const mid = (t32 + up) / 2;
  f32[0] = t32;
  const even = t32 === 0 || (u32[0] & 1) === 0;
  return even ? mid : nextDown(mid);
}

/* ---------- graph reading ---------- */

interface Source {
  readonly name: string;
  fail(problem: string): never;
}

function attrOf(node: NodeMessage, name: string): AttributeMessage | undefined {
  return node.attribute?.find((a) => a.name === name);
}

function utf8(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

/** A tensor's numbers (float, double, int32/64, uint8), from its typed field or raw_data. */
function tensorNumbers(t: TensorMessage, where: string, src: Source): number[] {
  if (t.data_location === 1 || (t.external_data && t.external_data.length > 0)) src.fail(`${where} keeps its data in an external file, which is not supported: save the model with its data inside`);
  const raw = t.raw_data && t.raw_data.length > 0 ? Buffer.from(t.raw_data.buffer, t.raw_data.byteOffset, t.raw_data.byteLength) : null;
  const type = t.data_type ?? 0;
  const size = type === DataType.DOUBLE || type === DataType.INT64 ? 8 : type === DataType.UINT8 ? 1 : 4;
  if (raw) {
    if (raw.length % size !== 0) src.fail(`${where} has ${raw.length} bytes of raw_data, not a multiple of its ${size}-byte elements`);
    const n = raw.length / size;
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      out[i] =
        type === DataType.DOUBLE ? raw.readDoubleLE(i * 8)
        : type === DataType.FLOAT ? raw.readFloatLE(i * 4)
        : type === DataType.INT64 ? int64Number(raw.readUInt32LE(i * 8), raw.readUInt32LE(i * 8 + 4))
        : type === DataType.INT32 ? raw.readInt32LE(i * 4)
        : type === DataType.UINT8 ? raw[i]
        : src.fail(`${where} has element type ${type}; expected float, double or an integer type`);
    }
    return out;
  }
  if (type === DataType.DOUBLE) return t.double_data ?? [];
  if (type === DataType.FLOAT) return t.float_data ?? [];
  if (type === DataType.INT64) return t.int64_data ?? [];
  if (type === DataType.INT32 || type === DataType.UINT8) return t.int32_data ?? [];
  return src.fail(`${where} has element type ${type}; expected float, double or an integer type`);
}

class Attributes {
  constructor(
    private readonly node: NodeMessage,
    private readonly src: Source,
  ) {}
  where(name: string): string {
    return `attribute ${name} of node '${this.node.name || this.node.op_type}' (${this.node.op_type})`;
  }
  has(name: string): boolean {
    return attrOf(this.node, name) !== undefined;
  }
  ints(name: string, required = true): number[] {
    const a = attrOf(this.node, name);
    if (!a) return required ? this.src.fail(`${this.where(name)} is missing`) : [];
    const values = a.t ? tensorNumbers(a.t, this.where(name), this.src) : (a.ints ?? []);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isSafeInteger(values[i])) this.src.fail(`${this.where(name)}[${i}] is ${values[i] === Infinity ? 'above 2^53' : values[i] === -Infinity ? 'below -2^53' : values[i]}; expected an integer within ±2^53`);
    }
    return values;
  }
  int(name: string, fallback: number): number {
    const a = attrOf(this.node, name);
    return a && typeof a.i === 'number' ? a.i : fallback;
  }
  string(name: string, fallback: string): string {
    const a = attrOf(this.node, name);
    return a?.s ? utf8(a.s) : fallback;
  }
  strings(name: string): string[] {
    return (attrOf(this.node, name)?.strings ?? []).map(utf8);
  }
  /** FLOATS, or a tensor (the *_as_tensor and opset-5 forms). */
  numbers(name: string): number[] | undefined {
    const a = attrOf(this.node, name);
    if (!a) return undefined;
    if (a.t) return tensorNumbers(a.t, this.where(name), this.src);
    return a.floats ?? [];
  }
  /** `name_as_tensor` (double) if present, else `name` (float). */
  numbersOrTensor(name: string): { values: number[]; double: boolean } | undefined {
    const t = this.numbers(`${name}_as_tensor`);
    if (t !== undefined) return { values: t, double: attrOf(this.node, `${name}_as_tensor`)!.t?.data_type === DataType.DOUBLE };
    const f = this.numbers(name);
    return f === undefined ? undefined : { values: f, double: false };
  }
}

/** The ensemble node, its input type, and the scale and class slice applied to its scores on the way to the probabilities output. */
interface GraphShape {
  readonly ensemble: NodeMessage;
  readonly opset: number;
  readonly floatInput: boolean;
  readonly scale: number;
  /** A Slice of the class columns (raw ONNX starts/ends, resolved against the class count later). */
  readonly slice: { readonly start: number; readonly end: number } | undefined;
  readonly labelStrings: string[] | undefined;
}

function constantScalar(graph: GraphMessage, name: string, src: Source, node: NodeMessage): number {
  const init = graph.initializer?.find((t) => t.name === name);
  const constNode = graph.node?.find((n) => n.op_type === 'Constant' && n.output?.includes(name));
  const t = init ?? constNode?.attribute?.find((a) => a.name === 'value')?.t;
  const values = t ? tensorNumbers(t, `input ${name} of node '${node.name || node.op_type}'`, src) : [];
  if (values.length !== 1) src.fail(`node '${node.name || node.op_type}' (${node.op_type}) scales the scores by '${name}', which is not a scalar constant; only a constant scale can be folded into the leaves`);
  return values[0];
}

function readGraph(model: ModelMessage, src: Source): GraphShape {
  const graph = model.graph;
  if (!graph || !graph.node || graph.node.length === 0) src.fail('the model has no graph nodes');
  const mlOpset = (model.opset_import ?? []).find((o) => o.domain === ONNX_ML_DOMAIN)?.version;
  const ensembles = graph.node.filter((n) => n.op_type === 'TreeEnsembleClassifier' || n.op_type === 'TreeEnsemble' || n.op_type === 'TreeEnsembleRegressor');
  if (ensembles.length !== 1) {
    src.fail(
      ensembles.length === 0
        ? `no tree ensemble in the graph (ops: ${[...new Set(graph.node.map((n) => n.op_type))].join(', ')}); expected one ai.onnx.ml TreeEnsembleClassifier or TreeEnsemble`
        : `${ensembles.length} tree-ensemble nodes (${ensembles.map((n) => `'${n.name}'`).join(', ')}); expected exactly one`,
    );
  }
  const ensemble = ensembles[0];
  const label = `node '${ensemble.name || ensemble.op_type}' (${ensemble.op_type})`;
  if (ensemble.op_type === 'TreeEnsembleRegressor') src.fail(`${label} is a regressor; only classifiers can be imported`);
  if ((ensemble.domain ?? '') !== ONNX_ML_DOMAIN) src.fail(`${label} is in domain '${ensemble.domain ?? ''}', expected ${ONNX_ML_DOMAIN}`);
  if (mlOpset === undefined) src.fail(`the model imports no ${ONNX_ML_DOMAIN} opset, which ${label} needs`);
  if (ensemble.op_type === 'TreeEnsemble' && mlOpset < 5) src.fail(`${label} needs ${ONNX_ML_DOMAIN} opset 5, the model imports opset ${mlOpset}`);
  if (mlOpset > 5) src.fail(`the model imports ${ONNX_ML_DOMAIN} opset ${mlOpset}; opsets 1 to 5 are understood`);

  const others = graph.node.filter((n) => n !== ensemble);
  for (const n of others) {
    if (!PRESENTATION_OPS.has(n.op_type ?? '')) {
      src.fail(`node '${n.name || n.op_type}' (${n.op_type}) is not supported: the graph may hold one tree ensemble plus ZipMap, Identity, Cast, ArgMax, LabelEncoder, Slice, Div/Mul by a constant`);
    }
  }
  // The ensemble's input: a graph input, possibly through Casts (a Cast to float rounds to float32).
  const inputs = new Map((graph.input ?? []).map((v) => [v.name, v]));
  let inputName = ensemble.input?.[0];
  let floatInput: boolean | undefined;
  for (let hops = 0; inputName !== undefined && !inputs.has(inputName) && hops < others.length; hops++) {
    const producer = others.find((n) => n.output?.includes(inputName!));
    if (!producer || producer.op_type !== 'Cast') src.fail(`the input of ${label} ('${inputName}') is not a graph input (only Cast may stand in between)`);
    const to = new Attributes(producer, src).int('to', 0);
    if (floatInput === undefined) floatInput = to === DataType.FLOAT ? true : to === DataType.DOUBLE ? false : src.fail(`node '${producer.name}' (Cast) casts the input to type ${to}; expected float or double`);
    inputName = producer.input?.[0];
  }
  const input = inputName === undefined ? undefined : inputs.get(inputName);
  if (!input) src.fail(`${label} has no input`);
  const elem = input.type?.tensor_type?.elem_type;
  if (elem !== DataType.FLOAT && elem !== DataType.DOUBLE) src.fail(`graph input '${input.name}' has element type ${elem}; expected a float or double tensor`);
  floatInput ??= elem === DataType.FLOAT;
  if (elem === DataType.FLOAT) floatInput = true;

  // The probabilities path: from the ensemble's score output through Identity/Cast/Div/Mul/Slice to a graph
  // output, or to a ZipMap whose output is one (skl2onnx's default, zipmap=True: a map per row, same numbers).
  const scoreOutput = ensemble.op_type === 'TreeEnsemble' ? ensemble.output?.[0] : ensemble.output?.[1];
  if (!scoreOutput) src.fail(`${label} has no score output`);
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  let scale = 1;
  let slice: { start: number; end: number; axis: number } | undefined;
  let current = scoreOutput;
  for (let hops = 0; !outputs.has(current) && hops <= others.length; hops++) {
    const next = others.filter((n) => n.input?.includes(current) && ['Identity', 'Cast', 'Div', 'Mul', 'Slice', 'ZipMap'].includes(n.op_type ?? ''));
    if (next.length !== 1) src.fail(`the scores of ${label} ('${current}') do not reach a graph output through Identity, Cast, Div, Mul, Slice or a final ZipMap`);
    const n = next[0];
    if (n.op_type === 'ZipMap') {
      if (!outputs.has(n.output?.[0] ?? '')) src.fail(`node '${n.name || n.op_type}' (ZipMap) turns the scores into a map that is not a graph output; a ZipMap may only be the last step`);
      current = n.output![0];
      break;
    }
    if (n.op_type === 'Div') {
      if (n.input![0] !== current) src.fail(`node '${n.name}' (Div) divides by the scores; only scores divided by a constant can be imported`);
      scale /= constantScalar(graph, n.input![1], src, n);
    } else if (n.op_type === 'Mul') {
      scale *= constantScalar(graph, n.input![0] === current ? n.input![1] : n.input![0], src, n);
    } else if (n.op_type === 'Slice') {
      // ONNX Slice: negative starts/ends/axes count from the end; ends beyond the dimension clamp (INT64_MAX: "to the end").
      const [start, end, axis, step] = [1, 2, 3, 4].map((k) => (n.input?.[k] ? constantScalar(graph, n.input[k], src, n) : undefined));
      if (start === undefined || end === undefined) src.fail(`node '${n.name}' (Slice) has no constant starts/ends`);
      const realAxis = axis === undefined ? 0 : axis < 0 ? axis + 2 : axis;
      if (realAxis !== 1 || (step !== undefined && step !== 1) || slice !== undefined) src.fail(`node '${n.name}' (Slice) must keep a range of classes along axis 1 (the probabilities are [N, classes]) with step 1, once`);
      slice = { start, end, axis: realAxis };
    } else if (n.op_type === 'Cast' && new Attributes(n, src).int('to', 0) !== DataType.FLOAT && new Attributes(n, src).int('to', 0) !== DataType.DOUBLE) {
      src.fail(`node '${n.name}' (Cast) casts the scores to type ${new Attributes(n, src).int('to', 0)}`);
    }
    current = n.output![0];
  }
  if (!outputs.has(current)) src.fail(`the scores of ${label} never reach a graph output`);
  if (!(scale > 0) || !Number.isFinite(scale)) src.fail(`the scores of ${label} are scaled by ${scale}; expected a positive finite constant`);
  const encoder = others.find((n) => n.op_type === 'LabelEncoder');
  const labelStrings = encoder ? new Attributes(encoder, src).strings('values_strings') : undefined;
  return { ensemble, opset: mlOpset, floatInput, scale, slice, labelStrings: labelStrings && labelStrings.length > 0 ? labelStrings : undefined };
}

/** An ONNX Slice start or end on a dimension of size K: negative counts from the end, out-of-range clamps. */
function resolveSliceBound(v: number, K: number): number {
  return Math.min(K, Math.max(0, v < 0 ? v + K : v));
}

/* ---------- the common tree representation ---------- */

/** Every node of every tree, one entry per ONNX node (leaves included), children as indexes. */
interface Ensemble {
  readonly roots: number[];
  readonly mode: Int8Array; // index into MODES, or LEAF
  readonly feature: Int32Array;
  readonly value: Float64Array; // threshold (or first set member)
  readonly members: (number[] | null)[]; // BRANCH_MEMBER sets
  readonly trueChild: Int32Array;
  readonly falseChild: Int32Array;
  readonly missingTrue: Uint8Array;
  /** Per node: class weights (length K) for leaves, else null. */
  readonly weights: (Float64Array | null)[];
  readonly classCount: number;
  /** Thresholds compare as float32 (a float input), else as doubles. */
  readonly floatCompare: boolean;
  readonly description: (i: number) => string;
}

function sameLength(a: Attributes, names: string[], src: Source, maxNodes: number): number {
  const lengths = names.map((n) => [n, a.ints(n, false).length] as const);
  for (const [, len] of lengths) checkCount(len, maxNodes, 'nodes', src);
  const n = lengths[0][1];
  for (const [name, len] of lengths) if (len !== n && !(name === 'nodes_missing_value_tracks_true' && len === 0)) src.fail(`${a.where(name)} has ${len} entries, but ${a.where(lengths[0][0])} has ${n}; every nodes_* attribute needs one entry per node`);
  return n;
}

function checkCount(n: number, maxNodes: number, what: string, src: Source): void {
  if (n > maxNodes) src.fail(`the model declares ${n.toLocaleString('en-US')} ${what}; the import limit is ${maxNodes.toLocaleString('en-US')} (raise it with --max-nodes if the file is trusted)`);
}

function readClassifier(node: NodeMessage, shape: GraphShape, src: Source, maxNodes: number): Ensemble & { classLabels: string[]; classIdsUsed: number[] } {
  const a = new Attributes(node, src);
  const post = a.string('post_transform', 'NONE');
  if (post !== 'NONE') src.fail(`${a.where('post_transform')} is ${post}: scores pass through ${post}, so they are not averaged class distributions (a boosted model?); only NONE can be imported`);
  const base = a.numbersOrTensor('base_values');
  if (base && base.values.some((v) => v !== 0)) src.fail(`${a.where('base_values')} is not zero: a forest of averaged distributions has no base score`);
  const n = sameLength(a, ['nodes_treeids', 'nodes_nodeids', 'nodes_featureids', 'nodes_truenodeids', 'nodes_falsenodeids', 'nodes_missing_value_tracks_true'], src, maxNodes);
  const treeIds = a.ints('nodes_treeids');
  const nodeIds = a.ints('nodes_nodeids');
  const featureIds = a.ints('nodes_featureids');
  const trueIds = a.ints('nodes_truenodeids');
  const falseIds = a.ints('nodes_falsenodeids');
  const missing = a.ints('nodes_missing_value_tracks_true', false);
  const modes = a.strings('nodes_modes');
  if (modes.length !== n) src.fail(`${a.where('nodes_modes')} has ${modes.length} entries, but there are ${n} nodes`);
  const values = a.numbersOrTensor('nodes_values');
  if (!values) src.fail(`${a.where('nodes_values')} (or nodes_values_as_tensor) is missing`);
  if (values.values.length !== n) src.fail(`${a.where(values.double ? 'nodes_values_as_tensor' : 'nodes_values')} has ${values.values.length} entries, but there are ${n} nodes`);
  const labels = a.strings('classlabels_strings');
  const labelInts = a.ints('classlabels_int64s', false);
  const K = labels.length > 0 ? labels.length : labelInts.length;
  if (K < 2) src.fail(`${a.where('classlabels_strings')} / classlabels_int64s lists ${K} classes; a classifier needs at least 2`);
  const cTree = a.ints('class_treeids');
  const cNode = a.ints('class_nodeids');
  const cId = a.ints('class_ids');
  const cWeight = a.numbersOrTensor('class_weights');
  if (!cWeight) src.fail(`${a.where('class_weights')} (or class_weights_as_tensor) is missing`);
  for (const [name, arr] of [['class_nodeids', cNode], ['class_ids', cId], ['class_weights', cWeight.values]] as const) {
    if (arr.length !== cTree.length) src.fail(`${a.where(name)} has ${arr.length} entries, but class_treeids has ${cTree.length}`);
  }

  const mode = new Int8Array(n);
  const feature = new Int32Array(n);
  const value = Float64Array.from(values.values);
  const trueChild = new Int32Array(n).fill(-1);
  const falseChild = new Int32Array(n).fill(-1);
  const missingTrue = new Uint8Array(n);
  const weights: (Float64Array | null)[] = new Array(n).fill(null);
  // (tree id, node id) → position. Trees are runs of equal tree ids; a run's first node is its root (ORT's rule).
  const index = new Map<number, Map<number, number>>();
  const roots: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = treeIds[i];
    let ids = index.get(t);
    if (i === 0 || treeIds[i - 1] !== t) {
      if (ids) src.fail(`the nodes of tree ${t} are not contiguous (position ${i} returns to it after another tree); ONNX Runtime would read two trees`);
      ids = new Map();
      index.set(t, ids);
      roots.push(i);
    }
    if (ids!.has(nodeIds[i])) src.fail(`tree ${t} declares node ${nodeIds[i]} twice (nodes_nodeids at positions ${ids!.get(nodeIds[i])} and ${i})`);
    ids!.set(nodeIds[i], i);
    const branch = MODES.indexOf(modes[i] as (typeof MODES)[number]);
    const m = modes[i] === 'LEAF' ? LEAF : branch;
    if (modes[i] !== 'LEAF' && (branch === -1 || branch === 6)) src.fail(`${a.where('nodes_modes')}[${i}] is '${modes[i]}'; expected LEAF or one of ${MODES.slice(0, 6).join(', ')}`);
    mode[i] = m;
    if (m !== LEAF && !(featureIds[i] >= 0 && featureIds[i] < 2 ** 31)) src.fail(`${a.where('nodes_featureids')}[${i}] is ${featureIds[i]}; expected a column index of the input`);
    feature[i] = featureIds[i];
    missingTrue[i] = missing[i] ? 1 : 0;
  }
  for (let i = 0; i < n; i++) {
    if (mode[i] === LEAF) continue;
    const ids = index.get(treeIds[i])!;
    for (const [arr, out, name] of [[trueIds, trueChild, 'nodes_truenodeids'], [falseIds, falseChild, 'nodes_falsenodeids']] as const) {
      const j = ids.get(arr[i]);
      if (j === undefined) src.fail(`tree ${treeIds[i]} node ${nodeIds[i]}: ${name} is ${arr[i]}, which is not a node of tree ${treeIds[i]}`);
      if (j === i) src.fail(`tree ${treeIds[i]} node ${nodeIds[i]}: ${name} points at the node itself (a cycle)`);
      out[i] = j;
    }
  }
  for (let e = 0; e < cTree.length; e++) {
    const j = index.get(cTree[e])?.get(cNode[e]);
    if (j === undefined) src.fail(`${a.where('class_nodeids')}[${e}] names tree ${cTree[e]} node ${cNode[e]}, which does not exist`);
    if (!Number.isInteger(cId[e]) || cId[e] < 0 || cId[e] >= K) src.fail(`${a.where('class_ids')}[${e}] is ${cId[e]}; there are ${K} classes`);
    if (mode[j] !== LEAF) continue; // ORT ignores weights on branch nodes (old onnxmltools wrote some)
    (weights[j] ??= new Float64Array(K))[cId[e]] += cWeight.values[e];
  }
  const classLabels = labels.length > 0 ? labels : labelInts.map(String);
  return {
    classIdsUsed: [...new Set(cId)].sort((x, y) => x - y),
    roots,
    mode,
    feature,
    value,
    members: new Array(n).fill(null),
    trueChild,
    falseChild,
    missingTrue,
    weights,
    classCount: K,
    floatCompare: shape.floatInput,
    classLabels,
    description: (i) => `tree ${treeIds[i]} node ${nodeIds[i]}`,
  };
}

function readTreeEnsemble(node: NodeMessage, shape: GraphShape, src: Source, maxNodes: number): Ensemble {
  const a = new Attributes(node, src);
  const post = a.int('post_transform', 0);
  if (post !== 0) src.fail(`${a.where('post_transform')} is ${post} (not NONE): scores are transformed, so they are not averaged class distributions; only NONE can be imported`);
  const agg = a.int('aggregate_function', 1);
  if (agg !== 0 && agg !== 1) src.fail(`${a.where('aggregate_function')} is ${agg === 2 ? 'MIN' : agg === 3 ? 'MAX' : agg}; only SUM and AVERAGE add up leaf weights`);
  const K = a.int('n_targets', 0);
  if (K < 2) src.fail(`${a.where('n_targets')} is ${K}; a classifier needs at least 2 targets`);
  const n = sameLength(a, ['nodes_featureids', 'nodes_truenodeids', 'nodes_trueleafs', 'nodes_falsenodeids', 'nodes_falseleafs', 'nodes_missing_value_tracks_true'], src, maxNodes);
  const modes = a.numbers('nodes_modes') ?? src.fail(`${a.where('nodes_modes')} is missing`);
  const splits = a.numbers('nodes_splits') ?? src.fail(`${a.where('nodes_splits')} is missing`);
  if (modes.length !== n || splits.length !== n) src.fail(`${a.where(modes.length !== n ? 'nodes_modes' : 'nodes_splits')} has ${modes.length !== n ? modes.length : splits.length} entries, but there are ${n} nodes`);
  const leafTargets = a.ints('leaf_targetids');
  const leafWeights = a.numbers('leaf_weights') ?? src.fail(`${a.where('leaf_weights')} is missing`);
  if (leafWeights.length !== leafTargets.length) src.fail(`${a.where('leaf_weights')} has ${leafWeights.length} entries, but leaf_targetids has ${leafTargets.length}`);
  const L = leafTargets.length;
  checkCount(n + L, maxNodes, 'nodes and leaves', src);
  const treeRoots = a.ints('tree_roots');
  const membership = a.numbers('membership_values') ?? [];
  const total = n + L;
  const mode = new Int8Array(total);
  const feature = new Int32Array(total);
  const value = new Float64Array(total);
  const members: (number[] | null)[] = new Array(total).fill(null);
  const trueChild = new Int32Array(total).fill(-1);
  const falseChild = new Int32Array(total).fill(-1);
  const missingTrue = new Uint8Array(total);
  const weights: (Float64Array | null)[] = new Array(total).fill(null);
  const feat = a.ints('nodes_featureids');
  const tIds = a.ints('nodes_truenodeids');
  const tLeaf = a.ints('nodes_trueleafs');
  const fIds = a.ints('nodes_falsenodeids');
  const fLeaf = a.ints('nodes_falseleafs');
  const miss = a.ints('nodes_missing_value_tracks_true', false);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const md = modes[i];
    if (!Number.isInteger(md) || md < 0 || md > 6) src.fail(`${a.where('nodes_modes')}[${i}] is ${md}; expected 0 (BRANCH_LEQ) to 6 (BRANCH_MEMBER)`);
    mode[i] = md;
    if (!(feat[i] >= 0 && feat[i] < 2 ** 31)) src.fail(`${a.where('nodes_featureids')}[${i}] is ${feat[i]}; expected a column index of the input`);
    feature[i] = feat[i];
    value[i] = splits[i];
    missingTrue[i] = miss[i] ? 1 : 0;
    if (md === 6) {
      const set: number[] = [];
      while (m < membership.length && !Number.isNaN(membership[m])) set.push(membership[m++]);
      if (m >= membership.length && set.length === 0) src.fail(`${a.where('membership_values')} has no set for BRANCH_MEMBER node ${i}`);
      m++;
      members[i] = set;
    }
    for (const [ids, leafs, out, name] of [[tIds, tLeaf, trueChild, 'nodes_truenodeids'], [fIds, fLeaf, falseChild, 'nodes_falsenodeids']] as const) {
      const j = ids[i];
      const limit = leafs[i] ? L : n;
      if (!Number.isInteger(j) || j < 0 || j >= limit) src.fail(`node ${i}: ${name} is ${j}, but there are ${limit} ${leafs[i] ? 'leaves' : 'nodes'}`);
      if (!leafs[i] && j === i) src.fail(`node ${i}: ${name} points at the node itself (a cycle)`);
      out[i] = leafs[i] ? n + j : j;
    }
  }
  for (let j = 0; j < L; j++) {
    const t = leafTargets[j];
    if (!Number.isInteger(t) || t < 0 || t >= K) src.fail(`${a.where('leaf_targetids')}[${j}] is ${t}; there are ${K} targets`);
    mode[n + j] = LEAF;
    const w = new Float64Array(K);
    w[t] = leafWeights[j];
    weights[n + j] = w;
  }
  const roots = treeRoots.map((r, t) => {
    if (!Number.isInteger(r) || r < 0 || r >= n) src.fail(`${a.where('tree_roots')}[${t}] is ${r}; there are ${n} nodes`);
    // A lone leaf is written as a node whose both branches reach it.
    return trueChild[r] === falseChild[r] && trueChild[r] >= n ? trueChild[r] : r;
  });
  if (agg === 0) for (const w of weights) if (w) for (let k = 0; k < K; k++) w[k] /= roots.length;
  return {
    roots,
    mode,
    feature,
    value,
    members,
    trueChild,
    falseChild,
    missingTrue,
    weights,
    classCount: K,
    floatCompare: shape.floatInput,
    description: (i) => (i < n ? `node ${i}` : `leaf ${i - n}`),
  };
}

/* ---------- branch semantics ---------- */

interface FeatureInfo {
  readonly spec: FeatureSpec;
  /** Encoded value of a missing input: NaN, or the spec's number. */
  readonly missing: number;
}

/** Does the branch's test hold for x (an input value, as the model receives it)? */
function holds(e: Ensemble, i: number, x: number): boolean {
  if (Number.isNaN(x)) return e.missingTrue[i] === 1 || e.mode[i] === 5;
  const t = e.floatCompare ? Math.fround(e.value[i]) : e.value[i];
  const v = e.floatCompare ? Math.fround(x) : x;
  switch (e.mode[i]) {
    case 0: return v <= t;
    case 1: return v < t;
    case 2: return v >= t;
    case 3: return v > t;
    case 4: return v === t;
    case 5: return v !== t;
    default: return e.members[i]!.some((mv) => (e.floatCompare ? Math.fround(mv) : mv) === v);
  }
}

/** A split in walker terms: numeric `x <= threshold` left, or a categorical left set; which child is left; where missing goes. */
type Branch =
  | { kind: 'numeric'; threshold: number; left: number; right: number; missingLeft: boolean }
  | { kind: 'categorical'; leftCodes: Uint8Array; left: number; right: number; missingLeft: boolean }
  | { kind: 'constant'; child: number };

function numericBranch(e: Ensemble, i: number, info: FeatureInfo, src: Source): Branch {
  const m = e.mode[i];
  if (m >= 4) src.fail(`${e.description(i)}: ${MODES[m]} on feature ${info.spec.name}, which the spec declares numeric; list it in categorical_codes to import set-membership splits`);
  const t = e.value[i];
  if (Number.isNaN(t)) src.fail(`${e.description(i)}: its threshold is NaN`);
  // x <= thr ⇔ the test holds (LEQ, LT) or fails (GTE, GT).
  const strict = m === 1 || m === 2; // LT, GTE: the boundary is "x < t"
  const tt = e.floatCompare ? Math.fround(t) : t;
  let thr: number;
  if (strict && tt === -Infinity) thr = -Infinity; // x < -∞ never holds: every number goes right
  else if (e.floatCompare) thr = largestDoubleRoundingAtMost(strict ? prevFloat32(tt) : tt);
  else thr = strict ? nextDown(tt) : tt;
  const trueIsLeft = m === 0 || m === 1;
  const left = trueIsLeft ? e.trueChild[i] : e.falseChild[i];
  const right = trueIsLeft ? e.falseChild[i] : e.trueChild[i];
  const missingLeft = holds(e, i, info.missing) === trueIsLeft;
  if (thr === Infinity || (strict && tt === -Infinity)) {
    // Every number goes one way: the node is that child when missing values go there too.
    const everyNumberLeft = thr === Infinity;
    if (everyNumberLeft === missingLeft) return { kind: 'constant', child: everyNumberLeft ? left : right };
  }
  if (!Number.isFinite(thr)) src.fail(`${e.description(i)}: threshold ${t} cannot be stored in format v1 (thresholds are finite) with missing values going ${missingLeft ? 'left' : 'right'}`);
  return { kind: 'numeric', threshold: thr, left, right, missingLeft };
}

function categoricalBranch(e: Ensemble, i: number, info: FeatureInfo & { spec: { categories: string[] } }): Branch {
  const C = info.spec.categories.length;
  const codes = new Uint8Array(C);
  let count = 0;
  for (let c = 0; c < C; c++) count += codes[c] = holds(e, i, c) ? 1 : 0;
  const missingTrue = holds(e, i, info.missing);
  if ((count === C && missingTrue) || (count === 0 && !missingTrue)) return { kind: 'constant', child: count === C ? e.trueChild[i] : e.falseChild[i] };
  return { kind: 'categorical', leftCodes: codes, left: e.trueChild[i], right: e.falseChild[i], missingLeft: missingTrue };
}

/** Folds chains on one categorical feature whose edges share a child (EQ/NEQ chains) into one split. */
function foldChain(e: Ensemble, b: Branch & { kind: 'categorical' }, f: number, features: FeatureInfo[]): Branch {
  for (let guard = 0; guard < 1 << 20; guard++) {
    const r = b.right;
    const l = b.left;
    const next = (j: number): (Branch & { kind: 'categorical' }) | null => {
      if (e.mode[j] === LEAF || e.feature[j] !== f) return null;
      const nb = categoricalBranch(e, j, features[f] as FeatureInfo & { spec: { categories: string[] } });
      return nb.kind === 'categorical' ? nb : null;
    };
    const rb = next(r);
    if (rb && rb.left === l) {
      // left ∪ (right's left): x goes left if it passes here, or fails here and passes there.
      const codes = b.leftCodes.map((v, c) => v | rb.leftCodes[c]);
      b = { kind: 'categorical', leftCodes: codes, left: l, right: rb.right, missingLeft: b.missingLeft || rb.missingLeft };
      continue;
    }
    const lb = next(l);
    if (lb && lb.right === r) {
      const codes = b.leftCodes.map((v, c) => v & lb.leftCodes[c]);
      b = { kind: 'categorical', leftCodes: codes, left: lb.left, right: r, missingLeft: b.missingLeft && lb.missingLeft };
      continue;
    }
    return b;
  }
  return b;
}

/* ---------- building the forest ---------- */

function featureInfos(spec: InputSpec, usedMax: number, src: Source): FeatureInfo[] {
  if (usedMax >= spec.features.length) src.fail(`the model reads feature index ${usedMax}, but the spec lists ${spec.features.length} features`);
  return spec.features.map((name) => {
    const cats = spec.categoricalCodes[name];
    return { spec: cats ? { name, kind: 'categorical' as const, categories: cats.slice() } : { name, kind: 'numeric' as const }, missing: spec.missingEncodedAs };
  });
}

/** Finds cycles (a node reached again on its own path) before anything is expanded. */
function checkAcyclic(e: Ensemble, src: Source): void {
  const state = new Uint8Array(e.mode.length); // 0 new, 1 on the path, 2 done
  for (const root of e.roots) {
    if (state[root] === 2) continue;
    const stack = [root];
    while (stack.length > 0) {
      const i = stack[stack.length - 1];
      if (state[i] === 0) {
        state[i] = 1;
        if (e.mode[i] !== LEAF) {
          for (const j of [e.trueChild[i], e.falseChild[i]]) {
            if (state[j] === 1) src.fail(`${e.description(i)} leads back to ${e.description(j)}, which is above it: the tree has a cycle`);
            if (state[j] === 0) stack.push(j);
          }
        }
      } else {
        if (state[i] === 1) state[i] = 2;
        stack.pop();
      }
    }
  }
}

function buildTree(e: Ensemble, root: number, features: FeatureInfo[], K: number, leafDist: (leaf: number) => number[], budget: { left: number }, src: Source): TreeV1 {
  const t: TreeV1 = { feature: [], threshold: [], left: [], right: [], defaultLeft: [], value: [], count: [], catBits: [] };
  const queue: number[] = [root];
  for (let head = 0; head < queue.length; head++) {
    if (--budget.left < 0) src.fail(`the trees expand to more nodes than the import limit (shared subtrees are copied); raise it with --max-nodes if the file is trusted`);
    let i = queue[head];
    let b: Branch | null = null;
    // Skip nodes whose every input goes one way.
    for (;;) {
      if (e.mode[i] === LEAF) break;
      const f = e.feature[i];
      const info = features[f];
      if (info === undefined) src.fail(`${e.description(i)} reads feature ${f}, but the spec lists ${features.length} features`);
      b = info.spec.kind === 'numeric' ? numericBranch(e, i, info, src) : foldChain(e, categoricalBranch(e, i, info as FeatureInfo & { spec: { categories: string[] } }) as Branch & { kind: 'categorical' }, f, features);
      if (b.kind !== 'constant') break;
      i = b.child;
      b = null;
    }
    if (b === null) {
      t.feature.push(-1);
      t.threshold.push(0);
      t.left.push(-1);
      t.right.push(-1);
      t.defaultLeft.push(0);
      t.value.push(...leafDist(i));
      t.count.push(1);
      continue;
    }
    const f = e.feature[i];
    t.feature.push(f);
    t.defaultLeft.push(b.missingLeft ? 1 : 0);
    if (b.kind === 'numeric') {
      t.threshold.push(b.threshold);
    } else {
      const offset = t.catBits.length;
      const words = Math.ceil(b.leftCodes.length / 32);
      for (let w = 0; w < words; w++) t.catBits.push(0);
      b.leftCodes.forEach((v, c) => {
        if (v) t.catBits[offset + (c >>> 5)] |= 1 << (c & 31);
      });
      t.threshold.push(offset);
    }
    t.value.push(...new Array<number>(K).fill(0));
    t.count.push(0);
    t.left.push(queue.length);
    queue.push(b.left);
    t.right.push(queue.length);
    queue.push(b.right);
  }
  // Internal distributions (explanations only): children weighted by the leaves below them.
  for (let i = t.feature.length - 1; i >= 0; i--) {
    if (t.feature[i] < 0) continue;
    const l = t.left[i];
    const r = t.right[i];
    t.count[i] = t.count[l] + t.count[r];
    for (let k = 0; k < K; k++) t.value[i * K + k] = (t.count[l] * t.value[l * K + k] + t.count[r] * t.value[r * K + k]) / t.count[i];
  }
  return t;
}

/** Reads an ONNX file's bytes into a sealed forest. Throws OnnxImportError (a UserError) naming what cannot be imported. */
export function importOnnxForest(bytes: Uint8Array, options: OnnxImportOptions = {}): { forest: ForestFileV1; summary: OnnxImportSummary } {
  const sourceName = options.source ?? '<onnx>';
  const src: Source = {
    name: sourceName,
    fail: (problem: string): never => {
      throw new OnnxImportError(sourceName, problem);
    },
  };
  const maxNodes = options.maxNodes ?? DEFAULT_MAX_NODES;
  const onnxSha256 = createHash('sha256').update(bytes).digest('hex');
  // Counted on the wire before decoding: a file declaring 10^7 nodes is refused before protobufjs
  // builds a number or a buffer per entry (decoding costs ~10x the file's bytes).
  const counts = scanAttributeCounts(bytes);
  if (counts) {
    const classes = Math.max(1, counts.get('classlabels_strings') ?? 0, counts.get('classlabels_int64s') ?? 0);
    for (const [name, n] of counts) {
      if (/^(nodes_|leaf_|tree_roots$|membership_values$)/.test(name)) checkCount(n, maxNodes, `nodes (attribute ${name})`, src);
      else if (name.startsWith('class_')) checkCount(n, maxNodes * classes, `class weight entries (attribute ${name}, ${classes} classes)`, src);
    }
  }
  let model: ModelMessage;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    if (err instanceof ProtobufDecodeError) src.fail(`not a valid ONNX model: the protobuf is truncated or corrupt near byte ${err.offset ?? '?'} of ${bytes.length} (${err.detail})`);
    throw err;
  }
  const shape = readGraph(model, src);
  const meta = new Map((model.metadata_props ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const ensemble = shape.ensemble.op_type === 'TreeEnsemble' ? readTreeEnsemble(shape.ensemble, shape, src, maxNodes) : readClassifier(shape.ensemble, shape, src, maxNodes);
  checkAcyclic(ensemble, src);

  // The input description: --features, else the model's own metadata (pricesense exports carry it).
  let spec = options.spec;
  if (!spec && meta.has(META.features)) {
    try {
      spec = parseInputSpec({ features: JSON.parse(meta.get(META.features)!), categorical_codes: JSON.parse(meta.get(META.categoricalCodes) ?? '{}'), missing_encoded_as: meta.get(META.missingEncodedAs) ?? 'NaN' }, `${sourceName} metadata_props`);
    } catch (err) {
      if (err instanceof SyntaxError) src.fail(`metadata_props '${META.features}' / '${META.categoricalCodes}' is not valid JSON`);
      throw err;
    }
  }
  if (!spec) src.fail('the model does not name its input columns: pass --features spec.json (features, categorical_codes, missing_encoded_as)');
  let maxFeature = -1;
  for (let i = 0; i < ensemble.mode.length; i++) if (ensemble.mode[i] !== LEAF) maxFeature = Math.max(maxFeature, ensemble.feature[i]);
  for (let i = 0; i < ensemble.mode.length; i++) if (ensemble.mode[i] !== LEAF && ensemble.feature[i] < 0) src.fail(`${ensemble.description(i)} reads feature ${ensemble.feature[i]}`);
  const features = featureInfos(spec, maxFeature, src);

  // Classes: the classifier's labels (names from the spec for integer ids), less classes sliced off unused.
  let K = ensemble.classCount;
  let classes: string[] = 'classLabels' in ensemble ? (ensemble as { classLabels: string[] }).classLabels : (shape.labelStrings ?? Array.from({ length: K }, (_, k) => String(k)));
  if (spec.classes && 'classLabels' in ensemble && !(ensemble as { classLabels: string[] }).classLabels.some((l) => Number.isNaN(Number(l)))) {
    const ids = spec.classIds ?? spec.classes.map((_, i) => i);
    classes = classes.map((l) => {
      const at = ids.indexOf(Number(l));
      return at >= 0 ? spec!.classes![at] : l;
    });
  }
  const leaves: number[] = [];
  for (let i = 0; i < ensemble.mode.length; i++) if (ensemble.mode[i] === LEAF) leaves.push(i);
  const sliceEnd = shape.slice ? resolveSliceBound(shape.slice.end, K) : K;
  if (shape.slice && (resolveSliceBound(shape.slice.start, K) !== 0 || sliceEnd < 2)) src.fail(`the Slice of the scores keeps classes ${shape.slice.start} to ${shape.slice.end} of ${K}; only a Slice keeping the first two or more classes can be imported`);
  if (sliceEnd < K) {
    for (const i of leaves) for (let k = sliceEnd; k < K; k++) if ((ensemble.weights[i]?.[k] ?? 0) !== 0) src.fail(`the Slice keeps ${sliceEnd} of ${K} classes, but ${ensemble.description(i)} weights class ${k}`);
    K = sliceEnd;
    classes = classes.slice(0, K);
  }
  if (new Set(classes).size !== classes.length) src.fail(`class labels are not unique: ${classes.join(', ')}`);

  // The trees the forest will hold: ONNX trees as they are, or (TreeEnsemble) groups of per-class copies.
  const T = ensemble.roots.length;
  if (T === 0) src.fail('the ensemble has no trees');
  // Two classes scored by one class's weights only (ORT's binary_case_): that weight is p(class 1), whichever id
  // carries it. skl2onnx writes RandomForestClassifier's p(class 1) under class id 0; older writers under id 1.
  let positive: number | undefined;
  if ('classIdsUsed' in ensemble && ensemble.classCount === 2) {
    const used = (ensemble as { classIdsUsed: number[] }).classIdsUsed;
    if (used.length === 1) positive = used[0];
    else if (leaves.every((i) => (ensemble.weights[i]?.[0] ?? 0) === 0)) positive = 1;
  }
  const binary = positive !== undefined;
  // probabilities = scale × Σ_trees w; the forest's = mean of distributions: each leaf must total 1/(scale·T).
  const expected = 1 / (shape.scale * T);
  const tolerance = shape.ensemble.op_type === 'TreeEnsemble' || (ensemble.floatCompare === false && shape.scale !== 1) ? 1e-9 : 1e-5;
  const leafDist = (i: number): number[] => {
    const w = ensemble.weights[i] ?? new Float64Array(K);
    const d = new Array<number>(K).fill(0);
    if (binary) {
      const p = w[positive!] / expected;
      if (!(p >= -tolerance && p <= 1 + tolerance)) src.fail(`${ensemble.description(i)}: the positive class's weight ${w[positive!]} (class id ${positive}) is not a probability share (expected 0 to ${expected})`);
      d[1] = Math.min(1, Math.max(0, p));
      d[0] = 1 - d[1];
      return d;
    }
    let sum = 0;
    for (let k = 0; k < K; k++) {
      if (w[k] < 0) src.fail(`${ensemble.description(i)}: class ${classes[k]} has a negative weight (${w[k]}); averaged class distributions are non-negative`);
      sum += w[k];
    }
    if (!(Math.abs(sum - expected) <= tolerance * expected)) {
      src.fail(
        `${ensemble.description(i)}: its class weights sum to ${sum}, but an average of ${T} per-tree distributions${shape.scale !== 1 ? ` scaled by ${shape.scale}` : ''} needs ${expected} at every leaf ` +
          '(a boosted or weighted ensemble, or probabilities that do not sum to 1)',
      );
    }
    for (let k = 0; k < K; k++) d[k] = w[k] / sum;
    return d;
  };

  const budget = { left: maxNodes };
  let trees: TreeV1[];
  if (shape.ensemble.op_type === 'TreeEnsemble' && !leaves.every((i) => Math.abs(ensemble.weights[i]!.reduce((a, b) => a + b, 0) - expected) <= 1e-9 * expected)) {
    trees = mergePerClassCopies(ensemble, features, K, budget, src, shape.scale);
  } else {
    trees = ensemble.roots.map((root) => buildTree(ensemble, root, features, K, leafDist, budget, src));
  }

  const exportedFrom = meta.get(META.forestSha256);
  const forest = sealForest({
    format: FOREST_FORMAT_ID,
    formatVersion: FOREST_FORMAT_VERSION,
    classes,
    features: features.map((f) => f.spec),
    aggregation: 'soft',
    trees,
    training: {
      trainer: 'onnx-import',
      hyperparameters: {
        onnxOperator: shape.ensemble.op_type,
        onnxOpset: shape.opset,
        onnxProducer: [model.producer_name, model.producer_version].filter(Boolean).join(' ') || null,
        inputType: ensemble.floatCompare ? 'float' : 'double',
        missingEncodedAs: Number.isNaN(spec.missingEncodedAs) ? 'NaN' : spec.missingEncodedAs,
      },
      seed: 0,
      datasetManifestSha256: null,
      rows: 0,
      createdAt: options.createdAt ?? new Date().toISOString(),
      ...(codeVersion() ? { codeVersion: codeVersion() } : {}),
      lineage: `imported from ${onnxSha256}`,
      onnxSha256,
      ...(exportedFrom ? { exportedForestSha256: exportedFrom } : {}),
    } as ForestFileV1['training'],
    featureStats: {},
    metrics: {},
  });
  let forestNodes = 0;
  for (const t of trees) forestNodes += t.feature.length;
  return {
    forest,
    summary: { operator: shape.ensemble.op_type!, opset: shape.opset, onnxSha256, onnxNodes: ensemble.mode.length, trees: trees.length, forestNodes, inputType: ensemble.floatCompare ? 'float' : 'double' },
  };
}

/**
 * TreeEnsemble leaves feed one target each, so a K-class soft forest is written as K
 * copies of every tree, copy k feeding class k. Consecutive groups of K trees of one
 * structure are merged back into one tree whose leaves hold the K weights.
 */
function mergePerClassCopies(e: Ensemble, features: FeatureInfo[], K: number, budget: { left: number }, src: Source, scale: number): TreeV1[] {
  if (e.roots.length % K !== 0) src.fail(`the ${e.roots.length} trees have leaves with different weights, and they are not groups of ${K} per-class copies: not an average of per-tree class distributions`);
  const T = e.roots.length / K;
  const expected = 1 / (scale * T);
  const trees: TreeV1[] = [];
  for (let g = 0; g < T; g++) {
    const group = e.roots.slice(g * K, g * K + K);
    // Walk the K copies in lockstep; they must match node for node, copy k's leaves feeding class k only.
    const merged = new Map<number, Float64Array>();
    const stack: number[][] = [group];
    while (stack.length > 0) {
      const nodes = stack.pop()!;
      const first = nodes[0];
      for (let k = 0; k < K; k++) {
        const j = nodes[k];
        const same = e.mode[j] === e.mode[first] && (e.mode[j] === LEAF || (e.feature[j] === e.feature[first] && Object.is(e.value[j], e.value[first]) && e.missingTrue[j] === e.missingTrue[first] && String(e.members[j]) === String(e.members[first])));
        if (!same) src.fail(`trees ${g * K} to ${g * K + K - 1} are not copies of one tree (${e.description(j)} differs from ${e.description(first)}): the leaves' weights are not an average of per-tree class distributions`);
      }
      if (e.mode[first] === LEAF) {
        const w = new Float64Array(K);
        for (let k = 0; k < K; k++) {
          const wk = e.weights[nodes[k]]!;
          for (let c = 0; c < K; c++) if (c !== k && wk[c] !== 0) src.fail(`${e.description(nodes[k])} in copy ${k} of tree ${g} feeds class ${c}`);
          w[k] = wk[k];
        }
        merged.set(first, w);
        continue;
      }
      stack.push(nodes.map((j) => e.trueChild[j]), nodes.map((j) => e.falseChild[j]));
    }
    const dist = (leaf: number): number[] => {
      const w = merged.get(leaf)!;
      const sum = w.reduce((a, b) => a + b, 0);
      if (!(Math.abs(sum - expected) <= 1e-9 * expected) || w.some((v) => v < 0)) src.fail(`${e.description(leaf)}: its class weights over the ${K} copies sum to ${sum}, expected ${expected}`);
      return Array.from(w, (v) => v / sum);
    };
    trees.push(buildTree(e, group[0], features, K, dist, budget, src));
  }
  return trees;
}

/** importOnnxForest without the summary. */
export function onnxToForest(bytes: Uint8Array, options: OnnxImportOptions = {}): ForestFileV1 {
  return importOnnxForest(bytes, options).forest;
}
