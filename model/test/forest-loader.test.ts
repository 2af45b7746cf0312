import { UserError } from '../../core/errors';
import { ForestFormatError } from '../forest-error';
import { forestJson, upgradeForest } from '../forest-file';
import { createHash } from 'node:crypto';
import { loadForest, loadForestInWorker, maxDocumentBytes, WorkerLoadError } from '../forest-loader';
import { InvalidArtifactError } from '../registry';
import { writeTarGz } from '../sagemaker/tar';
import { referenceProba } from './reference-scorer';
import { randomForest, randomRow, rng } from './random-forest-fixture';
import { NOISY_FEATURES, noisyTable } from './trainer-fixtures';
import { trainForest } from '../trainer';
import { isMarkedAsUntransferable } from 'node:worker_threads';

type Mutable = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * The loaders on hostile format v2 files. A registry-verified load skips the re-hash
 * (the registry checked the bytes), so everything below reaches the decoder: each file
 * must be refused with a ForestFormatError (a UserError) naming the field — never a
 * TypeError, a RangeError, an allocation by a stated count, a crash or a hang — and the
 * worker-thread loader the API uses must refuse it with the same error.
 */
const forest = upgradeForest(randomForest(11, { trees: 5, maxDepth: 6, classes: 3 }));
const text = forestJson(forest);
const options = { registryVerifiedSha256: forest.sha256 };
const b64 = (bytes: number[]) => Buffer.from(bytes).toString('base64');
const decoded = (a: Mutable) => [...Buffer.from(a.base64 as string, 'base64')];

function mutated(mutate: (d: Mutable) => void): Buffer {
  const d = JSON.parse(text) as Mutable;
  mutate(d);
  return Buffer.from(JSON.stringify(d));
}

function loadError(bytes: Buffer): ForestFormatError {
  try {
    loadForest(bytes, 'models/hostile.json', options);
  } catch (e) {
    expect(e).toBeInstanceOf(ForestFormatError);
    expect(e).toBeInstanceOf(UserError);
    return e as ForestFormatError;
  }
  throw new Error('expected the load to be refused');
}

const hostile: [string, (d: Mutable) => void, string, RegExp][] = [
  ['a node count far beyond the limits (no allocation by it)', (d) => (d.trees.nodes = 2 ** 31), 'trees.nodes', /limit|at most/],
  ['a tree count far beyond the limits', (d) => (d.trees.count = 2 ** 31), 'trees', /limit|at most/],
  ['tree sizes that claim billions of nodes', (d) => (d.trees.sizes.base64 = b64(Array.from({ length: 4 * d.trees.count }, () => 0xff))), 'trees.sizes', /limit|at most/],
  ['a tree of zero nodes', (d) => (d.trees.sizes.base64 = b64(decoded(d.trees.sizes).map((v, i) => (i < 4 ? 0 : v)))), 'trees.sizes', /has no nodes/],
  ['split arrays longer than declared', (d) => (d.trees.split.base64 = b64([...decoded(d.trees.split), 0, 0, 0])), 'trees.split.base64', /not the base64|decodes to/],
  ['base64 with characters outside the alphabet', (d) => (d.trees.splitIndex.base64 = `${d.trees.splitIndex.base64.slice(0, -4)}@@@@`), 'trees.splitIndex.base64', /not the base64/],
  ['a declared length off by one', (d) => (d.trees.defaultLeft.length -= 1), 'trees.defaultLeft.length', /expected/],
  ['trees whose nodes never close (every node a split)', (d) => (d.trees.split.base64 = b64(decoded(d.trees.split).map(() => 1))), 'trees.split', /missing node/],
  ['trees that close early (every node a leaf)', (d) => (d.trees.split.base64 = b64(decoded(d.trees.split).map(() => 0))), 'trees.split', /complete after 1 node/],
  ['a split index pointing past its table', (d) => (d.trees.splitIndex.base64 = b64(decoded(d.trees.splitIndex).map(() => 0xff))), 'trees.splitIndex[', /table has \d+ entries/],
  ['probabilities that are NaN', (d) => (d.trees.distributions.value.base64 = b64(decoded(d.trees.distributions.value).map(() => 0xff))), 'trees.distributions.value', /finite number/],
  ['nodes × classes beyond the limits (distributions are allocated by it)', (d) => ((d.classes = Array.from({ length: 1024 }, (_, i) => `c${i}`)), (d.trees.nodes = 2 ** 16)), 'trees.nodes', /nodes × classes/],
  ['trees given as a string', (d) => (d.trees = 'AAAA'), 'trees', /./],
];

describe('forest loaders on hostile format v2 files', () => {
  it.each(hostile)('refuses %s, naming the field', (_name, mutate, field, problem) => {
    const err = loadError(mutated(mutate));
    expect(err.message).toMatch(/^models\/hostile\.json: invalid forest file: /);
    expect(err.fieldPath.startsWith(field)).toBe(true);
    expect(err.problem).toMatch(problem);
  });

  it('refuses the files in its worker thread with the same error, and still loads a good one there', async () => {
    // A few of them (each load starts a worker: about a second on a loaded 2-core machine).
    for (const [, mutate] of [hostile[0], hostile[4], hostile[7], hostile[10]]) {
      const bytes = mutated(mutate);
      const want = loadError(bytes);
      const got = await loadForestInWorker({ bytes }, 'models/hostile.json', options).then(() => undefined, (e: unknown) => e);
      expect(got).toBeInstanceOf(ForestFormatError);
      expect((got as ForestFormatError).message).toBe(want.message);
    }
    const { forest: cf } = await loadForestInWorker({ bytes: Buffer.from(text) }, 'models/good.json', options);
    const rand = rng(3);
    for (let i = 0; i < 50; i++) {
      const row = randomRow(rand, forest.features);
      expect(Array.from(cf.predict(row).probabilities)).toEqual(referenceProba(forest, row).probabilities);
    }
  }, 60_000);

  it('on random byte damage to the encoded arrays: loads or refuses with a UserError, never anything else', () => {
    // Seeded: each case flips one to four bytes of one decoded array and re-encodes it (the base64 stays well formed).
    const rand = rng(77);
    const arrays = (d: Mutable): Mutable[] => [d.trees.sizes, d.trees.split, d.trees.defaultLeft, d.trees.splitIndex, d.trees.distributions.value];
    const outcomes = { loaded: 0, refused: 0 };
    for (let i = 0; i < 400; i++) {
      const bytes = mutated((d) => {
        const a = arrays(d)[Math.floor(rand() * 5)];
        const raw = decoded(a);
        if (raw.length === 0) return;
        for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) raw[Math.floor(rand() * raw.length)] = Math.floor(rand() * 256);
        a.base64 = b64(raw);
      });
      try {
        loadForest(bytes, 'models/damaged.json', options).forest.predict({});
        outcomes.loaded++;
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        expect(e.message).toMatch(/^models\/damaged\.json: invalid forest file: /);
        outcomes.refused++;
      }
    }
    // Both happen: some damage is a different valid forest (a changed feature index), most is refused.
    expect(outcomes.refused).toBeGreaterThan(100);
    expect(outcomes.loaded + outcomes.refused).toBe(400);
  });
});

describe('the worker loader on a registry artifact, and its bounds', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  /** A buffer of its own, as a registry hands it out. */
  const own = (b: Buffer) => Buffer.from(new Uint8Array(b));
  const expectScores = (cf: { predict: (row: Record<string, unknown>) => { probabilities: ArrayLike<number> } }) => {
    const rand = rng(5);
    for (let i = 0; i < 20; i++) {
      const row = randomRow(rand, forest.features);
      expect(Array.from(cf.predict(row).probabilities)).toEqual(referenceProba(forest, row).probabilities);
    }
  };

  it('verifies and unpacks the artifact in the worker, taking its buffer instead of copying it', async () => {
    const plain = own(Buffer.from(text));
    // Node ≥ 22 marks Buffer memory untransferable: postMessage then copies it (the caller's stays intact).
    const untransferable = typeof isMarkedAsUntransferable === 'function' && isMarkedAsUntransferable(plain.buffer);
    const length = plain.byteLength;
    const loaded = await loadForestInWorker({ artifact: { bytes: plain, sha256: sha(plain), source: 'v1 (plain)' } }, 'reg v1', options);
    expect(plain.byteLength).toBe(untransferable ? length : 0); // transferable: the serving thread keeps no copy
    expectScores(loaded.forest);
    const archive = own(writeTarGz([{ name: 'model/forest.json', data: Buffer.from(text) }]));
    expectScores((await loadForestInWorker({ artifact: { bytes: archive, sha256: sha(archive), source: 'v2 (model.tar.gz)' } }, 'reg v2', options)).forest);
  }, 60_000);

  it('refuses an artifact whose bytes do not match the registered digest, as the registry would', async () => {
    const bytes = own(Buffer.from(text));
    const err = await loadForestInWorker({ artifact: { bytes, sha256: 'f'.repeat(64), source: 'version 3 (x.json)' } }, 'reg v3', options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArtifactError);
    expect((err as Error).message).toMatch(/^checksum mismatch for version 3 \(x\.json\): registered SHA-256 f{64}, stored bytes hash to [0-9a-f]{64}/);
  }, 60_000);

  it('refuses, before parsing, a document its memory budget cannot hold', async () => {
    const err = await loadForestInWorker({ bytes: Buffer.from(text) }, 'reg v4', options, {}, { memoryMb: 0.01 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^reg v4: a 0\.\d MB forest document needs about \d+ MiB to load, more than this service's load budget of 0\.01 MiB .*pricesense model upgrade/);
  }, 60_000);

  it('refuses, before packing, a compact document whose packing its memory budget cannot hold', async () => {
    // A trained forest in format v2 takes ~5 bytes a node; packing takes 32 + 8 × classes (plus the parsed arrays).
    const trained = await trainForest(noisyTable(200_000), { features: NOISY_FEATURES, trees: 10, maxDepth: 16, threads: 1, progress: false, seed: 3 });
    const doc = Buffer.from(forestJson(trained));
    const nodes = trained.trees.reduce((a, t) => a + t.feature.length, 0);
    // The smallest budget the document check lets through: the parse fits, the packing does not.
    const budget = Math.ceil(((doc.byteLength * 10) / 2 ** 20) * 100) / 100;
    const err = await loadForestInWorker({ bytes: doc }, 'reg v7', { registryVerifiedSha256: trained.sha256 }, {}, { memoryMb: budget }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(
      new RegExp(`^reg v7: a forest of ${nodes.toLocaleString('en-US')} nodes and 3 classes needs about \\d+ MiB to pack for scoring, more than this service's load budget of ${budget} MiB .*train a smaller forest`),
    );
    // With room for both it loads, and scores as the forest it came from.
    const loaded = await loadForestInWorker({ bytes: doc }, 'reg v7', { registryVerifiedSha256: trained.sha256 }, {}, { memoryMb: 2 * budget });
    expect(loaded.forest.nodeCount).toBe(nodes);
  }, 60_000);

  it('inflates a model.tar.gz no further than the largest document its budget parses (a whitespace bomb stops there)', async () => {
    // 2 MiB of budget parses up to 209,715 bytes: 1 MB of spaces around the forest is refused while it inflates, not held whole.
    const archive = own(writeTarGz([{ name: 'forest.json', data: Buffer.concat([Buffer.alloc(1_000_000, 0x20), Buffer.from(text)]) }]));
    const err = await loadForestInWorker({ artifact: { bytes: archive, sha256: sha(archive), source: 'version 6 (model.tar.gz)' } }, 'reg v6', options, {}, { memoryMb: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArtifactError);
    expect((err as Error).message).toContain(`more than the ${maxDocumentBytes(2)} bytes (the largest forest document this service's load budget of 2 MiB parses) an artifact may decompress to`);
  }, 60_000);

  it('stops a worker that does not answer by its deadline', async () => {
    // 1 ms: no worker starts, let alone parses, that fast; the load must reject, not hang.
    const err = await loadForestInWorker({ bytes: Buffer.from(text) }, 'reg v5', options, {}, { timeoutMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerLoadError);
    expect((err as Error).message).toMatch(/^loading reg v5 took longer than 1 ms; its worker thread was stopped/);
  }, 60_000);
});
