import type { Command } from 'commander';
import { register as consoleCommand } from './commands/console';
import { register as demo } from './commands/demo';
import { register as etl } from './commands/etl';
import { register as pipeline } from './commands/pipeline';
import { register as registry } from './commands/registry';
import { register as sagemaker } from './commands/sagemaker';
import { register as serve } from './commands/serve';
import { register as smokeTest } from './commands/smoke-test';
import { register as synth } from './commands/synth';
import { register as train } from './commands/train';
import { register as evaluate } from './commands/evaluate';
import { register as model } from './commands/model';

/**
 * Every subcommand registers itself through one function here. Each lives in
 * cli/commands/<name>.ts and exports `register(program)`.
 */
export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  // one line per command module, in help order
  synth,
  etl,
  train,
  evaluate,
  registry,
  model,
  serve,
  consoleCommand,
  pipeline,
  smokeTest,
  sagemaker,
  demo,
];
