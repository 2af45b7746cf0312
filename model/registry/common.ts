/**
 * What both registry backends share: the status machine, who is acting, reading a
 * forest file for registration (digests, lineage, gate verdict) and the checksum
 * check that guards fetch().
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { configuredSetting } from '../../core/config';
import { UserError } from '../../core/errors';
import type { ForestFileV1 } from '../format';
import { parseForest } from '../forest-file';
import { gateFailureMessage, type GateReport } from '../gates';
import { FOREST_LIMITS } from '../forest-limits';
import { forestBytesOfArtifact, MAX_ARTIFACT_BYTES, type ReadLimits } from '../sagemaker/tar';
import { assertByteLimit, ObjectTooLargeError, type RefusedReadError } from '../../core/bounded-read';
import { MODEL_STATUSES, type GateOverride, type Lineage, type ModelStatus, type ModelVersion, type StoredArtifact, type TransitionOptions } from './types';

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The acting user: an explicit name, else the `user` setting (PRICESENSE_USER), else the OS account. */
export function actor(explicit?: string): string {
  const configured = configuredSetting('user', explicit?.trim());
  if (configured) return configured;
  try {
    const name = os.userInfo().username;
    if (name) return name;
  } catch {
    // No passwd entry (common in containers running as an arbitrary uid).
  }
  return process.env.USER || process.env.USERNAME || `uid:${process.getuid?.() ?? 'unknown'}`;
}

/**
 * Allowed moves. Pending is only ever the initial state; Approved <-> Rejected is
 * how a rollback (and its undo) is done.
 */
const TRANSITIONS: Record<ModelStatus, readonly ModelStatus[]> = {
  PendingManualApproval: ['Approved', 'Rejected'],
  Approved: ['Rejected'],
  Rejected: ['Approved'],
};

export function assertTransition(version: number, from: ModelStatus, to: ModelStatus): void {
  if (TRANSITIONS[from].includes(to)) return;
  if (from === to) throw new UserError(`version ${version} is already ${to}: nothing to change`, 'invalid_transition');
  throw new UserError(
    `version ${version} cannot move from ${from} to ${to} (allowed from ${from}: ${TRANSITIONS[from].join(', ') || 'none'})`,
    'invalid_transition',
  );
}

/** Accepts the canonical names and the short forms pending/approved/rejected, any case. */
export function parseStatus(text: string): ModelStatus {
  const lower = text.trim().toLowerCase();
  const found = MODEL_STATUSES.find((s) => s.toLowerCase() === lower || (lower === 'pending' && s === 'PendingManualApproval'));
  if (!found) throw new UserError(`unknown status '${text}': expected one of ${MODEL_STATUSES.join(', ')} (or pending, approved, rejected)`);
  return found;
}

export function assertVersionNumber(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new UserError(`invalid model version '${String(version)}': expected a positive integer`);
  }
}

/**
 * Why the forest's evaluation failed its quality gates, or undefined if it did not.
 * metrics.gates is the GateReport of model/gates.ts (train/evaluate write it).
 */
export function gateFailure(metrics: Record<string, unknown>): string | undefined {
  const gates = metrics.gates;
  if (!gates || typeof gates !== 'object') return undefined;
  const g = gates as Partial<GateReport>;
  if (g.passed !== false) return undefined;
  const results = Array.isArray(g.results) ? g.results : [];
  const wellFormed = results.length > 0 && results.every((r) => typeof r?.gate === 'string' && typeof r.actual === 'number' && typeof r.required === 'number');
  if (wellFormed && typeof g.split === 'string') return gateFailureMessage(g as GateReport);
  const failed = results.filter((r) => r && r.passed === false).map((r) => String(r.gate));
  return failed.length > 0 ? `quality gates failed: ${failed.join(', ')}` : 'the quality gates failed';
}

/** Whether the forest carries gate results at all (an unevaluated forest does not). */
export function hasGateResults(metrics: Record<string, unknown>): boolean {
  const gates = metrics.gates;
  return !!gates && typeof gates === 'object' && typeof (gates as Record<string, unknown>).passed === 'boolean';
}

/** Approving a version whose quality gates failed, without an override and a reason. */
export class GateOverrideRequiredError extends UserError {
  constructor(version: number, failure: string) {
    super(`version ${version} failed its quality gates (${failure}): approving it needs an explicit gate override with a reason (pricesense registry approve ${version} --note … --override-gates --reason "…"); nothing was changed`, 'gate_failed');
    this.name = 'GateOverrideRequiredError';
  }
}

/** What the gates of a version said, when an approval has to override them: failed, or never evaluated. */
export function gatesToOverride(metrics: Record<string, unknown>): string | undefined {
  return gateFailure(metrics) ?? (hasGateResults(metrics) ? undefined : 'not evaluated: no quality gate results recorded');
}

/**
 * The override an approval records, checked against the version's own gate results:
 * required when they failed, refused when there is nothing to override or the change
 * is not an approval.
 */
export function gateOverrideOf(version: number, to: ModelStatus, metrics: Record<string, unknown>, options: TransitionOptions): GateOverride | undefined {
  const requested = options.overrideGates;
  const reason = requested?.reason.trim() ?? '';
  if (requested && !reason) throw new UserError(`a gate override needs a reason (--reason "…"); nothing was changed`);
  if (to !== 'Approved') {
    if (requested) throw new UserError(`a gate override applies to approvals only; nothing was changed`);
    return undefined;
  }
  const failure = gateFailure(metrics);
  if (failure && !requested) throw new GateOverrideRequiredError(version, failure);
  const gates = gatesToOverride(metrics);
  if (!requested) return undefined;
  if (!gates) throw new UserError(`version ${version} passed its quality gates: there is nothing to override; approve it without --override-gates`, 'invalid_transition');
  return { reason, gates };
}

export interface Candidate {
  readonly path: string;
  readonly bytes: Buffer;
  readonly forest: ForestFileV1;
  readonly artifactSha256: string;
  readonly lineage: Lineage;
  /** The audit note of the registration (the user's note, plus the forced-registration record). */
  readonly note: string;
}

/**
 * Reads and validates a forest file for registration. Refuses a forest whose gates
 * failed unless force is set; a forced registration is recorded in lineage and note.
 */
export async function readCandidate(forestPath: string, options: { by?: string; force?: boolean; note?: string }): Promise<Candidate> {
  let bytes: Buffer;
  try {
    bytes = await readFile(forestPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read model file '${forestPath}': ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const forest = parseForest(bytes, forestPath);
  const failure = gateFailure(forest.metrics);
  if (failure && !options.force) {
    throw new UserError(
      `refusing to register '${forestPath}': ${failure}. Fix the model, or pass --force to register it anyway (recorded in lineage and audit).`,
      'gate_failed',
    );
  }
  const forced = !!failure && !!options.force;
  const by = actor(options.by);
  const notes = [options.note?.trim() ?? ''];
  if (forced) notes.push(`FORCED registration despite failed gates (${failure})`);
  const lineage: Lineage = {
    datasetManifestSha256: forest.training.datasetManifestSha256 ?? null,
    codeVersion: forest.training.codeVersion ?? null,
    hyperparameters: forest.training.hyperparameters ?? {},
    registeredBy: by,
    registeredAt: new Date().toISOString(),
    forced,
  };
  return { path: forestPath, bytes, forest, artifactSha256: sha256Hex(bytes), lineage, note: notes.filter(Boolean).join(' | ') };
}

/** The version does not exist (as opposed to a registry that could not be read). */
export class VersionNotFoundError extends UserError {
  readonly version: number;
  constructor(version: number, message: string) {
    super(message, 'not_found');
    this.name = 'VersionNotFoundError';
    this.version = version;
  }
}

/**
 * The most bytes a stored artifact may have by default: the largest forest document
 * (FOREST_LIMITS.documentBytes). The API passes its own, lower cap — the largest document
 * its load budget can parse (model/forest-loader.ts, maxDocumentBytes) — since the artifact
 * is held whole while it loads. Checked before the artifact is downloaded: whoever can
 * write to the registry must not be able to make every API worker allocate an object of
 * any size on its next poll.
 */
export const MAX_STORED_ARTIFACT_BYTES = Math.max(FOREST_LIMITS.documentBytes, MAX_ARTIFACT_BYTES);

/** The most bytes of one registry record (a version record, HEAD.json, the chain marker, lineage, metrics): pricesense writes a few kB. */
export const MAX_RECORD_BYTES = 1024 * 1024;

/**
 * A version's audit trail, read whole before it is verified on every poll, is budgeted from
 * its listing before any of it is read: each entry at most MAX_AUDIT_ENTRY_BYTES (an entry is
 * under 1 kB), the trail at most MAX_TRAIL_ENTRIES entries and MAX_TRAIL_BYTES in all
 * (thousands of status changes fit). Over budget, the version's trail does not verify.
 */
export const MAX_AUDIT_ENTRY_BYTES = 1024 * 1024; // a note has no length limit on the CLI: an entry pricesense wrote itself must stay readable
export const MAX_TRAIL_ENTRIES = 10_000;
export const MAX_TRAIL_BYTES = 4 * 1024 * 1024;

/** Why a trail of these entry sizes is over budget, or undefined. */
export function trailOverBudget(where: string, sizes: readonly number[]): string | undefined {
  if (sizes.length > MAX_TRAIL_ENTRIES) return `${where} holds ${sizes.length.toLocaleString('en-US')} audit entries, more than the ${MAX_TRAIL_ENTRIES.toLocaleString('en-US')} (MAX_TRAIL_ENTRIES) a trail may have; none was read`;
  const largest = Math.max(0, ...sizes);
  if (largest > MAX_AUDIT_ENTRY_BYTES) return `${where} holds an audit entry of ${largest.toLocaleString('en-US')} bytes, more than the ${MAX_AUDIT_ENTRY_BYTES.toLocaleString('en-US')} (MAX_AUDIT_ENTRY_BYTES) an entry may have (pricesense writes under 1 kB); none was read`;
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total > MAX_TRAIL_BYTES) return `${where} holds ${total.toLocaleString('en-US')} bytes of audit entries, more than the ${MAX_TRAIL_BYTES.toLocaleString('en-US')} (MAX_TRAIL_BYTES) a trail may have; none was read`;
  return undefined;
}

/** How the default artifact cap is named in a refusal. */
export const DEFAULT_ARTIFACT_LIMIT = 'a registry artifact may have (MAX_STORED_ARTIFACT_BYTES, model/registry/common.ts)';

/** The registry options that bound what an artifact read may hold. */
export interface ArtifactLimitOptions {
  /** Bytes an artifact may have (MAX_STORED_ARTIFACT_BYTES by default): a larger one is refused before it is downloaded. */
  readonly maxArtifactBytes?: number;
  /** How a refusal names that cap (what sets it), completing "more than the N bytes …". */
  readonly artifactLimitName?: string;
}

/** The cap and its name from the options; a cap that is not a non-negative integer is a programming error. */
export function artifactLimit(options: ArtifactLimitOptions): { maxBytes: number; name: string } {
  if (options.maxArtifactBytes === undefined) return { maxBytes: MAX_STORED_ARTIFACT_BYTES, name: DEFAULT_ARTIFACT_LIMIT };
  assertByteLimit(options.maxArtifactBytes, 'maxArtifactBytes');
  return { maxBytes: options.maxArtifactBytes, name: options.artifactLimitName ?? 'this registry client allows (its maxArtifactBytes option)' };
}

/** An artifact refused unread (over the size limit, or not a regular file), as the load failure and `registry verify` report it. */
export function artifactRefused(version: number, uri: string, err: RefusedReadError, limitName: string): InvalidArtifactError {
  if (!(err instanceof ObjectTooLargeError)) {
    return new InvalidArtifactError(`version ${version}'s artifact ${err.message}. Not a model artifact this service can load: reject the version, or register the model again`);
  }
  const refused = err.sizeKnown
    ? `is ${err.bytes.toLocaleString('en-US')} bytes, more than the ${err.maxBytes.toLocaleString('en-US')} bytes ${limitName}; it was refused on its size, before it was downloaded`
    : `grew past the ${err.maxBytes.toLocaleString('en-US')} bytes ${limitName} while it was read (${err.bytes.toLocaleString('en-US')} bytes read); the rest was not read`;
  return new InvalidArtifactError(`version ${version}'s artifact ${uri} ${refused}. Not a model artifact this service can load: reject the version, or register a smaller model (\`pricesense model upgrade\` converts a format v1 file to the far smaller v2)`);
}

/**
 * The stored artifact itself is unusable (its bytes do not match the registered digest,
 * or the archive is malformed or over a limit): fetching it again gives the same answer
 * until the registry changes, so a reader need not retry it on every poll.
 */
export class InvalidArtifactError extends UserError {
  constructor(message: string) {
    super(message, 'integrity');
    this.name = 'InvalidArtifactError';
  }
}

/**
 * One version's stored record cannot be read as a version (invalid JSON, a missing or
 * unparsable lineage or metrics object, metadata pricesense needs): that version is not
 * served and is reported, the others are — unlike an unreachable registry, which fails
 * the whole read.
 */
export class CorruptVersionError extends UserError {
  readonly version: number;
  readonly problem: string;
  constructor(version: number, problem: string) {
    super(`version ${version}: registry record unreadable: ${problem}. The version is not served; run \`pricesense registry verify\` for the whole registry.`, 'integrity');
    this.name = 'CorruptVersionError';
    this.version = version;
    this.problem = problem;
  }
}

/**
 * One version's objects this process may not read (no permission): passed over by a poll
 * like a corrupt version, but it says nothing about the version itself — a changed mode,
 * another uid — so a reader that serves it must not withdraw it on this alone.
 */
export class VersionNotReadableError extends CorruptVersionError {
  constructor(version: number, problem: string) {
    super(version, problem);
    this.name = 'VersionNotReadableError';
  }
}

/**
 * An artifact this process may not read (no permission): not the artifact's defect, so a
 * reader retries it at its next poll rather than remembering it as a failed load. Not a
 * UserError for that reason; its message is in words.
 */
export class ArtifactNotReadableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArtifactNotReadableError';
  }
}

/** Stored bytes whose digest differs from the registered one: the model is never returned. */
export class ChecksumMismatchError extends InvalidArtifactError {
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, expected: string, actual: string) {
    super(`checksum mismatch for ${what}: registered SHA-256 ${expected}, stored bytes hash to ${actual}; refusing to return this model`);
    this.name = 'ChecksumMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * A fetched artifact's forest JSON: unpacked when it is a model.tar.gz (streamed: only
 * forest.json is held), its bytes checked against the registered digest in the same pass
 * (the digest covers the archive). Nothing is returned unless the digest matches; a
 * digest mismatch is reported before any unpacking error, since it says the bytes are not
 * the registered ones. Errors are InvalidArtifactError: the stored artifact, not the
 * reader, is at fault.
 */
export async function openArtifact(artifact: StoredArtifact, limits: ReadLimits = {}): Promise<Buffer> {
  const { bytes, sha256, source } = artifact;
  const hash = createHash('sha256');
  let hashed = 0;
  let forest: Buffer | undefined;
  let failure: unknown;
  try {
    forest = await forestBytesOfArtifact(bytes, source, {
      ...limits,
      onChunk: (chunk) => {
        hash.update(chunk);
        hashed += chunk.length;
      },
    });
  } catch (err) {
    failure = err;
  }
  // A refused archive stops reading early: the digest still covers every byte.
  if (hashed < bytes.length) hash.update(bytes.subarray(hashed));
  const actual = hash.digest('hex');
  if (actual !== sha256) throw new ChecksumMismatchError(source, sha256, actual);
  // Registered bytes that do not unpack (malformed, over a limit): a property of the artifact, not a transient failure.
  if (failure instanceof UserError) throw new InvalidArtifactError(failure.message);
  if (failure !== undefined || forest === undefined) throw failure;
  return forest;
}

/** The version a write returns, with the warning the write has for its caller (if any). */
export function withWarning(v: ModelVersion, warning: string | undefined): ModelVersion {
  return warning === undefined ? v : { ...v, warnings: [...(v.warnings ?? []), warning] };
}
