/**
 * One training run as every entry point performs it (the `train` command, the demo,
 * the SageMaker job): read gold, train on the train split, evaluate on validation
 * and test, check the quality gates (against a champion when there is one), and seal
 * the forest with its metrics and gate report inside.
 */
import { readGoldManifest, readGoldSplit } from '../etl/gold';
import type { Lake } from '../etl/lake';
import { evaluateForest, type Evaluation } from './evaluate';
import type { ForestFileV1 } from './format';
import { sealForest } from './forest-file';
import { checkGates, DEFAULT_GATES, type GateConfig, type GateReport } from './gates';
import { trainForest, type TrainOptions } from './trainer';
import { CompiledForest } from './walker';
import { trainMlRandomForest } from './trainer/ml-random-forest';

export type TrainerName = 'histogram' | 'ml-random-forest';

export interface TrainingRunOptions extends Omit<TrainOptions, 'featureStats' | 'datasetManifestSha256' | 'metrics'> {
  readonly trainer?: TrainerName;
  readonly gates?: GateConfig;
  /** The approved forest the candidate must not be worse than (champion/challenger). */
  readonly champion?: ForestFileV1 | null;
}

export interface TrainingRun {
  readonly forest: ForestFileV1;
  readonly gates: GateReport;
  readonly validation: Evaluation;
  readonly test: Evaluation;
  readonly trainRows: number;
  readonly trainSeconds: number;
}

export async function runTraining(lake: Lake, options: TrainingRunOptions = {}): Promise<TrainingRun> {
  const { trainer = 'histogram', gates = DEFAULT_GATES, champion = null, ...trainOptions } = options;
  const manifest = await readGoldManifest(lake);
  const train = await readGoldSplit(lake, 'train', manifest);
  const validation = await readGoldSplit(lake, 'validation', manifest);
  const test = await readGoldSplit(lake, 'test', manifest);

  const started = process.hrtime.bigint();
  const lineage = { featureStats: manifest.manifest.meta.stats?.train, datasetManifestSha256: manifest.sha256, featureDefinitions: manifest.manifest.meta.featureDefinitions?.version };
  const trained =
    trainer === 'histogram'
      ? await trainForest(train, { ...trainOptions, ...lineage })
      : // ml-random-forest takes only the common hyperparameters: it has no histogram options.
        await trainMlRandomForest(train, { trees: trainOptions.trees, maxDepth: trainOptions.maxDepth, minSamplesLeaf: trainOptions.minSamplesLeaf, seed: trainOptions.seed, ...lineage });
  const trainSeconds = Number(process.hrtime.bigint() - started) / 1e9;

  const compiled = CompiledForest.compile(trained); // once for both splits
  const validationMetrics = evaluateForest(compiled, validation, 'validation');
  const testMetrics = evaluateForest(compiled, test, 'test');
  const championMetrics = champion ? evaluateForest(champion, test, 'test') : null;
  const report = checkGates(testMetrics, gates, championMetrics && champion ? { ...championMetrics, sha256: champion.sha256 } : null);
  const forest = sealForest({ ...trained, metrics: { validation: validationMetrics, test: testMetrics, gates: report, trainSeconds } });
  return { forest, gates: report, validation: validationMetrics, test: testMetrics, trainRows: train.rows, trainSeconds };
}
