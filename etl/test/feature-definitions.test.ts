import { basketFeatures, REQUIRED_LINE_COLUMNS } from '../basket-features';
import { FEATURE_DEFINITIONS, FEATURE_DEFINITIONS_VERSION } from '../feature-definitions';
import { featureSql } from '../features';
import { GOLD_FEATURES } from '../gold-schema';
import { fieldText, INVALID, parseRawField, rawValueTyper } from '../raw-line';
import { RAW_COLUMNS } from '../schema';

/** The SQL the gold features were hand-written as before the definitions: generated SQL must stay this text (silver and gold fingerprints depend on it). */
const HAND_WRITTEN_SQL: Record<string, string> = {
  SPEND: 'sum(SPEND)::DOUBLE',
  QUANTITY: 'sum(QUANTITY)::DOUBLE',
  LINES: 'count(*)::DOUBLE',
  DISTINCT_PRODUCTS: 'len(list_distinct(list(PROD_CODE)))::DOUBLE',
  DISTINCT_CATEGORIES: 'len(list_distinct(list(PROD_CODE_10)))::DOUBLE',
  DISTINCT_DEPARTMENTS: 'len(list_distinct(list(PROD_CODE_20)))::DOUBLE',
  AVG_UNIT_PRICE: 'sum(SPEND)::DOUBLE / NULLIF(sum(QUANTITY)::DOUBLE, 0)',
  MAX_UNIT_PRICE: 'max(SPEND::DOUBLE / NULLIF(QUANTITY::DOUBLE, 0))',
  SHOP_HOUR: 'min(SHOP_HOUR)::DOUBLE',
  SHOP_WEEKDAY: 'min(SHOP_WEEKDAY)::DOUBLE',
  BASKET_SIZE: 'min(BASKET_SIZE)::VARCHAR',
  BASKET_TYPE: 'min(BASKET_TYPE)::VARCHAR',
  BASKET_DOMINANT_MISSION: 'min(BASKET_DOMINANT_MISSION)::VARCHAR',
  STORE_FORMAT: 'min(STORE_FORMAT)::VARCHAR',
  STORE_REGION: 'min(STORE_REGION)::VARCHAR',
  CUST_LIFESTAGE: 'min(CUST_LIFESTAGE)::VARCHAR',
  CUST_PRICE_SENSITIVITY: 'min(CUST_PRICE_SENSITIVITY)::VARCHAR',
};

const line = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  SHOP_HOUR: 14,
  SHOP_WEEKDAY: 3,
  QUANTITY: 1,
  SPEND: '1.00',
  PROD_CODE: 'PRD0900001',
  PROD_CODE_10: 'CL00001',
  PROD_CODE_20: 'DEP00001',
  BASKET_SIZE: 'M',
  BASKET_TYPE: 'Top Up',
  BASKET_DOMINANT_MISSION: 'Fresh',
  STORE_FORMAT: 'LS',
  STORE_REGION: 'E02',
  CUST_LIFESTAGE: 'YF',
  CUST_PRICE_SENSITIVITY: 'MM',
  ...over,
});

describe('feature definitions', () => {
  it('generate exactly the SQL the gold features were hand-written as, in gold column order', () => {
    expect(FEATURE_DEFINITIONS.map((d) => d.name)).toEqual(Object.keys(HAND_WRITTEN_SQL));
    expect(Object.fromEntries(FEATURE_DEFINITIONS.map((d) => [d.name, featureSql(d)]))).toEqual(HAND_WRITTEN_SQL);
    expect(GOLD_FEATURES.map((f) => f.name)).toEqual(Object.keys(HAND_WRITTEN_SQL));
    expect(FEATURE_DEFINITIONS_VERSION).toMatch(/^sha256:[0-9a-f]{16}$/);
  });

  it('computes a basket the way the SQL does: exact cents, zero quantities, repeated products, code order', () => {
    const r = basketFeatures([
      line({ SPEND: '0.10', QUANTITY: 1, PROD_CODE: 'A' }),
      line({ SPEND: 0.2, QUANTITY: '2', PROD_CODE: 'A', BASKET_TYPE: 'Small Shop', SHOP_HOUR: '07' }),
      line({ SPEND: '3.455', QUANTITY: 0, PROD_CODE: '', PROD_CODE_20: null, CUST_LIFESTAGE: '' }),
    ]);
    expect(r.problems).toBeUndefined();
    expect(r.row).toEqual({
      SPEND: 3.76, // 10 + 20 + 346 cents (3.455 rounds half away from zero), then / 100 once
      QUANTITY: 3,
      LINES: 3,
      DISTINCT_PRODUCTS: 1, // 'A' twice, and a blank PROD_CODE is null
      DISTINCT_CATEGORIES: 1,
      DISTINCT_DEPARTMENTS: 1,
      AVG_UNIT_PRICE: 3.76 / 3,
      MAX_UNIT_PRICE: 0.1, // the zero-quantity line has no unit price
      SHOP_HOUR: 7,
      SHOP_WEEKDAY: 3,
      BASKET_SIZE: 'M',
      BASKET_TYPE: 'Small Shop', // domain order: Small Shop < Top Up < Full Shop < XX
      BASKET_DOMINANT_MISSION: 'Fresh',
      STORE_FORMAT: 'LS',
      STORE_REGION: 'E02',
      CUST_LIFESTAGE: 'YF',
      CUST_PRICE_SENSITIVITY: 'MM',
    });
    const zero = basketFeatures([line({ QUANTITY: 0 }), line({ QUANTITY: '0' })]);
    expect(zero.row).toMatchObject({ QUANTITY: 0, AVG_UNIT_PRICE: null, MAX_UNIT_PRICE: null });
  });

  it('takes basket-level fields given once beside the lines; a line may override them', () => {
    const basket = { SHOP_HOUR: 9, STORE_REGION: 'W01' };
    const r = basketFeatures([line({ SHOP_HOUR: undefined, STORE_REGION: undefined }), line({ SHOP_HOUR: 20, STORE_REGION: undefined })], basket);
    expect(r.row).toMatchObject({ SHOP_HOUR: 9, STORE_REGION: 'W01' });
    // min(9, 20) is 9 whether or not line 2's 20 counted: an override below the basket's value shows it does.
    expect(basketFeatures([line({ SHOP_HOUR: undefined }), line({ SHOP_HOUR: 5 })], basket).row).toMatchObject({ SHOP_HOUR: 5 });
  });

  it('refuses a line with the ETL reject messages, naming line index and field', () => {
    const r = basketFeatures([line(), line({ SPEND: 'N/A', STORE_FORMAT: 'ZZ' }), line({ QUANTITY: undefined, SHOP_HOUR: true })]);
    expect(r.problems).toEqual([
      { line: 1, field: 'SPEND', reason: 'SPEND is "N/A"; expected an amount like 1.50', expected: 'an amount like 1.50', value: 'N/A', fromBasket: false },
      { line: 1, field: 'STORE_FORMAT', reason: 'STORE_FORMAT is "ZZ"; expected a dunnhumby code for this column', expected: 'a dunnhumby code for this column', value: 'ZZ', fromBasket: false },
      { line: 2, field: 'SHOP_HOUR', reason: 'SHOP_HOUR is true; expected 0-23', expected: '0-23', value: true, fromBasket: false },
      { line: 2, field: 'QUANTITY', reason: 'QUANTITY is missing; expected a whole number ≥ 0', expected: 'a whole number ≥ 0', value: null, fromBasket: false },
    ]);
    // Fields no feature reads may be left out, but are checked when given.
    expect(basketFeatures([line({ BASKET_PRICE_SENSITIVITY: 'QQ' })]).problems?.[0]).toMatchObject({ field: 'BASKET_PRICE_SENSITIVITY', reason: 'BASKET_PRICE_SENSITIVITY is "QQ"; expected LA, MM, UM or XX' });
    expect(REQUIRED_LINE_COLUMNS).toEqual(['SHOP_WEEKDAY', 'SHOP_HOUR', 'QUANTITY', 'SPEND', 'BASKET_SIZE', 'BASKET_TYPE', 'BASKET_DOMINANT_MISSION', 'STORE_FORMAT', 'STORE_REGION']);
  });

  it('types a JSON value exactly as its CSV text: the shortcuts for numbers agree with the text rules', () => {
    let seed = 15;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const values: unknown[] = [0, -0, 1, -1, 7, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e17, 1e21, 0.07, 0.1 + 0.2, 1.005, 3.455, -2.675, 1e-7, -1.5, 2.5,
      12345678901.23, 9999999999999.99, 1e13, 1e13 + 0.01, 1e16, NaN, Infinity, -Infinity, '3.10', ' 7 ', '', true, null, {}];
    for (let k = 0; k < 3000; k++) {
      const cents = Math.floor(random() * 10 ** (1 + Math.floor(random() * 15)));
      values.push(cents / 100, -cents / 100, cents / 1000, cents, random() * 1000, Math.round(random() * 1e6) / 1e4);
    }
    const mismatches: string[] = [];
    for (const column of RAW_COLUMNS) {
      const typer = rawValueTyper(column);
      for (const v of values) {
        const text = fieldText(v);
        const expected = text === undefined ? INVALID : parseRawField(column, text);
        const got = typer(v);
        if (!Object.is(got, expected) && !(typeof got === 'bigint' && got === expected)) mismatches.push(`${column} ${String(v)}: ${String(got)} vs ${String(expected)}`);
      }
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
  });
});
