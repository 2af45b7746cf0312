/**
 * The local registry: a directory, one folder per version.
 *
 *   <root>/versions/000007/forest.json      the forest file, byte for byte as registered
 *   <root>/versions/000007/version.json     immutable registration facts (digests, metrics, lineage)
 *   <root>/versions/000007/audit/000001.json  the audit trail, one file per entry, never rewritten
 *   <root>/.staging/                        registrations being written (never listed)
 *
 * Concurrency without locks, using two atomic file-system operations:
 * - A version is built in .staging and published by rename() onto versions/<n>.
 *   rename of a directory onto a non-empty directory fails (ENOTEMPTY/EEXIST), so the
 *   rename both allocates the number and publishes the version: on a clash the
 *   registrant recomputes n and retries. No gaps, no duplicates, and a half-written
 *   version is never visible.
 * - The status is the `to` of the last audit entry (there is no second copy to drift).
 *   A change writes entry k+1 to a temp file and link()s it to audit/<k+1>.json, which
 *   fails with EEXIST if someone else appended first: a compare-and-swap. The loser
 *   re-reads the new status and re-validates the transition, so concurrent changes
 *   on one version are serialised and none is lost. No lock file, so nothing to go
 *   stale when a process dies.
 * Requires a local POSIX file system (hard links, atomic rename), which NFS also gives.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../etl/errors';
import { actor, assertTransition, assertVersionNumber, readCandidate, verifyDigest } from './common';
import type { AuditEntry, Lineage, ModelStatus, ModelVersion, RegisterOptions, Registry } from './types';

const LAYOUT = 'pricesense.registry.local/1';
const VERSION_DIR = /^\d+$/;
const AUDIT_FILE = /^(\d+)\.json$/;
/** Staging folders older than this are leftovers of crashed registrations. */
const STALE_STAGING_MS = 24 * 3600 * 1000;

interface VersionRecord {
  readonly layout: typeof LAYOUT;
  readonly forestSha256: string;
  readonly artifactSha256: string;
  readonly formatVersion: number;
  readonly metrics: Record<string, unknown>;
  readonly lineage: Lineage;
  readonly artifact: string;
}

const pad = (n: number): string => String(n).padStart(6, '0');

export class LocalRegistry implements Registry {
  readonly uri: string;
  private readonly versionsDir: string;
  private readonly stagingDir: string;

  constructor(root: string) {
    this.uri = path.resolve(root);
    this.versionsDir = path.join(this.uri, 'versions');
    this.stagingDir = path.join(this.uri, '.staging');
  }

  async register(forestPath: string, options: RegisterOptions = {}): Promise<ModelVersion> {
    const candidate = await readCandidate(forestPath, options);
    await this.ensureWritable();
    await this.sweepStaging();
    const staging = await mkdtemp(path.join(this.stagingDir, 'v-'));
    try {
      await writeDurable(path.join(staging, 'forest.json'), candidate.bytes);
      const record: VersionRecord = {
        layout: LAYOUT,
        forestSha256: candidate.forest.sha256,
        artifactSha256: candidate.artifactSha256,
        formatVersion: candidate.forest.formatVersion,
        metrics: candidate.forest.metrics,
        lineage: candidate.lineage,
        artifact: 'forest.json',
      };
      await writeDurable(path.join(staging, 'version.json'), `${JSON.stringify(record, null, 2)}\n`);
      await mkdir(path.join(staging, 'audit'));
      const first: AuditEntry = {
        at: candidate.lineage.registeredAt,
        by: candidate.lineage.registeredBy,
        from: null,
        to: 'PendingManualApproval',
        note: candidate.note,
      };
      await writeDurable(path.join(staging, 'audit', `${pad(1)}.json`), `${JSON.stringify(first)}\n`);
      for (;;) {
        const n = (await this.versionNumbers()).reduce((a, b) => Math.max(a, b), 0) + 1;
        try {
          await rename(staging, this.versionDir(n));
          await fsyncDir(this.versionsDir);
          return await this.show(n);
        } catch (err) {
          // Someone published n first: take the next number.
          if (!isCollision(err)) throw err;
        }
      }
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
  }

  approve(version: number, note: string, by?: string): Promise<ModelVersion> {
    return this.transition(version, 'Approved', note, by);
  }

  reject(version: number, note: string, by?: string): Promise<ModelVersion> {
    return this.transition(version, 'Rejected', note, by);
  }

  async list(filter: { status?: ModelStatus } = {}): Promise<ModelVersion[]> {
    const out: ModelVersion[] = [];
    for (const n of await this.versionNumbers()) {
      const v = await this.show(n);
      if (!filter.status || v.status === filter.status) out.push(v);
    }
    return out;
  }

  async show(version: number): Promise<ModelVersion> {
    assertVersionNumber(version);
    const dir = this.versionDir(version);
    let text: string;
    try {
      text = await readFile(path.join(dir, 'version.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const known = await this.versionNumbers();
      const range = known.length ? `it has versions ${known[0]}..${known[known.length - 1]}` : 'it has no versions yet';
      throw new UserError(`version ${version} not found in registry ${this.uri} (${range})`);
    }
    const record = parseRecord(text, path.join(dir, 'version.json'));
    const audit = (await this.readAudit(version)).map((e) => e.entry);
    if (audit.length === 0) throw new Error(`registry corrupt: ${dir} has no audit entries (the registration entry is missing)`);
    return {
      version,
      status: audit[audit.length - 1].to,
      forestSha256: record.forestSha256,
      artifactSha256: record.artifactSha256,
      formatVersion: record.formatVersion,
      metrics: record.metrics,
      lineage: record.lineage,
      artifactUri: path.join(dir, record.artifact),
      audit,
    };
  }

  /**
   * The Approved version with the highest number. "Latest" means most recently
   * registered, not most recently approved: rejecting the newest approved version
   * therefore rolls serving back to the previous approved one.
   */
  async latestApproved(): Promise<ModelVersion | undefined> {
    const numbers = await this.versionNumbers();
    for (let i = numbers.length - 1; i >= 0; i--) {
      const v = await this.show(numbers[i]);
      if (v.status === 'Approved') return v;
    }
    return undefined;
  }

  async fetch(version: number): Promise<Buffer> {
    const v = await this.show(version);
    const bytes = await readFile(v.artifactUri);
    return verifyDigest(`version ${version} (${v.artifactUri})`, bytes, v.artifactSha256);
  }

  private versionDir(n: number): string {
    return path.join(this.versionsDir, pad(n));
  }

  private async versionNumbers(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.versionsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((n) => VERSION_DIR.test(n))
      .map(Number)
      .filter((n) => n > 0)
      .sort((a, b) => a - b);
  }

  private async readAudit(version: number): Promise<{ seq: number; entry: AuditEntry }[]> {
    const dir = path.join(this.versionDir(version), 'audit');
    const files = (await readdir(dir))
      .map((f) => AUDIT_FILE.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ name: m[0], seq: Number(m[1]) }))
      .sort((a, b) => a.seq - b.seq);
    const out: { seq: number; entry: AuditEntry }[] = [];
    for (const f of files) {
      const file = path.join(dir, f.name);
      try {
        out.push({ seq: f.seq, entry: JSON.parse(await readFile(file, 'utf8')) as AuditEntry });
      } catch (err) {
        throw new Error(`registry corrupt: cannot read audit entry ${file}: ${(err as Error).message}`, { cause: err });
      }
    }
    return out;
  }

  private async transition(version: number, to: ModelStatus, note: string, by?: string): Promise<ModelVersion> {
    assertVersionNumber(version);
    await this.show(version); // a clear "not found" before anything else
    const who = actor(by);
    const auditDir = path.join(this.versionDir(version), 'audit');
    for (;;) {
      const entries = await this.readAudit(version);
      const last = entries[entries.length - 1];
      assertTransition(version, last.entry.to, to);
      const entry: AuditEntry = { at: new Date().toISOString(), by: who, from: last.entry.to, to, note: note.trim() };
      const tmp = path.join(auditDir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
      await writeDurable(tmp, `${JSON.stringify(entry)}\n`);
      try {
        await link(tmp, path.join(auditDir, `${pad(last.seq + 1)}.json`));
        await fsyncDir(auditDir);
        return await this.show(version);
      } catch (err) {
        // Another change landed first: re-read its result and re-check the transition.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        await unlink(tmp).catch(() => undefined);
      }
    }
  }

  private async ensureWritable(): Promise<void> {
    try {
      await mkdir(this.versionsDir, { recursive: true });
      await mkdir(this.stagingDir, { recursive: true });
    } catch (err) {
      throw new UserError(`cannot create registry at ${this.uri}: ${(err as Error).message}`);
    }
  }

  private async sweepStaging(): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(this.stagingDir).catch(() => [] as string[])) {
      const p = path.join(this.stagingDir, name);
      const s = await stat(p).catch(() => undefined);
      if (s && now - s.mtimeMs > STALE_STAGING_MS) await rm(p, { recursive: true, force: true });
    }
  }
}

function parseRecord(text: string, file: string): VersionRecord {
  let record: VersionRecord;
  try {
    record = JSON.parse(text) as VersionRecord;
  } catch (err) {
    throw new Error(`registry corrupt: ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (record.layout !== LAYOUT) {
    throw new UserError(`${file}: unknown registry layout '${String(record.layout)}' (this pricesense reads ${LAYOUT})`);
  }
  return record;
}

function isCollision(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOTEMPTY' || code === 'EEXIST' || (process.platform === 'win32' && code === 'EPERM');
}

/** Write and fsync, so a published version or audit entry survives a power cut. */
async function writeDurable(file: string, data: Buffer | string): Promise<void> {
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
