/**
 * The fixed world a synthetic drop is drawn from: stores, a product hierarchy with
 * prices, and customers. Everything derives from the seed.
 */
import type { Rng } from './rng';

export const STORE_FORMATS = ['SS', 'MS', 'LS', 'XLS'] as const;
/** Convenience formats charge more for the same product. */
export const FORMAT_MARKUP: Readonly<Record<string, number>> = { SS: 1.16, MS: 1.08, LS: 1.0, XLS: 0.96 };
export const REGIONS = ['E01', 'E02', 'E03', 'N01', 'N02', 'N03', 'S01', 'S02', 'S03', 'W01', 'W02', 'W03'] as const;
export const LIFESTAGES = ['YA', 'OA', 'YF', 'OF', 'PE', 'OT', 'XX'] as const;
const LIFESTAGE_WEIGHTS = [0.16, 0.2, 0.17, 0.17, 0.15, 0.12, 0.03];

/** Divisions (PROD_CODE_40) in dunnhumby order: fresh, grocery, non-food. */
export const DIVISIONS = ['D00001', 'D00002', 'D00003'] as const;
const DIVISION_MEDIAN_PENCE = [150, 125, 340];
const TIER_MULTIPLIER = [0.55, 1.0, 2.1]; // budget, standard, premium

export interface Store {
  readonly code: string;
  readonly format: string;
  readonly region: string;
}

export interface Product {
  /** "PROD_CODE,PROD_CODE_10,PROD_CODE_20,PROD_CODE_30,PROD_CODE_40" ready to splice into a line. */
  readonly csv: string;
  /** Same with PROD_CODE_40 blank (dirt). */
  readonly csvBlankDivision: string;
  readonly department: number;
  readonly pricePence: number;
}

export interface Customer {
  readonly code: string;
  readonly lifestage: string;
  /** The customer's own long-run price sensitivity code (LA/MM/UM/XX). */
  readonly sensitivity: string;
  /** Latent affluence: drives which price tier the customer's lines come from. */
  readonly affluence: number;
}

export interface World {
  readonly stores: Store[];
  readonly storeCum: Float64Array;
  /** products[division][tier] → products of that division and price tier. */
  readonly products: Product[][][];
  readonly customers: Customer[];
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

export function buildWorld(rng: Rng, customerCount: number): World {
  const stores: Store[] = [];
  const storeWeights: number[] = [];
  const formatCum = [0.22, 0.52, 0.85, 1];
  const formatTraffic: Record<string, number> = { SS: 0.5, MS: 0.8, LS: 1.2, XLS: 1.8 };
  for (let i = 0; i < 60; i++) {
    const x = rng.next();
    const format = STORE_FORMATS[formatCum.findIndex((c) => x < c)];
    stores.push({ code: `STORE${pad(i + 1, 5)}`, format, region: REGIONS[rng.int(REGIONS.length)] });
    storeWeights.push(formatTraffic[format] * (0.6 + rng.next()));
  }
  const storeCum = new Float64Array(storeWeights.length);
  storeWeights.reduce((acc, w, i) => (storeCum[i] = acc + w), 0);

  // Hierarchy: 3 divisions > 12 groups > 90 departments > 250 categories > 4000 products.
  const products: Product[][][] = DIVISIONS.map(() => [[], [], []]);
  const departmentDivision: number[] = [];
  const departmentGroup: number[] = [];
  for (let dep = 0; dep < 90; dep++) {
    const group = Math.floor((dep * 12) / 90);
    departmentGroup.push(group);
    departmentDivision.push(Math.floor(group / 4));
  }
  const departmentMedian = departmentDivision.map((d) => DIVISION_MEDIAN_PENCE[d] * Math.exp(0.3 * rng.normal()));
  const categoryDepartment: number[] = [];
  for (let cat = 0; cat < 250; cat++) categoryDepartment.push(cat < 90 ? cat : rng.int(90));
  for (let p = 0; p < 4000; p++) {
    const cat = p < 250 ? p : rng.int(250);
    const dep = categoryDepartment[cat];
    const div = departmentDivision[dep];
    const tier = rng.pick(TIER_CUM);
    const pricePence = Math.max(15, Math.round(departmentMedian[dep] * TIER_MULTIPLIER[tier] * Math.exp(0.25 * rng.normal())));
    const head = `PRD${pad(900001 + p, 7)},CL${pad(cat + 1, 5)},DEP${pad(dep + 1, 5)},G${pad(departmentGroup[dep] + 1, 5)}`;
    products[div][tier].push({ csv: `${head},${DIVISIONS[div]}`, csvBlankDivision: `${head},`, department: dep, pricePence });
  }

  const customers: Customer[] = [];
  const lifeCum = cumulativeOf(LIFESTAGE_WEIGHTS);
  for (let i = 0; i < customerCount; i++) {
    const affluence = rng.normal();
    customers.push({
      code: `CUST${pad(i + 1, 10)}`,
      lifestage: LIFESTAGES[rng.pick(lifeCum)],
      sensitivity: customerSensitivity(rng, affluence),
      affluence,
    });
  }
  return { stores, storeCum, products, customers };
}

const TIER_CUM = cumulativeOf([0.3, 0.45, 0.25]);

function customerSensitivity(rng: Rng, affluence: number): string {
  const x = rng.next();
  if (x < 0.04) return 'XX';
  if (x < 0.19) return ['LA', 'MM', 'UM'][rng.int(3)]; // customers are not perfectly consistent
  return affluence < -0.55 ? 'LA' : affluence > 0.65 ? 'UM' : 'MM';
}

function cumulativeOf(weights: number[]): Float64Array {
  const out = new Float64Array(weights.length);
  weights.reduce((acc, w, i) => (out[i] = acc + w), 0);
  return out;
}
