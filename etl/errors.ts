/**
 * An error caused by the user's input or configuration (bad file, bad flag, failed
 * gate). The CLI prints its message without a stack trace and exits with exitCode.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}
