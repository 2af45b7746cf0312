import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readGoldManifest, readGoldSplit } from '../../etl/gold';
import type { GoldTable } from '../../etl/gold-schema';
import { LocalLake } from '../../etl/lake/local';
import { runEtl } from '../../etl/pipeline';
import { CLASS_LABELS } from '../../etl/schema';
import { synthesize, type SynthManifest } from '../../etl/synth/generate';
import { classProbabilities, labelFeaturesOfGoldRow } from '../../etl/synth/label';
import { evaluateForest } from '../evaluate';
import { trainForest } from '../trainer';

/** Accuracy of the generator's Bayes rule (argmax of the true class probabilities) on a gold split. */
function bayesAccuracyOn(t: GoldTable): number {
  let correct = 0;
  for (let i = 0; i < t.rows; i++) {
    const p = classProbabilities(labelFeaturesOfGoldRow(t, i));
    let best = 0;
    for (let k = 1; k < 3; k++) if (p[k] > p[best]) best = k;
    if (CLASS_LABELS[best] === t.labels[i]) correct++;
  }
  return correct / t.rows;
}

describe('trainer on the default synthetic data (small drop)', () => {
  let dir: string;
  let lake: LocalLake;
  let synth: SynthManifest;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-train-synth-'));
    lake = new LocalLake(dir);
    // The generator's defaults except the size: 8,000 baskets keep the test fast.
    synth = await synthesize(lake, { baskets: 8000, weeks: 4, seed: 42 });
    await runEtl(lake, { threads: 2 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reaches within 0.03 of the Bayes-optimal accuracy on the test split', async () => {
    const manifest = await readGoldManifest(lake);
    const train = await readGoldSplit(lake, 'train', manifest);
    const test = await readGoldSplit(lake, 'test', manifest);
    const forest = await trainForest(train, { trees: 60, threads: 1, progress: false, featureStats: manifest.manifest.meta.stats.train });
    const accuracy = evaluateForest(forest, test, 'test').accuracy;
    // Paired with the Bayes rule on the same rows (removes most test-sampling noise) ...
    expect(accuracy).toBeGreaterThanOrEqual(bayesAccuracyOn(test) - 0.03);
    // ... and against the generator's reported figure, with the test split's sampling error (~1.2% at this size) on top.
    expect(accuracy).toBeGreaterThanOrEqual(synth.bayesAccuracy - 0.03 - 0.025);
    expect(forest.training.datasetManifestSha256).toBe(manifest.sha256);
    expect(Object.keys(forest.featureStats).sort()).toEqual(Object.keys(manifest.manifest.meta.stats.train).sort());
  });
});
