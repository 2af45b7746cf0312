import type { Command } from 'commander';
import { UserError } from '../../core/errors';
import { readGoldManifest, readGoldSplit } from '../../etl/gold';
import { openLake } from '../../etl/lake';
import { formatEvaluation } from '../../model/evaluate';
import { readForestFile } from '../../model/forest-file';
import { evaluateWithGates, formatGateReport, gateFailureMessage } from '../../model/gates';
import { addGateOptions, gateConfigFrom, type GateFlags } from '../gate-options';
import { defaultFrom } from '../option-parsers';

interface EvaluateFlags extends GateFlags {
  lake?: string;
  model: string;
  champion?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('evaluate')
    .description('evaluate a forest on the gold test split (accuracy, macro F1, per-class metrics, confusion, log loss, calibration) and check the quality gates; exits 3 when a gate fails')
    .option('--lake <uri>', 'lake root: a directory or s3://bucket/prefix ' + defaultFrom('lake'))
    .requiredOption('--model <file>', 'forest file (format v1)')
    .option('--champion <file>', 'the approved forest to compare against on the same split (champion/challenger gate)')
    .option('--json', 'print metrics and gate results as JSON');
  addGateOptions(cmd).action(async (opts: EvaluateFlags) => {
    const config = gateConfigFrom(opts);
    const forest = await readForestFile(opts.model);
    const champion = opts.champion ? await readForestFile(opts.champion) : null;
    const lake = await openLake(opts.lake);
    const manifest = await readGoldManifest(lake);
    const test = await readGoldSplit(lake, 'test', manifest);
    const result = evaluateWithGates(forest, test, 'test', { config, champion });
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify(
          { model: forest.sha256, datasetManifestSha256: manifest.sha256, trainedOn: forest.training.datasetManifestSha256, test: result.metrics, champion: result.championMetrics, gates: result.gates },
          null,
          2,
        )}\n`,
      );
    } else {
      const lines = [`model ${opts.model} (sha256 ${forest.sha256.slice(0, 12)}…)`];
      if (forest.training.datasetManifestSha256 && forest.training.datasetManifestSha256 !== manifest.sha256) {
        lines.push(`note: the model was trained on gold ${forest.training.datasetManifestSha256.slice(0, 12)}…, the lake's gold is now ${manifest.sha256.slice(0, 12)}…`);
      }
      lines.push(formatEvaluation(result.metrics, forest.classes));
      if (result.championMetrics) lines.push(`champion ${opts.champion}: accuracy ${result.championMetrics.accuracy.toFixed(4)}, macro F1 ${result.championMetrics.macroF1.toFixed(4)}`);
      lines.push(formatGateReport(result.gates), '');
      process.stdout.write(lines.join('\n'));
    }
    if (!result.gates.passed) throw new UserError(gateFailureMessage(result.gates), 'gate_failed');
  });
}
