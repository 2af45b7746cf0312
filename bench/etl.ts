/**
 * npm run bench:etl — synthesize a dunnhumby-scale drop (default 2.6M lines), then time
 * raw → silver → gold on it and report lines/s and peak RSS. Peak RSS is sampled from
 * the process (Node + DuckDB share it) every 50 ms.
 *
 *   BENCH_ETL_BASKETS (default 300000 ≈ 2.65M lines), BENCH_ETL_THREADS, BENCH_ETL_MEMORY (default 1GB)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalLake } from '../etl/lake/local';
import { runEtl } from '../etl/pipeline';
import { synthesize } from '../etl/synth/generate';

async function main(): Promise<void> {
  const baskets = Number(process.env.BENCH_ETL_BASKETS ?? 300_000);
  const threads = process.env.BENCH_ETL_THREADS ? Number(process.env.BENCH_ETL_THREADS) : undefined;
  const memoryLimit = process.env.BENCH_ETL_MEMORY ?? '1GB';
  process.env.PRICESENSE_PROGRESS ??= 'off';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-bench-etl-'));
  try {
    const lake = new LocalLake(dir);
    let t = process.hrtime.bigint();
    const synth = await synthesize(lake, { baskets, weeks: 10, seed: 2024 });
    const synthSeconds = Number(process.hrtime.bigint() - t) / 1e9;
    const rawBytes = synth.files.reduce((n, f) => n + f.bytes, 0);
    console.log(`synth: ${synth.lines.total.toLocaleString('en-US')} lines (${(rawBytes / 2 ** 20).toFixed(0)} MiB) in ${synthSeconds.toFixed(2)} s = ${Math.round(synth.lines.total / synthSeconds).toLocaleString('en-US')} lines/s`);

    let peak = process.memoryUsage.rss();
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
    t = process.hrtime.bigint();
    const report = await runEtl(lake, { threads, memoryLimit });
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss());

    const lps = report.silver.lines / seconds;
    console.log(`etl raw→gold: ${report.silver.lines.toLocaleString('en-US')} lines in ${seconds.toFixed(2)} s = ${Math.round(lps).toLocaleString('en-US')} lines/s (target ≥ 1,000,000)`);
    for (const s of report.stages) console.log(`  ${s.stage}: ${s.seconds.toFixed(2)} s, ${s.perSecond.toLocaleString('en-US')} rows/s`);
    console.log(`  rejected ${report.silver.rejected}, gold baskets ${(report.gold.rows.train + report.gold.rows.validation + report.gold.rows.test).toLocaleString('en-US')}`);
    console.log(`peak RSS: ${(peak / 2 ** 20).toFixed(0)} MiB (target ≤ 2048 MiB); cores: ${os.availableParallelism()}, load average ${os.loadavg()[0].toFixed(2)}`);
    console.log(JSON.stringify({ bench: 'etl', lines: report.silver.lines, seconds, linesPerSecond: Math.round(lps), peakRssMiB: Math.round(peak / 2 ** 20), synthLinesPerSecond: Math.round(synth.lines.total / synthSeconds) }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
