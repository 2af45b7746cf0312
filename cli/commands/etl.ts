import type { Command } from 'commander';
import { defaultFrom, fraction, integer, seconds } from '../option-parsers';
import { parseByteSize } from '../../etl/duck';
import { DEFAULT_MAX_UNCOMPRESSED, DEFAULT_REJECT_THRESHOLD } from '../../etl/ingest';
import { DEFAULT_LEASE_TTL_SECONDS, LEASE_TTL_BOUNDS, LEASE_WAIT_BOUNDS } from '../../etl/lake/lease';
import { openLake } from '../../etl/lake';
import { goldRowsTotal, runEtl } from '../../etl/pipeline';
import { DEFAULT_MAX_CLASS_SHIFT } from '../../etl/validate';

export function register(program: Command): void {
  program
    .command('etl')
    .description('run raw → silver → gold: parse and type raw CSVs, reject bad lines, build per-basket features, validate, publish gold atomically')
    .option('--lake <uri>', 'lake root: a directory or s3://bucket/prefix ' + defaultFrom('lake'))
    .option('--reject-threshold <fraction>', 'fail when more than this fraction of raw lines is rejected', fraction('--reject-threshold'), DEFAULT_REJECT_THRESHOLD)
    .option('--max-shift <fraction>', 'largest class-balance change vs the previous gold (total variation) accepted without --accept-shift', fraction('--max-shift'), DEFAULT_MAX_CLASS_SHIFT)
    .option('--accept-shift', 'publish gold even if its class balance moved more than --max-shift')
    .option('--threads <n>', 'DuckDB worker threads (default: all cores)', integer('--threads', 1))
    .option('--memory-limit <size>', "DuckDB memory limit before spilling to disk, e.g. '1GB'", '1GB')
    .option('--max-uncompressed <size>', "cap on the uncompressed size of one .csv.gz file or zip member, e.g. '8GiB' (a zip archive may hold 4× this in all)", (v: string) => parseByteSize(v), DEFAULT_MAX_UNCOMPRESSED)
    .option('--wait <seconds>', 'when another ETL run holds the lake, wait up to this long for it (default: refuse at once)', seconds('--wait', LEASE_WAIT_BOUNDS), 0)
    .option('--lease-ttl <seconds>', 'seconds after which the lease of a run that stopped renewing it (killed) counts as abandoned', seconds('--lease-ttl', LEASE_TTL_BOUNDS), DEFAULT_LEASE_TTL_SECONDS)
    .option('--json', 'print the stage report as JSON')
    .action(async (opts: { lake?: string; rejectThreshold: number; maxShift: number; acceptShift?: boolean; threads?: number; memoryLimit: string; maxUncompressed: number; wait: number; leaseTtl: number; json?: boolean }) => {
      const lake = await openLake(opts.lake);
      const report = await runEtl(lake, {
        rejectThreshold: opts.rejectThreshold,
        maxClassShift: opts.maxShift,
        acceptShift: opts.acceptShift,
        threads: opts.threads,
        memoryLimit: opts.memoryLimit,
        maxUncompressedBytes: opts.maxUncompressed,
        waitSeconds: opts.wait,
        leaseTtlSeconds: opts.leaseTtl,
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const n = (x: number): string => x.toLocaleString('en-US');
      const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
      const s = report.silver;
      const lines = [
        `raw → silver: ${n(s.lines)} lines, ${n(s.rejected)} rejected (${(s.rejectRate * 100).toFixed(3)}%) → ${s.rejectsDir}; ${n(s.parsed)} file(s) parsed, ${n(s.reused)} unchanged`,
        ...s.quarantined.map((q) => `quarantined ${q.file} (sha256 ${q.sha256.slice(0, 12)}…, ${q.linesEstimated ? 'about ' : ''}${n(q.lines)} lines): ${q.reason}`),
        ...s.duplicates.map((d) => `duplicate: ${d.file} has the same content as ${d.sameAs}; ingested once`),
        ...s.extraColumns.map((e) => `${e.file}: ignored extra column(s) ${e.columns.join(', ')}`),
        ...(s.ignored.length ? [`not read (not .csv, .csv.gz or .zip): ${s.ignored.join(', ')}`] : []),
        ...(report.gold.splitBaskets ? [`${n(report.gold.splitBaskets)} basket(s) have lines in more than one file; their lines were combined`] : []),
        `silver → gold: ${n(goldRowsTotal(report))} labelled baskets (train ${n(report.gold.rows.train)}, validation ${n(report.gold.rows.validation)}, test ${n(report.gold.rows.test)}); ` +
          `${n(report.gold.unlabelledBaskets)} XX baskets excluded`,
        `class balance: Low ${pct(report.gold.classBalance.Low)}, Medium ${pct(report.gold.classBalance.Medium)}, High ${pct(report.gold.classBalance.High)}`,
        `validation: ${report.validation.checks.length} checks passed${report.validation.classShift !== null ? `; class shift ${pct(report.validation.classShift)}` : ''}`,
        `gold manifest sha256 ${report.gold.manifestSha256}${report.gold.unchanged ? ' (unchanged)' : ''}`,
        `${n(Math.round(report.linesPerSecond))} lines/s end to end (${report.seconds.toFixed(2)} s)`,
        '',
      ];
      process.stdout.write(lines.join('\n'));
    });
}
