/**
 * `pricesense score` on every input kind — a lake gold split, Parquet, and CSV as real
 * exports look (UTF-8 BOM, CRLF, columns in another order, gzip, duplicates, a line in
 * Latin-1, a line with an extra field, a truncated last line, numbers that are not
 * numbers, empty and unknown values) — against the tree-walker on the same rows.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { readGoldManifest, readGoldSplit } from '../../etl/gold';
import { GOLD_FEATURES, type GoldTable } from '../../etl/gold-schema';
import { LocalLake } from '../../etl/lake/local';
import { runEtl } from '../../etl/pipeline';
import { synthesize } from '../../etl/synth/generate';
import { writeForestFile } from '../../model/forest-file';
import { LocalRegistry } from '../../model/registry/local';
import { trainForest } from '../../model/trainer';
import { CompiledForest, type RawRow } from '../../model/walker';
import { query } from './duckdb-query';
import { runCli as run } from './run-cli';

function rowOf(table: GoldTable, i: number): RawRow {
  const row: RawRow = {};
  for (const f of GOLD_FEATURES) row[f.name] = f.kind === 'numeric' ? table.numeric[f.name][i] : table.categorical[f.name][i];
  return row;
}

describe('pricesense score', () => {
  let dir: string;
  let lakeDir: string;
  let modelPath: string;
  let registryDir: string;
  let test: GoldTable;
  let forest: CompiledForest;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-score-'));
    lakeDir = path.join(dir, 'lake');
    const lake = new LocalLake(lakeDir);
    await synthesize(lake, { baskets: 2500, weeks: 2, seed: 8 });
    await runEtl(lake, { threads: 2 });
    const manifest = await readGoldManifest(lake);
    const train = await readGoldSplit(lake, 'train', manifest);
    test = await readGoldSplit(lake, 'test', manifest);
    const trained = await trainForest(train, { trees: 12, maxDepth: 8, threads: 1, progress: false });
    modelPath = path.join(dir, 'model.json');
    await writeForestFile(modelPath, trained);
    forest = CompiledForest.compile(trained);
    registryDir = path.join(dir, 'registry');
    const registry = new LocalRegistry(registryDir);
    const v = await registry.register(modelPath, { note: 'test', by: 'test' });
    await registry.approve(v.version, 'test', 'test');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('scores a gold split into Parquet: one row per input row, exactly the walker\'s predictions', async () => {
    const out = path.join(dir, 'gold-test.parquet');
    const res = await run(['score', '--model', modelPath, '--input', 'gold:test', '--lake', lakeDir, '--output', out, '--json']);
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    const report = JSON.parse(res.out);
    expect(report).toMatchObject({ rows: test.rows, scored: test.rows, badRows: 0, rejectedLines: 0, rejects: null, model: { sha256: forest.sha256, version: null } });
    const rows = await query(`SELECT * FROM read_parquet('${out}') ORDER BY "row"`);
    const want = forest.predictBatch({ columns: { ...test.numeric, ...test.categorical }, rows: test.rows });
    const got = rows.map((r) => [r.row, r.BASKET_ID, r.label, r.probability_Low, r.probability_Medium, r.probability_High, r.model_version, r.model_sha256, r.error]);
    const expected = test.basketIds.map((id, i) => [BigInt(i + 1), id, want.labels[i], ...Array.from(want.probabilities.subarray(i * 3, i * 3 + 3)), null, forest.sha256, null]);
    expect(got).toEqual(expected);
  });

  it('scores a dirty CSV export (.csv.gz) into CSV: bad rows reported by row and line, never stopping the run', async () => {
    const names = GOLD_FEATURES.map((f) => f.name).reverse();
    const header = ['BASKET_ID', ...names];
    const lines: string[] = [header.join(',')];
    const expected: { id: string; row: RawRow | null; error?: RegExp }[] = [];
    const n = 40;
    for (let i = 0; i < n; i++) {
      const row = rowOf(test, i);
      const cells: Record<string, string> = {};
      for (const f of GOLD_FEATURES) {
        const v = row[f.name];
        cells[f.name] = v === null || (typeof v === 'number' && Number.isNaN(v)) ? '' : String(v);
      }
      let error: RegExp | undefined;
      if (i === 2) {
        cells.SPEND = '"12,5"';
        error = /SPEND: "12,5" is not a number/;
      }
      if (i === 4) {
        cells.SHOP_HOUR = 'abc';
        error = /SHOP_HOUR: "abc" is not a number/;
      }
      if (i === 6) {
        cells.STORE_FORMAT = 'XXL-new';
        row.STORE_FORMAT = 'XXL-new';
      }
      if (i === 8) {
        cells.AVG_UNIT_PRICE = '';
        row.AVG_UNIT_PRICE = null;
      }
      lines.push([test.basketIds[i], ...names.map((name) => cells[name])].join(','));
      expected.push({ id: test.basketIds[i], row: error ? null : row, error });
      if (i === 10) {
        // An exact duplicate of the row: scored twice.
        lines.push(lines[lines.length - 1]);
        expected.push({ id: test.basketIds[i], row });
      }
    }
    const extraField = `${lines[5]},surplus`; // line 42: rejected
    const truncated = lines[7].slice(0, lines[7].length / 2); // last line, cut off: rejected
    const text = `\ufeff${[...lines, extraField].join('\r\n')}\r\n`;
    const latin1 = Buffer.from(`${lines[3].replace(/^[^,]*/, 'B-LATIN')}`.replace('LS', 'L\u00e9S'), 'latin1'); // line 43: not UTF-8
    const csv = Buffer.concat([Buffer.from(text, 'utf8'), latin1, Buffer.from(`\r\n${truncated}`, 'utf8')]);
    const input = path.join(dir, 'export.csv.gz');
    await writeFile(input, gzipSync(csv));
    const out = path.join(dir, 'scored.csv');

    const res = await run(['score', '--version', 'latest', '--registry', registryDir, '--input', input, '--output', out, '--json']);
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    const report = JSON.parse(res.out);
    expect(report).toMatchObject({ rows: n + 1, scored: n - 1, badRows: 2, rejectedLines: 3, model: { version: 1 }, unknownCategories: { STORE_FORMAT: 1 } });
    expect(report.problems.map((p: { row?: number; line?: number }) => p.row ?? `line ${p.line}`)).toEqual([3, 5, 'line 43', 'line 44', 'line 45']);
    expect(report.problems[2].reason).toMatch(/line 43: too many columns/);
    expect(report.problems[3].reason).toMatch(/line 44: invalid encoding/);
    expect(report.problems[4].reason).toMatch(/line 45: missing columns/);

    const rows = await query(`SELECT * FROM read_csv('${out}', header = true, all_varchar = true) ORDER BY CAST("row" AS INTEGER)`);
    expect(rows).toHaveLength(n + 1);
    rows.forEach((r, i) => {
      const e = expected[i];
      expect([r.row, r.BASKET_ID, r.model_version, r.model_sha256]).toEqual([String(i + 1), e.id, '1', forest.sha256]);
      if (e.error) {
        expect([r.label, r.probability_Low]).toEqual([null, null]);
        expect(r.error).toMatch(e.error);
      } else {
        const p = forest.predict(e.row!);
        expect([r.error, r.label, Number(r.probability_Low), Number(r.probability_Medium), Number(r.probability_High)]).toEqual([null, p.label, ...Array.from(p.probabilities)]);
      }
    });
    const rejects = await readFile(report.rejects, 'utf8');
    expect(rejects.split('\n').filter(Boolean)).toHaveLength(1 + 5);
  });

  it('scores a Parquet file (a numeric column typed as text) with a registry version, with explanations', async () => {
    const input = path.join(dir, 'input.parquet');
    const goldFile = (await readdir(path.join(lakeDir, 'gold'))).find((f) => f.startsWith('test-'))!;
    await query(`COPY (SELECT CAST(SPEND AS VARCHAR) AS SPEND, * EXCLUDE (SPEND) FROM read_parquet('${path.join(lakeDir, 'gold', goldFile)}') LIMIT 25) TO '${input}' (FORMAT parquet)`);
    const out = path.join(dir, 'explained.parquet');
    const res = await run(['score', '--version', '1', '--registry', registryDir, '--input', input, '--output', out, '--explain', '--json']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.out)).toMatchObject({ rows: 25, badRows: 0 });
    const rows = await query(`SELECT * FROM read_parquet('${out}') ORDER BY "row"`);
    expect(rows).toHaveLength(25);
    let worst = 0;
    rows.forEach((r, i) => {
      expect(r.label).toBe(forest.predict(rowOf(test, i)).label);
      const e = JSON.parse(String(r.explanation)) as { explains: string; bias: Record<string, number>; contributions: Record<string, Record<string, number>> };
      expect(e.explains).toBe('probabilities');
      for (const c of forest.classes) {
        let total = e.bias[c];
        for (const f of Object.values(e.contributions)) total += f[c];
        worst = Math.max(worst, Math.abs(total - Number(r[`probability_${c}`])));
      }
    });
    expect(worst).toBeLessThan(1e-12);
  });

  it('leaves an existing output untouched when a run fails, and refuses what it cannot score', async () => {
    const out = path.join(dir, 'kept.csv');
    await writeFile(out, 'previous output\n');
    const input = path.join(dir, 'no-spend.csv');
    await writeFile(input, 'BASKET_ID,QUANTITY\n1,2\n');
    const res = await run(['score', '--model', modelPath, '--input', input, '--output', out]);
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/no-spend\.csv has no columns SPEND, LINES, .* which the model needs/);
    expect(await readFile(out, 'utf8')).toBe('previous output\n');
    expect((await readdir(dir)).filter((f) => f.includes('.tmp'))).toEqual([]);

    expect((await run(['score', '--model', modelPath, '--input', 'gold:holdout', '--lake', lakeDir, '--output', out])).err).toMatch(/unknown gold split 'holdout'/);
    expect((await run(['score', '--model', modelPath, '--version', '1', '--input', input, '--output', out])).err).toMatch(/exactly one of --model/);
    expect((await run(['score', '--model', modelPath, '--input', path.join(dir, 'absent.parquet'), '--output', out])).err).toMatch(/absent\.parquet does not exist/);
    expect((await run(['score', '--model', modelPath, '--input', input, '--output', path.join(dir, 'out.xlsx')])).err).toMatch(/name it \.parquet, \.csv or \.csv\.gz/);
  });
});
