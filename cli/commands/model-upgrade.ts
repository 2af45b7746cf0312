/**
 * `pricesense model upgrade`: rewrites a forest file from format v1 to v2 (the same
 * trees, scored identically, in a file a fraction of the size; a new sha256, since the
 * digest covers the serialized content). docs/model-format.md, "Format v2".
 */
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { FOREST_FORMAT_V2 } from '../../model/format';
import { readForestFile, upgradeForest, writeForestFile } from '../../model/forest-file';

interface UpgradeFlags {
  model: string;
  out?: string;
  json?: boolean;
}

/** The `model` command, whichever module registered it first. */
function modelCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'model') ?? program.command('model').description('forest files: upgrade between format versions');
}

export function register(program: Command): void {
  modelCommand(program)
    .command('upgrade')
    .description('rewrite a forest file in format v2: the same trees and predictions, compact arrays, a new sha256 (v2 files are left as they are)')
    .requiredOption('--model <file>', 'the forest file to upgrade')
    .option('--out <file>', 'where to write the v2 file (default: replace --model, atomically)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: UpgradeFlags) => {
      const forest = await readForestFile(opts.model);
      const out = opts.out ?? opts.model;
      const before = (await stat(opts.model)).size;
      if (forest.formatVersion === FOREST_FORMAT_V2) {
        const result = { model: opts.model, formatVersion: FOREST_FORMAT_V2, upgraded: false, sha256: forest.sha256 };
        process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${opts.model} is already format v2; nothing to do\n`);
        return;
      }
      const upgraded = upgradeForest(forest);
      await writeForestFile(out, upgraded);
      // Read back: the file on disk is what downstream steps trust.
      const check = await readForestFile(out);
      const after = (await stat(out)).size;
      const result = { model: opts.model, out, upgraded: true, from: { formatVersion: forest.formatVersion, sha256: forest.sha256, bytes: before }, to: { formatVersion: check.formatVersion, sha256: check.sha256, bytes: after } };
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(result, null, 2)}\n`
          : `upgraded ${opts.model} (format v${forest.formatVersion}, ${before.toLocaleString('en-US')} bytes) to ${out} (format v2, ${after.toLocaleString('en-US')} bytes, ${(before / after).toFixed(1)}× smaller); sha256 ${check.sha256}\n`,
      );
    });
}
