/**
 * The dirty drop of the skew tests (the raw-line parity test and the batch scorer's raw-line
 * parity test): a synthetic drop rewritten with the dirt real exports have — blank
 * PROD_CODE_40 and PROD_CODE, XX codes, quantities of zero, product lines repeated, SPEND
 * with a third decimal, zero-padded hours, codes that disagree within a basket, a basket
 * spread over two files, CRLF line endings.
 */
import type { LocalLake } from '../../etl/lake/local';

export type Line = Record<string, string | number>;

/**
 * Rewrites the drop's CSVs with dirt, line by line (deterministically). Returns the raw
 * lines of every basket as a client would send them (JSON numbers where a POS would
 * send numbers), whatever the ETL will make of them.
 */
export async function dirty(lake: LocalLake): Promise<Map<string, Line[]>> {
  const keys = (await lake.list('raw/')).map((o) => o.key).filter((k) => k.endsWith('.csv')).sort();
  const texts = await Promise.all(keys.map(async (k) => (await lake.read(k)).toString('utf8').split('\n').filter((l) => l.length > 0)));
  const header = texts[0][0].split(',');
  const idx = (c: string) => header.indexOf(c);
  const [Q, S, H, P, P40, ID, BT] = ['QUANTITY', 'SPEND', 'SHOP_HOUR', 'PROD_CODE', 'PROD_CODE_40', 'BASKET_ID', 'BASKET_TYPE'].map(idx);
  const out: string[][] = texts.map((t) => [t[0]]);
  const moved = new Set<string>();
  let n = 0;
  for (const [f, text] of texts.entries()) {
    for (const raw of text.slice(1)) {
      const v = raw.split(',');
      n++;
      if (v.length === header.length) {
        const id = Number(v[ID]);
        if (id % 97 === 0 || n % 37 === 0) v[Q] = '0'; // every line of some baskets, and single lines of others
        if (n % 41 === 0) v[S] = `${v[S]}5`; // a third decimal: 1.23 → 1.235 rounds to 1.24
        if (n % 43 === 0 && Number(v[H]) < 10) v[H] = `0${v[H]}`;
        if (n % 101 === 0) v[P] = '';
        if (n % 59 === 0) v[P40] = '';
        if (n % 61 === 0) v[BT] = 'XX'; // disagrees with the basket's other lines: min in domain order
      }
      const line = v.join(',');
      // The first line of some baskets goes to the next file: the basket spans two files.
      const spread = f + 1 < texts.length && v.length === header.length && Number(v[ID]) % 89 === 0 && !moved.has(v[ID]);
      if (spread) moved.add(v[ID]);
      const target = spread ? f + 1 : f;
      out[target].push(line);
      if (n % 53 === 0) out[target].push(line); // a product line repeated
    }
  }
  const baskets = new Map<string, Line[]>();
  for (const [f, lines] of out.entries()) {
    // One file with Windows line endings.
    await lake.write(keys[f], Buffer.from(`${lines.join(f === 0 ? '\r\n' : '\n')}\n`, 'utf8'));
    for (const line of lines.slice(1)) {
      const v = line.split(',');
      const obj: Line = {};
      header.forEach((c, i) => {
        if (i >= v.length) return;
        // Numbers as a POS would send them, where the CSV text is a plain number.
        obj[c] = (c === 'QUANTITY' || c === 'SPEND') && /^\d+(\.\d{1,2})?$/.test(v[i]) ? Number(v[i]) : v[i];
      });
      const id = v[ID];
      if (id === undefined) continue;
      const list = baskets.get(id) ?? [];
      list.push(obj);
      baskets.set(id, list);
    }
  }
  return baskets;
}
