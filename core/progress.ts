/**
 * Progress and structured logs for long jobs. On a terminal a single status line
 * is redrawn (stage, count, rate, ETA); anywhere else the same facts are written
 * as JSON lines in the one log format of core/log.ts (the API's), so CI logs and log
 * shippers get something parseable.
 *
 * The `progress` setting (PRICESENSE_PROGRESS=tty|json|off, core/config.ts) overrides
 * the choice; jest.config.ts sets it to off so test output stays readable.
 */
import { setting, type ProgressMode } from './config';
import { formatLogLine } from './log';

export type { ProgressMode } from './config';

export function progressMode(stream: NodeJS.WriteStream = process.stderr): ProgressMode {
  return setting('progress') ?? (stream.isTTY ? 'tty' : 'json');
}

/** One structured log line (JSON mode) or a plain line (TTY mode); `fields` may set `level` and `msg` (core/log.ts). */
export function logEvent(event: string, fields: Record<string, unknown> = {}, stream: NodeJS.WriteStream = process.stderr): void {
  const mode = progressMode(stream);
  if (mode === 'off') return;
  if (mode === 'json') {
    stream.write(formatLogLine(event, fields));
  } else {
    const detail = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : String(v)}`)
      .join(' ');
    stream.write(`${event}${detail ? ` ${detail}` : ''}\n`);
  }
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return `${m}m${String(s).padStart(2, '0')}s`;
}

export interface ProgressOptions {
  stage: string;
  /** Expected final count, when known; enables ETA. */
  total?: number;
  unit?: string;
  stream?: NodeJS.WriteStream;
  /** Minimum milliseconds between redraws (TTY) or log lines (JSON). */
  intervalMs?: number;
}

export class Progress {
  readonly stage: string;
  private done = 0;
  private total: number | undefined;
  private readonly unit: string;
  private readonly stream: NodeJS.WriteStream;
  private readonly mode: ProgressMode;
  private readonly intervalMs: number;
  private readonly started = process.hrtime.bigint();
  private lastEmit = 0;

  constructor(opts: ProgressOptions) {
    this.stage = opts.stage;
    this.total = opts.total;
    this.unit = opts.unit ?? 'rows';
    this.stream = opts.stream ?? process.stderr;
    this.mode = progressMode(this.stream);
    this.intervalMs = opts.intervalMs ?? (this.mode === 'tty' ? 100 : 2000);
  }

  elapsedSeconds(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e9;
  }

  setTotal(total: number): void {
    this.total = total;
  }

  add(n: number): void {
    this.update(this.done + n);
  }

  update(done: number): void {
    this.done = done;
    const now = Date.now();
    if (now - this.lastEmit >= this.intervalMs) {
      this.lastEmit = now;
      this.emit(false);
    }
  }

  /** Final line for the stage; returns the stage's figures for reports. */
  finish(extra: Record<string, unknown> = {}): { stage: string; count: number; seconds: number; perSecond: number } {
    const seconds = this.elapsedSeconds();
    const figures = { stage: this.stage, count: this.done, seconds, perSecond: seconds > 0 ? this.done / seconds : 0 };
    this.emit(true, extra);
    return figures;
  }

  private emit(final: boolean, extra: Record<string, unknown> = {}): void {
    if (this.mode === 'off') return;
    const seconds = this.elapsedSeconds();
    const rate = seconds > 0 ? this.done / seconds : 0;
    const eta = this.total !== undefined && rate > 0 ? Math.max(0, (this.total - this.done) / rate) : undefined;
    if (this.mode === 'json') {
      this.stream.write(
        formatLogLine(final ? 'stage_done' : 'progress', {
          stage: this.stage,
          done: this.done,
          total: this.total,
          unit: this.unit,
          per_second: Math.round(rate),
          eta_s: final ? 0 : eta === undefined ? undefined : Math.round(eta * 10) / 10,
          elapsed_s: Math.round(seconds * 1000) / 1000,
          ...extra,
        }),
      );
      return;
    }
    const count = this.total !== undefined ? `${formatNumber(this.done)}/${formatNumber(this.total)}` : formatNumber(this.done);
    const tail = final
      ? `done in ${formatDuration(seconds)}`
      : eta !== undefined
        ? `ETA ${formatDuration(eta)}`
        : `${formatDuration(seconds)}`;
    const extras = Object.entries(extra)
      .map(([k, v]) => ` ${k}=${typeof v === 'number' ? formatNumber(v) : String(v)}`)
      .join('');
    this.stream.write(`\r\x1b[2K[${this.stage}] ${count} ${this.unit}  ${formatNumber(Math.round(rate))} ${this.unit}/s  ${tail}${extras}${final ? '\n' : ''}`);
  }
}
