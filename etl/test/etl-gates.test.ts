import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/errors';
import { readGoldManifest, readGoldSplit } from '../gold';
import { LocalLake } from '../lake/local';
import { readStageManifest } from '../lake/commit';
import { runEtl } from '../pipeline';
import { RAW_COLUMNS } from '../schema';
import { synthesize } from '../synth/generate';
import { CrashingLake } from './lake-conformance';

const HEADER = RAW_COLUMNS.join(',');
const good = (basket: number, ps = 'MM', spend = '1.50', format = 'LS'): string =>
  `200607,20060411,3,10,1,${spend},PRD0900001,CL00001,DEP00001,G00001,D00001,CUST0000000001,MM,YF,${994100100000000 + basket},S,${ps},Top Up,Fresh,STORE00001,${format},E01`;

describe('etl gates', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-gates-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('sends malformed lines, non-numeric SPEND and unknown codes to silver/_rejects with file, line and reason', async () => {
    const lake = new LocalLake(dir);
    const lines = [HEADER];
    for (let b = 0; b < 40; b++) lines.push(good(b, ['LA', 'MM', 'UM'][b % 3]));
    lines.splice(5, 0, '200607,20060411,3,10'); // line 6: too few columns
    lines.splice(10, 0, good(1, 'MM', 'abc')); // line 11: SPEND not a number
    lines.splice(15, 0, good(2, 'QQ')); // line 16: unknown basket price sensitivity
    lines.splice(20, 0, good(3, 'MM', '1.00', 'HUGE')); // line 21: unknown store format
    await lake.write('raw/week.csv', `${lines.join('\n')}\n`);

    // 4 of 44 lines is 9%: over the default 1% threshold, the run fails and commits nothing.
    const failure = runEtl(lake, { threads: 1 });
    await expect(failure).rejects.toThrow(UserError);
    await expect(failure).rejects.toThrow(/rejected 4 of 44 lines .* above the 1\.00% threshold/s);
    expect(await readStageManifest(lake, 'silver')).toBeUndefined();
    expect(await lake.list('gold/')).toEqual([]);

    const report = await runEtl(lake, { threads: 1, rejectThreshold: 0.1 });
    expect(report.silver.rejected).toBe(4);
    expect(report.silver.accepted).toBe(40);
    expect(report.silver.rejectReasons).toEqual({ 'CAST BASKET_PRICE_SENSITIVITY': 1, 'CAST SPEND': 1, 'CAST STORE_FORMAT': 1, 'MISSING COLUMNS': 1 });
    const [rejectsFile] = (await lake.list('silver/_rejects/')).map((o) => o.key);
    const rejects = (await lake.read(rejectsFile)).toString().trim().split('\n');
    expect(rejects[0]).toBe('file,member,line,error_type,column_name,reason,raw_line');
    expect(rejects.slice(1).map((r) => r.split(',').slice(0, 3).join(','))).toEqual(['raw/week.csv,,6', 'raw/week.csv,,11', 'raw/week.csv,,16', 'raw/week.csv,,21']);
    expect(rejects[2]).toMatch(/SPEND.*"abc"/);
    expect(rejects[3]).toMatch(/QQ/);
    expect(report.gold.rows.train + report.gold.rows.validation + report.gold.rows.test).toBe(40);
  });

  it('rejects a file whose header is not the dunnhumby schema, naming the column', async () => {
    const lake = new LocalLake(dir);
    await lake.write('raw/bad.csv', `${HEADER.replace('SPEND', 'AMOUNT')}\n${good(1)}\n`);
    await expect(runEtl(lake, { threads: 1 })).rejects.toThrow(/raw\/bad\.csv \(1 lines\): quarantined: missing required column SPEND/);
    await lake.delete('raw/bad.csv');
    await expect(runEtl(lake, { threads: 1 })).rejects.toThrow(/no raw files/);
  });

  it('a large class-balance shift fails validation unless accepted; a crash at commit keeps the previous gold', async () => {
    const lake = new LocalLake(dir);
    const synth = await synthesize(lake, { baskets: 1500, weeks: 2, seed: 3 });
    const v1 = await runEtl(lake, { threads: 1 });
    expect(v1.validation.checks.find((c) => c.name === 'class-balance-shift')?.detail).toMatch(/no previous gold/);

    // A poisoned drop: every Medium basket relabelled High.
    const col = RAW_COLUMNS.indexOf('BASKET_PRICE_SENSITIVITY');
    for (const f of synth.files) {
      const text = (await lake.read(f.key)).toString();
      const out = text.split('\n').map((line, i) => {
        const cells = line.split(',');
        if (i > 0 && cells.length === 22 && cells[col] === 'MM') cells[col] = 'LA';
        return cells.join(',');
      });
      await lake.write(f.key, out.join('\n'));
    }
    const shifted = runEtl(lake, { threads: 1 });
    await expect(shifted).rejects.toThrow(/class-balance-shift: class balance moved by \d+\.\d points .* --accept-shift/s);
    expect((await readGoldManifest(lake)).sha256).toBe(v1.gold.manifestSha256);

    // Accepted, but the process "dies" writing the manifest: readers still see v1, intact.
    const crashing = new CrashingLake(lake, (key) => key === 'gold/_SUCCESS');
    await expect(runEtl(crashing, { threads: 1, acceptShift: true })).rejects.toThrow(/injected crash/);
    const still = await readGoldManifest(lake);
    expect(still.sha256).toBe(v1.gold.manifestSha256);
    const train = await readGoldSplit(lake, 'train');
    expect(train.rows).toBe(v1.gold.rows.train);
    expect(train.labels).toContain('Medium');

    const v2 = await runEtl(lake, { threads: 1, acceptShift: true });
    expect(v2.validation.classShift).toBeGreaterThan(0.1);
    expect(v2.gold.classBalance.Medium).toBe(0);
    // v2's files and the generation it replaced (for readers that started before it) remain, and the ledger.
    const left = (await lake.list('gold/')).map((o) => o.key.slice('gold/'.length));
    const v2files = (await readGoldManifest(lake)).manifest.files.map((f) => f.path);
    const v1files = still.manifest.files.map((f) => f.path);
    expect(left.sort()).toEqual(['_LEDGER.json', '_SUCCESS', ...new Set([...v2files, ...v1files])].sort());
  });
});
