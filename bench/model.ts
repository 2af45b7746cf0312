/** `npm run bench:model`: scoring (tree-walker vs ml-random-forest, then vs ONNX Runtime on a production-size forest) then training figures, in one run. */
import { runScoringBench } from './model-scoring';
import { runOnnxPeerBench } from './model-onnx';
import { runTrainingBench } from './model-training';

async function main(): Promise<void> {
  await runScoringBench();
  await runOnnxPeerBench();
  await runTrainingBench();
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
