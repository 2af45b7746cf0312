import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../core/errors';
import type { Lake } from './types';

/**
 * The stage commit protocol: multi-file atomicity on any backend that only promises
 * single-object atomicity, and a clean-up that only ever deletes what it wrote.
 *
 * 1. The run records the files it is about to write in the stage's ledger
 *    (`<prefix>/_LEDGER.json`, pending), so that even a run killed half-way leaves only
 *    objects a ledger lists.
 * 2. Each output file is hashed and stored under a content-addressed name inside the
 *    stage prefix (`gold/train-<sha256[0:16]>.parquet`). Nothing refers to it yet, so
 *    readers cannot see it.
 * 3. Then one object `<prefix>/_SUCCESS` is written: the manifest listing every file
 *    with its row count, size and SHA-256, plus stage metadata. Writing it is the
 *    commit point. Readers only ever go through the manifest.
 * 4. Clean-up: the objects the ledger lists (earlier generations, pending files of
 *    crashed runs) that neither the new manifest nor the one it replaced lists are
 *    deleted, and the ledger is rewritten with the last two generations. The replaced
 *    generation stays until the commit after this one, so a reader that read the old
 *    manifest can finish reading its files.
 *
 * Nothing that no ledger lists is ever deleted: objects other tools put under the prefix
 * (e.g. gold/pipeline/<execution>/ of the SageMaker pipeline) are invisible to it.
 * A crash before step 3 leaves the previous manifest, and every file it lists, intact.
 * Identical outputs get identical names, and a commit whose manifest would be
 * byte-identical to the published one writes nothing, so a rerun on the same input leaves
 * the stage exactly as it was (no timestamps go into files or manifests; they go to logs/).
 * One writer per lake at a time: the ETL holds the lake's lease (lease.ts) around commits.
 */
export const MANIFEST_NAME = '_SUCCESS';
export const MANIFEST_FORMAT = 'pricesense.stage-manifest/1';
export const LEDGER_NAME = '_LEDGER.json';
export const LEDGER_FORMAT = 'pricesense.stage-ledger/1';

/** What the ETL wrote under a stage prefix: the only objects its clean-up may delete. */
interface Ledger {
  readonly format: typeof LEDGER_FORMAT;
  /** The last two committed generations, oldest first: manifest SHA-256 and file paths. */
  readonly generations: { readonly sha256: string; readonly files: string[] }[];
  /** Files runs were writing when they stopped (or are writing now), per run. */
  readonly pending: { readonly run: string; readonly files: string[] }[];
}

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
  /** Where the bytes come from; 'committed' is a file an earlier commit of this stage already wrote. */
  readonly source: { localPath: string } | { body: Buffer } | 'committed';
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

export interface StageCommitOptions {
  /** Names this run in the ledger's pending list (default: pid and a random suffix). */
  readonly run?: string;
  /**
   * Called right before the manifest is written (the commit point), where throwing aborts
   * the commit, and again before clean-up, where throwing skips the clean-up (left to the
   * next commit). The ETL checks there that it still holds the lake's lease.
   */
  readonly beforePublish?: () => Promise<void>;
}

export class StageCommit<M = Record<string, unknown>> {
  private readonly files: PendingFile[] = [];
  /** The stage prefix without slashes at its ends ('gold'); also the stage's name in its manifest and messages. */
  readonly prefix: string;
  private readonly run: string;

  constructor(
    readonly lake: Lake,
    prefix: string,
    private readonly options: StageCommitOptions = {},
  ) {
    this.prefix = trimSlash(prefix);
    this.run = options.run ?? `${process.pid}-${randomBytes(4).toString('hex')}`;
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

  /** Keep a file an earlier commit of this stage published (incremental outputs); it must still be there. */
  addExisting(file: CommittedFile): CommittedFile {
    return this.add({ ...describe(file), source: 'committed' });
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

  /** Record, upload, publish the manifest (the commit point), then delete what the ledger says is no longer needed. */
  async commit(meta: M): Promise<CommitResult<M>> {
    const files = [...this.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const manifest: StageManifest<M> = {
      format: MANIFEST_FORMAT,
      stage: this.prefix,
      rows: files.reduce((n, f) => n + f.rows, 0),
      files: files.map(describe),
      meta,
    };
    const body = serializeManifest(manifest);
    const key = manifestKey(this.prefix);
    const sha256 = sha256Hex(body);
    const existing = new Map((await this.lake.list(`${this.prefix}/`)).map((o) => [o.key, o.size]));
    const present = (f: PendingFile): boolean => existing.get(`${this.prefix}/${f.path}`) === f.bytes;
    // The manifest's version before its content: a commit in between makes the publish below refuse.
    const replaces = await this.lake.version(key);
    const current = await readStageManifest<M>(this.lake, this.prefix);
    if (current?.sha256 === sha256 && files.every(present)) {
      // The published output is already exactly this: a rerun on the same input writes nothing.
      return { key, sha256, manifest, uploaded: 0, reused: files.length, garbageDeleted: 0 };
    }

    const ledgerKey = `${this.prefix}/${LEDGER_NAME}`;
    const ledger = await readLedger(this.lake, ledgerKey);
    const mine = { run: this.run, files: files.map((f) => f.path) };
    await this.lake.write(ledgerKey, serializeLedger({ ...ledger, pending: [...ledger.pending.filter((p) => p.run !== this.run), mine] }));
    let uploaded = 0;
    let reused = 0;
    for (const file of files) {
      // Content-addressed and written atomically: an object already under this name is this file.
      if (present(file)) {
        reused++;
        continue;
      }
      const fileKey = `${this.prefix}/${file.path}`;
      if (file.source === 'committed') {
        throw new UserError(
          `${this.lake.uri(fileKey)} is listed by the current ${this.prefix} manifest but missing or changed: the lake was modified outside pricesense. ` +
            `Delete ${this.lake.uri(manifestKey(this.prefix))} to rebuild ${this.prefix} from raw/`,
        );
      }
      if ('localPath' in file.source) await this.lake.upload(file.source.localPath, fileKey);
      else await this.lake.write(fileKey, file.source.body);
      uploaded++;
    }
    await this.options.beforePublish?.();
    // The fence: publish only over the manifest this run started from. A run that stalled past
    // its lease while another committed (and may have cleaned up this run's pending files) stops here.
    if (!(await this.lake.writeIfVersion(key, body, replaces))) {
      throw new UserError(
        `another run committed ${this.lake.uri(key)} while this run was writing ${this.prefix} (this run's lease had expired or was taken over): ` +
          'nothing of this run was published, and the other run\'s output is intact. Rerun',
      );
    }
    // Clean-up deletes; do it only while still the lake's writer (else the next commit cleans up).
    try {
      await this.options.beforePublish?.();
    } catch {
      return { key, sha256, manifest, uploaded, reused, garbageDeleted: 0 };
    }

    // Clean-up: only objects a ledger of ours lists, never the new or the replaced generation.
    const keep = new Set([...manifest.files.map((f) => f.path), ...(current?.manifest.files.map((f) => f.path) ?? [])]);
    const owned = new Set([...ledger.generations.flatMap((g) => g.files), ...ledger.pending.flatMap((p) => p.files), ...(current?.manifest.files.map((f) => f.path) ?? [])]);
    let garbageDeleted = 0;
    for (const rel of [...owned].sort()) {
      if (keep.has(rel) || rel === MANIFEST_NAME || rel === LEDGER_NAME) continue;
      const objectKey = `${this.prefix}/${rel}`;
      if (!existing.has(objectKey) && !(await this.lake.exists(objectKey))) continue;
      await this.lake.delete(objectKey);
      garbageDeleted++;
    }
    const generations = [
      ...(current ? [{ sha256: current.sha256, files: current.manifest.files.map((f) => f.path) }] : []),
      { sha256, files: manifest.files.map((f) => f.path) },
    ];
    await this.lake.write(ledgerKey, serializeLedger({ format: LEDGER_FORMAT, generations, pending: [] }));
    return { key, sha256, manifest, uploaded, reused, garbageDeleted };
  }
}

async function readLedger(lake: Lake, key: string): Promise<Ledger> {
  if (!(await lake.exists(key))) return { format: LEDGER_FORMAT, generations: [], pending: [] };
  let ledger: Ledger;
  try {
    ledger = JSON.parse((await lake.read(key)).toString('utf8')) as Ledger;
  } catch {
    throw new UserError(`${lake.uri(key)} is not valid JSON (damaged or edited by hand); it lists what the ETL may clean up: restore it, or delete it (clean-up then forgets files of earlier runs)`);
  }
  if (ledger?.format !== LEDGER_FORMAT || !Array.isArray(ledger.generations) || !Array.isArray(ledger.pending)) {
    throw new UserError(`${lake.uri(key)} is not a ${LEDGER_FORMAT} ledger (damaged or written by another tool): restore it, or delete it (clean-up then forgets files of earlier runs)`);
  }
  return ledger;
}

function serializeLedger(ledger: Ledger): Buffer {
  return Buffer.from(`${JSON.stringify(ledger, null, 2)}\n`);
}

/** Deterministic bytes: fixed key order (as built), 2-space indent, trailing newline. */
export function serializeManifest(manifest: StageManifest<unknown>): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
}

/** The committed output of a stage, or undefined if the stage never committed. */
export async function readStageManifest<M = Record<string, unknown>>(lake: Lake, prefix: string): Promise<CommittedStage<M> | undefined> {
  const key = manifestKey(prefix);
  if (!(await lake.exists(key))) return undefined;
  const body = await lake.read(key);
  let manifest: StageManifest<M>;
  try {
    manifest = JSON.parse(body.toString('utf8')) as StageManifest<M>;
  } catch {
    throw new UserError(`${lake.uri(key)} is not valid JSON (damaged or edited by hand): restore it, or delete it to rebuild ${prefix} from raw/ on the next run`);
  }
  if (manifest?.format !== MANIFEST_FORMAT || !Array.isArray(manifest.files)) {
    throw new UserError(`${lake.uri(key)} is not a ${MANIFEST_FORMAT} manifest (format: ${String(manifest?.format)}): restore it, or delete it to rebuild ${prefix} from raw/ on the next run`);
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
