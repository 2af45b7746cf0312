/**
 * The tamper-evident audit trail both registry backends keep: a hash chain per
 * version. Entry k (k = 1, 2, ...) names in `prev` the SHA-256 of entry k-1's stored
 * bytes; entry 1 names the version's anchor — the digest of its immutable registration
 * facts (local: version.json; SageMaker: the package's ARN, artifact digest and
 * creation time). Editing or deleting any entry but the last breaks the next entry's
 * link; the backends add a witness for the last one (local: the HEAD file; SageMaker:
 * SageMaker's own status). Every read verifies the chain and a version whose chain does
 * not verify is never served.
 *
 * A chain only proves what was written through pricesense: someone who can rewrite
 * every file can forge a consistent one. ChainWitness closes part of that gap inside
 * a long-lived process (the API): it remembers the longest chain it verified per
 * version, so a trail rolled back while it runs is caught too.
 */
import { UserError } from '../../etl/errors';
import { sha256Hex } from './common';
import { MODEL_STATUSES, type AuditEntry, type GateOverride, type ModelStatus, type TransitionOptions } from './types';

/** An audit entry as stored: its place in the chain and its link to the previous entry. */
export interface ChainedEntry extends AuditEntry {
  readonly seq: number;
  readonly prev: string;
}

/** One stored entry, as read: its position, its bytes and where it was read from (for messages). */
export interface StoredEntry {
  readonly seq: number;
  readonly bytes: Buffer;
  readonly where: string;
}

export interface VerifiedChain {
  readonly entries: ChainedEntry[];
  /** SHA-256 of each entry's bytes, in order: hashes[k-1] is entry k's. */
  readonly hashes: string[];
}

/** A version whose audit trail does not verify: it is not served, and `registry verify` lists it. */
export class AuditChainError extends UserError {
  readonly version: number;
  readonly problem: string;
  constructor(version: number, problem: string) {
    super(`version ${version}: audit trail does not verify: ${problem}. The version is not served until this is resolved; run \`pricesense registry verify\` for the whole registry.`, 'integrity');
    this.name = 'AuditChainError';
    this.version = version;
    this.problem = problem;
  }
}

/** The status moved between reading it and writing the change: nothing was changed. */
export class ConcurrentChangeError extends UserError {
  constructor(version: number, from: ModelStatus, now: { to: ModelStatus; by: string; at: string } | undefined) {
    const current = now ? `it is now ${now.to} (by ${now.by} at ${now.at})` : 'another change to it is in progress';
    super(`version ${version} changed while this change was being made: it was ${from}, ${current}; nothing was changed — re-run if the change is still wanted`, 'conflict');
    this.name = 'ConcurrentChangeError';
  }
}

/** The decision was taken on another status than the version has: refuse before writing anything. */
export function assertExpected(version: number, current: ModelStatus, options: TransitionOptions, last: { by: string; at: string } | undefined): void {
  if (options.expected !== undefined && options.expected !== current) {
    throw new ConcurrentChangeError(version, options.expected, { to: current, by: last?.by ?? '?', at: last?.at ?? '?' });
  }
}

export function encodeEntry(entry: ChainedEntry): Buffer {
  const { seq, prev, at, by, from, to, note, override } = entry;
  // `override` only when there is one: entries without it are byte for byte what they were before it existed.
  const stored = override ? { seq, prev, at, by, from, to, note, override: { reason: override.reason, gates: override.gates } } : { seq, prev, at, by, from, to, note };
  return Buffer.from(`${JSON.stringify(stored)}\n`, 'utf8');
}

/** The entry of the public trail (without the chain fields). */
export function publicEntry(e: ChainedEntry): AuditEntry {
  return { at: e.at, by: e.by, from: e.from, to: e.to, note: e.note, ...(e.override ? { override: e.override } : {}) };
}

function isOverride(o: unknown): o is GateOverride {
  return !!o && typeof o === 'object' && typeof (o as GateOverride).reason === 'string' && typeof (o as GateOverride).gates === 'string';
}

function isStatus(v: unknown): v is ModelStatus {
  return typeof v === 'string' && (MODEL_STATUSES as readonly string[]).includes(v);
}

function parseEntry(version: number, s: StoredEntry): ChainedEntry {
  let e: Partial<ChainedEntry>;
  try {
    e = JSON.parse(s.bytes.toString('utf8')) as Partial<ChainedEntry>;
  } catch {
    throw new AuditChainError(version, `${s.where} is not valid JSON`);
  }
  const ok =
    e !== null &&
    typeof e === 'object' &&
    e.seq === s.seq &&
    typeof e.prev === 'string' &&
    /^[0-9a-f]{64}$/.test(e.prev) &&
    typeof e.at === 'string' &&
    typeof e.by === 'string' &&
    typeof e.note === 'string' &&
    (e.from === null || isStatus(e.from)) &&
    isStatus(e.to) &&
    (e.override === undefined || (isOverride(e.override) && e.to === 'Approved'));
  if (!ok) {
    const why = typeof e?.prev !== 'string' ? 'has no hash link (an entry written before the audit was chained, or a hand-made one)' : `is not a well-formed audit entry ${s.seq}`;
    throw new AuditChainError(version, `${s.where} ${why}`);
  }
  return e as ChainedEntry;
}

/**
 * Verifies a version's chain: entries 1..n, each well formed, each linked to the one
 * before (entry 1 to `anchor`). `firstIsRegistration`: entry 1 must be the registration
 * (from: null); false for versions registered outside pricesense (a SageMaker pipeline),
 * whose trail starts at the first change made through pricesense. `continuous`: each
 * entry's `from` must be the previous entry's `to` (local, where pricesense alone writes
 * the status; on SageMaker a change made outside pricesense legitimately sits between).
 */
export function verifyChain(version: number, stored: readonly StoredEntry[], anchor: string, firstIsRegistration: boolean, continuous = false): VerifiedChain {
  const sorted = [...stored].sort((a, b) => a.seq - b.seq);
  const entries: ChainedEntry[] = [];
  const hashes: string[] = [];
  let prev = anchor;
  sorted.forEach((s, i) => {
    if (s.seq !== i + 1) {
      throw new AuditChainError(version, i === 0 ? `entry 1 is missing (the first stored one is ${s.seq})` : `entry ${i + 1} is missing (deleted?): entry ${sorted[i - 1].seq} is followed by ${s.seq}`);
    }
    const e = parseEntry(version, s);
    if (e.prev !== prev) {
      throw new AuditChainError(
        version,
        i === 0
          ? `${s.where} does not link to the version's registration record (it names ${e.prev.slice(0, 12)}…, the record hashes to ${anchor.slice(0, 12)}…): the record or the entry was altered`
          : `${s.where} does not link to entry ${i} (it names ${e.prev.slice(0, 12)}…, entry ${i} hashes to ${prev.slice(0, 12)}…): entry ${i} was altered or replaced`,
      );
    }
    if (i === 0 && firstIsRegistration && (e.from !== null || e.to !== 'PendingManualApproval')) {
      throw new AuditChainError(version, `${s.where} is not the registration entry (from null to PendingManualApproval)`);
    }
    if (i > 0 && e.from === null) throw new AuditChainError(version, `${s.where} claims to be a registration but is entry ${s.seq}`);
    // Where pricesense is the only writer of the status (local), each change starts where the last one ended.
    if (i > 0 && continuous && e.from !== entries[i - 1].to) {
      throw new AuditChainError(version, `${s.where} moves from ${e.from} but entry ${i} left the version ${entries[i - 1].to}: a hand-made entry`);
    }
    prev = sha256Hex(s.bytes);
    entries.push(e);
    hashes.push(prev);
  });
  return { entries, hashes };
}

/**
 * What a long-lived reader has verified per version: the length of the chain and its
 * last hash. A later read must extend that chain, never shorten or rewrite it.
 */
export class ChainWitness {
  private readonly seen = new Map<number, { length: number; hash: string }>();

  /** `settled`: how many leading entries are final (a backend may hold a trailing in-progress one back). */
  check(version: number, chain: VerifiedChain, settled = chain.hashes.length): void {
    const before = this.seen.get(version);
    if (before && chain.hashes[before.length - 1] !== before.hash) {
      throw new AuditChainError(
        version,
        chain.hashes.length < before.length
          ? `the trail was cut back from ${before.length} to ${chain.hashes.length} entries since this process read it (a deleted status change)`
          : `entry ${before.length} changed since this process read it`,
      );
    }
    const n = settled;
    if (n > 0 && (!before || n > before.length)) this.seen.set(version, { length: n, hash: chain.hashes[n - 1] });
  }
}
