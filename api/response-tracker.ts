/**
 * Which responses are still being worked on, for a graceful drain: how many (the
 * drain's "in flight" and whether it finished) and, once draining, every response not
 * yet written says `Connection: close` so its client reconnects elsewhere.
 *
 * Done in a ServerResponse subclass handed to http.createServer rather than with a
 * 'close' listener and a Set per request: at thousands of requests a second the
 * listener (a once-wrapper per response) and the Set's add/delete (it rehashes each
 * time it shrinks) cost a few microseconds a request in a profile of the API under
 * load, more than scoring a small forest. The subclass counts in its constructor and
 * on its one 'close', and reads the drain flag when its header is written — which
 * every path does through writeHead (Express's res.send included, via
 * _implicitHeader). Pipelined requests queued behind one whose connection is reset get
 * no 'close' from Node, so the count can stay above zero after their socket is gone;
 * api/server.ts decides "drained" from open connections as well.
 */
import http from 'node:http';

export interface ResponseTracker {
  /** The class to pass as http.createServer's `ServerResponse` option. */
  readonly Response: typeof http.ServerResponse;
  /** Responses constructed and not yet closed (finished or cut off). */
  inFlight(): number;
  /** From now on, responses whose header is not yet written close their connection after answering. */
  closeConnections(): void;
  /** Undoes closeConnections() (a worker that rejoins the port). */
  keepConnections(): void;
}

const baseWriteHead = http.ServerResponse.prototype.writeHead as (this: http.ServerResponse, statusCode: number, a?: unknown, b?: unknown) => http.ServerResponse;
const baseEmit = http.ServerResponse.prototype.emit as (this: http.ServerResponse, event: string | symbol, ...args: unknown[]) => boolean;
const TRACKED = Symbol('tracked');

type Tracked = http.ServerResponse & { [TRACKED]: boolean };

export function createResponseTracker(): ResponseTracker {
  let open = 0;
  let closing = false;

  // Own properties of each response, not overrides in the subclass: Express 5 swaps the
  // prototype of every response it handles (Object.setPrototypeOf(res, app.response)),
  // which would drop overrides; own properties survive it. One function each per tracker.
  function writeHead(this: http.ServerResponse, statusCode: number, a?: unknown, b?: unknown): http.ServerResponse {
    if (closing) this.shouldKeepAlive = false;
    return baseWriteHead.call(this, statusCode, a, b);
  }
  function emit(this: Tracked, event: string | symbol, ...args: unknown[]): boolean {
    // Node emits 'close' once per response, whether it finished or its socket went away; the flag makes a second one harmless.
    if (event === 'close' && this[TRACKED]) {
      this[TRACKED] = false;
      open--;
    }
    return baseEmit.call(this, event, ...args);
  }

  class TrackedResponse<Request extends http.IncomingMessage = http.IncomingMessage> extends http.ServerResponse<Request> {
    constructor(req: Request, options?: unknown) {
      // Node passes (req, { highWaterMark, rejectNonStandardBodyWrites }); @types/node declares (req) only.
      super(...([req, options] as unknown as [Request]));
      const self = this as unknown as Tracked;
      self[TRACKED] = true;
      self.writeHead = writeHead as Tracked['writeHead'];
      self.emit = emit as Tracked['emit'];
      open++;
    }
  }

  return {
    Response: TrackedResponse as unknown as typeof http.ServerResponse,
    inFlight: () => open,
    closeConnections: () => {
      closing = true;
    },
    keepConnections: () => {
      closing = false;
    },
  };
}
