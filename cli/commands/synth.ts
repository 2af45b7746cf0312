import type { Command } from 'commander';
import { defaultFrom, integer } from '../option-parsers';
import { openLake } from '../../etl/lake';
import { synthesize, SYNTH_DEFAULTS, SYNTH_MANIFEST_KEY } from '../../etl/synth/generate';


export function register(program: Command): void {
  program
    .command('synth')
    .description('write a synthetic dunnhumby-style drop (weekly raw/transactions_YYYYWW.csv) with a known Bayes-optimal accuracy')
    .option('--lake <uri>', 'lake root: a directory or s3://bucket/prefix ' + defaultFrom('lake'))
    .option('--baskets <n>', 'number of baskets', integer('--baskets', 1), SYNTH_DEFAULTS.baskets)
    .option('--weeks <n>', 'number of weekly files', integer('--weeks', 1), SYNTH_DEFAULTS.weeks)
    .option('--seed <n>', 'random seed (same seed, same bytes)', integer('--seed', 0), SYNTH_DEFAULTS.seed)
    .option('--json', 'print the synth manifest as JSON')
    .action(async (opts: { lake?: string; baskets: number; weeks: number; seed: number; json?: boolean }) => {
      const lake = await openLake(opts.lake);
      const m = await synthesize(lake, { baskets: opts.baskets, weeks: opts.weeks, seed: opts.seed });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
        return;
      }
      const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
      process.stdout.write(
        [
          `wrote ${m.files.length} file(s), ${m.lines.total.toLocaleString('en-US')} lines (${m.lines.malformed} deliberately malformed), ${m.baskets.toLocaleString('en-US')} baskets to ${lake.uri('raw/')}`,
          `class balance: Low ${pct(m.classBalance.Low)}, Medium ${pct(m.classBalance.Medium)}, High ${pct(m.classBalance.High)}; unlabelled (XX) ${pct(m.basketPriceSensitivity.XX / m.baskets)}`,
          `Bayes-optimal accuracy: ${m.bayesAccuracy.toFixed(4)} (manifest: ${lake.uri(SYNTH_MANIFEST_KEY)})`,
          '',
        ].join('\n'),
      );
    });
}
