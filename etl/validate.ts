/**
 * The gate before gold is published: schema, value domains, and the class balance
 * against the previous gold. A failed check stops the run with nothing committed, so a
 * broken or poisoned drop cannot silently reach training.
 */
import { type Duck, sqlList, sqlString } from './duck';
import { GOLD_COLUMNS } from './features';
import { GOLD_FEATURES, type GoldSplit } from './gold-schema';
import { CLASS_LABELS, DOMAINS, STORE_REGION_PATTERN, type ClassLabel } from './schema';

export const DEFAULT_MAX_CLASS_SHIFT = 0.1;

export interface ValidationCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ValidationReport {
  readonly ok: boolean;
  readonly checks: ValidationCheck[];
  /** Total variation distance between the new and previous class balance, when there is a previous gold. */
  readonly classShift: number | null;
}

export interface ValidateOptions {
  /** Class balance of the gold currently published, if any. */
  readonly previousClassBalance?: Record<ClassLabel, number>;
  readonly maxClassShift?: number;
  readonly acceptShift?: boolean;
}

const CATEGORICAL_DOMAINS: Readonly<Record<string, readonly string[]>> = {
  BASKET_SIZE: DOMAINS.BASKET_SIZE,
  BASKET_TYPE: DOMAINS.BASKET_TYPE,
  BASKET_DOMINANT_MISSION: DOMAINS.BASKET_DOMINANT_MISSION,
  STORE_FORMAT: DOMAINS.STORE_FORMAT,
  CUST_LIFESTAGE: DOMAINS.CUST_LIFESTAGE,
  CUST_PRICE_SENSITIVITY: DOMAINS.PRICE_SENSITIVITY,
};

/** [min, max] each numeric feature must lie in (missing allowed only where noted). */
const NUMERIC_RANGES: Readonly<Record<string, { min: number; max?: number; nullable?: boolean }>> = {
  SPEND: { min: -1e9, max: 1e9 },
  QUANTITY: { min: 0 },
  LINES: { min: 1 },
  DISTINCT_PRODUCTS: { min: 0 },
  DISTINCT_CATEGORIES: { min: 0 },
  DISTINCT_DEPARTMENTS: { min: 0 },
  AVG_UNIT_PRICE: { min: -1e9, max: 1e9, nullable: true },
  MAX_UNIT_PRICE: { min: -1e9, max: 1e9, nullable: true },
  SHOP_HOUR: { min: 0, max: 23 },
  SHOP_WEEKDAY: { min: 1, max: 7 },
};

export function totalVariation(a: Record<ClassLabel, number>, b: Record<ClassLabel, number>): number {
  return CLASS_LABELS.reduce((s, c) => s + Math.abs((a[c] ?? 0) - (b[c] ?? 0)), 0) / 2;
}

/** Validate the split files of a candidate gold. */
export async function validateGold(
  duck: Duck,
  files: Record<GoldSplit, string>,
  classBalance: Record<ClassLabel, number>,
  opts: ValidateOptions = {},
): Promise<ValidationReport> {
  const checks: ValidationCheck[] = [];
  const src = `read_parquet(${sqlList(Object.values(files))})`;

  // Schema: exact columns and types, in order.
  const described = await duck.all(`DESCRIBE SELECT * FROM ${src}`);
  const actual = described.map((r) => `${String(r.column_name)} ${String(r.column_type)}`);
  const expected = GOLD_COLUMNS.map((c) => `${c.name} ${c.type}`);
  const schemaOk = actual.join(',') === expected.join(',');
  checks.push({
    name: 'schema',
    ok: schemaOk,
    detail: schemaOk ? `${expected.length} columns as in etl/gold-schema.ts` : `expected ${expected.join(', ')}; found ${actual.join(', ')}`,
  });

  const [counts] = await duck.all(`SELECT count(*)::BIGINT AS n, count(DISTINCT BASKET_ID)::BIGINT AS ids FROM ${src}`);
  const rows = Number(counts.n);
  checks.push({ name: 'non-empty', ok: rows > 0, detail: rows > 0 ? `${rows} labelled baskets` : 'no labelled baskets: every basket was XX, rejected or inconsistent' });
  checks.push({
    name: 'unique-basket-id',
    ok: Number(counts.ids) === rows,
    detail: Number(counts.ids) === rows ? 'each basket once' : `${rows - Number(counts.ids)} duplicate BASKET_ID rows`,
  });

  if (schemaOk) {
    // Every domain check in one scan: value histograms for the categoricals, out-of-range
    // counts (with the offending min/max) for the numerics.
    const labelBad = `LABEL IS NULL OR LABEL NOT IN (${CLASS_LABELS.map(sqlString).join(', ')})`;
    const numeric = GOLD_FEATURES.filter((f) => f.kind === 'numeric');
    const categorical = GOLD_FEATURES.filter((f) => f.kind === 'categorical');
    const badCond = (name: string): string => {
      const range = NUMERIC_RANGES[name] ?? { min: -Infinity, nullable: true };
      const conds = [`NOT isfinite(${name})`, `${name} < ${range.min}`];
      if (range.max !== undefined) conds.push(`${name} > ${range.max}`);
      return `(${conds.join(' OR ')})${range.nullable ? '' : ` OR ${name} IS NULL`}`;
    };
    const [d] = await duck.all(`SELECT
      list(DISTINCT coalesce(LABEL, 'NULL')) FILTER (WHERE ${labelBad}) AS bad_labels,
      ${categorical.map((f, i) => `histogram(${f.name}) AS h${i}`).join(', ')},
      ${numeric.map((f, i) => `count(*) FILTER (WHERE ${badCond(f.name)})::BIGINT AS n${i}, min(${f.name}) FILTER (WHERE ${badCond(f.name)}) AS lo${i}, max(${f.name}) FILTER (WHERE ${badCond(f.name)}) AS hi${i}`).join(',\n      ')}
      FROM ${src}`);
    const badLabels = ((d.bad_labels as unknown[] | null) ?? []).map(String);
    checks.push({ name: 'domain LABEL', ok: badLabels.length === 0, detail: badLabels.length ? `unexpected labels ${badLabels.join(', ')}` : CLASS_LABELS.join('/') });
    for (const f of GOLD_FEATURES) {
      if (f.kind === 'categorical') {
        const i = categorical.indexOf(f);
        const values = ((d[`h${i}`] as { key: unknown }[] | null) ?? []).map((e) => String(e.key)).sort();
        const domain = CATEGORICAL_DOMAINS[f.name];
        const bad = values.filter((v) => (domain ? !domain.includes(v) : f.name === 'STORE_REGION' ? !STORE_REGION_PATTERN.test(v) : false));
        checks.push({
          name: `domain ${f.name}`,
          ok: bad.length === 0,
          detail: bad.length ? `values outside the domain: ${bad.slice(0, 5).join(', ')}` : `${values.length} distinct values, all in domain`,
        });
      } else {
        const i = numeric.indexOf(f);
        const range = NUMERIC_RANGES[f.name] ?? { min: -Infinity, nullable: true };
        const n = Number(d[`n${i}`]);
        checks.push({
          name: `domain ${f.name}`,
          ok: n === 0,
          detail: n ? `${n} rows outside [${range.min}, ${range.max ?? '∞'}]${range.nullable ? '' : ' or missing'} (min ${String(d[`lo${i}`])}, max ${String(d[`hi${i}`])})` : 'in range',
        });
      }
    }
  }

  let classShift: number | null = null;
  if (opts.previousClassBalance) {
    const max = opts.maxClassShift ?? DEFAULT_MAX_CLASS_SHIFT;
    classShift = totalVariation(classBalance, opts.previousClassBalance);
    const fmt = (b: Record<ClassLabel, number>): string => CLASS_LABELS.map((c) => `${c} ${(b[c] * 100).toFixed(1)}%`).join(', ');
    const shifted = classShift > max;
    checks.push({
      name: 'class-balance-shift',
      ok: !shifted || Boolean(opts.acceptShift),
      detail:
        `class balance moved by ${(classShift * 100).toFixed(1)} points (total variation; limit ${(max * 100).toFixed(1)}): ` +
        `previous ${fmt(opts.previousClassBalance)}; new ${fmt(classBalance)}` +
        (shifted ? (opts.acceptShift ? ' — accepted with --accept-shift' : ' — rerun with --accept-shift if this change is real') : ''),
    });
  } else {
    checks.push({ name: 'class-balance-shift', ok: true, detail: 'no previous gold to compare with' });
  }
  return { ok: checks.every((c) => c.ok), checks, classShift };
}
