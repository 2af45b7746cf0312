/**
 * The benchmarks' production-size forests: 100 trees, depth ≤ 16, trained by our own
 * trainer on the synthetic gold of ~100k training rows (~900k nodes) or ~1M rows
 * (~2.9M nodes), each built once and cached under .pricesense/bench/ in format v2
 * (what the trainer writes) and in format v1 (the same forest as today's files hold).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readGoldManifest, readGoldSplit } from '../etl/gold';
import type { GoldTable } from '../etl/gold-schema';
import { FOREST_FORMAT_VERSION, type ForestFileV1 } from '../model/format';
import { readForestFile, sealForest, writeForestFile } from '../model/forest-file';
import { trainForest } from '../model/trainer';
import { benchLake } from './model-training';

export interface BenchForest {
  /** The forest file, format v2. */
  readonly file: string;
  /** The same forest as a format v1 file. */
  readonly v1File: string;
  readonly forest: ForestFileV1;
  readonly nodes: number;
  readonly trainRows: number;
  readonly lakeDir: string;
  /** The gold test split: rows to score. */
  readonly test: GoldTable;
}

export async function productionForest(trainRows: number): Promise<BenchForest> {
  const lake = await benchLake(trainRows);
  const manifest = await readGoldManifest(lake);
  const base = path.join(path.dirname(lake.root), `forest-${path.basename(lake.root)}-100trees-depth16`);
  const file = `${base}.json`;
  const v1File = `${base}-v1.json`;
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
    nodes: forest.trees.reduce((a, t) => a + t.feature.length, 0),
    trainRows: forest.training.rows,
    lakeDir: lake.root,
    test: await readGoldSplit(lake, 'test', manifest),
  };
}
