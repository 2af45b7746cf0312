/**
 * Child process of the forest fuzz test (model/test/forest-fuzz.test.ts): loads mutated
 * format v2 forest files, one after another, through the loader the API uses, and
 * scores rows with every one that loads. Mutations are what someone with registry write
 * access could write: counts and lengths set to hostile values, damaged encoded arrays,
 * arrays cut or grown, and raw damage to the text; all but the last are sealed anew
 * (a matching sha256), so they reach the decoder rather than stopping at the digest.
 * Prints `case <i> <kind>` before each case and one JSON report line at the end.
 */
import { UserError } from '../../core/errors';
import { forestDigest, forestJson, upgradeForest } from '../forest-file';
import type { ForestFileV1 } from '../format';
import { loadForest } from '../forest-loader';
import { randomForest, randomRow, rng } from './random-forest-fixture';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Values a hostile count or length takes: edges of every integer width and the limits. */
const HOSTILE_NUMBERS = [0, 1, -1, 2, 0.5, 255, 256, 65_535, 65_536, 2 ** 20, 2 ** 20 + 1, 2 ** 25, 2 ** 25 + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 1e308, -1e308];

/** Every path to a number in the document's `trees` object and the features' shapes, with the arrays inside. */
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
  return [trees.sizes, trees.split, trees.defaultLeft, trees.splitIndex, trees.distributions?.value, trees.distributions?.count].filter((a) => a && typeof a.base64 === 'string');
}

function main(): void {
  const count = Number(process.argv[2] ?? 1000);
  const rand = rng(20261201);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const forest = upgradeForest(randomForest(31, { trees: 12, maxDepth: 7, classes: 3 }));
  const text = forestJson(forest);
  const paths: (string | number)[][] = [];
  numericPaths((JSON.parse(text) as Json).trees, ['trees'], paths);
  const outcomes: Record<string, { loaded: number; refused: number }> = {};
  const unexpected: string[] = [];
  let rowsScored = 0;

  const sealed = (mutate: (d: Json) => void): Buffer => {
    const d = JSON.parse(text) as Json;
    mutate(d);
    d.sha256 = forestDigest(d as ForestFileV1);
    return Buffer.from(JSON.stringify(d));
  };
  const kinds: [string, () => Buffer][] = [
    ['count or length set to a hostile value', () => sealed((d) => setAt(d, pick(paths), pick(HOSTILE_NUMBERS)))],
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
    ['raw bytes of the text flipped or cut', () => {
      const b = Buffer.from(text);
      if (rand() < 0.3) return b.subarray(0, Math.floor(rand() * b.length));
      for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      return b;
    }],
  ];
  for (let i = 0; i < count; i++) {
    const [kind, make] = kinds[i % kinds.length];
    process.stdout.write(`case ${i} ${kind}\n`);
    const tally = (outcomes[kind] ??= { loaded: 0, refused: 0 });
    try {
      const { forest: loaded, summary } = loadForest(make(), `case ${i}`);
      // A file that loads is a forest: scoring it is bounded too (its depth and steps passed the limits).
      for (let r = 0; r < 20; r++) loaded.predict(randomRow(rand, summary.features));
      rowsScored += 20;
      tally.loaded++;
    } catch (err) {
      if (err instanceof UserError) tally.refused++;
      else unexpected.push(`case ${i} (${kind}): ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
  }
  process.stdout.write(`${JSON.stringify({ outcomes, rowsScored, unexpected: unexpected.slice(0, 20), maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
}

main();
