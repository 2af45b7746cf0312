/**
 * The model registry: every trained forest becomes a numbered version with its
 * metrics and lineage; only an Approved version is ever served; every status change
 * is appended to an audit trail. Two backends, chosen by URI: a local directory
 * (default `.pricesense/registry`, or PRICESENSE_REGISTRY) and
 * `sagemaker://<model-package-group>` (SageMaker Model Registry).
 */
export const MODEL_STATUSES = ['PendingManualApproval', 'Approved', 'Rejected'] as const;
export type ModelStatus = (typeof MODEL_STATUSES)[number];

export interface AuditEntry {
  readonly at: string;
  readonly by: string;
  readonly from: ModelStatus | null;
  readonly to: ModelStatus;
  readonly note: string;
  /** Present on an approval that overrode failed (or absent) quality gates. */
  readonly override?: GateOverride;
  /**
   * Present on the entry `pricesense registry migrate` added to a trail written before the
   * audit was hash-chained (from = to: no status change): the entries before it, sealed as
   * found, were not tamper-evident until then.
   */
  readonly genesis?: { readonly legacyEntries: number };
  /**
   * How the entry stands to the hash chain, said by the backend that verified it; absent
   * for an ordinary entry, linked to the one before:
   * - sealed: written before the chain, covered as found by the genesis entry's seal;
   * - unsealed: written before the chain and not covered by it (SageMaker: a chain an
   *   earlier release started without a genesis entry): shown, not tamper-evident;
   * - outside: reconstructed from SageMaker's own record (a registration or a change made
   *   outside pricesense), not part of the chain;
   * - not-applied: linked, but the change it records never reached SageMaker (its
   *   UpdateModelPackage failed or its process stopped): void, the status did not move.
   */
  readonly chain?: ChainStanding;
}

export type ChainStanding = 'sealed' | 'unsealed' | 'outside' | 'not-applied';

/** An approval despite the quality gates: what was overridden, as the registry saw it, and why. */
export interface GateOverride {
  /** The approver's reason for overriding. */
  readonly reason: string;
  /** What the gates said: the failed gates and by how much, or that the version was never evaluated. */
  readonly gates: string;
}

/** Conditions on a status change. */
export interface TransitionOptions {
  /**
   * The status the change was decided on. If the version is in another one when the
   * change is made, nothing changes (ConcurrentChangeError): a decision taken on a stale
   * view never lands on top of someone else's.
   */
  readonly expected?: ModelStatus;
  /**
   * Approving a version whose quality gates failed requires this (GateOverrideRequiredError
   * without it); it may also acknowledge a version with no gate results. Recorded in the
   * audit entry as `override`.
   */
  readonly overrideGates?: { readonly reason: string };
}

export interface Lineage {
  readonly datasetManifestSha256: string | null;
  readonly codeVersion: string | null;
  readonly hyperparameters: Record<string, unknown>;
  readonly registeredBy: string;
  readonly registeredAt: string;
  /** True when registered with --force despite failed quality gates. */
  readonly forced: boolean;
}

export interface ModelVersion {
  readonly version: number;
  readonly status: ModelStatus;
  /** The forest's own content digest (ForestFileV1.sha256: canonical JSON, minus the digest field). */
  readonly forestSha256: string;
  /** SHA-256 (hex) of the stored file's bytes: what fetch() verifies before returning them. */
  readonly artifactSha256: string;
  readonly formatVersion: number;
  readonly metrics: Record<string, unknown>;
  readonly lineage: Lineage;
  /** Where the forest file lives (a local path or an s3:// URI). */
  readonly artifactUri: string;
  /**
   * Oldest first; entry 0 is the registration (from: null). Verified as a hash chain on
   * every read (model/registry/audit-chain.ts).
   */
  readonly audit: AuditEntry[];
  /** What a write wants its caller to see (an upgrade step still to run); only on what register/approve/reject return, and only when there is one. */
  readonly warnings?: readonly string[];
}

export interface RegisterOptions {
  readonly by?: string;
  readonly force?: boolean;
  readonly note?: string;
}

/** A version passed over for serving because its audit trail does not verify. */
export interface BrokenVersion {
  readonly version: number;
  readonly problem: string;
}

export interface ServableResolution {
  /** The newest Approved version whose audit trail verifies. */
  readonly latest: ModelVersion | undefined;
  /** Newer versions passed over because their audit trail does not verify (their status cannot be trusted). */
  readonly broken: BrokenVersion[];
}

/** One version's result in `registry verify`. */
export interface VersionCheck {
  readonly version: number;
  /** As recorded (undefined when the record itself cannot be read). */
  readonly status?: ModelStatus;
  /** Integrity failures: the version is not served while there are any. */
  readonly problems: string[];
  /** Worth knowing, not a failure (e.g. a status changed outside pricesense). */
  readonly warnings: string[];
}

export interface VerifyReport {
  readonly registry: string;
  readonly ok: boolean;
  readonly versions: VersionCheck[];
}

/** What `registry migrate` did to one version. */
export interface VersionMigration {
  readonly version: number;
  /**
   * sealed: a genesis entry now seals the trail written before the chain; resumed: an
   * interrupted migration of it was finished (HEAD written; local, only while the registry's
   * migration is still in progress); chained: nothing to do (its
   * trail is chained already, or it has no entries yet); failed: left untouched, see problem.
   */
  readonly result: 'sealed' | 'resumed' | 'chained' | 'failed';
  /** How many entries written before the chain the genesis entry seals. */
  readonly legacyEntries?: number;
  readonly problem?: string;
}

export interface MigrationReport {
  readonly registry: string;
  /** True when every version is chained now (none failed). */
  readonly ok: boolean;
  readonly versions: VersionMigration[];
}

/** A version's stored bytes with the digest they must have: a forest file, or a model.tar.gz holding forest.json. */
export interface StoredArtifact {
  /** A buffer of its own (no other view shares it): a caller may transfer it to a worker thread. */
  readonly bytes: Buffer;
  /** The registered SHA-256 of `bytes`. */
  readonly sha256: string;
  /** What to call it in errors. */
  readonly source: string;
}

export interface Registry {
  readonly uri: string;
  /** A new version in PendingManualApproval. */
  register(forestPath: string, options?: RegisterOptions): Promise<ModelVersion>;
  approve(version: number, note: string, by?: string, options?: TransitionOptions): Promise<ModelVersion>;
  reject(version: number, note: string, by?: string, options?: TransitionOptions): Promise<ModelVersion>;
  list(filter?: { status?: ModelStatus }): Promise<ModelVersion[]>;
  show(version: number): Promise<ModelVersion>;
  /** The newest Approved version whose audit trail verifies (see latestServable). */
  latestApproved(): Promise<ModelVersion | undefined>;
  /** The newest Approved version whose audit trail verifies, and the newer versions passed over because theirs does not. */
  latestServable(): Promise<ServableResolution>;
  /** The forest file's bytes, after verifying their SHA-256 against the registered digest. */
  fetch(version: number): Promise<Buffer>;
  /**
   * The stored artifact as read, not yet verified: for a reader that verifies and unpacks
   * it off its own thread (openArtifact, in the API's loader worker). fetch() is this
   * followed by openArtifact.
   */
  fetchArtifact(version: number): Promise<StoredArtifact>;
  /** Every version (or only `version`): its audit trail and its stored artifact's digest. */
  verify(options?: { version?: number }): Promise<VerifyReport>;
  /**
   * Seals every trail written before the audit was hash-chained with a genesis entry
   * (only adds; idempotent; safe to re-run after an interruption). Versions already
   * chained are left as they are; a version whose trail does not verify is left
   * untouched and reported.
   * Sealing is once per registry: only versions the registry's chain marker lists as written
   * before the chain, and only until a run has sealed them all (local: CHAIN.json; SageMaker:
   * audit/CHAIN.json and CHAIN-complete.json); any other trail that looks unmigrated is
   * reported as tampered. `acceptUnchained`: versions a person checked against a backup,
   * listed although other versions are already chained and the registry has no marker (a
   * registry upgraded to the first chain-aware pricesense, which wrote none).
   */
  migrate(options?: { by?: string; acceptUnchained?: readonly number[] }): Promise<MigrationReport>;
}
