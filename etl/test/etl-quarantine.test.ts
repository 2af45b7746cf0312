import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readGoldManifest } from '../gold';
import { LocalLake } from '../lake/local';
import { UserError } from '../../core/errors';
import type { SilverMeta } from '../ingest';
import { runEtl } from '../pipeline';
import { RAW_COLUMNS } from '../schema';
import { csv, gz, HEADER, lines, range, zip , goldIds } from './drop-fixtures';

// Several full ETL runs per test on a loaded 2-core machine: generous, still bounded.
jest.setTimeout(180_000);

describe('ETL quarantine: what cannot be read counts, and is named by its own content', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-quarantine-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a truncated .csv.gz or a damaged zip holding most of the drop fails the run instead of vanishing from gold', async () => {
    const big = csv(lines(range(100, 5000)));
    for (const [name, body] of [
      ['raw/big.csv.gz', gz(big).subarray(0, Math.floor(gz(big).length * 0.9))],
      ['raw/big.zip', zip([{ name: 'big.csv', data: big }]).subarray(0, Math.floor(big.length * 0.9))],
    ] as const) {
      const lake = new LocalLake(path.join(dir, name.replace(/\W/g, '_')));
      await lake.write('raw/small.csv', csv(lines(range(0, 100))));
      await lake.write(name, body);
      const run = runEtl(lake, { threads: 1 });
      await expect(run).rejects.toThrow(/above the 1\.00% threshold; nothing was committed/);
      await expect(run).rejects.toThrow(new RegExp(`${name.replace(/\./g, '\\.')} \\(about \\d+ lines, estimated from its \\d+ bytes\\): quarantined: .*(truncated|zip)`));
      expect(await lake.exists('gold/_SUCCESS')).toBe(false);
      // Accepting the loss is an explicit decision.
      const r = await runEtl(lake, { threads: 1, rejectThreshold: 0.999 });
      expect(r.silver.quarantined).toEqual([expect.objectContaining({ file: name, linesEstimated: true })]);
      expect(r.silver.quarantined[0].lines).toBeGreaterThan(1000);
      expect(r.silver.quarantined[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('a NUL byte on one line near the start rejects that line; a file dense with NULs or with one in its header is binary', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const body = lines(range(0, 40));
    const withNul = Buffer.concat([Buffer.from(`${HEADER}\n${body.slice(0, 2).join('\n')}\n`), Buffer.from(`${body[2]}\0\n`), Buffer.from(`${body.slice(3).join('\n')}\n`)]);
    await lake.write('raw/nul.csv', withNul);
    await lake.write('raw/nul_header.csv', Buffer.concat([Buffer.from(`${HEADER}\0\n`), Buffer.from(`${lines(range(50, 52)).join('\n')}\n`)]));
    await lake.write('raw/dense.csv', Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(100, 0), Buffer.from(`\n${HEADER}\n`)]));
    const report = await runEtl(lake, { threads: 1, rejectThreshold: 0.2 });
    expect(report.silver.quarantined.map((q) => q.file).sort()).toEqual(['raw/dense.csv', 'raw/nul_header.csv']);
    for (const q of report.silver.quarantined) expect(q.reason).toMatch(/not a text file \(\d+ NUL byte/);
    const rejects = (await lake.list('silver/_rejects/')).filter((o) => !o.key.includes('quarantined'));
    expect(rejects).toHaveLength(1);
    expect((await lake.read(rejects[0].key)).toString()).toMatch(/raw\/nul\.csv,,4,ENCODING,,a NUL byte at column \d+/);
    // Line 4 held basket 1's second line: basket 1 is still in gold, from its other line.
    expect(await goldIds(lake)).toEqual(range(0, 40));
  });

  it('two different binary files that start alike get different content hashes and are not duplicates', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const start = Buffer.alloc(3 * 2 ** 20, 0);
    await lake.write('raw/ok.csv', csv(lines(range(0, 2000))));
    await lake.write('raw/x.csv', Buffer.concat([start, Buffer.from('one')]));
    await lake.write('raw/y.csv', Buffer.concat([start, Buffer.from('two')]));
    const report = await runEtl(lake, { threads: 1, rejectThreshold: 0.999 });
    const [x, y] = report.silver.quarantined;
    expect([x.file, y.file]).toEqual(['raw/x.csv', 'raw/y.csv']);
    expect(x.sha256).not.toBe(y.sha256);
    expect(report.silver.duplicates).toEqual([]);
  });

  it('running out of memory stops the run without quarantining anything; the rerun with memory ingests every file', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await lake.write('raw/a.csv', csv(lines(range(0, 20000))));
    await expect(runEtl(lake, { threads: 1, memoryLimit: '1MB' })).rejects.toThrow(/raw → silver failed: DuckDB ran out of memory under its 1 MiB limit; raise --memory-limit.*nothing was committed/);
    expect(await lake.exists('silver/_SUCCESS')).toBe(false);
    const report = await runEtl(lake, { threads: 1 });
    expect(report.silver.quarantined).toEqual([]);
    expect(report.silver.accepted).toBe(40000);
  });

  it('a damaged silver file, ledger or manifest is reported in the lake\'s terms, never with the engine\'s message', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await lake.write('raw/a.csv', csv(lines(range(0, 50))));
    await runEtl(lake, { threads: 1 });
    const engineWords = /Error:|magic|Binder|duckdb|Unexpected token|JSON at position/i;
    const expectUserError = async (pattern: RegExp): Promise<void> => {
      const err = await runEtl(lake, { threads: 1 }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(pattern);
      expect((err as Error).message).not.toMatch(engineWords);
    };
    // A silver Parquet file overwritten with bytes of the same size; a new file makes gold rebuild from it.
    const [parquet] = (await lake.list('silver/parts/')).map((o) => o.key);
    const size = (await lake.read(parquet)).length;
    await lake.write(parquet, Buffer.alloc(size, 0x41));
    await lake.write('raw/b.csv', csv(lines(range(50, 60))));
    await expectUserError(/silver → gold failed: a Parquet file of the lake.* is damaged or not Parquet.*Delete silver\/_SUCCESS/);
    await lake.write('silver/_LEDGER.json', '{"format": ');
    await lake.write('raw/c.csv', csv(lines(range(60, 70))));
    await expectUserError(/silver\/_LEDGER\.json is not valid JSON .*restore it, or delete it/);
    await lake.write('silver/_SUCCESS', 'not json');
    await expectUserError(/silver\/_SUCCESS is not valid JSON .*delete it to rebuild silver from raw\//);
  });

  it('the same export with other line endings, a BOM or reordered columns is a duplicate, not twice the spend', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const reordered = [...RAW_COLUMNS].reverse();
    await lake.write('raw/w1.csv', csv(lines(range(0, 30))));
    await lake.write('raw/w1_crlf.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), csv(lines(range(0, 30)), ['\r\n'])]));
    await lake.write('raw/w1_reordered.csv.gz', gz(csv(lines(range(0, 30), reordered), ['\n'], reordered.join(','))));
    await lake.write('raw/w2.csv', csv(lines(range(30, 40))));
    const report = await runEtl(lake, { threads: 1 });
    expect(report.silver.duplicates).toEqual([
      { file: 'raw/w1_crlf.csv', sameAs: 'raw/w1.csv' },
      { file: 'raw/w1_reordered.csv.gz', sameAs: 'raw/w1.csv' },
    ]);
    expect([report.silver.lines, report.gold.splitBaskets]).toEqual([80, 0]);
    const once = new LocalLake(path.join(dir, 'once'));
    await once.write('raw/w1.csv', await lake.read('raw/w1.csv'));
    await once.write('raw/w2.csv', await lake.read('raw/w2.csv'));
    await runEtl(once, { threads: 1 });
    expect((await readGoldManifest(lake)).manifest.files).toEqual((await readGoldManifest(once)).manifest.files);
    // Stable on rerun: nothing parsed, same gold.
    const again = await runEtl(lake, { threads: 1 });
    expect([again.silver.parsed, again.gold.manifestSha256, again.silver.duplicates.length]).toEqual([0, report.gold.manifestSha256, 2]);
  });

  it('a weekly file delivered again as CRLF, with a BOM, or gzipped is the same part: a duplicate before parsing, its lines counted once', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const week = lines(range(0, 30));
    await lake.write('raw/w1.csv', csv(week));
    await lake.write('raw/w1_crlf.csv', csv(week, ['\r\n']));
    await lake.write('raw/w1_bom.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), csv(week)]));
    await lake.write('raw/w1_resent.csv.gz', gz(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), csv(week, ['\r\n'])])));
    await lake.write('raw/w2.csv', csv(lines(range(30, 40))));
    const report = await runEtl(lake, { threads: 1 });
    // Only w1 (first in key order among its copies: w1.csv) and w2 are parsed; the copies never reach DuckDB.
    expect(report.silver.parsed).toBe(2);
    expect(report.silver.duplicates).toEqual([
      { file: 'raw/w1_bom.csv', sameAs: 'raw/w1.csv' },
      { file: 'raw/w1_crlf.csv', sameAs: 'raw/w1.csv' },
      { file: 'raw/w1_resent.csv.gz', sameAs: 'raw/w1.csv' },
    ]);
    expect([report.silver.lines, report.silver.accepted, report.gold.splitBaskets]).toEqual([80, 80, 0]);
    // The copy arriving in a later run is recognised the same way, and the lake does not move.
    const later = new LocalLake(path.join(dir, 'later'));
    await later.write('raw/w1.csv', csv(week));
    await later.write('raw/w2.csv', csv(lines(range(30, 40))));
    const first = await runEtl(later, { threads: 1 });
    await later.write('raw/w1_crlf.csv', csv(week, ['\r\n']));
    const second = await runEtl(later, { threads: 1 });
    expect([second.silver.parsed, second.silver.lines, second.gold.manifestSha256]).toEqual([0, 80, first.gold.manifestSha256]);
    expect(second.silver.duplicates).toEqual([{ file: 'raw/w1_crlf.csv', sameAs: 'raw/w1.csv' }]);
  });

  it('silver written when parts were keyed by the digest of their bytes: a byte-identical copy of an old CRLF part is still that part', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const crlf = csv(lines(range(0, 30)), ['\r\n']);
    const rawDigest = createHash('sha256').update(crlf).digest('hex');
    await lake.write('raw/w1.csv', crlf);
    await lake.write('raw/w2.csv', csv(lines(range(30, 40))));
    const before = await runEtl(lake, { threads: 1 });
    // Rewrite silver's manifest as the previous version wrote it: the CRLF part under the digest of its bytes.
    const manifest = JSON.parse((await lake.read('silver/_SUCCESS')).toString('utf8')) as { meta: SilverMeta };
    const textDigest = manifest.meta.raw.find((r) => r.key === 'raw/w1.csv')!.parts[0].sha256;
    expect(textDigest).not.toBe(rawDigest);
    const rekey = <T extends { sha256: string }>(p: T): T => (p.sha256 === textDigest ? { ...p, sha256: rawDigest } : p);
    manifest.meta = { ...manifest.meta, parts: manifest.meta.parts.map(rekey), raw: manifest.meta.raw.map((r) => ({ ...r, parts: r.parts.map(rekey) })) };
    await lake.write('silver/_SUCCESS', JSON.stringify(manifest));

    await lake.write('raw/w1_copy.csv', crlf);
    const report = await runEtl(lake, { threads: 1 });
    expect([report.silver.parsed, report.silver.lines]).toEqual([0, before.silver.lines]);
    expect(report.silver.duplicates).toEqual([{ file: 'raw/w1_copy.csv', sameAs: 'raw/w1.csv' }]);
    const after = JSON.parse((await lake.read('silver/_SUCCESS')).toString('utf8')) as { meta: SilverMeta };
    expect(after.meta.parts.map((p) => p.sha256)).toContain(rawDigest);
  });

  it('zip limits: a member that expands like a bomb, and members past the archive total, are not read', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    await lake.write('raw/ok.csv', csv(lines(range(0, 400))));
    await lake.write(
      'raw/month.zip',
      zip([
        { name: 'w1.csv', data: csv(lines(range(400, 410))), deflate: true },
        { name: 'bomb.csv', data: Buffer.concat([csv(lines(range(500, 501))), Buffer.alloc(3 * 2 ** 20, 0x20)]), deflate: true },
        { name: 'w2.csv', data: csv(lines(range(410, 420))), deflate: true },
        { name: 'w3.csv', data: csv(lines(range(420, 440))), deflate: true },
      ]),
    );
    const report = await runEtl(lake, { threads: 1, maxUncompressedBytes: 4 * 2 ** 20, rejectThreshold: 0.999 });
    const reasons = Object.fromEntries(report.silver.quarantined.map((q) => [q.file, q.reason]));
    expect(reasons['raw/month.zip › bomb.csv']).toMatch(/expands \d+× .* more than the 500× a CSV does/);
    expect(Object.keys(reasons)).toEqual(['raw/month.zip › bomb.csv']);
    expect(await goldIds(lake)).toEqual(range(0, 440));
    // The archive total: 4 × the per-member cap.
    const small = new LocalLake(path.join(dir, 'small'));
    await small.write('raw/ok.csv', csv(lines(range(0, 400))));
    const members = range(0, 6).map((i) => ({ name: `w${i}.csv`, data: csv(lines(range(1000 + i * 10, 1010 + i * 10))) }));
    await small.write('raw/m.zip', zip(members));
    const cap = Math.max(...members.map((m) => m.data.length)) + 10;
    const total = await runEtl(small, { threads: 1, maxUncompressedBytes: cap, rejectThreshold: 0.999 });
    expect(total.silver.quarantined.map((q) => q.file)).toEqual(['raw/m.zip › w4.csv', 'raw/m.zip › w5.csv']);
    expect(total.silver.quarantined[0].reason).toMatch(new RegExp(`declare more than ${4 * cap} uncompressed bytes in all`));
  });

  it('macOS metadata members of a zip (__MACOSX/, ._name.csv) are ignored and reported, not quarantined', async () => {
    const lake = new LocalLake(path.join(dir, 'lake'));
    const appleDouble = Buffer.concat([Buffer.from('00051607', 'hex'), Buffer.alloc(60, 0)]);
    await lake.write('raw/mac.zip', zip([
      { name: 'w1.csv', data: csv(lines(range(0, 30))) },
      { name: '__MACOSX/._w1.csv', data: appleDouble },
      { name: 'sub/._w2.csv', data: appleDouble },
    ]));
    const report = await runEtl(lake, { threads: 1 });
    expect(report.silver.quarantined).toEqual([]);
    expect(report.silver.ignored.sort()).toEqual(['raw/mac.zip › __MACOSX/._w1.csv', 'raw/mac.zip › sub/._w2.csv']);
    expect(await goldIds(lake)).toEqual(range(0, 30));
  });
});
