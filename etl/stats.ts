/**
 * Per-feature statistics of a gold split (FeatureStats in gold-schema.ts). They are
 * computed single-threaded from the split's sorted Parquet file, so every float is
 * summed in the same order on every run and the gold manifest is byte-identical on
 * reruns.
 */
import { Duck, sqlString } from './duck';
import { GOLD_FEATURES, type CategoricalStats, type FeatureStats, type NumericStats } from './gold-schema';
import { CLASS_LABELS, type ClassLabel } from './schema';

const DECILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

export async function computeFeatureStats(duck: Duck, parquetFile: string): Promise<Record<string, FeatureStats>> {
  const src = `read_parquet(${sqlString(parquetFile)})`;
  return duck.deterministic(async () => {
    const out: Record<string, FeatureStats> = {};
    const numeric = GOLD_FEATURES.filter((f) => f.kind === 'numeric');
    const parts = numeric.map(
      (f, i) =>
        `count(${f.name})::BIGINT AS c${i}, avg(${f.name}) AS m${i}, coalesce(stddev_pop(${f.name}), 0) AS s${i}, ` +
        `min(${f.name}) AS lo${i}, max(${f.name}) AS hi${i}, quantile_disc(${f.name}, [${DECILES.join(', ')}]) AS q${i}`,
    );
    const [row] = await duck.all(`SELECT count(*)::BIGINT AS total, ${parts.join(', ')} FROM ${src}`);
    const total = Number(row.total);
    for (const [i, f] of numeric.entries()) {
      const count = Number(row[`c${i}`]);
      const deciles = ((row[`q${i}`] as (number | null)[] | null) ?? []).filter((v): v is number => v !== null);
      const edges = [...new Set(deciles)].sort((a, b) => a - b);
      let fractions: number[] = [1];
      if (count > 0) {
        const cases = edges.map((e, j) => `WHEN ${f.name} <= (${e})::DOUBLE THEN ${j}`).join(' ');
        const bins = await duck.all(
          `SELECT ${edges.length ? `CASE ${cases} ELSE ${edges.length} END` : '0'} AS bin, count(*)::BIGINT AS n FROM ${src} WHERE ${f.name} IS NOT NULL GROUP BY 1`,
        );
        fractions = new Array<number>(edges.length + 1).fill(0);
        for (const b of bins) fractions[Number(b.bin)] = Number(b.n) / count;
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
    for (const f of GOLD_FEATURES.filter((g) => g.kind === 'categorical')) {
      const rows = await duck.all(`SELECT ${f.name} AS v, count(*)::BIGINT AS n FROM ${src} GROUP BY 1 ORDER BY 1 NULLS LAST`);
      let missing = 0;
      let count = 0;
      const counts: [string, number][] = [];
      for (const r of rows) {
        if (r.v === null) missing = Number(r.n);
        else {
          counts.push([String(r.v), Number(r.n)]);
          count += Number(r.n);
        }
      }
      const stats: CategoricalStats = {
        kind: 'categorical',
        count,
        missing,
        frequencies: Object.fromEntries(counts.map(([v, n]) => [v, n / count])),
      };
      out[f.name] = stats;
    }
    return out;
  });
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
