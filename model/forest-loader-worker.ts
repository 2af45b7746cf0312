/**
 * Worker-thread entry of loadForestInWorker (model/forest-loader.ts): one request, one
 * reply, the packed forest's buffers transferred.
 */
import { parentPort } from 'node:worker_threads';
import { parseAndPack, replyForError, type LoaderReply, type LoaderRequest } from './forest-loader';
import { packedBuffers } from './walker/layout';

if (parentPort) {
  const port = parentPort;
  port.once('message', async (request: LoaderRequest) => {
    let reply: LoaderReply;
    try {
      reply = { ok: true, ...(await parseAndPack(request.bytes, request.source, request.options, request)) };
    } catch (err) {
      port.postMessage(replyForError(err));
      return;
    }
    port.postMessage(reply, packedBuffers(reply.packed));
  });
}
