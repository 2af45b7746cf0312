import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Duck, parseByteSize, type Row } from '../duck';
import { basketAggregateSql, buildGoldTable } from '../features';

/**
 * Silver lines for 3,000 baskets with repeated products, repeated categories, blank
 * (NULL) codes, an XX basket and a basket whose lines disagree on the label.
 */
const SILVER_SQL = `SELECT
    (200607 + b % 3)::INTEGER AS SHOP_WEEK,
    DATE '2006-04-11' + (b % 5)::INTEGER AS SHOP_DATE,
    (994100100000000 + b)::BIGINT AS BASKET_ID,
    CASE WHEN b = 7 THEN 'XX' WHEN b = 8 AND l = 0 THEN 'LA' ELSE ['LA', 'MM', 'UM'][1 + b % 3] END AS BASKET_PRICE_SENSITIVITY,
    ((b * 7 + l * 13) % 500 / 100)::DECIMAL(18,2) AS SPEND,
    (1 + l % 3)::UINTEGER AS QUANTITY,
    CASE WHEN (b + l) % 11 = 0 THEN NULL ELSE 'PRD' || ((b * 31 + l) % 9) END AS PROD_CODE,
    CASE WHEN (b + l) % 5 = 0 THEN NULL ELSE 'CL' || ((b + l) % 4) END AS PROD_CODE_10,
    'DEP' || ((b + l * l) % 3) AS PROD_CODE_20,
    (8 + b % 12)::UTINYINT AS SHOP_HOUR,
    (1 + b % 7)::UTINYINT AS SHOP_WEEKDAY,
    ['S', 'M', 'L'][1 + b % 3] AS BASKET_SIZE,
    'Top Up' AS BASKET_TYPE,
    'Fresh' AS BASKET_DOMINANT_MISSION,
    'LS' AS STORE_FORMAT,
    'E02' AS STORE_REGION,
    CASE WHEN b % 4 = 0 THEN NULL ELSE 'YA' END AS CUST_LIFESTAGE,
    CASE WHEN b % 4 = 0 THEN NULL ELSE 'MM' END AS CUST_PRICE_SENSITIVITY
  FROM range(3000) t(b), range(12) u(l)
  WHERE l < 1 + b % 12`;

const EXPECTED_SQL = `SELECT BASKET_ID,
    count(DISTINCT PROD_CODE)::DOUBLE AS DISTINCT_PRODUCTS,
    count(DISTINCT PROD_CODE_10)::DOUBLE AS DISTINCT_CATEGORIES,
    count(DISTINCT PROD_CODE_20)::DOUBLE AS DISTINCT_DEPARTMENTS
  FROM silver GROUP BY BASKET_ID`;

describe('buildGoldTable', () => {
  let dir: string;
  let duck: Duck;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-gold-build-'));
    duck = await Duck.open({ tempDirectory: dir, threads: 2 });
    await duck.run(`CREATE TEMP TABLE silver AS ${SILVER_SQL}`);
  });
  afterAll(async () => {
    duck.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function build(baskets: string): Promise<{ counts: Awaited<ReturnType<typeof buildGoldTable>>; rows: Row[] }> {
    const counts = await buildGoldTable(duck, baskets);
    const rows = await duck.all(`SELECT * EXCLUDE (_ID) FROM gold_all ORDER BY _ID`);
    return { counts, rows };
  }

  it('counts distinct codes exactly, ignoring blanks, as count(DISTINCT) does', async () => {
    const fast = await build(`(${basketAggregateSql('silver')})`);
    const expected = new Map((await duck.all(EXPECTED_SQL)).map((r) => [String(r.BASKET_ID), r]));
    expect(fast.rows).toHaveLength(3000);
    for (const r of fast.rows) {
      const e = expected.get(String(r.BASKET_ID));
      expect([r.DISTINCT_PRODUCTS, r.DISTINCT_CATEGORIES, r.DISTINCT_DEPARTMENTS]).toEqual([e?.DISTINCT_PRODUCTS, e?.DISTINCT_CATEGORIES, e?.DISTINCT_DEPARTMENTS]);
    }
    // Some baskets really do repeat codes and have blank ones, so the test can fail.
    const [dups] = await duck.all(`SELECT count(*) FILTER (WHERE DISTINCT_PRODUCTS < LINES)::INTEGER AS repeated FROM gold_all`);
    expect(Number(dups.repeated)).toBeGreaterThan(100);
    const [blank] = await duck.all(`SELECT count(*)::INTEGER AS n FROM silver WHERE PROD_CODE IS NULL`);
    expect(Number(blank.n)).toBeGreaterThan(100);
  });

  it('in several passes (bounded memory) builds the same baskets as in one', async () => {
    const one = await build(`(${basketAggregateSql('silver')})`);
    const passes = [0, 1, 2, 3].map((i) => basketAggregateSql('silver', { where: `hash(BASKET_ID) % 4 = ${i}` }));
    const many = await build(`(${passes.join(' UNION ALL ')})`);
    expect(many.rows).toEqual(one.rows);
    expect(many.counts).toMatchObject({ baskets: 3000, unlabelled: 1, inconsistent: 1, labelled: 2998 });
  });
});

describe('parseByteSize', () => {
  it('reads DuckDB memory sizes and rejects anything else', () => {
    expect(parseByteSize('1GB')).toBe(1e9);
    expect(parseByteSize('512 MiB')).toBe(512 * 2 ** 20);
    expect(parseByteSize('2gib')).toBe(2 * 2 ** 30);
    expect(() => parseByteSize('lots')).toThrow(/not a size/);
  });
});
