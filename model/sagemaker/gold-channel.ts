/**
 * Reading gold from a SageMaker channel or processing input: one or more committed gold
 * zones (one per ETL instance, each with its _SUCCESS manifest), concatenated into one
 * table per split. Rows are put in basket-id order — the order a single ETL over all the
 * raw files writes — so training on N shards gives the same forest as on one.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Duck, sqlString } from '../../etl/duck';
import { UserError } from '../../core/errors';
import { GOLD_FORMAT, GOLD_PREFIX, readGoldManifest, readGoldSplit, type GoldManifest } from '../../etl/gold';
import { GOLD_FEATURES, type FeatureStats, type GoldSplit, type GoldTable } from '../../etl/gold-schema';
import { MANIFEST_NAME } from '../../etl/lake/commit';
import { LocalLake } from '../../etl/lake/local';
import { computeFeatureStats } from '../../etl/stats';

export interface GoldShard {
  /** The gold zone directory (holding _SUCCESS). */
  readonly dir: string;
  readonly lake: LocalLake;
  readonly manifest: GoldManifest;
}

export interface ChannelGold {
  readonly shards: readonly GoldShard[];
  readonly tables: Partial<Record<GoldSplit, GoldTable>>;
  /** The data set's lineage id: the manifest's SHA-256 with one shard, a digest of all shards' otherwise. */
  readonly datasetSha256: string;
  /** The train split's feature statistics (the serving drift baseline), when train was read. */
  readonly trainStats?: Record<string, FeatureStats>;
}

const MAX_DEPTH = 4;

async function findManifests(dir: string, depth: number, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (depth === 0) throw new UserError(`cannot read the gold input ${dir}: ${(e as Error).message}`);
    return;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === MANIFEST_NAME) out.push(p);
    else if (e.isDirectory() && depth < MAX_DEPTH) await findManifests(p, depth + 1, out);
  }
}

async function isGoldManifest(file: string): Promise<boolean> {
  try {
    const doc = JSON.parse(await readFile(file, 'utf8')) as { meta?: { format?: unknown } };
    return doc.meta?.format === GOLD_FORMAT;
  } catch {
    return false;
  }
}

/** Every committed gold zone under dir, in path order. */
export async function findGoldShards(dir: string, scratch: string): Promise<GoldShard[]> {
  const manifests: string[] = [];
  await findManifests(dir, 0, manifests);
  const shards: GoldShard[] = [];
  for (const m of manifests) {
    if (!(await isGoldManifest(m))) continue;
    const zone = path.dirname(m);
    let root = path.dirname(zone);
    if (path.basename(zone) !== GOLD_PREFIX) {
      // A gold zone under another name: give it a lake root whose gold/ is that directory.
      root = path.join(scratch, `zone-${shards.length}`);
      await mkdir(root, { recursive: true });
      await symlink(zone, path.join(root, GOLD_PREFIX), 'dir');
    }
    const lake = new LocalLake(root);
    shards.push({ dir: zone, lake, manifest: await readGoldManifest(lake) });
  }
  if (shards.length === 0) {
    throw new UserError(`no committed gold in ${dir}: expected one or more gold zones (a directory with a ${GOLD_FORMAT} ${MANIFEST_NAME} manifest), as \`pricesense sagemaker etl\` writes`);
  }
  return shards;
}

function basketOrder(ids: readonly string[]): number[] {
  const order = ids.map((_, i) => i);
  if (ids.every((id) => /^\d+$/.test(id))) {
    const keys = ids.map((id) => BigInt(id));
    order.sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
  } else {
    order.sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
  }
  return order;
}

/** The shards' tables as one, in basket-id order; a basket in two shards is an error. */
export function concatGoldTables(parts: readonly { source: string; table: GoldTable }[], manifestSha256: string): GoldTable {
  if (parts.length === 1) return { ...parts[0].table, manifestSha256 };
  const ids = parts.flatMap((p) => p.table.basketIds);
  const owner = parts.flatMap((p) => p.table.basketIds.map(() => p.source));
  const order = basketOrder(ids);
  for (let i = 1; i < order.length; i++) {
    if (ids[order[i]] === ids[order[i - 1]]) {
      throw new UserError(`basket ${ids[order[i]]} is in two gold shards (${owner[order[i - 1]]} and ${owner[order[i]]}): a basket's lines must all be in one raw file, so that each ETL shard sees whole baskets`);
    }
  }
  const numeric: Record<string, Float64Array> = {};
  const categorical: Record<string, (string | null)[]> = {};
  const labels = parts.flatMap((p) => p.table.labels);
  for (const f of GOLD_FEATURES) {
    if (f.kind === 'numeric') {
      const all = parts.flatMap((p) => Array.from(p.table.numeric[f.name]));
      numeric[f.name] = Float64Array.from(order, (i) => all[i]);
    } else {
      const all = parts.flatMap((p) => p.table.categorical[f.name]);
      categorical[f.name] = order.map((i) => all[i]);
    }
  }
  return { rows: ids.length, basketIds: order.map((i) => ids[i]), labels: order.map((i) => labels[i]), numeric, categorical, manifestSha256 };
}

function datasetIdOf(shards: readonly GoldShard[]): string {
  if (shards.length === 1) return shards[0].manifest.sha256;
  const h = createHash('sha256').update('pricesense.gold-shards/1\n');
  for (const sha of shards.map((s) => s.manifest.sha256).sort()) h.update(`${sha}\n`);
  return h.digest('hex');
}

/** Feature statistics of the union of the shards' train files, computed as the ETL does (on one basket-ordered file). */
async function unionTrainStats(shards: readonly GoldShard[], scratch: string): Promise<Record<string, FeatureStats>> {
  const files = shards.map((s) => {
    const rel = s.manifest.manifest.meta.files.train;
    return s.lake.uri(`${GOLD_PREFIX}/${rel}`);
  });
  const duck = await Duck.open({ tempDirectory: scratch, threads: 1, memoryLimit: '1GB' });
  try {
    const union = path.join(scratch, 'train-union.parquet');
    await duck.deterministic(() =>
      duck.run(
        `COPY (SELECT * FROM read_parquet([${files.map(sqlString).join(', ')}]) ORDER BY TRY_CAST(BASKET_ID AS BIGINT) NULLS LAST, BASKET_ID) TO ${sqlString(union)} (FORMAT parquet)`,
      ),
    );
    return await computeFeatureStats(duck, union);
  } finally {
    duck.close();
  }
}

/** Reads the given splits from every gold shard under dir and concatenates them. */
export async function readChannelGold(dir: string, splits: readonly GoldSplit[]): Promise<ChannelGold> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'pricesense-channel-'));
  try {
    const shards = await findGoldShards(dir, scratch);
    const datasetSha256 = datasetIdOf(shards);
    const tables: Partial<Record<GoldSplit, GoldTable>> = {};
    for (const split of splits) {
      const parts: { source: string; table: GoldTable }[] = [];
      for (const s of shards) parts.push({ source: s.dir, table: await readGoldSplit(s.lake, split, s.manifest) });
      tables[split] = concatGoldTables(parts, datasetSha256);
    }
    let trainStats: Record<string, FeatureStats> | undefined;
    if (splits.includes('train')) {
      trainStats = shards.length === 1 ? shards[0].manifest.manifest.meta.stats?.train : await unionTrainStats(shards, scratch);
    }
    return { shards, tables, datasetSha256, trainStats };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
