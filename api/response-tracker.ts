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
 * _implicitHeader).
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

export function createResponseTracker(): ResponseTracker {
  let open = 0;
  let closing = false;

  class TrackedResponse<Request extends http.IncomingMessage = http.IncomingMessage> extends http.ServerResponse<Request> {
    private tracked = true;

    constructor(req: Request) {
      super(req);
      open++;
    }

    override writeHead(statusCode: number, statusMessage?: string, headers?: http.OutgoingHttpHeaders | http.OutgoingHttpHeader[]): this;
    override writeHead(statusCode: number, headers?: http.OutgoingHttpHeaders | http.OutgoingHttpHeader[]): this;
    override writeHead(statusCode: number, a?: unknown, b?: unknown): this {
      if (closing) this.shouldKeepAlive = false;
      return baseWriteHead.call(this, statusCode, a, b) as this;
    }

    override emit(event: string | symbol, ...args: unknown[]): boolean {
      // Node emits 'close' once per response, whether it finished or its socket went away; the flag makes a second one harmless.
      if (event === 'close' && this.tracked) {
        this.tracked = false;
        open--;
      }
      return super.emit(event, ...args);
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
