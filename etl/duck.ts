/**
 * A thin wrapper over @duckdb/node-api: one in-process DuckDB per ETL run, tuned for
 * streaming (bounded memory, spill to a scratch directory, no insertion-order
 * guarantee unless a query asks for ORDER BY), with query progress for long stages.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import os from 'node:os';

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
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    readonly threads: number,
  ) {}

  static async open(settings: DuckSettings): Promise<Duck> {
    const threads = settings.threads ?? os.availableParallelism();
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(threads),
      memory_limit: settings.memoryLimit ?? '1GB',
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
    return new Duck(instance, conn, threads);
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

  /** Temporarily run single-threaded: aggregates over an ordered input then sum in a fixed order. */
  async deterministic<T>(fn: () => Promise<T>): Promise<T> {
    await this.run('SET threads = 1');
    try {
      return await fn();
    } finally {
      await this.run(`SET threads = ${this.threads}`);
    }
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
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
