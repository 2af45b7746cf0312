/**
 * Child process of the artifact fuzz test (model/test/artifact-fuzz.test.ts): feeds
 * hostile and mutated model.tar.gz artifacts to the SageMaker artifact reader, one
 * after another. Before each case it prints `case <i> <name>` (so a hang names its
 * case); at the end one JSON line: outcomes per kind, the RSS before the first case and
 * the process's peak RSS. With `only=<name>` and no mutations it builds and reads that
 * one hand-made case, so what the peak adds to the RSS before it is that case's own.
 */
import { UserError } from '../../core/errors';
import { mulberry32 } from '../../etl/synth/rng';
import { forestBytesOfArtifact } from '../sagemaker/tar';
import { hostileCases, mutated } from './hostile-artifacts';

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 2000);
  // `only=<name>`: that one hand-made case and nothing else, so the peak RSS is that case's own.
  const only = process.argv.find((a) => a.startsWith('only='))?.slice('only='.length);
  const forest = Buffer.from(JSON.stringify({ format: 'pricesense.forest', pad: 'x'.repeat(3000) }));
  const outcomes: Record<string, number> = { ok: 0, refused: 0 };
  const unexpected: string[] = [];
  const run = async (i: number, name: string, bytes: Buffer) => {
    process.stdout.write(`case ${i} ${name}\n`);
    try {
      await forestBytesOfArtifact(bytes, `case ${i}`);
      outcomes.ok++;
    } catch (err) {
      if (err instanceof UserError) outcomes.refused++;
      else unexpected.push(`case ${i} (${name}): ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
  };
  const hostile = hostileCases(forest, only);
  // The RSS now, not the peak so far: the peak after the case less this can over-count (by what building the case
  // took) but never under-count what the case added.
  const rssBeforeMiB = process.memoryUsage().rss / 1024 / 1024;
  const named: Record<string, string> = {};
  for (const [i, [name, bytes]] of hostile.entries()) {
    const before = outcomes.refused;
    await run(i, name, bytes);
    named[name] = outcomes.refused > before ? 'refused' : 'other';
  }
  const rng = mulberry32(20240601);
  for (let i = 0; i < count; i++) await run(hostile.length + i, 'mutation', mutated(rng, forest));
  process.stdout.write(`${JSON.stringify({ outcomes, named, unexpected: unexpected.slice(0, 20), rssBeforeMiB, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
}

void main();
