/**
 * One raw dunnhumby line, field by field, without DuckDB: what type each column is read
 * as, whether a value fits it, the reject message when it does not, and the typed value
 * it becomes. The ETL's CSV reader (drop/csv-sql.ts) builds its DuckDB schema from the
 * same tables and names a rejected line's column with validRawValue; the API types the
 * lines of a raw-line /predict request with rawValueTyper (parseRawField on a value's
 * text, with shortcuts for numbers that give the same answer without making the text).
 * Dependency-free, so every layer may import it.
 *
 * The rules are the strict form of DuckDB's casts: DuckDB's CSV reader also takes a few
 * spellings no export writes (exponents like 1e2 and digit separators like 1_000 in
 * numbers, 2.0 as a whole number), which these rules refuse — so a value parseRawField
 * accepts is one DuckDB reads, and reads to the same number.
 */
import { DOMAINS, type RawColumn } from './schema';

const HOURS = [...Array.from({ length: 24 }, (_, h) => String(h)), ...Array.from({ length: 10 }, (_, h) => `0${h}`)];
const REGIONS = [...'NESW'].flatMap((c) => Array.from({ length: 100 }, (_, i) => `${c}${String(i).padStart(2, '0')}`));

/** Raw column → type DuckDB parses it as. '' is allowed only where dunnhumby leaves a field blank. */
/** More lines than any basket has (dunnhumby's largest are a few hundred): the API's and batch scoring's per-basket limit. */
export const MAX_LINES_PER_BASKET = 5000;

export const RAW_TYPES: Readonly<Record<RawColumn, string>> = {
  SHOP_WEEK: 'INTEGER',
  SHOP_DATE: 'DATE',
  SHOP_WEEKDAY: 'ps_weekday',
  SHOP_HOUR: 'ps_hour',
  QUANTITY: 'UINTEGER',
  SPEND: 'DECIMAL(18,2)',
  PROD_CODE: 'VARCHAR',
  PROD_CODE_10: 'VARCHAR',
  PROD_CODE_20: 'VARCHAR',
  PROD_CODE_30: 'VARCHAR',
  PROD_CODE_40: 'VARCHAR',
  CUST_CODE: 'VARCHAR',
  CUST_PRICE_SENSITIVITY: 'ps_cust_sensitivity',
  CUST_LIFESTAGE: 'ps_lifestage',
  BASKET_ID: 'BIGINT',
  BASKET_SIZE: 'ps_basket_size',
  BASKET_PRICE_SENSITIVITY: 'ps_sensitivity',
  BASKET_TYPE: 'ps_basket_type',
  BASKET_DOMINANT_MISSION: 'ps_mission',
  STORE_CODE: 'VARCHAR',
  STORE_FORMAT: 'ps_store_format',
  STORE_REGION: 'ps_region',
};

/** The values of each ENUM type, in the order DuckDB compares them (min/max follow this order, not the text's). */
export const ENUM_DOMAINS: Readonly<Record<string, readonly string[]>> = {
  ps_weekday: ['1', '2', '3', '4', '5', '6', '7'],
  ps_hour: HOURS,
  ps_sensitivity: DOMAINS.PRICE_SENSITIVITY,
  ps_cust_sensitivity: ['', ...DOMAINS.PRICE_SENSITIVITY],
  ps_lifestage: ['', ...DOMAINS.CUST_LIFESTAGE],
  ps_basket_size: DOMAINS.BASKET_SIZE,
  ps_basket_type: DOMAINS.BASKET_TYPE,
  ps_mission: DOMAINS.BASKET_DOMINANT_MISSION,
  ps_store_format: DOMAINS.STORE_FORMAT,
  ps_region: REGIONS,
};

const ENUM_SETS: ReadonlyMap<string, ReadonlyMap<string, number>> = new Map(Object.entries(ENUM_DOMAINS).map(([t, values]) => [t, new Map(values.map((v, i) => [v, i]))]));

/** parseRawField's answer for a value that does not fit its column. */
export const INVALID: unique symbol = Symbol('invalid raw value');
type FieldParser = (text: string) => TypedValue | typeof INVALID;

const INTEGER_TEXT = /^\s*[+-]?\d+\s*$/;
const UNSIGNED_TEXT = /^\s*\+?\d+\s*$/;
const DECIMAL_TEXT = /^\s*([+-]?)(\d+)?(?:\.(\d*))?\s*$/;
const DATE_TEXT = /^\d{8}$/;

/** Dates repeat on every line of a basket: their check is remembered (bounded). */
const validDates = new Map<string, boolean>();
function validDate(v: string): boolean {
  let ok = validDates.get(v);
  if (ok === undefined) {
    ok = DATE_TEXT.test(v) && !Number.isNaN(Date.parse(`${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6, 8)}T00:00:00Z`));
    if (validDates.size > 4096) validDates.clear();
    validDates.set(v, ok);
  }
  return ok;
}

/**
 * Per column: the check DuckDB's cast makes (restated, so that a rejected line can name
 * its column) and the typed value the field becomes, in one step.
 */
function fieldParser(column: RawColumn): FieldParser {
  const type = RAW_TYPES[column];
  const domain = ENUM_SETS.get(type);
  if (domain && (type === 'ps_hour' || type === 'ps_weekday')) {
    // Silver holds them as numbers: '07' is 7 (typedLinesSql maps the enum position to the number).
    const numbers = new Map([...domain.keys()].map((v) => [v, Number(v)]));
    return (t) => numbers.get(t) ?? INVALID;
  }
  if (domain) return (t) => (domain.has(t) ? (t === '' ? null : t) : INVALID);
  switch (type) {
    case 'INTEGER':
      return (t) => (INTEGER_TEXT.test(t) && Math.abs(Number(t)) < 2 ** 31 ? Number(t) || 0 : INVALID);
    case 'UINTEGER':
      return (t) => (UNSIGNED_TEXT.test(t) && Number(t) < 2 ** 32 ? Number(t) || 0 : INVALID);
    case 'BIGINT':
      return (t) => {
        if (!INTEGER_TEXT.test(t) || t.trim().replace(/^[+-]/, '').length > 18) return INVALID;
        const n = Number(t);
        return Number.isSafeInteger(n) ? n || 0 : BigInt(t.trim());
      };
    case 'DECIMAL(18,2)':
      return (t) => {
        const m = DECIMAL_TEXT.exec(t);
        if (!m || (m[2] === undefined && !m[3]) || (m[2]?.length ?? 0) > 16) return INVALID;
        return cents(m[1] === '-', m[2] ?? '', m[3] ?? '');
      };
    case 'DATE':
      return (t) => (validDate(t) ? t : INVALID);
    default:
      return (t) => (t === '' ? null : t);
  }
}

const PARSERS = Object.fromEntries((Object.keys(RAW_TYPES) as RawColumn[]).map((c) => [c, fieldParser(c)])) as Readonly<Record<RawColumn, FieldParser>>;

/**
 * The typed value of `text` (a field as it appears in the CSV, unquoted) as typedLinesSql
 * makes it, or INVALID where DuckDB's cast rejects it: SHOP_HOUR and SHOP_WEEKDAY as
 * numbers, blanks as null, a DECIMAL rounded half away from zero to 2 places.
 */
export function parseRawField(column: RawColumn, text: string): TypedValue | typeof INVALID {
  return PARSERS[column](text);
}

/** The text a CSV field would hold for a JSON value; undefined for a value no CSV field can be (an object, a boolean, a non-finite number). */
export function fieldText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  return undefined;
}

export type ValueTyper = (v: unknown) => TypedValue | typeof INVALID;

/**
 * Per column: the typed value of a JSON value (a string, or a number as the text a CSV
 * would hold), or INVALID — parseRawField(column, fieldText(v)), with shortcuts that give
 * the same answer without making text: any string or finite number is a VARCHAR value,
 * a whole number in range is its own INTEGER/UINTEGER/BIGINT value (its text is plain
 * digits, which parse back to it; -0 becomes 0 as Number('0') does), and an amount with at
 * most two decimals is its cents.
 */
function valueTyper(column: RawColumn): ValueTyper {
  const parse = PARSERS[column];
  const slow: ValueTyper = (v) => {
    const text = fieldText(v);
    return text === undefined ? INVALID : parse(text);
  };
  switch (RAW_TYPES[column]) {
    case 'VARCHAR':
      return (v) => (typeof v === 'string' ? (v === '' ? null : v) : typeof v === 'number' && Number.isFinite(v) ? String(v) : INVALID);
    case 'INTEGER':
      return (v) => (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 2 ** 31 ? v || 0 : slow(v));
    case 'UINTEGER':
      return (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32 ? v || 0 : slow(v));
    case 'BIGINT':
      return (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? v || 0 : slow(v));
    case 'DECIMAL(18,2)':
      // A number that is exactly some n/100 (3.1, 0.07): its shortest text is that n/100 (below
      // 1e13 two such decimals are further apart than the double's spacing), so its cents are n.
      // Anything else (1.005, 1e-7) goes through its text.
      return (v) => {
        if (typeof v !== 'number' || !(Math.abs(v) < 1e13)) return slow(v);
        const n = Math.round(v * 100);
        return n / 100 === v ? n || 0 : slow(v);
      };
    default:
      return slow;
  }
}

const VALUE_TYPERS = Object.fromEntries((Object.keys(RAW_TYPES) as RawColumn[]).map((c) => [c, valueTyper(c)])) as Readonly<Record<RawColumn, ValueTyper>>;

/** The function typing a JSON value of a raw-line request for the column (see valueTyper): INVALID where the ETL rejects its text. */
export function rawValueTyper(column: RawColumn): ValueTyper {
  return VALUE_TYPERS[column];
}

/** Whether `text` (a field as it appears in the CSV, unquoted) fits the column. */
export function validRawValue(column: RawColumn, text: string): boolean {
  return PARSERS[column](text) !== INVALID;
}

/** What a column expects, in words (reject reasons and API errors). */
export function expectedOf(column: string | null): string {
  switch (column) {
    case 'SHOP_WEEK':
      return 'a week number like 200607';
    case 'SHOP_DATE':
      return 'a date as YYYYMMDD';
    case 'SHOP_WEEKDAY':
      return '1-7';
    case 'SHOP_HOUR':
      return '0-23';
    case 'QUANTITY':
      return 'a whole number ≥ 0';
    case 'SPEND':
      return 'an amount like 1.50';
    case 'BASKET_ID':
      return 'a whole number';
    case 'CUST_PRICE_SENSITIVITY':
    case 'BASKET_PRICE_SENSITIVITY':
      return 'LA, MM, UM or XX';
    case 'STORE_REGION':
      return 'a region like E02';
    default:
      return 'a dunnhumby code for this column';
  }
}

/** The reject reason of a value that does not fit its column: the ETL's rejects file and the API's errors say the same. */
export function invalidValueReason(column: RawColumn, value: string | undefined): string {
  return `${column} is ${JSON.stringify(value ?? '')}; expected ${expectedOf(column)}`;
}

/**
 * A typed value as DuckDB holds it in silver: whole numbers and DECIMAL(18,2) as exact
 * scaled integers (SPEND in cents; a bigint past 2^53), codes as strings, a blank
 * VARCHAR or customer code as null.
 */
export type TypedValue = number | bigint | string | null;

/** The decimal scale each numeric column is held at (SPEND: cents). */
export const RAW_SCALE: Readonly<Partial<Record<RawColumn, number>>> = { SPEND: 2 };

/** Columns a line may leave blank (read as NULL): free-text codes and the customer fields of anonymous baskets. */
export function nullableColumn(column: RawColumn): boolean {
  const type = RAW_TYPES[column];
  return type === 'VARCHAR' || (ENUM_SETS.get(type)?.has('') ?? false);
}

/** "12.345" → 1235: exact, rounded half away from zero on the third decimal like DuckDB's DECIMAL(18,2) cast. */
function cents(negative: boolean, whole: string, frac: string): number | bigint {
  const digits = `${whole || '0'}${(frac + '00').slice(0, 2)}`;
  const up = frac.length > 2 && frac.charCodeAt(2) >= 53; /* '5' */
  if (digits.length <= 15) {
    const magnitude = Number(digits) + (up ? 1 : 0);
    return magnitude === 0 ? 0 : negative ? -magnitude : magnitude;
  }
  const magnitude = BigInt(digits) + (up ? 1n : 0n);
  const value = negative ? -magnitude : magnitude;
  return Number.isSafeInteger(Number(value)) ? Number(value) : value;
}

/** Enum columns typed as numbers in silver (their text is a number: '07' is 7). */
const NUMERIC_ENUMS: ReadonlySet<string> = new Set(['ps_weekday', 'ps_hour']);

/** Whether silver holds the column as a number (the others are codes or text). */
export function numericColumn(column: RawColumn): boolean {
  const type = RAW_TYPES[column];
  return NUMERIC_ENUMS.has(type) || ['INTEGER', 'UINTEGER', 'BIGINT', 'DECIMAL(18,2)'].includes(type);
}

/** The domain position of a code column's value (the order DuckDB's min/max use), or undefined for columns typed as numbers or text. */
export function enumRank(column: RawColumn): ReadonlyMap<string, number> | undefined {
  const type = RAW_TYPES[column];
  return NUMERIC_ENUMS.has(type) ? undefined : ENUM_SETS.get(type);
}

