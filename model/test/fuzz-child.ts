/**
 * Runs a fuzz worker (a test-only TypeScript entry, bundled with esbuild) in a fresh
 * child process, so its memory is its own, with a small old space: a case that grows the
 * JS heap past 96 MiB crashes the child (exit code and stderr are asserted). Memory
 * outside the heap (buffers, zlib, worker threads) is freed when the collector runs,
 * which on a busy host can be late: the peak RSS of many cases is not a precise bound.
 * A watchdog kills a hang and names the last case started (workers print
 * `case <i> <name>` before each case and one JSON report line at the end).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';

export interface FuzzChildOptions {
  /** A hang, not a speed limit: past it the child is killed and the last case started is named. */
  readonly watchdogMs: number;
  /** Worker-thread entries the bundle starts as siblings (model/worker-thread.ts), as the API bundle ships them. */
  readonly workerEntries?: readonly string[];
  /** Node flags besides the 96 MiB old space (--expose-gc, --single-threaded-gc). */
  readonly nodeFlags?: readonly string[];
}

/** Bundles `entry` (and its worker entries) into a temporary directory, runs it with `args`, returns its report line. */
export async function runFuzzChild<R>(entry: string, args: string[], options: FuzzChildOptions): Promise<R> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `pricesense-${path.basename(entry, '.ts')}-`));
  try {
    return await runBundled<R>(entry, dir, args, options);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runBundled<R>(entry: string, dir: string, args: string[], { watchdogMs, workerEntries = [], nodeFlags = [] }: FuzzChildOptions): Promise<R> {
  const script = path.join(dir, `${path.basename(entry, '.ts')}.js`);
  for (const e of [entry, ...workerEntries]) buildSync({ entryPoints: [e], bundle: true, platform: 'node', target: 'node20', outfile: path.join(dir, `${path.basename(e, '.ts')}.js`), logLevel: 'silent' });
  const child = spawn(process.execPath, ['--max-old-space-size=96', ...nodeFlags, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  let timedOut = false;
  const watchdog = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, watchdogMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(watchdog);
  const lines = out.trim().split('\n');
  if (timedOut) throw new Error(`${path.basename(entry)} did not finish within ${watchdogMs / 1000} s; last case started: ${lines.filter((l) => l.startsWith('case ')).at(-1)}`);
  expect({ code, err: err.slice(0, 2000) }).toEqual({ code: 0, err: '' });
  return JSON.parse(lines[lines.length - 1] ?? '') as R;
}
