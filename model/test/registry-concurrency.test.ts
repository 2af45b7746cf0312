import { spawn } from 'node:child_process';
import { buildSync } from 'esbuild';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalRegistry } from '../registry';
import { writeFixtureForest } from './registry-fixtures';

const WORKERS = 4;
const PER_WORKER = 10;
const ROOT = path.resolve(__dirname, '..', '..');

interface Worker {
  readonly ready: Promise<void>;
  readonly done: Promise<number[]>;
  go(): void;
}

/**
 * Bundles model/test/registry-worker.ts (and the registry code it runs) into one
 * JavaScript file, so each worker process starts in a fraction of ts-node's time.
 */
function bundleWorker(outDir: string): string {
  const outfile = path.join(outDir, 'registry-worker.js');
  buildSync({ entryPoints: [path.join(__dirname, 'registry-worker.ts')], bundle: true, platform: 'node', target: 'node20', outfile, logLevel: 'silent' });
  return outfile;
}

/** A real OS process running the bundled worker. */
function startWorker(script: string, registryRoot: string, forests: string[]): Worker {
  const child = spawn(process.execPath, [script, registryRoot, ...forests], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.startsWith('ready\n')) onReady();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const done = new Promise<number[]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`worker exited ${code}: ${err}`));
      else resolve(JSON.parse(out.slice('ready\n'.length)) as number[]);
    });
  });
  return { ready, done, go: () => child.stdin.end('go\n') };
}

describe('local registry: concurrent registration from separate processes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-registry-conc-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`${WORKERS} processes x ${PER_WORKER} registrations give versions 1..${WORKERS * PER_WORKER}, no gaps, no duplicates, nothing lost`, async () => {
    const registryRoot = path.join(dir, 'registry');
    const batches: string[][] = [];
    for (let w = 0; w < WORKERS; w++) {
      const batch: string[] = [];
      for (let i = 0; i < PER_WORKER; i++) {
        const seed = w * PER_WORKER + i + 1;
        batch.push(await writeFixtureForest(dir, `w${w}-${i}.json`, { seed }));
      }
      batches.push(batch);
    }
    const script = bundleWorker(dir);
    const workers = batches.map((b) => startWorker(script, registryRoot, b));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go();
    const reported = await Promise.all(workers.map((w) => w.done));

    const total = WORKERS * PER_WORKER;
    const expected = Array.from({ length: total }, (_, i) => i + 1);
    expect(reported.flat().sort((a, b) => a - b)).toEqual(expected);
    for (const versions of reported) expect([...versions].sort((a, b) => a - b)).toEqual(versions);

    const listed = await new LocalRegistry(registryRoot).list();
    expect(listed.map((v) => v.version)).toEqual(expected);
    // Every forest landed exactly once, under the version its worker was told, with its own bytes.
    const byFile = new Map<string, number>();
    batches.forEach((b, w) => b.forEach((file, i) => byFile.set(file, reported[w][i])));
    const registry = new LocalRegistry(registryRoot);
    for (const [file, version] of byFile) {
      expect(await registry.fetch(version)).toEqual(await readFile(file));
    }
    expect(new Set(listed.map((v) => v.forestSha256)).size).toBe(total);
  });
});
