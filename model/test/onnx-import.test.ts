/**
 * @jest-environment ./bench/ort-jest-environment.js
 */
import { againstOrt, ortScorer, ortSession } from '../../bench/onnx-peer';
import type { ForestFileV1 } from '../format';
import { forestToOnnx, UNUSED_CLASS_LABEL } from '../onnx/export';
import { importOnnxForest, largestDoubleRoundingAtMost, onnxToForest } from '../onnx/import';
import { parseInputSpec, type InputSpec } from '../onnx/input-spec';
import { AttrType, DataType, decodeModel, encodeModel, type ModelMessage } from '../onnx/proto';
import { CompiledForest, type RawRow } from '../walker';
import { nextDown } from '../import-ml-rf';
import { nextUp, probeRows, sklearnFixture, trainedForest } from './onnx-fixtures';
import { forestToTreeEnsembleV5 } from './onnx-v5-writer';
import { randomForest, randomRow, rng } from './random-forest-fixture';


function specOf(forest: ForestFileV1): InputSpec {
  const codes: Record<string, string[]> = {};
  for (const f of forest.features) if (f.kind === 'categorical') codes[f.name] = f.categories;
  return { features: forest.features.map((f) => f.name), categoricalCodes: codes, missingEncodedAs: NaN };
}

/** Max |Δp| and label mismatches of two forests on the same raw rows. */
function compare(a: ForestFileV1, b: ForestFileV1, rows: RawRow[]): { labelMismatches: number; maxProbDiff: number } {
  const pa = CompiledForest.compile(a).predictBatch(rows);
  const pb = CompiledForest.compile(b).predictBatch(rows);
  let labelMismatches = 0;
  let maxProbDiff = 0;
  for (let r = 0; r < rows.length; r++) if (pa.labels[r] !== pb.labels[r]) labelMismatches++;
  for (let i = 0; i < pa.probabilities.length; i++) maxProbDiff = Math.max(maxProbDiff, Math.abs(pa.probabilities[i] - pb.probabilities[i]));
  return { labelMismatches, maxProbDiff };
}

/** The walker's labels and max |Δp| against scikit-learn's on the fixture rows. */
function againstSklearn(forest: ForestFileV1, fx: ReturnType<typeof sklearnFixture>): { labels: string[]; maxDiff: number } {
  const got = CompiledForest.compile(forest).predictBatch(fx.rows);
  let maxDiff = 0;
  fx.expectedProba.forEach((p, r) => p.forEach((v, k) => (maxDiff = Math.max(maxDiff, Math.abs(got.probabilities[r * 3 + k] - v)))));
  return { labels: got.labels, maxDiff };
}

describe('ONNX import', () => {
  it("the scikit-learn fixture: the walker matches scikit-learn's predict_proba within 1e-5 and its labels exactly", () => {
    const fx = sklearnFixture();
    const { forest, summary } = importOnnxForest(fx.bytes, { spec: fx.spec, source: 'model.onnx' });
    expect(summary).toMatchObject({ operator: 'TreeEnsembleClassifier', opset: 3, trees: 30, onnxNodes: 27814, inputType: 'float' });
    expect(forest.classes).toEqual(['High', 'Low', 'Medium']);
    expect((forest.training as unknown as Record<string, unknown>).lineage).toMatch(/^imported from [0-9a-f]{64}$/);
    expect(fx.rows).toHaveLength(1920);
    const got = againstSklearn(forest, fx);
    expect(got.labels).toEqual(fx.expectedLabel);
    expect(got.maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it("skl2onnx's default graph (zipmap=True): probabilities through a ZipMap, the label through a Cast", () => {
    const fx = sklearnFixture();
    const m = decodeModel(fx.bytes);
    const tec = m.graph!.node!.find((n) => n.op_type === 'TreeEnsembleClassifier')!;
    const [label, probabilities] = tec.output!;
    m.graph!.node!.push(
      { op_type: 'Cast', name: 'Cast', domain: '', input: [label], output: ['output_label'], attribute: [{ name: 'to', type: AttrType.INT, i: DataType.INT64 }] },
      { op_type: 'ZipMap', name: 'ZipMap', domain: 'ai.onnx.ml', input: [probabilities], output: ['output_probability'], attribute: [{ name: 'classlabels_int64s', type: AttrType.INTS, ints: [0, 1, 2] }] },
    );
    m.graph!.output = [{ name: 'output_label' }, { name: 'output_probability' }];
    const got = againstSklearn(importOnnxForest(encodeModel(m), { spec: fx.spec, source: 'zipmap.onnx' }).forest, fx);
    expect(got.labels).toEqual(fx.expectedLabel);
    expect(got.maxDiff).toBeLessThanOrEqual(1e-5);
    // A ZipMap in the middle of the path is not the last step: refused by name.
    m.graph!.output = [{ name: 'output_label' }, { name: 'later' }];
    m.graph!.node!.push({ op_type: 'Identity', name: 'after_zipmap', domain: '', input: ['output_probability'], output: ['later'] });
    expect(() => onnxToForest(encodeModel(m), { spec: fx.spec, source: 'zipmap.onnx' })).toThrow(/node 'ZipMap' \(ZipMap\) turns the scores into a map that is not a graph output/);
  });

  it.each([1, 7, 60, 200])('round trip of a trained %i-tree forest: export → import predicts exactly as the original', async (trees) => {
    const forest = await trainedForest(trees, trees);
    const back = onnxToForest(forestToOnnx(forest));
    expect(back.features).toEqual(forest.features);
    expect(back.trees.map((t) => t.feature.length)).toEqual(forest.trees.map((t) => t.feature.length));
    const d = compare(forest, back, probeRows(forest, 10_000, trees));
    expect(d.labelMismatches).toBe(0);
    expect(d.maxProbDiff).toBeLessThanOrEqual(1e-12);
  });

  it('round trip of random forests: 2 to 4 classes, hard and soft, up to 70 categories', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const forest = randomForest(seed, seed % 2 === 0 ? { aggregation: 'hard', voteTieBreak: 'lowest-index', trees: 1 + (seed % 6) } : {});
      const back = onnxToForest(forestToOnnx(forest));
      const rand = rng(seed);
      const d = compare(forest, back, Array.from({ length: 300 }, () => randomRow(rand, forest.features)));
      expect({ seed, ...d, close: d.maxProbDiff <= 1e-12 }).toEqual({ seed, labelMismatches: 0, maxProbDiff: d.maxProbDiff, close: true });
    }
  });

  it('TreeEnsemble (opset 5): per-class tree copies (SUM and AVERAGE) and one-copy votes, BRANCH_MEMBER sets', async () => {
    const trainedSoft = await trainedForest(7, 7);
    const cases: [ForestFileV1, 'SUM' | 'AVERAGE'][] = [
      [trainedSoft, 'SUM'],
      [trainedSoft, 'AVERAGE'],
      [randomForest(12, { aggregation: 'hard', voteTieBreak: 'lowest-index', trees: 5 }), 'SUM'],
    ];
    for (const [forest, aggregate] of cases) {
      const bytes = forestToTreeEnsembleV5(forest, { aggregate });
      const { forest: back, summary } = importOnnxForest(bytes, { spec: specOf(forest) });
      expect(summary).toMatchObject({ operator: 'TreeEnsemble', opset: 5, trees: forest.trees.length });
      const rand = rng(3);
      const rows = forest === trainedSoft ? probeRows(forest, 3000, 7) : Array.from({ length: 500 }, () => randomRow(rand, forest.features));
      const d = compare(forest, back, rows);
      expect({ labelMismatches: d.labelMismatches, close: d.maxProbDiff <= 1e-9 }).toEqual({ labelMismatches: 0, close: true });
    }
  });

  it('TreeEnsemble (opset 5) on numeric splits: the import agrees with ONNX Runtime on the same file', async () => {
    const forest = randomForest(40, { trees: 6, classes: 3 });
    const numericOnly = { ...forest, features: forest.features.map((f) => ({ name: f.name, kind: 'numeric' as const })) };
    const trees = forest.trees.map((t) => ({ ...t, feature: t.feature.map((f) => (f >= 0 && forest.features[f].kind === 'categorical' ? -1 : f)) }));
    // Keep only numeric splits: cut categorical ones into leaves by rebuilding from the root.
    const pruned = trees.map((t) => {
      const out = { feature: [] as number[], threshold: [] as number[], left: [] as number[], right: [] as number[], defaultLeft: [] as number[], value: [] as number[], count: [] as number[], catBits: [] as number[] };
      const q = [0];
      for (let h = 0; h < q.length; h++) {
        const i = q[h];
        const K = 3;
        out.value.push(...t.value.slice(i * K, i * K + K));
        out.count.push(1);
        out.defaultLeft.push(t.defaultLeft[i]);
        out.threshold.push(t.feature[i] >= 0 ? t.threshold[i] : 0);
        out.feature.push(t.feature[i]);
        if (t.feature[i] < 0) {
          out.left.push(-1);
          out.right.push(-1);
          out.defaultLeft[out.defaultLeft.length - 1] = 0;
          continue;
        }
        out.left.push(q.length);
        q.push(t.left[i]);
        out.right.push(q.length);
        q.push(t.right[i]);
      }
      return out;
    });
    const source = { ...numericOnly, trees: pruned } as ForestFileV1;
    const bytes = forestToTreeEnsembleV5(source);
    const back = onnxToForest(bytes, { spec: specOf(source) });
    const scorer = ortScorer(await ortSession(bytes), source.features.length, 3);
    const rand = rng(8);
    const rows = Array.from({ length: 2000 }, () => randomRow(rand, source.features));
    const cf = CompiledForest.compile(back);
    const { x, n } = cf.encodeBatch(rows);
    const { mine, theirs, maxProbDiff } = await againstOrt(cf, scorer, x, n);
    await scorer.release();
    expect(mine.labels).toEqual(theirs.labels);
    expect(maxProbDiff).toBeLessThanOrEqual(1e-12);
  });

  it.each([0, 1])("two classes scored by one class id (%i) only, as skl2onnx writes them: labels and p(class 1) match ONNX Runtime", async (id) => {
    // skl2onnx keeps only p(class 1) per leaf (divided by the tree count), under class id 0; ORT reads a lone class
    // id as the positive score (binary_case_): label class 1 when it exceeds 0.5, probabilities [1 - s, s] for id 0.
    const forest = randomForest(5, { classes: 2, trees: 9 });
    const T = forest.trees.length;
    const m = decodeModel(forestToOnnx(forest));
    const tec = m.graph!.node![0];
    const A = (k: string) => tec.attribute!.find((a) => a.name === k)!;
    const ids = A('class_ids').ints!;
    const weights = Buffer.from(A('class_weights_as_tensor').t!.raw_data!);
    const keep = ids.map((c, e) => (c === 1 ? e : -1)).filter((e) => e >= 0);
    for (const name of ['class_treeids', 'class_nodeids']) A(name).ints = keep.map((e) => A(name).ints![e]);
    A('class_ids').ints = keep.map(() => id);
    const w = Buffer.alloc(keep.length * 8);
    keep.forEach((e, j) => w.writeDoubleLE(weights.readDoubleLE(e * 8) / T, j * 8));
    A('class_weights_as_tensor').t = { name: 'class_weights_as_tensor', dims: [keep.length], data_type: DataType.DOUBLE, raw_data: w };
    A('classlabels_strings').strings = A('classlabels_strings').strings!.slice(0, 2);
    tec.output = ['label', 'probabilities'];
    m.graph!.node = [tec];
    m.graph!.initializer = [];
    const bytes = encodeModel(m);
    const back = onnxToForest(bytes, { source: 'binary.onnx' });
    const rand = rng(3);
    const rows = Array.from({ length: 2000 }, () => randomRow(rand, forest.features));
    const cf = CompiledForest.compile(back);
    const { x, n } = cf.encodeBatch(rows);
    const scorer = ortScorer(await ortSession(bytes), forest.features.length, 2);
    const ort = await scorer.score(x, n);
    await scorer.release();
    const mine = cf.predictBatchEncoded(x, n);
    expect(mine.labels).toEqual(ort.labels);
    let maxDiff = 0;
    // ORT writes 0 as class 0's probability when the lone id is 1 (a runtime quirk); the forest keeps 1 - p.
    for (let r = 0; r < n; r++) for (let k = id === 0 ? 0 : 1; k < 2; k++) maxDiff = Math.max(maxDiff, Math.abs(mine.probabilities[r * 2 + k] - ort.probabilities[r * 2 + k]));
    expect(maxDiff).toBeLessThanOrEqual(1e-6);
    expect(compare(forest, back, rows).labelMismatches).toBe(0);
  });

  it('every branch mode (LEQ, LT, GTE, GT, EQ, NEQ, with missing tracked both ways): the import agrees with ONNX Runtime and with the source forest', async () => {
    // Rewrites each exported node into a random equivalent mode: x <= t is x < next(t), not x > t, not x >= next(t);
    // x == c is not x != c. Children and missing tracking are swapped where the test is negated.
    const used = new Set<string>();
    for (const seed of [31, 32, 33, 34, 35]) {
      const forest = randomForest(seed, { trees: 5, classes: 3 });
      const m = decodeModel(forestToOnnx(forest));
      const A = (k: string) => m.graph!.node![0].attribute!.find((a) => a.name === k)!;
      const modes = A('nodes_modes').strings!.map((b) => Buffer.from(b).toString());
      const values = Buffer.from(A('nodes_values_as_tensor').t!.raw_data!);
      const trues = A('nodes_truenodeids').ints!;
      const falses = A('nodes_falsenodeids').ints!;
      const missing = A('nodes_missing_value_tracks_true').ints!;
      const treeIds = A('nodes_treeids').ints!;
      const edgesInto = new Map<string, number>();
      modes.forEach((mode, i) => {
        if (mode === 'LEAF') return;
        for (const c of [trues[i], falses[i]]) edgesInto.set(`${treeIds[i]}/${c}`, (edgesInto.get(`${treeIds[i]}/${c}`) ?? 0) + 1);
      });
      const rand = rng(seed);
      modes.forEach((mode, i) => {
        const t = values.readDoubleLE(i * 8);
        const pick = rand();
        const negate = () => {
          [trues[i], falses[i]] = [falses[i], trues[i]];
          missing[i] = 1 - missing[i];
        };
        if (mode === 'BRANCH_LEQ' && Number.isFinite(t)) {
          if (pick < 0.25) modes[i] = 'BRANCH_LT';
          else if (pick < 0.75) {
            modes[i] = pick < 0.5 ? 'BRANCH_GT' : 'BRANCH_GTE';
            negate();
          }
          if (modes[i] === 'BRANCH_LT' || modes[i] === 'BRANCH_GTE') values.writeDoubleLE(nextUp(t), i * 8);
        } else if (mode === 'BRANCH_EQ' && pick < 0.5 && edgesInto.get(`${treeIds[i]}/${trues[i]}`) === 1) {
          // (ORT needs a shared child of an equality chain on the true side: only one-member sets are negated.)
          modes[i] = 'BRANCH_NEQ';
          [trues[i], falses[i]] = [falses[i], trues[i]]; // NaN passes NEQ: it still reaches the (now true) default side
        }
        used.add(modes[i]);
      });
      A('nodes_modes').strings = modes.map((v) => Buffer.from(v));
      A('nodes_values_as_tensor').t = { ...A('nodes_values_as_tensor').t!, raw_data: values };
      const bytes = encodeModel(m);
      const back = onnxToForest(bytes, { source: 'modes.onnx' });
      const rows = Array.from({ length: 1500 }, ((r) => () => randomRow(r, forest.features))(rng(seed + 100)));
      const cf = CompiledForest.compile(back);
      const { x, n } = cf.encodeBatch(rows);
      const scorer = ortScorer(await ortSession(bytes), forest.features.length, 3);
      const { mine, theirs, maxProbDiff } = await againstOrt(cf, scorer, x, n);
      await scorer.release();
      expect({ seed, labels: mine.labels, close: maxProbDiff <= 1e-6 }).toEqual({ seed, labels: theirs.labels, close: true });
      expect(compare(forest, back, rows)).toEqual({ labelMismatches: 0, maxProbDiff: expect.any(Number) });
      expect(compare(forest, back, rows).maxProbDiff).toBeLessThanOrEqual(1e-12);
    }
    expect([...used]).toEqual(expect.arrayContaining(['BRANCH_EQ', 'BRANCH_GT', 'BRANCH_GTE', 'BRANCH_LEQ', 'BRANCH_LT', 'BRANCH_NEQ']));
  });

  it('float inputs: a threshold t becomes the largest double that rounds to a float32 ≤ t (ties to even)', () => {
    const rand = rng(5);
    let wrong = 0;
    for (let i = 0; i < 20_000; i++) {
      const t32 = Math.fround((rand() - 0.5) * 10 ** Math.floor(rand() * 12 - 6));
      const u = largestDoubleRoundingAtMost(t32);
      const above = -nextDown(-u);
      if (!(Math.fround(u) <= t32 && Math.fround(above) > t32)) wrong++;
    }
    expect(wrong).toBe(0);
    expect(largestDoubleRoundingAtMost(0)).toBe(2 ** -150);
    expect(Math.fround(largestDoubleRoundingAtMost(-Infinity))).toBe(-Infinity);
  });
});

/** Re-encodes the exported model of a small forest after `edit`, and expects the import to refuse it with `message`. */
function refuses(edit: (m: ModelMessage) => void, message: RegExp): void {
  const forest = randomForest(3, { trees: 3, classes: 3 });
  const model = decodeModel(forestToOnnx(forest));
  edit(model);
  expect(() => onnxToForest(encodeModel(model), { source: 'bad.onnx' })).toThrow(message);
}

function ensembleAttr(m: ModelMessage, name: string) {
  return m.graph!.node![0].attribute!.find((a) => a.name === name)!;
}

describe('ONNX import refuses malformed or unsupported models clearly, in bounded time', () => {
  const good = () => forestToOnnx(randomForest(3, { trees: 3, classes: 3 }));

  it('truncated protobuf', () => {
    const bytes = good();
    for (const cut of [1, 10, Math.floor(bytes.length / 2), bytes.length - 3]) {
      expect(() => onnxToForest(bytes.subarray(0, cut), { source: 'cut.onnx' })).toThrow(/cut\.onnx: cannot import: (not a valid ONNX model: the protobuf is truncated or corrupt near byte \d+ of \d+|the model has no graph nodes)/);
    }
    expect(() => onnxToForest(Buffer.from('this is not protobuf at all, just text'), { source: 'text.onnx' })).toThrow(/text\.onnx: cannot import: not a valid ONNX model/);
  });

  it('wrong op or post-processing: a regressor, a softmax post_transform, an extra op in the graph', () => {
    refuses((m) => (m.graph!.node![0].op_type = 'TreeEnsembleRegressor'), /node 'forest' \(TreeEnsembleRegressor\) is a regressor/);
    refuses((m) => (ensembleAttr(m, 'post_transform').s = Buffer.from('SOFTMAX')), /attribute post_transform of node 'forest' \(TreeEnsembleClassifier\) is SOFTMAX/);
    refuses((m) => (m.graph!.node![1].op_type = 'Softmax'), /node 'mean_over_trees' \(Softmax\) is not supported/);
    refuses((m) => (m.graph!.node = [m.graph!.node![1]]), /no tree ensemble in the graph/);
  });

  it('missing attributes and inconsistent lengths name the attribute', () => {
    refuses((m) => (m.graph!.node![0].attribute = m.graph!.node![0].attribute!.filter((a) => a.name !== 'nodes_falsenodeids')), /attribute nodes_falsenodeids of node 'forest' \(TreeEnsembleClassifier\) has 0 entries/);
    refuses((m) => (m.graph!.node![0].attribute = m.graph!.node![0].attribute!.filter((a) => a.name !== 'class_weights_as_tensor')), /attribute class_weights .*is missing/);
    refuses((m) => ensembleAttr(m, 'nodes_featureids').ints!.pop(), /nodes_featureids .* has \d+ entries, but .* has \d+/);
  });

  it('inconsistent node ids and cycles name the tree and node', () => {
    refuses((m) => (ensembleAttr(m, 'nodes_truenodeids').ints![0] = 9999), /tree 0 node 0: nodes_truenodeids is 9999, which is not a node of tree 0/);
    refuses((m) => (ensembleAttr(m, 'nodes_nodeids').ints![1] = 0), /tree 0 declares node 0 twice/);
    refuses((m) => {
      const ids = ensembleAttr(m, 'nodes_nodeids').ints!;
      const falses = ensembleAttr(m, 'nodes_falsenodeids').ints!;
      const modes = ensembleAttr(m, 'nodes_modes').strings!.map((s) => Buffer.from(s).toString());
      const child = modes.findIndex((s, i) => i > 0 && s !== 'LEAF' && ensembleAttr(m, 'nodes_treeids').ints![i] === 0);
      falses[child] = ids[0]; // a branch below the root points back at the root
    }, /leads back to tree 0 node 0, which is above it: the tree has a cycle/);
    refuses((m) => (ensembleAttr(m, 'nodes_treeids').ints![2] = 7), /the nodes of tree 0 are not contiguous|is not a node of tree/);
  });

  it('10^7 declared nodes: refused by the node limit in bounded time and memory', () => {
    // nodes_treeids as a 40 MB int32 tensor declaring 10^7 nodes; the rest of the file is a 3-tree forest.
    const model = decodeModel(good());
    const attr = ensembleAttr(model, 'nodes_treeids');
    attr.type = AttrType.TENSOR;
    attr.ints = [];
    attr.t = { name: 'nodes_treeids', dims: [10_000_000], data_type: DataType.INT32, raw_data: new Uint8Array(40_000_000) };
    const bytes = encodeModel(model);
    const rss = process.memoryUsage().rss;
    expect(() => onnxToForest(bytes, { source: 'huge.onnx' })).toThrow(/huge\.onnx: cannot import: the model declares 10,000,000 nodes \(attribute nodes_treeids\); the import limit is 5,000,000 \(raise it with --max-nodes/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(2 ** 30);
  });

  it('packed ints and a million strings: counted on the wire and refused before decoding builds them', () => {
    // 2·10^6 nodes_modes strings and 2·10^6 packed nodes_treeids (~14 MB): decoding would build a buffer and a number per entry.
    const model = decodeModel(good());
    ensembleAttr(model, 'nodes_modes').strings = new Array(2_000_000).fill(Buffer.from('LEAF'));
    ensembleAttr(model, 'nodes_treeids').ints = new Array(2_000_000).fill(0);
    const bytes = encodeModel(model);
    expect(() => onnxToForest(bytes, { source: 'wide.onnx', maxNodes: 1_000_000 })).toThrow(/wide\.onnx: cannot import: the model declares 2,000,000 nodes \(attribute nodes_(treeids|modes)\); the import limit is 1,000,000/);
    // The spec side of the same bound: a category list is capped.
    expect(() => parseInputSpec({ features: ['a'], categorical_codes: { a: Array.from({ length: 70_000 }, (_, i) => `c${i}`) } }, 'spec.json')).toThrow(/"categorical_codes"\."a" lists 70,000 categories; at most 65,536/);
  });

  it('a float input with weights that are not averaged distributions (boosting-like) is refused naming the leaf', () => {
    refuses((m) => {
      const w = ensembleAttr(m, 'class_weights_as_tensor');
      const raw = Buffer.from(w.t!.raw_data!);
      raw.writeDoubleLE(raw.readDoubleLE(0) + 0.5, 0);
      w.t = { ...w.t!, raw_data: raw };
    }, /tree \d+ node \d+: its class weights sum to .* needs .* at every leaf/);
  });

  it('64-bit integers: negative values and values beyond ±2^53 decode exactly or as ±Infinity, never wrapped', () => {
    const m: ModelMessage = {
      ir_version: 8,
      graph: {
        name: 'g',
        initializer: [{ name: 'e', dims: [4], data_type: DataType.INT64, int64_data: [-1, -100, '9223372036854775807', '-9223372036854775808'] as unknown as number[] }],
        node: [{ op_type: 'X', attribute: [{ name: 'a', type: AttrType.INTS, ints: [-1, -5, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53 + 2, 0] }] }],
      },
    };
    const d = decodeModel(encodeModel(m));
    expect(d.graph!.initializer![0].int64_data).toEqual([-1, -100, Infinity, -Infinity]);
    expect(d.graph!.node![0].attribute![0].ints).toEqual([-1, -5, 2 ** 53 - 1, -(2 ** 53 - 1), Infinity, 0]);
  });

  it('Slice bounds as ONNX means them: ends INT64_MAX or -1 and axes -1 (bounded time), steps other than 1 refused', () => {
    const forest = randomForest(5, { classes: 2, trees: 3 });
    const rows = Array.from({ length: 300 }, ((r) => () => randomRow(r, forest.features))(rng(4)));
    const init = (m: ModelMessage, name: string) => m.graph!.initializer!.find((t) => t.name === name)!;
    const sliced = (end: number | string, axis: number) => {
      const m = decodeModel(forestToOnnx(forest));
      init(m, 'slice_end').int64_data = [end as number];
      init(m, 'slice_axis').int64_data = [axis];
      return onnxToForest(encodeModel(m), { source: 's.onnx' });
    };
    for (const [end, axis] of [[-1, 1], [2, -1]] as const) {
      const back = sliced(end, axis);
      expect({ end, classes: back.classes, ...compare(forest, back, rows) }).toMatchObject({ end, classes: forest.classes, labelMismatches: 0 });
    }
    // INT64_MAX: "to the end", so the padding class stays (and never wins).
    const all = sliced('9223372036854775807', 1);
    expect(all.classes).toEqual([...forest.classes, UNUSED_CLASS_LABEL]);
    expect(CompiledForest.compile(all).predictBatch(rows).labels).toEqual(CompiledForest.compile(forest).predictBatch(rows).labels);
    const stepped = decodeModel(forestToOnnx(forest));
    stepped.graph!.node!.find((n) => n.op_type === 'Slice')!.input!.push('slice_step');
    stepped.graph!.initializer!.push({ name: 'slice_step', dims: [1], data_type: DataType.INT64, int64_data: [2] });
    expect(() => onnxToForest(encodeModel(stepped), { source: 's.onnx' })).toThrow(/node 'drop_unused_class' \(Slice\) must keep a range of classes along axis 1 .* with step 1/);
  });

  it('ids and feature indexes that are negative or beyond 2^53 are refused naming the attribute', () => {
    refuses((m) => {
      const modes = ensembleAttr(m, 'nodes_modes').strings!.map((s) => Buffer.from(s).toString());
      ensembleAttr(m, 'nodes_featureids').ints![modes.indexOf('BRANCH_LEQ') >= 0 ? modes.indexOf('BRANCH_LEQ') : modes.indexOf('BRANCH_EQ')] = -1;
    }, /attribute nodes_featureids of node 'forest' \(TreeEnsembleClassifier\)\[\d+\] is -1; expected a column index/);
    refuses((m) => (ensembleAttr(m, 'class_ids').ints![0] = -1), /attribute class_ids .*\[0\] is -1; there are 3 classes/);
    refuses((m) => (ensembleAttr(m, 'nodes_nodeids').ints![1] = 2 ** 53 + 2), /attribute nodes_nodeids of node 'forest' \(TreeEnsembleClassifier\)\[1\] is above 2\^53; expected an integer within ±2\^53/);
  });

  it('needs the input description when the model carries none', () => {
    const forest = randomForest(3, { trees: 2, classes: 3 });
    const model = decodeModel(forestToOnnx(forest));
    model.metadata_props = [];
    expect(() => onnxToForest(encodeModel(model), { source: 'bare.onnx' })).toThrow(/pass --features spec\.json/);
    expect(() => parseInputSpec({ features: ['a'], categorical_codes: { b: ['x'] } }, 'spec.json')).toThrow(/spec\.json: invalid feature spec: "categorical_codes" names "b", which is not in "features"/);
  });
});
