/** `npm run bench:model`: scoring (tree-walker vs ONNX Runtime on a production-size forest, and vs ml-random-forest on a small one) then training figures, in one run. */
import { runScoringBench } from './model-scoring';
import { runTrainingBench } from './model-training';

async function main(): Promise<void> {
  await runScoringBench();
  await runTrainingBench();
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
