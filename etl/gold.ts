/**
 * The gold contract as published in the lake: gold/_SUCCESS (a stage manifest whose meta
 * is GoldMeta) and one Parquet file per split. The trainer reads gold only through
 * readGoldManifest / readGoldSplit, which verify every byte against the manifest.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Duck, sqlString } from './duck';
import { UserError } from '../core/errors';
import type { BasketCounts } from './features';
import { GOLD_FEATURES, GOLD_SPLITS, type FeatureStats, type GoldSplit, type GoldTable } from './gold-schema';
import { localCopyOf, readStageManifest, type CommittedStage } from './lake/commit';
import type { Lake } from './lake/types';
import { CLASS_LABELS, type ClassLabel } from './schema';

export const GOLD_PREFIX = 'gold';
export const GOLD_FORMAT = 'pricesense.gold/1';

export interface GoldMeta {
  readonly format: typeof GOLD_FORMAT;
  readonly columns: { name: string; type: string }[];
  readonly features: { name: string; kind: string }[];
  /**
   * The feature-definition version the features were computed with (etl/feature-definitions.ts).
   * The trainer copies it into the forest; absent in gold written before definitions were versioned.
   */
  readonly featureDefinitions?: { readonly version: string };
  readonly label: { column: 'LABEL'; classes: readonly ClassLabel[]; fromBasketPriceSensitivity: Record<string, ClassLabel> };
  readonly split: { method: string; fractions: Record<GoldSplit, number> };
  /** Split → file path relative to gold/ (also listed, with SHA-256, in the manifest's files). */
  readonly files: Record<GoldSplit, string>;
  readonly rows: Record<GoldSplit, number>;
  readonly classCounts: Record<GoldSplit, Record<ClassLabel, number>>;
  /** Class fractions per split and over all splits ('all'). */
  readonly classBalance: Record<GoldSplit | 'all', Record<ClassLabel, number>>;
  /** Per split, per feature: the serving drift baseline comes from stats.train. */
  readonly stats: Record<GoldSplit, Record<string, FeatureStats>>;
  readonly baskets: BasketCounts;
  readonly source: {
    /** SHA-256 over the ingested parts' content hashes and the gold SQL: equal means gold would not change. */
    readonly fingerprint: string;
    readonly silverRows: number;
    /** Baskets whose lines were spread over several raw files. */
    readonly splitBaskets: number;
    readonly rawFiles: { key: string; bytes: number }[];
  };
}

export type GoldManifest = CommittedStage<GoldMeta>;

/** The published gold manifest (its SHA-256 is the dataset's lineage id). */
export async function readGoldManifest(lake: Lake): Promise<GoldManifest> {
  const committed = await readStageManifest<GoldMeta>(lake, GOLD_PREFIX);
  if (!committed) throw new UserError(`no gold data set in ${lake.root}: run \`pricesense etl --lake ${lake.root}\` first`);
  if (committed.manifest.meta?.format !== GOLD_FORMAT) {
    throw new UserError(`${lake.uri(committed.key)} is not a ${GOLD_FORMAT} manifest; rerun \`pricesense etl\` with this version of pricesense`);
  }
  return committed;
}

/** Load one gold split into memory, column-wise, after checking its SHA-256 against the manifest. */
export async function readGoldSplit(lake: Lake, split: GoldSplit, manifest?: GoldManifest): Promise<GoldTable> {
  if (!GOLD_SPLITS.includes(split)) throw new UserError(`unknown gold split '${String(split)}' (expected ${GOLD_SPLITS.join(', ')})`);
  const gold = manifest ?? (await readGoldManifest(lake));
  const rel = gold.manifest.meta.files[split];
  const file = gold.manifest.files.find((f) => f.path === rel);
  if (!file) throw new Error(`${lake.uri(gold.key)} names ${rel} for split ${split} but does not list it`);
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'pricesense-gold-'));
  let duck: Duck | undefined;
  try {
    const local = await localCopyOf(lake, GOLD_PREFIX, file, scratch, { verify: true });
    duck = await Duck.open({ tempDirectory: scratch, threads: 1, memoryLimit: '512MB' });
    const cols = await duck.columns(`SELECT * FROM read_parquet(${sqlString(local)})`);
    const rows = (cols.BASKET_ID ?? []).length;
    const labels = (cols.LABEL ?? []).map((v, i) => {
      if (!CLASS_LABELS.includes(v as ClassLabel)) throw new Error(`gold ${split} row ${i}: label ${String(v)} is not one of ${CLASS_LABELS.join('/')}`);
      return v as ClassLabel;
    });
    const numeric: Record<string, Float64Array> = {};
    const categorical: Record<string, (string | null)[]> = {};
    for (const f of GOLD_FEATURES) {
      const values = cols[f.name];
      if (!values) throw new Error(`gold ${split} file has no column ${f.name}`);
      if (f.kind === 'numeric') numeric[f.name] = Float64Array.from(values, (v) => (v === null || v === undefined ? NaN : Number(v)));
      else categorical[f.name] = values.map((v) => (v === null || v === undefined ? null : String(v)));
    }
    return { rows, basketIds: (cols.BASKET_ID ?? []).map(String), labels, numeric, categorical, manifestSha256: gold.sha256 };
  } finally {
    duck?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}
