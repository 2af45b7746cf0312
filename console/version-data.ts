/**
 * What the pages need from a version beyond its registry record: facts from the
 * forest file itself (features, training statistics, trees) and feature importance.
 * The forest is fetched through the registry (which verifies its SHA-256) and parsed
 * once; only the small derived facts are kept, keyed by the artifact digest, so a
 * 50 MB forest is never held in memory between requests.
 */
import type { Logger } from 'pino';
import { UserError } from '../core/errors';
import { readGoldManifest, readGoldSplit, type GoldManifest } from '../etl/gold';
import type { FeatureStats, GoldTable } from '../etl/gold-schema';
import type { Lake } from '../etl/lake/types';
import type { FeatureSpec, ForestFileV1 } from '../model/format';
import { parseForest } from '../model/forest-file';
import type { ModelVersion, Registry } from '../model/registry';
import { CompiledForest } from '../model/walker';
import { impurityImportance, saabasImportance, type Importance } from './importance';

/** Test rows explained for the Saabas importance (the first ones of the split): bounded page latency. */
export const SAABAS_MAX_ROWS = 5000;
const CACHE_ENTRIES = 32;

export interface SaabasResult {
  readonly importances: Importance[];
  readonly rows: number;
  /** The gold manifest whose test split was explained. */
  readonly manifestSha256: string;
  /** Whether that is the data set this version was trained and evaluated on. */
  readonly matchesLineage: boolean;
}

export interface VersionInsights {
  readonly classes: string[];
  readonly features: FeatureSpec[];
  readonly featureStats: Record<string, FeatureStats>;
  readonly training: ForestFileV1['training'];
  readonly aggregation: ForestFileV1['aggregation'];
  readonly trees: number;
  readonly nodes: number;
  readonly impurity: Importance[];
  /** Saabas importance on the lake's test split; a string says why there is none. */
  readonly saabas: SaabasResult | string;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** When the registry last checked (a result is reused for VERIFY_REUSE_MS). */
  readonly checkedAt: string;
  /** Integrity failures as the registry reports them (chain entries, artifact digest). */
  readonly problems: readonly string[];
  /** Worth knowing, not failures (e.g. a status changed outside pricesense). */
  readonly warnings: readonly string[];
}

/**
 * How long a verification is reused: each one re-reads the whole artifact (tens of MB from
 * S3), and any viewer may ask for it, so repeated clicks within this window share one read.
 */
export const VERIFY_REUSE_MS = 30_000;

export class VersionData {
  private readonly insightCache = new Map<string, Promise<VersionInsights>>();
  private readonly verifyCache = new Map<number, { started: number; result: Promise<VerifyResult> }>();
  private testSplit: { sha256: string; table: Promise<GoldTable> } | undefined;

  constructor(
    readonly registry: Registry,
    readonly lake?: Lake,
    private readonly logger?: Logger,
  ) {}

  /**
   * Why something could not be shown, fit for a page: our own errors say what to do;
   * anything else (a storage SDK's or DuckDB's message) stays in the log.
   */
  reason(err: unknown, what: string): string {
    if (err instanceof UserError) return err.message;
    this.logger?.error({ err, what }, `${what} failed`);
    return `${what} failed with an internal error (the details are in the console's log)`;
  }

  /** The version's insights, or why there are none (for pages and the card). */
  insightsOrReason(v: ModelVersion, gold?: GoldManifest | string): Promise<VersionInsights | string> {
    return this.insights(v, gold).catch((err: unknown) => this.reason(err, `reading version ${v.version}'s forest`));
  }

  /** The lake's published gold manifest, or a reason there is none. */
  async goldManifest(): Promise<GoldManifest | string> {
    if (!this.lake) return 'no --lake given';
    try {
      return await readGoldManifest(this.lake);
    } catch (err) {
      return this.reason(err, "reading the lake's gold manifest");
    }
  }

  async forest(v: ModelVersion): Promise<ForestFileV1> {
    const bytes = await this.registry.fetch(v.version);
    return parseForest(bytes, `registry version ${v.version}`, { registryVerifiedSha256: v.forestSha256 });
  }

  /**
   * The verify action: the registry's own `verify` for this version — its hash-chained
   * audit trail and the stored artifact's SHA-256 against the registered digest. Requests
   * within VERIFY_REUSE_MS of a check get its result (one read in flight per version).
   */
  async verify(version: number): Promise<VerifyResult> {
    const now = Date.now();
    const cached = this.verifyCache.get(version);
    if (cached && now - cached.started < VERIFY_REUSE_MS) return cached.result;
    const result = this.registry.verify({ version }).then(({ versions }): VerifyResult => {
      const check = versions.find((c) => c.version === version);
      const problems = check ? check.problems : [`the registry did not report on version ${version}`];
      return { ok: problems.length === 0, checkedAt: new Date(now).toISOString(), problems, warnings: check?.warnings ?? [] };
    });
    this.verifyCache.set(version, { started: now, result });
    result.catch(() => this.verifyCache.delete(version));
    for (const [n, c] of this.verifyCache) if (now - c.started >= VERIFY_REUSE_MS) this.verifyCache.delete(n);
    return result;
  }

  /** `gold`: the lake's manifest when the caller has read it already for this request (one read per page). */
  async insights(v: ModelVersion, gold?: GoldManifest | string): Promise<VersionInsights> {
    // The Saabas part depends on the lake's gold too: a new gold data set means new figures.
    gold ??= await this.goldManifest();
    const key = `${v.artifactSha256}:${typeof gold === 'string' ? '-' : gold.sha256}`;
    let p = this.insightCache.get(key);
    if (!p) {
      p = this.compute(v, gold);
      this.insightCache.set(key, p);
      // A failure (unreachable store, checksum mismatch) is not remembered: the next request retries.
      p.catch(() => this.insightCache.delete(key));
      while (this.insightCache.size > CACHE_ENTRIES) this.insightCache.delete(this.insightCache.keys().next().value!);
    }
    return p;
  }

  private async compute(v: ModelVersion, gold: GoldManifest | string): Promise<VersionInsights> {
    const forest = await this.forest(v);
    const compiled = CompiledForest.compile(forest);
    return {
      classes: forest.classes,
      features: forest.features,
      featureStats: forest.featureStats,
      training: forest.training,
      aggregation: forest.aggregation,
      trees: forest.trees.length,
      nodes: forest.trees.reduce((n, t) => n + t.feature.length, 0),
      impurity: impurityImportance(forest),
      saabas: await this.saabas(v, compiled, gold),
    };
  }

  private async saabas(v: ModelVersion, compiled: CompiledForest, manifest: GoldManifest | string): Promise<SaabasResult | string> {
    if (!this.lake) return 'start the console with --lake to compute it on the test split';
    if (typeof manifest === 'string') return manifest;
    try {
      if (this.testSplit?.sha256 !== manifest.sha256) {
        const table = readGoldSplit(this.lake, 'test', manifest);
        this.testSplit = { sha256: manifest.sha256, table };
        table.catch(() => (this.testSplit = undefined));
      }
      const table = await this.testSplit.table;
      const { importances, rows } = saabasImportance(compiled, table, SAABAS_MAX_ROWS);
      return { importances, rows, manifestSha256: manifest.sha256, matchesLineage: manifest.sha256 === v.lineage.datasetManifestSha256 };
    } catch (err) {
      return `cannot explain the test split: ${this.reason(err, "reading the lake's test split")}`;
    }
  }
}
