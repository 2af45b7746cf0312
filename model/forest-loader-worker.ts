/**
 * Worker-thread entry of loadForestInWorker (model/forest-loader.ts): one request, one
 * reply, the packed forest's buffers transferred.
 */
import { parentPort } from 'node:worker_threads';
import { UserError } from '../core/errors';
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
    try {
      port.postMessage(reply, packedBuffers(reply.packed));
    } catch (err) {
      // The forest loaded but cannot be sent back (a header the structured clone cannot take): a property of the
      // file, refused like any other, so the service remembers it rather than loading it again every poll.
      port.postMessage(replyForError(new UserError(`${request.source}: the loaded forest could not be passed back from its worker thread (${err instanceof Error ? err.message : String(err)}); the file's header is too large or too deeply nested`)));
    }
  });
}
