/**
 * Entry point of the bundled server (dist/bundle/server.js, the Docker image's CMD):
 * the same flags as `pricesense serve`, configuration mostly from the environment.
 */
import { Command } from 'commander';
import { exitCodeOf } from '../core/error-kinds';
import { UserError } from '../core/errors';
import { addServeOptions, serveMain } from './serve';

const program = addServeOptions(new Command('pricesense-api').description('pricesense inference API'));
program.action(async (opts: Record<string, unknown>) => serveMain(opts));

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`pricesense-api: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof UserError ? err.exitCode : exitCodeOf('internal'));
});
