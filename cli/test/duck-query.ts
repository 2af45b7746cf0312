import { DuckDBInstance } from '@duckdb/node-api';

/** Runs one SQL statement in a throwaway in-memory DuckDB (the tests read the CLI's Parquet and CSV outputs with it). */
export async function query(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}
