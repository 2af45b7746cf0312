import { Command, CommanderError } from 'commander';
import { CONFIG_FILE_ENV, useConfigFile } from '../core/config';
import { exitCodeOf } from '../core/error-kinds';
import { UserError } from '../core/errors';
import { packageVersion } from '../core/version';
import { COMMANDS } from './commands';

export function buildProgram(): Command {
  const program = new Command('pricesense')
    .description('Retail basket price sensitivity: data lake -> training -> registry -> API')
    .version(packageVersion())
    // Not commander's env(): core/config.ts reads PRICESENSE_CONFIG and names it in errors (README "Configuration").
    .option('--config <file>', `JSON file of shared settings (lake, registry, user, …; README "Configuration"); default $${CONFIG_FILE_ENV}`)
    .hook('preAction', (root: Command) => useConfigFile(root.opts<{ config?: string }>().config))
    // Program options (--version) only before the subcommand: `score --version <n>` is score's.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

/** CLI entry point: bin/pricesense.js calls this. Errors become a message and an exit code, not a stack trace. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
    if (err instanceof UserError) process.stderr.write(`pricesense: ${err.message}\n`);
    else if (!(err instanceof CommanderError)) process.stderr.write(`pricesense: internal error (please report it with this output): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
}

/**
 * The one place an error becomes an exit code (core/error-kinds.ts). Commander has
 * printed its own message; help and version exit 0 through exitOverride, and its parse
 * errors are bad input like ours (commander would exit 1, which means a failed run here).
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : exitCodeOf('validation');
  if (err instanceof UserError) return err.exitCode;
  return exitCodeOf('internal');
}
