/**
 * How long this (the serving) thread stopped answering, and how much of that was its own
 * work: a 1 ms timer measures each gap between its runs (an event-loop stall, whatever
 * the cause) and reads the thread's on-CPU time from /proc (schedstat, nanoseconds), so a
 * gap the kernel spent running other processes on a busy host is told apart from a gap
 * this thread spent computing. Run only around a model load (the reads cost ~20 µs a tick).
 */
import { readFileSync } from 'node:fs';

export interface StallFigures {
  /** The longest gap between timer runs, ms. */
  readonly maxStallMs: number;
  /** The most on-CPU time this thread spent within one gap, ms: its own longest blocking stretch (NaN without /proc). */
  readonly maxBusyMs: number;
}

const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;

/** The main thread's on-CPU nanoseconds so far, or NaN where /proc has no schedstat. */
function onCpuNs(): number {
  try {
    return Number(readFileSync(SCHEDSTAT, 'latin1').split(' ', 1)[0]);
  } catch {
    return NaN;
  }
}

export class StallProbe {
  private timer: NodeJS.Timeout | undefined;
  private maxStall = 0;
  private maxBusy = 0;

  start(): void {
    let last = performance.now();
    let lastCpu = onCpuNs();
    this.timer = setInterval(() => {
      const now = performance.now();
      const cpu = onCpuNs();
      // The gap beyond the 1 ms period; the thread's CPU over the gap, less the timer's own tick.
      this.maxStall = Math.max(this.maxStall, now - last - 1);
      this.maxBusy = Math.max(this.maxBusy, (cpu - lastCpu) / 1e6);
      last = now;
      lastCpu = cpu;
    }, 1);
    this.timer.unref();
  }

  stop(): StallFigures {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return { maxStallMs: Math.max(0, this.maxStall), maxBusyMs: this.maxBusy };
  }
}
