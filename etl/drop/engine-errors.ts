/**
 * DuckDB's messages are written for DuckDB's developers ("The CSV Parser state machine
 * reached an invalid state", option dumps, internal paths). None of them reaches a user:
 * what went wrong is restated in terms of the drop — which line, what was expected,
 * what to do — and the engine's wording stays in the structured log for a bug report.
 */
import { UserError } from '../../core/errors';
import { logEvent } from '../../core/progress';

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function limitText(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}

/** Resource trouble any DuckDB statement can meet, as a sentence with a remedy; undefined if not that. */
function resourceFailure(message: string, memoryLimitBytes: number): string | undefined {
  if (/out of memory|could not allocate|failed to allocate/i.test(message)) {
    return `DuckDB ran out of memory under its ${limitText(memoryLimitBytes)} limit; raise --memory-limit, or split the largest files of the drop`;
  }
  if (/no space left on device|disk is full|ENOSPC/i.test(message)) {
    return 'the scratch disk is full (DuckDB spills there past its memory limit); free space in the lake\'s tmp/ filesystem (or TMPDIR for S3 lakes)';
  }
  if (/interrupted/i.test(message)) return 'the run was interrupted';
  return undefined;
}

/**
 * A failure of this run's resources (memory, scratch disk, an interrupt), not of the file:
 * it must stop the run, never become a quarantine reason committed under the file's hash.
 */
export function isResourceFailure(err: unknown): boolean {
  return resourceFailure(messageOf(err), 0) !== undefined;
}

/** Why the CSV reader could not read a file at all, as a quarantine reason (not for resource failures: see isResourceFailure). */
export function describeCsvFailure(err: unknown): string {
  const m = messageOf(err);
  const line = /line:?\s*(\d+)/i.exec(m)?.[1];
  const at = line ? ` at line ${line}` : '';
  if (/maximum line size/i.test(m)) return `a line${at} is longer than 2 MB: not a CSV of transaction lines`;
  if (/unicode|utf-?8|encoding/i.test(m)) return `the text${at} is not UTF-8; re-export the file as UTF-8`;
  return `the CSV reader could not parse the file${at}; expected comma-separated dunnhumby transaction lines, one per line. Open the file near that line, fix or remove what is there, and rerun`;
}

/** DuckDB's error messages start with their kind: "Binder Error: …", "IO Error: …", "INTERNAL Error: …". */
const DUCKDB_MESSAGE = /^(?:Error: )?(?:[A-Za-z]+ )+Error: /;

/**
 * An engine failure outside CSV parsing (aggregation, Parquet I/O, the file system), as a
 * UserError saying what happened in the lake's terms and what to do. Errors of our own
 * code (not DuckDB's, no system error code) pass through: their messages are already ours. The engine's own
 * message goes to the structured log only (event etl_engine_error), for a bug report.
 */
export function translateEngineError(err: unknown, stage: string, memoryLimitBytes: number): Error {
  if (err instanceof UserError) return err;
  const m = messageOf(err);
  logEvent('etl_engine_error', { level: 'error', stage, error: m, code: (err as { code?: unknown } | null)?.code });
  const resource = resourceFailure(m, memoryLimitBytes);
  if (resource) return new UserError(`${stage} failed: ${resource}; nothing was committed`);
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const file = (err as NodeJS.ErrnoException | null)?.path ?? /(?:file|path)[^"']*["']([^"']+)["']/i.exec(m)?.[1];
  if (code === 'ENOENT') {
    return new UserError(`${stage} failed: ${file ?? 'a file of the lake'} disappeared while the ETL was running (removed by another tool?); nothing was committed. Rerun`);
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new UserError(`${stage} failed: no permission to ${code === 'EROFS' ? 'write' : 'read or write'} ${file ?? 'a file of the lake'} (${code}); nothing was committed. Fix the permissions of the lake (or its tmp/ zone) for this user and rerun`);
  }
  // Not the engine's and not the system's: a message of our own code (a lake backend's, a bug's), already in our terms.
  if (!DUCKDB_MESSAGE.test(m) && code === undefined) return err instanceof Error ? err : new Error(m);
  if (/no magic bytes|not a parquet file|invalid parquet|corrupt|checksum/i.test(m)) {
    return new UserError(
      `${stage} failed: a Parquet file of the lake${file ? ` (${file})` : ''} is damaged or not Parquet: the lake was modified outside pricesense; nothing was committed. ` +
        'Delete silver/_SUCCESS (and gold/_SUCCESS if the file is under gold/) to rebuild from raw/, then rerun',
    );
  }
  return new UserError(
    `${stage} failed with an internal error; nothing was committed and the lake is as it was. Please report it with the log (event etl_engine_error holds the engine's message)`,
    'internal',
  );
}
