/**
 * `pricesense score`: batch scoring of a table with a forest file or a registry
 * version, written as Parquet or CSV (model/batch-score.ts; docs/model-format.md,
 * "Batch scoring"). A CSV of raw transaction lines is scored per basket.
 */
import { Option, type Command } from 'commander';
import { UserError } from '../../core/errors';
import { GOLD_SPLITS, type GoldSplit } from '../../etl/gold-schema';
import { DEFAULT_REJECT_THRESHOLD } from '../../etl/ingest';
import { openLake } from '../../etl/lake';
import { OUTPUT_FORMATS, scoreToFile, type BatchScoreReport, type OutputFormat, type ScoreSource } from '../../model/batch-score';
import { openRegistry } from '../../model/registry';
import { scoringModelFromFile, scoringModelFromRegistry } from '../../model/scoring-model';
import { defaultFrom, fraction, integer } from '../option-parsers';

interface ScoreFlags {
  model?: string;
  version?: string;
  registry?: string;
  lake?: string;
  input: string[];
  output: string;
  format?: OutputFormat;
  explain?: boolean;
  id?: string;
  threads?: number;
  rejectThreshold: number;
  json?: boolean;
}

/**
 * gold:<split> names a split of the lake's gold data set; anything else is a file, or a
 * directory of raw-line files; several inputs are raw-line files scored together.
 */
export async function scoreSourceOf(inputs: string | readonly string[], lake: string | undefined): Promise<ScoreSource> {
  const all = typeof inputs === 'string' ? [inputs] : inputs;
  if (all.length > 1) {
    const gold = all.find((i) => i.startsWith('gold:'));
    if (gold) throw new UserError(`--input ${gold} cannot be scored together with other inputs: give gold:<split> alone`);
    return { kind: 'files', paths: all };
  }
  const input = all[0];
  const gold = /^gold:(.*)$/.exec(input);
  if (!gold) return { kind: 'file', path: input };
  const split = gold[1] as GoldSplit;
  if (!GOLD_SPLITS.includes(split)) throw new UserError(`unknown gold split '${gold[1]}' in --input ${input}: expected gold:${GOLD_SPLITS.join(', gold:')}`);
  return { kind: 'gold', lake: await openLake(lake), split };
}

export function formatScoreReport(r: BatchScoreReport): string {
  const lines = [
    `scored ${r.input} with model ${r.model.version === null ? '' : `version ${r.model.version} `}(sha256 ${r.model.sha256.slice(0, 12)}…): ${r.rows.toLocaleString('en-US')} ${
      r.inputKind === 'lines' ? `baskets from ${(r.lines ?? 0).toLocaleString('en-US')} raw lines` : 'rows'
    } in ${r.seconds.toFixed(1)} s (${Math.round(r.rowsPerSecond).toLocaleString('en-US')} ${r.inputKind === 'lines' ? 'baskets' : 'rows'}/s)`,
    `wrote ${r.output} (${r.format})`,
    `labels: ${Object.entries(r.labels)
      .map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`)
      .join(', ')}`,
  ];
  const unknown = Object.entries(r.unknownCategories);
  if (unknown.length > 0) lines.push(`unknown categories (scored as missing): ${unknown.map(([f, n]) => `${f} ${n}`).join(', ')}`);
  if (r.rejects) {
    lines.push(
      r.inputKind === 'lines'
        ? `${r.rejectedLines} line(s) the ETL would reject, left out of their baskets (counted in each basket's rejected_lines); all listed in ${r.rejects}:`
        : `${r.badRows} row(s) with bad values (written without a prediction) and ${r.rejectedLines} unreadable line(s); all listed in ${r.rejects}:`,
    );
    for (const p of r.problems) lines.push(`  ${p.row !== undefined ? `row ${p.row}: ` : ''}${p.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('score')
    .description(
      'score a table (a lake gold split, CSV, .csv.gz or Parquet) with a forest file or a registry version; writes one row per input row (label, probabilities, model version and SHA-256) as Parquet or CSV, atomically. ' +
        'A CSV of raw dunnhumby transaction lines is scored per basket: one row per BASKET_ID, its features computed from its lines as the ETL computes them',
    )
    .option('--model <file>', 'forest file (format v1 or v2), or a SageMaker model.tar.gz')
    .option('--version <n|latest>', 'registry version to score with; latest = the latest Approved')
    .option('--registry <uri>', 'registry for --version ' + defaultFrom('registry'))
    .requiredOption(
      '--input <source...>',
      'gold:<train|validation|test> (the lake\'s gold split), or a .csv, .csv.gz or .parquet file of feature rows, or raw transaction lines: a .csv or .csv.gz, a directory of them, or several files, read together so that a basket spread over files is scored once',
    )
    .option('--lake <uri>', 'lake for gold:<split> ' + defaultFrom('lake'))
    .requiredOption('--output <file>', 'output file: .parquet, .csv or .csv.gz')
    .addOption(new Option('--format <format>', 'output format (default: from the output\'s extension)').choices(OUTPUT_FORMATS))
    .option('--explain', 'add an explanation column: per-feature contributions (JSON)')
    .option('--id <column>', 'input column copied to the output to identify rows (default: BASKET_ID when present; raw lines: always BASKET_ID)')
    .option('--threads <t>', 'DuckDB threads for reading and writing', integer('--threads', 1))
    .option('--reject-threshold <fraction>', 'raw lines: fail when more than this fraction of lines is rejected (as pricesense etl)', fraction('--reject-threshold'), DEFAULT_REJECT_THRESHOLD)
    .option('--json', 'print the report as JSON')
    .action(async (opts: ScoreFlags) => {
      if ((opts.model === undefined) === (opts.version === undefined)) throw new UserError('give exactly one of --model <file> and --version <n|latest>');
      const model = opts.model !== undefined ? await scoringModelFromFile(opts.model) : await scoringModelFromRegistry(await openRegistry(opts.registry), opts.version!);
      const source = await scoreSourceOf(opts.input, opts.lake);
      const report = await scoreToFile(model.forest, source, opts.output, {
        modelVersion: model.version,
        featureDefinitions: model.featureDefinitions,
        explain: opts.explain,
        format: opts.format,
        idColumn: opts.id,
        threads: opts.threads,
        rejectThreshold: opts.rejectThreshold,
      });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatScoreReport(report));
    });
}
