/**
 * Synthetic dunnhumby-style transactions with a known ground truth.
 *
 * Per basket: draw the basket-level attributes (week, day, hour, store, customer, size,
 * type, mission, affluence), draw its lines (products, quantities, prices), compute the
 * basket's gold features from those lines exactly as the ETL will, draw the class from
 * classProbabilities(features) (label.ts), and emit the lines with that class as
 * BASKET_PRICE_SENSITIVITY. Because the class depends only on features that survive into
 * gold, mean(max class probability) over labelled baskets is the Bayes-optimal accuracy
 * of the drop, and it is written to raw/_synth.json beside the CSVs.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/errors';
import type { Lake } from '../lake/types';
import { Progress } from '../../core/progress';
import { CLASS_LABELS, RAW_COLUMNS, type ClassLabel } from '../schema';
import { classProbabilities, labelRegion, LABEL_FUNCTION_VERSION, type LabelFeatures } from './label';
import { cumulative, Rng } from './rng';
import { buildWorld, FORMAT_MARKUP, type Product } from './world';

export const SYNTH_MANIFEST_KEY = 'raw/_synth.json';
export const SYNTH_MANIFEST_FORMAT = 'pricesense.synth-manifest/1';

export interface SynthOptions {
  baskets: number;
  weeks: number;
  seed: number;
  /** Probability that a valid line is followed by a malformed one (default 1 in 20,000). */
  malformedRate?: number;
  /** Fraction of baskets labelled XX (default 0.03). */
  unlabelledRate?: number;
}

export const SYNTH_DEFAULTS = { baskets: 20_000, weeks: 4, seed: 42, malformedRate: 1 / 20_000, unlabelledRate: 0.03 } as const;

export interface SynthFile {
  readonly key: string;
  readonly lines: number;
  readonly bytes: number;
  readonly sha256: string;
}

export interface SynthManifest {
  readonly format: typeof SYNTH_MANIFEST_FORMAT;
  readonly labelFunction: string;
  readonly seed: number;
  readonly baskets: number;
  readonly weeks: number;
  readonly lines: { readonly total: number; readonly valid: number; readonly malformed: number; readonly blankProdCode40: number };
  readonly files: SynthFile[];
  /** Baskets per BASKET_PRICE_SENSITIVITY code. */
  readonly basketPriceSensitivity: Record<'LA' | 'MM' | 'UM' | 'XX', number>;
  readonly labelledBaskets: number;
  /** Fractions of labelled baskets per class. */
  readonly classBalance: Record<ClassLabel, number>;
  /** Expected accuracy of the Bayes classifier: mean over labelled baskets of max class probability. */
  readonly bayesAccuracy: number;
  /** Accuracy the Bayes classifier actually scores on the drawn labels. */
  readonly bayesAccuracyRealized: number;
  /** Labelled baskets per leaf of the label function. */
  readonly rules: Record<string, number>;
}

const CODE_BY_CLASS: Record<ClassLabel, 'UM' | 'MM' | 'LA'> = { Low: 'UM', Medium: 'MM', High: 'LA' };
const HOUR_CUM = cumulative([3, 5, 7, 8, 9, 8, 6, 6, 7, 9, 8, 6, 4, 2]); // 08:00 .. 21:00
const SIZE_CUM = cumulative([0.45, 0.35, 0.2]);
const SIZES = ['S', 'M', 'L'];
const TYPES = ['Small Shop', 'Top Up', 'Full Shop', 'XX'];
const TYPE_CUM_BY_SIZE = [cumulative([0.6, 0.38, 0, 0.02]), cumulative([0.18, 0.55, 0.25, 0.02]), cumulative([0, 0.13, 0.85, 0.02])];
const MISSIONS = ['Fresh', 'Grocery', 'Mixed', 'Non Food', 'XX'];
const MISSION_CUM = cumulative([0.3, 0.3, 0.3, 0.08, 0.02]);
const DIVISION_CUM_BY_MISSION = [
  cumulative([0.7, 0.25, 0.05]),
  cumulative([0.2, 0.7, 0.1]),
  cumulative([0.4, 0.45, 0.15]),
  cumulative([0.1, 0.2, 0.7]),
  cumulative([0.35, 0.45, 0.2]),
];
const FIRST_WEEK_START = Date.UTC(2006, 3, 10); // SHOP_WEEK 200607 starts Monday 10 April 2006

/** Week k of the drop: dunnhumby's YYYYWW code (52 weeks a year) and its seven dates. */
function weekOf(k: number): { code: string; dates: { date: string; weekday: number }[] } {
  const w = 7 + k - 1;
  const code = `${2006 + Math.floor(w / 52)}${String((w % 52) + 1).padStart(2, '0')}`;
  const dates = [];
  for (let d = 0; d < 7; d++) {
    const t = new Date(FIRST_WEEK_START + (k * 7 + d) * 86_400_000);
    const date = `${t.getUTCFullYear()}${String(t.getUTCMonth() + 1).padStart(2, '0')}${String(t.getUTCDate()).padStart(2, '0')}`;
    dates.push({ date, weekday: t.getUTCDay() + 1 }); // dunnhumby: 1 = Sunday
  }
  return { code, dates };
}

export interface WeekSink {
  /** Called once per week, in order, before that week's lines. */
  begin(weekCode: string): void;
  write(chunk: string): void;
  end(): void;
}

function spendText(pence: number): string {
  const p = pence % 100;
  return `${(pence - p) / 100}.${p < 10 ? '0' : ''}${p}`;
}

/** Generate a drop into a sink (one CSV per week). Pure function of the options. */
export function generateDrop(opts: SynthOptions, sink: WeekSink, onBasket?: (done: number) => void): Omit<SynthManifest, 'files'> {
  if (!Number.isInteger(opts.baskets) || opts.baskets < 1) throw new UserError(`--baskets must be a positive integer (got ${opts.baskets})`);
  if (!Number.isInteger(opts.weeks) || opts.weeks < 1 || opts.weeks > 520) throw new UserError(`--weeks must be an integer in 1..520 (got ${opts.weeks})`);
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff) throw new UserError(`--seed must be an integer in 0..4294967295 (got ${opts.seed})`);
  const malformedRate = opts.malformedRate ?? SYNTH_DEFAULTS.malformedRate;
  const unlabelledRate = opts.unlabelledRate ?? SYNTH_DEFAULTS.unlabelledRate;
  const rng = new Rng(opts.seed);
  const world = buildWorld(rng, Math.max(500, Math.round(opts.baskets / 8)));
  const header = `${RAW_COLUMNS.join(',')}\n`;

  const lineProducts: Product[] = [];
  const lineQty: number[] = [];
  const linePence: number[] = [];
  const deptStamp = new Int32Array(90).fill(-1);
  const psCounts = { LA: 0, MM: 0, UM: 0, XX: 0 };
  const classCounts: Record<ClassLabel, number> = { Low: 0, Medium: 0, High: 0 };
  const rules: Record<string, number> = {};
  let bayesSum = 0;
  let bayesHits = 0;
  let valid = 0;
  let malformed = 0;
  let blankDivision = 0;
  let parts: string[] = [];
  let pendingChars = 0;
  const emit = (s: string): void => {
    parts.push(s);
    pendingChars += s.length;
    if (pendingChars > 1 << 20) flush();
  };
  const flush = (): void => {
    if (parts.length) sink.write(parts.join(''));
    parts = [];
    pendingChars = 0;
  };

  let week = -1;
  let weekInfo = weekOf(0);
  for (let b = 0; b < opts.baskets; b++) {
    const wk = Math.floor((b * opts.weeks) / opts.baskets);
    if (wk !== week) {
      if (week >= 0) {
        flush();
        sink.end();
      }
      week = wk;
      weekInfo = weekOf(wk);
      sink.begin(weekInfo.code);
      emit(header);
    }
    // Basket-level attributes.
    const day = weekInfo.dates[rng.int(7)];
    const hour = 8 + rng.pick(HOUR_CUM);
    const store = world.stores[rng.pick(world.storeCum)];
    const customer = rng.next() < 0.22 ? undefined : world.customers[rng.int(world.customers.length)];
    const affluence = (customer ? customer.affluence : rng.normal()) + 0.5 * rng.normal();
    const sizeIdx = rng.pick(SIZE_CUM);
    const nLines =
      sizeIdx === 0 ? Math.min(5, 1 + Math.floor(-Math.log(1 - rng.next()) * 1.5)) : sizeIdx === 1 ? rng.between(6, 14) : Math.min(50, 15 + Math.floor(-Math.log(1 - rng.next()) * 8));
    const type = TYPES[rng.pick(TYPE_CUM_BY_SIZE[sizeIdx])];
    const missionIdx = rng.pick(MISSION_CUM);
    const tierCum = cumulative([0.3 * Math.exp(-0.9 * affluence), 0.5, 0.2 * Math.exp(0.9 * affluence)]);
    const divisionCum = DIVISION_CUM_BY_MISSION[missionIdx];
    const markup = FORMAT_MARKUP[store.format];

    // Lines, and the basket's gold features computed from them the way the ETL does.
    let spendPence = 0;
    let quantity = 0;
    let maxUnit = 0;
    let departments = 0;
    lineProducts.length = 0;
    lineQty.length = 0;
    linePence.length = 0;
    for (let l = 0; l < nLines; l++) {
      const shelf = world.products[rng.pick(divisionCum)][rng.pick(tierCum)];
      const product = shelf[rng.int(shelf.length)];
      const x = rng.next();
      const qty = x < 0.78 ? 1 : x < 0.93 ? 2 : rng.between(3, 6);
      const pence = Math.round(product.pricePence * markup) * qty;
      lineProducts.push(product);
      lineQty.push(qty);
      linePence.push(pence);
      spendPence += pence;
      quantity += qty;
      const unit = pence / 100 / qty;
      if (unit > maxUnit) maxUnit = unit;
      if (deptStamp[product.department] !== b) {
        deptStamp[product.department] = b;
        departments++;
      }
    }
    const features: LabelFeatures = {
      AVG_UNIT_PRICE: spendPence / 100 / quantity,
      MAX_UNIT_PRICE: maxUnit,
      LINES: nLines,
      DISTINCT_DEPARTMENTS: departments,
      SHOP_HOUR: hour,
      BASKET_TYPE: type,
      BASKET_DOMINANT_MISSION: MISSIONS[missionIdx],
      STORE_FORMAT: store.format,
      CUST_PRICE_SENSITIVITY: customer ? customer.sensitivity : null,
    };
    const probs = classProbabilities(features);
    const u = rng.next();
    const cls: ClassLabel = u < probs[0] ? CLASS_LABELS[0] : u < probs[0] + probs[1] ? CLASS_LABELS[1] : CLASS_LABELS[2];
    const unlabelled = rng.next() < unlabelledRate;
    const code = unlabelled ? 'XX' : CODE_BY_CLASS[cls];
    psCounts[code]++;
    if (!unlabelled) {
      const region = labelRegion(features);
      classCounts[cls]++;
      rules[region.rule] = (rules[region.rule] ?? 0) + 1;
      bayesSum += region.confidence;
      if (region.dominant === cls) bayesHits++;
    }

    const prefix = `${weekInfo.code},${day.date},${day.weekday},${hour},`;
    const cust = customer ? `${customer.code},${customer.sensitivity},${customer.lifestage}` : ',,';
    const basketId = 994100100000000 + b;
    const tail = `${basketId},${SIZES[sizeIdx]},${code},${type},${MISSIONS[missionIdx]},${store.code}`;
    const suffix = `,${cust},${tail},${store.format},${store.region}\n`;
    for (let l = 0; l < nLines; l++) {
      const product = lineProducts[l];
      const blank = rng.next() < 0.004;
      if (blank) blankDivision++;
      const line = `${prefix}${lineQty[l]},${spendText(linePence[l])},${blank ? product.csvBlankDivision : product.csv}${suffix}`;
      emit(line);
      valid++;
      if (rng.next() < malformedRate) {
        // Dirt the ETL must reject: each is an extra line, so rejecting it leaves the basket intact.
        const kind = rng.int(3);
        if (kind === 0) emit(`${line.split(',').slice(0, 1 + rng.int(15)).join(',')}\n`);
        else if (kind === 1) emit(`${prefix}${lineQty[l]},N/A,${product.csv}${suffix}`);
        else emit(`${prefix}${lineQty[l]},${spendText(linePence[l])},${product.csv},${cust},${tail},ZZ,${store.region}\n`);
        malformed++;
      }
    }
    if (onBasket && (b & 1023) === 0) onBasket(b);
  }
  flush();
  sink.end();

  const labelled = opts.baskets - psCounts.XX;
  const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;
  return {
    format: SYNTH_MANIFEST_FORMAT,
    labelFunction: LABEL_FUNCTION_VERSION,
    seed: opts.seed,
    baskets: opts.baskets,
    weeks: opts.weeks,
    lines: { total: valid + malformed, valid, malformed, blankProdCode40: blankDivision },
    basketPriceSensitivity: psCounts,
    labelledBaskets: labelled,
    classBalance: {
      Low: round6(classCounts.Low / labelled),
      Medium: round6(classCounts.Medium / labelled),
      High: round6(classCounts.High / labelled),
    },
    bayesAccuracy: round6(bayesSum / labelled),
    bayesAccuracyRealized: round6(bayesHits / labelled),
    rules: Object.fromEntries(Object.entries(rules).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
}

/**
 * Write a drop into lake raw/: one `raw/transactions_YYYYWW.csv` per week (each written
 * atomically) and the manifest raw/_synth.json. Synthetic files of an earlier synth run
 * that this run does not rewrite are removed; any other raw file makes it refuse.
 */
export async function synthesize(lake: Lake, opts: SynthOptions): Promise<SynthManifest> {
  const previous = (await lake.exists(SYNTH_MANIFEST_KEY)) ? (JSON.parse((await lake.read(SYNTH_MANIFEST_KEY)).toString('utf8')) as SynthManifest) : undefined;
  const previousKeys = new Set(previous?.files.map((f) => f.key) ?? []);
  const foreign = (await lake.list('raw/')).filter((o) => o.key !== SYNTH_MANIFEST_KEY && !previousKeys.has(o.key));
  if (foreign.length) {
    throw new UserError(
      `${lake.uri('raw/')} already holds ${foreign.length} file(s) synth did not write (e.g. ${foreign[0].key}); synthesize into an empty lake or remove them first`,
    );
  }

  const scratch = mkdtempSync(path.join(os.tmpdir(), 'pricesense-synth-'));
  const progress = new Progress({ stage: 'synth', total: opts.baskets, unit: 'baskets' });
  const files: { key: string; local: string; lines: number; bytes: number; hash: Hash }[] = [];
  let fd = -1;
  try {
    const summary = generateDrop(
      opts,
      {
        begin(weekCode) {
          const local = path.join(scratch, `transactions_${weekCode}.csv`);
          fd = openSync(local, 'w');
          files.push({ key: `raw/transactions_${weekCode}.csv`, local, lines: 0, bytes: 0, hash: createHash('sha256') });
        },
        write(chunk) {
          const f = files[files.length - 1];
          const buf = Buffer.from(chunk);
          writeSync(fd, buf);
          f.hash.update(buf);
          f.bytes += buf.length;
          for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) f.lines++;
        },
        end() {
          closeSync(fd);
          fd = -1;
        },
      },
      (done) => progress.update(done),
    );
    progress.update(opts.baskets);
    progress.finish({ lines: summary.lines.total });
    const written: SynthFile[] = [];
    for (const f of files) {
      await lake.upload(f.local, f.key);
      // lines excludes the header row
      written.push({ key: f.key, lines: f.lines - 1, bytes: f.bytes, sha256: f.hash.digest('hex') });
    }
    for (const stale of previousKeys) if (!written.some((f) => f.key === stale)) await lake.delete(stale);
    const manifest: SynthManifest = { ...summary, files: written };
    await lake.write(SYNTH_MANIFEST_KEY, `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    if (fd >= 0) closeSync(fd);
    rmSync(scratch, { recursive: true, force: true });
  }
}
