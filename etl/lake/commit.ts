import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Lake } from './types';

/**
 * The stage commit protocol: multi-file atomicity on any backend that only promises
 * single-object atomicity.
 *
 * 1. Each output file is hashed and stored under a content-addressed name inside the
 *    stage prefix (`gold/train-<sha256[0:16]>.parquet`). Nothing refers to it yet, so
 *    readers cannot see it.
 * 2. Last, one object `<prefix>/_SUCCESS` is written: the manifest listing every file
 *    with its row count, size and SHA-256, plus stage metadata. Writing it is the
 *    commit point. Readers only ever go through the manifest.
 * 3. After the commit, every object under the prefix that the new manifest does not
 *    list (older outputs, debris of crashed runs) is deleted.
 *
 * A crash before step 2 leaves the previous manifest, and every file it lists, intact.
 * Identical outputs get identical names, so a rerun on the same input rewrites the same
 * objects and an identical manifest (no timestamps go into either; they go to logs/).
 * One writer per stage prefix at a time is assumed.
 */
export const MANIFEST_NAME = '_SUCCESS';
export const MANIFEST_FORMAT = 'pricesense.stage-manifest/1';

export interface CommittedFile {
  /** Path relative to the stage prefix, e.g. `train-3f2a….parquet`. */
  readonly path: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
}

export interface StageManifest<M = Record<string, unknown>> {
  readonly format: typeof MANIFEST_FORMAT;
  readonly stage: string;
  readonly rows: number;
  readonly files: CommittedFile[];
  readonly meta: M;
}

export interface CommittedStage<M = Record<string, unknown>> {
  readonly key: string;
  /** SHA-256 of the manifest object's bytes: the identity of this stage output. */
  readonly sha256: string;
  readonly manifest: StageManifest<M>;
}

export interface CommitResult<M> extends CommittedStage<M> {
  readonly uploaded: number;
  readonly reused: number;
  readonly garbageDeleted: number;
}

interface PendingFile {
  readonly path: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly source: { localPath: string } | { body: Buffer };
}

export function manifestKey(prefix: string): string {
  return `${trimSlash(prefix)}/${MANIFEST_NAME}`;
}

/** `SHOP_WEEK=200607/part.parquet` + hash → `SHOP_WEEK=200607/part-<16 hex>.parquet`. */
export function contentAddressedName(name: string, sha256: string): string {
  const slash = name.lastIndexOf('/');
  const dir = slash >= 0 ? name.slice(0, slash + 1) : '';
  const base = name.slice(slash + 1);
  const dot = base.indexOf('.');
  const stem = dot > 0 ? base.slice(0, dot) : base;
  const ext = dot > 0 ? base.slice(dot) : '';
  return `${dir}${stem}-${sha256.slice(0, 16)}${ext}`;
}

export class StageCommit<M = Record<string, unknown>> {
  private readonly files: PendingFile[] = [];
  readonly prefix: string;

  constructor(
    readonly lake: Lake,
    prefix: string,
    readonly stage: string = trimSlash(prefix),
  ) {
    this.prefix = trimSlash(prefix);
  }

  /** Stage a local file; it is hashed now and copied into the lake at commit(). */
  async addFile(localPath: string, name: string, rows: number): Promise<CommittedFile> {
    const { sha256, bytes } = await hashFile(localPath);
    return this.add({ path: contentAddressedName(name, sha256), rows, bytes, sha256, source: { localPath } });
  }

  addBuffer(name: string, body: Buffer | string, rows: number): CommittedFile {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    const sha256 = sha256Hex(buf);
    return this.add({ path: contentAddressedName(name, sha256), rows, bytes: buf.length, sha256, source: { body: buf } });
  }

  private add(file: PendingFile): CommittedFile {
    if (file.path.split('/').pop() === MANIFEST_NAME) throw new Error(`'${MANIFEST_NAME}' is reserved for the stage manifest`);
    const clash = this.files.find((f) => f.path === file.path);
    if (clash) {
      if (clash.sha256 !== file.sha256) throw new Error(`two different files staged as ${file.path}`);
      return describe(clash);
    }
    this.files.push(file);
    return describe(file);
  }

  /** Upload the data files, then publish the manifest (the commit point), then collect garbage. */
  async commit(meta: M): Promise<CommitResult<M>> {
    const files = [...this.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    let uploaded = 0;
    let reused = 0;
    const existing = new Map((await this.lake.list(`${this.prefix}/`)).map((o) => [o.key, o.size]));
    for (const file of files) {
      const key = `${this.prefix}/${file.path}`;
      // Content-addressed and written atomically: an object already under this name is this file.
      if (existing.get(key) === file.bytes) {
        reused++;
        continue;
      }
      if ('localPath' in file.source) await this.lake.upload(file.source.localPath, key);
      else await this.lake.write(key, file.source.body);
      uploaded++;
    }
    const manifest: StageManifest<M> = {
      format: MANIFEST_FORMAT,
      stage: this.stage,
      rows: files.reduce((n, f) => n + f.rows, 0),
      files: files.map(describe),
      meta,
    };
    const body = serializeManifest(manifest);
    const key = manifestKey(this.prefix);
    await this.lake.write(key, body);
    const garbageDeleted = await collectGarbage(this.lake, this.prefix, manifest);
    return { key, sha256: sha256Hex(body), manifest, uploaded, reused, garbageDeleted };
  }
}

/** Deterministic bytes: fixed key order (as built), 2-space indent, trailing newline. */
export function serializeManifest(manifest: StageManifest<unknown>): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
}

/** Delete everything under the prefix that the manifest does not list. */
export async function collectGarbage(lake: Lake, prefix: string, manifest: StageManifest<unknown>): Promise<number> {
  const p = trimSlash(prefix);
  const keep = new Set([manifestKey(p), ...manifest.files.map((f) => `${p}/${f.path}`)]);
  let deleted = 0;
  for (const obj of await lake.list(`${p}/`)) {
    if (keep.has(obj.key)) continue;
    await lake.delete(obj.key);
    deleted++;
  }
  return deleted;
}

/** The committed output of a stage, or undefined if the stage never committed. */
export async function readStageManifest<M = Record<string, unknown>>(lake: Lake, prefix: string): Promise<CommittedStage<M> | undefined> {
  const key = manifestKey(prefix);
  if (!(await lake.exists(key))) return undefined;
  const body = await lake.read(key);
  let manifest: StageManifest<M>;
  try {
    manifest = JSON.parse(body.toString('utf8')) as StageManifest<M>;
  } catch (err) {
    throw new Error(`${lake.uri(key)} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (manifest.format !== MANIFEST_FORMAT || !Array.isArray(manifest.files)) {
    throw new Error(`${lake.uri(key)} is not a ${MANIFEST_FORMAT} manifest (format: ${String(manifest.format)})`);
  }
  return { key, sha256: sha256Hex(body), manifest };
}

/** Read one committed file and check it against the manifest's SHA-256. */
export async function readCommittedFile(lake: Lake, prefix: string, file: CommittedFile): Promise<Buffer> {
  const key = `${trimSlash(prefix)}/${file.path}`;
  const body = await lake.read(key);
  const actual = sha256Hex(body);
  if (actual !== file.sha256) throw integrityError(lake.uri(key), file.sha256, actual);
  return body;
}

/**
 * A local path holding a committed file, for DuckDB (which reads local files only):
 * the object itself on a local lake, a downloaded copy under scratchDir otherwise.
 * With verify, the bytes are checked against the manifest's SHA-256 (sizes always are).
 */
export async function localCopyOf(
  lake: Lake,
  prefix: string,
  file: CommittedFile,
  scratchDir: string,
  opts: { verify?: boolean } = {},
): Promise<string> {
  const key = `${trimSlash(prefix)}/${file.path}`;
  let local: string;
  if (lake.kind === 'local') {
    local = lake.uri(key);
  } else {
    local = path.join(scratchDir, ...key.split('/'));
    await lake.download(key, local);
  }
  const { sha256, bytes } = opts.verify ? await hashFile(local) : { sha256: file.sha256, bytes: await fileSize(local) };
  if (bytes !== file.bytes) throw new Error(`${lake.uri(key)} is ${bytes} bytes but its manifest says ${file.bytes}: the lake was modified outside pricesense`);
  if (sha256 !== file.sha256) throw integrityError(lake.uri(key), file.sha256, sha256);
  return local;
}

export function sha256Hex(body: Buffer | string): string {
  return createHash('sha256').update(body).digest('hex');
}

export async function hashFile(localPath: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(localPath, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function fileSize(localPath: string): Promise<number> {
  const { stat } = await import('node:fs/promises');
  return (await stat(localPath)).size;
}

function integrityError(where: string, expected: string, actual: string): Error {
  return new Error(`${where} does not match its manifest (sha256 ${actual.slice(0, 16)}…, expected ${expected.slice(0, 16)}…): the lake was modified outside pricesense`);
}

function describe(f: PendingFile | CommittedFile): CommittedFile {
  return { path: f.path, rows: f.rows, bytes: f.bytes, sha256: f.sha256 };
}

function trimSlash(prefix: string): string {
  return prefix.replace(/\/+$/, '');
}
