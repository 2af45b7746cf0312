/**
 * Small, valid forest files for the registry tests: one numeric feature, one leaf,
 * sealed with the real forest-file code, so each `seed` gives a distinct digest.
 */
import path from 'node:path';
import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION } from '../format';
import { sealForest, writeForestFile } from '../forest-file';
import { DEFAULT_GATES } from '../gates';

export interface FixtureOptions {
  readonly seed?: number;
  /** undefined: no gate results (an unevaluated forest). */
  readonly gatesPassed?: boolean;
  readonly accuracy?: number;
  readonly datasetManifestSha256?: string | null;
}

export async function writeFixtureForest(dir: string, name: string, options: FixtureOptions = {}): Promise<string> {
  const seed = options.seed ?? 1;
  const metrics: Record<string, unknown> = { accuracy: options.accuracy ?? 0.8, macroF1: 0.75, logLoss: 0.6 };
  if (options.gatesPassed !== undefined) {
    // The GateReport shape of model/gates.ts, as train writes it.
    const accuracy = options.accuracy ?? 0.8;
    const required = options.gatesPassed ? 0.8 : 0.9;
    metrics.gates = {
      passed: options.gatesPassed,
      split: 'test',
      config: DEFAULT_GATES,
      champion: null,
      results: [
        { gate: 'macroF1', passed: true, required: 0.7, actual: 0.75, shortfall: 0 },
        { gate: 'accuracy', passed: options.gatesPassed, required, actual: accuracy, shortfall: options.gatesPassed ? 0 : required - accuracy },
      ],
    };
  }
  const forest = sealForest({
    format: FOREST_FORMAT_ID,
    formatVersion: FOREST_FORMAT_VERSION,
    classes: ['Low', 'Medium', 'High'],
    features: [{ name: 'basket_value', kind: 'numeric' }],
    aggregation: 'soft',
    trees: [{ feature: [-1], threshold: [0], left: [-1], right: [-1], defaultLeft: [0], value: [0.25, 0.25, 0.5], count: [10], catBits: [] }],
    training: {
      trainer: 'fixture',
      hyperparameters: { trees: 1, maxDepth: seed % 7, seed },
      seed,
      datasetManifestSha256: options.datasetManifestSha256 === undefined ? 'a'.repeat(64) : options.datasetManifestSha256,
      rows: 10,
      createdAt: '2024-01-01T00:00:00.000Z',
      codeVersion: 'fixture-commit',
    },
    featureStats: {},
    metrics,
  });
  const file = path.join(dir, name);
  await writeForestFile(file, forest);
  return file;
}
