/**
 * Just enough of IAM's evaluation logic to answer "is this request explicitly denied by
 * these statements?": wildcard matching of actions and ARNs (`*`, `?`, case-insensitive
 * actions), NotAction/NotResource, and the condition operators our policies use. A missing
 * condition key makes positive operators false and negated ones true, as in IAM. Used by the
 * rule that checks deploy roles cannot reach another environment.
 */

export interface Request {
  readonly action: string;
  readonly resource: string;
  /** Condition keys of the request, e.g. `aws:ResourceTag/stack`. */
  readonly context: Readonly<Record<string, string>>;
}

type Statement = Record<string, unknown>;

function list(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

export function globMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, ignoreCase ? 'i' : '').test(value);
}

function matchesAny(patterns: string[], value: string, ignoreCase = false): boolean {
  return patterns.some((p) => globMatch(p, value, ignoreCase));
}

function conditionHolds(op: string, key: string, expected: string[], context: Readonly<Record<string, string>>): boolean {
  const actual = context[key];
  switch (op) {
    case 'StringEquals':
    case 'ArnEquals':
      return actual !== undefined && expected.includes(actual);
    case 'StringLike':
    case 'ArnLike':
      return actual !== undefined && matchesAny(expected, actual);
    case 'StringNotEquals':
    case 'ArnNotEquals':
      return actual === undefined || !expected.includes(actual);
    case 'StringNotLike':
    case 'ArnNotLike':
      return actual === undefined || !matchesAny(expected, actual);
    case 'Null':
      return expected.includes(String(actual === undefined));
    default:
      // An operator this evaluator does not know: assume the statement does not apply, so
      // an unknown deny never counts as protection.
      return false;
  }
}

export function statementApplies(s: Statement, r: Request): boolean {
  const actionOk = s.Action !== undefined ? matchesAny(list(s.Action), r.action, true) : !matchesAny(list(s.NotAction), r.action, true);
  const resourceOk = s.Resource !== undefined ? matchesAny(list(s.Resource), r.resource) : !matchesAny(list(s.NotResource), r.resource);
  if (!actionOk || !resourceOk) return false;
  const condition = (s.Condition ?? {}) as Record<string, Record<string, unknown>>;
  return Object.entries(condition).every(([op, block]) => Object.entries(block ?? {}).every(([key, v]) => conditionHolds(op, key, list(v), r.context)));
}

export function explicitlyDenied(statements: readonly Statement[], r: Request): boolean {
  return statements.some((s) => s.Effect === 'Deny' && statementApplies(s, r));
}
