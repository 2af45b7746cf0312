/**
 * The one JSON log line format of pricesense. The API (pino, api/server.ts) and the CLI,
 * ETL and jobs (logEvent and Progress in JSON mode) write the same fields, so one log
 * pipeline reads them all:
 *
 *   level    "trace" | "debug" | "info" | "warn" | "error" | "fatal" (pino's labels)
 *   time     ISO 8601 UTC, e.g. "2026-11-30T16:00:00.000Z"
 *   service  "pricesense" (CLI, ETL, jobs) or "pricesense-api"
 *   pid      the process id
 *   event    a stable snake_case name to filter on (etl_start, progress, stage_done, registry_poll_failed, …)
 *   msg      a sentence for people (the event name when there is nothing more to say)
 *
 * then the event's own fields (api/test/log-format.test.ts holds the two writers to it).
 * docs/architecture.md ("One log format") says the same.
 */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const CLI_SERVICE = 'pricesense';

/**
 * One line. `fields` may carry `level` and `msg`; the standard fields come first and an
 * event's own field cannot overwrite them.
 */
export function formatLogLine(event: string, fields: Record<string, unknown> = {}): string {
  const { level, msg, ...rest } = fields;
  const line: Record<string, unknown> = {
    level: typeof level === 'string' && (LOG_LEVELS as readonly string[]).includes(level) ? level : 'info',
    time: new Date().toISOString(),
    service: CLI_SERVICE,
    pid: process.pid,
    event,
    msg: typeof msg === 'string' ? msg : event,
  };
  for (const [key, value] of Object.entries(rest)) if (!(key in line)) line[key] = value;
  return `${JSON.stringify(line)}\n`;
}
