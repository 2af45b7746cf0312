/**
 * The local registry: a directory, one folder per version.
 *
 *   <root>/versions/000007/forest.json        the forest file, byte for byte as registered
 *   <root>/versions/000007/version.json       immutable registration facts (digests, metrics, lineage)
 *   <root>/versions/000007/audit/000001.json  the audit trail, one file per entry, never rewritten
 *   <root>/versions/000007/audit/HEAD.json    {seq, sha256} of the newest entry (the chain's witness)
 *   <root>/.staging/                          registrations being written (never listed)
 *
 * Tamper evidence (model/registry/audit-chain.ts): entry k names the SHA-256 of entry
 * k-1 (entry 1: of version.json) and starts from the status entry k-1 ended in, so
 * altering or deleting an entry, or version.json, breaks the chain; HEAD.json, replaced
 * after every change, names the newest entry, so deleting the last one (say the
 * "Rejected" that withdrew a version) is caught too, and it may lag the trail by one
 * entry at most (a crash between the two writes; the next change repairs it). Every read
 * verifies both, and a version that fails is never served.
 *
 * Without a key this catches edits, not forgery: whoever can write the directory can
 * delete the last entry and rewrite HEAD, or append a well-formed entry. With
 * PRICESENSE_REGISTRY_AUDIT_KEY set (held by the registry's writers and the API), HEAD
 * carries an HMAC-SHA256 of (version, seq, digest) under that key: HEAD then
 * authenticates the whole chain behind it, a HEAD without a valid HMAC is refused, and an
 * entry beyond HEAD is not in effect (the status is the one HEAD names) — a change
 * interrupted between its two writes must be finished by removing that entry.
 *
 * A version written before the chain (entries `{at, by, from, to, note}`, no HEAD.json)
 * is refused until `migrate` adds its genesis entry (audit/<k+1>.json) and HEAD.json.
 * Sealing is once per registry, or it would bless a forgery: <root>/CHAIN.json (created
 * exclusively by the first chain-aware write or migrate, HMAC'd under the audit key)
 * lists the versions that were written before the chain when it was created and says
 * whether their migration is still `migrating` or `complete`. Only a listed version may be
 * sealed, and only while `migrating`; any other version that looks unmigrated had its
 * chained entries replaced by hand, and is reported as tampered, never sealed.
 *
 * Concurrency without locks, using two atomic file-system operations:
 * - A version is built in .staging and published by rename() onto versions/<n>.
 *   rename of a directory onto a non-empty directory fails (ENOTEMPTY/EEXIST), so the
 *   rename both allocates the number and publishes the version: on a clash the
 *   registrant recomputes n and retries. No gaps, no duplicates, and a half-written
 *   version is never visible.
 * - The status is the `to` of the last audit entry (there is no second copy to drift).
 *   A change writes entry k+1 to a temp file and link()s it to audit/<k+1>.json, which
 *   fails with EEXIST if someone else appended first: a compare-and-swap. A change is
 *   conditional on the status it was decided on, so the loser is refused with
 *   ConcurrentChangeError naming what landed first (it is not re-applied on top of it).
 *   HEAD.json follows the link (rename, forward only); a crash between the two leaves
 *   HEAD one entry behind, which reads as valid.
 * Requires a local POSIX file system (hard links, atomic rename), which NFS also gives.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { SETTINGS, configuredSetting } from '../../core/config';
import { UserError } from '../../core/errors';
import {
  assertExpected,
  markerOrFail,
  markerRefusal,
  markerWarning,
  AuditChainError,
  CHAIN_MARKER_LAYOUT,
  ChainWitness,
  type MarkerAttempt,
  ConcurrentChangeError,
  encodeEntry,
  genesisEntry,
  markerForVersion,
  isLegacyEntry,
  migrateCommand,
  parseChainMarker,
  publicEntry,
  tamperedTrail,
  UnmigratedVersionError,
  verifyChain,
  type ChainedEntry,
  type ChainMarker,
  type StoredEntry,
  type VerifiedChain,
} from './audit-chain';
import { readFileAtMost, RefusedReadError } from '../../core/bounded-read';
import {
  actor,
  ArtifactNotReadableError,
  artifactLimit,
  artifactRefused,
  type ArtifactLimitOptions,
  assertTransition,
  assertVersionNumber,
  CorruptVersionError,
  gateOverrideOf,
  InvalidArtifactError,
  MAX_AUDIT_ENTRY_BYTES,
  MAX_RECORD_BYTES,
  MAX_TRAIL_BYTES,
  openArtifact,
  readCandidate,
  sha256Hex,
  trailOverBudget,
  VersionNotFoundError,
  VersionNotReadableError,
  withWarning,
} from './common';
import type { BrokenVersion, Lineage, MigrationReport, ModelStatus, ModelVersion, RegisterOptions, Registry, ServableResolution, StoredArtifact, TransitionOptions, VersionCheck, VersionMigration, VerifyReport } from './types';

const LAYOUT = 'pricesense.registry.local/1';
const VERSION_DIR = /^\d+$/;
const AUDIT_FILE = /^(\d+)\.json$/;
const HEAD_FILE = 'HEAD.json';
const MARKER_FILE = 'CHAIN.json';
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

interface Head {
  readonly seq: number;
  readonly sha256: string;
  /** HMAC-SHA256 of (version, seq, sha256) under PRICESENSE_REGISTRY_AUDIT_KEY, when the registry has one. */
  readonly mac?: string;
}

/** The environment variable holding the audit key (see the file comment). */
export const AUDIT_KEY_ENV = SETTINGS.registryAuditKey.env;

function markerMac(key: string, state: string, legacy: readonly number[]): string {
  return createHmac('sha256', key).update(`${CHAIN_MARKER_LAYOUT}\n${state}\n${legacy.join(',')}`).digest('hex');
}

function headMac(key: string, version: number, seq: number, sha256: string): string {
  return createHmac('sha256', key).update(`pricesense.registry.head/1\n${version}\n${seq}\n${sha256}`).digest('hex');
}

/** A version as read and verified: its record and its audit chain. */
interface VerifiedVersion {
  readonly record: VersionRecord;
  readonly chain: VerifiedChain;
}

/** A version's files as read, not yet verified. */
interface StoredVersion {
  readonly record: VersionRecord;
  readonly recordBytes: Buffer;
  readonly auditDir: string;
  /** Entries written before the chain (no `prev`), the leading ones. */
  readonly legacy: StoredEntry[];
  readonly chained: StoredEntry[];
  readonly head: Head | undefined;
}

const pad = (n: number): string => String(n).padStart(6, '0');

function headBytes(head: Head): string {
  return `${JSON.stringify(head)}\n`;
}

export interface LocalRegistryOptions extends ArtifactLimitOptions {
  /** The audit key; PRICESENSE_REGISTRY_AUDIT_KEY by default. */
  readonly auditKey?: string;
}

export class LocalRegistry implements Registry {
  readonly uri: string;
  private readonly versionsDir: string;
  private readonly stagingDir: string;
  private readonly artifactLimit: { readonly maxBytes: number; readonly name: string };
  private readonly witness = new ChainWitness();
  private readonly auditKey: string | undefined;

  constructor(root: string, options: LocalRegistryOptions = {}) {
    this.auditKey = options.auditKey ?? configuredSetting('registryAuditKey');
    this.artifactLimit = artifactLimit(options);
    this.uri = path.resolve(root);
    this.versionsDir = path.join(this.uri, 'versions');
    this.stagingDir = path.join(this.uri, '.staging');
  }

  async register(forestPath: string, options: RegisterOptions = {}): Promise<ModelVersion> {
    const candidate = await readCandidate(forestPath, options);
    await this.ensureWritable();
    const warning = await this.markerForWrite();
    await this.sweepStaging();
    const staging = await mkdtemp(path.join(this.stagingDir, 'v-'));
    // mkdtemp makes it 0700: as the version's directory that would hide it from every other user (the API's, say).
    await chmod(staging, 0o755);
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
      const recordBytes = `${JSON.stringify(record, null, 2)}\n`;
      await writeDurable(path.join(staging, 'version.json'), recordBytes);
      await mkdir(path.join(staging, 'audit'));
      const first = encodeEntry({
        seq: 1,
        prev: sha256Hex(recordBytes),
        at: candidate.lineage.registeredAt,
        by: candidate.lineage.registeredBy,
        from: null,
        to: 'PendingManualApproval',
        note: candidate.note,
      });
      await writeDurable(path.join(staging, 'audit', `${pad(1)}.json`), first);
      for (;;) {
        const n = (await this.versionNumbers()).reduce((a, b) => Math.max(a, b), 0) + 1;
        // HEAD's HMAC names the version number, which the rename below decides.
        await rm(path.join(staging, 'audit', HEAD_FILE), { force: true });
        await writeDurable(path.join(staging, 'audit', HEAD_FILE), headBytes(this.head(n, 1, sha256Hex(first))));
        try {
          await rename(staging, this.versionDir(n));
          await fsyncDir(this.versionsDir);
          return withWarning(await this.show(n), warning);
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

  approve(version: number, note: string, by?: string, options: TransitionOptions = {}): Promise<ModelVersion> {
    return this.transition(version, 'Approved', note, by, options);
  }

  reject(version: number, note: string, by?: string, options: TransitionOptions = {}): Promise<ModelVersion> {
    return this.transition(version, 'Rejected', note, by, options);
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
    const { record, chain } = await this.readVerified(version);
    const last = chain.entries[chain.entries.length - 1];
    return {
      version,
      status: last.to,
      forestSha256: record.forestSha256,
      artifactSha256: record.artifactSha256,
      formatVersion: record.formatVersion,
      metrics: record.metrics,
      lineage: record.lineage,
      artifactUri: path.join(this.versionDir(version), record.artifact),
      audit: [...chain.legacy, ...chain.entries.map((e) => publicEntry(e))],
    };
  }

  async latestApproved(): Promise<ModelVersion | undefined> {
    return (await this.latestServable()).latest;
  }

  /**
   * The Approved version with the highest number whose audit trail verifies. "Latest"
   * means most recently registered, not most recently approved: rejecting the newest
   * approved version therefore rolls serving back to the previous approved one. A newer
   * version whose trail does not verify is passed over (its status cannot be trusted)
   * and reported.
   */
  async latestServable(): Promise<ServableResolution> {
    const numbers = await this.versionNumbers();
    const broken: BrokenVersion[] = [];
    for (let i = numbers.length - 1; i >= 0; i--) {
      let v: ModelVersion;
      try {
        v = await this.show(numbers[i]);
      } catch (err) {
        // One unreadable version must not freeze polling (and keep a rejected champion serving): pass over it.
        if (!(err instanceof AuditChainError || err instanceof CorruptVersionError)) throw err;
        broken.push({ version: err.version, problem: err.problem });
        continue;
      }
      if (v.status === 'Approved') return { latest: v, broken };
    }
    return { latest: undefined, broken };
  }

  async fetch(version: number): Promise<Buffer> {
    return await openArtifact(await this.fetchArtifact(version));
  }

  async fetchArtifact(version: number): Promise<StoredArtifact> {
    const v = await this.show(version);
    return { bytes: await this.readArtifact(version, v.artifactUri), sha256: v.artifactSha256, source: `version ${version} (${v.artifactUri})` };
  }

  private async readArtifact(version: number, file: string): Promise<Buffer> {
    try {
      return await readFileAtMost(file, this.artifactLimit.maxBytes);
    } catch (err) {
      if (err instanceof RefusedReadError) throw artifactRefused(version, file, err, this.artifactLimit.name);
      // What is there is not a file and stays so until someone replaces it: invalid, not retried on every poll.
      // A permission error is not: it may be fixed without the artifact changing, so it stays a failed read.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') throw new InvalidArtifactError(`version ${version}'s artifact ${versionDefect(err)}. Not a model artifact this service can load: reject the version, or register the model again`);
      if (code === 'EACCES' || code === 'EPERM') throw new ArtifactNotReadableError(`version ${version}'s artifact ${file} cannot be read: permission denied; the registry must be readable by the user this process runs as${uidText()}: fix the owner or mode (retried at the next poll)`);
      throw err;
    }
  }

  async verify(options: { version?: number } = {}): Promise<VerifyReport> {
    const versions: VersionCheck[] = [];
    const numbers = await this.versionNumbers();
    if (options.version !== undefined) {
      assertVersionNumber(options.version);
      if (!numbers.includes(options.version)) await this.show(options.version); // throws VersionNotFoundError, naming what exists
    }
    for (const n of options.version === undefined ? numbers : [options.version]) {
      const problems: string[] = [];
      let status: ModelStatus | undefined;
      try {
        const v = await this.show(n);
        status = v.status;
        const bytes = await this.readArtifact(n, v.artifactUri).catch((err: NodeJS.ErrnoException) => {
          problems.push(err instanceof InvalidArtifactError ? err.message : `artifact ${v.artifactUri} cannot be read (${err.code ?? err.message})`);
          return undefined;
        });
        if (bytes && sha256Hex(bytes) !== v.artifactSha256) problems.push(`artifact ${v.artifactUri} hashes to ${sha256Hex(bytes)}, registered ${v.artifactSha256}`);
      } catch (err) {
        if (err instanceof AuditChainError) problems.push(err.problem);
        else problems.push(err instanceof Error ? err.message : String(err));
      }
      versions.push({ version: n, status, problems, warnings: [] });
    }
    return { registry: this.uri, ok: versions.every((v) => v.problems.length === 0), versions };
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

  /** version.json and the audit chain, verified against each other, HEAD.json and what this process saw before. */
  private async readVerified(version: number): Promise<VerifiedVersion> {
    const stored = await this.readStored(version);
    let chain: VerifiedChain;
    try {
      chain = this.verifyStored(version, stored);
    } catch (err) {
      if (!(err instanceof UnmigratedVersionError)) throw err;
      const marker = await markerForVersion(version, () => this.readMarker());
      if (marker && !(marker.state === 'migrating' && marker.legacy.includes(version))) throw this.tampered(version, marker);
      throw err;
    }
    const { head, auditDir } = stored;
    const resumable = !head && chain.entries.length === 1 && chain.entries[0].genesis !== undefined && (await markerForVersion(version, () => this.readMarker()))?.state === 'migrating';
    checkHead(version, head, chain, auditDir, this.uri, resumable);
    if (this.auditKey !== undefined) {
      checkHeadMac(version, head!, this.auditKey, auditDir);
      // Only what HEAD authenticates is in effect.
      const n = chain.entries.findIndex((e) => e.seq === head!.seq) + 1;
      chain = { entries: chain.entries.slice(0, n), hashes: chain.hashes.slice(0, n), legacy: chain.legacy };
    }
    this.witness.check(version, chain);
    return { record: stored.record, chain };
  }

  /** The chain of a version's files: legacy entries sealed by a genesis entry, or chained from the registration record. */
  private verifyStored(version: number, stored: StoredVersion): VerifiedChain {
    try {
      return verifyChain(version, stored.chained, sha256Hex(stored.recordBytes), { firstIsRegistration: true, continuous: true, legacy: stored.legacy, legacyNumbered: true, registry: this.uri });
    } catch (err) {
      // A trail that was sealed once and has lost its chain since is tampering, not an old registry.
      if (err instanceof UnmigratedVersionError && stored.head) {
        throw new AuditChainError(version, `${path.join(stored.auditDir, HEAD_FILE)} names entry ${stored.head.seq}, but the trail holds only entries without a hash link (as written before the chain, or hand-made): its chained entries were deleted or replaced`);
      }
      throw err;
    }
  }

  private async readStored(version: number): Promise<StoredVersion> {
    const dir = this.versionDir(version);
    let recordBytes: Buffer;
    try {
      recordBytes = await readFileAtMost(path.join(dir, 'version.json'), MAX_RECORD_BYTES);
    } catch (err) {
      const defect = versionDefect(err);
      if (defect !== undefined) throw new CorruptVersionError(version, defect);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw notPermitted(err, version);
      // A numbered directory without its record (made by hand, or a copy cut short) is that version's defect, not a missing version.
      if ((await stat(dir).catch(() => undefined))?.isDirectory()) throw new CorruptVersionError(version, `${path.join(dir, 'version.json')} is missing`);
      const known = await this.versionNumbers();
      const range = known.length ? `it has versions ${known[0]}..${known[known.length - 1]}` : 'it has no versions yet';
      throw new VersionNotFoundError(version, `version ${version} not found in registry ${this.uri} (${range})`);
    }
    const record = parseRecord(version, recordBytes.toString('utf8'), path.join(dir, 'version.json'));
    const auditDir = path.join(dir, 'audit');
    const stored: StoredEntry[] = [];
    const names = await readdir(auditDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      if (err.code === 'ENOTDIR') throw new AuditChainError(version, `${auditDir} is a file, not the directory of audit entries`);
      throw trailReadError(err, version);
    });
    const entries = names.filter((name) => AUDIT_FILE.test(name));
    const tooMany = trailOverBudget(auditDir, entries.map(() => 0));
    if (tooMany !== undefined) throw new AuditChainError(version, tooMany);
    // Read one at a time against the trail's byte budget: what a poll holds of a trail is bounded whatever its files say.
    let trailBytes = 0;
    for (const name of entries) {
      const file = path.join(auditDir, name);
      const bytes = await readAuditFile(version, file);
      trailBytes += bytes.length;
      if (trailBytes > MAX_TRAIL_BYTES) {
        throw new AuditChainError(version, `${auditDir} holds more than ${MAX_TRAIL_BYTES.toLocaleString('en-US')} bytes of audit entries (MAX_TRAIL_BYTES); the rest was not read`);
      }
      stored.push({ seq: Number(AUDIT_FILE.exec(name)![1]), bytes, where: `audit entry ${file}` });
    }
    if (stored.length === 0) throw new AuditChainError(version, `${auditDir} holds no audit entries (the registration entry is missing)`);
    stored.sort((a, b) => a.seq - b.seq);
    const firstChained = stored.findIndex((e) => !isLegacyEntry(e.bytes));
    const split = firstChained < 0 ? stored.length : firstChained;
    return { record, recordBytes, auditDir, legacy: stored.slice(0, split), chained: stored.slice(split), head: await readHead(auditDir).catch((err: unknown) => {
        throw trailReadError(err, version);
      }),
    };
  }

  /**
   * Seals each version's trail written before the chain with a genesis entry (see
   * audit-chain.ts): entry k+1 after legacy entries 1..k, linked to the digests of the
   * registration record and of those k entries, created with the same exclusive link()
   * as a status change (so a concurrent migration, or an older pricesense still
   * changing the version, makes this one re-read instead of overwrite), then HEAD.json.
   * Nothing existing is rewritten. A crash between the two leaves a version whose genesis
   * has no HEAD: not served, and finished by re-running this while CHAIN.json still says
   * `migrating` (it turns `complete` only after a run in which no version failed).
   */
  async migrate(options: { by?: string; acceptUnchained?: readonly number[] } = {}): Promise<MigrationReport> {
    const by = actor(options.by);
    await this.ensureWritable();
    const marker = await this.ensureMarker(options.acceptUnchained);
    const versions: VersionMigration[] = [];
    for (const n of await this.versionNumbers()) versions.push(await this.migrateVersion(n, by, marker));
    const ok = versions.every((v) => v.result !== 'failed');
    // Sealing closes for good once every listed version is sealed; a version that failed keeps it open until it is fixed.
    if (ok && marker.state === 'migrating') await this.writeMarker('complete', marker.legacy);
    return { registry: this.uri, ok, versions };
  }

  private async migrateVersion(version: number, by: string, marker: ChainMarker): Promise<VersionMigration> {
    const sealable = marker.state === 'migrating' && marker.legacy.includes(version);
    for (;;) {
      try {
        const stored = await this.readStored(version);
        const { legacy, chained, head, auditDir } = stored;
        if (legacy.length > 0 && chained.length === 0 && !head) {
          if (!sealable) throw this.tampered(version, marker);
          const last = this.verifyLegacyOnly(version, stored);
          const genesis = encodeEntry(genesisEntry(legacy.length + 1, sha256Hex(stored.recordBytes), legacy, last, by));
          if (!(await createExclusive(auditDir, `${pad(legacy.length + 1)}.json`, genesis))) continue; // someone appended first: re-read
          await advanceHead(auditDir, this.head(version, legacy.length + 1, sha256Hex(genesis)));
          return { version, result: 'sealed', legacyEntries: legacy.length };
        }
        const chain = this.verifyStored(version, stored);
        const genesis = chain.entries[0].genesis;
        if (!head && genesis && chain.entries.length === 1 && sealable) {
          // Interrupted between the genesis entry and HEAD: finish it.
          await advanceHead(auditDir, this.head(version, chain.entries[0].seq, chain.hashes[0]));
          return { version, result: 'resumed', legacyEntries: genesis.legacyEntries };
        }
        await this.readVerified(version);
        return { version, result: 'chained', ...(genesis ? { legacyEntries: genesis.legacyEntries } : {}) };
      } catch (err) {
        if (!(err instanceof AuditChainError || err instanceof CorruptVersionError)) throw err;
        return { version, result: 'failed', problem: err.problem };
      }
    }
  }

  /** Legacy entries only (what migrate seals): verified as pricesense kept them; their last status. */
  private verifyLegacyOnly(version: number, stored: StoredVersion): ModelStatus {
    try {
      verifyChain(version, [], sha256Hex(stored.recordBytes), { firstIsRegistration: true, continuous: true, legacy: stored.legacy, legacyNumbered: true, registry: this.uri });
    } catch (err) {
      if (!(err instanceof UnmigratedVersionError)) throw err;
    }
    return JSON.parse(stored.legacy[stored.legacy.length - 1].bytes.toString('utf8')).to as ModelStatus;
  }

  /** A version that looks written before the chain in a registry whose marker says it cannot be: its chained entries were replaced by hand. */
  private tampered(version: number, marker: ChainMarker): AuditChainError {
    const where = path.join(this.uri, MARKER_FILE);
    return tamperedTrail(version, {
      looks: 'its audit trail holds only entries without a hash link, and HEAD.json is gone',
      listed: marker.legacy.includes(version),
      marker: where,
      sealingClosedBy: where,
      trail: path.join(this.versionDir(version), 'audit'),
    });
  }

  /** The registry's chain marker; undefined if none. With the audit key, a marker that does not verify is refused. */
  private async readMarker(): Promise<ChainMarker | undefined> {
    const file = path.join(this.uri, MARKER_FILE);
    let text: string;
    try {
      text = (await readFileAtMost(file, MAX_RECORD_BYTES)).toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const m = parseChainMarker(text, file);
    if (this.auditKey !== undefined) {
      const expected = Buffer.from(markerMac(this.auditKey, m.state, m.legacy), 'hex');
      const got = Buffer.from(typeof m.mac === 'string' ? m.mac : '', 'hex');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        throw new UserError(`${file}'s HMAC does not verify under ${AUDIT_KEY_ENV} (rewritten by hand, or the key differs from the writers'): the registry's chain marker cannot be trusted; restore it from a backup`, 'integrity');
      }
    }
    return m;
  }

  /**
   * The marker, created if the registry has none: listing the versions written before the
   * chain (legacy entries only, no HEAD) as of now. Refuses to list any when a version
   * already has chained entries (from its registration, or after a genesis entry): the
   * registry was chain-aware, so its marker was deleted and what looks unmigrated now was
   * rewritten.
   */
  private async ensureMarker(acceptUnchained: readonly number[] = []): Promise<ChainMarker> {
    return markerOrFail(await this.makeMarker(acceptUnchained));
  }

  /** Before a change or registration: a warning instead of a refusal (the write goes ahead; see markerPendingWarning). */
  private async markerForWrite(): Promise<string | undefined> {
    return markerWarning(await this.makeMarker([]));
  }

  private async makeMarker(acceptUnchained: readonly number[]): Promise<MarkerAttempt<ChainMarker>> {
    for (;;) {
      const existing = await this.readMarker();
      if (existing) return existing;
      const legacy: number[] = [];
      let chainAware = false;
      for (const n of await this.versionNumbers()) {
        const s = await this.readStored(n).catch(() => undefined);
        if (!s) continue;
        if (s.legacy.length > 0 && s.chained.length === 0 && !s.head) legacy.push(n);
        else if (s.chained.length > 0) chainAware = true;
      }
      // Also what a registry looks like that was upgraded to the first chain-aware pricesense (which
      // wrote no marker) and kept its older versions: only a person who checked those trails
      // against a backup can tell that from a deleted marker, so sealing them needs their word.
      const refusal = markerRefusal({ registry: this.uri, marker: path.join(this.uri, MARKER_FILE), legacy, chainAware, acceptUnchained, trails: 'audit folders' });
      if (refusal !== undefined) return { refusal };
      if (await this.createMarker(legacy.length > 0 ? 'migrating' : 'complete', legacy)) return (await this.readMarker())!;
    }
  }

  private markerBytes(state: ChainMarker['state'], legacy: readonly number[]): string {
    const m: ChainMarker = { layout: CHAIN_MARKER_LAYOUT, state, legacy, ...(this.auditKey === undefined ? {} : { mac: markerMac(this.auditKey, state, legacy) }) };
    return `${JSON.stringify(m)}\n`;
  }

  /** Creates the marker unless it exists (false): the same exclusive link() as an audit entry. */
  private createMarker(state: ChainMarker['state'], legacy: readonly number[]): Promise<boolean> {
    return createExclusive(this.uri, MARKER_FILE, this.markerBytes(state, legacy));
  }

  private writeMarker(state: ChainMarker['state'], legacy: readonly number[]): Promise<void> {
    return replaceDurable(this.uri, MARKER_FILE, this.markerBytes(state, legacy));
  }

  private head(version: number, seq: number, sha256: string): Head {
    return this.auditKey === undefined ? { seq, sha256 } : { seq, sha256, mac: headMac(this.auditKey, version, seq, sha256) };
  }

  /**
   * Decided on the chain as read (and on `options.expected`, the status the caller saw);
   * lands only if no other change took the next entry first, so the condition holds at
   * the moment of the write.
   */
  private async transition(version: number, to: ModelStatus, note: string, by: string | undefined, options: TransitionOptions): Promise<ModelVersion> {
    assertVersionNumber(version);
    const who = actor(by);
    const { record, chain } = await this.readVerified(version);
    const last = chain.entries[chain.entries.length - 1];
    assertExpected(version, last.to, options, last);
    assertTransition(version, last.to, to);
    const override = gateOverrideOf(version, to, record.metrics, options);
    const warning = await this.markerForWrite();
    const seq = last.seq + 1;
    const auditDir = path.join(this.versionDir(version), 'audit');
    if (this.auditKey !== undefined && (await readdir(auditDir)).includes(`${pad(seq)}.json`)) {
      throw new AuditChainError(version, `${path.join(auditDir, `${pad(seq)}.json`)} is not named by HEAD.json (a change interrupted between its two writes, or a hand-made entry): it is not in effect; remove it to change this version`);
    }
    // HEAD lags at most one entry: bring it up to date before adding the next.
    await advanceHead(auditDir, this.head(version, last.seq, chain.hashes[chain.hashes.length - 1]));
    const bytes = encodeEntry({ seq, prev: chain.hashes[chain.hashes.length - 1], at: new Date().toISOString(), by: who, from: last.to, to, note: note.trim(), override });
    if (!(await createExclusive(auditDir, `${pad(seq)}.json`, bytes))) {
      // Another change landed first; this one was decided on a status that no longer holds.
      throw new ConcurrentChangeError(version, last.to, await readEntryQuietly(path.join(auditDir, `${pad(seq)}.json`)));
    }
    await advanceHead(auditDir, this.head(version, seq, sha256Hex(bytes)));
    return withWarning(await this.show(version), warning);
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

/** An audit entry's bytes; one over MAX_AUDIT_ENTRY_BYTES is the version's broken trail, not a reason to hold it. */
async function readAuditFile(version: number, file: string): Promise<Buffer> {
  try {
    return await readFileAtMost(file, MAX_AUDIT_ENTRY_BYTES);
  } catch (err) {
    throw trailReadError(err, version);
  }
}

/** A failed read of a version's audit trail, as that version's broken trail when it is the version's defect (see versionDefect). */
function trailReadError(err: unknown, version: number): unknown {
  const defect = versionDefect(err);
  return defect === undefined ? notPermitted(err, version) : new AuditChainError(version, defect);
}

/**
 * What went wrong reading inside one version's directory, when it is that version's defect
 * (an object planted or damaged there: not a file, a link loop) rather than
 * an unreachable registry or a transient failure (EMFILE, EIO, ENOMEM, …), which fail the
 * read as a whole so that a poll keeps what it serves, or no permission (notPermitted).
 * Undefined for those, and for ENOENT, which each caller handles.
 */
function versionDefect(err: unknown): string | undefined {
  if (err instanceof RefusedReadError) return err.message;
  const e = err as NodeJS.ErrnoException;
  const why = e.code === undefined ? undefined : DEFECT_CODES[e.code];
  return why === undefined ? undefined : `${e.path ?? 'a file in it'} cannot be read: ${why}`;
}

const DEFECT_CODES: Record<string, string> = {
  ENOTDIR: 'a part of the path is a file where a directory belongs',
  EISDIR: 'it is a directory, not a file',
  ELOOP: 'a loop of symbolic links',
  ENXIO: 'a socket or device, not a file',
};

/**
 * A read inside a version that failed for want of permission: a reason of this process (a
 * changed mode, another uid), not of the version. The poll passes over the version (a
 * VersionNotReadableError) and a reader that serves it keeps it; in words. Other errors as
 * they are.
 */
export function notPermitted(err: unknown, version: number): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e.code !== 'EACCES' && e.code !== 'EPERM') return err;
  return new VersionNotReadableError(version, `${e.path ?? 'a registry file'} cannot be read: permission denied; the registry must be readable by the user this process runs as${uidText()}: fix the owner or mode`);
}

function uidText(): string {
  return typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '';
}

async function readHead(auditDir: string): Promise<Head | undefined> {
  let text: string;
  try {
    text = (await readFileAtMost(path.join(auditDir, HEAD_FILE), MAX_RECORD_BYTES)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const h = JSON.parse(text) as Partial<Head>;
    if (Number.isSafeInteger(h.seq) && typeof h.sha256 === 'string' && (h.mac === undefined || typeof h.mac === 'string')) return h as Head;
  } catch {
    // reported below as malformed
  }
  return { seq: NaN, sha256: '' };
}

/** HEAD names the newest entry: it may lag the chain by one (a crash after the link), never more, never lead it or disagree with it. */
function checkHead(version: number, head: Head | undefined, chain: VerifiedChain, auditDir: string, registry: string, resumable: boolean): void {
  const where = path.join(auditDir, HEAD_FILE);
  const first = chain.entries[0].seq;
  if (!head) {
    if (resumable) {
      throw new AuditChainError(version, `${where} is missing after the genesis entry: the migration that sealed this trail was interrupted; re-run \`${migrateCommand(registry)}\` to finish it`);
    }
    if (chain.entries.length === 1 && chain.entries[0].genesis) {
      // The migration finished (it writes HEAD before closing): the entries after the genesis, and HEAD, were deleted.
      throw new AuditChainError(version, `${where} is missing after the genesis entry although this registry's migration is complete: the entries after it and HEAD.json were deleted (tampering); \`registry migrate\` will not restore it — restore the audit folder from a backup`);
    }
    throw new AuditChainError(version, `${where} is missing: the newest audit entry cannot be confirmed`);
  }
  if (!(head.seq >= first)) throw new AuditChainError(version, `${where} is malformed`);
  const n = chain.entries[chain.entries.length - 1].seq;
  if (head.seq > n) throw new AuditChainError(version, `${where} names entry ${head.seq} but the trail ends at entry ${n}: ${head.seq - n === 1 ? 'the last entry was' : `the last ${head.seq - n} entries were`} deleted`);
  if (chain.hashes[head.seq - first] !== head.sha256) throw new AuditChainError(version, `entry ${head.seq} does not match the digest ${where} recorded for it: it was altered`);
  if (n - head.seq > 1) throw new AuditChainError(version, `${where} names entry ${head.seq} but the trail has ${n} entries: entries ${head.seq + 1}..${n} were added without pricesense (a change moves HEAD right after its entry)`);
}

/**
 * Creates <dir>/<name> with `bytes` unless it exists: written to a temp file, then
 * link()ed, which fails with EEXIST if another writer created it first (false).
 */
async function createExclusive(dir: string, name: string, bytes: Buffer | string): Promise<boolean> {
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeDurable(tmp, bytes);
  try {
    await link(tmp, path.join(dir, name));
    await fsyncDir(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

function checkHeadMac(version: number, head: Head, key: string, auditDir: string): void {
  const where = path.join(auditDir, HEAD_FILE);
  if (head.mac === undefined) throw new AuditChainError(version, `${where} carries no HMAC although ${AUDIT_KEY_ENV} is set (written without the key, or by hand)`);
  const expected = Buffer.from(headMac(key, version, head.seq, head.sha256), 'hex');
  const got = Buffer.from(head.mac, 'hex');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new AuditChainError(version, `${where}'s HMAC does not verify under ${AUDIT_KEY_ENV}: HEAD was rewritten, or the key differs from the writers'`);
}

/** Moves HEAD to `head` unless it is already there or beyond (a later change may have moved it first). */
async function advanceHead(auditDir: string, head: Head): Promise<void> {
  const current = await readHead(auditDir);
  if (current && current.seq >= head.seq) return;
  await replaceDurable(auditDir, HEAD_FILE, headBytes(head));
}

/** Replaces <dir>/<name> atomically (temp file, rename): readers see the old bytes or the new, never a part. */
async function replaceDurable(dir: string, name: string, bytes: Buffer | string): Promise<void> {
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeDurable(tmp, bytes);
  await rename(tmp, path.join(dir, name));
  await fsyncDir(dir);
}

async function readEntryQuietly(file: string): Promise<ChainedEntry | undefined> {
  try {
    return JSON.parse((await readFileAtMost(file, MAX_AUDIT_ENTRY_BYTES)).toString('utf8')) as ChainedEntry;
  } catch {
    return undefined;
  }
}

function parseRecord(version: number, text: string, file: string): VersionRecord {
  let record: VersionRecord;
  try {
    record = JSON.parse(text) as VersionRecord;
  } catch (err) {
    throw new CorruptVersionError(version, `${file} is not valid JSON: ${(err as Error).message}`);
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
