/**
 * What went wrong, as a kind a program can branch on, and the one table that maps each
 * kind to the CLI's exit code and to an HTTP status. Each exit code means one thing:
 * a script can tell "the gates failed" from "the stored bytes were tampered with"
 * without reading the message. README.md ("Exit codes") shows this table.
 */
export const ERROR_KINDS = {
  failed: {
    exitCode: 1,
    httpStatus: 502,
    meaning: 'a run failed: the smoke test or SageMaker pipeline execution the command waited for, or the API server (workers crash-looping, shutdown deadline passed)',
  },
  validation: {
    exitCode: 2,
    httpStatus: 400,
    meaning: 'bad input: a flag, argument, configuration value or input file is wrong (commander\'s own parse errors too)',
  },
  gate_failed: { exitCode: 3, httpStatus: 422, meaning: 'the model failed its quality gates, or has none where they are required (train, evaluate, import, demo; register or approve without --force / --override-gates)' },
  data_rejected: { exitCode: 4, httpStatus: 422, meaning: 'the drop failed the ETL\'s data checks (reject threshold, gold validation, no ingestible file); the previous gold is unchanged' },
  integrity: { exitCode: 5, httpStatus: 500, meaning: 'stored data does not verify: checksum mismatch, tampered audit trail, unreadable registry record or artifact' },
  conflict: { exitCode: 6, httpStatus: 409, meaning: 'someone else changed or holds it first (concurrent registry change, lake lease held); nothing was changed' },
  not_found: { exitCode: 7, httpStatus: 404, meaning: 'the named version, object or resource does not exist' },
  invalid_transition: { exitCode: 8, httpStatus: 409, meaning: 'the registry status change is not allowed from the version\'s current status' },
  denied: { exitCode: 9, httpStatus: 403, meaning: 'AWS refused: access denied, rejected or missing credentials' },
  throttled: { exitCode: 10, httpStatus: 429, meaning: 'AWS kept throttling or a service quota was reached; retry later' },
  unavailable: { exitCode: 11, httpStatus: 503, meaning: 'an endpoint could not be reached' },
  internal: { exitCode: 70, httpStatus: 500, meaning: 'a bug or an engine-internal failure; report it with the log' },
} as const satisfies Record<string, { exitCode: number; httpStatus: number; meaning: string }>;

export type ErrorKind = keyof typeof ERROR_KINDS;

export const ERROR_KIND_NAMES = Object.keys(ERROR_KINDS) as ErrorKind[];

export function exitCodeOf(kind: ErrorKind): number {
  return ERROR_KINDS[kind].exitCode;
}

export function httpStatusOf(kind: ErrorKind): number {
  return ERROR_KINDS[kind].httpStatus;
}
