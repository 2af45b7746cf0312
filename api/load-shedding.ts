/**
 * Overload shedding for prediction requests: past a limit the process answers 503 with
 * Retry-After at once instead of queueing, so latency stays bounded and a load balancer
 * sends the work elsewhere. Two signals, either one sheds:
 *
 * - in flight: prediction requests between arrival and response. A single-row request
 *   is handled synchronously once its body is in, so this counts mostly bodies still
 *   arriving (large batches, slow clients): it caps the memory and work they hold.
 * - event-loop delay: how late the loop runs a timer — the median over a window of at
 *   least MIN_SAMPLES turns, so one long pause (a model load, a major GC) does not shed
 *   the requests after it. Under overload every turn of the loop is late: that is the
 *   queueing delay each request sees. Shedding starts only after ENGAGE_WINDOWS windows
 *   in a row over the limit, sheds a share of requests that grows with the delay (half at
 *   the limit, all at 1.5× it) rather than all of them, and stops once the delay is below
 *   half the limit (hysteresis), so it neither flaps at the limit nor turns away whole
 *   windows for a passing spike. See DelaySignal.
 *
 * Probes (/health, /ready, /metrics) are never shed: an overloaded pod must still say so.
 * A shed request costs parsing its headers and writing a small answer; its body is never
 * parsed (Node discards it).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ApiMetrics, ShedReason } from './metrics';

/** The monitor's resolution (ms): its samples are late by at least this much; a limit below it cannot be measured. */
export const RESOLUTION_MS = 10;
/**
 * The share of one core this process must have used over the window for a late loop to
 * count as its own backlog. A loop that is late while the process is mostly idle is late
 * because the cores went to someone else (a neighbour, the host): shedding would turn away
 * a lone client and relieve nothing.
 */
const BUSY_CPU_SHARE = 0.5;
/** How often the delay is read; the window restarts once it was evaluated. */
const SAMPLE_MS = 200;
/** A window is judged on at least this many turns of the loop (or after MAX_WINDOW_MS, whatever it holds). */
const MIN_SAMPLES = 5;
const MAX_WINDOW_MS = 1000;
/** Consecutive judged windows over the limit before shedding starts. */
const ENGAGE_WINDOWS = 2;

/** One judged window of the event-loop monitor. */
export interface DelayWindow {
  /** Median lateness of the monitor's timer, ms (the resolution already subtracted). */
  readonly delayMs: number;
  /** Whether this process itself used at least BUSY_CPU_SHARE of a core over the window. */
  readonly busy: boolean;
}

/**
 * The event-loop signal's decision, from judged windows to the share of prediction
 * requests to shed (0..1): hysteresis (on after ENGAGE_WINDOWS windows over the limit,
 * off below half the limit or when the process is not the one using the CPU) and a
 * share proportional to the excess, so that at the limit half the requests still go
 * through and the delay is steered back rather than cut to zero and let climb again.
 */
export class DelaySignal {
  private over = 0;
  private engaged = false;
  private currentShare = 0;

  constructor(readonly limitMs: number) {}

  observe(w: DelayWindow): void {
    const low = this.limitMs / 2;
    if (!w.busy || w.delayMs < low) {
      this.over = 0;
      this.engaged = false;
    } else if (w.delayMs > this.limitMs) {
      this.over++;
      if (this.over >= ENGAGE_WINDOWS) this.engaged = true;
    } else {
      this.over = 0;
    }
    this.currentShare = this.engaged ? Math.min(1, Math.max(0, (w.delayMs - low) / this.limitMs)) : 0;
  }

  /** The share of prediction requests to shed now. */
  get share(): number {
    return this.currentShare;
  }
}

export interface LoadShedderOptions {
  readonly maxInFlight: number;
  /** 0 turns the event-loop signal off. */
  readonly maxEventLoopDelayMs: number;
  readonly metrics: ApiMetrics;
  /** Draws which requests a partial shed turns away; Math.random by default. */
  readonly random?: () => number;
  /** BUSY_CPU_SHARE unless given: a test on a host whose other load starves it sets 0. */
  readonly busyCpuShare?: number;
}

export class LoadShedder {
  readonly maxInFlight: number;
  readonly maxEventLoopDelayMs: number;
  private readonly metrics: ApiMetrics;
  private current = 0;
  private delayMs = 0;
  private windows = 0;
  private readonly signal: DelaySignal | undefined;
  private readonly random: () => number;
  private histogram: ReturnType<typeof monitorEventLoopDelay> | undefined; // IntervalHistogram in @types/node 20, ELDHistogram in 24
  private timer: NodeJS.Timeout | undefined;
  private readonly shedChildren = new Map<string, { inc(): void }>();

  constructor(options: LoadShedderOptions) {
    this.maxInFlight = options.maxInFlight;
    this.maxEventLoopDelayMs = options.maxEventLoopDelayMs;
    this.metrics = options.metrics;
    this.random = options.random ?? Math.random;
    this.metrics.setInFlightSource(() => this.current);
    if (this.maxEventLoopDelayMs > 0) {
      if (this.maxEventLoopDelayMs < RESOLUTION_MS) throw new RangeError(`maxEventLoopDelayMs must be 0 (off) or at least ${RESOLUTION_MS}, got ${this.maxEventLoopDelayMs}`);
      const signal = new DelaySignal(this.maxEventLoopDelayMs);
      this.signal = signal;
      const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      h.enable();
      this.histogram = h;
      const busyShare = options.busyCpuShare ?? BUSY_CPU_SHARE;
      let cpu = process.cpuUsage();
      let at = performance.now();
      this.timer = setInterval(() => {
        const now = performance.now();
        // Too few turns to say anything (the loop was held by one long task): keep collecting.
        if (h.count < MIN_SAMPLES && now - at < MAX_WINDOW_MS) return;
        this.delayMs = h.count === 0 ? 0 : Math.max(0, h.percentile(50) / 1e6 - RESOLUTION_MS);
        h.reset();
        const used = process.cpuUsage(cpu);
        signal.observe({ delayMs: this.delayMs, busy: (used.user + used.system) / 1000 >= busyShare * (now - at) });
        this.windows++;
        cpu = process.cpuUsage();
        at = now;
      }, SAMPLE_MS).unref();
    }
  }

  get inFlight(): number {
    return this.current;
  }

  /** The median event-loop delay over the last judged window, in ms. */
  get eventLoopDelayMs(): number {
    return this.delayMs;
  }

  /** Event-loop windows judged so far (a test waits on it to know the signal has seen enough of them). */
  get judgedWindows(): number {
    return this.windows;
  }

  /** The share of prediction requests the event-loop signal sheds right now (0..1). */
  get eventLoopShedShare(): number {
    return this.signal?.share ?? 0;
  }

  /**
   * Admits a prediction request (counted in flight until leave()), or says why it is
   * shed (counted in pricesense_requests_shed_total; nothing to leave).
   */
  enter(route: string): ShedReason | undefined {
    let reason: ShedReason | undefined;
    if (this.current >= this.maxInFlight) reason = 'in_flight';
    else if (this.signal !== undefined && this.signal.share > 0 && this.random() < this.signal.share) reason = 'event_loop_delay';
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
