/**
 * Per-feature statistics of a gold split (FeatureStats in gold-schema.ts). They are
 * computed single-threaded from the split's sorted Parquet file, so every float is
 * summed in the same order on every run and the gold manifest is byte-identical on
 * reruns.
 */
import { type Duck, sqlString } from './duck';
import { GOLD_FEATURES, type CategoricalStats, type FeatureStats, type NumericStats } from './gold-schema';
import { CLASS_LABELS, type ClassLabel } from './schema';

const DECILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

export interface SplitStats {
  readonly classCounts: Record<ClassLabel, number>;
  readonly stats: Record<string, FeatureStats>;
}

type MapEntries = { key: unknown; value: unknown }[] | null;

/**
 * Class counts and per-feature statistics of one gold split file, in two scans of
 * the (small, sorted) file: moments, deciles and the value counts of every categorical
 * feature and the label; then PSI bin counts of every numeric feature (they need the deciles). The caller runs it
 * inside duck.deterministic(): avg and stddev sum floats, and only a single thread over
 * the sorted file sums them in the same order on every run.
 */
export async function computeSplitStats(duck: Duck, parquetFile: string): Promise<SplitStats> {
  const src = `read_parquet(${sqlString(parquetFile)})`;
  const out: Record<string, FeatureStats> = {};
  const numeric = GOLD_FEATURES.filter((f) => f.kind === 'numeric');
  const categorical = GOLD_FEATURES.filter((f) => f.kind === 'categorical');
  const parts = numeric.map(
    (f, i) =>
      `count(${f.name})::BIGINT AS c${i}, avg(${f.name}) AS m${i}, coalesce(stddev_pop(${f.name}), 0) AS s${i}, ` +
      `min(${f.name}) AS lo${i}, max(${f.name}) AS hi${i}, quantile_disc(${f.name}, [${DECILES.join(', ')}]) AS q${i}`,
  );
  // Moments, deciles and the value counts of the categoricals and the label in one scan.
  const [row] = await duck.all(`SELECT count(*)::BIGINT AS total, ${parts.join(', ')},
    histogram(LABEL) AS label, ${categorical.map((f, i) => `histogram(${f.name}) AS h${i}`).join(', ')} FROM ${src}`);
  const total = Number(row.total);

  const edgesOf = numeric.map((_, i) => {
    const deciles = ((row[`q${i}`] as (number | null)[] | null) ?? []).filter((v): v is number => v !== null);
    return [...new Set(deciles)].sort((a, b) => a - b);
  });
  const bins = numeric.map((f, i) => {
    const cases = edgesOf[i].map((e, j) => `WHEN ${f.name} <= (${e})::DOUBLE THEN ${j}`).join(' ');
    return `histogram(${edgesOf[i].length ? `CASE ${cases} ELSE ${edgesOf[i].length} END` : '0'}) FILTER (WHERE ${f.name} IS NOT NULL) AS b${i}`;
  });
  const [binRow] = await duck.all(`SELECT ${bins.join(', ')} FROM ${src}`);

  for (const [i, f] of numeric.entries()) {
    const count = Number(row[`c${i}`]);
    const edges = edgesOf[i];
    let fractions: number[] = [1];
    if (count > 0) {
      fractions = new Array<number>(edges.length + 1).fill(0);
      for (const b of (binRow[`b${i}`] as MapEntries) ?? []) fractions[Number(b.key)] = Number(b.value) / count;
    }
    const stats: NumericStats = {
      kind: 'numeric',
      count,
      missing: total - count,
      mean: count ? Number(row[`m${i}`]) : 0,
      std: count ? Number(row[`s${i}`]) : 0,
      min: count ? Number(row[`lo${i}`]) : 0,
      max: count ? Number(row[`hi${i}`]) : 0,
      edges,
      fractions,
    };
    out[f.name] = stats;
  }

  for (const [i, f] of categorical.entries()) {
    // histogram() skips NULLs; values in the order ORDER BY would give (byte order for these codes).
    const counts = ((row[`h${i}`] as MapEntries) ?? []).map((e) => [String(e.key), Number(e.value)] as [string, number]);
    counts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const count = counts.reduce((n, [, c]) => n + c, 0);
    const stats: CategoricalStats = {
      kind: 'categorical',
      count,
      missing: total - count,
      frequencies: Object.fromEntries(counts.map(([v, n]) => [v, n / count])),
    };
    out[f.name] = stats;
  }
  const classCounts = Object.fromEntries(CLASS_LABELS.map((c) => [c, 0])) as Record<ClassLabel, number>;
  for (const e of (row.label as MapEntries) ?? []) classCounts[String(e.key) as ClassLabel] = Number(e.value);
  return { classCounts, stats: out };
}

/** Per-feature statistics of a gold split file (see computeSplitStats). */
export async function computeFeatureStats(duck: Duck, parquetFile: string): Promise<Record<string, FeatureStats>> {
  return duck.deterministic(async () => (await computeSplitStats(duck, parquetFile)).stats);
}

/** Rows per class in a split file. */
export async function classCounts(duck: Duck, parquetFile: string): Promise<Record<ClassLabel, number>> {
  const rows = await duck.all(`SELECT LABEL AS label, count(*)::BIGINT AS n FROM read_parquet(${sqlString(parquetFile)}) GROUP BY 1`);
  const out = Object.fromEntries(CLASS_LABELS.map((c) => [c, 0])) as Record<ClassLabel, number>;
  for (const r of rows) out[String(r.label) as ClassLabel] = Number(r.n);
  return out;
}

export function fractionsOf(counts: Record<ClassLabel, number>): Record<ClassLabel, number> {
  const total = CLASS_LABELS.reduce((n, c) => n + counts[c], 0);
  return Object.fromEntries(CLASS_LABELS.map((c) => [c, total ? counts[c] / total : 0])) as Record<ClassLabel, number>;
}
