/**
 * Overload shedding for prediction requests: past a limit the process answers 503 with
 * Retry-After at once instead of queueing, so the latency of what it serves stays bounded
 * and a load balancer sends the rest elsewhere. Two signals, either one sheds:
 *
 * - in flight: prediction requests between arrival and response. A single-row request
 *   is answered within the pass of the event loop its body completes in (at most 64 of
 *   them together, api/fast-predict.ts), so this counts mostly bodies still arriving
 *   (large batches, slow clients): it caps the memory and work they hold.
 * - event-loop delay: how far into a busy turn of the event loop a request is reached
 *   (TurnDelaySignal). That is each request's own queueing delay, known when its headers
 *   arrive, from one clock read; the backlog of an overloaded Node process is in its
 *   sockets, where no counter inside the process can see it.
 *
 * Probes (/health, /ready, /metrics) are never shed: an overloaded pod must still say so.
 * A shed request costs parsing its headers and writing a small answer; its body is never
 * parsed (Node discards it). That cost is why shedding bounds latency only where a served
 * request costs much more than a refused one (docs/api.md, "Overload").
 */
import type { ApiMetrics, ShedReason } from './metrics';

/** The smallest event-loop delay limit accepted (ms): below it a timer tick or a minor GC would shed. */
export const MIN_EVENT_LOOP_DELAY_MS = 10;

/**
 * The event-loop delay of each request, judged by CoDel's rule.
 *
 * Node reads every connection that is ready in one turn of its event loop and handles what
 * arrived on it (a request's headers, the rest of a body, which completes a prediction
 * synchronously) before it reads the next. A request reached t ms after its turn began had
 * its bytes in before the turn began, so it waited at least t ms: under overload thousands
 * of requests sit in socket buffers and the turns grow as long as it takes to get through
 * them. The turn is opened by the first work of the turn the service sees — any request's
 * arrival, a body's end — and closed by an immediate, which runs once the loop has handled
 * the I/O it polled.
 *
 * A request reached more than `limitMs` into its turn is shed once the loop has been that
 * far behind for `limitMs` (the first request over the limit starts the clock). The clock
 * stops when a turn ends in which no request was over the limit, or within the limit, or
 * when a turn opens more than the limit after the last one ended or deferred work (busy())
 * finished (the loop was idle: it had caught up). So one long pause — a model swap, a major
 * GC — followed by a short turn sheds nothing, turns made long only by one big batch each
 * shed nothing, and a backlog is shed request by request from the moment it has lasted the
 * limit, with no sampling window. The served requests of a turn then take at most about
 * `limitMs`; the rest of the turn is cheap 503s.
 *
 * Time is passed in (ms, monotonic) so the rule can be tested without a clock.
 */
export class TurnDelaySignal {
  private turnStart: number | undefined;
  private lastEnd: number | undefined;
  private behindSince: number | undefined;
  private overInTurn = false;
  /** Deferred work since the last turn (busy()), ms: the next turn begins that much before it opens. */
  private carried = 0;

  constructor(readonly limitMs: number) {}

  /** Work of the loop seen at `now`: opens a turn if none is open; true when it opened one (the caller arranges turnEnded()). */
  open(now: number): boolean {
    if (this.turnStart !== undefined) return false;
    const idle = this.lastEnd !== undefined && now - this.lastEnd > this.limitMs;
    // After an idle gap nothing waited through the deferred work before it: it is not carried.
    this.turnStart = idle ? now : now - this.carried;
    this.carried = 0;
    if (idle) this.behindSince = undefined;
    return true;
  }

  /** A prediction request reached at `now` (its turn opened by open()): true when it is to be shed. */
  reached(now: number): boolean {
    if (this.open(now)) return false;
    if (now - this.turnStart! <= this.limitMs) return false;
    this.overInTurn = true;
    if (this.behindSince === undefined) {
      this.behindSince = now;
      return false;
    }
    return now - this.behindSince >= this.limitMs;
  }

  /**
   * Work outside any request's turn ran from `start` to `end` (deferred to an immediate: a
   * pass of requests answered together, shadow scoring). Requests read after it waited
   * through it, so its duration counts in the next turn, which begins that much before it
   * opens; but a stall between it and the next turn (a timer, a GC) is not carried over, and
   * the loop was busy, not idle, until `end`, so an idle gap is measured from there. It opens
   * no turn and leaves the clock as it is. Inside an open turn it is that turn's work, and
   * changes nothing.
   */
  busy(start: number, end: number): void {
    if (this.turnStart !== undefined) return;
    this.carried += end - start;
    this.lastEnd = end;
  }

  /** The turn is over (the loop got past its I/O). */
  turnEnded(now: number): void {
    if (this.turnStart !== undefined && (!this.overInTurn || now - this.turnStart <= this.limitMs)) this.behindSince = undefined;
    this.turnStart = undefined;
    this.lastEnd = now;
    this.overInTurn = false;
  }
}

export interface LoadShedderOptions {
  readonly maxInFlight: number;
  /** 0 turns the event-loop signal off. */
  readonly maxEventLoopDelayMs: number;
  readonly metrics: ApiMetrics;
}

export class LoadShedder {
  readonly maxInFlight: number;
  readonly maxEventLoopDelayMs: number;
  private readonly metrics: ApiMetrics;
  private current = 0;
  private readonly signal: TurnDelaySignal | undefined;
  private readonly endTurn: () => void;
  private readonly shedChildren = new Map<string, { inc(): void }>();

  constructor(options: LoadShedderOptions) {
    this.maxInFlight = options.maxInFlight;
    this.maxEventLoopDelayMs = options.maxEventLoopDelayMs;
    this.metrics = options.metrics;
    this.metrics.setInFlightSource(() => this.current);
    if (this.maxEventLoopDelayMs > 0 && this.maxEventLoopDelayMs < MIN_EVENT_LOOP_DELAY_MS) {
      throw new RangeError(`maxEventLoopDelayMs must be 0 (off) or at least ${MIN_EVENT_LOOP_DELAY_MS}, got ${this.maxEventLoopDelayMs}`);
    }
    const signal = this.maxEventLoopDelayMs > 0 ? new TurnDelaySignal(this.maxEventLoopDelayMs) : undefined;
    this.signal = signal;
    // Immediates run once the loop has handled the I/O it polled: the end of the turn.
    this.endTurn = () => signal?.turnEnded(performance.now());
  }

  get inFlight(): number {
    return this.current;
  }

  /**
   * Work of the event loop the service sees outside a prediction's admission — any
   * request's arrival, a body's end (a batch scored in a later turn than its headers came
   * in): it opens the turn, so what it costs counts in the delay of the requests after it.
   */
  working(): void {
    if (this.signal?.open(performance.now())) setImmediate(this.endTurn);
  }

  /**
   * Runs work the service deferred to an immediate (a pass of requests answered together,
   * shadow scoring): its duration counts in the delay of the requests after it
   * (TurnDelaySignal.busy). Opening the next turn with it instead, as this did before, made
   * a stall right after it (a timer, a GC) the delay of the next request to arrive, so two
   * such stalls in a row shed a request that came alone.
   */
  deferred(work: () => void): void {
    const signal = this.signal;
    if (signal === undefined) {
      work();
      return;
    }
    const start = performance.now();
    try {
      work();
    } finally {
      signal.busy(start, performance.now());
    }
  }

  /**
   * Admits a prediction request (counted in flight until leave()), or says why it is
   * shed (counted in pricesense_requests_shed_total; nothing to leave).
   */
  enter(route: string): ShedReason | undefined {
    let reason: ShedReason | undefined;
    const signal = this.signal;
    if (signal !== undefined) {
      const now = performance.now();
      // A request that opens its turn is never shed (reached() says so too). In the server the
      // listener's working() opens it at the request's arrival, so the first prediction of a turn
      // is measured from there, plus any deferred work it waited through (busy()).
      if (signal.open(now)) setImmediate(this.endTurn);
      else if (signal.reached(now)) reason = 'event_loop_delay';
    }
    if (reason === undefined && this.current >= this.maxInFlight) reason = 'in_flight';
    if (reason === undefined) {
      this.current++;
      return undefined;
    }
    const key = `${route}\u0000${reason}`;
    let child = this.shedChildren.get(key);
    if (!child) {
      child = this.metrics.requestsShed.labels({ route, reason });
      this.shedChildren.set(key, child);
    }
    child.inc();
    return reason;
  }

  leave(): void {
    this.current--;
  }
}
