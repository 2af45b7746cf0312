/**
 * Test fixtures: small random forests over a gold-like feature spec, sealed with the
 * real forest-file code and published through a real local registry.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { FeatureStats } from '../../etl/gold-schema';
import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION, type FeatureSpec, type ForestFileV1, type TreeV1 } from '../../model/format';
import { sealForest, writeForestFile } from '../../model/forest-file';
import { LocalRegistry } from '../../model/registry/local';
import type { ModelVersion } from '../../model/registry/types';
import { DEFAULT_CONFIG, type ApiConfig } from '../config';
import { mulberry32 } from '../../etl/synth/rng';
import { RandomForestClassifier } from 'ml-random-forest';
import { importMlRandomForest } from '../../model/import-ml-rf';

export { mulberry32 };

export const CLASSES = ['Low', 'Medium', 'High'];

export const FEATURES: FeatureSpec[] = [
  { name: 'SPEND', kind: 'numeric' },
  { name: 'QUANTITY', kind: 'numeric' },
  { name: 'SHOP_HOUR', kind: 'numeric' },
  { name: 'BASKET_SIZE', kind: 'categorical', categories: ['S', 'M', 'L'] },
  { name: 'STORE_REGION', kind: 'categorical', categories: ['E01', 'E02', 'W01', 'W02'] },
  { name: 'CUST_LIFESTAGE', kind: 'categorical', categories: ['YA', 'OA', 'YF', 'OF', 'PE', 'OT'] },
];


const RANGES: Record<string, [number, number]> = { SPEND: [0, 200], QUANTITY: [1, 60], SHOP_HOUR: [0, 23] };

function randomTree(rng: () => number, features: FeatureSpec[], depth: number): TreeV1 {
  const t = { feature: [] as number[], threshold: [] as number[], left: [] as number[], right: [] as number[], defaultLeft: [] as number[], value: [] as number[], count: [] as number[], catBits: [] as number[] };
  const grow = (d: number): number => {
    const i = t.feature.length;
    t.feature.push(-1);
    t.threshold.push(0);
    t.left.push(-1);
    t.right.push(-1);
    t.defaultLeft.push(rng() < 0.5 ? 1 : 0);
    const raw = CLASSES.map(() => rng() + 0.05);
    const sum = raw.reduce((a, b) => a + b, 0);
    for (const v of raw) t.value.push(v / sum);
    t.count.push(Math.max(1, Math.round(1000 / 2 ** (depth - d + 1))));
    if (d === 0) return i;
    const f = Math.floor(rng() * features.length);
    const spec = features[f];
    t.feature[i] = f;
    if (spec.kind === 'numeric') {
      const [lo, hi] = RANGES[spec.name] ?? [0, 1];
      t.threshold[i] = lo + rng() * (hi - lo);
    } else {
      t.threshold[i] = t.catBits.length;
      let word = 0;
      for (let c = 0; c < spec.categories.length; c++) if (rng() < 0.5) word |= 1 << c;
      t.catBits.push(word);
    }
    t.left[i] = grow(d - 1);
    t.right[i] = grow(d - 1);
    return i;
  };
  grow(depth);
  return t;
}

export function baselineStats(features: FeatureSpec[] = FEATURES): Record<string, FeatureStats> {
  const out: Record<string, FeatureStats> = {};
  for (const f of features) {
    if (f.kind === 'numeric') {
      const [lo, hi] = RANGES[f.name] ?? [0, 1];
      const edges = Array.from({ length: 9 }, (_, i) => lo + ((i + 1) * (hi - lo)) / 10);
      out[f.name] = { kind: 'numeric', count: 1000, missing: 0, mean: (lo + hi) / 2, std: (hi - lo) / 3.5, min: lo, max: hi, edges, fractions: new Array(10).fill(0.1) };
    } else {
      const frequencies: Record<string, number> = {};
      for (const c of f.categories) frequencies[c] = 1 / f.categories.length;
      out[f.name] = { kind: 'categorical', count: 900, missing: 100, frequencies };
    }
  }
  return out;
}

export function makeForest(seed: number, options: { trees?: number; depth?: number; features?: FeatureSpec[] } = {}): ForestFileV1 {
  const rng = mulberry32(seed);
  const features = options.features ?? FEATURES;
  const trees = Array.from({ length: options.trees ?? 5 }, () => randomTree(rng, features, options.depth ?? 4));
  return sealForest({
    format: FOREST_FORMAT_ID,
    formatVersion: FOREST_FORMAT_VERSION,
    classes: CLASSES,
    features,
    aggregation: 'soft',
    trees,
    training: { trainer: 'api-test-fixture', hyperparameters: { trees: trees.length, seed }, seed, datasetManifestSha256: null, rows: 1000, createdAt: '2024-01-01T00:00:00.000Z' },
    featureStats: baselineStats(features),
    metrics: { accuracy: 0.8, macroF1: 0.75 },
  });
}

/**
 * A hard-vote forest as pricesense imports it from ml-random-forest (the original
 * design's trainer): trained here on rows of FEATURES whose label depends on the
 * features, so trees disagree and vote fractions differ from mean leaf distributions.
 */
export function makeImportedForest(seed: number): ForestFileV1 {
  const rng = mulberry32(seed);
  const matrix: number[][] = [];
  const labels: number[] = [];
  const code = (f: FeatureSpec, v: unknown) => (f.kind === 'categorical' ? (v === null ? NaN : f.categories.indexOf(v as string)) : (v as number));
  for (let i = 0; i < 400; i++) {
    const row = sampleRow(rng);
    matrix.push(FEATURES.map((f) => code(f, row[f.name])));
    const score = (row.SPEND as number) / 70 + (row.BASKET_SIZE === 'L' ? 1 : 0) + rng() * 1.5;
    labels.push(score < 1.2 ? 0 : score < 2.4 ? 1 : 2);
  }
  const rf = new RandomForestClassifier({ nEstimators: 9, seed, noOOB: true, maxFeatures: 0.6, treeOptions: { maxDepth: 5 } });
  rf.train(matrix, labels);
  return importMlRandomForest(rf.toJSON(), { features: FEATURES, classes: CLASSES, featureStats: baselineStats(), metrics: { accuracy: 0.8 } });
}

/** A valid basket for FEATURES. */
export function sampleRow(rng: () => number = Math.random): Record<string, string | number | null> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  return {
    SPEND: Math.round(rng() * 20000) / 100,
    QUANTITY: 1 + Math.floor(rng() * 60),
    SHOP_HOUR: Math.floor(rng() * 24),
    BASKET_SIZE: pick(['S', 'M', 'L']),
    STORE_REGION: pick(['E01', 'E02', 'W01', 'W02']),
    CUST_LIFESTAGE: rng() < 0.2 ? null : pick(['YA', 'OA', 'YF', 'OF', 'PE', 'OT']),
  };
}

export const silentLogger = (): Logger => pino({ level: 'silent' });

/** A logger at `level` whose lines land parsed in `lines`, for tests that read what was logged. */
export function capturingLogger<Line = Record<string, unknown>>(level: pino.Level): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** A loopback port nothing listens on (it was free a moment ago): for a child process to listen on, or to find nobody there. */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ClusterEvent {
  event?: string;
  pid?: number;
  level?: string;
  msg?: string;
}

/** The production bundle's primary process with its workers, and what it logged. */
export interface BundleCluster {
  readonly child: ChildProcess;
  /** Its JSON log lines (primary and workers), in arrival order. */
  readonly events: ClusterEvent[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** The processes that logged `event`, each once. */
  pidsOf(event: string): number[];
  /** SIGTERM, and waits for the exit (nothing when it has exited already). */
  stop(): Promise<void>;
}

/**
 * Starts the bundle at `entry` with `--workers <workers>` on `port`, serving `registry`,
 * logging at info, polling every 300 ms, event-loop shedding off (its 503s on a loaded
 * shared machine would be legitimate, and are what api/test/load-shedding.test.ts is about);
 * `env` adds or overrides variables.
 */
export function spawnBundleCluster(entry: string, options: { port: number; registry: string; workers?: number; env?: Record<string, string> }): BundleCluster {
  const child = spawn(process.execPath, [entry, '--workers', String(options.workers ?? 2)], {
    cwd: path.dirname(entry),
    env: {
      PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(options.port), HOST: '127.0.0.1', PRICESENSE_REGISTRY: options.registry,
      PRICESENSE_LOG_LEVEL: 'info', PRICESENSE_MAX_EVENT_LOOP_DELAY: '0', PRICESENSE_POLL_INTERVAL: '300ms', ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: ClusterEvent[] = [];
  let buffered = '';
  child.stdout!.on('data', (c: Buffer) => {
    buffered += c.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        events.push(JSON.parse(line) as ClusterEvent);
      } catch {
        // not a log line
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  return {
    child,
    events,
    stderr: () => stderr,
    pidsOf: (event) => [...new Set(events.filter((e) => e.event === event).map((e) => e.pid!))],
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface TestRegistry {
  readonly dir: string;
  readonly registry: LocalRegistry;
  /** Registers a fixture forest; approves it unless told otherwise. */
  publish(seed: number, options?: { approve?: boolean; trees?: number; depth?: number; features?: FeatureSpec[]; forest?: ForestFileV1 }): Promise<ModelVersion>;
  /** Where the local registry keeps a version (its forest.json, audit/). */
  versionDir(version: number): string;
  /** Overwrites a registered version's stored forest: the registry's checksum check must catch it. */
  tamper(version: number): Promise<void>;
  cleanup(): Promise<void>;
}

export async function testRegistry(): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-api-'));
  const registry = new LocalRegistry(path.join(dir, 'registry'));
  const versionDir = (version: number) => path.join(registry.uri, 'versions', String(version).padStart(6, '0'));
  return {
    dir,
    registry,
    versionDir,
    tamper: (version) => writeFile(path.join(versionDir(version), 'forest.json'), '{"tampered": true}'),
    async publish(seed, options = {}) {
      const file = path.join(dir, `forest-${seed}.json`);
      await writeForestFile(file, options.forest ?? makeForest(seed, options));
      const v = await registry.register(file, { by: 'test' });
      return options.approve === false ? v : registry.approve(v.version, 'test approval', 'test');
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * The service configuration for tests. Event-loop shedding is off: the machine running
 * the suite is shared, and a loaded one would shed requests a test expects answered
 * (api/test/load-shedding.test.ts turns it on where it is the subject).
 */
export function testConfig(overrides: Partial<ApiConfig> = {}): ApiConfig {
  return { ...DEFAULT_CONFIG, port: 0, host: '127.0.0.1', logLevel: 'silent', pollIntervalMs: 60_000, maxEventLoopDelayMs: 0, ...overrides };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain loopback HTTP call (keep-alive through `agent`). */
export function call(port: number, method: string, path: string, body?: unknown, agent?: http.Agent): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      { host: '127.0.0.1', port, method, path, agent, headers: payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Polls `check` until it returns true, failing after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs promtool (Debian package `prometheus`, .ci/apt-packages.txt) with `input` on stdin. */
export function promtool(args: string[], input?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.on('error', (err) => reject(new Error(`promtool could not run (apt-get install prometheus): ${err.message}`)));
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(input ?? '');
  });
}
