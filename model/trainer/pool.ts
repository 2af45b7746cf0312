/**
 * Grows a forest's trees on `threads` worker threads sharing the binned data
 * (SharedArrayBuffer, no copies). Trees are handed out one at a time, so a slow tree
 * does not hold back the others; each tree depends only on its index, so the result
 * is the same for any thread count.
 * Workers start through model/worker-thread.ts (worker.js from the build, worker.ts
 * through ts-node from the sources).
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-thread';
import type { BinnedData } from './binning';
import { TreeBuilder, type BuiltTree, type TreeParams } from './tree-builder';
import type { TreeReply } from './worker';

export function startTreeWorker(workerData: unknown): Worker {
  return startWorker(__filename, 'worker', { workerData });
}

export async function growTrees(
  data: BinnedData,
  params: TreeParams,
  trees: number,
  threads: number,
  onTree: (done: number) => void,
  firstTree = 0,
): Promise<BuiltTree[]> {
  // results[i] is the tree with global index firstTree + i: its random stream depends on
  // that global index, so a slice of a forest equals the same slice trained whole.
  const results: BuiltTree[] = new Array<BuiltTree>(trees);
  if (threads <= 1 || trees <= 1) {
    const builder = new TreeBuilder(data, params);
    for (let t = 0; t < trees; t++) {
      results[t] = builder.build(firstTree + t);
      onTree(t + 1);
      // Let timers and I/O (progress output, signals) run between trees.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return results;
  }

  const workers: Worker[] = [];
  const count = Math.min(threads, trees);
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let done = 0;
      let failed = false;
      const fail = (err: Error): void => {
        if (failed) return;
        failed = true;
        reject(err);
      };
      const feed = (w: Worker): void => {
        if (next < trees) w.postMessage({ tree: firstTree + next++ });
      };
      for (let i = 0; i < count; i++) {
        const w = startTreeWorker({ data, params });
        workers.push(w);
        w.on('message', (msg: TreeReply) => {
          if (failed) return;
          if (!msg.ok) {
            fail(new Error(`training tree ${msg.tree} failed in a worker: ${msg.error}`));
            return;
          }
          results[msg.tree - firstTree] = msg.result;
          done++;
          onTree(done);
          if (done === trees) resolve();
          else feed(w);
        });
        w.on('error', (err) => fail(err));
        w.on('exit', (code) => {
          if (done < trees) fail(new Error(`a training worker exited (code ${code}) before the forest was complete`));
        });
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
