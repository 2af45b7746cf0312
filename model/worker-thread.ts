/**
 * Starting a worker thread on one of our own modules. From the build (dist/… or the
 * API bundle) the worker is the sibling .js file. From the TypeScript sources (ts-jest,
 * ts-node) it is the .ts file, bundled in memory by esbuild (a dev dependency, needed
 * only there) and run as eval'd code: ~0.1 s per distinct entry, where registering
 * ts-node inside every worker costs seconds.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

const bundled = new Map<string, string>();

/** A worker entry's source bundled into one CommonJS script (dependencies inlined, native addons left to require). */
function bundleForEval(file: string): string {
  let code = bundled.get(file);
  if (code === undefined) {
    // createRequire: a bundler building the API must not follow this into esbuild itself.
    const esbuild = createRequire(__filename)('esbuild') as typeof import('esbuild');
    const out = esbuild.buildSync({ entryPoints: [file], bundle: true, platform: 'node', format: 'cjs', target: 'node20', write: false, logLevel: 'silent', external: ['@duckdb/*'] });
    code = out.outputFiles[0].text;
    bundled.set(file, code);
  }
  return code;
}

/** Starts `<dir>/<name>.js|.ts`, the extension being that of `siblingOf` (the caller's __filename). */
export function startWorker(siblingOf: string, name: string, options: WorkerOptions = {}): Worker {
  const ext = path.extname(siblingOf);
  const file = path.join(path.dirname(siblingOf), `${name}${ext}`);
  if (ext === '.ts') return new Worker(bundleForEval(file), { ...options, eval: true });
  return new Worker(file, options);
}
