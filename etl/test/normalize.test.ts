/**
 * The byte pass must not depend on where a read happens to split the file: a line (or a
 * CRLF) cut between two chunks, a chunk buffer reused by the reader, must give the same
 * hash, counts, rejects and output as one read of the whole file.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { normalizeCsv, scanChunks, type NormalizeResult } from '../drop/normalize';

const HEADER = 'A,B,C';
const FILLER = Array.from({ length: 20 }, (_, i) => `${i},${i},${i}\n`).join('');
// BOM, LF, CRLF, CR-only, a blank line, a line with bytes that are not UTF-8, a NUL, an unbalanced quote, no final break.
// (The filler keeps the one NUL under the share that makes a file binary.)
const DIRTY = Buffer.concat([
  Buffer.from([0xef, 0xbb, 0xbf]),
  Buffer.from(`${HEADER}\r\n${FILLER}1,2,3\n4,5,6\r\n7,8,9\r10,11,12\n\n`),
  Buffer.from([0x31, 0x2c, 0xff, 0x2c, 0x33, 0x0a]),
  Buffer.from('1,\u0000,3\r\n"open,2,3\n13,14,15'),
]);
const CLEAN = Buffer.from(`${HEADER}\n${Array.from({ length: 40 }, (_, i) => `${i},${i * 2},${i * 3}`).join('\n')}\n`);

async function* chunked(bytes: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    // A fresh copy each time, so nothing may rely on a chunk's memory surviving the next one.
    yield Buffer.from(bytes.subarray(at, c));
    at = c;
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-normalize-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function normalized(bytes: Buffer, cuts: number[], name: string): Promise<{ result: NormalizeResult; output: string }> {
  const output = path.join(dir, name);
  const result = await normalizeCsv(chunked(bytes, cuts), { output });
  return { result, output: await readFile(output, 'latin1') };
}

describe('normalizeCsv', () => {
  it('makes a dirty file uniform: LF only, no BOM, bad lines blanked and reported with their line numbers', async () => {
    const { result, output } = await normalized(DIRTY, [], 'whole.csv');
    expect(output).toBe(`${HEADER}\n${FILLER}1,2,3\n4,5,6\n7,8,9\n10,11,12\n\n\n\n\n13,14,15\n`);
    expect(result.lineEndings).toEqual({ lf: 26, crlf: 3, cr: 1 });
    expect(result.removed.map((r) => r.line)).toEqual([27, 28, 29]);
    expect(result.removed.map((r) => r.raw)).toEqual(['1,\\xFF,3', '1,\u0000,3', '"open,2,3']);
    expect(result.dataLines).toBe(28);
    expect(result.bom).toBe(true);
    expect(result.clean).toBe(false);
  });

  it('gives the same result wherever the reads split the file (inside a line, a CRLF, the BOM)', async () => {
    const whole = await normalized(DIRTY, [], 'ref.csv');
    for (let a = 1; a < DIRTY.length; a++) {
      for (const b of [a + 1, DIRTY.length - 1]) {
        const cuts = b > a && b < DIRTY.length ? [a, b] : [a];
        const split = await normalized(DIRTY, cuts, `cut-${a}-${b}.csv`);
        expect({ at: cuts, ...split }).toEqual({ at: cuts, ...whole });
      }
    }
  });

  it('writes output larger than its buffer whole and in order: rewritten CRLF lines, then an LF chunk passed through', async () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => `${i},${i * 2},${i * 3}`);
    const crlf = Buffer.from(`${HEADER}\r\n${rows.slice(0, 100_000).join('\r\n')}\r\n`);
    const lf = Buffer.from(`${rows.slice(100_000).join('\n')}\n`);
    const expected = `${HEADER}\n${rows.join('\n')}\n`;
    expect(crlf.length).toBeGreaterThan(1 << 20);
    expect(lf.length).toBeGreaterThan(1 << 20);
    const bytes = Buffer.concat([crlf, lf]);
    for (const cuts of [[], [crlf.length], [crlf.length - 1, crlf.length + 7]]) {
      const { result, output } = await normalized(bytes, cuts, `large-${cuts.join('-')}.csv`);
      expect({ cuts, dataLines: result.dataLines, lineEndings: result.lineEndings }).toEqual({ cuts, dataLines: 200_000, lineEndings: { lf: 100_000, crlf: 100_001, cr: 0 } });
      expect(output === expected).toBe(true);
      // The text digest follows writes that bypass the output buffer too.
      expect(result.textSha256).toBe(createHash('sha256').update(expected).digest('hex'));
    }
  });

  it('scans a clean file through a reused buffer of any size to the same hash and counts as one read', async () => {
    const file = path.join(dir, 'clean.csv');
    await writeFile(file, CLEAN);
    const whole = await normalizeCsv(chunked(CLEAN, []), {});
    expect(whole.clean).toBe(true);
    expect(whole.dataLines).toBe(40);
    for (const size of [1, 2, 3, 5, 64, 1000]) expect(await normalizeCsv(scanChunks(file, size), {})).toEqual(whole);
  });

  it('names the uniform text: copies differing only in line endings, a BOM or a final break share textSha256, other content does not', async () => {
    const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
    const body = CLEAN.toString('utf8');
    const forms: Record<string, Buffer> = {
      lf: CLEAN,
      crlf: Buffer.from(body.replace(/\n/g, '\r\n')),
      cr: Buffer.from(body.replace(/\n/g, '\r')),
      bom: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), CLEAN]),
      bomCrlfNoFinalBreak: Buffer.from(`\uFEFF${body.replace(/\n/g, '\r\n').replace(/\r\n$/, '')}`),
      lfNoFinalBreak: CLEAN.subarray(0, CLEAN.length - 1),
    };
    const digests: Record<string, string> = {};
    for (const [name, bytes] of Object.entries(forms)) {
      // As the ETL reads a part: a scan first, the rewrite only when the scan finds something to change.
      const scan = await normalizeCsv(chunked(bytes, [7]), {});
      const result = scan.clean ? scan : (await normalized(bytes, [7], `form-${name}.csv`)).result;
      expect({ name, raw: result.sha256 }).toEqual({ name, raw: sha(bytes) });
      digests[name] = result.textSha256;
    }
    // The uniform text is the LF file itself: its digest is the digest of its bytes.
    expect(new Set(Object.values(digests))).toEqual(new Set([sha(CLEAN)]));
    // Not the same text: one value changed, or a removed line's own bytes (blanked in the copy either way).
    const other = await normalized(Buffer.from(body.replace('3,6,9', '3,6,8').replace(/\n/g, '\r\n')), [], 'other.csv');
    expect(other.result.textSha256).not.toBe(sha(CLEAN));
    const badA = await normalized(Buffer.from(`${HEADER}\r\n1,\u0000,3\r\n`), [], 'bad-a.csv');
    const badB = await normalized(Buffer.from(`${HEADER}\r\n1,\u0000,4\r\n`), [], 'bad-b.csv');
    expect(badA.output).toBe(badB.output);
    expect(badA.result.textSha256).not.toBe(badB.result.textSha256);
    // Wherever the reads split the dirty file, the same text digest.
    const whole = await normalized(DIRTY, [], 'text-ref.csv');
    for (let a = 1; a < DIRTY.length; a += 3) expect((await normalized(DIRTY, [a], `text-cut-${a}.csv`)).result.textSha256).toBe(whole.result.textSha256);
  });
});
