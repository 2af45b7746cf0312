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
 * A trail written by a pricesense from before the chain (entries without `seq`/`prev`)
 * is unmigrated: not verifiable, so not served (UnmigratedVersionError, naming
 * `pricesense registry migrate`). The migration adds a genesis entry after those entries
 * whose `prev` is their seal (sealDigest: the anchor and each entry's digest, in order);
 * from then on they are covered like any entry, and the chain goes on from the genesis.
 *
 * A chain only proves what was written through pricesense: someone who can rewrite
 * every file can forge a consistent one. ChainWitness closes part of that gap inside
 * a long-lived process (the API): it remembers the longest chain it verified per
 * version, so a trail rolled back while it runs is caught too.
 */
import { UserError } from '../../core/errors';
import { sha256Hex } from './common';
import { MODEL_STATUSES, type AuditEntry, type ChainStanding, type GateOverride, type ModelStatus, type TransitionOptions } from './types';

/** An audit entry as stored: its place in the chain and its link to the previous entry. */
export interface ChainedEntry extends AuditEntry {
  readonly seq: number;
  readonly prev: string;
  /**
   * SageMaker: the entry before this one (its number) recorded a change SageMaker never
   * took. Said by the change that found it so and linked onto it, so the record of it being
   * void is as tamper-evident as the entry.
   */
  readonly voids?: number;
}

/** What `pricesense registry migrate` records in the genesis entry it adds to a trail written before the chain. */
export interface Genesis {
  /** How many entries written before the chain it seals (their digests, in order, are in its `prev`). */
  readonly legacyEntries: number;
}

/** One stored entry, as read: its position, its bytes and where it was read from (for messages). */
export interface StoredEntry {
  readonly seq: number;
  readonly bytes: Buffer;
  readonly where: string;
}

export interface VerifiedChain {
  /** The chained entries, oldest first (entries[0].seq is 1, or the genesis's number after numbered legacy entries). */
  readonly entries: ChainedEntry[];
  /** SHA-256 of each chained entry's bytes, in order: hashes[i] is entries[i]'s. */
  readonly hashes: string[];
  /** Entries written before the chain existed, sealed by the genesis entry (entries[0]); none for a trail chained from its start. */
  readonly legacy: AuditEntry[];
}

/** A version whose audit trail does not verify: it is not served, and `registry verify` lists it. */
export class AuditChainError extends UserError {
  readonly version: number;
  readonly problem: string;
  constructor(version: number, problem: string, message?: string) {
    super(message ?? `version ${version}: audit trail does not verify: ${problem}. The version is not served until this is resolved; run \`pricesense registry verify\` for the whole registry.`, 'integrity');
    this.name = 'AuditChainError';
    this.version = version;
    this.problem = problem;
  }
}

/** The command that seals a registry written before the chain. */
export function migrateCommand(registry: string): string {
  return `pricesense registry migrate --registry ${registry}`;
}

/**
 * A version whose trail was written by a pricesense from before the chain (no `prev`
 * links) and not yet sealed by `registry migrate`. Not served and not changed: nothing
 * in such a trail is tamper-evident, and a deleted "Rejected" would go unnoticed.
 */
export class UnmigratedVersionError extends AuditChainError {
  constructor(version: number, registry: string, legacyEntries: number) {
    const problem = `its ${legacyEntries} audit entr${legacyEntries === 1 ? 'y was' : 'ies were'} written by an earlier pricesense, before the audit trail was hash-chained, and not yet sealed: run \`${migrateCommand(registry)}\` once`;
    super(version, problem, `version ${version}: registry not migrated: ${problem} (it adds a genesis entry sealing that history; nothing is rewritten). Until then the version is not served and cannot be changed.`);
    this.name = 'UnmigratedVersionError';
  }
}

/**
 * Sealing is once per registry, or `registry migrate` would seal a forgery (delete a
 * version's chained entries, write old-style ones ending in Approved, and every read asks
 * for `migrate`). Each backend keeps a registry-level marker, created exclusively by the
 * first chain-aware write: the versions written before the chain at that moment
 * (`legacy`), and whether sealing them is still open (`migrating`) or finished
 * (`complete`). Only a listed version may be sealed, and only while sealing is open.
 */
export const CHAIN_MARKER_LAYOUT = 'pricesense.registry.chain/1';

export interface ChainMarker {
  readonly layout: typeof CHAIN_MARKER_LAYOUT;
  readonly state: 'migrating' | 'complete';
  readonly legacy: readonly number[];
  /** HMAC under the local registry's audit key, when it has one. */
  readonly mac?: string;
}

/** The marker's stored text, checked for shape (`where` names it in the error). */
export function parseChainMarker(text: string, where: string): ChainMarker {
  let m: Partial<ChainMarker>;
  try {
    m = JSON.parse(text) as Partial<ChainMarker>;
  } catch (err) {
    throw new UserError(`${where} is not valid JSON (${(err as Error).message}): the registry's chain marker was damaged; restore it from a backup`, 'integrity');
  }
  if (!m || m.layout !== CHAIN_MARKER_LAYOUT || (m.state !== 'migrating' && m.state !== 'complete') || !Array.isArray(m.legacy) || !m.legacy.every((n) => Number.isSafeInteger(n))) {
    throw new UserError(`${where} is malformed (expected layout ${CHAIN_MARKER_LAYOUT}, state migrating|complete, legacy version numbers): restore it from a backup`, 'integrity');
  }
  return m as ChainMarker;
}

/**
 * Reads the registry's marker on a version's read path: a bad marker makes that version
 * unservable (passed over, listed by verify) instead of failing every read.
 */
export async function markerForVersion<T>(version: number, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof UserError) throw new AuditChainError(version, err.message);
    throw err;
  }
}

/**
 * A version that looks written before the chain in a registry whose marker says it cannot
 * be (not listed, or sealing closed): written without the chain after the registry became
 * chain-aware, by a pricesense from before the chain still in use, or by hand.
 */
export function tamperedTrail(version: number, o: { looks: string; listed: boolean; marker: string; sealingClosedBy: string; trail: string }): AuditChainError {
  const why = o.listed ? `this registry's migration is complete (${o.sealingClosedBy}), so its sealed trail was replaced` : `it was not written before the chain (${o.marker} does not list it), so its chained entries were replaced`;
  return new AuditChainError(
    version,
    `${o.looks}, but ${why}: written without the chain (by a pricesense older than the hash-chained audit trail still in use, or by hand). \`registry migrate\` will not seal it: retire every pricesense from before the chain that writes to this registry; then restore ${o.trail} from a backup, or leave it unserved and register its forest again as a new version`,
  );
}

/**
 * The versions a new marker lists: those written before the chain. Refused when other
 * versions are chained already (the registry was chain-aware, so a marker existed and was
 * deleted, or the release before the marker chained them) unless a person vouched for
 * every one of them with --accept-unchained. Returns why it is refused (undefined: it may);
 * `registry migrate` fails with it, any other write warns (markerPendingWarning).
 */
export function markerRefusal(o: { registry: string; marker: string; legacy: readonly number[]; chainAware: boolean; acceptUnchained: readonly number[]; trails: string }): string | undefined {
  const { legacy } = o;
  if (!o.chainAware || legacy.length === 0 || legacy.every((n) => o.acceptUnchained.includes(n))) return undefined;
  const one = legacy.length === 1;
  return `${o.marker} is missing, yet versions of this registry have hash-chained trails (written by a chain-aware pricesense) while version${one ? '' : 's'} ${legacy.join(', ')} look${one ? 's' : ''} written before the chain: either the marker was deleted and those trails rewritten by hand, or the registry was upgraded to a pricesense that chained new versions before the marker existed. \`registry migrate\` will not seal them on its own; restore the registry (or those versions' ${o.trails} and the marker) from a backup, or, after checking those versions' ${o.trails} against a backup, run \`${migrateCommand(o.registry)} --accept-unchained ${legacy.join(',')}\``;
}

/** A marker found or created, or why it may not be created (markerRefusal). */
export type MarkerAttempt<M> = M | { readonly refusal: string };

/** `registry migrate` insists on the marker: a refusal is its error. */
export function markerOrFail<M extends object>(made: MarkerAttempt<M>): M {
  if ('refusal' in made) throw new UserError(made.refusal, 'integrity');
  return made;
}

/** What any other write says instead (markerPendingWarning), undefined when the marker is there. */
export function markerWarning<M extends object>(made: MarkerAttempt<M>): string | undefined {
  return 'refusal' in made ? markerPendingWarning(made.refusal) : undefined;
}

/**
 * Any other write goes ahead without the marker (its own entry is chained regardless, and
 * an emergency reject must never wait on an upgrade step): it only says what to run.
 */
export function markerPendingWarning(refusal: string): string {
  return `the registry's chain marker was not created, so its older versions stay unmigrated (not served, not changeable) until \`pricesense registry migrate\` is run once; this change was made and recorded in the hash chain. ${refusal}`;
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
  const { seq, prev, at, by, from, to, note, override, genesis, voids } = entry;
  // `override` and `genesis` only when there is one: entries without them are byte for byte what they were before they existed.
  const stored = {
    seq,
    prev,
    at,
    by,
    from,
    to,
    note,
    ...(override ? { override: { reason: override.reason, gates: override.gates } } : {}),
    ...(genesis ? { genesis: { legacyEntries: genesis.legacyEntries } } : {}),
    ...(voids !== undefined ? { voids } : {}),
  };
  return Buffer.from(`${JSON.stringify(stored)}\n`, 'utf8');
}

/** The entry of the public trail (without the chain fields). */
export function publicEntry(e: AuditEntry, chain?: ChainStanding): AuditEntry {
  return { at: e.at, by: e.by, from: e.from, to: e.to, note: e.note, ...(e.override ? { override: e.override } : {}), ...(e.genesis ? { genesis: e.genesis } : {}), ...(chain ? { chain } : {}) };
}

/**
 * The genesis entry's link: the anchor and the digests of the legacy entries it seals,
 * in order. Altering, adding, removing or reordering any of them changes it.
 */
export function sealDigest(anchor: string, legacy: readonly StoredEntry[]): string {
  return sha256Hex(`pricesense.audit.genesis/1\n${anchor}\n${legacy.map((s) => sha256Hex(s.bytes)).join('\n')}`);
}

/** Whether stored bytes are an entry written before the chain (a JSON object without `prev`). */
export function isLegacyEntry(bytes: Buffer): boolean {
  try {
    const e = JSON.parse(bytes.toString('utf8')) as unknown;
    return !!e && typeof e === 'object' && !('prev' in e) && !('seq' in e);
  } catch {
    return false;
  }
}

/** The genesis entry `registry migrate` adds after `legacy` (see sealDigest). */
export function genesisEntry(seq: number, anchor: string, legacy: readonly StoredEntry[], status: ModelStatus, by: string): ChainedEntry {
  const n = legacy.length;
  return {
    seq,
    prev: sealDigest(anchor, legacy),
    at: new Date().toISOString(),
    by,
    from: status,
    to: status,
    note: `audit chain started by pricesense registry migrate: the ${n} entr${n === 1 ? 'y' : 'ies'} before this one ${n === 1 ? 'was' : 'were'} written before the trail was hash-chained and ${n === 1 ? 'is' : 'are'} sealed as found; ${n === 1 ? 'it was' : 'they were'} not tamper-evident before this entry`,
    genesis: { legacyEntries: n },
  };
}

function isOverride(o: unknown): o is GateOverride {
  return !!o && typeof o === 'object' && typeof (o as GateOverride).reason === 'string' && typeof (o as GateOverride).gates === 'string';
}

function isStatus(v: unknown): v is ModelStatus {
  return typeof v === 'string' && (MODEL_STATUSES as readonly string[]).includes(v);
}

function isGenesis(g: unknown): g is Genesis {
  return !!g && typeof g === 'object' && Number.isSafeInteger((g as Genesis).legacyEntries) && (g as Genesis).legacyEntries > 0;
}

function parseStored<T>(version: number, s: StoredEntry): Partial<T> {
  try {
    return JSON.parse(s.bytes.toString('utf8')) as Partial<T>;
  } catch {
    throw new AuditChainError(version, `${s.where} is not valid JSON`);
  }
}

/** An entry written before the chain: `{ at, by, from, to, note }` (as pricesense wrote it then). */
function parseLegacyEntry(version: number, s: StoredEntry): AuditEntry {
  const e = parseStored<AuditEntry>(version, s);
  const ok = !!e && typeof e === 'object' && typeof e.at === 'string' && typeof e.by === 'string' && typeof e.note === 'string' && (e.from === null || isStatus(e.from)) && isStatus(e.to);
  if (!ok) throw new AuditChainError(version, `${s.where} is not a well-formed audit entry (written before the chain)`);
  return { at: e.at!, by: e.by!, from: e.from!, to: e.to!, note: e.note! };
}

/** An entry written before the chain that no chain covers (shown as unsealed): undefined when the bytes are not one. */
export function unsealedEntry(s: StoredEntry): AuditEntry | undefined {
  try {
    return { ...parseLegacyEntry(0, s), chain: 'unsealed' };
  } catch {
    return undefined;
  }
}

function parseEntry(version: number, s: StoredEntry): ChainedEntry {
  const e = parseStored<ChainedEntry>(version, s);
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
    (e.override === undefined || (isOverride(e.override) && e.to === 'Approved')) &&
    (e.genesis === undefined || (isGenesis(e.genesis) && e.from === e.to && e.override === undefined)) &&
    (e.voids === undefined || e.voids === s.seq - 1);
  if (!ok) {
    const why = typeof e?.prev !== 'string' ? 'has no hash link (an entry written before the audit was chained, or a hand-made one)' : `is not a well-formed audit entry ${s.seq}`;
    throw new AuditChainError(version, `${s.where} ${why}`);
  }
  return e as ChainedEntry;
}

/**
 * A `voids` link is a claim by the next writer, not a proof: it is accepted only as
 * pricesense writes one, after the voided change's window passed with the status still
 * where that change started (so the voiding entry starts from the same status).
 */
function assertVoidLink(version: number, where: string, e: ChainedEntry, voided: ChainedEntry | undefined, windowMs: number | undefined): void {
  const why =
    windowMs === undefined
      ? 'this registry applies no change after writing its entry'
      : !voided || voided.from === null || voided.from === voided.to
        ? 'that entry records no status change'
        : e.from !== voided.from
          ? `it starts from ${e.from}, not from ${voided.from} where that change would have left the status had it not been applied`
          : !(Date.parse(e.at) >= Date.parse(voided.at) + windowMs)
            ? `it was written at ${e.at}, within ${windowMs / 1000} s of that entry (${voided.at}), while its change could still have been on its way`
            : undefined;
  if (why !== undefined) throw new AuditChainError(version, `${where} says entry ${e.voids} was not applied, but ${why}: a hand-made entry`);
}

export interface ChainOptions {
  /**
   * Entry 1 must be the registration (from: null). False for versions registered outside
   * pricesense (a SageMaker pipeline), whose trail starts at the first change made through
   * pricesense.
   */
  readonly firstIsRegistration: boolean;
  /**
   * Each entry's `from` must be the previous entry's `to` (local, where pricesense alone
   * writes the status; on SageMaker a change made outside pricesense legitimately sits between).
   */
  readonly continuous?: boolean;
  /**
   * Entries written before the chain existed (no `prev`), oldest first. Without a genesis
   * entry sealing them the version is unmigrated; with one, the chain starts at it.
   */
  readonly legacy?: readonly StoredEntry[];
  /** Legacy entries are numbered 1..k and the chain goes on at k+1 (local files); else the chain starts at 1 (SageMaker objects). */
  readonly legacyNumbered?: boolean;
  /** The registry's URI, for the command an unmigrated version needs. */
  readonly registry: string;
  /**
   * An entry may say the one before it was not applied (`voids`; SageMaker, where the status
   * is applied after its entry is written), if it is at least this many ms younger than it
   * (the window in which that entry's change may still have been on its way).
   */
  readonly voidAfterMs?: number;
}

/** Entries written before the chain, checked as the pricesense of the time kept them. */
function verifyLegacy(version: number, legacy: readonly StoredEntry[], options: ChainOptions): AuditEntry[] {
  const entries: AuditEntry[] = [];
  legacy.forEach((s, i) => {
    if (options.legacyNumbered && s.seq !== i + 1) throw new AuditChainError(version, `entry ${i + 1} is missing (deleted?) among the entries written before the chain`);
    const e = parseLegacyEntry(version, s);
    if (i === 0 && options.firstIsRegistration && (e.from !== null || e.to !== 'PendingManualApproval')) {
      throw new AuditChainError(version, `${s.where} is not the registration entry (from null to PendingManualApproval)`);
    }
    if (i > 0 && e.from === null) throw new AuditChainError(version, `${s.where} claims to be a registration but is not the first entry`);
    if (i > 0 && options.continuous && e.from !== entries[i - 1].to) {
      throw new AuditChainError(version, `${s.where} moves from ${e.from} but the entry before left the version ${entries[i - 1].to}`);
    }
    entries.push(e);
  });
  return entries;
}

/**
 * Verifies a version's trail: the legacy entries (if any, sealed by a genesis entry) and
 * the chained entries, each well formed and linked to the one before (the first to
 * `anchor`, or to the seal of the legacy entries).
 */
export function verifyChain(version: number, stored: readonly StoredEntry[], anchor: string, options: ChainOptions): VerifiedChain {
  const sorted = [...stored].sort((a, b) => a.seq - b.seq);
  const legacyStored = options.legacy ?? [];
  const legacy = verifyLegacy(version, legacyStored, options);
  if (legacy.length > 0 && sorted.length === 0) throw new UnmigratedVersionError(version, options.registry, legacy.length);
  const firstSeq = options.legacyNumbered ? legacy.length + 1 : 1;
  const entries: ChainedEntry[] = [];
  const hashes: string[] = [];
  let prev = legacy.length > 0 ? sealDigest(anchor, legacyStored) : anchor;
  sorted.forEach((s, i) => {
    const seq = firstSeq + i;
    if (s.seq !== seq) {
      throw new AuditChainError(version, i === 0 ? `entry ${seq} is missing (the first stored one is ${s.seq})` : `entry ${seq} is missing (deleted?): entry ${sorted[i - 1].seq} is followed by ${s.seq}`);
    }
    const e = parseEntry(version, s);
    if (e.prev !== prev) {
      throw new AuditChainError(
        version,
        i > 0
          ? `${s.where} does not link to entry ${seq - 1} (it names ${e.prev.slice(0, 12)}…, entry ${seq - 1} hashes to ${prev.slice(0, 12)}…): entry ${seq - 1} was altered or replaced`
          : legacy.length > 0
            ? `${s.where} does not seal the ${legacy.length} entries written before the chain (it names ${e.prev.slice(0, 12)}…, they and the registration record hash to ${prev.slice(0, 12)}…): one of them, or the record, was altered, added or deleted after the migration`
            : `${s.where} does not link to the version's registration record (it names ${e.prev.slice(0, 12)}…, the record hashes to ${anchor.slice(0, 12)}…): the record or the entry was altered`,
      );
    }
    if (i === 0 && legacy.length > 0) {
      if (e.genesis?.legacyEntries !== legacy.length) throw new AuditChainError(version, `${s.where} follows ${legacy.length} entries written before the chain but is not the genesis entry sealing them`);
      if (options.continuous && e.from !== legacy[legacy.length - 1].to) throw new AuditChainError(version, `${s.where} starts the chain at ${e.from} but the entries before it left the version ${legacy[legacy.length - 1].to}`);
    } else if (e.genesis) {
      throw new AuditChainError(version, `${s.where} claims to start the chain but ${i === 0 ? 'there are no entries written before the chain to seal' : `is entry ${seq}`}`);
    }
    if (i === 0 && legacy.length === 0 && options.firstIsRegistration && (e.from !== null || e.to !== 'PendingManualApproval')) {
      throw new AuditChainError(version, `${s.where} is not the registration entry (from null to PendingManualApproval)`);
    }
    if ((i > 0 || legacy.length > 0) && e.from === null) throw new AuditChainError(version, `${s.where} claims to be a registration but is entry ${s.seq}`);
    if (e.voids !== undefined) assertVoidLink(version, s.where, e, entries[i - 1], options.voidAfterMs);
    // Where pricesense is the only writer of the status (local), each change starts where the last one ended.
    if (i > 0 && options.continuous && e.from !== entries[i - 1].to) {
      throw new AuditChainError(version, `${s.where} moves from ${e.from} but entry ${seq - 1} left the version ${entries[i - 1].to}: a hand-made entry`);
    }
    prev = sha256Hex(s.bytes);
    entries.push(e);
    hashes.push(prev);
  });
  return { entries, hashes, legacy: legacy.map((e) => ({ ...e, chain: 'sealed' as const })) };
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
