/**
 * Where an ETL run spends its time, step by step (byte pass, DuckDB parse, commits,
 * gold writes, statistics, validation, …): wall seconds and CPU seconds of the whole
 * process. getrusage(RUSAGE_SELF), which process.cpuUsage() reads, counts every thread
 * of the process, so DuckDB's worker threads are in the CPU figure. On a shared machine
 * CPU seconds are the steadier figure: wall time also counts waiting for a core.
 */
export interface StepFigures {
  readonly step: string;
  readonly seconds: number;
  readonly cpuSeconds: number;
  /** How many times the step ran (e.g. once per parse batch). */
  readonly calls: number;
}

export class StepProfile {
  private readonly steps = new Map<string, { seconds: number; cpuSeconds: number; calls: number }>();

  /** Time fn as `step` (steps of the same name add up; do not nest a step in itself). */
  async time<T>(step: string, fn: () => Promise<T>): Promise<T> {
    const cpu = process.cpuUsage();
    const t = process.hrtime.bigint();
    try {
      return await fn();
    } finally {
      const s = this.steps.get(step) ?? { seconds: 0, cpuSeconds: 0, calls: 0 };
      s.seconds += Number(process.hrtime.bigint() - t) / 1e9;
      s.cpuSeconds += cpuSince(cpu);
      s.calls++;
      this.steps.set(step, s);
    }
  }

  figures(): StepFigures[] {
    return [...this.steps].map(([step, s]) => ({ step, seconds: round3(s.seconds), cpuSeconds: round3(s.cpuSeconds), calls: s.calls }));
  }
}

/** CPU seconds of the whole process (every thread) since `start` (a process.cpuUsage() reading). */
export function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
