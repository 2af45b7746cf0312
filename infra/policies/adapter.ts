/**
 * Turns the plain rules into @pulumi/policy policies. Separate from index.ts because
 * constructing the PolicyPack starts the analyzer server; this part is testable.
 */
import type { ResourceValidationPolicy, StackValidationPolicy } from '@pulumi/policy';
import type { CheckedResource, Rule } from './rules';

export type Policy = ResourceValidationPolicy | StackValidationPolicy;

interface PolicyResourceLike {
  type: string;
  name: string;
  urn: string;
  props: Record<string, unknown>;
  provider?: { type: string; props: Record<string, unknown> };
  opts?: { protect?: boolean };
}

function checked(r: PolicyResourceLike): CheckedResource {
  return {
    type: r.type,
    name: r.name,
    urn: r.urn,
    props: r.props,
    provider: r.provider && { type: r.provider.type, props: r.provider.props },
    opts: r.opts && { protect: r.opts.protect },
  };
}

export function toPolicy(rule: Rule): Policy {
  const base = { name: rule.name, description: rule.description, enforcementLevel: rule.enforcementLevel };
  if (rule.kind === 'resource') {
    return { ...base, validateResource: (args, report) => rule.validate(checked(args), (message) => report(message)) };
  }
  return { ...base, validateStack: (args, report) => rule.validate(args.resources.map(checked), report) };
}
