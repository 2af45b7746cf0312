/**
 * Dirty drops for tests, made the way real exports come out of other tools: line endings
 * of every kind, byte-order marks, stray bytes, compression, zip archives, reordered and
 * extra columns. Baskets are numbered; every basket has two lines and a label.
 */
import { deflateRawSync, gzipSync } from 'node:zlib';
import { readGoldManifest, readGoldSplit } from '../gold';
import { GOLD_SPLITS } from '../gold-schema';
import type { Lake } from '../lake/types';
import { RAW_COLUMNS } from '../schema';

export const HEADER = RAW_COLUMNS.join(',');
export const BASE_ID = 994100100000000;

/** The two lines of basket b, as field maps (so tests can reorder columns). */
export function basketFields(b: number): Record<string, string>[] {
  return [0, 1].map((l) => ({
    SHOP_WEEK: '200607',
    SHOP_DATE: '20060411',
    SHOP_WEEKDAY: '3',
    SHOP_HOUR: String(8 + (b % 12)),
    QUANTITY: String(1 + l),
    SPEND: `${1 + (b % 7)}.${l}5`,
    PROD_CODE: `PRD09000${String(b % 50).padStart(2, '0')}`,
    PROD_CODE_10: `CL000${l}1`,
    PROD_CODE_20: 'DEP00001',
    PROD_CODE_30: 'G00001',
    PROD_CODE_40: 'D00001',
    CUST_CODE: 'CUST0000000001',
    CUST_PRICE_SENSITIVITY: 'MM',
    CUST_LIFESTAGE: 'YF',
    BASKET_ID: String(BASE_ID + b),
    BASKET_SIZE: 'S',
    BASKET_PRICE_SENSITIVITY: ['LA', 'MM', 'UM'][b % 3],
    BASKET_TYPE: 'Top Up',
    BASKET_DOMINANT_MISSION: 'Fresh',
    STORE_CODE: 'STORE00001',
    STORE_FORMAT: 'LS',
    STORE_REGION: 'E01',
  }));
}

export function lines(baskets: Iterable<number>, columns: readonly string[] = RAW_COLUMNS): string[] {
  const out: string[] = [];
  for (const b of baskets) for (const f of basketFields(b)) out.push(columns.map((c) => f[c] ?? 'x').join(','));
  return out;
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Header + lines, each line ended by the given break (or by a cycle of breaks). */
export function csv(body: readonly string[], breaks: readonly string[] = ['\n'], header = HEADER): Buffer {
  return Buffer.from([header, ...body].map((l, i) => `${l}${breaks[i % breaks.length]}`).join(''), 'utf8');
}

export function gz(buf: Buffer): Buffer {
  return gzipSync(buf);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A zip archive of stored (or, with deflate, deflated) members, written byte by byte: names are taken as
 * given, including ones no archiver should produce ('../x.csv'), which is the point.
 */
export function zip(members: { name: string; data: Buffer; deflate?: boolean }[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const crc = crc32(m.data);
    const size = m.data.length;
    const stored = m.deflate ? deflateRawSync(m.data) : m.data;
    const method = m.deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, stored);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(20, 4);
    dir.writeUInt16LE(20, 6);
    dir.writeUInt16LE(0x800, 8);
    dir.writeUInt16LE(method, 10);
    dir.writeUInt32LE(crc, 16);
    dir.writeUInt32LE(stored.length, 20);
    dir.writeUInt32LE(size, 24);
    dir.writeUInt16LE(name.length, 28);
    dir.writeUInt32LE(offset, 42);
    central.push(dir, name);
    offset += 30 + name.length + stored.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** The first bytes of a PNG image: what a mis-named binary file looks like. */
export const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

/** The basket numbers (BASKET_ID - BASE_ID) in the lake's gold, every split, ascending. */
export async function goldIds(lake: Lake): Promise<number[]> {
  const manifest = await readGoldManifest(lake);
  const ids: number[] = [];
  for (const split of GOLD_SPLITS) ids.push(...(await readGoldSplit(lake, split, manifest)).basketIds.map((id) => Number(id) - BASE_ID));
  return ids.sort((a, b) => a - b);
}
