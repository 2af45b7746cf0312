import { exitCodeOf, type ErrorKind } from './error-kinds';

/**
 * An error caused by the user's input, configuration or environment (bad file, bad flag,
 * failed gate, denied access). It carries a kind, not a code to parse from the message:
 * the CLI prints the message without a stack trace and exits with the kind's code
 * (core/error-kinds.ts). Without a kind it is a validation error.
 */
export class UserError extends Error {
  readonly kind: ErrorKind;
  constructor(message: string, kind: ErrorKind = 'validation') {
    super(message);
    this.name = 'UserError';
    this.kind = kind;
  }

  get exitCode(): number {
    return exitCodeOf(this.kind);
  }
}
