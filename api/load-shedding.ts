/**
 * Overload shedding for prediction requests: past a limit the process answers 503 with
 * Retry-After at once instead of queueing, so latency stays bounded and a load balancer
 * sends the work elsewhere. Two signals, either one sheds:
 *
 * - in flight: prediction requests between arrival and response. A single-row request
 *   is handled synchronously once its body is in, so this counts mostly bodies still
 *   arriving (large batches, slow clients): it caps the memory and work they hold.
 * - event-loop delay: how late the loop runs a timer — the median over a short window, so
 *   one long pause (a model load, a major GC) does not shed the requests after it. Under
 *   overload every turn of the loop is late: that is the queueing delay each request
 *   sees, and above the limit new prediction requests are shed until it recovers.
 *
 * Probes (/health, /ready, /metrics) are never shed: an overloaded pod must still say so.
 * A shed request costs parsing its headers and writing a small answer; its body is never
 * parsed (Node discards it).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ApiMetrics, ShedReason } from './metrics';

/** The monitor's resolution (ms): its samples are late by at least this much. */
const RESOLUTION_MS = 10;
/**
 * The share of one core this process must have used over the window for a late loop to
 * count as its own backlog. A loop that is late while the process is mostly idle is late
 * because the cores went to someone else (a neighbour, the host): shedding would turn away
 * a lone client and relieve nothing.
 */
const BUSY_CPU_SHARE = 0.5;
/** How often the delay is read and the window restarted. */
const SAMPLE_MS = 200;

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
  private delayMs = 0;
  /** Whether this process itself used the CPU over the last window (see BUSY_CPU_SHARE). */
  private busy = false;
  private histogram: ReturnType<typeof monitorEventLoopDelay> | undefined; // IntervalHistogram in @types/node 20, ELDHistogram in 24
  private timer: NodeJS.Timeout | undefined;
  private readonly shedChildren = new Map<string, { inc(): void }>();

  constructor(options: LoadShedderOptions) {
    this.maxInFlight = options.maxInFlight;
    this.maxEventLoopDelayMs = options.maxEventLoopDelayMs;
    this.metrics = options.metrics;
    this.metrics.setInFlightSource(() => this.current);
    if (this.maxEventLoopDelayMs > 0) {
      const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      h.enable();
      this.histogram = h;
      let cpu = process.cpuUsage();
      let at = performance.now();
      this.timer = setInterval(() => {
        this.delayMs = h.count === 0 ? 0 : Math.max(0, h.percentile(50) / 1e6 - RESOLUTION_MS);
        h.reset();
        const used = process.cpuUsage(cpu);
        const now = performance.now();
        this.busy = (used.user + used.system) / 1000 >= BUSY_CPU_SHARE * (now - at);
        cpu = process.cpuUsage();
        at = now;
      }, SAMPLE_MS).unref();
    }
  }

  get inFlight(): number {
    return this.current;
  }

  /** The median event-loop delay over the last window, in ms. */
  get eventLoopDelayMs(): number {
    return this.delayMs;
  }

  /**
   * Admits a prediction request (counted in flight until leave()), or says why it is
   * shed (counted in pricesense_requests_shed_total; nothing to leave).
   */
  enter(route: string): ShedReason | undefined {
    let reason: ShedReason | undefined;
    if (this.current >= this.maxInFlight) reason = 'in_flight';
    else if (this.maxEventLoopDelayMs > 0 && this.busy && this.delayMs > this.maxEventLoopDelayMs) reason = 'event_loop_delay';
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

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.histogram?.disable();
    this.timer = undefined;
  }
}
