/**
 * Hostile and damaged model.tar.gz artifacts, as someone with write access to the
 * registry's bucket could make them: crafted PAX headers, base-256 sizes, a gzip bomb,
 * and random damage to valid archives. Used by the reader's fuzz test
 * (model/test/artifact-fuzz-worker.ts) and the API's (api/test/hostile-artifact.test.ts).
 */
import { gzipSync } from 'node:zlib';
import { writeTar } from '../sagemaker/tar';

const BLOCK = 512;

function fixChecksum(tar: Buffer, at: number): void {
  const header = tar.subarray(at, at + BLOCK);
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += header[i];
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
}

/** A tar whose first entry is a PAX extended header (type 'x') with these records, then forest.json. */
function withPax(records: string | Buffer, forest: Buffer): Buffer {
  const body = typeof records === 'string' ? Buffer.from(records, 'utf8') : records;
  const tar = writeTar([
    { name: 'PaxHeaders/forest.json', data: body },
    { name: 'forest.json', data: forest },
  ]);
  tar[156] = 'x'.charCodeAt(0);
  fixChecksum(tar, 0);
  return tar;
}

/** "<len> key=value\n" with the length counting itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return `${len}${rest}`;
}

/** `members` gzip members of `chunk` zero bytes each, concatenated (gunzip reads them all): a small file, a huge output. */
export function gzipBomb(chunk: number, members: number): Buffer {
  const one = gzipSync(Buffer.alloc(chunk), { level: 9 });
  return Buffer.concat(Array.from({ length: members }, () => one));
}

/**
 * A valid model.tar.gz whose first member, `padding.bin`, is `mib` MiB of zeros the reader
 * does not keep, followed by forest.json: gzip members concatenated, so building it never
 * holds the padding (~`mib` KiB compressed).
 */
export function largeSkippedMember(forest: Buffer, mib: number): Buffer {
  if (mib % 16 !== 0) throw new Error('largeSkippedMember: mib must be a multiple of 16');
  const header = Buffer.from(writeTar([{ name: 'padding.bin', data: Buffer.alloc(0) }]).subarray(0, 512));
  header.write(`${(mib * 2 ** 20).toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
  fixChecksum(header, 0);
  return Buffer.concat([gzipSync(header), gzipBomb(16 * 2 ** 20, mib / 16), gzipSync(writeTar([{ name: 'forest.json', data: forest }]))]);
}

function truncated(bytes: Buffer): Buffer {
  return bytes.subarray(0, bytes.length >> 1);
}

/** The forest.json the fuzz tests put behind largeSkippedMember's padding. */
export const SKIPPED_MEMBER_FOREST = '{"format":"pricesense.forest"}';

/** 2 GiB of zeros in ~2 MB: 128 gzip members of 16 MiB each. */
export function twoGibGzipBomb(): Buffer {
  return gzipBomb(16 * 1024 * 1024, 128);
}

export function hostileCases(forest: Buffer): [string, Buffer][] {
  const gz = (tar: Buffer) => gzipSync(tar);
  const negativeBase256 = writeTar([{ name: 'forest.json', data: forest }]);
  negativeBase256.fill(0xff, 124, 136);
  fixChecksum(negativeBase256, 0);
  const hugeOctal = writeTar([{ name: 'forest.json', data: forest }]);
  hugeOctal.write('77777777777\0', 124, 12, 'ascii');
  fixChecksum(hugeOctal, 0);
  return [
    // A negative size moves the reader back onto the PAX header, which sets the same size again: a loop without bounds.
    ['pax size -1536 (rewinds onto its own header)', gz(withPax(paxRecord('size', '-1536'), forest))],
    ['pax size -1024', gz(withPax(paxRecord('size', '-1024'), forest))],
    ['pax size -512', gz(withPax(paxRecord('size', '-512'), forest))],
    ['pax size 1e30', gz(withPax(paxRecord('size', '1000000000000000000000000000000'), forest))],
    ['pax size 12abc', gz(withPax(paxRecord('size', '12abc'), forest))],
    ['pax size empty', gz(withPax(paxRecord('size', ''), forest))],
    ['pax record length 0', gz(withPax('0 size=1\n', forest))],
    ['pax record length beyond its header', gz(withPax('99999 size=1\n', forest))],
    ['pax record length -5', gz(withPax('-5 size=1\n', forest))],
    ['pax record without newline', gz(withPax('12 size=12345', forest))],
    ['base-256 negative size', gz(negativeBase256)],
    ['octal size beyond the archive', gz(hugeOctal)],
    ['gzip bomb: 2 GiB of zeros in ~2 MB', twoGibGzipBomb()],
    ['gzip header, then garbage', Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), Buffer.alloc(1000, 0x41)])],
    ['truncated gzip', truncated(gz(writeTar([{ name: 'forest.json', data: forest }])))],
    ['two forest.json', gz(writeTar([{ name: 'a/forest.json', data: forest }, { name: 'b/forest.json', data: forest }]))],
  ];
}

/** Random damage to a valid tar: byte flips, field rewrites (checksum fixed half the time), truncation. */
export function mutated(rng: () => number, forest: Buffer): Buffer {
  const tars = [
    () => writeTar([{ name: 'forest.json', data: forest }]),
    () => withPax(paxRecord('path', 'model/forest.json') + paxRecord('size', String(forest.length)), forest),
    () => writeTar([{ name: 'notes.txt', data: Buffer.from('hello') }, { name: 'forest.json', data: forest }]),
  ];
  const tar = tars[Math.floor(rng() * tars.length)]();
  const headers: number[] = [];
  for (let at = 0; at + BLOCK <= tar.length; at += BLOCK) if (tar.readUInt32BE(at + 148) !== 0 && tar.toString('ascii', at + 257, at + 262) === 'ustar') headers.push(at);
  const edits = 1 + Math.floor(rng() * 4);
  for (let e = 0; e < edits; e++) {
    const at = headers[Math.floor(rng() * headers.length)] ?? 0;
    switch (Math.floor(rng() * 4)) {
      case 0: // any byte of a header
        tar[at + Math.floor(rng() * BLOCK)] = Math.floor(rng() * 256);
        break;
      case 1: // the size field: octal, digits, spaces or a base-256 marker
        for (let i = 124; i < 136; i++) tar[at + i] = [0x30 + Math.floor(rng() * 8), 0x20, 0, 0x80, 0xff, 0x39][Math.floor(rng() * 6)];
        break;
      case 2: // the type flag
        tar[at + 156] = 'x0L7gK5'.charCodeAt(Math.floor(rng() * 7));
        break;
      default: // anywhere in the archive
        tar[Math.floor(rng() * tar.length)] ^= 1 << Math.floor(rng() * 8);
    }
    if (rng() < 0.5) fixChecksum(tar, at);
  }
  const cut = rng() < 0.2 ? Math.floor(rng() * tar.length) : tar.length;
  const gz = gzipSync(tar.subarray(0, cut));
  // Now and then damage the compressed stream itself.
  if (rng() < 0.15) gz[10 + Math.floor(rng() * (gz.length - 10))] ^= 0xff;
  return gz;
}

