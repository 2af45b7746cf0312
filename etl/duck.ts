/**
 * A thin wrapper over @duckdb/node-api: one in-process DuckDB per ETL run, tuned for
 * streaming (bounded memory, spill to a scratch directory, no insertion-order
 * guarantee unless a query asks for ORDER BY), with query progress for long stages.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import os from 'node:os';
import { UserError } from '../core/errors';

export interface DuckSettings {
  /** Worker threads (default: all cores). */
  threads?: number;
  /** e.g. '1GB'. Past it DuckDB spills to tempDirectory instead of growing. Default 1GB. */
  memoryLimit?: string;
  /** Where DuckDB spills; must be a local directory. */
  tempDirectory: string;
}

export type Row = Record<string, unknown>;

export class Duck {
  private serialDepth = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    readonly threads: number,
    /** The memory limit DuckDB enforces, in bytes. */
    readonly memoryLimitBytes: number,
  ) {}

  static async open(settings: DuckSettings): Promise<Duck> {
    const threads = settings.threads ?? os.availableParallelism();
    const memoryLimit = settings.memoryLimit ?? '1GB';
    const memoryLimitBytes = parseByteSize(memoryLimit);
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(threads),
      memory_limit: memoryLimit,
      temp_directory: settings.tempDirectory,
      preserve_insertion_order: 'false',
      // Nothing here may reach the network (and httpfs cannot be installed here anyway).
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    const conn = await instance.connect();
    // Client settings: track query progress (for Progress) without DuckDB printing its own bar.
    await conn.run('SET enable_progress_bar = true');
    await conn.run('SET enable_progress_bar_print = false');
    return new Duck(instance, conn, threads, memoryLimitBytes);
  }

  async run(sql: string): Promise<void> {
    await this.conn.run(sql);
  }

  /** All result rows as plain JS objects (BIGINT → bigint, DECIMAL → number via DOUBLE casts in SQL). */
  async all(sql: string): Promise<Row[]> {
    const reader = await this.conn.runAndReadAll(sql);
    return reader.getRowObjectsJS() as Row[];
  }

  /** Column-wise result: name → values. */
  async columns(sql: string): Promise<Record<string, unknown[]>> {
    const reader = await this.conn.runAndReadAll(sql);
    return reader.getColumnsObjectJS() as Record<string, unknown[]>;
  }

  /** Run a long statement, reporting DuckDB's own progress estimate (0..1) as it goes. */
  async runWithProgress(sql: string, onProgress: (fraction: number) => void, intervalMs = 250): Promise<Row[]> {
    const timer = setInterval(() => {
      const p = this.conn.progress.percentage;
      if (p >= 0) onProgress(Math.min(1, p / 100));
    }, intervalMs);
    try {
      return await this.all(sql);
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * Temporarily run single-threaded: aggregates over an ordered input then sum in a fixed
   * order. Nested calls share one switch (each SET threads rebuilds DuckDB's thread pool).
   */
  async deterministic<T>(fn: () => Promise<T>): Promise<T> {
    if (this.serialDepth === 0 && this.threads !== 1) await this.run('SET threads = 1');
    this.serialDepth++;
    try {
      return await fn();
    } finally {
      this.serialDepth--;
      if (this.serialDepth === 0 && this.threads !== 1) await this.run(`SET threads = ${this.threads}`);
    }
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}

const BYTE_UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };

/** '1GB', '512 MiB', '2GiB' → bytes (DuckDB's units: KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024). */
export function parseByteSize(size: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?\s*$/i.exec(size);
  const unit = BYTE_UNITS[(m?.[2] ?? 'B').toUpperCase()];
  if (!m || unit === undefined) throw new UserError(`memory limit '${size}' is not a size: expected a number with a unit, e.g. 512MB or 2GiB`);
  return Number(m[1]) * unit;
}

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** A SQL list of string literals, e.g. for read_csv([...]). */
export function sqlList(items: readonly string[]): string {
  return `[${items.map(sqlString).join(', ')}]`;
}

export function sqlIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
