import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../core/errors';
import type { ForestFileV1 } from '../format';
import { canonicalJson, forestDigest, ForestFormatError, forestJson, parseForest, readForestFile, sealForest, upgradeForest, writeForestFile } from '../forest-file';
import { randomForest } from './random-forest-fixture';

type Mutable = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A small sealed forest with numeric and categorical splits, as plain JSON data. */
function baseDoc(): Mutable {
  for (let seed = 1; ; seed++) {
    const d = JSON.parse(JSON.stringify(randomForest(seed, { trees: 3, maxDepth: 3, classes: 3 }))) as Mutable;
    const kinds = new Set(d.trees.flatMap((t: Mutable) => t.feature.filter((f: number) => f >= 0).map((f: number) => d.features[f].kind)));
    if (kinds.size === 2) return d;
  }
}

function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).reverse().map((k) => [k, reverseKeys((v as Mutable)[k])]));
  return v;
}

/** Applies a mutation to a valid document, re-seals it (so only the mutation is wrong) and parses it. */
function parseMutated(mutate: (d: Mutable) => void, reseal = true): () => ForestFileV1 {
  const d = baseDoc();
  mutate(d);
  const text = reseal ? JSON.stringify({ ...d, sha256: forestDigest(d as ForestFileV1) }) : JSON.stringify(d);
  return () => parseForest(text, 'models/bad.json');
}

function errorOf(fn: () => unknown): ForestFormatError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ForestFormatError);
    expect(e).toBeInstanceOf(UserError);
    return e as ForestFormatError;
  }
  throw new Error('expected a ForestFormatError');
}

function firstSplit(d: Mutable, kind: 'numeric' | 'categorical'): [number, number] {
  for (let t = 0; t < d.trees.length; t++) {
    const i = d.trees[t].feature.findIndex((f: number) => f >= 0 && d.features[f].kind === kind);
    if (i >= 0) return [t, i];
  }
  throw new Error(`fixture has no ${kind} split`);
}

describe('canonical JSON and sealing', () => {
  it('sorts keys at every level, drops undefined, prints no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x', null, { z: true, y: -0.5 }], c: undefined }, '10': 2, '9': 3 })).toBe(
      '{"10":2,"9":3,"a":{"d":[1,"x",null,{"y":-0.5,"z":true}]},"b":1}',
    );
    expect(canonicalJson({ t: new Float64Array([1.5, 2]), i: new Int32Array([-1]) })).toBe('{"i":[-1],"t":[1.5,2]}');
  });

  it('refuses numbers JSON cannot represent, naming where they are', () => {
    expect(() => canonicalJson({ trees: [{ threshold: [1, NaN] }] })).toThrow(/trees\[0\]\.threshold\[1\] is NaN/);
    expect(() => canonicalJson({ x: Infinity })).toThrow(/x is Infinity/);
  });

  it('hashes content independently of key order, and any change changes the hash', () => {
    const forest = randomForest(3);
    const reordered = reverseKeys(forest) as ForestFileV1;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(forest));
    expect(forestDigest(forest)).toBe(forest.sha256);
    expect(forestDigest(reordered)).toBe(forest.sha256);
    const changed = sealForest({ ...forest, metrics: { accuracy: 0.9 } });
    expect(changed.sha256).not.toBe(forest.sha256);
    expect(sealForest(changed).sha256).toBe(changed.sha256);
  });
});

describe('forest file round trip', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'forest-file-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes canonical JSON atomically and reads back an equal, verified forest', async () => {
    const forest = randomForest(21, { trees: 5 });
    const file = join(dir, 'nested', 'model.json');
    await writeForestFile(file, forest);
    const back = await readForestFile(file);
    expect(back).toEqual(JSON.parse(JSON.stringify(forest)));
    expect(back.sha256).toBe(forest.sha256);
    const bytes = readFileSync(file, 'utf8');
    expect(bytes).toBe(canonicalJson(forest) + '\n');
    await writeForestFile(file, back); // idempotent rerun: same bytes
    expect(readFileSync(file, 'utf8')).toBe(bytes);
    expect(readdirSync(join(dir, 'nested'))).toEqual(['model.json']); // no temp files left
  });

  it('refuses to write a forest whose sha256 does not match, leaving the old file intact', async () => {
    const forest = randomForest(22);
    const file = join(dir, 'model.json');
    await writeForestFile(file, forest);
    const before = readFileSync(file, 'utf8');
    await expect(writeForestFile(file, { ...forest, classes: ['a', 'b', 'c', 'd', 'e'] })).rejects.toThrow(/sha256 .* does not match its content/);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(readdirSync(dir)).toEqual(['model.json']);
  });

  it('reports a missing file and a corrupted file by path', async () => {
    await expect(readForestFile(join(dir, 'nope.json'))).rejects.toThrow(/forest file not found: .*nope\.json/);
    const file = join(dir, 'model.json');
    const forest = randomForest(23);
    await writeForestFile(file, forest);
    writeFileSync(file, readFileSync(file, 'utf8').replace('"rows":0', '"rows":1'));
    await expect(readForestFile(file)).rejects.toThrow(new RegExp(`${file.replace(/[.]/g, '\\.')}: invalid forest file: sha256 does not match the content`));
  });
});

describe('parseForest: each class of mistake names the field and the source', () => {
  it('accepts the unmodified document', () => {
    expect(parseMutated(() => undefined)().classes).toEqual(['class0', 'class1', 'class2']);
  });

  it.each<[string, (d: Mutable) => void, string, RegExp]>([
    ['missing field', (d) => delete d.classes, 'classes', /is required but missing/],
    ['wrong format id', (d) => (d.format = 'other.forest'), 'format', /must be "pricesense\.forest"/],
    ['future version', (d) => (d.formatVersion = 3), 'formatVersion', /is 3: this pricesense reads format versions 1 and 2/],
    ['unknown top-level field', (d) => (d.extra = 1), 'extra', /not a field of the forest format/],
    ['bad aggregation', (d) => (d.aggregation = 'median'), 'aggregation', /must be one of \["soft","hard"\]/],
    ['wrong type', (d) => (d.trees[1].threshold[0] = 'x'), 'trees[1].threshold[0]', /must be number/],
    ['negative probability', (d) => (d.trees[0].value[2] = -0.1), 'trees[0].value[2]', /must be >= 0/],
    ['categorical without categories', (d) => delete d.features.find((f: Mutable) => f.kind === 'categorical').categories, 'features[', /categories is required/],
    ['bad manifest hash', (d) => (d.training.datasetManifestSha256 = 'abc'), 'training.datasetManifestSha256', /must match/],
    ['bad createdAt', (d) => (d.training.createdAt = 'yesterday'), 'training.createdAt', /must match pattern/],
    ['duplicate feature name', (d) => (d.features[1].name = d.features[0].name), 'features[1].name', /duplicates feature name/],
    ['array length mismatch', (d) => d.trees[2].left.push(-1), 'trees[2].left', /has \d+ entries, expected \d+/],
    ['value length mismatch', (d) => d.trees[0].value.pop(), 'trees[0].value', /nodes \d+ × classes 3/],
    ['feature index out of range', (d) => (d.trees[0].feature[0] = d.features.length), 'trees[0].feature[0]', /but there are only \d+ features/],
    ['child index out of range', (d) => (d.trees[0].right[0] = 999), 'trees[0].right[0]', /is 999: a child index must be/],
    ['cycle', (d) => (d.trees[0].left[0] = 0), 'trees[0].left[0]', /greater than its parent's/],
    [
      'shared child',
      (d) => {
        const [t, i] = firstSplit(d, 'numeric');
        d.trees[t].right[i] = d.trees[t].left[i];
      },
      'trees[',
      /already a child of node/,
    ],
    [
      'leaf with children',
      (d) => {
        const i = d.trees[0].feature.indexOf(-1);
        d.trees[0].left[i] = 1;
      },
      'trees[0].left[',
      /is a leaf \(feature -1\)/,
    ],
    [
      'unreachable node',
      (d) => {
        const t = d.trees[0];
        for (const field of ['feature', 'left', 'right']) t[field].push(-1);
        for (const field of ['threshold', 'defaultLeft', 'count']) t[field].push(0);
        t.value.push(1, 0, 0);
      },
      'trees[0].feature[',
      /is not reachable from the root/,
    ],
    ['probabilities not summing to 1', (d) => (d.trees[1].value[0] += 0.01), 'trees[1].value[0..2]', /sums to 1\.0\d+, expected 1/],
    [
      'categorical offset out of range',
      (d) => {
        const [t, i] = firstSplit(d, 'categorical');
        d.trees[t].threshold[i] = d.trees[t].catBits.length;
      },
      'trees[',
      /an offset into catBits/,
    ],
    ['defaultLeft not 0/1', (d) => (d.trees[0].defaultLeft[0] = 2), 'trees[0].defaultLeft[0]', /must be one of \[0,1\]/],
    ['tie rule on a soft forest', (d) => (d.voteTieBreak = 'first-to-reach'), 'voteTieBreak', /'hard' aggregation only/],
  ])('%s', (_name, mutate, field, problem) => {
    const err = errorOf(parseMutated(mutate));
    expect(err.fieldPath.startsWith(field)).toBe(true);
    expect(err.message).toMatch(/^models\/bad\.json: invalid forest file: /);
    expect(err.message).toMatch(problem);
  });

  it('refuses a number JSON.parse reads as Infinity (1e999) in a tree, as the schema does', () => {
    const d = baseDoc();
    const text = JSON.stringify(d).replace('"threshold":[', '"threshold":[1e999,').replace(/"threshold":\[1e999,[^,\]]*/, '"threshold":[1e999');
    const err = errorOf(() => parseForest(text, 'models/bad.json'));
    expect(err.fieldPath).toBe('trees[0].threshold[0]');
    expect(err.message).toMatch(/must be number/);
  });

  it('detects tampering through the sha256', () => {
    const err = errorOf(parseMutated((d) => (d.trees[0].threshold[0] += 1), false));
    expect(err.fieldPath).toBe('sha256');
    expect(err.message).toMatch(/modified or corrupted after it was sealed/);
  });

  it('with registry-verified bytes, skips the re-hash but still requires the registered sha256', () => {
    const forest = sealForest(baseDoc() as Omit<ForestFileV1, 'sha256'>);
    const text = JSON.stringify(forest);
    expect(parseForest(text, 'reg v1', { registryVerifiedSha256: forest.sha256 }).sha256).toBe(forest.sha256);
    const err = errorOf(() => parseForest(text, 'reg v1', { registryVerifiedSha256: 'f'.repeat(64) }));
    expect(err.fieldPath).toBe('sha256');
    expect(err.message).toMatch(/registry registered this version as f{64}/);
    // Schema and structure are still checked on that path.
    expect(() => parseForest(JSON.stringify({ ...forest, classes: 'x' }), 'reg v1', { registryVerifiedSha256: forest.sha256 })).toThrow(/classes/);
  });

  it('reports malformed JSON with the source', () => {
    expect(() => parseForest('{"format": ', 'upload.json')).toThrow(/^upload\.json: invalid forest file: \(document\) is not valid JSON/);
    expect(() => parseForest(Buffer.from('[]'))).toThrow(/^<forest>: invalid forest file: \(document\) must be object/);
  });
});

describe('format v2', () => {
  /** A trained-like forest: every distribution is the node's class counts over their sum. */
  function countsForest(seed: number): ForestFileV1 {
    const d = JSON.parse(JSON.stringify(randomForest(seed, { trees: 6, maxDepth: 6, classes: 3 }))) as Mutable;
    for (const t of d.trees) {
      // Leaves get integer class counts; internal nodes the sums of their children's.
      const counts: number[][] = [];
      for (let i = t.feature.length - 1; i >= 0; i--) {
        counts[i] = t.feature[i] === -1 ? [1 + ((i * 7) % 5), (i * 3) % 4, (i * 11) % 3] : counts[t.left[i]].map((c: number, k: number) => c + counts[t.right[i]][k]);
        const total = counts[i].reduce((a: number, b: number) => a + b, 0);
        t.count[i] = total;
        for (let k = 0; k < 3; k++) t.value[i * 3 + k] = counts[i][k] / total;
      }
    }
    return sealForest(d as Omit<ForestFileV1, 'sha256'>);
  }

  it.each([
    ['class counts (a trained forest)', () => countsForest(3), 'counts'],
    ['explicit distributions (any other forest)', () => randomForest(4, { trees: 6 }), 'values'],
  ])('round-trips %s: the same trees in pre-order, canonical bytes, a stable sha256', async (_name, make, kind) => {
    const v1 = make();
    const v2 = upgradeForest(v1);
    const text = forestJson(v2);
    const doc = JSON.parse(text) as Mutable;
    expect(doc.formatVersion).toBe(2);
    expect(doc.trees.distributions.kind).toBe(kind);
    const back = parseForest(text, 'v2.json');
    expect(back.sha256).toBe(v2.sha256);
    // Re-serializing what was read gives the same bytes, and so does encoding its decoded trees afresh.
    expect(forestJson(back)).toBe(text);
    expect(forestJson(sealForest({ ...back, trees: back.trees.map((t) => ({ ...t })) }))).toBe(text);
    expect(JSON.stringify(back)).toBe(JSON.stringify(JSON.parse(text)));
    // The same trees: node for node once both are numbered in pre-order.
    expect(back.trees).toEqual(parseForest(forestJson(upgradeForest(back)), 'again').trees);
    const dir = mkdtempSync(join(tmpdir(), 'forest-v2-'));
    try {
      await writeForestFile(join(dir, 'm.json'), back);
      expect(readFileSync(join(dir, 'm.json'), 'utf8')).toBe(`${text}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps every distribution bit for bit, and the v1 file of the same forest is several times larger', () => {
    const v1 = countsForest(5);
    const v2 = parseForest(forestJson(upgradeForest(v1)), 'v2');
    const sorted = (f: ForestFileV1) => f.trees.map((t) => Array.from(t.value).sort().join()).join('|');
    expect(sorted(v2)).toBe(sorted(v1));
    expect(canonicalJson(v1).length / forestJson(upgradeForest(v1)).length).toBeGreaterThan(3);
  });

  /** A sealed v2 document as plain JSON data, mutated and re-sealed so only the mutation is wrong. */
  function parseMutatedV2(mutate: (d: Mutable) => void): () => ForestFileV1 {
    const d = JSON.parse(forestJson(upgradeForest(countsForest(7)))) as Mutable;
    mutate(d);
    const text = JSON.stringify({ ...d, sha256: forestDigest(d as ForestFileV1) });
    return () => parseForest(text, 'models/bad-v2.json');
  }
  const b64 = (bytes: number[]) => Buffer.from(bytes).toString('base64');

  it.each<[string, (d: Mutable) => void, string, RegExp]>([
    ['unknown field in trees', (d) => (d.trees.extra = 1), 'trees.extra', /not a field of the forest format/],
    ['wrong dtype', (d) => (d.trees.sizes.dtype = 'uint8'), 'trees.sizes.dtype', /must be one of \["uint32"\]/],
    ['declared length off', (d) => (d.trees.split.length += 1), 'trees.split.length', /expected/],
    ['base64 of the wrong size', (d) => (d.trees.sizes.base64 = b64([1, 2, 3])), 'trees.sizes.base64', /not the base64 of|decodes to/],
    ['not base64', (d) => (d.trees.split.base64 = '!!!!'), 'trees.split.base64', /not the base64/],
    ['sizes not adding up', (d) => (d.trees.nodes += 2), 'trees.', /expected|adds up to/],
    ['split on a feature that does not exist', (d) => (d.trees.split.base64 = b64([...Buffer.from(d.trees.split.base64, 'base64')].map((v, i) => (i === 0 ? 200 : v)))), 'trees.split[0]', /only \d+ features/],
    ['trees that are not binary trees', (d) => (d.trees.split.base64 = b64([...Buffer.from(d.trees.split.base64, 'base64')].map(() => 0))), 'trees.split', /complete after 1 node/],
    ['threshold index past its table', (d) => (d.trees.thresholds = d.trees.thresholds.map(() => [])), 'trees.splitIndex[', /table has 0 entries/],
    ['thresholds not ascending', (d) => (d.trees.thresholds = d.trees.thresholds.map((t: number[]) => (t.length > 1 ? [...t].reverse() : t))), 'trees.thresholds[', /distinct and ascending/],
    ['subset bits beyond the categories', (d) => (d.trees.subsets = d.trees.subsets.map((s: number[]) => s.map(() => 0xffffffff))), 'trees.subsets[', /no bits at or above the category count/],
    ['a leaf with no rows', (d) => (d.trees.distributions.leafCounts.base64 = b64(Array.from(Buffer.from(d.trees.distributions.leafCounts.base64, 'base64')).map(() => 0))), 'trees.distributions.leafCounts', /no training rows|sum to 0/],
    ['a varuint cut short', (d) => (d.trees.distributions.leafCounts.base64 = b64([0x80])), 'trees.distributions.leafCounts', /ends after|not the base64/],
  ])('refuses %s, naming the field', (_name, mutate, field, problem) => {
    const err = errorOf(parseMutatedV2(mutate));
    expect(err.fieldPath.startsWith(field)).toBe(true);
    expect(err.message).toMatch(/^models\/bad-v2\.json: invalid forest file: /);
    expect(err.message).toMatch(problem);
  });
});
