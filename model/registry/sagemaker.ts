/**
 * The SageMaker Model Registry backend: a model package group holds the versions
 * (Version = ModelPackageVersion, status = ModelApprovalStatus); the bytes live in
 * the lake's S3 backend under artifacts/registry/<group>/.
 *
 * Lake layout, per registration (id = UTC time + random, so keys sort by time):
 *   artifacts/registry/<group>/packages/<id>/forest.json    ModelDataUrl
 *   artifacts/registry/<group>/packages/<id>/metrics.json   ModelMetrics.ModelQuality.Statistics
 *   artifacts/registry/<group>/packages/<id>/lineage.json   full lineage (hyperparameters do not fit
 *                                                          CustomerMetadataProperties' 256-char values)
 *   artifacts/registry/<group>/audit/<version>/<seq>.json   one object per status change
 *
 * Audit trail: SageMaker itself only keeps the current ApprovalDescription and
 * LastModifiedBy/Time (earlier changes only in CloudTrail), so every change made
 * through pricesense also writes one immutable audit object to the lake (S3 has no
 * append; one object per entry is append-only by construction). The objects form a
 * hash chain (model/registry/audit-chain.ts) anchored on the package's immutable facts
 * (ARN, artifact digest, creation time) and verified on every read; SageMaker's
 * ModelApprovalStatus stays the authoritative status and is cross-checked against the
 * chain. A change made outside pricesense (Studio, console) shows up as a final entry
 * reconstructed from LastModifiedBy/Time and ApprovalDescription, marked as such.
 *
 * Objects written before the chain (audit/<version>/<time>-<random>.json, no sequence
 * number) make a version unmigrated until `migrate` creates its genesis entry
 * (audit/<version>/000001.json) sealing them in key order. Sealing is once per group:
 * audit/CHAIN.json, created with If-None-Match: * by the first chain-aware write, lists
 * the versions written before the chain, and audit/CHAIN-complete.json closes sealing once
 * they are all sealed; any other version that looks unmigrated had its history rewritten
 * and is reported as tampered, never sealed (see ensureMarker).
 *
 * Changes are conditional per sequence number (UpdateModelPackage has no condition of
 * its own): a change first creates its entry as audit/<version>/<seq>.json with
 * PutObject If-None-Match: * (Lake.writeIfAbsent), which S3 lets exactly one writer do;
 * the loser gets 412 and fails with ConcurrentChangeError naming the entry that landed,
 * having changed nothing. Only the winner calls UpdateModelPackage; if that fails, it
 * reads SageMaker's status back and withdraws the entry only if the change did not
 * happen. Objects named <seq>-<random>.json were written by the pricesense before this
 * (claims resolved by listing, see resolveClaims) and still read. Such a writer does not
 * see <seq>.json, so after creating it a change also lists <seq>-* and gives way to a
 * claim there; a claim made after that listing is not seen, so every writer of the
 * earlier protocol must be gone before this one writes (docs/registry.md).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  DescribeModelPackageCommand,
  DescribeModelPackageGroupCommand,
  ListModelPackagesCommand,
  SageMakerClient,
  UpdateModelPackageCommand,
  type SageMakerClientConfig,
  type DescribeModelPackageOutput,
  type ListModelPackagesCommandInput,
  type ModelPackageSummary,
  type UserContext,
} from '@aws-sdk/client-sagemaker';
import { configuredSetting } from '../../core/config';
import { isAwsNotFound, translateAwsError } from '../../core/aws-errors';
import { UserError } from '../../core/errors';
import type { Lake } from '../../etl/lake/types';
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
  parseChainMarker,
  publicEntry,
  tamperedTrail,
  UnmigratedVersionError,
  unsealedEntry,
  verifyChain,
  type ChainedEntry,
  type ChainMarker,
  type StoredEntry,
  type VerifiedChain,
} from './audit-chain';
import { RefusedReadError } from '../../core/bounded-read';
import {
  actor,
  artifactLimit,
  artifactRefused,
  type ArtifactLimitOptions,
  assertTransition,
  assertVersionNumber,
  CorruptVersionError,
  gateOverrideOf,
  MAX_AUDIT_ENTRY_BYTES,
  MAX_TRAIL_BYTES,
  MAX_RECORD_BYTES,
  openArtifact,
  readCandidate,
  sha256Hex,
  trailOverBudget,
  VersionNotFoundError,
  withWarning,
} from './common';
import {
  MODEL_STATUSES,
  type AuditEntry,
  type BrokenVersion,
  type Lineage,
  type MigrationReport,
  type ModelStatus,
  type ModelVersion,
  type RegisterOptions,
  type Registry,
  type ServableResolution,
  type StoredArtifact,
  type TransitionOptions,
  type VersionCheck,
  type VersionMigration,
  type VerifyReport,
} from './types';

/** SDK attempts per request (1 + retries) for throttling and transient errors; adaptive mode also rate-limits the client. */
export const SAGEMAKER_MAX_ATTEMPTS = 8;
const GROUP_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
const META = 'pricesense:';
/** Describes in flight at once when listing: enough to be quick, few enough not to hit the API's rate limit. */
const DESCRIBE_CONCURRENCY = 4;
/** Approved packages per ListModelPackages page in latestServable. */
const LATEST_PAGE = 20;
/**
 * How long a claimed audit entry may wait for its UpdateModelPackage: within it a chain
 * ahead of SageMaker is a change in progress, after it a change that did not complete
 * (SageMaker's status stands).
 */
const CLAIM_WINDOW_MS = 120_000;
/** <seq>.json (conditional create), or <seq>-<random>.json (a claim of the earlier list-and-withdraw protocol). */
const AUDIT_KEY = /\/audit\/(\d{6})\/(\d{6})(?:-[0-9a-f]+)?\.json$/;
/** <seq>.json: an entry created with If-None-Match: * (this protocol). */
const CONDITIONAL_KEY = /\/\d{6}\.json$/;
/** The group's chain marker and the object that closes sealing (see readMarker), under audit/. */
const MARKER_FILE = 'CHAIN.json';
const MARKER_COMPLETE = 'CHAIN-complete.json';
/** <entry time, compact ISO>-<random>.json: an entry written before the chain (no sequence number), sealed by `registry migrate`. */
const LEGACY_AUDIT_KEY = /\/audit\/(\d{6})\/\d{8}T\d{9}Z-[0-9a-f]{8}\.json$/;

export interface SageMakerRegistryOptions extends ArtifactLimitOptions {
  /** The lake holding artifacts; must be an S3 lake (ModelDataUrl is an s3:// URI). */
  readonly lake: Lake;
  readonly client?: SageMakerClient;
  /** The API container image for InferenceSpecification; default PRICESENSE_IMAGE. */
  readonly image?: string;
}

interface LineageDocument {
  readonly forestSha256: string;
  readonly artifactSha256: string;
  readonly formatVersion: number;
  readonly lineage: Lineage;
}

export function assertGroupName(group: string): void {
  if (!GROUP_NAME.test(group)) {
    throw new UserError(
      `invalid SageMaker model package group name '${group}': 1-63 letters, digits and hyphens, starting and ending with a letter or digit`,
    );
  }
}

/** The default client: region and credentials from the environment, adaptive retries. Overrides are for tests and custom endpoints. */
export function createSageMakerClient(overrides: SageMakerClientConfig = {}): SageMakerClient {
  return new SageMakerClient({ maxAttempts: SAGEMAKER_MAX_ATTEMPTS, retryMode: 'adaptive', ...overrides });
}

export class SageMakerRegistry implements Registry {
  readonly uri: string;
  readonly group: string;
  private readonly lake: Lake;
  private readonly client: SageMakerClient;
  private readonly image: string | undefined;
  private readonly artifactLimit: { readonly maxBytes: number; readonly name: string };
  private readonly witness = new ChainWitness();
  private groupArn: string | undefined;

  constructor(group: string, options: SageMakerRegistryOptions) {
    assertGroupName(group);
    if (options.lake.kind !== 's3') {
      throw new UserError(
        `the SageMaker registry stores artifacts in an S3 lake, but the lake is ${options.lake.root} (local). Set PRICESENSE_LAKE=s3://bucket/prefix.`,
      );
    }
    this.group = group;
    this.uri = `sagemaker://${group}`;
    this.lake = options.lake;
    this.artifactLimit = artifactLimit(options);
    this.client = options.client ?? createSageMakerClient();
    this.image = configuredSetting('image', options.image);
  }

  private get prefix(): string {
    return `artifacts/registry/${this.group}`;
  }

  async register(forestPath: string, options: RegisterOptions = {}): Promise<ModelVersion> {
    const candidate = await readCandidate(forestPath, options);
    if (!this.image) {
      throw new UserError('registering in SageMaker needs the API container image: set PRICESENSE_IMAGE (e.g. <account>.dkr.ecr.<region>.amazonaws.com/pricesense-api:<tag>)');
    }
    await this.ensureGroup();
    const warning = await this.markerForWrite();

    const id = `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
    const base = `${this.prefix}/packages/${id}`;
    const metricsBody = `${JSON.stringify(candidate.forest.metrics, null, 2)}\n`;
    const lineageDoc: LineageDocument = {
      forestSha256: candidate.forest.sha256,
      artifactSha256: candidate.artifactSha256,
      formatVersion: candidate.forest.formatVersion,
      lineage: candidate.lineage,
    };
    // Created conditionally (a fresh key): a store without conditional writes is refused here, before SageMaker is touched.
    if (!(await this.createObject(`${base}/lineage.json`, `${JSON.stringify(lineageDoc, null, 2)}\n`))) throw new Error(`${this.lake.uri(base)} already exists`);
    await this.lake.write(`${base}/forest.json`, candidate.bytes);
    await this.lake.write(`${base}/metrics.json`, metricsBody);

    const l = candidate.lineage;
    const created = await this.call('CreateModelPackage', this.group, () =>
      this.client.send(
        new CreateModelPackageCommand({
          ModelPackageGroupName: this.group,
          ModelPackageDescription: description(candidate.note || `pricesense forest ${candidate.forest.sha256.slice(0, 12)}`),
          InferenceSpecification: {
            Containers: [{ Image: this.image, ModelDataUrl: this.lake.uri(`${base}/forest.json`) }],
            SupportedContentTypes: ['application/json'],
            SupportedResponseMIMETypes: ['application/json'],
          },
          ModelApprovalStatus: 'PendingManualApproval',
          ModelMetrics: {
            ModelQuality: {
              Statistics: {
                ContentType: 'application/json',
                S3Uri: this.lake.uri(`${base}/metrics.json`),
                ContentDigest: `sha256:${sha256Hex(metricsBody)}`,
              },
            },
          },
          CustomerMetadataProperties: {
            [`${META}forestSha256`]: candidate.forest.sha256,
            [`${META}artifactSha256`]: candidate.artifactSha256,
            [`${META}formatVersion`]: String(candidate.forest.formatVersion),
            [`${META}datasetManifestSha256`]: l.datasetManifestSha256 ?? 'none',
            [`${META}codeVersion`]: metaValue(l.codeVersion ?? 'unknown'),
            [`${META}registeredBy`]: metaValue(l.registeredBy),
            [`${META}forced`]: String(l.forced),
            [`${META}lineage`]: metaValue(this.lake.uri(`${base}/lineage.json`)),
          },
          // Same token on every SDK retry: a retried request that had in fact succeeded does not create a second version.
          ClientToken: randomUUID(),
        }),
      ),
    );
    const described = await this.describe(created.ModelPackageArn!);
    const version = described.ModelPackageVersion!;
    const registration: ChainedEntry = { seq: 1, prev: anchorOf(described), at: l.registeredAt, by: l.registeredBy, from: null, to: 'PendingManualApproval', note: candidate.note };
    if (!(await this.createEntry(version, registration))) {
      throw new AuditChainError(version, `${this.lake.uri(this.entryKey(version, 1))} existed before this registration wrote it (the package is new: a hand-made object?)`);
    }
    return withWarning(await this.toModelVersion(described, await this.readChain(described)), warning);
  }

  approve(version: number, note: string, by?: string, options: TransitionOptions = {}): Promise<ModelVersion> {
    return this.transition(version, 'Approved', note, by, options);
  }

  reject(version: number, note: string, by?: string, options: TransitionOptions = {}): Promise<ModelVersion> {
    return this.transition(version, 'Rejected', note, by, options);
  }

  async list(filter: { status?: ModelStatus } = {}): Promise<ModelVersion[]> {
    const summaries = await this.listAll(filter.status);
    const audits = await this.readAuditObjects(`${this.prefix}/audit/`);
    const out = await mapLimit(summaries, DESCRIBE_CONCURRENCY, async (s) => {
      const d = await this.describe(s.ModelPackageArn!);
      return this.toModelVersion(d, await this.readChain(d, audits.get(d.ModelPackageVersion!) ?? []));
    });
    return out.sort((a, b) => a.version - b.version);
  }

  async show(version: number): Promise<ModelVersion> {
    assertVersionNumber(version);
    const d = await this.describe(await this.packageArn(version), version);
    return this.toModelVersion(d, await this.readChain(d));
  }

  async latestApproved(): Promise<ModelVersion | undefined> {
    return (await this.latestServable()).latest;
  }

  /**
   * The newest (highest version, i.e. latest CreationTime) Approved package whose audit
   * chain verifies; rejecting it rolls back to the previous approved one. The filtered
   * listing may return an empty page that still has a NextToken, so pages are followed
   * until a package is found or the list is exhausted — an empty page is not "nothing
   * approved".
   */
  async latestServable(): Promise<ServableResolution> {
    const broken: BrokenVersion[] = [];
    let next: string | undefined;
    do {
      const page = await this.listPage({
        ModelPackageGroupName: this.group,
        ModelApprovalStatus: 'Approved',
        SortBy: 'CreationTime',
        SortOrder: 'Descending',
        MaxResults: LATEST_PAGE,
        ...(next ? { NextToken: next } : {}),
      });
      if (!page) break;
      for (const summary of page.ModelPackageSummaryList ?? []) {
        const d = await this.describe(summary.ModelPackageArn!);
        // Approved when listed; the describe is newer.
        if (statusOf(d) !== 'Approved') continue;
        try {
          return { latest: await this.toModelVersion(d, await this.readChain(d)), broken };
        } catch (err) {
          // One unreadable package must not freeze polling: pass over it; an unreachable service still fails the poll.
          if (!(err instanceof AuditChainError || err instanceof CorruptVersionError)) throw err;
          broken.push({ version: err.version, problem: err.problem });
        }
      }
      next = page.NextToken;
    } while (next);
    return { latest: undefined, broken };
  }

  async fetch(version: number): Promise<Buffer> {
    return await openArtifact(await this.fetchArtifact(version));
  }

  async fetchArtifact(version: number): Promise<StoredArtifact> {
    const v = await this.show(version);
    const key = this.keyOf(v.artifactUri);
    if (key === undefined) {
      throw new UserError(`version ${version}'s artifact ${v.artifactUri} is outside the lake ${this.lake.root}; point PRICESENSE_LAKE at the lake it was registered with`);
    }
    // Pipeline-registered versions point at the evaluate step's model.tar.gz: the digest covers the archive.
    return { bytes: await this.readArtifact(version, key), sha256: v.artifactSha256, source: `version ${version} (${v.artifactUri})` };
  }

  private async readArtifact(version: number, key: string): Promise<Buffer> {
    try {
      return await this.lake.read(key, { maxBytes: this.artifactLimit.maxBytes });
    } catch (err) {
      if (err instanceof RefusedReadError) throw artifactRefused(version, this.lake.uri(key), err, this.artifactLimit.name);
      throw err;
    }
  }

  async verify(options: { version?: number } = {}): Promise<VerifyReport> {
    if (options.version !== undefined) {
      assertVersionNumber(options.version);
      const d = await this.describe(await this.packageArn(options.version), options.version);
      return this.report([await this.checkPackage(d)]);
    }
    const summaries = await this.listAll();
    const audits = await this.readAuditObjects(`${this.prefix}/audit/`);
    const versions = await mapLimit(summaries, DESCRIBE_CONCURRENCY, async (summary) => {
      const d = await this.describe(summary.ModelPackageArn!);
      return this.checkPackage(d, audits.get(d.ModelPackageVersion!) ?? []);
    });
    versions.sort((a, b) => a.version - b.version);
    return this.report(versions);
  }

  private report(versions: VersionCheck[]): VerifyReport {
    return { registry: this.uri, ok: versions.every((v) => v.problems.length === 0), versions };
  }

  /** One package: its audit chain, its status against the chain, its artifact's digest. */
  private async checkPackage(d: DescribeModelPackageOutput, audits?: VersionAudit): Promise<VersionCheck> {
    const problems: string[] = [];
    const warnings: string[] = [];
    const version = d.ModelPackageVersion!;
    let status: ModelStatus | undefined;
    try {
      status = statusOf(d);
      const chain = await this.readChain(d, audits);
      const v = await this.toModelVersion(d, chain);
      const last = chain.entries.at(-1);
      const voided = notApplied(chain, d);
      const applied = chain.entries.filter((e) => !voided.has(e.seq)).at(-1);
      if (chain.unsealedObjects > 0) {
        const n = chain.unsealedObjects;
        const unreadable = n - chain.unsealed.length;
        warnings.push(
          `${n} audit object${n === 1 ? '' : 's'} under ${this.lake.uri(this.auditPrefix(version))} written before the chain ${n === 1 ? 'is' : 'are'} not sealed by it (an earlier release started the chain without a genesis entry): shown as unsealed, not tamper-evident${unreadable > 0 ? `; ${unreadable} of them ${unreadable === 1 ? 'is' : 'are'} not a well-formed entry and not shown` : ''}`,
        );
      }
      // A `voids` link is the next writer's word, not a proof: every one is said, so a relabelled change never goes unseen.
      for (const e of chain.entries) {
        if (e.voids === undefined) continue;
        const v = chain.entries.find((x) => x.seq === e.voids)!;
        const said = `audit entry ${e.seq} (by ${e.by} at ${e.at}) says entry ${v.seq} (${v.from} -> ${v.to} by ${v.by} at ${v.at}) was not applied`;
        if (e === last && falseVoid(last, d)) {
          problems.push(
            `${said}, but SageMaker was already ${status} before entry ${e.seq} was written (last modified ${d.LastModifiedTime?.toISOString() ?? '?'}) and not changed since: entry ${v.seq} was applied and entry ${e.seq} is a hand-made entry (shown as not applied); check who can write ${this.lake.uri(this.auditPrefix(version))}`,
          );
        } else warnings.push(`${said}; a void is the next writer's claim (SageMaker keeps no history): check it against CloudTrail's UpdateModelPackage events if in doubt`);
      }
      if (!last) warnings.push('registered outside pricesense (e.g. by the pipeline): no audit entries until its first change through pricesense');
      else if (lastIsVoid(last, d)) {
        warnings.push(
          `audit entry ${last.seq} (${last.from} -> ${last.to} by ${last.by} at ${last.at}) was not applied: SageMaker says ${status} and was not modified after it was written (its UpdateModelPackage failed, or the process stopped before it); it is shown as not applied, and the next change records that`,
        );
      } else if (applied && applied.to !== status && !inProgress(last, d)) {
        warnings.push(`SageMaker says ${status}, the audit trail ends at ${applied.to}: changed outside pricesense (${userName(d.LastModifiedBy)} at ${d.LastModifiedTime?.toISOString() ?? '?'}) or a change that did not complete`);
      }
      const key = this.keyOf(v.artifactUri);
      if (key === undefined) problems.push(`artifact ${v.artifactUri} is outside the lake ${this.lake.root}`);
      else {
        const bytes = await this.readArtifact(version, key);
        if (sha256Hex(bytes) !== v.artifactSha256) problems.push(`artifact ${v.artifactUri} hashes to ${sha256Hex(bytes)}, registered ${v.artifactSha256}`);
      }
    } catch (err) {
      problems.push(err instanceof AuditChainError ? err.problem : err instanceof Error ? err.message : String(err));
    }
    return { version, status, problems, warnings };
  }

  /**
   * A conditional change: decided on the status SageMaker reports now, applied only if
   * no other change creates the next audit entry first (see the file comment).
   */
  private async transition(version: number, to: ModelStatus, note: string, by: string | undefined, options: TransitionOptions): Promise<ModelVersion> {
    assertVersionNumber(version);
    const arn = await this.packageArn(version);
    const who = actor(by);
    const before = await this.describe(arn, version);
    const from = statusOf(before);
    const chain = await this.readChain(before);
    const lastEntry = chain.entries.at(-1);
    assertExpected(version, from, options, lastEntry?.to === from ? lastEntry : { by: userName(before.LastModifiedBy), at: before.LastModifiedTime?.toISOString() ?? '?' });
    assertTransition(version, from, to);
    if (inProgress(lastEntry, before)) throw new ConcurrentChangeError(version, from, undefined);
    const override = gateOverrideOf(version, to, await this.metricsOf(before), options);
    const warning = await this.markerForWrite();
    // A last entry SageMaker never took stays in the chain (it is linked onto); this entry records that it was void
    // (only when the status is still where that change started, which is what readers accept as a void: see verifyChain).
    const voids = lastIsVoid(lastEntry, before) && lastEntry!.from === from ? lastEntry!.seq : undefined;
    const entry: ChainedEntry = { seq: chain.entries.length + 1, prev: chain.hashes.at(-1) ?? anchorOf(before), at: new Date().toISOString(), by: who, from, to, note: note.trim(), override, voids };
    // The condition: of two changes decided on the same trail, exactly one creates entry <seq>.
    const claim = this.entryKey(version, entry.seq);
    if (!(await this.createEntry(version, entry))) {
      const landed = await this.readIfPresent(claim);
      throw new ConcurrentChangeError(version, from, landed && peek(landed));
    }
    // A writer of the earlier claim protocol cannot see <seq>.json (it lists <seq>-* only): if its claim is there, it goes ahead, so this change gives way.
    // Only to a live one: a claim older than the claim window is a leftover of a writer that died (resolveClaims passes
    // over it in favour of <seq>.json), and giving way to it would block every later change for good.
    const rival = await this.liveRivalClaim(version, entry.seq);
    if (rival) {
      await this.deleteClaim(claim, `another pricesense, of a release before conditional audit writes, claimed entry ${entry.seq} of version ${version} at the same moment (${this.lake.uri(rival)}), so this change was not applied`);
      // Its change may not have reached SageMaker yet: say it is in progress, not a status SageMaker may not have.
      throw new ConcurrentChangeError(version, from, undefined);
    }
    try {
      await this.call('UpdateModelPackage', arn, () =>
        this.client.send(
          new UpdateModelPackageCommand({ ModelPackageArn: arn, ModelApprovalStatus: to, ApprovalDescription: description(`${note.trim()}${override ? ` [GATE OVERRIDE: ${override.reason}]` : ''} (by ${who})`) }),
        ),
      );
    } catch (err) {
      await this.withdrawClaim(version, arn, from, to, claim, err);
    }
    return withWarning(await this.show(version), warning);
  }

  /** A claim of the earlier protocol at entry `seq` younger than the claim window (a writer that may still be going ahead). */
  private async liveRivalClaim(version: number, seq: number): Promise<string | undefined> {
    for (const o of await this.lake.list(`${this.auditPrefix(version)}${pad(seq)}-`)) {
      const bytes = await this.readIfPresent(o.key);
      const e = bytes && peek(bytes);
      if (e && typeof e.at === 'string' && isRecent(e)) return o.key;
    }
    return undefined;
  }

  /**
   * After UpdateModelPackage failed: the change may still have been applied (the response
   * was lost). SageMaker's status decides: still `from`, the change did not happen and its
   * entry is withdrawn (this process created it; nothing links to it yet), then the error
   * stands; now `to`, it happened and the entry stays (returns). A withdrawal that fails,
   * or a status that cannot be read back, is said, never swallowed: the entry would record
   * a change that never happened.
   */
  private async withdrawClaim(version: number, arn: string, from: ModelStatus, to: ModelStatus, claim: string, err: unknown): Promise<void> {
    const failure = err instanceof Error ? err.message : String(err);
    let now: ModelStatus;
    try {
      now = statusOf(await this.describe(arn, version));
    } catch (again) {
      throw new UserError(
        `${failure}. SageMaker's status could not be read back (${again instanceof Error ? again.message : String(again)}), so the audit entry ${this.lake.uri(claim)} this change created was left in place: if version ${version} is still ${from} in SageMaker, delete that object by hand before the next change`,
        err instanceof UserError ? err.kind : 'integrity',
      );
    }
    if (now === to && to !== from) return;
    await this.deleteClaim(claim, `${failure}. The change was not applied (SageMaker still shows ${now})`);
    throw err;
  }

  /**
   * Withdraws the audit entry this process created for a change that was not applied
   * (nothing links to it yet). A failed delete is said, never swallowed: the entry would
   * record a change that did not happen.
   */
  private async deleteClaim(claim: string, why: string): Promise<void> {
    try {
      await this.lake.delete(claim);
    } catch (del) {
      throw new UserError(
        `${why}, but its audit entry ${this.lake.uri(claim)} could not be withdrawn (${del instanceof Error ? del.message : String(del)}): it records a change that did not happen; delete that object by hand before the next change`,
        'integrity',
      );
    }
  }

  private async ensureGroup(): Promise<string> {
    if (this.groupArn) return this.groupArn;
    const existing = await this.describeGroup();
    if (existing) return existing;
    try {
      await this.call('CreateModelPackageGroup', this.group, () =>
        this.client.send(
          new CreateModelPackageGroupCommand({
            ModelPackageGroupName: this.group,
            ModelPackageGroupDescription: 'pricesense price-sensitivity forests (created by pricesense registry)',
          }),
        ),
      );
    } catch (err) {
      // Another registrant created it between our Describe and Create: that is the goal.
      if (!/already exists/i.test(String((err as Error).message))) throw err;
    }
    const arn = await this.describeGroup();
    if (!arn) throw new Error(`SageMaker model package group ${this.group} still missing after CreateModelPackageGroup`);
    return arn;
  }

  private async describeGroup(): Promise<string | undefined> {
    try {
      const out = await this.call('DescribeModelPackageGroup', this.group, () =>
        this.client.send(new DescribeModelPackageGroupCommand({ ModelPackageGroupName: this.group })),
      );
      this.groupArn = out.ModelPackageGroupArn;
      return this.groupArn;
    } catch (err) {
      if (isAwsNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A versioned package's ARN is its group's ARN with model-package-group/ replaced, plus /<version>. */
  private async packageArn(version: number): Promise<string> {
    const groupArn = this.groupArn ?? (await this.describeGroup());
    if (!groupArn) throw new VersionNotFoundError(version, `version ${version} not found: SageMaker model package group ${this.group} does not exist yet`);
    return `${groupArn.replace(':model-package-group/', ':model-package/')}/${version}`;
  }

  private async describe(arn: string, version?: number): Promise<DescribeModelPackageOutput> {
    try {
      return await this.call('DescribeModelPackage', arn, () => this.client.send(new DescribeModelPackageCommand({ ModelPackageName: arn })));
    } catch (err) {
      if (version !== undefined && isAwsNotFound(err)) throw new VersionNotFoundError(version, `version ${version} not found in SageMaker model package group ${this.group}`);
      throw err;
    }
  }

  /** Every package of the group (with that status), oldest first; none when the group does not exist. */
  private async listAll(status?: ModelStatus): Promise<ModelPackageSummary[]> {
    const summaries: ModelPackageSummary[] = [];
    let next: string | undefined;
    do {
      const page = await this.listPage({
        ModelPackageGroupName: this.group,
        ...(status ? { ModelApprovalStatus: status } : {}),
        SortBy: 'CreationTime',
        SortOrder: 'Ascending',
        MaxResults: 100,
        ...(next ? { NextToken: next } : {}),
      });
      if (!page) break;
      summaries.push(...(page.ModelPackageSummaryList ?? []));
      next = page.NextToken;
    } while (next);
    return summaries;
  }

  private async listPage(input: ListModelPackagesCommandInput) {
    try {
      return await this.call('ListModelPackages', this.group, () => this.client.send(new ListModelPackagesCommand(input)));
    } catch (err) {
      if (isAwsNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The package's recorded evaluation (metrics.json in the lake), {} when it has none. */
  private async metricsOf(d: DescribeModelPackageOutput): Promise<Record<string, unknown>> {
    const metricsUri = d.ModelMetrics?.ModelQuality?.Statistics?.S3Uri;
    const metricsKey = metricsUri ? this.keyOf(metricsUri) : undefined;
    return metricsKey ? await this.readJsonOf<Record<string, unknown>>(d.ModelPackageVersion!, metricsKey) : {};
  }

  private async toModelVersion(d: DescribeModelPackageOutput, chain: PackageTrail): Promise<ModelVersion> {
    const version = d.ModelPackageVersion!;
    const meta = d.CustomerMetadataProperties ?? {};
    const artifactUri = d.InferenceSpecification?.Containers?.[0]?.ModelDataUrl ?? '';
    const artifactSha256 = meta[`${META}artifactSha256`];
    if (!artifactSha256) {
      throw new CorruptVersionError(version, `SageMaker model package ${d.ModelPackageArn} was not registered by pricesense (no ${META}artifactSha256 metadata)`);
    }
    const lineageKey = this.keyOf(meta[`${META}lineage`] ?? '');
    const lineageDoc = lineageKey ? await this.readJsonOf<LineageDocument>(version, lineageKey) : undefined;
    const metrics = await this.metricsOf(d);
    const status = statusOf(d);
    return {
      version,
      status,
      forestSha256: meta[`${META}forestSha256`] ?? lineageDoc?.forestSha256 ?? '',
      artifactSha256,
      formatVersion: Number(meta[`${META}formatVersion`] ?? lineageDoc?.formatVersion),
      metrics,
      lineage: lineageDoc?.lineage ?? {
        datasetManifestSha256: nullIfNone(meta[`${META}datasetManifestSha256`]),
        codeVersion: nullIfNone(meta[`${META}codeVersion`]),
        hyperparameters: {},
        registeredBy: meta[`${META}registeredBy`] ?? userName(d.CreatedBy),
        registeredAt: d.CreationTime?.toISOString() ?? '',
        forced: meta[`${META}forced`] === 'true',
      },
      artifactUri,
      audit: reconcileAudit(d, chain, status),
    };
  }

  /** A version's JSON object in the lake; missing or unparsable is that version's defect, an unreachable lake is not. */
  private async readJsonOf<T>(version: number, key: string): Promise<T> {
    let bytes: Buffer;
    try {
      bytes = await this.lake.read(key, { maxBytes: MAX_RECORD_BYTES });
    } catch (err) {
      if (err instanceof RefusedReadError) throw new CorruptVersionError(version, err.message);
      if ((err as { code?: string }).code === 'NoSuchKey' || (err as { code?: string }).code === 'ENOENT') throw new CorruptVersionError(version, `${this.lake.uri(key)} is missing`);
      throw err;
    }
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (err) {
      throw new CorruptVersionError(version, `${this.lake.uri(key)} is not valid JSON: ${(err as Error).message}`);
    }
  }

  private auditPrefix(version: number): string {
    return `${this.prefix}/audit/${pad(version)}/`;
  }

  private entryKey(version: number, seq: number): string {
    return `${this.auditPrefix(version)}${pad(seq)}.json`;
  }

  /**
   * Creates audit entry `seq` unless one exists (PutObject If-None-Match: *): false, having
   * written nothing, when another writer created it first.
   */
  private createEntry(version: number, entry: ChainedEntry): Promise<boolean> {
    return this.createObject(this.entryKey(version, entry.seq), encodeEntry(entry));
  }

  /** Lake.writeIfAbsent, with the registry's reason when the store cannot do it. */
  private async createObject(key: string, body: Buffer | string): Promise<boolean> {
    try {
      return await this.lake.writeIfAbsent(key, body);
    } catch (err) {
      if ((err as { code?: string }).code !== 'NoConditionalWrites') throw err;
      throw new UserError(
        `the S3 store behind ${this.lake.root} ignores conditional writes (PutObject If-None-Match: *), so two concurrent changes to one version could both be recorded; ` +
          'the SageMaker registry needs AWS S3 (conditional writes since August 2024) or a store that honours If-None-Match. Nothing was changed in SageMaker.',
      );
    }
  }

  /**
   * The audit objects under a prefix, by version: the whole group's (one listing for
   * `list` and `verify`) or one version's.
   */
  private async readAuditObjects(prefix: string): Promise<Map<number, VersionAudit>> {
    const listed = (await this.lake.list(prefix)).filter((o) => AUDIT_KEY.test(o.key) || LEGACY_AUDIT_KEY.test(o.key));
    const versionOf = (key: string) => Number((AUDIT_KEY.exec(key) ?? LEGACY_AUDIT_KEY.exec(key)!)[1]);
    // Budgeted from the listing before anything is read: a version over it is refused whole (its trail does not verify).
    const sizes = new Map<number, number[]>();
    for (const o of listed) {
      const v = versionOf(o.key);
      const list = sizes.get(v);
      if (list) list.push(o.size);
      else sizes.set(v, [o.size]);
    }
    const byVersion = new Map<number, VersionAudit>();
    for (const [v, s] of sizes) {
      const problem = trailOverBudget(this.lake.uri(this.auditPrefix(v)), s);
      if (problem !== undefined) byVersion.set(v, Object.assign([] as AuditObject[], { overBudget: problem }));
    }
    const objects = listed.filter((o) => !byVersion.has(versionOf(o.key)));
    // The listing's sizes are a claim: an object can be rewritten larger between the LIST and
    // its GET. So each version's trail also keeps a running total of the bytes actually read,
    // and stops reading (and drops what it held) once past the budget. What one read holds is
    // then MAX_TRAIL_BYTES per version plus the reads in flight (8 × MAX_AUDIT_ENTRY_BYTES).
    const refuse = (v: number, problem: string) => byVersion.set(v, Object.assign([] as AuditObject[], { overBudget: problem }));
    const readBytes = new Map<number, number>();
    const kept = new Map<number, { index: number; object: AuditObject }[]>();
    await mapLimit(
      objects.map((o, index) => ({ o, index })),
      8,
      async ({ o, index }) => {
        const v = versionOf(o.key);
        if (byVersion.has(v)) return; // refused already: the rest is not read
        let bytes: Buffer | undefined;
        try {
          bytes = await this.readIfPresent(o.key, MAX_AUDIT_ENTRY_BYTES);
        } catch (err) {
          // Replaced by a larger object (or something that is not an object) since the listing.
          if (err instanceof RefusedReadError) {
            refuse(v, err.message);
            kept.delete(v);
            return;
          }
          throw err;
        }
        if (!bytes || byVersion.has(v)) return;
        const total = (readBytes.get(v) ?? 0) + bytes.length;
        readBytes.set(v, total);
        if (total > MAX_TRAIL_BYTES) {
          refuse(v, `${this.lake.uri(this.auditPrefix(v))} holds more than ${MAX_TRAIL_BYTES.toLocaleString('en-US')} bytes of audit entries (MAX_TRAIL_BYTES), more than its listing said; the rest was not read`);
          kept.delete(v);
          return;
        }
        const chained = AUDIT_KEY.exec(o.key);
        let list = kept.get(v);
        if (!list) kept.set(v, (list = []));
        list.push({ index, object: { key: o.key, seq: chained ? Number(chained[2]) : 0, bytes } });
      },
    );
    // In listing order, whatever order the reads finished in.
    for (const [v, list] of kept) byVersion.set(v, list.sort((a, b) => a.index - b.index).map((e) => e.object));
    return byVersion;
  }

  /**
   * The package's audit chain, verified: resolved from its objects (see resolveClaims),
   * anchored on the package's immutable facts, and checked against what this process
   * saw before. A package registered through pricesense must start with its
   * registration entry; one registered elsewhere (the pipeline) may have no entries.
   */
  private async readChain(d: DescribeModelPackageOutput, known?: VersionAudit): Promise<PackageTrail> {
    const version = d.ModelPackageVersion!;
    const all = known ?? (await this.readAuditObjects(this.auditPrefix(version))).get(version) ?? [];
    if (all.overBudget !== undefined) throw new AuditChainError(version, all.overBudget);
    const objects = all.filter((o) => o.seq > 0);
    const byPricesense = (d.CustomerMetadataProperties ?? {})[`${META}lineage`] !== undefined;
    const legacy = this.legacyOf(all);
    const none: PackageTrail = { entries: [], hashes: [], legacy: [], unsealed: [], unsealedObjects: 0 };
    if (objects.length === 0 && legacy.length === 0) {
      if (byPricesense) throw new AuditChainError(version, `no audit entries under ${this.lake.uri(this.auditPrefix(version))} although pricesense registered it (the registration entry was deleted)`);
      return none;
    }
    const stored = resolveClaims(objects, d, (k) => this.lake.uri(k));
    if (stored.length === 0 && legacy.length === 0 && !byPricesense) return none;
    // Legacy objects count when the chain is theirs: none yet (unmigrated) or one starting with the genesis entry that sealed them.
    // A chain an earlier release started without a genesis leaves them outside it: shown as unsealed, never as part of it.
    const sealed = stored.length === 0 || peek(stored[0].bytes)?.genesis !== undefined;
    let chain: VerifiedChain;
    try {
      chain = verifyChain(version, stored, anchorOf(d), { firstIsRegistration: byPricesense, legacy: sealed ? legacy : [], registry: this.uri, voidAfterMs: CLAIM_WINDOW_MS });
    } catch (err) {
      if (!(err instanceof UnmigratedVersionError)) throw err;
      const marker = await markerForVersion(version, () => this.readMarker());
      if (marker && !(marker.open && marker.legacy.includes(version))) throw this.tampered(version, marker);
      throw err;
    }
    // A claim still ahead of SageMaker may yet be withdrawn: the witness only holds settled entries.
    this.witness.check(version, chain, inProgress(chain.entries.at(-1), d) ? chain.entries.length - 1 : chain.entries.length);
    const unsealed = sealed ? [] : legacy.map(unsealedEntry).filter((e): e is AuditEntry => e !== undefined);
    return { ...chain, unsealed, unsealedObjects: sealed ? 0 : legacy.length };
  }

  /** The objects written before the chain, in key (= time) order, which is the order the genesis entry seals them in. */
  private legacyOf(objects: readonly AuditObject[]): StoredEntry[] {
    return objects
      .filter((o) => o.seq === 0)
      .sort((a, b) => a.key.localeCompare(b.key))
      .map((o) => ({ seq: 0, bytes: o.bytes, where: `audit object ${this.lake.uri(o.key)} (written before the chain)` }));
  }

  /**
   * Seals each package's audit objects written before the chain with a genesis entry,
   * audit/<version>/000001.json, created with If-None-Match: * (so of two concurrent
   * migrations one writes it; the other finds the version chained). Its from and to are
   * SageMaker's status (the authority); its link covers the package's anchor and the
   * legacy objects in key order. One object: nothing to resume, nothing rewritten.
   * Only versions the group's marker lists are sealed, and only while sealing is open
   * (see ensureMarker); after a run in which none failed, CHAIN-complete.json closes it.
   */
  async migrate(options: { by?: string; acceptUnchained?: readonly number[] } = {}): Promise<MigrationReport> {
    const by = actor(options.by);
    const marker = await this.ensureMarker(options.acceptUnchained);
    const summaries = await this.listAll();
    const audits = await this.readAuditObjects(`${this.prefix}/audit/`);
    const versions = await mapLimit(summaries, DESCRIBE_CONCURRENCY, async (summary): Promise<VersionMigration> => {
      const d = await this.describe(summary.ModelPackageArn!);
      const version = d.ModelPackageVersion!;
      const objects = audits.get(version) ?? [];
      try {
        // readChain refuses, as tampering, an unmigrated version the marker does not let this run seal.
        const chain = await this.readChain(d, objects).catch(async (err: unknown) => {
          if (!(err instanceof UnmigratedVersionError)) throw err;
          const legacy = this.legacyOf(objects);
          if (await this.createEntry(version, genesisEntry(1, anchorOf(d), legacy, statusOf(d), by))) return undefined;
          return this.readChain(d); // a concurrent migration sealed it first
        });
        if (chain === undefined) return { version, result: 'sealed', legacyEntries: this.legacyOf(objects).length };
        const genesis = chain.entries[0]?.genesis;
        return { version, result: 'chained', ...(genesis ? { legacyEntries: genesis.legacyEntries } : {}) };
      } catch (err) {
        if (!(err instanceof AuditChainError || err instanceof CorruptVersionError)) throw err;
        return { version, result: 'failed', problem: err.problem };
      }
    });
    versions.sort((a, b) => a.version - b.version);
    const ok = versions.every((v) => v.result !== 'failed');
    // Sealing closes for good once every listed version is sealed; a version that failed keeps it open until it is fixed.
    if (ok && marker.open) await this.createObject(this.markerKey(MARKER_COMPLETE), `${JSON.stringify({ layout: CHAIN_MARKER_LAYOUT, state: 'complete', legacy: marker.legacy, by })}\n`);
    return { registry: this.uri, ok, versions };
  }

  private markerKey(name: string): string {
    return `${this.prefix}/audit/${name}`;
  }

  /**
   * The group's chain marker (audit-chain.ts, ChainMarker): audit/CHAIN.json, created once
   * with If-None-Match: *, listing the versions written before the chain; sealing them is
   * closed by its state `complete` or, once they are sealed, by audit/CHAIN-complete.json
   * (also created once). Both objects are never rewritten, so S3 Object Lock or a policy
   * denying overwrites and deletes on the audit prefix protects them like the entries.
   */
  private async readMarker(): Promise<SealingState | undefined> {
    const key = this.markerKey(MARKER_FILE);
    const bytes = await this.readIfPresent(key);
    const complete = async () => (await this.readIfPresent(this.markerKey(MARKER_COMPLETE))) !== undefined;
    if (!bytes) {
      if (!(await complete())) return undefined;
      throw new UserError(
        `${this.lake.uri(key)} is missing but ${this.lake.uri(this.markerKey(MARKER_COMPLETE))}, written after it, exists: the registry's chain marker was deleted; restore it from a backup (with S3 versioning, its earlier version)`,
        'integrity',
      );
    }
    const m: ChainMarker = parseChainMarker(bytes.toString('utf8'), this.lake.uri(key));
    // Its mere presence closes sealing: a damaged one must not reopen it.
    return { legacy: m.legacy, open: m.state === 'migrating' && !(await complete()) };
  }

  /**
   * The marker, created if the group has none (the first chain-aware write): listing the
   * versions whose audit objects are all written before the chain, as of now. Refuses to
   * list any while another version already has chained objects, unless each was vouched
   * for (--accept-unchained): the group was chain-aware, so its marker was deleted or
   * predates this release, and what looks unmigrated may have been rewritten.
   */
  private async ensureMarker(acceptUnchained: readonly number[] = []): Promise<SealingState> {
    return markerOrFail(await this.makeMarker(acceptUnchained));
  }

  /** Before a change or registration: a warning instead of a refusal (the write goes ahead; see markerPendingWarning). */
  private async markerForWrite(): Promise<string | undefined> {
    return markerWarning(await this.makeMarker([]));
  }

  private async makeMarker(acceptUnchained: readonly number[]): Promise<MarkerAttempt<SealingState>> {
    for (;;) {
      const existing = await this.readMarker();
      if (existing) return existing;
      const chained = new Set<number>();
      const old = new Set<number>();
      for (const o of await this.lake.list(`${this.prefix}/audit/`)) {
        const m = AUDIT_KEY.exec(o.key);
        if (m) chained.add(Number(m[1]));
        else if (LEGACY_AUDIT_KEY.test(o.key)) old.add(Number(LEGACY_AUDIT_KEY.exec(o.key)![1]));
      }
      const legacy = [...old].filter((v) => !chained.has(v)).sort((a, b) => a - b);
      const refusal = markerRefusal({ registry: this.uri, marker: this.lake.uri(this.markerKey(MARKER_FILE)), legacy, chainAware: chained.size > 0, acceptUnchained, trails: 'audit objects' });
      if (refusal !== undefined) return { refusal };
      const marker: ChainMarker = { layout: CHAIN_MARKER_LAYOUT, state: legacy.length > 0 ? 'migrating' : 'complete', legacy };
      if (await this.createObject(this.markerKey(MARKER_FILE), `${JSON.stringify(marker)}\n`)) return { legacy, open: legacy.length > 0 };
    }
  }

  /** A version that looks written before the chain although the marker says it cannot be: its history was rewritten. */
  private tampered(version: number, marker: SealingState): AuditChainError {
    const listed = marker.legacy.includes(version);
    return tamperedTrail(version, {
      looks: `its audit objects are all of the kind written before the chain (no <seq>.json)`,
      listed,
      marker: this.lake.uri(this.markerKey(MARKER_FILE)),
      sealingClosedBy: this.lake.uri(this.markerKey(MARKER_COMPLETE)),
      trail: `${this.lake.uri(this.auditPrefix(version))} (with S3 versioning, the objects' earlier versions)`,
    });
  }

  /** An object listed a moment ago may be gone: a withdrawn claim (see transition). */
  private async readIfPresent(key: string, maxBytes = MAX_RECORD_BYTES): Promise<Buffer | undefined> {
    try {
      return await this.lake.read(key, { maxBytes });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'NoSuchKey' || code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private keyOf(uri: string): string | undefined {
    const root = `${this.lake.root}/`;
    return uri.startsWith(root) ? uri.slice(root.length) : undefined;
  }

  /** Every SageMaker call goes through here: AWS errors become messages that say what to do. */
  private async call<T>(action: string, resource: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      // Not found is left to the caller, who often expects it (a group not created yet).
      throw (
        translateAwsError(err, {
          service: 'SageMaker',
          scope: this.uri,
          action,
          target: resource,
          permission: `sagemaker:${action} on ${resource}`,
          policyDoc: 'docs/registry.md lists the IAM policy',
        }) ?? err
      );
    }
  }
}

function statusOf(d: DescribeModelPackageOutput): ModelStatus {
  const s = d.ModelApprovalStatus as ModelStatus | undefined;
  if (!s || !MODEL_STATUSES.includes(s)) throw new Error(`SageMaker model package ${d.ModelPackageArn} has unexpected approval status '${String(s)}'`);
  return s;
}

function userName(u: UserContext | undefined): string {
  return u?.UserProfileName ?? u?.IamIdentity?.Arn ?? u?.UserProfileArn ?? 'unknown';
}

function nullIfNone(v: string | undefined): string | null {
  return v === undefined || v === 'none' || v === 'unknown' ? null : v;
}

const pad = (n: number): string => String(n).padStart(6, '0');

/** What the group's marker says: the versions written before the chain, and whether sealing them is still open. */
interface SealingState {
  readonly legacy: readonly number[];
  readonly open: boolean;
}

/** A package's verified chain, and the objects written before it that it does not cover. */
interface PackageTrail extends VerifiedChain {
  /** Entries written before the chain that its first entry does not seal (it was started without a genesis entry): shown as unsealed. */
  readonly unsealed: AuditEntry[];
  /** How many such objects there are (some may not read as entries). */
  readonly unsealedObjects: number;
}

interface AuditObject {
  readonly key: string;
  readonly seq: number;
  readonly bytes: Buffer;
}

/** A version's audit objects, or none and why: a trail over its budget (see trailOverBudget) is not read. */
type VersionAudit = readonly AuditObject[] & { readonly overBudget?: string };

/** The chain's anchor: what SageMaker recorded at creation and never changes (entry 1 names its digest). */
function anchorOf(d: DescribeModelPackageOutput): string {
  const meta = d.CustomerMetadataProperties ?? {};
  return sha256Hex(`pricesense.audit.anchor/1\n${d.ModelPackageArn}\n${meta[`${META}artifactSha256`] ?? ''}\n${d.CreationTime?.toISOString() ?? ''}`);
}

function isRecent(e: AuditEntry): boolean {
  return Date.now() - Date.parse(e.at) < CLAIM_WINDOW_MS;
}

/**
 * A last entry SageMaker does not reflect yet: its UpdateModelPackage may still be on its
 * way (recent, and SageMaker has not been modified since the entry was written).
 */
function inProgress(last: ChainedEntry | undefined, d: DescribeModelPackageOutput): boolean {
  if (!last || last.to === d.ModelApprovalStatus || !isRecent(last)) return false;
  const modified = d.LastModifiedTime?.getTime();
  return modified === undefined || modified < Date.parse(last.at);
}

/**
 * One object per sequence number. Entries created conditionally (<seq>.json) are one per
 * number by construction; two objects at one number are left by the earlier protocol's
 * claims (<seq>-<random>.json) of concurrent changes, whose loser deleted its own at once,
 * or by a writer of that protocol next to one of this. Left over
 * (a process died in between), the one the next entry links to is the real one; at the
 * end of the chain, a claim younger than CLAIM_WINDOW_MS is a change still in progress
 * and not yet part of the trail, an older one counts if SageMaker's status agrees.
 */
function resolveClaims(objects: readonly AuditObject[], d: DescribeModelPackageOutput, uri: (key: string) => string): StoredEntry[] {
  const bySeq = new Map<number, AuditObject[]>();
  for (const o of objects) bySeq.set(o.seq, [...(bySeq.get(o.seq) ?? []), o]);
  const seqs = [...bySeq.keys()].sort((a, b) => a - b);
  const out: StoredEntry[] = [];
  seqs.forEach((seq, i) => {
    let group = bySeq.get(seq)!;
    if (group.length > 1) {
      const next = bySeq.get(seqs[i + 1] ?? -1) ?? [];
      const linked = group.filter((o) => next.some((n) => peek(n.bytes)?.prev === sha256Hex(o.bytes)));
      // <seq>.json is created exclusively, and withdrawn when a live claim of the earlier protocol stands beside it:
      // kept, it is the entry, and the claims beside it are leftovers of writers that died (see transition).
      const conditional = group.filter((o) => CONDITIONAL_KEY.test(o.key));
      if (linked.length > 0) group = linked;
      else if (conditional.length > 0) group = conditional;
      else if (i === seqs.length - 1) {
        const settled = group.filter((o) => {
          const e = peek(o.bytes);
          return e !== undefined && !isRecent(e) && e.to === d.ModelApprovalStatus;
        });
        if (settled.length === 0) return;
        group = settled;
      }
      group = [...group].sort((a, b) => (peek(a.bytes)?.at ?? '').localeCompare(peek(b.bytes)?.at ?? '') || a.key.localeCompare(b.key));
    }
    out.push({ seq, bytes: group[0].bytes, where: `audit object ${uri(group[0].key)}` });
  });
  return out;
}

function peek(bytes: Buffer): ChainedEntry | undefined {
  try {
    return JSON.parse(bytes.toString('utf8')) as ChainedEntry;
  } catch {
    return undefined;
  }
}

/**
 * The last entry recorded a change SageMaker never took: SageMaker is not at its `to`, it
 * is older than CLAIM_WINDOW_MS, and SageMaker was not modified after it was written (an
 * applied change modifies it after its entry). Its UpdateModelPackage failed and the
 * entry could not be withdrawn, or the process stopped in between. A change made outside
 * pricesense after such an entry makes it read as applied, then changed outside.
 */
function lastIsVoid(last: ChainedEntry | undefined, d: DescribeModelPackageOutput): boolean {
  if (!last || last.from === null || last.from === last.to || last.to === d.ModelApprovalStatus || isRecent(last)) return false;
  const modified = d.LastModifiedTime?.getTime();
  return modified === undefined || modified < Date.parse(last.at);
}

/**
 * A last entry saying the one before was not applied, although SageMaker already had its
 * `to` before it was written (not modified since): its own change cannot have been what
 * moved the status, so the entry it voids was applied and the link is false (an entry
 * appended by hand to relabel a real change).
 */
function falseVoid(last: ChainedEntry | undefined, d: DescribeModelPackageOutput): boolean {
  if (!last || last.voids === undefined || last.to !== d.ModelApprovalStatus) return false;
  const modified = d.LastModifiedTime?.getTime();
  return modified !== undefined && modified < Date.parse(last.at);
}

/**
 * The entries whose change was not applied: each one a later entry says so of (`voids`),
 * and a void last one; a last entry whose `voids` link is false (falseVoid) instead.
 */
function notApplied(chain: VerifiedChain, d: DescribeModelPackageOutput): Set<number> {
  const last = chain.entries.at(-1);
  const lie = falseVoid(last, d);
  const seqs = new Set(chain.entries.flatMap((e) => (e.voids === undefined || (lie && e === last) ? [] : [e.voids])));
  if (lie || lastIsVoid(last, d)) seqs.add(last!.seq);
  return seqs;
}

/**
 * The audit trail from the lake, each entry marked by how it stands to the chain (see
 * AuditEntry.chain), plus what SageMaker knows and the lake does not: a registration or a
 * last change made outside pricesense.
 */
function reconcileAudit(d: DescribeModelPackageOutput, chain: PackageTrail, status: ModelStatus): AuditEntry[] {
  // A claim still in progress (ahead of SageMaker) is not shown as done.
  const settled = inProgress(chain.entries.at(-1), d) ? chain.entries.slice(0, -1) : chain.entries;
  const voided = notApplied(chain, d);
  const out = [...chain.legacy, ...chain.unsealed, ...settled.map((e) => publicEntry(e, voided.has(e.seq) ? 'not-applied' : undefined))];
  if (out.length === 0 || out[0].from !== null) {
    out.unshift({
      at: d.CreationTime?.toISOString() ?? '',
      by: userName(d.CreatedBy),
      from: null,
      to: 'PendingManualApproval',
      note: 'registration reconstructed from SageMaker (no pricesense audit record)',
      chain: 'outside',
    });
  }
  const last = [...out].reverse().find((e) => e.chain !== 'not-applied')!;
  if (last.to !== status) {
    out.push({
      at: d.LastModifiedTime?.toISOString() ?? '',
      by: userName(d.LastModifiedBy),
      from: last.to,
      to: status,
      note: `${d.ApprovalDescription ?? ''} (changed outside pricesense; recorded by SageMaker LastModifiedBy/Time)`.trim(),
      chain: 'outside',
    });
  }
  return out;
}

/** SageMaker description fields: printable text only, at most 1024 characters. */
function description(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 1024);
}

/** CustomerMetadataProperties values: 1-256 chars of letters, digits, spaces and _.:/=+-@ */
function metaValue(text: string): string {
  const clean = text.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_').slice(0, 256);
  return clean || 'unknown';
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  });
  await Promise.all(workers);
  return out;
}
