import { UserError } from '../core/errors';

/** A forest document that failed validation; `fieldPath` names the bad field (e.g. trees[3].left[17]). */
export class ForestFormatError extends UserError {
  readonly source: string;
  readonly fieldPath: string;
  readonly problem: string;
  constructor(source: string, fieldPath: string, problem: string) {
    super(`${source}: invalid forest file: ${fieldPath || '(document)'} ${problem}`);
    this.name = 'ForestFormatError';
    this.source = source;
    this.fieldPath = fieldPath;
    this.problem = problem;
  }
}
