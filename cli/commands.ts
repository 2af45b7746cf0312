import type { Command } from 'commander';

/**
 * Every subcommand registers itself through one function here. Each lives in
 * cli/commands/<name>.ts and exports `register(program)`.
 */
export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  // one line per command module, in help order
];
