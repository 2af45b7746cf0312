import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../../core/errors';
import { assertLakeKey } from './keys';
import { readFileAtMost, type ReadOptions } from '../../core/bounded-read';
import type { Lake, LakeObject } from './types';

/**
 * Lake on a local directory. Every write lands in a hidden temp file in the target's own
 * directory (same filesystem, so rename is atomic), is fsynced, then renamed over the
 * target; the directory is fsynced so the rename itself survives a power cut.
 */
export class LocalLake implements Lake {
  readonly root: string;
  readonly kind = 'local' as const;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Accepts a prefix too ('raw/'), for messages that name a zone. */
  uri(key: string): string {
    assertLakeKey(key, true);
    return path.join(this.root, ...key.split('/').filter(Boolean));
  }

  async list(prefix: string, options: { versions?: boolean } = {}): Promise<LakeObject[]> {
    if (prefix !== '') assertLakeKey(prefix, true);
    // Walk only the deepest directory the prefix names; filter the rest by string prefix (S3 semantics).
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: LakeObject[] = [];
    await this.walk(baseKey, prefix, out, options.versions === true);
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out;
  }

  private async walk(dirKey: string, prefix: string, out: LakeObject[], versions: boolean): Promise<void> {
    const dir = dirKey === '' ? this.root : path.join(this.root, ...dirKey.split('/'));
    let entries;
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return;
      throw err;
    }
    for (const entry of entries) {
      if (isTempName(entry.name)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend only where keys below could still match the prefix.
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.walk(key, prefix, out, versions);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        try {
          if (versions) {
            // Every write is a rename of a new file, so size + mtime (ns) + inode changes with the bytes.
            const st = await fsp.stat(path.join(dir, entry.name), { bigint: true });
            out.push({ key, size: Number(st.size), version: versionOf(st) });
          } else {
            const st = await fsp.stat(path.join(dir, entry.name));
            out.push({ key, size: st.size });
          }
        } catch (err) {
          // Deleted between readdir and stat (another run released its lease, a clean-up): not listed, as on S3.
          if (!isCode(err, 'ENOENT')) throw err;
        }
      }
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await fsp.stat(this.uri(key))).isFile();
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

  async read(key: string, options: ReadOptions = {}): Promise<Buffer> {
    assertLakeKey(key);
    try {
      return options.maxBytes === undefined ? await fsp.readFile(this.uri(key)) : await readFileAtMost(this.uri(key), options.maxBytes);
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'EISDIR')) throw notFound(this, key);
      throw err;
    }
  }

  async write(key: string, body: Buffer | string): Promise<void> {
    assertLakeKey(key);
    const target = this.uri(key);
    await this.atomically(target, (tmp) => writeSynced(tmp, body));
  }

  async writeIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    assertLakeKey(key);
    const target = this.uri(key);
    const dir = path.dirname(target);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = tempNameFor(target);
    try {
      await writeSynced(tmp, body);
      // link(2) fails with EEXIST if the target exists: create-if-absent with complete content.
      await fsp.link(tmp, target);
    } catch (err) {
      if (isCode(err, 'EEXIST')) return false;
      if (isCode(err, 'EPERM') || isCode(err, 'ENOTSUP') || isCode(err, 'EOPNOTSUPP') || isCode(err, 'ENOSYS')) {
        throw new UserError(
          `cannot create ${target}: the file system under ${this.root} does not support hard links (${(err as NodeJS.ErrnoException).code}), ` +
            'which the lake lease needs to create an object only if absent. Put the lake on a local POSIX file system (ext4, xfs, APFS, NFSv4) or use an s3:// lake',
        );
      }
      throw err;
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    await fsyncDir(dir);
    return true;
  }

  async version(key: string): Promise<string | null> {
    assertLakeKey(key);
    try {
      return versionOf(await fsp.stat(this.uri(key), { bigint: true }));
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return null;
      throw err;
    }
  }

  async writeIfVersion(key: string, body: Buffer | string, expected: string | null): Promise<boolean> {
    if (expected === null) return this.writeIfAbsent(key, body);
    let written = false;
    await this.atomically(this.uri(key), async (tmp) => {
      await writeSynced(tmp, body);
      if ((await this.version(key)) !== expected) throw new VersionMismatch();
      written = true;
    }).catch((err: unknown) => {
      if (!(err instanceof VersionMismatch)) throw err;
    });
    return written;
  }

  async download(key: string, localPath: string): Promise<void> {
    const source = this.uri(key);
    if (!(await this.exists(key))) throw notFound(this, key);
    const target = path.resolve(localPath);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const tmp = tempNameFor(target);
    try {
      await fsp.copyFile(source, tmp);
      await fsp.rename(tmp, target);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async upload(localPath: string, key: string): Promise<void> {
    assertLakeKey(key);
    const target = this.uri(key);
    await this.atomically(target, async (tmp) => {
      await pipeline(createReadStream(localPath), createWriteStream(tmp, { flags: 'wx' }));
      const fh = await fsp.open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  async delete(key: string): Promise<void> {
    assertLakeKey(key);
    const target = this.uri(key);
    try {
      await fsp.unlink(target);
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return;
      throw err;
    }
    // Keep the tree tidy: drop directories the delete left empty, but never the root itself.
    let dir = path.dirname(target);
    while (dir.startsWith(this.root + path.sep)) {
      try {
        await fsp.rmdir(dir);
      } catch {
        break; // not empty (or already gone): stop climbing
      }
      dir = path.dirname(dir);
    }
  }

  private async atomically(target: string, fill: (tmp: string) => Promise<void>): Promise<void> {
    const dir = path.dirname(target);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = tempNameFor(target);
    try {
      await fill(tmp);
      await fsp.rename(tmp, target);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    await fsyncDir(dir);
  }
}

class VersionMismatch extends Error {}

/**
 * Every write is a rename of a new file, so the inode changes with the bytes; size, mtime
 * and ctime also catch an in-place rewrite (`cp -p` over a file of the same size keeps
 * its mtime but not its ctime).
 */
function versionOf(st: { size: bigint; mtimeNs: bigint; ctimeNs: bigint; ino: bigint }): string {
  return `${st.size}-${st.mtimeNs}-${st.ctimeNs}-${st.ino}`;
}

/** A new file with body, flushed to disk. */
async function writeSynced(file: string, body: Buffer | string): Promise<void> {
  const fh = await fsp.open(file, 'wx');
  try {
    await fh.writeFile(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const TEMP_MARK = '.tmp-';

/** Hidden temp file beside the target: `.name.tmp-<pid>-<random>`; list() never shows these. */
function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARK}${process.pid}-${randomBytes(6).toString('hex')}`);
}

function isTempName(name: string): boolean {
  return name.startsWith('.') && name.includes(TEMP_MARK);
}

async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await fh?.close();
  }
}

function notFound(lake: Lake, key: string): Error {
  const err = new Error(`lake object not found: ${key} (in ${lake.root})`);
  (err as NodeJS.ErrnoException).code = 'ENOENT';
  return err;
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
