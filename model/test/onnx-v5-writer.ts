/**
 * Test-only: writes a forest as an ai.onnx.ml TreeEnsemble (opset 5) graph — K copies
 * of each tree for soft voting (copy k's leaves feed class k), one copy for hard voting
 * (leaves feed their vote) — so the importer's opset-5 path is tested on files whose
 * meaning is known. Numeric splits are BRANCH_LEQ, categorical ones BRANCH_MEMBER over
 * the left set; NaN follows defaultLeft. (The product exports TreeEnsembleClassifier:
 * see model/onnx/export.ts for why.)
 */
import type { ForestFileV1 } from '../format';
import { AttrType, DataType, encodeModel, type AttributeMessage, type TensorMessage } from '../onnx/proto';

const ints = (name: string, v: number[]): AttributeMessage => ({ name, type: AttrType.INTS, ints: v });
const int = (name: string, i: number): AttributeMessage => ({ name, type: AttrType.INT, i });
function doubles(name: string, v: number[]): AttributeMessage {
  const raw = Buffer.alloc(v.length * 8);
  v.forEach((x, i) => raw.writeDoubleLE(x, i * 8));
  const t: TensorMessage = { name, dims: [v.length], data_type: DataType.DOUBLE, raw_data: raw };
  return { name, type: AttrType.TENSOR, t };
}

export function forestToTreeEnsembleV5(forest: ForestFileV1, options: { aggregate?: 'SUM' | 'AVERAGE' } = {}): Uint8Array {
  const K = forest.classes.length;
  const soft = forest.aggregation === 'soft';
  const a = { feat: [] as number[], splits: [] as number[], modes: [] as number[], tIds: [] as number[], tLeaf: [] as number[], fIds: [] as number[], fLeaf: [] as number[], miss: [] as number[], members: [] as number[], roots: [] as number[], targets: [] as number[], weights: [] as number[] };
  const T = forest.trees.length;
  const copies = soft ? K : 1;
  // AVERAGE divides by the number of ONNX trees (T copies × K): scale the weights up to compensate.
  const w = (x: number) => (options.aggregate === 'AVERAGE' ? x * copies : x / T);
  for (const tree of forest.trees) {
    for (let copy = 0; copy < copies; copy++) {
      const leaf = (i: number): number => {
        let best = 0;
        for (let k = 1; k < K; k++) if (tree.value[i * K + k] > tree.value[i * K + best]) best = k;
        a.targets.push(soft ? copy : best);
        a.weights.push(w(soft ? tree.value[i * K + copy] : 1));
        return a.targets.length - 1;
      };
      const node = (i: number): number => {
        const f = tree.feature[i];
        const spec = forest.features[f];
        a.feat.push(f);
        a.miss.push(tree.defaultLeft[i]);
        if (spec.kind === 'numeric') {
          a.modes.push(0);
          a.splits.push(tree.threshold[i]);
        } else {
          a.modes.push(6);
          a.splits.push(0);
          for (let c = 0; c < spec.categories.length; c++) if ((tree.catBits[tree.threshold[i] + (c >>> 5)] >>> (c & 31)) & 1) a.members.push(c);
          a.members.push(NaN);
        }
        a.tIds.push(0);
        a.tLeaf.push(0);
        a.fIds.push(0);
        a.fLeaf.push(0);
        return a.feat.length - 1;
      };
      if (tree.feature[0] < 0) {
        const row = node0();
        const l = leaf(0);
        a.tIds[row] = l;
        a.fIds[row] = l;
        a.tLeaf[row] = 1;
        a.fLeaf[row] = 1;
        a.roots.push(row);
        continue;
      }
      const root = node(0);
      a.roots.push(root);
      const stack: [number, number][] = [[0, root]];
      while (stack.length > 0) {
        const [i, row] = stack.pop()!;
        for (const [child, ids, leafs] of [[tree.left[i], a.tIds, a.tLeaf], [tree.right[i], a.fIds, a.fLeaf]] as const) {
          if (tree.feature[child] < 0) {
            ids[row] = leaf(child);
            leafs[row] = 1;
          } else {
            const r = node(child);
            ids[row] = r;
            stack.push([child, r]);
          }
        }
      }
      function node0(): number {
        a.feat.push(0);
        a.miss.push(0);
        a.modes.push(0);
        a.splits.push(0);
        a.tIds.push(0);
        a.tLeaf.push(0);
        a.fIds.push(0);
        a.fLeaf.push(0);
        return a.feat.length - 1;
      }
    }
  }
  const attribute: AttributeMessage[] = [
    int('n_targets', K),
    int('aggregate_function', options.aggregate === 'AVERAGE' ? 0 : 1),
    int('post_transform', 0),
    ints('tree_roots', a.roots),
    ints('nodes_featureids', a.feat),
    doubles('nodes_splits', a.splits),
    { name: 'nodes_modes', type: AttrType.TENSOR, t: { name: 'nodes_modes', dims: [a.modes.length], data_type: DataType.UINT8, raw_data: Uint8Array.from(a.modes) } },
    ints('nodes_truenodeids', a.tIds),
    ints('nodes_trueleafs', a.tLeaf),
    ints('nodes_falsenodeids', a.fIds),
    ints('nodes_falseleafs', a.fLeaf),
    ints('nodes_missing_value_tracks_true', a.miss),
    ints('leaf_targetids', a.targets),
    doubles('leaf_weights', a.weights),
  ];
  if (a.members.length > 0) attribute.push(doubles('membership_values', a.members));
  const tensor = (name: string, elem: number, dims: (number | string)[]) => ({ name, type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } } });
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }, { domain: 'ai.onnx.ml', version: 5 }],
    producer_name: 'test',
    graph: {
      name: 'v5',
      node: [
        { name: 'forest', op_type: 'TreeEnsemble', domain: 'ai.onnx.ml', input: ['X'], output: ['probabilities'], attribute },
        { name: 'top', op_type: 'ArgMax', domain: '', input: ['probabilities'], output: ['index'], attribute: [int('axis', 1), int('keepdims', 0)] },
        { name: 'names', op_type: 'LabelEncoder', domain: 'ai.onnx.ml', input: ['index'], output: ['label'], attribute: [ints('keys_int64s', forest.classes.map((_, k) => k)), { name: 'values_strings', type: AttrType.STRINGS, strings: forest.classes.map((c) => Buffer.from(c)) }] },
      ],
      input: [tensor('X', DataType.DOUBLE, ['N', forest.features.length])],
      output: [tensor('label', DataType.STRING, ['N']), tensor('probabilities', DataType.DOUBLE, ['N', K])],
    },
  });
}
