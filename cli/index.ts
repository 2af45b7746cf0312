import { Command, CommanderError } from 'commander';
import { UserError } from '../etl/errors';
import { packageVersion } from '../etl/version';
import { COMMANDS } from './commands';

export function buildProgram(): Command {
  const program = new Command('pricesense')
    .description('Retail basket price sensitivity: data lake -> training -> registry -> API')
    .version(packageVersion())
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
    if (err instanceof CommanderError) {
      // Help and version exit "successfully" through exitOverride.
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof UserError) {
      process.stderr.write(`pricesense: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}
