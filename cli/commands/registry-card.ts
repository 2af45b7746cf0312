/** `pricesense registry card <version>`: a version's model card, as Markdown or HTML (the console shows the same card). */
import { Option, type Command } from 'commander';
import { configuredSetting } from '../../core/config';
import { UserError } from '../../core/errors';
import { openLake } from '../../etl/lake';
import { openRegistry, registryUri } from '../../model/registry';
import { writeFileAtomic } from '../../core/atomic-file';
import { cardHtmlDocument, cardMarkdown, modelCardOf } from '../../console/card';
import { VersionData } from '../../console/version-data';
import { defaultFrom } from '../option-parsers';

export function addCardCommand(registry: Command, registryHelp: string): void {
  registry
    .command('card')
    .description('write the model card of a version: intended use, training data and its manifest, evaluation by class, calibration, known limits, approval history')
    .argument('<version>', 'version number, or "latest" for the latest Approved')
    .addOption(new Option('--format <format>', 'Markdown or a standalone HTML page').choices(['md', 'html']).default('md'))
    .option('--out <path>', 'write the card to this file (atomically) instead of stdout')
    .option('--lake <uri>', 'lake holding the training data\'s gold manifest ' + defaultFrom('lake', null))
    .option('--registry <uri>', registryHelp)
    .action(async (version: string, opts: { format: 'md' | 'html'; out?: string; lake?: string; registry?: string }) => {
      const lakeUri = configuredSetting('lake', opts.lake);
      const lake = lakeUri ? await openLake(lakeUri) : undefined;
      const reg = await openRegistry(registryUri(opts.registry), lake ? { lake } : {});
      let v;
      if (version === 'latest') {
        v = await reg.latestApproved();
        if (!v) throw new UserError(`no Approved version in ${reg.uri}: nothing is servable yet`);
      } else {
        if (!/^\d+$/.test(version.trim()) || Number(version) < 1) throw new UserError(`invalid version '${version}': expected a positive integer or "latest"`);
        v = await reg.show(Number(version));
      }
      const card = await modelCardOf(new VersionData(reg, lake), v);
      const text = opts.format === 'html' ? cardHtmlDocument(card) : cardMarkdown(card);
      if (!opts.out) return void process.stdout.write(text);
      await writeFileAtomic(opts.out, text);
      process.stdout.write(`wrote the model card of version ${v.version} (${opts.format}) to ${opts.out}\n`);
    });
}
