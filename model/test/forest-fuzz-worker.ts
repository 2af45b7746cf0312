/**
 * Child process of the forest fuzz test (model/test/forest-fuzz.test.ts): loads hostile
 * forest files, one after another, through the loader the API uses, and scores rows with
 * every one that loads. The files are what someone with registry write access could
 * write, sealed anew (a matching sha256) so they reach the decoder rather than stopping
 * at the digest:
 * - every count and length field of a v2 file set to every hostile value (enumerated);
 * - then, seeded: damaged encoded arrays, arrays cut or grown, classes or categories
 *   resized, v1 tree fields (child indices, features, catBits offsets) set to hostile
 *   values, raw damage to the text;
 * - the header grown (metrics nested deep, drift baselines of many bins), enumerated.
 * Typed arrays and ArrayBuffers the loader constructs by a length are counted per case (in
 * this thread; Buffers and copies of arrays are not): a loader that allocates by a count the
 * file states, before checking it against the bytes, shows there even when the memory is
 * never touched (and so never in RSS). Every 23rd case and every header case also go through
 * loadForestInWorker, as the API loads. Prints `case <i> <kind>` before each case
 * and one JSON report line at the end.
 */
import { UserError } from '../../core/errors';
import { forestDigest, forestJson, sealForest, upgradeForest } from '../forest-file';
import type { ForestFileV1 } from '../format';
import { loadForest, loadForestInWorker } from '../forest-loader';
import { randomForest, randomRow, rng } from './random-forest-fixture';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Values a hostile count or length takes: edges of every integer width and the limits. */
const HOSTILE_NUMBERS = [0, 1, -1, 2, 0.5, 255, 256, 65_535, 65_536, 2 ** 20, 2 ** 20 + 1, 2 ** 25, 2 ** 25 + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 1e308, -1e308];
/** The fields of a v2 `trees` object that state a count or a length. */
const COUNT_FIELDS = (trees: Json): (string | number)[][] => [
  ['trees', 'count'],
  ['trees', 'nodes'],
  ...['sizes', 'split', 'defaultLeft', 'splitIndex'].map((a) => ['trees', a, 'length']),
  ...Object.keys(trees.distributions as Json).filter((k) => k !== 'kind').map((k) => ['trees', 'distributions', k, 'length']),
];

/** Bytes of typed arrays and ArrayBuffers constructed since the last reset, by length or size. */
let allocated = 0;
function countAllocations(): void {
  const names = ['ArrayBuffer', 'Float64Array', 'Float32Array', 'Int32Array', 'Uint32Array', 'Int16Array', 'Uint16Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'BigInt64Array', 'BigUint64Array'] as const;
  const g = globalThis as unknown as Record<string, new (...args: unknown[]) => ArrayBufferLike | ArrayBufferView>;
  for (const name of names) {
    const Base = g[name];
    g[name] = new Proxy(Base, {
      construct(target, args, newTarget) {
        const made = Reflect.construct(target, args, newTarget === g[name] ? target : newTarget) as ArrayBufferLike | ArrayBufferView;
        // By a length or a size (a copy of an array or a view on a buffer allocates what its source already holds).
        if (typeof args[0] === 'number') allocated += made.byteLength;
        return made;
      },
    });
  }
}

function numericPaths(value: unknown, at: (string | number)[], out: (string | number)[][]): void {
  if (typeof value === 'number') out.push(at);
  else if (Array.isArray(value)) value.forEach((v, i) => numericPaths(v, [...at, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) numericPaths(v, [...at, k], out);
}

function setAt(doc: Json, at: (string | number)[], value: unknown): void {
  let o: Json = doc;
  for (const k of at.slice(0, -1)) o = o[k];
  o[at[at.length - 1]] = value;
}

function encodedArrays(trees: Json): Json[] {
  return [trees.sizes, trees.split, trees.defaultLeft, trees.splitIndex, trees.distributions?.value, trees.distributions?.count, trees.distributions?.leafCounts].filter((a) => a && typeof a.base64 === 'string');
}

/**
 * The forest text with a drift baseline of `bins` categories for `feature`, written straight
 * into a Buffer: as JSON objects, a baseline at the limits takes most of this child's heap.
 */
function withBaseline(text: string, feature: string, bins: number): Buffer {
  const [before, after] = text.split('"featureStats":{}');
  if (after === undefined) throw new Error('withBaseline: the text has no empty featureStats');
  const head = `"featureStats":{${JSON.stringify(feature)}:{"count":1,"frequencies":{`;
  const tail = '},"kind":"categorical","missing":0}}';
  let size = Buffer.byteLength(before) + head.length + tail.length + Buffer.byteLength(after);
  for (let i = 0; i < bins; i++) size += `"v${i}":0`.length + (i > 0 ? 1 : 0);
  const out = Buffer.allocUnsafe(size);
  let at = out.write(before);
  at += out.write(head, at);
  for (let i = 0; i < bins; i++) at += out.write(`${i > 0 ? ',' : ''}"v${i}":0`, at, 'latin1');
  at += out.write(tail, at);
  at += out.write(after, at);
  if (at !== size) throw new Error(`withBaseline: wrote ${at} bytes of ${size}`);
  return out;
}

interface Outcome {
  loaded: number;
  refused: number;
}

async function main(): Promise<void> {
  const seeded = Number(process.argv[2] ?? 1000);
  const rand = rng(20261201);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const v1Forest = randomForest(31, { trees: 12, maxDepth: 7, classes: 3 });
  const v1Text = forestJson(v1Forest);
  const text = forestJson(upgradeForest(v1Forest));
  const countFields = COUNT_FIELDS((JSON.parse(text) as Json).trees);
  const v1Paths: (string | number)[][] = [];
  numericPaths((JSON.parse(v1Text) as Json).trees, ['trees'], v1Paths);

  const sealed = (mutate: (d: Json) => void, from = text): Buffer => {
    const d = JSON.parse(from) as Json;
    mutate(d);
    d.sha256 = forestDigest(d as ForestFileV1);
    return Buffer.from(JSON.stringify(d));
  };
  const cases: [string, () => Buffer][] = [];
  for (const field of countFields) for (const value of HOSTILE_NUMBERS) cases.push(['count or length set to a hostile value', () => sealed((d) => setAt(d, field, value))]);
  // The header, enumerated, written as text and sealed by the registry's digest (as the API loads): metrics nested within
  // the depth limit, just past it and far past (JSON.stringify would recurse); drift baselines within and past the values
  // limit (built as objects, 600,000 bins outgrow the child's 96 MiB heap before the loader sees them).
  for (const levels of [8, 63, 65, 1000, 50_000]) {
    cases.push(['header grown: metrics nested', () => Buffer.from(text.replace('"metrics":{}', `"metrics":${'{"a":'.repeat(levels)}0${'}'.repeat(levels)}`))]);
  }
  const categorical = ((JSON.parse(text) as Json).features as Json[]).find((x) => x.kind === 'categorical')?.name as string;
  for (const bins of [10, 1000, 100_000, 600_000]) cases.push(['header grown: a drift baseline of many bins', () => withBaseline(text, categorical, bins)]);
  const kinds: [string, () => Buffer][] = [
    ['encoded array damaged', () => sealed((d) => {
      const a = pick(encodedArrays(d.trees));
      const raw = Buffer.from(a.base64 as string, 'base64');
      for (let k = 1 + Math.floor(rand() * 4); k > 0 && raw.length > 0; k--) raw[Math.floor(rand() * raw.length)] = Math.floor(rand() * 256);
      a.base64 = raw.toString('base64');
    })],
    ['encoded array cut or grown, length kept or matched', () => sealed((d) => {
      const a = pick(encodedArrays(d.trees));
      const raw = Buffer.from(a.base64 as string, 'base64');
      const n = Math.max(0, raw.length + Math.floor((rand() - 0.5) * 2 * Math.max(4, raw.length)));
      const next = Buffer.alloc(n);
      raw.copy(next, 0, 0, Math.min(n, raw.length));
      for (let i = raw.length; i < n; i++) next[i] = Math.floor(rand() * 256);
      a.base64 = next.toString('base64');
      if (rand() < 0.5) a.length = Math.round((a.length as number) * (n / Math.max(1, raw.length)));
    })],
    ['categories or classes resized', () => sealed((d) => {
      if (rand() < 0.5) d.classes = Array.from({ length: pick([0, 1, 2, 4, 1024]) }, (_, k) => `k${k}`);
      else {
        const f = pick((d.features as Json[]).filter((x) => x.kind === 'categorical'));
        if (f) f.categories = Array.from({ length: pick([0, 1, 31, 32, 33, 65_535]) }, (_, c) => `c${c}`);
      }
    })],
    ['v1 tree field set to a hostile value', () => {
      const d = JSON.parse(v1Text) as Json;
      setAt(d, pick(v1Paths), pick([...HOSTILE_NUMBERS, Math.floor(rand() * 200) - 50]));
      return Buffer.from(forestJson(sealForest(d as ForestFileV1)));
    }],
    ['raw bytes of the text flipped or cut', () => {
      const b = Buffer.from(rand() < 0.5 ? text : v1Text);
      if (rand() < 0.3) return b.subarray(0, Math.floor(rand() * b.length));
      for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      return b;
    }],
  ];
  for (let i = 0; i < seeded; i++) cases.push(kinds[i % kinds.length]);

  const outcomes: Record<string, Outcome> = {};
  const unexpected: string[] = [];
  const disagreements: string[] = [];
  let rowsScored = 0;
  let workerLoads = 0;
  let slowest = { ms: 0, kase: '' };
  // Per case: bytes allocated ÷ the file's bytes, the largest (and the case that had it).
  let heaviest = { ratio: 0, bytes: 0, kase: '' };
  // Where the peak RSS rose most, so a failing bound names a case.
  let rssRise = { mib: 0, kase: '' };
  countAllocations();
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('the forest fuzz needs node --expose-gc (its peak RSS would measure when the collector ran)');
  for (const [i, [kind, make]] of cases.entries()) {
    process.stdout.write(`case ${i} ${kind}\n`);
    // The garbage of earlier cases collected now and then (node --expose-gc), not whenever the collector gets to it: the
    // peak RSS then measures the heaviest case, not how late a busy host collected (in the artifact fuzz a gzip bomb's peak
    // rose 258 MiB so with a correct reader).
    if (i % 10 === 0 || kind.startsWith('header')) gc();
    const tally = (outcomes[kind] ??= { loaded: 0, refused: 0 });
    const bytes = make();
    // After the file is built: the rise is the load's (a difference of high-water marks: it can only under-count).
    const peakBefore = process.resourceUsage().maxRSS;
    // The header kinds' files carry a stale digest of their own: load them as the registry would, trusting its digest.
    const at = bytes.indexOf('"sha256":"');
    const sha = at < 0 ? 'none' : bytes.subarray(at + 10, at + 74).toString('latin1');
    const options = kind.startsWith('header grown') ? { registryVerifiedSha256: sha } : {};
    const t0 = performance.now();
    allocated = 0;
    let outcome: 'loaded' | 'refused' | string;
    try {
      const { forest: loaded, summary } = loadForest(bytes, `case ${i}`, options);
      // A file that loads is a forest: scoring it is bounded too (its depth and steps passed the limits).
      for (let r = 0; r < 20; r++) loaded.predict(randomRow(rand, summary.features));
      rowsScored += 20;
      outcome = 'loaded';
    } catch (err) {
      outcome = err instanceof UserError ? 'refused' : `${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`.slice(0, 300);
    }
    const ms = performance.now() - t0;
    if (ms > slowest.ms) slowest = { ms, kase: `${i} ${kind}` };
    if (allocated / bytes.length > heaviest.ratio) heaviest = { ratio: allocated / bytes.length, bytes: allocated, kase: `${i} ${kind}` };
    if (outcome === 'loaded' || outcome === 'refused') tally[outcome]++;
    else unexpected.push(`case ${i} (${kind}): ${outcome}`);
    // A stride prime to the kinds' rotation, so every kind meets the worker; and every header case (its clone is the point).
    if (i % 23 === 0 || kind.startsWith('header')) {
      // The API's way: in a worker thread, the reply cloned back. The same verdict, or a refusal the worker alone can make.
      workerLoads++;
      const inWorker = await loadForestInWorker({ bytes }, `case ${i}`, options).then(() => 'loaded', (e: unknown) => (e instanceof UserError ? 'refused' : `${(e as Error).name}: ${(e as Error).message}`.slice(0, 300)));
      if (inWorker !== outcome && !(outcome === 'loaded' && inWorker === 'refused')) disagreements.push(`case ${i} (${kind}): in thread ${outcome}, in worker ${inWorker}`);
    }
    const rise = (process.resourceUsage().maxRSS - peakBefore) / 1024;
    if (rise > rssRise.mib) rssRise = { mib: rise, kase: `${i} ${kind}` };
  }
  process.stdout.write(
    `${JSON.stringify({ cases: cases.length, outcomes, rowsScored, workerLoads, disagreements, unexpected: unexpected.slice(0, 20), slowest, heaviest, rssRise, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`,
  );
}

void main();
