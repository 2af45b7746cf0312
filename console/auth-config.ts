/**
 * The console's access configuration: a JSON file of bearer tokens (stored as SHA-256
 * hashes, never in clear) each with an identity and a role, and optionally an OIDC
 * proxy whose trusted headers name the user and their groups. docs/console.md
 * ("Authentication") is the reference.
 *
 * Why SHA-256 and not a password hash: the tokens are 256 random bits made by
 * `pricesense console token`, not something a person chose, so there is no dictionary
 * to try; a slow hash (scrypt) would add nothing but latency on every request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { SETTINGS, setting } from '../core/config';
import { UserError } from '../core/errors';
import { writeFileAtomic } from '../core/atomic-file';

export const AUTH_FORMAT = 'pricesense.console-auth/1';
export const ROLES = ['viewer', 'approver'] as const;
export type Role = (typeof ROLES)[number];
export const TOKEN_PREFIX = 'psc_';
export const DEFAULT_AUTH_FILE = SETTINGS.consoleAuth.fallback;
export const DEFAULT_SESSION_TTL_MINUTES = 8 * 60;

export interface TokenEntry {
  readonly identity: string;
  readonly role: Role;
  /** Lowercase hex SHA-256 of the whole token string (prefix included). */
  readonly sha256: string;
  readonly createdAt?: string;
}

export interface ProxyConfig {
  readonly enabled: boolean;
  /** Request header carrying the authenticated identity (e.g. x-forwarded-email from oauth2-proxy). */
  readonly identityHeader: string;
  /** Request header carrying the user's groups, comma-separated (e.g. x-forwarded-groups). */
  readonly groupsHeader: string;
  /** Members of any of these groups are approvers. */
  readonly approverGroups: readonly string[];
  /** Members of any of these are viewers; empty means every identity the proxy passes is a viewer. */
  readonly viewerGroups: readonly string[];
  /** Addresses or CIDR blocks of the proxy: headers from any other peer are ignored. Required when enabled. */
  readonly trustedProxies: readonly string[];
}

export interface AuthConfig {
  readonly format: typeof AUTH_FORMAT;
  readonly tokens: readonly TokenEntry[];
  readonly proxy?: ProxyConfig;
  readonly sessionTtlMinutes?: number;
}

export function authFile(explicit?: string): string {
  return path.resolve(setting('consoleAuth', explicit));
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

const isObject = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
const HEADER = /^[a-z0-9-]+$/;

function stringList(file: string, field: string, x: unknown): string[] {
  if (x === undefined) return [];
  if (!Array.isArray(x) || !x.every((s) => typeof s === 'string' && s.trim())) throw new UserError(`${file}: ${field} must be a list of non-empty strings`);
  return x.map((s: string) => s.trim());
}

export function parseCidr(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address, bits] = entry.split('/');
  const family = isIP(address);
  if (!family) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

function parseProxy(file: string, x: unknown): ProxyConfig | undefined {
  if (x === undefined) return undefined;
  if (!isObject(x)) throw new UserError(`${file}: proxy must be an object`);
  const enabled = x.enabled === true;
  const header = (field: string, fallback: string): string => {
    const v = x[field] ?? fallback;
    if (typeof v !== 'string' || !HEADER.test(v.toLowerCase())) throw new UserError(`${file}: proxy.${field} must be an HTTP header name, got ${JSON.stringify(v)}`);
    return v.toLowerCase();
  };
  const proxy: ProxyConfig = {
    enabled,
    identityHeader: header('identityHeader', 'x-forwarded-email'),
    groupsHeader: header('groupsHeader', 'x-forwarded-groups'),
    approverGroups: stringList(file, 'proxy.approverGroups', x.approverGroups),
    viewerGroups: stringList(file, 'proxy.viewerGroups', x.viewerGroups),
    trustedProxies: stringList(file, 'proxy.trustedProxies', x.trustedProxies),
  };
  for (const p of proxy.trustedProxies) {
    if (!parseCidr(p)) throw new UserError(`${file}: proxy.trustedProxies entry '${p}' is not an IP address or CIDR block (e.g. 10.0.0.0/8)`);
  }
  if (enabled && proxy.trustedProxies.length === 0) {
    throw new UserError(
      `${file}: proxy.enabled needs proxy.trustedProxies (the proxy's addresses): without it anyone who reaches the console could send the identity header`,
    );
  }
  return proxy;
}

/** Validates a parsed auth document; errors name the file and the field. */
export function parseAuthConfig(doc: unknown, file: string): AuthConfig {
  if (!isObject(doc)) throw new UserError(`${file}: expected a JSON object with "format": "${AUTH_FORMAT}" and "tokens"`);
  if (doc.format !== AUTH_FORMAT) throw new UserError(`${file}: format must be "${AUTH_FORMAT}", got ${JSON.stringify(doc.format)}`);
  if (!Array.isArray(doc.tokens)) throw new UserError(`${file}: tokens must be a list (it may be empty when only the proxy is used)`);
  const seen = new Set<string>();
  const tokens = doc.tokens.map((t: unknown, i: number): TokenEntry => {
    const at = `${file}: tokens[${i}]`;
    if (!isObject(t)) throw new UserError(`${at} must be an object with identity, role and sha256`);
    if (typeof t.identity !== 'string' || !t.identity.trim()) throw new UserError(`${at}.identity must be a non-empty string`);
    if (!ROLES.includes(t.role as Role)) throw new UserError(`${at}.role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(t.role)}`);
    if (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256)) {
      throw new UserError(`${at}.sha256 must be 64 lowercase hex digits (the token's SHA-256; never the token itself)`);
    }
    if (seen.has(t.sha256)) throw new UserError(`${at}.sha256 repeats an earlier entry`);
    seen.add(t.sha256);
    return { identity: t.identity.trim(), role: t.role as Role, sha256: t.sha256, createdAt: typeof t.createdAt === 'string' ? t.createdAt : undefined };
  });
  const ttl = doc.sessionTtlMinutes;
  if (ttl !== undefined && !(typeof ttl === 'number' && Number.isFinite(ttl) && ttl >= 1 && ttl <= 7 * 24 * 60)) {
    throw new UserError(`${file}: sessionTtlMinutes must be a number of minutes from 1 to 10080 (a week)`);
  }
  return { format: AUTH_FORMAT, tokens, proxy: parseProxy(file, doc.proxy), sessionTtlMinutes: ttl as number | undefined };
}

export async function readAuthConfig(file: string): Promise<AuthConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(
        `no console access configuration at ${file}: create a token with \`pricesense console token --identity <you> --role approver --auth ${file}\``,
      );
    }
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseAuthConfig(doc, file);
}

/** Owner-readable only: the hashes are not secrets, but the file says who may approve. */
async function writeAuthConfig(file: string, config: AuthConfig): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`, 0o600);
}

async function readOrEmpty(file: string): Promise<AuthConfig> {
  const exists = await stat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
  );
  return exists ? readAuthConfig(file) : { format: AUTH_FORMAT, tokens: [] };
}

/** Adds a new token for identity with role; returns the token (shown once: only its hash is kept). */
export async function addToken(file: string, identity: string, role: Role): Promise<{ token: string; entry: TokenEntry }> {
  if (!identity.trim()) throw new UserError('--identity must not be empty: it is what the audit trail records');
  if (!ROLES.includes(role)) throw new UserError(`--role must be one of ${ROLES.join(', ')}, got '${role}'`);
  const config = await readOrEmpty(file);
  const token = newToken();
  const entry: TokenEntry = { identity: identity.trim(), role, sha256: hashToken(token), createdAt: new Date().toISOString() };
  await writeAuthConfig(file, { ...config, tokens: [...config.tokens, entry] });
  return { token, entry };
}

/** Removes every token of identity; returns how many were removed. */
export async function revokeTokens(file: string, identity: string): Promise<number> {
  const config = await readAuthConfig(file);
  const kept = config.tokens.filter((t) => t.identity !== identity.trim());
  const removed = config.tokens.length - kept.length;
  if (removed > 0) await writeAuthConfig(file, { ...config, tokens: kept });
  return removed;
}
