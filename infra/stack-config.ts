/**
 * Reading a stack's config, the same way for every Pulumi project in infra/ (the platform,
 * the in-VPC app project and the delivery bootstrap): keys under the `pricesense:`
 * namespace, merged over per-tier defaults, validated against the project's schema, every
 * problem reported at once with its full key, the stack and the expected type. A wrong
 * key stops the program before any resource is declared.
 *
 * No dependency on the cloud SDKs, so it is cheap to test.
 */
import { type Issue, type Spec, deepMerge, describeValue, oneOf } from './config-schema';

export const NAMESPACE = 'pricesense';
export const TIERS = ['dev', 'stage', 'prod'] as const;
export type Tier = (typeof TIERS)[number];
/**
 * Where a resource says which tier it belongs to, so the policy pack can apply the stage/prod
 * rules: the `tier` tag on AWS resources (the provider's default tags; `shared` for the
 * account-wide delivery stack) and the `pricesense/tier` label on Kubernetes objects. A
 * resource without either gets the strictest rules.
 */
export const TIER_TAG = 'tier';
export const TIER_LABEL = 'pricesense/tier';

export type DeepPartial<T> = T extends readonly (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

type Schema = Record<string, Spec<unknown>>;
export type SettingsOf<S extends Schema> = { [K in keyof S]: S[K] extends Spec<infer T> ? T : never };

export class ConfigError extends Error {
  readonly issues: readonly Issue[];
  constructor(stack: string, issues: readonly Issue[]) {
    const lines = issues.map((i) => `  - ${i.key}: expected ${i.expected}, got ${i.got}`);
    super(
      `Invalid stack config for stack "${stack}" (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}\n` +
        `Fix with \`pulumi config set --stack ${stack} [--path] <key> <value>\`; see docs/infra.md for every key.`,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/**
 * Raw config as the Pulumi engine hands it over (pulumi.runtime.allConfig()): every
 * value is a string, structured values are JSON text. Keys are `namespace:name`.
 */
export type RawConfig = Readonly<Record<string, string>>;

export function tierOfStack(stack: string): Tier | undefined {
  return (TIERS as readonly string[]).includes(stack) ? (stack as Tier) : undefined;
}

/** Adds one issue for `pricesense:<path>`; `described` replaces the generic description of `value`. */
export type Complain = (path: string, expected: string, value: unknown, described?: string) => void;

export interface ProjectConfigSpec<S extends Schema> {
  /** Every key `pricesense:<key>` the project knows. */
  readonly schema: S;
  /** Top-level keys whose values are plain strings: taken literally, so owner "1234" stays a string. */
  readonly stringKeys: readonly (keyof S & string)[];
  readonly common: DeepPartial<SettingsOf<S>>;
  /** Per-tier defaults; the schema then has a `tier` key, taken from the stack name unless set. */
  readonly tiers?: Record<Tier, DeepPartial<SettingsOf<S>>>;
  readonly requiresRegion: boolean;
  /** Rules across keys, run once every key is valid on its own. */
  readonly check?: (settings: SettingsOf<S>, complain: Complain) => void;
}

export interface StackIdentity {
  readonly stack: string;
  readonly project: string;
  /** `aws:region`; empty for projects that have no AWS provider of their own. */
  readonly region: string;
}

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;

function parseRaw(stringKeys: ReadonlySet<string>, name: string, raw: string): unknown {
  if (stringKeys.has(name)) return raw;
  // Everything else is JSON as written by `pulumi config set --path` or the stack file;
  // a value that is not JSON stays a string and is reported with its expected type.
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Validates raw stack config against a project's spec; throws ConfigError listing every problem. */
export function parseProjectConfig<S extends Schema>(spec: ProjectConfigSpec<S>, stack: string, project: string, raw: RawConfig): SettingsOf<S> & StackIdentity {
  const issues: Issue[] = [];
  const user: Record<string, unknown> = {};
  const stringKeys = new Set<string>(spec.stringKeys);
  for (const [fullKey, value] of Object.entries(raw)) {
    const [ns, ...rest] = fullKey.split(':');
    if (ns !== NAMESPACE) continue;
    const name = rest.join(':');
    if (!(name in spec.schema)) {
      const hint = name.includes('.') ? ` (to set a nested key use \`pulumi config set --path ${fullKey} ...\`)` : '';
      issues.push({ key: fullKey, expected: `no such key${hint}; known keys: ${Object.keys(spec.schema).map((k) => `${NAMESPACE}:${k}`).join(', ')}`, got: describeValue(value) });
      continue;
    }
    user[name] = parseRaw(stringKeys, name, value);
  }

  const region = raw['aws:region'];
  if (spec.requiresRegion && (region === undefined || !REGION.test(region))) {
    issues.push({ key: 'aws:region', expected: 'an AWS region such as eu-west-1', got: describeValue(region) });
  }

  let defaults: unknown = spec.common;
  if (spec.tiers) {
    const tierValue = user.tier ?? tierOfStack(stack);
    const tierIssues: Issue[] = [];
    const tier = oneOf(TIERS).parse(tierValue, `${NAMESPACE}:tier`, tierIssues);
    if (tier === undefined) {
      issues.push(
        ...tierIssues.map((i) =>
          user.tier === undefined ? { ...i, expected: `${i.expected} (stack "${stack}" is not named after a tier, so set it)` } : i,
        ),
      );
      throw new ConfigError(stack, issues);
    }
    defaults = deepMerge(spec.common, spec.tiers[tier]);
    user.tier = tier;
  }

  const merged = deepMerge(defaults, user) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(spec.schema)) out[name] = s.parse(merged[name], `${NAMESPACE}:${name}`, issues);
  if (issues.length > 0) throw new ConfigError(stack, issues);

  const settings = out as SettingsOf<S>;
  spec.check?.(settings, (path, expected, value, described) => issues.push({ key: `${NAMESPACE}:${path}`, expected, got: described ?? describeValue(value) }));
  if (issues.length > 0) throw new ConfigError(stack, issues);
  return { ...settings, stack, project, region: region ?? '' };
}
