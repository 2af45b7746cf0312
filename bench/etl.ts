/**
 * npm run bench:etl — synthesize a dunnhumby-scale drop (default 2.67M lines), then time
 * raw → silver → gold on it and report lines/s, CPU-seconds and peak RSS.
 *
 * Wall time on a shared machine also counts waiting for a core, so the bench reports
 * the process's CPU time too (process.cpuUsage() includes DuckDB's worker threads,
 * which run in-process) and lines per CPU-second; the target of 1M lines/s on 2 cores
 * is ≤ 2 CPU-s per 1M lines. Peak RSS is sampled from the process (Node + DuckDB share
 * it) every 50 ms.
 *
 *   BENCH_ETL_BASKETS (default 300000 ≈ 2.67M lines), BENCH_ETL_THREADS, BENCH_ETL_MEMORY (default 1GB),
 *   BENCH_ETL_RUNS (default 1: ETL runs on the same drop; the best run is reported as well)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalLake } from '../etl/lake/local';
import { runEtl, type EtlReport } from '../etl/pipeline';
import { synthesize } from '../etl/synth/generate';

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const cpuSince = (start: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
};

interface Run {
  report: EtlReport;
  seconds: number;
  cpuSeconds: number;
  peak: number;
}

async function timedRun(lake: LocalLake, threads: number | undefined, memoryLimit: string): Promise<Run> {
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
  const cpu = process.cpuUsage();
  const t = process.hrtime.bigint();
  try {
    const report = await runEtl(lake, { threads, memoryLimit });
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    return { report, seconds, cpuSeconds: cpuSince(cpu), peak: Math.max(peak, process.memoryUsage.rss()) };
  } finally {
    clearInterval(sampler);
  }
}

async function main(): Promise<void> {
  const baskets = Number(process.env.BENCH_ETL_BASKETS ?? 300_000);
  const threads = process.env.BENCH_ETL_THREADS ? Number(process.env.BENCH_ETL_THREADS) : undefined;
  const memoryLimit = process.env.BENCH_ETL_MEMORY ?? '1GB';
  const runs = Math.max(1, Number(process.env.BENCH_ETL_RUNS ?? 1));
  process.env.PRICESENSE_PROGRESS ??= 'off';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-bench-etl-'));
  try {
    const lake = new LocalLake(dir);
    const synthCpu = process.cpuUsage();
    const t = process.hrtime.bigint();
    const synth = await synthesize(lake, { baskets, weeks: 10, seed: 2024 });
    const synthSeconds = Number(process.hrtime.bigint() - t) / 1e9;
    const synthCpuSeconds = cpuSince(synthCpu);
    const rawBytes = synth.files.reduce((n, f) => n + f.bytes, 0);
    console.log(
      `synth: ${fmt(synth.lines.total)} lines (${(rawBytes / 2 ** 20).toFixed(0)} MiB) in ${synthSeconds.toFixed(2)} s = ${fmt(synth.lines.total / synthSeconds)} lines/s ` +
        `(${synthCpuSeconds.toFixed(2)} CPU-s, ${fmt(synth.lines.total / synthCpuSeconds)} lines/CPU-s)`,
    );

    const all: Run[] = [];
    for (let i = 0; i < runs; i++) {
      const run = await timedRun(lake, threads, memoryLimit);
      all.push(run);
      const { report, seconds, cpuSeconds, peak } = run;
      const lines = report.silver.lines;
      console.log(
        `etl raw→gold${runs > 1 ? ` (run ${i + 1}/${runs})` : ''}: ${fmt(lines)} lines in ${seconds.toFixed(2)} s = ${fmt(lines / seconds)} lines/s (target ≥ 1,000,000); ` +
          `${cpuSeconds.toFixed(2)} CPU-s = ${fmt(lines / cpuSeconds)} lines/CPU-s, ${((cpuSeconds / lines) * 1e6).toFixed(2)} CPU-s per 1M lines (target ≤ 2 on 2 cores)`,
      );
      for (const s of report.stages) {
        console.log(`  ${s.stage}: ${s.seconds.toFixed(2)} s, ${fmt(s.perSecond)} rows/s; ${s.cpuSeconds.toFixed(2)} CPU-s, ${fmt(s.perCpuSecond)} rows/CPU-s`);
      }
      console.log(`  rejected ${report.silver.rejected}, gold baskets ${fmt(report.gold.rows.train + report.gold.rows.validation + report.gold.rows.test)}; peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB (target ≤ 2048 MiB)`);
    }
    const best = all.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const lines = best.report.silver.lines;
    const peak = Math.max(...all.map((r) => r.peak));
    console.log(`cores: ${os.availableParallelism()}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other processes share the cores: wall figures are indicative, CPU figures steadier)`);
    console.log(
      JSON.stringify({
        bench: 'etl',
        lines,
        seconds: best.seconds,
        linesPerSecond: Math.round(lines / best.seconds),
        cpuSeconds: best.cpuSeconds,
        linesPerCpuSecond: Math.round(lines / best.cpuSeconds),
        stages: best.report.stages,
        peakRssMiB: Math.round(peak / 2 ** 20),
        synthLinesPerSecond: Math.round(synth.lines.total / synthSeconds),
        synthLinesPerCpuSecond: Math.round(synth.lines.total / synthCpuSeconds),
        loadAverage: os.loadavg()[0],
      }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
