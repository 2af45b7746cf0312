/**
 * Forest file I/O: canonical hashing (sealForest), validated parsing (parseForest)
 * and atomic file read/write. docs/model-format.md is the reference.
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
import { UserError } from '../etl/errors';
import type { ForestFileV1, TreeV1 } from './format';
import { forestShellValidator, treeLooksValid, treeSchemaValidator } from './forest-schema';

/** A forest document that failed validation; `path` names the bad field (e.g. trees[3].left[17]). */
export class ForestFormatError extends UserError {
  readonly source: string;
  readonly fieldPath: string;
  constructor(source: string, fieldPath: string, problem: string) {
    super(`${source}: invalid forest file: ${fieldPath || '(document)'} ${problem}`);
    this.name = 'ForestFormatError';
    this.source = source;
    this.fieldPath = fieldPath;
  }
}

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

/** SHA-256 (hex) of the canonical JSON of every field of the document but sha256. */
export function forestDigest(doc: Omit<ForestFileV1, 'sha256'> | ForestFileV1): string {
  const hash = createHash('sha256');
  const { sha256: _ignored, ...content } = doc as ForestFileV1;
  canonicalChunks(content, (c, ascii) => hash.update(c, ascii ? 'latin1' : 'utf8'));
  return hash.digest('hex');
}

/** Returns the document with its sha256 set (any sha256 already present is replaced). */
export function sealForest(doc: Omit<ForestFileV1, 'sha256'>): ForestFileV1 {
  const { sha256: _ignored, ...content } = doc as ForestFileV1;
  return { ...content, sha256: forestDigest(content) };
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
      return [at ? `${at}.${String(err.params.additionalProperty)}` : String(err.params.additionalProperty), 'is not a field of format v1 (unknown fields are refused: they could change scoring)'];
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

/**
 * Parses and validates a forest document: schema (Ajv), then structure (array
 * lengths, child indices forming one tree per tree, feature indices, categorical
 * bitset offsets, class distributions summing to 1), then the SHA-256. Errors are
 * ForestFormatError (a UserError) naming the source and the bad field.
 */
export function parseForest(json: string | Buffer, source = '<forest>', options: ParseForestOptions = {}): ForestFileV1 {
  let text: string;
  try {
    text = typeof json === 'string' ? json : json.toString('utf8');
  } catch (e) {
    throw new ForestFormatError(source, '', `cannot be decoded as UTF-8 text (${(e as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ForestFormatError(source, '', `is not valid JSON: ${(e as Error).message}`);
  }
  const validate = forestShellValidator();
  if (!validate(doc)) {
    const [at, problem] = describeAjvError(validate.errors![0]);
    throw new ForestFormatError(source, at, problem);
  }
  checkTreeSchemas(doc, source);
  checkStructure(doc, source);
  if (options.registryVerifiedSha256 !== undefined) {
    if (doc.sha256 !== options.registryVerifiedSha256) {
      throw new ForestFormatError(source, 'sha256', `is ${doc.sha256}, but the registry registered this version as ${options.registryVerifiedSha256}`);
    }
    return doc;
  }
  const expected = forestDigest(doc);
  if (expected !== doc.sha256) {
    throw new ForestFormatError(
      source,
      'sha256',
      `does not match the content (stored ${doc.sha256}, computed ${expected}): the file was modified or corrupted after it was sealed`,
    );
  }
  return doc;
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

function checkStructure(doc: ForestFileV1, source: string): void {
  const fail = (at: string, problem: string): never => {
    throw new ForestFormatError(source, at, problem);
  };
  const K = doc.classes.length;
  const F = doc.features.length;
  const names = new Set<string>();
  const words = new Int32Array(F);
  doc.features.forEach((f, i) => {
    if (names.has(f.name)) fail(`features[${i}].name`, `duplicates feature name ${JSON.stringify(f.name)}`);
    names.add(f.name);
    if (f.kind === 'categorical') words[i] = Math.ceil(f.categories.length / 32);
  });
  if (doc.aggregation === 'soft' && doc.voteTieBreak !== undefined) {
    fail('voteTieBreak', "applies to 'hard' aggregation only; remove it for 'soft'");
  }

  doc.trees.forEach((tree: TreeV1, t) => {
    const at = `trees[${t}]`;
    const n = tree.feature.length;
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
 * Writes the forest as canonical JSON (plus a newline) atomically: a temporary file
 * in the same directory, fsync, then rename over the target. The forest's sha256
 * must match its content (use sealForest), so a corrupt document is never written.
 */
export async function writeForestFile(file: string, forest: ForestFileV1): Promise<void> {
  const digest = forestDigest(forest);
  if (digest !== forest.sha256) {
    throw new Error(`writeForestFile: the forest's sha256 (${forest.sha256}) does not match its content (${digest}); seal it with sealForest first`);
  }
  const chunks: string[] = [];
  canonicalChunks(forest, (c) => chunks.push(c));
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
