import type { Command } from 'commander';
import { addServeOptions, serveMain } from '../../api/serve';

/** `pricesense serve`: the inference API (see docs/api.md). */
export function register(program: Command): void {
  addServeOptions(
    program
      .command('serve')
      .description('serve the latest Approved model over HTTP (predict, OIP v2, metrics, docs); follows the registry without restarts'),
  ).action(async (opts: Record<string, unknown>) => serveMain(opts));
}
