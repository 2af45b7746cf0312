/**
 * `pricesense etl`: raw → silver → (validate) → gold, each stage committed atomically.
 * DuckDB reads and writes only local files, so a non-local lake is staged through a
 * local scratch directory with lake.download / lake.upload.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Duck, sqlList } from './duck';
import { rawCsvSource, typedLinesSql } from './drop/csv-sql';
import { translateEngineError } from './drop/engine-errors';
import { UserError } from '../core/errors';
import { FEATURE_DEFINITIONS_VERSION } from './feature-definitions';
import { basketAggregateSql, buildGoldTable, GOLD_COLUMNS, writeGoldSplits } from './features';
import { GOLD_FEATURES, GOLD_SPLITS, type FeatureStats, type GoldSplit } from './gold-schema';
import { GOLD_FORMAT, GOLD_PREFIX, readGoldManifest, type GoldMeta } from './gold';
import { feedsGold, ingest, label, materializeParts, REJECTS_PREFIX, type IngestResult, type PartRecord } from './ingest';
import { localCopyOf, readStageManifest, StageCommit, type CommittedStage } from './lake/commit';
import { Lease } from './lake/lease';
import type { Lake } from './lake/types';
import { cpuSince, round3, StepProfile, type StepFigures } from './profile';
import { logEvent, Progress } from '../core/progress';
import { CLASS_LABELS, LABEL_BY_CODE, type ClassLabel } from './schema';
import { SPLIT_FRACTIONS, SPLIT_METHOD } from './split';
import { computeSplitStats, fractionsOf } from './stats';
import { validateGold, type ValidationReport } from './validate';

export interface EtlOptions {
  /** Fail when more than this fraction of raw lines is rejected (default 0.01). */
  rejectThreshold?: number;
  /** Publish gold even if its class balance moved more than maxClassShift. */
  acceptShift?: boolean;
  maxClassShift?: number;
  /** DuckDB worker threads (default: all cores). */
  threads?: number;
  /** DuckDB memory limit before it spills to disk (default 1GB). */
  memoryLimit?: string;
  /** Cap on the uncompressed bytes of one .csv.gz or zip member. */
  maxUncompressedBytes?: number;
  /** Seconds to wait for the lake's lease when another run holds it (default 0: refuse). */
  waitSeconds?: number;
  /** The lease's time to live without renewal, in seconds (default 120). */
  leaseTtlSeconds?: number;
}

export interface StageFigures {
  readonly stage: string;
  readonly rows: number;
  readonly seconds: number;
  readonly perSecond: number;
  /**
   * CPU seconds the whole process spent in the stage (user + system; DuckDB's worker
   * threads run in-process, so they are included). On a shared machine this is the
   * steadier figure: wall time also counts waiting for a core.
   */
  readonly cpuSeconds: number;
  /** rows / cpuSeconds. */
  readonly perCpuSecond: number;
}

export interface EtlReport {
  readonly lake: string;
  readonly silver: {
    readonly manifestSha256: string;
    readonly lines: number;
    readonly accepted: number;
    readonly rejected: number;
    readonly rejectRate: number;
    readonly rejectReasons: Record<string, number>;
    /** Where rejected lines (one CSV per file) and the quarantine list are. */
    readonly rejectsDir: string;
    readonly weeks: number;
    /** Parts (CSV files or zip members) parsed by this run, and reused from earlier runs. */
    readonly parsed: number;
    readonly reused: number;
    /** lines is an estimate (from the file's size) when linesEstimated: its lines could not be counted. */
    readonly quarantined: { file: string; sha256: string; lines: number; linesEstimated: boolean; reason: string }[];
    readonly duplicates: { file: string; sameAs: string }[];
    readonly extraColumns: { file: string; columns: string[] }[];
    /** raw/ objects that are not .csv, .csv.gz or .zip, and zip members that are not CSVs. */
    readonly ignored: string[];
  };
  readonly gold: {
    readonly manifestSha256: string;
    readonly rows: Record<GoldSplit, number>;
    readonly classBalance: Record<ClassLabel, number>;
    readonly unlabelledBaskets: number;
    readonly inconsistentBaskets: number;
    /** Baskets whose lines are spread over several files (their lines were combined). */
    readonly splitBaskets: number;
    readonly unchanged: boolean;
  };
  readonly validation: ValidationReport;
  readonly stages: StageFigures[];
  /** The stages step by step (byte pass, parse, commits, gold writes, statistics, validation, …). */
  readonly profile: StepFigures[];
  readonly seconds: number;
  /** Raw lines per second, raw → gold. */
  readonly linesPerSecond: number;
}

/** Identifies what gold is built from: the ingested parts' content, the feature-definition version and the gold SQL itself. */
function goldFingerprint(parts: readonly PartRecord[]): string {
  const h = createHash('sha256').update(`${GOLD_FORMAT}\n${FEATURE_DEFINITIONS_VERSION}\n${basketAggregateSql('lines')}\n${GOLD_COLUMNS.map((c) => `${c.name}:${c.type}`).join(',')}\n${SPLIT_METHOD}\n`);
  for (const p of parts) if (feedsGold(p)) h.update(`${p.sha256}\n`);
  return h.digest('hex');
}

export async function runEtl(lake: Lake, opts: EtlOptions = {}): Promise<EtlReport> {
  const started = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  const runId = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const scratchKey = `tmp/etl-${runId}`;
  const lease = await Lease.acquire(lake, {
    run: runId,
    ttlSeconds: opts.leaseTtlSeconds,
    waitSeconds: opts.waitSeconds,
    scratch: lake.kind === 'local' ? [`${scratchKey}/`] : [],
    onTakeover: (previous) => logEvent('lease_takeover', { lake: lake.root, previous }),
    onWait: (holder) => logEvent('lease_wait', { lake: lake.root, holder }),
  });
  // On a local lake the scratch space is the lake's own tmp/ zone (same disk as the output).
  const scratch = lake.kind === 'local' ? lake.uri(scratchKey) : await mkdtemp(path.join(os.tmpdir(), 'pricesense-etl-'));
  let duck: Duck | undefined;
  const profile = new StepProfile();
  try {
    await mkdir(path.join(scratch, 'duck'), { recursive: true });
    duck = await Duck.open({ threads: opts.threads, memoryLimit: opts.memoryLimit, tempDirectory: path.join(scratch, 'duck') });
    const db = duck;
    logEvent('etl_start', { lake: lake.root, threads: duck.threads, lease: lease.key });
    const commit = { run: runId, beforePublish: () => lease.assertHeld() };

    // raw → silver
    const silverCpu = process.cpuUsage();
    let silver: IngestResult;
    try {
      silver = await ingest(lake, { duck, scratch, rejectThreshold: opts.rejectThreshold, maxUncompressedBytes: opts.maxUncompressedBytes, commit, profile });
    } catch (err) {
      throw translateEngineError(err, 'raw → silver', duck.memoryLimitBytes);
    }
    const stages: StageFigures[] = [figures('raw→silver', silver.meta.lines, silver.seconds, cpuSince(silverCpu))];
    const parts = silver.meta.parts;

    // silver → gold, unless gold is already built from exactly these parts by this code.
    const goldStarted = process.hrtime.bigint();
    const goldCpu = process.cpuUsage();
    const fingerprint = goldFingerprint(parts);
    const previous = await readStageManifest<GoldMeta>(lake, GOLD_PREFIX);
    let gold: { committed: CommittedStage<GoldMeta>; validation: ValidationReport; splitBaskets: number };
    if (previous?.manifest.meta?.format === GOLD_FORMAT && previous.manifest.meta.source?.fingerprint === fingerprint) {
      const current = await readGoldManifest(lake);
      gold = {
        committed: current,
        splitBaskets: current.manifest.meta.source.splitBaskets ?? 0,
        validation: { ok: true, classShift: 0, checks: [{ name: 'unchanged', ok: true, detail: 'gold is already built from exactly these files by this version; nothing to do' }] },
      };
    } else {
      try {
        gold = await buildGold(lake, db, parts, silver, scratch, fingerprint, previous, opts, commit, profile);
      } catch (err) {
        throw translateEngineError(err, 'silver → gold', db.memoryLimitBytes);
      }
    }
    const meta = gold.committed.manifest.meta;
    const goldSeconds = Number(process.hrtime.bigint() - goldStarted) / 1e9;
    stages.push(figures('silver→gold', silver.meta.accepted, goldSeconds, cpuSince(goldCpu)));

    const seconds = elapsed();
    const report: EtlReport = {
      lake: lake.root,
      silver: {
        manifestSha256: silver.commit.sha256,
        lines: silver.meta.lines,
        accepted: silver.meta.accepted,
        rejected: silver.meta.rejected,
        rejectRate: silver.meta.rejectRate,
        rejectReasons: silver.meta.rejectReasons,
        rejectsDir: lake.uri(`silver/${REJECTS_PREFIX}`),
        weeks: Object.keys(silver.meta.weeks).length,
        parsed: silver.parsed,
        reused: silver.reused,
        quarantined: parts.filter((p) => p.status === 'quarantined').map((p) => ({ file: label(p.source), sha256: p.sha256, lines: p.lines, linesEstimated: p.linesEstimated === true, reason: p.reason ?? '' })),
        duplicates: silver.meta.duplicates.map((d) => ({ file: label(d), sameAs: label(d.sameAs) })),
        extraColumns: parts.filter((p) => p.extraColumns.length).map((p) => ({ file: label(p.source), columns: p.extraColumns })),
        ignored: [...silver.meta.ignored, ...silver.meta.raw.flatMap((r) => r.ignoredMembers.map((m) => `${r.key} › ${m}`))],
      },
      gold: {
        manifestSha256: gold.committed.sha256,
        rows: meta.rows,
        classBalance: meta.classBalance.all,
        unlabelledBaskets: meta.baskets.unlabelled,
        inconsistentBaskets: meta.baskets.inconsistent,
        splitBaskets: gold.splitBaskets,
        unchanged: previous?.sha256 === gold.committed.sha256,
      },
      validation: gold.validation,
      stages,
      profile: profile.figures(),
      seconds,
      linesPerSecond: seconds > 0 ? silver.meta.lines / seconds : 0,
    };
    // Timestamps live in logs/, never in silver/ or gold/ (whose bytes must be reproducible).
    const at = new Date().toISOString();
    await lake.write(`logs/etl/${at.replace(/[:.]/g, '-')}-${runId}.json`, `${JSON.stringify({ at, ...report }, null, 2)}\n`);
    logEvent('etl_done', { lines: report.silver.lines, rejected: report.silver.rejected, parsed: silver.parsed, reused: silver.reused, gold_rows: goldRowsTotal(report), seconds: round3(seconds) });
    return report;
  } finally {
    duck?.close();
    await rm(scratch, { recursive: true, force: true });
    await lease.release();
  }
}

/**
 * The candidate gold from silver's per-basket files, validated, then committed. A basket
 * whose lines are in several parts is aggregated again from those parts' lines.
 */
async function buildGold(
  lake: Lake,
  duck: Duck,
  parts: readonly PartRecord[],
  silver: IngestResult,
  scratch: string,
  fingerprint: string,
  previous: CommittedStage<GoldMeta> | undefined,
  opts: EtlOptions,
  commitOptions: ConstructorParameters<typeof StageCommit>[2],
  profile: StepProfile,
): Promise<{ committed: CommittedStage<GoldMeta>; validation: ValidationReport; splitBaskets: number }> {
  const progress = new Progress({ stage: 'silver→gold', total: silver.meta.accepted });
  const ingested = parts.filter(feedsGold);
  const locals: string[] = [];
  const partOfLocal = new Map<string, PartRecord>();
  for (const p of ingested) {
    for (const f of p.files.baskets) {
      const local = await localCopyOf(lake, 'silver', f, path.join(scratch, 'in'), {});
      locals.push(local);
      partOfLocal.set(local, p);
    }
  }
  if (!locals.length) {
    throw new UserError(`no file of the drop could be ingested (every one is quarantined; see ${lake.uri(`silver/${REJECTS_PREFIX}`)}), so there is no gold to build; the previous gold is unchanged`, 'data_rejected');
  }
  const all = `read_parquet(${sqlList(locals)})`;
  const splitBaskets = await profile.time('gold: find baskets spread over files', async () => {
    await duck.run(`CREATE OR REPLACE TEMP TABLE split_baskets AS SELECT BASKET_ID FROM ${all} GROUP BY BASKET_ID HAVING count(*) > 1`);
    const [{ n }] = await duck.all(`SELECT count(*)::BIGINT AS n FROM split_baskets`);
    return Number(n);
  });
  let baskets = all;
  if (splitBaskets > 0) {
    // Their lines, from the parts that hold them, aggregated together.
    const files = await duck.all(`SELECT DISTINCT filename AS f FROM read_parquet(${sqlList(locals)}, filename = true) WHERE BASKET_ID IN (SELECT BASKET_ID FROM split_baskets)`);
    const involved = [...new Set(files.map((r) => partOfLocal.get(String(r.f))).filter((p): p is PartRecord => p !== undefined))];
    logEvent('gold_split_baskets', { baskets: splitBaskets, files: involved.map((p) => label(p.source)) });
    const csvs = await materializeParts(lake, involved, path.join(scratch, 'again'), opts.maxUncompressedBytes);
    const sources = csvs.map((c) => typedLinesSql(rawCsvSource([c.local], { layout: c.layout.columns, ignoreErrors: true })));
    const lines = `(${sources.map((s) => `SELECT * FROM ${s}`).join(' UNION ALL ')})`;
    await duck.run(`CREATE OR REPLACE TEMP TABLE rejoined AS ${basketAggregateSql(lines, { where: 'BASKET_ID IN (SELECT BASKET_ID FROM split_baskets)' })}`);
    baskets = `(SELECT * FROM ${all} WHERE BASKET_ID NOT IN (SELECT BASKET_ID FROM split_baskets) UNION ALL BY NAME SELECT * FROM rejoined)`;
  }
  const counts0 = await profile.time('gold: label and split baskets', () => buildGoldTable(duck, baskets));
  progress.update(silver.meta.accepted);
  const goldDir = path.join(scratch, 'gold');
  await mkdir(goldDir, { recursive: true });
  const counts = {} as Record<GoldSplit, Record<ClassLabel, number>>;
  const stats = {} as Record<GoldSplit, Record<string, FeatureStats>>;
  // One single-threaded section for the sorted writes and the float statistics (see stats.ts).
  const splitFiles = await duck.deterministic(async () => {
    const written = await profile.time('gold: sorted split writes', () => writeGoldSplits(duck, goldDir));
    for (const split of GOLD_SPLITS) {
      const s = await profile.time('gold: feature statistics', () => computeSplitStats(duck, written[split].path));
      counts[split] = s.classCounts;
      stats[split] = s.stats;
    }
    return written;
  });
  const allCounts = Object.fromEntries(CLASS_LABELS.map((c) => [c, GOLD_SPLITS.reduce((k, s) => k + counts[s][c], 0)])) as Record<ClassLabel, number>;
  const balanceAll = fractionsOf(allCounts);

  // Gate: nothing is published unless the candidate passes.
  const validation = await profile.time('gold: validation', () => validateGold(
    duck,
    Object.fromEntries(GOLD_SPLITS.map((s) => [s, splitFiles[s].path])) as Record<GoldSplit, string>,
    balanceAll,
    {
      previousClassBalance: previous?.manifest.meta?.format === GOLD_FORMAT ? previous.manifest.meta.classBalance.all : undefined,
      maxClassShift: opts.maxClassShift,
      acceptShift: opts.acceptShift,
    },
  ));
  if (!validation.ok) {
    const failed = validation.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    throw new UserError(`gold validation failed; the previous gold is unchanged:\n  ${failed.join('\n  ')}`, 'data_rejected');
  }

  const commit = new StageCommit<GoldMeta>(lake, GOLD_PREFIX, commitOptions);
  const files = {} as Record<GoldSplit, string>;
  for (const split of GOLD_SPLITS) files[split] = (await profile.time('gold commit', () => commit.addFile(splitFiles[split].path, `${split}.parquet`, splitFiles[split].rows))).path;
  const meta: GoldMeta = {
    format: GOLD_FORMAT,
    columns: GOLD_COLUMNS.map((c) => ({ name: c.name, type: c.type })),
    features: GOLD_FEATURES.map((f) => ({ name: f.name, kind: f.kind })),
    featureDefinitions: { version: FEATURE_DEFINITIONS_VERSION },
    label: { column: 'LABEL', classes: CLASS_LABELS, fromBasketPriceSensitivity: { ...LABEL_BY_CODE } },
    split: { method: SPLIT_METHOD, fractions: { ...SPLIT_FRACTIONS } },
    files,
    rows: Object.fromEntries(GOLD_SPLITS.map((s) => [s, splitFiles[s].rows])) as Record<GoldSplit, number>,
    classCounts: counts,
    classBalance: { all: balanceAll, ...(Object.fromEntries(GOLD_SPLITS.map((s) => [s, fractionsOf(counts[s])])) as Record<GoldSplit, Record<ClassLabel, number>>) },
    stats,
    baskets: counts0,
    source: {
      fingerprint,
      silverRows: silver.meta.accepted,
      splitBaskets,
      rawFiles: silver.meta.raw.map((r) => ({ key: r.key, bytes: r.bytes })),
    },
  };
  const committed = await profile.time('gold commit', () => commit.commit(meta));
  progress.finish({ baskets: counts0.labelled });
  return { committed, validation, splitBaskets };
}

function figures(stage: string, rows: number, seconds: number, cpuSeconds: number): StageFigures {
  return {
    stage,
    rows,
    seconds: round3(seconds),
    perSecond: seconds > 0 ? Math.round(rows / seconds) : 0,
    cpuSeconds: round3(cpuSeconds),
    perCpuSecond: cpuSeconds > 0 ? Math.round(rows / cpuSeconds) : 0,
  };
}

export function goldRowsTotal(report: EtlReport): number {
  return GOLD_SPLITS.reduce((n, s) => n + report.gold.rows[s], 0);
}

