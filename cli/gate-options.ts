/** Gate flags shared by `pricesense train` and `pricesense evaluate`. */
import type { Command } from 'commander';
import { fraction } from './option-parsers';
import { DEFAULT_GATES, resolveGateConfig, type GateConfig } from '../model/gates';

export interface GateFlags {
  minAccuracy: number;
  minMacroF1: number;
  minClassPrecision: number;
  championMargin: number;
}

export function addGateOptions(cmd: Command): Command {
  return cmd
    .option('--min-accuracy <x>', 'gate: minimum test accuracy', fraction('--min-accuracy'), DEFAULT_GATES.minAccuracy)
    .option('--min-macro-f1 <x>', 'gate: minimum test macro F1', fraction('--min-macro-f1'), DEFAULT_GATES.minMacroF1)
    .option('--min-class-precision <x>', 'gate: minimum precision of every class', fraction('--min-class-precision'), DEFAULT_GATES.minClassPrecision)
    .option('--champion-margin <x>', 'gate: how much lower than the champion accuracy and macro F1 may be', fraction('--champion-margin'), DEFAULT_GATES.championMargin.accuracy);
}

export function gateConfigFrom(flags: GateFlags): GateConfig {
  return resolveGateConfig({
    minAccuracy: flags.minAccuracy,
    minMacroF1: flags.minMacroF1,
    minClassPrecision: flags.minClassPrecision,
    championMargin: { accuracy: flags.championMargin, macroF1: flags.championMargin },
  });
}
