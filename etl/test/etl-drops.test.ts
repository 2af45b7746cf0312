import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readGoldManifest } from '../gold';
import { LocalLake } from '../lake/local';
import type { Lake } from '../lake/types';
import { runEtl, type EtlReport } from '../pipeline';
import { RAW_COLUMNS } from '../schema';
import { csv, gz, HEADER, lines, PNG, range, zip , goldIds } from './drop-fixtures';

async function snapshot(lake: Lake, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const o of await lake.list(prefix)) out.set(o.key, (await lake.read(o.key)).toString('base64'));
  return out;
}

async function rejectRows(lake: Lake): Promise<string[]> {
  const out: string[] = [];
  for (const o of await lake.list('silver/_rejects/')) if (!o.key.includes('quarantined')) out.push(...(await lake.read(o.key)).toString('utf8').trim().split('\n').slice(1));
  return out;
}

// Several full ETL runs per test on a loaded 2-core machine: generous, still bounded.
jest.setTimeout(180_000);

describe('ETL on dirty drops', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-drops-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads every line ending, BOM, encoding and compression; quarantines unusable files; ingests duplicates once', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const reordered = [...RAW_COLUMNS].reverse();
    const w2 = lines(range(10, 20));
    // Line 5 (the header is line 1) carries bytes that are not UTF-8; line 8 is truncated; line 10 has a non-numeric SPEND.
    const mixed = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      csv(w2.slice(0, 2), ['\r\n']),
      Buffer.from(`${w2[2]}\n`),
      Buffer.concat([Buffer.from('200607,20060411,3,10,1,1.50,PRD09'), Buffer.from([0xff, 0xfe]), Buffer.from(',x\r')]),
      Buffer.from(`${w2[3]}\r${w2[4]}\r\n`),
      Buffer.from('200607,20060411,3,10\r\n'),
      Buffer.from(`${w2[5]}\n`),
      Buffer.from(`${w2[6].replace(/,\d+\.\d5,/, ',N/A,')}\r\n`),
      Buffer.from(w2.slice(6).join('\r\n')), // no line break at the very end
    ]);
    const w4 = csv(lines(range(30, 40)));
    await lake.write('raw/w1_crlf.csv', csv(lines(range(0, 10)), ['\r\n']));
    await lake.write('raw/w1_again.csv', csv(lines(range(0, 10)), ['\r\n']));
    await lake.write('raw/w2_mixed.csv', mixed);
    await lake.write('raw/w3_cr.csv', csv(lines(range(20, 30)), ['\r']));
    await lake.write('raw/w4.csv.gz', gz(w4));
    await lake.write(
      'raw/month.zip',
      zip([
        { name: 'weeks/', data: Buffer.alloc(0) },
        { name: 'weeks/w5.csv', data: csv(lines(range(40, 50), [...reordered, 'NOTE']), ['\n'], [...reordered, 'NOTE'].join(',')) },
        { name: '../../escape.csv', data: csv(lines(range(50, 55))) },
        { name: 'readme.txt', data: Buffer.from('not data') },
        { name: 'w4copy.csv', data: w4 },
      ]),
    );
    await lake.write('raw/empty.csv', '');
    await lake.write('raw/header_only.csv', `${HEADER}\r\n`);
    await lake.write('raw/image.csv', PNG);
    await lake.write('raw/other_schema.csv', 'id,name,price\n1,apple,0.50\n');
    await lake.write('raw/missing_cols.csv', csv(lines(range(90, 92), RAW_COLUMNS.filter((c) => c !== 'SPEND')), ['\n'], RAW_COLUMNS.filter((c) => c !== 'SPEND').join(',')));
    await lake.write('raw/notes.txt', 'drop notes');

    const report = await runEtl(lake, { threads: 2, rejectThreshold: 0.1 });

    // Gold: exactly baskets 0-54 (the truncated and unparseable lines are extra lines of baskets 11 and 12... none lost).
    expect(await goldIds(lake)).toEqual(range(0, 55));
    const quarantined = Object.fromEntries(report.silver.quarantined.map((q) => [q.file, q]));
    expect(Object.keys(quarantined).sort()).toEqual(['raw/empty.csv', 'raw/header_only.csv', 'raw/image.csv', 'raw/missing_cols.csv', 'raw/other_schema.csv']);
    expect(quarantined['raw/empty.csv'].reason).toMatch(/the file is empty/);
    expect(quarantined['raw/header_only.csv'].reason).toMatch(/header but no data lines/);
    expect(quarantined['raw/image.csv'].reason).toMatch(/not a text file/);
    expect(quarantined['raw/other_schema.csv'].reason).toMatch(/not a dunnhumby transaction header .*id,name,price/);
    expect(quarantined['raw/missing_cols.csv']).toMatchObject({ lines: 4, reason: expect.stringMatching(/missing required column SPEND\b/) });
    expect(quarantined['raw/image.csv'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(report.silver.duplicates).toEqual([
      { file: 'raw/w1_crlf.csv', sameAs: 'raw/w1_again.csv' },
      { file: 'raw/w4.csv.gz', sameAs: 'raw/month.zip › w4copy.csv' },
    ]);
    expect(report.silver.extraColumns).toEqual([{ file: 'raw/month.zip › weeks/w5.csv', columns: ['NOTE'] }]);
    expect(report.silver.ignored.sort()).toEqual(['raw/month.zip › readme.txt', 'raw/notes.txt']);

    // Rejects: file, line as the file numbers it (CR, CRLF and LF all end a line), reason, raw text.
    const rejects = await rejectRows(lake);
    expect(rejects.map((r) => r.split(',').slice(0, 4).join(','))).toEqual(['raw/w2_mixed.csv,,5,ENCODING', 'raw/w2_mixed.csv,,8,MISSING COLUMNS', 'raw/w2_mixed.csv,,10,CAST']);
    expect(rejects[0]).toMatch(/not UTF-8 text at column 34.*PRD09\\xFF\\xFE,x/);
    expect(rejects[2]).toMatch(/SPEND,"SPEND is ""N\/A""; expected an amount like 1\.50"/);
    // Every line counted once: 55 baskets × 2 lines, 3 rejects, lines of quarantined files (other_schema 1, missing_cols 4,
    // header-only and empty 0, and the image, whose lines cannot be counted, about 1 by its 29 bytes).
    expect(report.silver.accepted).toBe(110);
    expect(quarantined['raw/image.csv']).toMatchObject({ lines: 1, linesEstimated: true });
    expect(report.silver.rejected).toBe(3 + 1 + 4 + 1);
    expect(report.silver.rejectReasons).toEqual({ 'CAST SPEND': 1, ENCODING: 1, 'MISSING COLUMNS': 1, 'QUARANTINED FILE': 6 });

    // A member name is a label, never a path: nothing was written outside the lake's scratch.
    for (const d of [dir, path.join(dir, 'lake'), path.join(dir, 'lake', 'tmp')]) expect((await readdir(d)).filter((f) => f.includes('escape'))).toEqual([]);
    expect(existsSync(path.join(os.tmpdir(), 'escape.csv'))).toBe(false);
  });

  it('caps what a compressed file may expand to, and quarantines past it', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await lake.write('raw/a.csv', csv(lines(range(0, 400))));
    await lake.write('raw/bomb.csv.gz', gz(Buffer.concat([csv(lines(range(400, 410))), Buffer.alloc(200_000, 0x20)])));
    await lake.write('raw/bomb.zip', zip([{ name: 'huge.csv', data: Buffer.concat([csv(lines(range(500, 502))), Buffer.alloc(150_000, 0x20)]) }]));
    // What is past the cap is lost: by default that fails the run (the bomb's bytes stand for many lines)...
    await expect(runEtl(lake, { threads: 1, maxUncompressedBytes: 100_000 })).rejects.toThrow(/raw\/bomb\.csv\.gz \(about \d+ lines, estimated from its \d+ bytes\): quarantined: it decompresses to more than 100000 bytes/);
    // ...and accepting the loss is an explicit decision.
    const report = await runEtl(lake, { threads: 1, maxUncompressedBytes: 100_000, rejectThreshold: 0.999 });
    const reasons = Object.fromEntries(report.silver.quarantined.map((q) => [q.file, q.reason]));
    expect(reasons['raw/bomb.csv.gz']).toMatch(/decompresses to more than 100000 bytes.*--max-uncompressed/);
    expect(reasons['raw/bomb.zip › huge.csv']).toMatch(/declares 150\d{3} uncompressed bytes, over the 100000-byte cap/);
    expect(await goldIds(lake)).toEqual(range(0, 400));
  });

  it('over the reject threshold: commits nothing, leaves silver and gold as they were, names the files and lines', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await lake.write('raw/w1.csv', csv(lines(range(0, 50))));
    await runEtl(lake, { threads: 1 });
    const before = { silver: await snapshot(lake, 'silver/'), gold: await snapshot(lake, 'gold/') };
    await lake.write('raw/w2.csv', csv([...lines(range(50, 60)), '200607,20060411', 'garbage,line']));
    await lake.write('raw/other.csv', 'a,b\n1,2\n3,4\n');
    const failed = runEtl(lake, { threads: 1, rejectThreshold: 0.01 });
    await expect(failed).rejects.toThrow(/rejected 4 of 124 lines \(3\.23%\), above the 1\.00% threshold; nothing was committed/);
    await expect(failed).rejects.toThrow(/raw\/other\.csv \(2 lines\): quarantined: the first line is not a dunnhumby/);
    await expect(failed).rejects.toThrow(/raw\/w2\.csv: 2 rejected lines, e\.g\. line 22: the line has fewer columns than the header \(truncated line\?\); line 23: SHOP_WEEK is "garbage"/);
    expect(await snapshot(lake, 'silver/')).toEqual(before.silver);
    expect(await snapshot(lake, 'gold/')).toEqual(before.gold);
  });

  it('is incremental: a new weekly file is the only one parsed; renames, changes and deletions follow raw/; gold equals a fresh build', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    for (const w of [0, 1, 2]) await lake.write(`raw/week${w}.csv`, csv(lines(range(w * 20, w * 20 + 20))));
    const r1 = await runEtl(lake, { threads: 2 });
    expect([r1.silver.parsed, r1.silver.reused]).toEqual([3, 0]);

    await lake.write('raw/week3.csv.gz', gz(csv(lines(range(60, 80)))));
    const r2 = await runEtl(lake, { threads: 2 });
    expect([r2.silver.parsed, r2.silver.reused]).toEqual([1, 3]);
    expect(await goldIds(lake)).toEqual(range(0, 80));
    // Byte-identical to the gold of a lake that saw all four files at once.
    const fresh = new LocalLake(path.join(dir, 'fresh'));
    for (const o of await lake.list('raw/')) await fresh.write(o.key, await lake.read(o.key));
    const rf = await runEtl(fresh, { threads: 1 });
    expect(rf.gold.manifestSha256).toBe(r2.gold.manifestSha256);

    // Unchanged input: nothing parsed, nothing written under silver/ or gold/.
    const silverBefore = await snapshot(lake, 'silver/');
    const goldBefore = await snapshot(lake, 'gold/');
    const r3 = await runEtl(lake, { threads: 2 });
    expect([r3.silver.parsed, r3.gold.unchanged]).toEqual([0, true]);
    expect(await snapshot(lake, 'silver/')).toEqual(silverBefore);
    expect(await snapshot(lake, 'gold/')).toEqual(goldBefore);

    // A rename is not a reparse.
    await lake.write('raw/renamed0.csv', await lake.read('raw/week0.csv'));
    await lake.delete('raw/week0.csv');
    const r4 = await runEtl(lake, { threads: 2 });
    expect(r4.silver.parsed).toBe(0);
    expect(r4.gold.manifestSha256).toBe(r2.gold.manifestSha256);
    expect(await goldIds(lake)).toEqual(range(0, 80));

    // Changed content under an old name replaces its baskets; a deleted file's baskets leave gold.
    await lake.write('raw/week1.csv', csv(lines(range(100, 105))));
    await lake.delete('raw/week2.csv');
    const r5 = await runEtl(lake, { threads: 2 });
    expect(r5.silver.parsed).toBe(1);
    expect(await goldIds(lake)).toEqual([...range(0, 20), ...range(60, 80), ...range(100, 105)]);
    const silver = (await lake.read('silver/_SUCCESS')).toString();
    expect(silver).not.toContain('week2.csv');
  });

  it('a basket whose lines are in two files is aggregated from all its lines', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const all = lines(range(0, 30));
    await lake.write('raw/a.csv', csv(all.filter((_, i) => i % 2 === 0)));
    await lake.write('raw/b.csv.gz', gz(csv(all.filter((_, i) => i % 2 === 1), ['\r\n'])));
    const split = await runEtl(lake, { threads: 1 });
    const whole = new LocalLake(path.join(dir, 'whole'));
    await whole.write('raw/all.csv', csv(all));
    const one = await runEtl(whole, { threads: 1 });
    expect(split.gold.splitBaskets).toBe(30);
    expect((await readGoldManifest(lake)).manifest.files).toEqual((await readGoldManifest(whole)).manifest.files);
    expect(one.gold.splitBaskets).toBe(0);
  });
});

describe('ETL ownership of the lake', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-own-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("never deletes gold/pipeline/ (the SageMaker pipeline's output) or anything else it did not write; keeps the replaced generation for one commit", async () => {
    const lake = new LocalLake(dir);
    await lake.write('raw/w1.csv', csv(lines(range(0, 30))));
    await lake.write('gold/pipeline/e1/p.parquet', 'x\n');
    await lake.write('silver/notes.md', 'operator notes');
    const reports: EtlReport[] = [];
    const manifests: string[][] = [];
    for (const w of [1, 2, 3]) {
      if (w > 1) await lake.write(`raw/w${w}.csv`, csv(lines(range(w * 30, w * 30 + 30))));
      reports.push(await runEtl(lake, { threads: 1 }));
      manifests.push((await readGoldManifest(lake)).manifest.files.map((f) => `gold/${f.path}`));
    }
    expect((await lake.read('gold/pipeline/e1/p.parquet')).toString()).toBe('x\n');
    expect((await lake.read('silver/notes.md')).toString()).toBe('operator notes');
    const gold = (await lake.list('gold/')).map((o) => o.key);
    for (const k of [...manifests[1], ...manifests[2]]) expect(gold).toContain(k);
    for (const k of manifests[0].filter((f) => !manifests[1].includes(f) && !manifests[2].includes(f))) expect(gold).not.toContain(k);
  });
});
