/**
 * Child process for the concurrent-registration test: registers the given forest
 * files one after another into the registry at argv[2], after a "go" line on stdin
 * (so every worker is loaded before any of them starts), and prints the versions.
 */
import { createInterface } from 'node:readline';
import { readForestFile } from '../forest-file';
import { LocalRegistry } from '../registry/local';

async function main(): Promise<void> {
  const [root, ...forests] = process.argv.slice(2);
  const registry = new LocalRegistry(root);
  // Warm up (schema compilation, module loading) so the workers' registrations overlap rather than queue behind start-up.
  await readForestFile(forests[0]);
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
  const versions: number[] = [];
  for (const file of forests) versions.push((await registry.register(file, { by: `worker-${process.pid}` })).version);
  process.stdout.write(`${JSON.stringify(versions)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
