/**
 * Forest file I/O: canonical hashing (sealForest), validated parsing (parseForest)
 * and atomic file read/write, for formats v1 and v2. docs/model-format.md is the
 * reference.
 *
 * A document's serialized form is its in-memory form for v1, and for v2 the same
 * with `trees` replaced by the encoded object of model/forest-codec.ts. Its sha256
 * covers the serialized form, so a reader verifies it without decoding anything.
 *
 * Canonical JSON (what sha256 is computed over, and what writeForestFile writes):
 * - objects: keys sorted by UTF-16 code units (JavaScript's default sort), keys whose
 *   value is undefined omitted, no whitespace;
 * - arrays: in order, no whitespace; typed arrays serialize as arrays of numbers;
 * - strings and numbers exactly as JSON.stringify prints them; numbers must be finite
 *   (NaN and ±Infinity have no JSON form and are refused);
 * - the document's sha256 is the lowercase hex SHA-256 of the UTF-8 bytes of the
 *   canonical JSON of every field but sha256.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { FOREST_FORMAT_V2, FOREST_FORMAT_VERSION, type ForestFileV1, type TreeV1 } from './format';
import { decodeTrees, encodeTrees, rememberedEncoding, rememberEncoding, type TreesV2 } from './forest-codec';
import { ForestFormatError } from './forest-error';
import { checkForestShape, flattenForest, treesOfFlat, type FlatForest } from './forest-flat';
import { checkHeaderSize, checkLimit } from './forest-limits';
import { forestSchemaValidatorV2, forestShellValidator, treeLooksValid, treeSchemaValidator } from './forest-schema';

export { ForestFormatError };

/** A forest document without its trees: what serving keeps besides the compiled forest. */
export type ForestSummary = Omit<ForestFileV1, 'trees'>;

const CHUNK_CHARS = 1 << 20;

/**
 * Streams the canonical JSON of a value as chunks of about 1 MiB, so a large forest
 * can be hashed or written without building one string beyond V8's length limit.
 */
class CanonicalWriter {
  private buf = '';
  /** sink(chunk, ascii): ascii is true when the chunk is known to hold ASCII only. */
  constructor(private readonly sink: (chunk: string, ascii: boolean) => void) {}

  write(value: unknown, at: string): void {
    if (value === null) {
      this.push('null');
      return;
    }
    switch (typeof value) {
      case 'number':
        if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${at || '(value)'} is ${value}, which JSON cannot represent`);
        this.push(JSON.stringify(value));
        return;
      case 'string':
        this.push(JSON.stringify(value));
        return;
      case 'boolean':
        this.push(value ? 'true' : 'false');
        return;
      case 'object':
        break;
      default:
        throw new TypeError(`canonical JSON: ${at || '(value)'} is a ${typeof value}, which JSON cannot represent`);
    }
    const maybeToJson = (value as { toJSON?: unknown }).toJSON;
    if (typeof maybeToJson === 'function') {
      this.write((maybeToJson as () => unknown).call(value), at);
      return;
    }
    if (Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))) {
      const arr = value as ArrayLike<unknown>;
      if (allFiniteNumbers(arr)) {
        // The trees' arrays are most of a forest: JSON.stringify of an array of finite
        // numbers is already canonical and far faster than element by element.
        this.pushLarge(JSON.stringify(Array.isArray(arr) ? arr : Array.from(arr as ArrayLike<number>)));
        return;
      }
      this.push('[');
      for (let i = 0; i < arr.length; i++) {
        if (i > 0) this.push(',');
        const el = arr[i];
        if (typeof el === 'number') {
          if (!Number.isFinite(el)) throw new TypeError(`canonical JSON: ${at}[${i}] is ${el}, which JSON cannot represent`);
          this.push(JSON.stringify(el));
        } else {
          // JSON.stringify writes undefined array slots as null; so do we.
          this.write(el === undefined ? null : el, `${at}[${i}]`);
        }
      }
      this.push(']');
      return;
    }
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    this.push('{');
    let first = true;
    for (const key of keys) {
      const v = obj[key];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      if (!first) this.push(',');
      first = false;
      this.push(JSON.stringify(key));
      this.push(':');
      this.write(v, at ? `${at}.${key}` : key);
    }
    this.push('}');
  }

  private push(s: string): void {
    this.buf += s;
    if (this.buf.length >= CHUNK_CHARS) this.flush();
  }

  /**
   * A large piece of ASCII (a number array's JSON) goes to the sink as it is, rather than
   * through the buffer's concatenation; the hasher can then encode it as Latin-1, which
   * for ASCII is the same bytes as UTF-8 and several times faster to convert.
   */
  private pushLarge(s: string): void {
    if (s.length < 4096) {
      this.push(s);
      return;
    }
    this.flush();
    this.sink(s, true);
  }

  flush(): void {
    if (this.buf.length > 0) {
      this.sink(this.buf, false);
      this.buf = '';
    }
  }
}

function allFiniteNumbers(arr: ArrayLike<unknown>): boolean {
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    // v - v is 0 for finite numbers only (NaN and ±Infinity give NaN).
    if (typeof v !== 'number' || v - v !== 0) return false;
  }
  return true;
}

function canonicalChunks(value: unknown, sink: (chunk: string, ascii: boolean) => void): void {
  const w = new CanonicalWriter(sink);
  w.write(value, '');
  w.flush();
}

/** The canonical JSON of a value (see the module comment). */
export function canonicalJson(value: unknown): string {
  const parts: string[] = [];
  canonicalChunks(value, (c) => parts.push(c));
  return parts.join('');
}

/** The v2 `trees` object of in-memory trees: remembered when they were read or sealed, else encoded now. */
function encodedTreesOf(doc: Pick<ForestFileV1, 'classes' | 'features' | 'trees'>): TreesV2 {
  let encoded = rememberedEncoding(doc.trees);
  if (!encoded) {
    encoded = encodeTrees(flattenForest(doc));
    rememberEncoding(doc.trees, encoded);
  }
  return encoded;
}

/**
 * The document as it is written: for v2, `trees` becomes the encoded object (a
 * document parsed from a v2 file whose trees were never decoded has it already).
 */
function serializedForm<D extends Omit<ForestFileV1, 'sha256'>>(doc: D): D | (Omit<D, 'trees'> & { trees: TreesV2 }) {
  if (doc.formatVersion !== FOREST_FORMAT_V2 || !Array.isArray(doc.trees)) return doc;
  return { ...doc, trees: encodedTreesOf(doc) };
}

/** SHA-256 (hex) of the canonical JSON of every field of the serialized document but sha256. */
export function forestDigest(doc: Omit<ForestFileV1, 'sha256'> | ForestFileV1): string {
  const hash = createHash('sha256');
  const { sha256: _ignored, ...content } = serializedForm(doc) as ForestFileV1;
  canonicalChunks(content, (c, ascii) => hash.update(c, ascii ? 'latin1' : 'utf8'));
  return hash.digest('hex');
}

/**
 * A v2 document's trees are v1 arrays in memory but an encoded object on disk; its
 * toJSON (not enumerable: spreads and deep equality ignore it) gives the serialized
 * form, so JSON.stringify and canonicalJson of a sealed v2 document write a valid v2
 * file rather than a v1-shaped one that claims to be v2.
 */
function withSerializedJson(doc: ForestFileV1): ForestFileV1 {
  if (doc.formatVersion === FOREST_FORMAT_V2 && Array.isArray(doc.trees)) {
    Object.defineProperty(doc, 'toJSON', { value: () => serializedForm(doc), enumerable: false, configurable: true });
  }
  return doc;
}

/** Returns the document with its sha256 set (any sha256 already present is replaced). */
export function sealForest(doc: Omit<ForestFileV1, 'sha256'>): ForestFileV1 {
  const { sha256: _ignored, ...content } = doc as ForestFileV1;
  return withSerializedJson({ ...content, sha256: forestDigest(content) });
}

/** The forest rewritten in format v2 (`pricesense model upgrade`): the same trees, scored identically, sealed anew. */
export function upgradeForest(doc: ForestFileV1): ForestFileV1 {
  return sealForest({ ...doc, formatVersion: FOREST_FORMAT_V2 });
}

/**
 * The file's canonical JSON (what writeForestFile writes, without the final newline).
 * Refuses a forest whose sha256 does not match its content.
 */
export function forestJson(forest: ForestFileV1): string {
  const parts: string[] = [];
  serializeChecked(forest, (c) => parts.push(c));
  return parts.join('');
}

function serializeChecked(forest: ForestFileV1, sink: (chunk: string) => void): void {
  const digest = forestDigest(forest);
  if (digest !== forest.sha256) {
    throw new Error(`the forest's sha256 (${forest.sha256}) does not match its content (${digest}); seal it with sealForest first`);
  }
  canonicalChunks(serializedForm(forest), sink);
}

function jsonPointerToPath(pointer: string): string {
  if (!pointer) return '';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out;
}

function describeAjvError(err: { instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }): [string, string] {
  const at = jsonPointerToPath(err.instancePath);
  switch (err.keyword) {
    case 'required':
      return [at ? `${at}.${String(err.params.missingProperty)}` : String(err.params.missingProperty), 'is required but missing'];
    case 'additionalProperty':
    case 'additionalProperties':
      return [at ? `${at}.${String(err.params.additionalProperty)}` : String(err.params.additionalProperty), 'is not a field of the forest format (unknown fields are refused: they could change scoring)'];
    case 'const':
      return [at, `must be ${JSON.stringify(err.params.allowedValue)}`];
    case 'enum':
      return [at, `must be one of ${JSON.stringify(err.params.allowedValues)}`];
    default:
      return [at, err.message ?? `fails ${err.keyword}`];
  }
}

export interface ParseForestOptions {
  /**
   * The forest's sha256 as recorded by a registry that has just checked these exact
   * bytes against the artifact digest it stored when it registered them — and it ran
   * the full verification, canonical hash included, at registration. Re-hashing the
   * canonical content would then prove nothing new (and is most of a large forest's
   * load time), so it is skipped; the document's own sha256 must still equal this.
   */
  readonly registryVerifiedSha256?: string;
}

/** A document that passed the schema of its format version and the digest check; v2 trees still encoded. */
type CheckedDocument = (ForestFileV1 & { formatVersion: typeof FOREST_FORMAT_VERSION }) | (Omit<ForestFileV1, 'trees'> & { formatVersion: typeof FOREST_FORMAT_V2; trees: TreesV2 });

function parseJson(json: string | Buffer, source: string): unknown {
  checkLimit(source, '', 'documentBytes', typeof json === 'string' ? json.length : json.length);
  let text: string;
  try {
    text = typeof json === 'string' ? json : json.toString('utf8');
  } catch (e) {
    throw new ForestFormatError(source, '', `cannot be decoded as UTF-8 text (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ForestFormatError(source, '', `is not valid JSON: ${(e as Error).message}`);
  }
}

function checkDocument(json: string | Buffer, source: string, options: ParseForestOptions): CheckedDocument {
  const doc = parseJson(json, source);
  checkHeaderSize(source, doc);
  const version = (doc as { formatVersion?: unknown } | null)?.formatVersion;
  if (version !== FOREST_FORMAT_VERSION && version !== FOREST_FORMAT_V2 && doc !== null && typeof doc === 'object' && (doc as { format?: unknown }).format === 'pricesense.forest') {
    throw new ForestFormatError(source, 'formatVersion', `is ${JSON.stringify(version)}: this pricesense reads format versions ${FOREST_FORMAT_VERSION} and ${FOREST_FORMAT_V2}; a newer version needs a newer pricesense`);
  }
  const validate = version === FOREST_FORMAT_V2 ? forestSchemaValidatorV2() : forestShellValidator();
  if (!validate(doc)) {
    const [at, problem] = describeAjvError(validate.errors![0]);
    throw new ForestFormatError(source, at, problem);
  }
  const checked = doc as CheckedDocument;
  checkHeader(checked, source);
  if (checked.formatVersion === FOREST_FORMAT_VERSION) {
    // v1's trees are checked before hashing: the canonical JSON of an unchecked tree may not exist (1e999).
    checkTreeSchemas(checked, source);
    checkStructure(checked, source);
  }
  if (options.registryVerifiedSha256 !== undefined) {
    if (checked.sha256 !== options.registryVerifiedSha256) {
      throw new ForestFormatError(source, 'sha256', `is ${checked.sha256}, but the registry registered this version as ${options.registryVerifiedSha256}`);
    }
    return checked;
  }
  const expected = forestDigest(checked as unknown as ForestFileV1);
  if (expected !== checked.sha256) {
    throw new ForestFormatError(
      source,
      'sha256',
      `does not match the content (stored ${checked.sha256}, computed ${expected}): the file was modified or corrupted after it was sealed`,
    );
  }
  return checked;
}

/**
 * Parses and validates a forest document of format v1 or v2: schema (Ajv), the
 * SHA-256, then structure — for v1 array lengths, child indices forming one tree per
 * tree, feature indices, categorical bitset offsets, class distributions summing to 1;
 * for v2 everything decodeTrees checks. Both are held to the limits of
 * model/forest-limits.ts. Errors are ForestFormatError (a UserError) naming the source
 * and the bad field. A v2 document comes back with its trees decoded into v1 arrays
 * (nodes numbered in pre-order) and its formatVersion kept, so it is written back as v2.
 */
export function parseForest(json: string | Buffer, source = '<forest>', options: ParseForestOptions = {}): ForestFileV1 {
  const doc = checkDocument(json, source, options);
  if (doc.formatVersion === FOREST_FORMAT_VERSION) return doc;
  const trees = treesOfFlat(decodeTrees(doc.trees, doc.classes.length, doc.features, source));
  rememberEncoding(trees, doc.trees);
  return withSerializedJson({ ...doc, trees });
}

/**
 * Parses and validates like parseForest, but returns the trees in the pre-order form
 * the scorer packs (model/walker/layout.ts) — for v2 straight from the file's arrays,
 * without building per-node JavaScript arrays.
 */
export function parseForestFlat(json: string | Buffer, source = '<forest>', options: ParseForestOptions = {}): { summary: ForestSummary; flat: FlatForest } {
  const doc = checkDocument(json, source, options);
  const flat = doc.formatVersion === FOREST_FORMAT_VERSION ? flattenForest(doc, source) : decodeTrees(doc.trees, doc.classes.length, doc.features, source);
  const { trees: _trees, ...summary } = doc;
  return { summary, flat };
}

/**
 * The trees' part of the schema: a tight pass per tree (treeLooksValid), and Ajv's tree
 * schema only on a tree that fails it, so the error names the field exactly as Ajv would.
 */
function checkTreeSchemas(doc: ForestFileV1, source: string): void {
  const trees = doc.trees as unknown[];
  for (let t = 0; t < trees.length; t++) {
    if (treeLooksValid(trees[t])) continue;
    const validate = treeSchemaValidator();
    if (validate(trees[t])) throw new ForestFormatError(source, `trees[${t}]`, 'does not match the tree schema');
    const err = validate.errors![0];
    const [at, problem] = describeAjvError({ ...err, instancePath: `/trees/${t}${err.instancePath}` });
    throw new ForestFormatError(source, at, problem);
  }
}

const SUM_TOLERANCE = 1e-9;

/** What both versions share: unique feature names, the vote rule, the limits on the document's shape. */
function checkHeader(doc: Omit<ForestFileV1, 'trees'> & { trees: unknown }, source: string): void {
  const names = new Set<string>();
  doc.features.forEach((f, i) => {
    if (names.has(f.name)) throw new ForestFormatError(source, `features[${i}].name`, `duplicates feature name ${JSON.stringify(f.name)}`);
    names.add(f.name);
  });
  if (doc.aggregation === 'soft' && doc.voteTieBreak !== undefined) {
    throw new ForestFormatError(source, 'voteTieBreak', "applies to 'hard' aggregation only; remove it for 'soft'");
  }
  const trees = Array.isArray(doc.trees) ? doc.trees.length : (doc.trees as TreesV2).count;
  checkForestShape(source, doc.classes.length, doc.features, trees);
}

function checkStructure(doc: ForestFileV1, source: string): void {
  const fail = (at: string, problem: string): never => {
    throw new ForestFormatError(source, at, problem);
  };
  const K = doc.classes.length;
  const F = doc.features.length;
  const words = new Int32Array(F);
  doc.features.forEach((f, i) => {
    if (f.kind === 'categorical') words[i] = Math.ceil(f.categories.length / 32);
  });
  let nodes = 0;
  doc.trees.forEach((tree: TreeV1, t) => {
    const at = `trees[${t}]`;
    const n = tree.feature.length;
    checkLimit(source, at, 'nodesPerTree', n);
    nodes += n;
    checkLimit(source, 'trees', 'nodes', nodes);
    for (const field of ['threshold', 'left', 'right', 'defaultLeft', 'count'] as const) {
      if (tree[field].length !== n) fail(`${at}.${field}`, `has ${tree[field].length} entries, expected ${n} (one per node, as feature)`);
    }
    if (tree.value.length !== n * K) fail(`${at}.value`, `has ${tree.value.length} entries, expected ${n * K} (nodes ${n} × classes ${K})`);

    const parents = new Int32Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      const f = tree.feature[i];
      if (f >= F) fail(`${at}.feature[${i}]`, `is ${f}, but there are only ${F} features`);
      const l = tree.left[i];
      const r = tree.right[i];
      if (f === -1) {
        if (l !== -1) fail(`${at}.left[${i}]`, `is ${l}, but node ${i} is a leaf (feature -1): a leaf's children must be -1`);
        if (r !== -1) fail(`${at}.right[${i}]`, `is ${r}, but node ${i} is a leaf (feature -1): a leaf's children must be -1`);
      } else {
        for (const [side, c] of [['left', l], ['right', r]] as const) {
          // Children after their parent rules out cycles; one parent per node makes it a tree.
          if (c <= i || c >= n) fail(`${at}.${side}[${i}]`, `is ${c}: a child index must be greater than its parent's (${i}) and less than the node count (${n})`);
          if (parents[c] !== -1) fail(`${at}.${side}[${i}]`, `is ${c}, which is already a child of node ${parents[c]}: a node has one parent`);
          parents[c] = i;
        }
        if (doc.features[f].kind === 'categorical') {
          const off = tree.threshold[i];
          if (!Number.isInteger(off) || off < 0 || off + words[f] > tree.catBits.length) {
            fail(
              `${at}.threshold[${i}]`,
              `is ${off}: a categorical split's threshold is an offset into catBits, needing ${words[f]} word(s) from it within catBits (length ${tree.catBits.length})`,
            );
          }
        }
      }
      let sum = 0;
      for (let k = 0; k < K; k++) sum += tree.value[i * K + k];
      if (Math.abs(sum - 1) > SUM_TOLERANCE) fail(`${at}.value[${i * K}..${i * K + K - 1}]`, `(node ${i}'s class distribution) sums to ${sum}, expected 1`);
    }
    for (let i = 1; i < n; i++) {
      if (parents[i] === -1) fail(`${at}.feature[${i}]`, `node ${i} is not reachable from the root (no node has it as a child)`);
    }
  });
}

/** Reads and validates a forest file; errors name the path. */
export async function readForestFile(file: string): Promise<ForestFileV1> {
  let data: Buffer;
  try {
    data = await fsp.readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new UserError(`forest file not found: ${file}`);
    throw new UserError(`cannot read forest file ${file}: ${err.message}`);
  }
  return parseForest(data, file);
}

/**
 * Writes the forest as canonical JSON of its serialized form (plus a newline) atomically: a temporary file
 * in the same directory, fsync, then rename over the target. The forest's sha256
 * must match its content (use sealForest), so a corrupt document is never written.
 */
export async function writeForestFile(file: string, forest: ForestFileV1): Promise<void> {
  const chunks: string[] = [];
  try {
    serializeChecked(forest, (c) => chunks.push(c));
  } catch (e) {
    throw new Error(`writeForestFile: ${(e as Error).message}`, { cause: e });
  }
  const dir = path.dirname(path.resolve(file));
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await fsp.open(tmp, 'w');
  try {
    for (const c of chunks) await fh.write(c, null, 'utf8');
    await fh.write('\n', null, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
