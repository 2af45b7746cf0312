/**
 * Worker-thread entry: grows the trees it is asked for on the shared binned data.
 * Started by pool.ts (directly from dist, or through ts-node from sources).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { BinnedData } from './binning';
import { TreeBuilder, type TreeParams } from './tree-builder';

export interface TreeRequest {
  readonly tree: number;
}

export type TreeReply =
  | { readonly tree: number; readonly ok: true; readonly result: import('./tree-builder').BuiltTree }
  | { readonly tree: number; readonly ok: false; readonly error: string };

if (parentPort) {
  const port = parentPort;
  const { data, params } = workerData as { data: BinnedData; params: TreeParams };
  const builder = new TreeBuilder(data, params);
  port.on('message', (msg: TreeRequest) => {
    try {
      const t = builder.build(msg.tree);
      const reply: TreeReply = { tree: msg.tree, ok: true, result: t };
      const buffers = [t.feature, t.threshold, t.left, t.right, t.defaultLeft, t.value, t.count, t.catBits].map((a) => a.buffer as ArrayBuffer);
      port.postMessage(reply, buffers);
    } catch (e) {
      const reply: TreeReply = { tree: msg.tree, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
      port.postMessage(reply);
    }
  });
}
