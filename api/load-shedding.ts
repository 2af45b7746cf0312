/**
 * Overload shedding for prediction requests: past a limit the process answers 503 with
 * Retry-After at once instead of queueing, so the latency of what it serves stays bounded
 * and a load balancer sends the rest elsewhere. Two signals, either one sheds:
 *
 * - in flight: prediction requests between arrival and response. A single-row request
 *   is handled synchronously once its body is in, so this counts mostly bodies still
 *   arriving (large batches, slow clients): it caps the memory and work they hold.
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
 * Node reads every connection that is ready in one turn of its event loop and handles each
 * request to the end (a prediction is synchronous once its body is in) before it reads the
 * next. A request reached t ms after its turn began had its bytes in before the turn began,
 * so it waited at least t ms: under overload thousands of requests sit in socket buffers
 * and the turns grow as long as it takes to get through them.
 *
 * A request reached more than `limitMs` into its turn is shed once the loop has been that
 * far behind for `limitMs` (the first request over the limit starts the clock), and the
 * clock stops as soon as a turn ends within the limit. So one long pause — a model swap, a
 * major GC — followed by a short turn sheds nothing, and a backlog is shed from the moment
 * it has lasted the limit, request by request, with no sampling window. The served requests
 * of a turn then take at most about `limitMs`, and the rest of the turn is cheap 503s.
 *
 * Time is passed in (ms, monotonic) so the rule can be tested without a clock.
 */
export class TurnDelaySignal {
  private turnStart: number | undefined;
  private behindSince: number | undefined;

  constructor(readonly limitMs: number) {}

  /** Whether a turn is open (a request was reached and turnEnded() has not been called since). */
  get inTurn(): boolean {
    return this.turnStart !== undefined;
  }

  /** How far into the open turn `now` is (0 outside a turn). */
  delayAt(now: number): number {
    return this.turnStart === undefined ? 0 : now - this.turnStart;
  }

  /** A prediction request reached at `now`: opens a turn if none is open; true when it is to be shed. */
  reached(now: number): boolean {
    if (this.turnStart === undefined) {
      this.turnStart = now;
      return false;
    }
    if (now - this.turnStart <= this.limitMs) return false;
    if (this.behindSince === undefined) {
      this.behindSince = now;
      return false;
    }
    return now - this.behindSince >= this.limitMs;
  }

  /** The turn is over (the loop got past its I/O): a turn within the limit means the loop has caught up. */
  turnEnded(now: number): void {
    if (this.turnStart !== undefined && now - this.turnStart <= this.limitMs) this.behindSince = undefined;
    this.turnStart = undefined;
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

  /** How far into the current turn of the event loop this process is, in ms (0 between turns, or with the signal off). */
  get eventLoopDelayMs(): number {
    return this.signal?.delayAt(performance.now()) ?? 0;
  }

  /**
   * Admits a prediction request (counted in flight until leave()), or says why it is
   * shed (counted in pricesense_requests_shed_total; nothing to leave).
   */
  enter(route: string): ShedReason | undefined {
    let reason: ShedReason | undefined;
    const signal = this.signal;
    if (signal !== undefined) {
      const opens = !signal.inTurn;
      if (signal.reached(performance.now())) reason = 'event_loop_delay';
      if (opens) setImmediate(this.endTurn);
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
