/**
 * `npm run bench:api`: the production bundle on loopback, driven by autocannon.
 *
 * Model: a 100-tree, depth-16 forest trained with the real trainer on a synthetic
 * gold-shaped table, registered and approved in a temporary local registry.
 * Figures: cold start to ready (one process), maximum single-row /predict throughput
 * with --workers 2, p50/p99 latency at a fixed 2,000 req/s, batch-of-100 throughput,
 * worker RSS, and the workers' CPU per request (from /proc: independent of other load). Targets (issue 5): >= 10,000 req/s, p99 <= 5 ms at 2,000 req/s,
 * RSS <= 150 MiB per worker, ready within 1 s. Autocannon shares the 2 cores with
 * the workers, so throughput figures are conservative.
 *
 *   npm run bench:api                # ~1-2 minutes
 *   BENCH_SECONDS=5 npm run bench:api
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { FeatureStats, GoldTable } from '../etl/gold-schema';
import { GOLD_FEATURES } from '../etl/gold-schema';
import { DOMAINS, type ClassLabel } from '../etl/schema';
import { bundleApi } from '../api/build-bundle';
import { writeForestFile } from '../model/forest-file';
import { LocalRegistry } from '../model/registry/local';
import { trainForest } from '../model/trainer';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p90: number; p99: number; average: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(__filename)('autocannon') as Autocannon;

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROWS = 20_000;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CATEGORIES: Record<string, readonly string[]> = {
  BASKET_SIZE: DOMAINS.BASKET_SIZE,
  BASKET_TYPE: DOMAINS.BASKET_TYPE,
  BASKET_DOMINANT_MISSION: DOMAINS.BASKET_DOMINANT_MISSION,
  STORE_FORMAT: DOMAINS.STORE_FORMAT,
  STORE_REGION: ['E01', 'E02', 'W01', 'W02', 'N01', 'N02', 'S01', 'S02'],
  CUST_LIFESTAGE: DOMAINS.CUST_LIFESTAGE,
  CUST_PRICE_SENSITIVITY: DOMAINS.PRICE_SENSITIVITY,
};

/** A gold-shaped table whose label depends noisily on the features, so trees grow deep. */
export function syntheticGold(n: number, seed: number): GoldTable {
  const r = rng(seed);
  const numeric: Record<string, Float64Array> = {};
  const categorical: Record<string, (string | null)[]> = {};
  for (const f of GOLD_FEATURES) {
    if (f.kind === 'numeric') numeric[f.name] = new Float64Array(n);
    else categorical[f.name] = new Array(n);
  }
  const labels: ClassLabel[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const lines = 1 + Math.floor(r() * 40);
    const qty = lines + Math.floor(r() * lines * 2);
    const spend = qty * (0.5 + r() * 4);
    numeric.SPEND[i] = Math.round(spend * 100) / 100;
    numeric.QUANTITY[i] = qty;
    numeric.LINES[i] = lines;
    numeric.DISTINCT_PRODUCTS[i] = Math.max(1, lines - Math.floor(r() * 3));
    numeric.DISTINCT_CATEGORIES[i] = Math.max(1, Math.floor(lines / 2));
    numeric.DISTINCT_DEPARTMENTS[i] = Math.max(1, Math.floor(lines / 5));
    numeric.AVG_UNIT_PRICE[i] = spend / qty;
    numeric.MAX_UNIT_PRICE[i] = (spend / qty) * (1 + r());
    numeric.SHOP_HOUR[i] = 8 + Math.floor(r() * 14);
    numeric.SHOP_WEEKDAY[i] = 1 + Math.floor(r() * 7);
    for (const [name, cats] of Object.entries(CATEGORIES)) {
      categorical[name][i] = name.startsWith('CUST_') && r() < 0.2 ? null : cats[Math.floor(r() * cats.length)];
    }
    const score = spend / qty + (categorical.STORE_FORMAT[i] === 'LS' ? 0.8 : 0) + (categorical.CUST_PRICE_SENSITIVITY[i] === 'LA' ? -1 : 0) + (r() - 0.5) * 2;
    labels[i] = score < 1.5 ? 'High' : score < 3 ? 'Medium' : 'Low';
  }
  return { rows: n, basketIds: Array.from({ length: n }, (_, i) => `B${i}`), labels, numeric, categorical, manifestSha256: 'b'.repeat(64) };
}

export function featureStats(table: GoldTable): Record<string, FeatureStats> {
  const out: Record<string, FeatureStats> = {};
  for (const [name, col] of Object.entries(table.numeric)) {
    const sorted = Float64Array.from(col).sort();
    const edges = [...new Set([1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => sorted[Math.floor((d / 10) * (sorted.length - 1))]))];
    const counts = new Array(edges.length + 1).fill(0);
    for (const v of col) {
      let b = edges.findIndex((e) => v <= e);
      if (b < 0) b = edges.length;
      counts[b]++;
    }
    const mean = col.reduce((a, b) => a + b, 0) / col.length;
    out[name] = { kind: 'numeric', count: col.length, missing: 0, mean, std: 0, min: sorted[0], max: sorted[sorted.length - 1], edges, fractions: counts.map((c) => c / col.length) };
  }
  for (const [name, col] of Object.entries(table.categorical)) {
    const present = col.filter((v): v is string => v !== null);
    const frequencies: Record<string, number> = {};
    for (const v of present) frequencies[v] = (frequencies[v] ?? 0) + 1 / present.length;
    out[name] = { kind: 'categorical', count: present.length, missing: col.length - present.length, frequencies };
  }
  return out;
}

export function sampleBody(table: GoldTable, i: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const f of GOLD_FEATURES) row[f.name] = f.kind === 'numeric' ? table.numeric[f.name][i] : table.categorical[f.name][i];
  return row;
}

function start(entry: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  return spawn(process.execPath, [entry, ...args], {
    cwd: path.dirname(entry),
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function waitReady(port: number, timeoutMs = 30_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/ready`);
      if (res.status === 200) return performance.now() - t0;
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`server on ${port} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** The cluster workers (children of `pid`): RSS in MiB and CPU seconds (user + system) so far, from /proc. */
async function workers(pid: number): Promise<{ rssMiB: number; cpuSeconds: number }[]> {
  const out: { rssMiB: number; cpuSeconds: number }[] = [];
  const ticks = 100; // USER_HZ on Linux
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== pid) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      out.push({ rssMiB: rss ? Number(rss[1]) / 1024 : NaN, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / ticks });
    } catch {
      // process went away
    }
  }
  return out;
}

/**
 * Server CPU per request over one run: the workers' CPU time divided by the requests
 * answered. Unlike req/s it does not depend on what else the machine is running.
 */
async function cpuPerRequest(pid: number, run: () => Promise<AutocannonResult>): Promise<{ result: AutocannonResult; usPerRequest: number }> {
  const cpu = async () => (await workers(pid)).reduce((s, w) => s + w.cpuSeconds, 0);
  const before = await cpu();
  const result = await run();
  const used = (await cpu()) - before;
  return { result, usPerRequest: (used / Math.max(1, result.requests.total)) * 1e6 };
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-bench-api-'));
  try {
    process.stderr.write(`training 100 trees, depth 16 on ${fmt(ROWS)} synthetic rows...\n`);
    const table = syntheticGold(ROWS, 7);
    const t0 = performance.now();
    const forest = await trainForest(table, { trees: 100, maxDepth: 16, seed: 7, featureStats: featureStats(table), progress: false });
    const nodes = forest.trees.reduce((s, t) => s + t.feature.length, 0);
    process.stderr.write(`trained in ${fmt((performance.now() - t0) / 1000, 1)} s: ${fmt(nodes)} nodes\n`);
    const file = path.join(dir, 'forest.json');
    await writeForestFile(file, forest);
    const registry = new LocalRegistry(path.join(dir, 'registry'));
    const v = await registry.register(file, { by: 'bench', force: true });
    await registry.approve(v.version, 'bench', 'bench');
    const { entry } = await bundleApi(path.join(dir, 'bundle'));
    const env = { PRICESENSE_REGISTRY: registry.uri, PRICESENSE_LOG_LEVEL: 'info' };

    // Cold start: process spawn to /ready 200, one process.
    const coldPort = 18_900 + Math.floor(Math.random() * 500);
    const spawned = performance.now();
    const single = start(entry, { ...env, PORT: String(coldPort) });
    await waitReady(coldPort);
    const coldMs = performance.now() - spawned;
    await stop(single);

    const port = coldPort + 1;
    const primary = start(entry, { ...env, PORT: String(port) }, ['--workers', '2']);
    await waitReady(port);
    // Both workers must have loaded the model before measuring.
    await new Promise((r) => setTimeout(r, 2000));
    const url = `http://127.0.0.1:${port}`;
    const one = JSON.stringify(sampleBody(table, 1));
    const batch = JSON.stringify({ instances: Array.from({ length: 100 }, (_, i) => sampleBody(table, i)) });
    const headers = { 'content-type': 'application/json' };
    const run = (opts: Record<string, unknown>) => autocannon({ url: `${url}/predict`, method: 'POST', headers, duration: SECONDS, ...opts });

    await run({ body: one, connections: 32, duration: 2 }); // warm-up (JIT)
    const { result: max, usPerRequest: cpuOne } = await cpuPerRequest(primary.pid!, () => run({ body: one, connections: 64 }));
    const fixed = await run({ body: one, connections: 16, overallRate: 2000 });
    const { result: batched, usPerRequest: cpuBatch } = await cpuPerRequest(primary.pid!, () => run({ body: batch, connections: 8 }));
    const rss = (await workers(primary.pid!)).map((w) => w.rssMiB);
    await stop(primary);

    const failures = (r: AutocannonResult) => r.errors + r.timeouts + r.non2xx;
    const figures = {
      coldStartMs: Math.round(coldMs),
      forestNodes: nodes,
      maxReqPerSec: Math.round(max.requests.average),
      maxP50Ms: max.latency.p50,
      maxP99Ms: max.latency.p99,
      serverCpuUsPerRequest: Math.round(cpuOne),
      fixed2000ReqPerSec: Math.round(fixed.requests.average),
      fixed2000P50Ms: fixed.latency.p50,
      fixed2000P99Ms: fixed.latency.p99,
      batch100ReqPerSec: Math.round(batched.requests.average),
      batch100RowsPerSec: Math.round(batched.requests.average * 100),
      batch100P99Ms: batched.latency.p99,
      batch100ServerCpuUsPerRequest: Math.round(cpuBatch),
      workerRssMiB: rss.map((m) => Math.round(m)),
      failedRequests: failures(max) + failures(fixed) + failures(batched),
    };
    const lines = [
      `pricesense API bench (bundle, --workers 2, ${os.availableParallelism()} cores shared with autocannon, ${SECONDS}s per run, 100 trees / ${fmt(nodes)} nodes)`,
      `  cold start to ready (1 process)     ${fmt(figures.coldStartMs)} ms        (target <= 1,000)`,
      `  single-row /predict, max            ${fmt(figures.maxReqPerSec)} req/s   p50 ${max.latency.p50} ms  p99 ${max.latency.p99} ms   (target >= 10,000 req/s)`,
      `  server CPU per single-row request   ${fmt(cpuOne)} µs (both workers' user+system CPU / requests; load-independent)`,
      `  single-row /predict at 2,000 req/s  p50 ${fixed.latency.p50} ms  p99 ${fixed.latency.p99} ms   achieved ${fmt(figures.fixed2000ReqPerSec)} req/s   (target p99 <= 5 ms)`,
      `  batch of 100                        ${fmt(figures.batch100ReqPerSec)} req/s = ${fmt(figures.batch100RowsPerSec)} rows/s   p99 ${batched.latency.p99} ms   server CPU ${fmt(cpuBatch)} µs/request`,
      `  worker RSS after the runs           ${figures.workerRssMiB.map((m) => `${m} MiB`).join(', ')}   (target <= 150 MiB)`,
      `  failed requests                     ${figures.failedRequests}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(figures)}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:api failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
