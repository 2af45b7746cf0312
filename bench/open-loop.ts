/**
 * An open-loop HTTP load generator for the benchmarks: requests are due on a fixed
 * schedule — evenly spaced at `rate` per second, not Poisson — whatever the server does,
 * and each one's latency is measured from the time it was *due*, not from when it was
 * written to a socket. A closed-loop generator (autocannon) sends a connection's next
 * request only once the previous one is answered, so a slow server slows the offered load
 * down with it and the waiting never shows in its latencies (coordinated omission); here
 * it does.
 *
 * Connections come from a keep-alive pool of raw TCP sockets (HTTP/1.1, one request at a
 * time per connection, no pipelining) that opens them as needed up to `maxConnections`:
 * the request is serialized once, and an answer is read as far as its status line and
 * Content-Length, so the generator spends about two thirds of node:http's client CPU per
 * request, which matters when it shares two cores with the server it measures. An answer
 * without a Content-Length (chunked, or delimited by close) is counted as an error under
 * that name and its connection dropped. A request due while every connection is busy
 * waits in a FIFO for the next free one (counted in `waitedForConnection`; its wait is
 * part of its latency), and one still waiting when the schedule ends is never sent
 * (`neverSent`). The generator runs
 * in the caller's event loop: how late its own timer dispatched each request against the
 * schedule (`senderLateMs`) says whether it kept up; a late generator adds its lateness to
 * the latencies (pessimistic), it does not hide it.
 *
 * Rates (`okPerSec`, `shedPerSec`, `answeredPerSec`) count answers that arrived inside the
 * schedule window, divided by the window: what the server sustained while the load was
 * offered, not what it caught up on afterwards.
 */
import net from 'node:net';

export interface OpenLoopOptions {
  /** `http://host:port/path`. */
  readonly url: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Requests per second offered, evenly spaced. */
  readonly rate: number;
  /** Length of the schedule window. */
  readonly seconds: number;
  /** Upper bound on open connections (and so on requests in flight). */
  readonly maxConnections: number;
  /**
   * Open all `maxConnections` before the schedule starts (in small batches), as wrk2 does:
   * otherwise a burst of connects lands on the server's accept path at the first overload,
   * and can overflow its listen backlog, whose dropped SYNs' retransmits (1 s, 3 s, …)
   * would be measured as request latency.
   */
  readonly preconnect?: boolean;
  /**
   * With preconnect: send one request on each connection and wait for every answer before
   * the schedule starts (not counted). A connection the kernel has accepted may not be the
   * server's yet: Node's cluster primary hands each worker its new connections one at a
   * time, each acknowledged by the worker's event loop, so under load a connection still
   * waiting for its hand-off waits a loop turn for every one ahead of it — seconds, which
   * would be measured as the first requests' latency. A warm pool is what a load balancer's
   * long-lived keep-alive connections are.
   */
  readonly warmUp?: boolean;
  /** How long after the window to wait for requests still in flight (default 5 s). */
  readonly drainSeconds?: number;
  /** Keep one record per request (for tests and plots). */
  readonly keepSamples?: boolean;
}

export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** One request; times in ms from the start of the schedule. `status` 0 = connection error, -1 = no answer (never sent, or unanswered at the drain deadline). */
export interface OpenLoopSample {
  readonly due: number;
  readonly sent: number | undefined;
  readonly latency: number;
  readonly status: number;
}

export interface OpenLoopResult {
  readonly offeredPerSec: number;
  readonly seconds: number;
  /** Requests due in the window: round(rate × seconds). */
  readonly scheduled: number;
  readonly sent: number;
  readonly ok: number;
  readonly shed: number;
  readonly otherStatus: number;
  readonly errors: number;
  /** The errors by kind: a socket error's code (ECONNREFUSED, ECONNRESET, …) or what was wrong with the answer. */
  readonly errorKinds: Readonly<Record<string, number>>;
  /** Sent, but not answered by the drain deadline. */
  readonly unfinished: number;
  /** Due while all connections were busy: sent late, or not at all. */
  readonly waitedForConnection: number;
  /** Still waiting for a connection when the window closed. */
  readonly neverSent: number;
  readonly okPerSec: number;
  readonly shedPerSec: number;
  readonly answeredPerSec: number;
  /** Sent ÷ window: the rate actually put on the wire. */
  readonly sentPerSec: number;
  /** From the due time, 2xx answers only. */
  readonly okLatencyMs: Percentiles;
  /** From the due time, every request: answers of any status, errors, and the unanswered at their age when the run ended (a lower bound). */
  readonly allLatencyMs: Percentiles;
  /** From the moment the request was written, 2xx answers only: what a closed-loop generator would report. */
  readonly okFromSendMs: Percentiles;
  /** How late the generator's own timer dispatched requests against the schedule. */
  readonly senderLateMs: Percentiles;
  readonly connectionsOpened: number;
  readonly peakInFlight: number;
  readonly samples?: OpenLoopSample[];
}

/** Nearest-rank percentiles of `values` (ms); all zero when empty. */
export function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  // The epsilon keeps 99.9 % of 1,000 at rank 999 (0.999 * 1000 is 999.0000000000001 in floating point).
  const at = (p: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n - 1e-9) - 1))]);
  return { count: n, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: n === 0 ? 0 : sorted[n - 1] };
}

/** A growable list of due times with O(1) removal at the head. */
class Fifo {
  private items: number[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(v: number): void {
    this.items.push(v);
  }
  shift(): number {
    const v = this.items[this.head++];
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
  drain(): number[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}

/** How long the warm-up requests together may take. */
const WARM_UP_TIMEOUT_MS = 60_000;

/** Connections opened at once when preconnecting: well inside a listen backlog (Node's default is 511). */
const PRECONNECT_BATCH = 64;

/** What one connection is doing: the request it waits on, and what has arrived of the answer. */
interface Connection {
  readonly socket: net.Socket;
  request: { due: number; sent: number } | undefined;
  received: Buffer | undefined;
  /** Bytes of the whole answer, once its head is in; -1 before. */
  answerLength: number;
  status: number;
  closeAfter: boolean;
}

export async function openLoop(opts: OpenLoopOptions): Promise<OpenLoopResult> {
  if (opts.warmUp && !opts.preconnect) throw new Error('openLoop: warmUp warms the preconnected pool; it needs preconnect');
  if (!(opts.rate > 0) || !(opts.seconds > 0) || !(opts.maxConnections >= 1)) {
    throw new Error(`openLoop: rate, seconds and maxConnections must be positive (got rate ${opts.rate}, seconds ${opts.seconds}, maxConnections ${opts.maxConnections})`);
  }
  const url = new URL(opts.url);
  if (url.protocol !== 'http:') throw new Error(`openLoop: only http: URLs are supported (got ${opts.url})`);
  const host = url.hostname;
  const port = Number(url.port || 80);
  const body = Buffer.from(opts.body ?? '');
  const head =
    `${opts.method ?? 'GET'} ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    Object.entries(opts.headers ?? {})
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    `Content-Length: ${body.length}\r\n\r\n`;
  const request = Buffer.concat([Buffer.from(head, 'latin1'), body]);
  const interval = 1000 / opts.rate;
  const total = Math.round(opts.rate * opts.seconds);
  const drainMs = (opts.drainSeconds ?? 5) * 1000;

  const okLatency: number[] = [];
  const allLatency: number[] = [];
  const okFromSend: number[] = [];
  const late: number[] = [];
  const samples: OpenLoopSample[] | undefined = opts.keepSamples ? [] : undefined;
  const errorKinds: Record<string, number> = {};
  const waiting = new Fifo();
  const connections = new Set<Connection>();
  // Most recently freed first: the load stays on as few connections as it needs.
  const idle: Connection[] = [];
  let inFlight = 0;
  let connectionsOpened = 0;
  let peakInFlight = 0;
  let sent = 0;
  let ok = 0;
  let shed = 0;
  let otherStatus = 0;
  let errors = 0;
  let waitedForConnection = 0;
  let okInWindow = 0;
  let shedInWindow = 0;
  let answeredInWindow = 0;
  let closed = false;
  let onIdle: (() => void) | undefined;
  // Warm-up requests (before the schedule): answered, not recorded.
  let warming = 0;
  let warmUpFailures = 0;
  let onWarm: (() => void) | undefined;
  // Set when the schedule starts (after any preconnect); the closures below only run once it has.
  let t0 = Infinity;
  let windowEnd = Infinity;

  const record = (due: number, sentAt: number | undefined, status: number, now: number) => {
    const latency = now - due;
    allLatency.push(latency);
    if (status >= 200 && status < 300) {
      ok++;
      okLatency.push(latency);
      okFromSend.push(now - (sentAt ?? due));
    } else if (status === 503) shed++;
    else if (status > 0) otherStatus++;
    else if (status === 0) errors++;
    if (status > 0 && now <= windowEnd) {
      answeredInWindow++;
      if (status >= 200 && status < 300) okInWindow++;
      else if (status === 503) shedInWindow++;
    }
    samples?.push({ due: due - t0, sent: sentAt === undefined ? undefined : sentAt - t0, latency, status });
  };

  /** The connection's request is over (answered, or failed with `error`): record it, and give the connection, if still usable, the oldest waiting request. */
  const finish = (conn: Connection, status: number, error?: string) => {
    const req = conn.request;
    if (!req || closed) return;
    conn.request = undefined;
    conn.received = undefined;
    conn.answerLength = -1;
    inFlight--;
    if (warming > 0) {
      if (error !== undefined || conn.closeAfter) {
        warmUpFailures++;
        drop(conn);
      } else idle.push(conn);
      if (--warming === 0) onWarm?.();
      return;
    }
    if (error !== undefined) errorKinds[error] = (errorKinds[error] ?? 0) + 1;
    record(req.due, req.sent, status, performance.now());
    const usable = error === undefined && !conn.closeAfter;
    if (!usable) drop(conn);
    if (waiting.size > 0 && performance.now() < windowEnd) send(waiting.shift(), usable ? conn : undefined);
    else if (usable) idle.push(conn);
    if (inFlight === 0) onIdle?.();
  };

  const drop = (conn: Connection) => {
    connections.delete(conn);
    const i = idle.indexOf(conn);
    if (i >= 0) idle.splice(i, 1);
    conn.socket.destroy();
  };

  const read = (conn: Connection, chunk: Buffer) => {
    if (!conn.request) return drop(conn); // bytes nobody asked for
    const buf = conn.received ? Buffer.concat([conn.received, chunk]) : chunk;
    conn.received = buf;
    if (conn.answerLength < 0) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = buf.toString('latin1', 0, end);
      conn.status = Number(text.slice(9, 12));
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(text);
      if (!length) return finish(conn, 0, 'answer without Content-Length');
      conn.answerLength = end + 4 + Number(length[1]);
      conn.closeAfter = /\r\nconnection:[ \t]*close/i.test(text);
    }
    if (buf.length < conn.answerLength) return;
    if (buf.length > conn.answerLength) return finish(conn, 0, 'more bytes than the answer');
    finish(conn, conn.status);
  };

  const open = (): Connection => {
    const socket = net.connect({ host, port, noDelay: true });
    const conn: Connection = { socket, request: undefined, received: undefined, answerLength: -1, status: 0, closeAfter: false };
    connections.add(conn);
    connectionsOpened++;
    socket.on('data', (chunk: Buffer) => read(conn, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(conn, 0, err.code ?? err.message));
    socket.on('close', () => {
      finish(conn, 0, 'connection closed before the answer');
      drop(conn);
    });
    return conn;
  };

  const send = (due: number, conn = idle.pop() ?? open()) => {
    const now = performance.now();
    conn.request = { due, sent: now };
    sent++;
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    conn.socket.write(request);
  };

  if (opts.preconnect) {
    for (let opened = 0; opened < opts.maxConnections; ) {
      const batch = Array.from({ length: Math.min(PRECONNECT_BATCH, opts.maxConnections - opened) }, () => open());
      opened += batch.length;
      await Promise.all(
        batch.map(
          (conn) =>
            new Promise<void>((resolve, reject) => {
              conn.socket.once('connect', resolve);
              conn.socket.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`openLoop: could not open ${opts.maxConnections} connections to ${url.host} before the schedule: ${err.code ?? err.message}`)));
            }),
        ),
      ).catch((err: unknown) => {
        for (const conn of connections) conn.socket.destroy();
        throw err;
      });
      idle.push(...batch);
    }
    if (opts.warmUp) {
      const pool = idle.splice(0);
      warming = pool.length;
      const answered = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), WARM_UP_TIMEOUT_MS);
        onWarm = () => {
          clearTimeout(timer);
          resolve(true);
        };
        for (const conn of pool) {
          conn.request = { due: 0, sent: 0 };
          inFlight++;
          conn.socket.write(request);
        }
      });
      onWarm = undefined;
      if (!answered) {
        for (const conn of connections) conn.socket.destroy();
        throw new Error(`openLoop: ${warming} of ${pool.length} warm-up requests to ${url.host} were not answered within ${WARM_UP_TIMEOUT_MS / 1000} s`);
      }
      if (warmUpFailures > 0) {
        for (const conn of connections) conn.socket.destroy();
        throw new Error(`openLoop: ${warmUpFailures} of ${pool.length} connections to ${url.host} failed their warm-up request (closed, or an answer it cannot frame)`);
      }
    }
  }
  t0 = performance.now() + 10;
  windowEnd = t0 + opts.seconds * 1000;

  // The dispatcher: on each timer turn, everything due by now goes out (timers have ~1 ms resolution, so
  // at rates above 1,000/s a turn sends a small burst); then it sleeps until the next due time.
  await new Promise<void>((resolve) => {
    let next = 0;
    const tick = () => {
      const now = performance.now();
      const dueUpTo = Math.min(total, Math.floor((now - t0) / interval) + 1);
      for (; next < dueUpTo; next++) {
        const due = t0 + next * interval;
        late.push(now - due);
        if (inFlight < opts.maxConnections) send(due);
        else {
          waitedForConnection++;
          waiting.push(due);
        }
      }
      if (next < total) setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
      else setTimeout(resolve, Math.max(0, windowEnd - performance.now()));
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  });

  // The window is closed: what still waits for a connection is never sent; what is in flight gets drainMs to answer.
  const neverSent = waiting.drain();
  const closedAt = performance.now();
  for (const due of neverSent) record(due, undefined, -1, closedAt);
  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, drainMs);
      onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  const unfinished = inFlight;
  const end = performance.now();
  for (const conn of connections) if (conn.request) record(conn.request.due, conn.request.sent, -1, end);
  closed = true;
  for (const conn of connections) conn.socket.destroy();

  return {
    offeredPerSec: opts.rate,
    seconds: opts.seconds,
    scheduled: total,
    sent,
    ok,
    shed,
    otherStatus,
    errors,
    errorKinds,
    unfinished,
    waitedForConnection,
    neverSent: neverSent.length,
    okPerSec: okInWindow / opts.seconds,
    shedPerSec: shedInWindow / opts.seconds,
    answeredPerSec: answeredInWindow / opts.seconds,
    sentPerSec: sent / opts.seconds,
    okLatencyMs: percentiles(okLatency),
    allLatencyMs: percentiles(allLatency),
    okFromSendMs: percentiles(okFromSend),
    senderLateMs: percentiles(late),
    connectionsOpened,
    peakInFlight,
    ...(samples ? { samples } : {}),
  };
}
