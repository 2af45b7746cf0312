/**
 * The benchmarks' production-size forests: 100 trees, depth ≤ 16, trained by our own
 * trainer on the synthetic gold of ~100k training rows (~900k nodes) or ~1M rows
 * (~2.9M nodes), each built once and cached under .pricesense/bench/ in format v2
 * (what the trainer writes) and in format v1 (the same forest as today's files hold).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readGoldManifest, readGoldSplit } from '../etl/gold';
import type { GoldTable } from '../etl/gold-schema';
import { FOREST_FORMAT_VERSION, type ForestFileV1 } from '../model/format';
import { readForestFile, sealForest, writeForestFile } from '../model/forest-file';
import { loadForest } from '../model/forest-loader';
import { trainForest } from '../model/trainer';
import { benchLake, benchLakeDir } from './model-training';

/** A cached production-size forest's files. */
export interface ForestArtifact {
  /** The forest file, format v2. */
  readonly file: string;
  /** The same forest as a format v1 file. */
  readonly v1File: string;
  readonly sha256: string;
  readonly nodes: number;
  readonly trainRows: number;
}

export interface BenchForest extends ForestArtifact {
  readonly forest: ForestFileV1;
  readonly lakeDir: string;
  /** The gold test split: rows to score. */
  readonly test: GoldTable;
}

function forestFiles(lakeDir: string): { file: string; v1File: string } {
  const base = path.join(path.dirname(lakeDir), `forest-${path.basename(lakeDir)}-100trees-depth16`);
  return { file: `${base}.json`, v1File: `${base}-v1.json` };
}

/**
 * The forest's files without its test rows, or undefined when it is not cached and
 * BENCH_SCORING_LARGE is not 1 (the 1M-row lake and forest take tens of minutes to build).
 */
export async function cachedProductionForest(trainRows: number): Promise<ForestArtifact | undefined> {
  const { file, v1File } = forestFiles(benchLakeDir(trainRows));
  if (!existsSync(file) || !existsSync(v1File)) {
    if (process.env.BENCH_SCORING_LARGE !== '1') return undefined;
    await productionForest(trainRows);
  }
  const { summary, forest } = loadForest(readFileSync(file), file);
  return { file, v1File, sha256: summary.sha256, nodes: forest.nodeCount, trainRows: summary.training.rows };
}

export async function productionForest(trainRows: number): Promise<BenchForest> {
  const lake = await benchLake(trainRows);
  const manifest = await readGoldManifest(lake);
  const { file, v1File } = forestFiles(lake.root);
  if (!existsSync(file) || !existsSync(v1File)) {
    process.stderr.write(`bench: training the ${trainRows.toLocaleString('en-US')}-row production forest (100 trees, depth 16) into ${file} (once; cached)\n`);
    const train = await readGoldSplit(lake, 'train', manifest);
    const forest = await trainForest(train, { trees: 100, maxDepth: 16, progress: false, featureStats: manifest.manifest.meta.stats.train });
    await writeForestFile(file, forest);
    await writeForestFile(v1File, sealForest({ ...forest, formatVersion: FOREST_FORMAT_VERSION }));
  }
  const forest = await readForestFile(file);
  return {
    file,
    v1File,
    forest,
    sha256: forest.sha256,
    nodes: forest.trees.reduce((a, t) => a + t.feature.length, 0),
    trainRows: forest.training.rows,
    lakeDir: lake.root,
    test: await readGoldSplit(lake, 'test', manifest),
  };
}
