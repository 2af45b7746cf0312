/**
 * Builds the deployable API: one esbuild bundle (every JavaScript dependency inlined),
 * the model loader's worker-thread entry, plus Swagger UI's static assets, which cannot be bundled and are served from
 * swagger-ui/ next to it. The Docker runtime image contains exactly this directory.
 *
 *   npm run bundle            → dist/bundle/{server.js, swagger-ui/}
 */
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { build, type BuildOptions } from 'esbuild';
import { packageRoot, packageVersion } from '../core/version';

export const SWAGGER_ASSETS = ['swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'swagger-ui.css', 'index.css', 'favicon-16x16.png', 'favicon-32x32.png'];

/** What both entry points (the server and the model loader's worker) are built with. */
const ESBUILD_OPTIONS = {
  bundle: true,
  platform: 'node',
  target: 'node24', // the runtime image (Dockerfile)
  format: 'cjs',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
} as const satisfies BuildOptions;

export interface BundleResult {
  readonly outDir: string;
  readonly entry: string;
  readonly bytes: number;
}

export async function bundleApi(outDir = path.join(packageRoot(), 'dist', 'bundle')): Promise<BundleResult> {
  const root = packageRoot();
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.join(outDir, 'swagger-ui'), { recursive: true });
  const entry = path.join(outDir, 'server.js');
  await build({
    ...ESBUILD_OPTIONS,
    entryPoints: [path.join(root, 'api', 'main.ts')],
    outfile: entry,
    // The service version is baked in: the image has no package.json to read it from.
    define: { 'process.env.PRICESENSE_SERVICE_VERSION': JSON.stringify(packageVersion()) },
    // Native or optional modules that serving never reaches (the lake's DuckDB engine, pino transports' worker threads).
    external: ['@duckdb/*', 'pino-pretty', 'swagger-ui-dist/package.json'],
  });
  // The model loader's worker thread (model/forest-loader.ts) starts forest-loader-worker.js next to the bundle.
  await build({
    ...ESBUILD_OPTIONS,
    entryPoints: [path.join(root, 'model', 'forest-loader-worker.ts')],
    outfile: path.join(outDir, 'forest-loader-worker.js'),
  });
  const assets = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  for (const file of SWAGGER_ASSETS) await copyFile(path.join(assets, file), path.join(outDir, 'swagger-ui', file));
  return { outDir, entry, bytes: (await stat(entry)).size };
}

if (require.main === module) {
  bundleApi(process.argv[2] ? path.resolve(process.argv[2]) : undefined).then(
    (r) => process.stdout.write(`bundled ${path.relative(process.cwd(), r.entry)} (${(r.bytes / 1024 / 1024).toFixed(1)} MiB) + swagger-ui assets\n`),
    (err: unknown) => {
      process.stderr.write(`bundle failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
