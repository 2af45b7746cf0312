/**
 * The pricesense policy pack: `pulumi preview|up --policy-pack infra/policies`.
 * The rules live in rules.ts as plain functions (unit-tested against every stack).
 */
import { PolicyPack } from '@pulumi/policy';
import { RULES } from './rules';
import { toPolicy } from './adapter';

export const policyPack = new PolicyPack('pricesense', {
  description: 'pricesense guardrails: private and encrypted data, protected data outside dev, immutable scanned images deployed by digest, private nodes, reachable public access lists, environment-scoped GitHub trust, least-privilege IAM, bounded logs, cost tags.',
  policies: RULES.map(toPolicy),
});
