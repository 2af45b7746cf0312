/**
 * The worker entry must work from the build as well as from sources: compile the
 * model and etl sources to JavaScript (esbuild, one file per source, as tsc would
 * lay out dist/), train there on 2 threads in a child process, and compare with the
 * forest trained here from the TypeScript sources.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { trainForest } from '../trainer';
import { NOISY_FEATURES, noisyTable } from './trainer-fixtures';

const root = path.resolve(__dirname, '..', '..');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'test' && entry.name !== 'testing') out.push(...(await sources(rel)));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path.join(root, rel));
  }
  return out;
}

describe('trainer workers from compiled JavaScript', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-trainer-dist-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('trains the same forest from dist-style .js (worker.js) on 2 threads as from sources', async () => {
    const entryPoints = [...(await sources('model')), ...(await sources('etl')), ...(await sources('core')), ...(await sources('contracts'))];
    await build({ entryPoints, outdir: dir, outbase: root, format: 'cjs', platform: 'node', target: 'node20', bundle: false, logLevel: 'silent' });
    const fixture = { features: NOISY_FEATURES, trees: 4, maxDepth: 8, seed: 2, createdAt: '2024-01-01T00:00:00.000Z', progress: false } as const;
    const script = path.join(dir, 'run.js');
    await writeFile(
      script,
      [
        `const { trainForest } = require('./model/trainer/index.js');`,
        `const { noisyTable } = require(${JSON.stringify(path.join(dir, 'model', 'test', 'trainer-fixtures.js'))});`,
        `trainForest(noisyTable(3000), { ...${JSON.stringify(fixture)}, threads: 2 }).then((f) => process.stdout.write(f.sha256));`,
      ].join('\n'),
    );
    await build({ entryPoints: [path.join(root, 'model', 'test', 'trainer-fixtures.ts')], outdir: path.join(dir, 'model', 'test'), format: 'cjs', platform: 'node', target: 'node20', logLevel: 'silent' });
    const env = { ...process.env, NODE_PATH: path.join(root, 'node_modules'), PRICESENSE_CODE_VERSION: 'test', PRICESENSE_PROGRESS: 'off' };
    const distSha = execFileSync(process.execPath, [script], { cwd: dir, env, encoding: 'utf8' });

    const previous = process.env.PRICESENSE_CODE_VERSION;
    process.env.PRICESENSE_CODE_VERSION = 'test';
    try {
      const fromSources = await trainForest(noisyTable(3000), { ...fixture, threads: 1 });
      expect(distSha).toBe(fromSources.sha256);
    } finally {
      if (previous === undefined) delete process.env.PRICESENSE_CODE_VERSION;
      else process.env.PRICESENSE_CODE_VERSION = previous;
    }
  });
});
