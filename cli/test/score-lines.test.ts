/**
 * `pricesense score` on raw transaction lines: the parity test's dirty drop (api/test/
 * dirty-drop.ts), its files joined into one weekly drop file as an export looks (columns
 * in another order, CRLF, a UTF-8 BOM, gzip), is scored per basket, and every basket's
 * prediction must equal the prediction of its gold row — the same label, the same
 * doubles — while the lines the ETL rejected are listed with their line numbers and the
 * ETL's reasons. The drop's files scored as a directory (in one read) give the same; a
 * basket spread over two files is scored once; a run whose lines are all (or too many)
 * rejected fails.
 */
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { dirty } from '../../api/test/dirty-drop';
import { FEATURE_DEFINITIONS_VERSION } from '../../etl/feature-definitions';
import { readGoldManifest, readGoldSplit } from '../../etl/gold';
import { MAX_LINES_PER_BASKET } from '../../etl/raw-line';
import { GOLD_FEATURES, GOLD_SPLITS } from '../../etl/gold-schema';
import { LocalLake } from '../../etl/lake/local';
import { runEtl, type EtlReport } from '../../etl/pipeline';
import { synthesize } from '../../etl/synth/generate';
import { sealForest, writeForestFile } from '../../model/forest-file';
import type { ForestFileV1 } from '../../model/format';
import { runTraining } from '../../model/training-run';
import { CompiledForest, type RawRow } from '../../model/walker';
import { query } from './duck-query';

const predictionOf = (p: { label: string; probabilities: ArrayLike<number> }) => [p.label, ...Array.from(p.probabilities)];
import { runCli as run } from './run-cli';

jest.setTimeout(240_000);

describe('pricesense score on raw transaction lines', () => {
  let dir: string;
  let lakeDir: string;
  let report: EtlReport;
  let forest: ForestFileV1;
  let modelPath: string;
  let dropPath: string;
  /** The line (1-based, header = 1) of the drop file holding the SPEND this test spoils. */
  let spoiledLine: number;
  /** The BASKET_ID of that line. */
  let victimBasket: string;
  const gold: { id: string; row: RawRow }[] = [];
  /** The columns of the drop's files, in their order. */
  let rawHeader: string[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-score-lines-'));
    lakeDir = path.join(dir, 'lake');
    const lake = new LocalLake(lakeDir);
    await synthesize(lake, { baskets: 2000, weeks: 2, seed: 15, malformedRate: 1 / 400 });
    await dirty(lake);
    report = await runEtl(lake, { threads: 1, rejectThreshold: 0.1 });
    const manifest = await readGoldManifest(lake);
    for (const split of GOLD_SPLITS) {
      const t = await readGoldSplit(lake, split, manifest);
      for (let i = 0; i < t.rows; i++) {
        const row: RawRow = {};
        for (const f of GOLD_FEATURES) row[f.name] = f.kind === 'numeric' ? t.numeric[f.name][i] : t.categorical[f.name][i];
        gold.push({ id: t.basketIds[i], row });
      }
    }
    forest = (await runTraining(lake, { trees: 12, maxDepth: 8, seed: 3, threads: 1 })).forest;
    modelPath = path.join(dir, 'forest.json');
    await writeForestFile(modelPath, forest);

    // The drop's files as one weekly file: the basket and store columns in reverse order, CRLF,
    // a BOM, gzip. The lines keep their values (bad ones included), so the ETL's verdict on each
    // line must carry over. (The synthetic drop truncates lines within their first 15 fields,
    // which this order leaves in place: a truncated line stays the same truncated line.)
    const keys = (await lake.list('raw/')).map((o) => o.key).filter((k) => k.endsWith('.csv')).sort();
    const texts = await Promise.all(keys.map(async (k) => (await lake.read(k)).toString('utf8').split(/\r?\n/).filter((l) => l.length > 0)));
    const header = texts[0][0].split(',');
    rawHeader = header;
    const order = header.map((_, i) => (i < 15 ? i : header.length - 1 - (i - 15)));
    const reorder = (line: string) => {
      const v = line.split(',');
      return v.length === header.length ? order.map((i) => v[i]).join(',') : line;
    };
    const body = texts.flatMap((t) => t.slice(1)).map(reorder);
    // One more bad line, at a known place: its rejects row must name the line and say what the ETL says.
    const victim = body.findIndex((l) => l.split(',').length === header.length);
    const fields = body[victim].split(',');
    fields[order.indexOf(header.indexOf('SPEND'))] = 'N/A';
    body.splice(victim + 1, 0, fields.join(','));
    spoiledLine = victim + 3; // the header is line 1
    victimBasket = fields[order.indexOf(header.indexOf('BASKET_ID'))];
    dropPath = path.join(dir, 'drop-200607.csv.gz');
    await writeFile(dropPath, gzipSync(Buffer.from(`\uFEFF${[reorder(texts[0][0]), ...body].join('\r\n')}\r\n`, 'utf8')));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('scores every basket of the raw drop exactly as its gold row scores, and lists the lines the ETL rejected', async () => {
    const out = path.join(dir, 'scores.parquet');
    const res = await run(['score', '--model', modelPath, '--input', dropPath, '--output', out, '--json']);
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    const r = JSON.parse(res.out);
    expect(r).toMatchObject({ inputKind: 'lines', lines: report.silver.accepted, rejectedLines: report.silver.rejected + 1, badRows: 0 });

    const scored = await query(`SELECT * FROM read_parquet('${out}') ORDER BY "row"`);
    expect(scored).toHaveLength(r.rows);
    expectGoldPredictions(scored);

    // The rejects: the ETL's reasons, line for line (the drop's lines moved, their verdicts did not), plus the spoiled SPEND.
    const rejects = await query(`SELECT "row", line, reason FROM read_csv('${r.rejects}', header = true, all_varchar = true) ORDER BY line::BIGINT`);
    const etl = await query(`SELECT reason FROM read_csv('${path.join(lakeDir, 'silver', '_rejects', '*.csv')}', header = true, all_varchar = true)`);
    const reasons = (rows: Record<string, unknown>[]) => rows.map((x) => String(x.reason).replace(/^line \d+: /, '')).sort();
    expect(reasons(rejects)).toEqual(reasons([...etl, { reason: 'SPEND is "N/A"; expected an amount like 1.50' }]));
    expect(rejects.find((x) => Number(x.line) === spoiledLine)).toEqual({ row: null, line: String(spoiledLine), reason: `line ${spoiledLine}: SPEND is "N/A"; expected an amount like 1.50` });

    // Each basket counts its rejected lines: the spoiled line's basket has it, and every reject with a readable BASKET_ID is counted once.
    const victim = scored.find((x) => String(x.BASKET_ID) === victimBasket)!;
    const etlRejects = await query(`SELECT raw_line FROM read_csv('${path.join(lakeDir, 'silver', '_rejects', '*.csv')}', header = true, all_varchar = true)`);
    const idAt = rawHeader.indexOf('BASKET_ID');
    const etlInVictim = etlRejects.filter((x) => String(x.raw_line ?? '').split(',')[idAt] === victimBasket).length;
    expect(victim.rejected_lines).toBe(1 + etlInVictim);
    const counted = scored.reduce((n, x) => n + Number(x.rejected_lines), 0);
    expect(counted).toBeGreaterThan(etlInVictim);
    expect(counted).toBeLessThanOrEqual(r.rejectedLines);
  });

  it('scores a directory of the drop\'s files in one read: every gold row\'s prediction, each basket once', async () => {
    const out = path.join(dir, 'dir-scores.parquet');
    const res = await run(['score', '--model', modelPath, '--input', path.join(lakeDir, 'raw'), '--output', out, '--json']);
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    const r = JSON.parse(res.out);
    expect(r).toMatchObject({ inputKind: 'lines', lines: report.silver.accepted, rejectedLines: report.silver.rejected, badRows: 0 });
    const scored = await query(`SELECT * FROM read_parquet('${out}') ORDER BY "row"`);
    expectGoldPredictions(scored);
    // Rejects name their file: there are several.
    const rejects = await query(`SELECT reason FROM read_csv('${r.rejects}', header = true, all_varchar = true)`);
    expect(rejects.length).toBe(report.silver.rejected);
    expect(rejects.every((x) => /^\S*raw\/transactions_\d+\.csv: line \d+: /.test(String(x.reason)))).toBe(true);
  });

  it('scores a basket spread over two files once, from all its lines (per file it would be two partial baskets)', async () => {
    const files = (await readdir(path.join(lakeDir, 'raw'))).filter((n) => n.endsWith('.csv')).sort().map((n) => path.join(lakeDir, 'raw', n));
    expect(files.length).toBeGreaterThan(1);
    // Scored alone, each file gives its own row for a basket it shares with the other: the case to handle.
    const alone = await Promise.all(
      files.slice(0, 2).map(async (f, i) => {
        const out = path.join(dir, `alone-${i}.parquet`);
        expect((await run(['score', '--model', modelPath, '--input', f, '--output', out, '--reject-threshold', '1'])).code).toBe(0);
        return new Set((await query(`SELECT BASKET_ID FROM read_parquet('${out}')`)).map((x) => String(x.BASKET_ID)));
      }),
    );
    const spread = [...alone[0]].filter((id) => alone[1].has(id));
    expect(spread.length).toBeGreaterThan(0);

    const out = path.join(dir, 'together.parquet');
    const res = await run(['score', '--model', modelPath, '--input', ...files, '--output', out]);
    expect(res.code).toBe(0);
    const scored = await query(`SELECT * FROM read_parquet('${out}')`);
    const rows = scored.filter((x) => spread.includes(String(x.BASKET_ID)));
    expect(rows.length).toBe(spread.length);
    const compiled = CompiledForest.compile(forest);
    const goldById = new Map(gold.map((g) => [g.id, g.row]));
    const labelled = rows.filter((x) => goldById.has(String(x.BASKET_ID)));
    expect(labelled.length).toBeGreaterThan(0);
    for (const x of labelled) expect([x.label, ...forest.classes.map((c) => x[`probability_${c}`])]).toEqual(predictionOf(compiled.predict(goldById.get(String(x.BASKET_ID))!)));
  });

  it('sagemaker score: a shard\'s raw-line files are scored together into one output, each basket once', async () => {
    const root = path.join(dir, 'sm');
    await mkdir(path.join(root, 'config'), { recursive: true });
    await writeFile(path.join(root, 'config', 'resourceconfig.json'), JSON.stringify({ current_host: 'algo-1', hosts: ['algo-1'] }));
    await mkdir(path.join(root, 'processing', 'input', 'model'), { recursive: true });
    await copyFile(modelPath, path.join(root, 'processing', 'input', 'model', 'forest.json'));
    await cp(path.join(lakeDir, 'raw'), path.join(root, 'processing', 'input', 'data'), { recursive: true, filter: (src) => !src.endsWith('.json') });
    const res = await run(['sagemaker', 'score', '--root', root]);
    expect(res.code).toBe(0);
    const outDir = path.join(root, 'processing', 'output', 'scores', 'algo-1');
    expect((await readdir(outDir)).filter((n) => n.endsWith('.parquet'))).toEqual(['baskets.parquet']);
    expectGoldPredictions(await query(`SELECT * FROM read_parquet('${path.join(outDir, 'baskets.parquet')}')`));
  });

  it('fails, writing nothing, when no basket can be scored (exit 2) or too many lines are rejected (exit 4)', async () => {
    const text = await readFile(path.join(lakeDir, 'raw', (await readdir(path.join(lakeDir, 'raw'))).filter((n) => n.endsWith('.csv')).sort()[1]), 'utf8');
    const [head, ...body] = text.split(/\r?\n/).filter((l) => l.length > 0);
    const spend = head.split(',').indexOf('SPEND');
    // A currency sign on every amount: an export in the wrong locale.
    const euros = [head, ...body.map((l) => l.split(',').map((v, i) => (i === spend ? `€${v}` : v)).join(','))].join('\n');
    const allBad = path.join(dir, 'euros.csv');
    await writeFile(allBad, `${euros}\n`);
    const none = await run(['score', '--model', modelPath, '--input', allBad, '--output', path.join(dir, 'none.parquet')]);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/no basket scored from .*euros\.csv: all \d+ line\(s\) were rejected \(line 2: SPEND is "€/);
    await expect(readFile(path.join(dir, 'none.parquet'))).rejects.toThrow();

    const strict = await run(['score', '--model', modelPath, '--input', dropPath, '--output', path.join(dir, 'strict.parquet'), '--reject-threshold', '0']);
    expect(strict.code).toBe(4);
    expect(strict.err).toMatch(/lines of .* would be rejected by the ETL, over the reject threshold 0 \(--reject-threshold\)/);
    await expect(readFile(path.join(dir, 'strict.parquet'))).rejects.toThrow();
  });

  it('refuses a weekly file scored with its own copy — byte-identical, CRLF, with a BOM or gzipped — naming both (every line would count twice)', async () => {
    // One of the drop's weekly files as an LF export (latin1 keeps every byte as it is), and its copies.
    const name = (await readdir(path.join(lakeDir, 'raw'))).filter((n) => n.endsWith('.csv')).sort()[0];
    const lf = (await readFile(path.join(lakeDir, 'raw', name), 'latin1')).replace(/^\u00ef\u00bb\u00bf/, '').replace(/\r\n?/g, '\n');
    const original = path.join(dir, 'week.csv');
    await writeFile(original, lf, 'latin1');
    const bom = '\u00ef\u00bb\u00bf';
    const copies: Record<string, Buffer> = {
      'copy.csv': Buffer.from(lf, 'latin1'),
      'crlf.csv': Buffer.from(lf.replace(/\n/g, '\r\n'), 'latin1'),
      'bom.csv': Buffer.from(`${bom}${lf}`, 'latin1'),
      'resent.csv.gz': gzipSync(Buffer.from(`${bom}${lf.replace(/\n/g, '\r\n')}`, 'latin1')),
    };
    for (const [copyName, bytes] of Object.entries(copies)) {
      const copy = path.join(dir, `again-${copyName}`);
      await writeFile(copy, bytes);
      const out = path.join(dir, `again-${copyName}.parquet`);
      const res = await run(['score', '--model', modelPath, '--input', original, copy, '--output', out]);
      expect({ copyName, code: res.code }).toEqual({ copyName, code: 2 });
      expect(res.err).toContain(`${copy} has the same content as ${original}`);
      expect(res.err).toContain('would count every line twice');
      if (copyName !== 'copy.csv') expect(res.err).toContain('differing only in line endings, a byte-order mark or compression');
      await expect(readFile(out)).rejects.toThrow();
    }
  });

  it('refuses a basket of more lines than MAX_LINES_PER_BASKET, naming it', async () => {
    const text = await readFile(path.join(lakeDir, 'raw', (await readdir(path.join(lakeDir, 'raw'))).filter((n) => n.endsWith('.csv')).sort()[1]), 'utf8');
    const all = text.split(/\r?\n/);
    const width = all[0].split(',').length;
    const [head, first] = all.filter((l) => l.split(',').length === width);
    const huge = path.join(dir, 'one-basket.csv');
    await writeFile(huge, `${[head, ...new Array<string>(MAX_LINES_PER_BASKET + 1).fill(first)].join('\n')}\n`);
    const res = await run(['score', '--model', modelPath, '--input', huge, '--output', path.join(dir, 'huge.parquet')]);
    expect(res.code).toBe(2);
    const id = first.split(',')[head.split(',').indexOf('BASKET_ID')];
    expect(res.err).toContain(`basket ${id} of ${huge} has more than ${MAX_LINES_PER_BASKET} lines`);
  });

  /** Every gold row's basket has the gold row's prediction, and every basket (labelled or not) has exactly one row. */
  function expectGoldPredictions(scored: Record<string, unknown>[]): void {
    const byId = new Map(scored.map((s) => [String(s.BASKET_ID), s]));
    expect(byId.size).toBe(scored.length);
    const compiled = CompiledForest.compile(forest);
    const differences: string[] = [];
    for (const { id, row } of gold) {
      const s = byId.get(id);
      const mine = s && [s.label, ...forest.classes.map((c) => s[`probability_${c}`])];
      const theirs = predictionOf(compiled.predict(row));
      if (!mine || mine.some((v, k) => !Object.is(v, theirs[k]))) differences.push(`${id}: lines ${JSON.stringify(mine)}, gold ${JSON.stringify(theirs)}`);
    }
    expect(differences.slice(0, 10)).toEqual([]);
    expect(gold.length).toBeGreaterThan(1500);
    // Every basket is scored, labelled in gold or not (unlabelled and inconsistent ones too).
    expect(scored.length).toBe(gold.length + report.gold.unlabelledBaskets + report.gold.inconsistentBaskets);
  }

  it('refuses raw lines for a model trained with other feature definitions, naming both versions', async () => {
    const { sha256: _, ...doc } = forest;
    const old = sealForest({ ...doc, training: { ...doc.training, featureDefinitions: 'sha256:0000000000000000' } });
    const oldPath = path.join(dir, 'old-forest.json');
    await writeForestFile(oldPath, old);
    const out = path.join(dir, 'refused.parquet');
    const res = await run(['score', '--model', oldPath, '--input', dropPath, '--output', out]);
    expect(res.code).not.toBe(0);
    expect(res.err).toContain('sha256:0000000000000000');
    expect(res.err).toContain(FEATURE_DEFINITIONS_VERSION);
    await expect(readFile(out)).rejects.toThrow();
  });

  it('logs progress as JSON lines (lines read, rate) when not on a terminal', async () => {
    const before = process.env.PRICESENSE_PROGRESS;
    process.env.PRICESENSE_PROGRESS = 'json';
    try {
      const res = await run(['score', '--model', modelPath, '--input', dropPath, '--output', path.join(dir, 'progress.csv')]);
      expect(res.code).toBe(0);
      const events = res.err.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(events.find((e) => e.event === 'stage_done')).toMatchObject({ stage: 'score', unit: 'lines', done: report.silver.accepted });
      expect(events.some((e) => e.event === 'progress' && typeof e.per_second === 'number')).toBe(true);
      expect(res.out).toMatch(/baskets from [\d,]+ raw lines/);
    } finally {
      if (before === undefined) delete process.env.PRICESENSE_PROGRESS;
      else process.env.PRICESENSE_PROGRESS = before;
    }
  });
});
