import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../etl/errors';
import type { ForestFileV1 } from '../format';
import { canonicalJson, forestDigest, ForestFormatError, parseForest, readForestFile, sealForest, writeForestFile } from '../forest-file';
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
