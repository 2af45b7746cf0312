/**
 * Who is calling, and may they: bearer tokens (scripts, curl), sessions made from a
 * token at /login (browsers, which cannot attach a bearer header to a navigation), and
 * — only when enabled and only from the configured proxy addresses — an OIDC proxy's
 * identity headers.
 *
 * Sessions live in this process's memory: a random 256-bit id in an HttpOnly,
 * SameSite=Strict cookie, valid for the configured lifetime and only while the token
 * that opened it is still in the configuration (revoking a token ends its sessions;
 * changing its role changes theirs). The access file is re-read when it changes.
 *
 * CSRF: requests authenticated by ambient credentials (the session cookie, or the
 * proxy's own cookie) must carry the per-session token in the form; bearer requests
 * need none, since a browser never attaches a bearer header on its own.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { BlockList } from 'node:net';
import { UserError } from '../core/errors';
import { DEFAULT_SESSION_TTL_MINUTES, hashToken, parseCidr, readAuthConfig, type AuthConfig, type ProxyConfig, type Role, type TokenEntry } from './auth-config';

export const SESSION_COOKIE = 'pricesense_console';
/** Sessions kept at most; beyond it the oldest go first (memory stays bounded whatever happens). */
const MAX_SESSIONS = 10_000;
/** How often the access file's mtime is looked at. */
const RELOAD_CHECK_MS = 1000;

export interface Principal {
  readonly identity: string;
  readonly role: Role;
  readonly via: 'bearer' | 'session' | 'proxy';
  /** The form token state-changing requests must echo; undefined for bearer requests, which need none. */
  readonly csrf?: string;
  readonly sessionId?: string;
}

interface Session {
  readonly id: string;
  readonly tokenSha256: string;
  readonly csrf: string;
  readonly expiresAt: number;
}

/** The parts of a request authentication looks at (Express's Request has them). */
export interface AuthRequest {
  readonly headers: Record<string, string | string[] | undefined>;
  /** Each header's values as sent, repeats apart (Node's IncomingMessage has it; `headers` joins repeats of most with ", "). */
  readonly headersDistinct?: Record<string, string[] | undefined>;
  readonly socket: { readonly remoteAddress?: string };
}

/** The access configuration is unusable (e.g. edited into invalid JSON): nobody gets in until it is fixed. */
export class AuthConfigError extends Error {}

/**
 * A proxy identity header arrived more than once: the proxy appended its value to one
 * the client sent instead of replacing it, so which one is the proxy's cannot be told.
 */
export class AmbiguousProxyHeaderError extends Error {}

function header(req: AuthRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The one value of a header the proxy sets; refused when the request carries it more than once. */
function proxyHeader(req: AuthRequest, name: string): string | undefined {
  const v = req.headersDistinct?.[name] ?? req.headers[name];
  const values = v === undefined ? [] : Array.isArray(v) ? v : [v];
  if (values.length > 1) {
    throw new AmbiguousProxyHeaderError(`the request carries ${name} ${values.length} times: the proxy must replace any copy the client sent, not add to it`);
  }
  return values[0];
}

export function parseCookies(headerValue: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (headerValue ?? '').split(';')) {
    const eq = part.indexOf('=');
    const key = eq > 0 ? part.slice(0, eq).trim() : '';
    if (key && !(key in out)) out[key] = part.slice(eq + 1).trim();
  }
  return out;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class Authenticator {
  private config: AuthConfig;
  private tokens: Map<string, TokenEntry>;
  private proxies: BlockList | undefined;
  private configError: string | undefined;
  private mtimeMs = 0;
  private lastCheck = 0;
  private readonly sessions = new Map<string, Session>();
  /** Keys the CSRF tokens of proxy-authenticated users (they have no session of ours). */
  private readonly secret = randomBytes(32);

  private constructor(
    readonly file: string,
    config: AuthConfig,
    mtimeMs: number,
    private readonly now: () => number,
  ) {
    this.config = config;
    this.tokens = new Map();
    this.apply(config);
    this.mtimeMs = mtimeMs;
    this.lastCheck = now();
  }

  /** Reads the access file; a missing or invalid file is a UserError (the console does not start without one). */
  static async open(file: string, now: () => number = Date.now): Promise<Authenticator> {
    const config = await readAuthConfig(file);
    const s = await stat(file);
    return new Authenticator(file, config, s.mtimeMs, now);
  }

  get proxyEnabled(): boolean {
    return !!this.config.proxy?.enabled;
  }

  get sessionTtlMs(): number {
    return (this.config.sessionTtlMinutes ?? DEFAULT_SESSION_TTL_MINUTES) * 60_000;
  }

  private apply(config: AuthConfig): void {
    this.config = config;
    this.tokens = new Map(config.tokens.map((t) => [t.sha256, t]));
    this.proxies = undefined;
    if (config.proxy?.enabled) {
      const list = new BlockList();
      for (const entry of config.proxy.trustedProxies) {
        const c = parseCidr(entry)!;
        list.addSubnet(c.address, c.prefix, c.family);
      }
      this.proxies = list;
    }
  }

  /** Picks up edits to the access file (new, revoked or re-roled tokens) without a restart. */
  private async refresh(): Promise<void> {
    const t = this.now();
    if (t - this.lastCheck < RELOAD_CHECK_MS) return;
    this.lastCheck = t;
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(this.file)).mtimeMs;
    } catch (err) {
      this.configError = `cannot read ${this.file}: ${(err as Error).message}`;
      return;
    }
    if (mtimeMs === this.mtimeMs && !this.configError) return;
    try {
      this.apply(await readAuthConfig(this.file));
      this.mtimeMs = mtimeMs;
      this.configError = undefined;
    } catch (err) {
      // Fail closed: a half-edited file must not leave a revoked token working.
      this.configError = err instanceof UserError ? err.message : String(err);
    }
  }

  /**
   * The caller, or undefined when the request carries no credentials. Wrong credentials
   * (an unknown token, an expired session) are also undefined: the answer is the same 401.
   */
  async authenticate(req: AuthRequest): Promise<Principal | undefined> {
    await this.refresh();
    if (this.configError) throw new AuthConfigError(this.configError);
    const auth = header(req, 'authorization');
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      const entry = m ? this.tokens.get(hashToken(m[1])) : undefined;
      return entry ? { identity: entry.identity, role: entry.role, via: 'bearer' } : undefined;
    }
    const fromProxy = this.fromProxy(req);
    if (fromProxy) return fromProxy;
    const id = parseCookies(header(req, 'cookie'))[SESSION_COOKIE];
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    const entry = this.tokens.get(session.tokenSha256);
    if (!entry || session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return { identity: entry.identity, role: entry.role, via: 'session', csrf: session.csrf, sessionId: id };
  }

  private fromProxy(req: AuthRequest): Principal | undefined {
    const proxy: ProxyConfig | undefined = this.config.proxy;
    if (!proxy?.enabled || !this.proxies) return undefined;
    const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
    const family = peer.includes(':') ? 'ipv6' : 'ipv4';
    if (!peer || !this.proxies.check(peer, family)) return undefined;
    const identity = proxyHeader(req, proxy.identityHeader)?.trim();
    const groupList = proxyHeader(req, proxy.groupsHeader);
    if (!identity) return undefined;
    const groups = (groupList ?? '')
      .split(',')
      .map((g) => g.trim())
      .filter(Boolean);
    const inAny = (list: readonly string[]): boolean => list.some((g) => groups.includes(g));
    let role: Role | undefined;
    if (inAny(proxy.approverGroups)) role = 'approver';
    else if (proxy.viewerGroups.length === 0 || inAny(proxy.viewerGroups)) role = 'viewer';
    if (!role) return undefined;
    const csrf = createHmac('sha256', this.secret).update(`proxy\u0000${identity}`).digest('base64url');
    return { identity, role, via: 'proxy', csrf };
  }

  /** Exchanges a token for a new session; undefined when the token is not valid. */
  async login(token: string): Promise<{ id: string; principal: Principal; maxAgeSeconds: number } | undefined> {
    await this.refresh();
    if (this.configError) throw new AuthConfigError(this.configError);
    const entry = this.tokens.get(hashToken(token.trim()));
    if (!entry) return undefined;
    this.sweep();
    const session: Session = {
      id: randomBytes(32).toString('base64url'),
      tokenSha256: entry.sha256,
      csrf: randomBytes(32).toString('base64url'),
      expiresAt: this.now() + this.sessionTtlMs,
    };
    this.sessions.set(session.id, session);
    return {
      id: session.id,
      principal: { identity: entry.identity, role: entry.role, via: 'session', csrf: session.csrf, sessionId: session.id },
      maxAgeSeconds: Math.floor(this.sessionTtlMs / 1000),
    };
  }

  logout(sessionId: string | undefined): void {
    if (sessionId) this.sessions.delete(sessionId);
  }

  /** Whether a state-changing request carries the right form token (bearer requests need none). */
  csrfValid(principal: Principal, submitted: unknown): boolean {
    if (principal.via === 'bearer') return true;
    return typeof submitted === 'string' && !!principal.csrf && sameSecret(submitted, principal.csrf);
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= t) this.sessions.delete(id);
    // Map iteration is insertion order: the first keys are the oldest sessions.
    for (const id of this.sessions.keys()) {
      if (this.sessions.size < MAX_SESSIONS) break;
      this.sessions.delete(id);
    }
  }
}
