/**
 * `pricesense etl`: raw → silver → (validate) → gold, each stage committed atomically.
 * DuckDB reads and writes only local files, so a non-local lake is staged through a
 * local scratch directory with lake.download / lake.upload.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Duck } from './duck';
import { UserError } from './errors';
import { buildGoldTable, GOLD_COLUMNS, writeGoldSplits } from './features';
import { GOLD_FEATURES, GOLD_SPLITS, type FeatureStats, type GoldSplit } from './gold-schema';
import { GOLD_FORMAT, GOLD_PREFIX, readGoldManifest, type GoldMeta } from './gold';
import { ingest, REJECTS_PATH } from './ingest';
import { localCopyOf, readStageManifest, StageCommit } from './lake/commit';
import type { Lake } from './lake/types';
import { logEvent, Progress } from './progress';
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
    readonly rejectsFile: string;
    readonly weeks: number;
  };
  readonly gold: {
    readonly manifestSha256: string;
    readonly rows: Record<GoldSplit, number>;
    readonly classBalance: Record<ClassLabel, number>;
    readonly unlabelledBaskets: number;
    readonly inconsistentBaskets: number;
    readonly unchanged: boolean;
  };
  readonly validation: ValidationReport;
  readonly stages: StageFigures[];
  readonly seconds: number;
  /** Raw lines per second, raw → gold. */
  readonly linesPerSecond: number;
}

export async function runEtl(lake: Lake, opts: EtlOptions = {}): Promise<EtlReport> {
  const started = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  const runId = `${process.pid}-${randomBytes(4).toString('hex')}`;
  // On a local lake the scratch space is the lake's own tmp/ zone (same disk as the output).
  const scratch = lake.kind === 'local' ? lake.uri(`tmp/etl-${runId}`) : await mkdtemp(path.join(os.tmpdir(), 'pricesense-etl-'));
  await mkdir(path.join(scratch, 'duck'), { recursive: true });
  let duck: Duck | undefined;
  try {
    duck = await Duck.open({ threads: opts.threads, memoryLimit: opts.memoryLimit, tempDirectory: path.join(scratch, 'duck') });
    logEvent('etl_start', { lake: lake.root, threads: duck.threads });
    // raw → silver
    const silverCpu = process.cpuUsage();
    const silver = await ingest(lake, { duck, scratch, rejectThreshold: opts.rejectThreshold });
    const stages: StageFigures[] = [figures('raw→silver', silver.meta.lines, silver.seconds, cpuSince(silverCpu))];

    // silver → gold (candidate, in scratch)
    const goldStarted = process.hrtime.bigint();
    const goldCpu = process.cpuUsage();
    const progress = new Progress({ stage: 'silver→gold', total: silver.meta.accepted });
    const silverFiles = silver.commit.manifest.files.filter((f) => f.path !== REJECTS_PATH && !f.path.startsWith('_rejects/'));
    const silverLocal: string[] = [];
    for (const f of silverFiles) silverLocal.push(await localCopyOf(lake, 'silver', f, path.join(scratch, 'in'), {}));
    const { plan, ...baskets } = await buildGoldTable(duck, silverLocal, { silverRows: silver.meta.accepted, memoryLimitBytes: duck.memoryLimitBytes });
    logEvent('gold_aggregate', { distinct: plan.viaHash ? 'hash-lists' : 'count-distinct', passes: plan.passes });
    progress.update(silver.meta.accepted);
    const goldDir = path.join(scratch, 'gold');
    await mkdir(goldDir, { recursive: true });
    const counts = {} as Record<GoldSplit, Record<ClassLabel, number>>;
    const stats = {} as Record<GoldSplit, Record<string, FeatureStats>>;
    // One single-threaded section for the sorted writes and the float statistics (see stats.ts).
    const db = duck;
    const splitFiles = await db.deterministic(async () => {
      const written = await writeGoldSplits(db, goldDir);
      for (const split of GOLD_SPLITS) {
        const s = await computeSplitStats(db, written[split].path);
        counts[split] = s.classCounts;
        stats[split] = s.stats;
      }
      return written;
    });
    const allCounts = Object.fromEntries(CLASS_LABELS.map((c) => [c, GOLD_SPLITS.reduce((n, s) => n + counts[s][c], 0)])) as Record<ClassLabel, number>;
    const balanceAll = fractionsOf(allCounts);

    // Gate: nothing is published unless the candidate passes.
    const previous = await readStageManifest<GoldMeta>(lake, GOLD_PREFIX);
    const validation = await validateGold(
      duck,
      Object.fromEntries(GOLD_SPLITS.map((s) => [s, splitFiles[s].path])) as Record<GoldSplit, string>,
      balanceAll,
      {
        previousClassBalance: previous?.manifest.meta?.format === GOLD_FORMAT ? previous.manifest.meta.classBalance.all : undefined,
        maxClassShift: opts.maxClassShift,
        acceptShift: opts.acceptShift,
      },
    );
    if (!validation.ok) {
      const failed = validation.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      throw new UserError(`gold validation failed; the previous gold is unchanged:\n  ${failed.join('\n  ')}`, 4);
    }

    const commit = new StageCommit<GoldMeta>(lake, GOLD_PREFIX);
    const files = {} as Record<GoldSplit, string>;
    for (const split of GOLD_SPLITS) files[split] = (await commit.addFile(splitFiles[split].path, `${split}.parquet`, splitFiles[split].rows)).path;
    const meta: GoldMeta = {
      format: GOLD_FORMAT,
      columns: GOLD_COLUMNS.map((c) => ({ name: c.name, type: c.type })),
      features: GOLD_FEATURES.map((f) => ({ name: f.name, kind: f.kind })),
      label: { column: 'LABEL', classes: CLASS_LABELS, fromBasketPriceSensitivity: { ...LABEL_BY_CODE } },
      split: { method: SPLIT_METHOD, fractions: { ...SPLIT_FRACTIONS } },
      files,
      rows: Object.fromEntries(GOLD_SPLITS.map((s) => [s, splitFiles[s].rows])) as Record<GoldSplit, number>,
      classCounts: counts,
      classBalance: { all: balanceAll, ...(Object.fromEntries(GOLD_SPLITS.map((s) => [s, fractionsOf(counts[s])])) as Record<GoldSplit, Record<ClassLabel, number>>) },
      stats,
      baskets,
      source: { silverRows: silver.meta.accepted, rawFiles: silver.meta.sources },
    };
    const committed = await commit.commit(meta);
    const goldSeconds = Number(process.hrtime.bigint() - goldStarted) / 1e9;
    progress.finish({ baskets: baskets.labelled });
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
        rejectsFile: lake.uri(`silver/${silver.commit.manifest.files.find((f) => f.path.startsWith('_rejects/'))?.path ?? REJECTS_PATH}`),
        weeks: Object.keys(silver.meta.weeks).length,
      },
      gold: {
        manifestSha256: committed.sha256,
        rows: meta.rows,
        classBalance: balanceAll,
        unlabelledBaskets: baskets.unlabelled,
        inconsistentBaskets: baskets.inconsistent,
        unchanged: previous?.sha256 === committed.sha256,
      },
      validation,
      stages,
      seconds,
      linesPerSecond: seconds > 0 ? silver.meta.lines / seconds : 0,
    };
    // Timestamps live in logs/, never in silver/ or gold/ (whose bytes must be reproducible).
    const at = new Date().toISOString();
    await lake.write(`logs/etl/${at.replace(/[:.]/g, '-')}-${runId}.json`, `${JSON.stringify({ at, ...report }, null, 2)}\n`);
    logEvent('etl_done', { lines: report.silver.lines, rejected: report.silver.rejected, gold_rows: goldRowsTotal(report), seconds: round3(seconds) });
    return report;
  } finally {
    duck?.close();
    await rm(scratch, { recursive: true, force: true });
  }
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

function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function goldRowsTotal(report: EtlReport): number {
  return GOLD_SPLITS.reduce((n, s) => n + report.gold.rows[s], 0);
}

export { readGoldManifest };
