/**
 * Runs the policy rules the way the Pulumi policy analyzer does (@pulumi/policy's server):
 * a rule that reads a value not known during a preview throws UnknownValueError, which the
 * engine turns into an advisory "can't run policy during preview" instead of a verdict.
 * Everything else a rule throws is a crash of the policy pack, and fails the test.
 */
import { RULES, type CheckedResource, type Rule, type Violation } from '../policies/rules';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { UnknownValueError } = require('@pulumi/policy/proxy') as { UnknownValueError: new (...args: unknown[]) => Error };

export interface NotRun {
  readonly rule: string;
  readonly urn: string;
  readonly message: string;
}

export interface PolicyReport {
  readonly violations: Violation[];
  /** Rules the engine would report as not run during a preview (advisory). */
  readonly notRun: NotRun[];
}

export function runPolicies(resources: readonly CheckedResource[], rules: readonly Rule[] = RULES): PolicyReport {
  const violations: Violation[] = [];
  const notRun: NotRun[] = [];
  const attempt = (rule: Rule, urn: string, run: () => void): void => {
    try {
      run();
    } catch (err) {
      if (err instanceof UnknownValueError) notRun.push({ rule: rule.name, urn, message: err.message });
      else throw err;
    }
  };
  for (const rule of rules) {
    if (rule.kind === 'resource') {
      for (const r of resources) attempt(rule, r.urn, () => rule.validate(r, (message) => violations.push({ rule: rule.name, urn: r.urn, message })));
    } else {
      attempt(rule, '', () => rule.validate(resources, (message, urn) => violations.push({ rule: rule.name, urn: urn ?? '', message })));
    }
  }
  return { violations, notRun };
}
