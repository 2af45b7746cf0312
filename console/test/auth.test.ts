import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { addToken, AUTH_FORMAT, hashToken, parseAuthConfig, readAuthConfig, revokeTokens } from '../auth-config';
import { AuthConfigError, Authenticator, parseCookies, SESSION_COOKIE, type AuthRequest } from '../auth';

const req = (headers: Record<string, string> = {}, remoteAddress = '127.0.0.1'): AuthRequest => ({ headers, socket: { remoteAddress } });

describe('console access configuration', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-console-auth-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('adds tokens stored only as their SHA-256, owner-readable, and revokes them by identity', async () => {
    const file = path.join(dir, 'nested', 'auth.json');
    const a = await addToken(file, ' alice@example.com ', 'approver');
    const b = await addToken(file, 'bob', 'viewer');
    expect(a.token).toMatch(/^psc_[A-Za-z0-9_-]{43}$/);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(a.token);
    expect(text).not.toContain(b.token);
    const config = await readAuthConfig(file);
    expect(config.tokens.map((t) => [t.identity, t.role, t.sha256])).toEqual([
      ['alice@example.com', 'approver', hashToken(a.token)],
      ['bob', 'viewer', hashToken(b.token)],
    ]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await revokeTokens(file, 'alice@example.com')).toBe(1);
    expect((await readAuthConfig(file)).tokens.map((t) => t.identity)).toEqual(['bob']);
    expect(await revokeTokens(file, 'nobody')).toBe(0);
  });

  it('names the file and field of every mistake', () => {
    const f = 'auth.json';
    const bad = (doc: unknown) => () => parseAuthConfig(doc, f);
    expect(bad([])).toThrow('auth.json: expected a JSON object');
    expect(bad({ format: 'x', tokens: [] })).toThrow(`format must be "${AUTH_FORMAT}"`);
    expect(bad({ format: AUTH_FORMAT })).toThrow('tokens must be a list');
    expect(bad({ format: AUTH_FORMAT, tokens: [{ identity: 'a', role: 'admin', sha256: 'a'.repeat(64) }] })).toThrow("tokens[0].role must be one of viewer, approver, got \"admin\"");
    expect(bad({ format: AUTH_FORMAT, tokens: [{ identity: 'a', role: 'viewer', sha256: 'psc_plaintext' }] })).toThrow('tokens[0].sha256 must be 64 lowercase hex digits (the token\'s SHA-256; never the token itself)');
    expect(bad({ format: AUTH_FORMAT, tokens: [{ identity: ' ', role: 'viewer', sha256: 'a'.repeat(64) }] })).toThrow('tokens[0].identity must be a non-empty string');
    expect(bad({ format: AUTH_FORMAT, tokens: [], proxy: { enabled: true } })).toThrow('proxy.enabled needs proxy.trustedProxies');
    expect(bad({ format: AUTH_FORMAT, tokens: [], proxy: { enabled: true, trustedProxies: ['10.0.0.0/33'] } })).toThrow("proxy.trustedProxies entry '10.0.0.0/33' is not an IP address or CIDR block");
    expect(bad({ format: AUTH_FORMAT, tokens: [], proxy: { identityHeader: 'x forwarded' } })).toThrow('proxy.identityHeader must be an HTTP header name');
    expect(bad({ format: AUTH_FORMAT, tokens: [], sessionTtlMinutes: 0 })).toThrow('sessionTtlMinutes must be a number of minutes from 1 to 10080');
  });

  it('tells how to create the file when it is missing', async () => {
    await expect(readAuthConfig(path.join(dir, 'none.json'))).rejects.toThrow(/no console access configuration at .*none\.json: create a token with `pricesense console token --identity <you> --role approver/);
  });
});

describe('Authenticator', () => {
  let dir: string;
  let file: string;
  let now: number;
  let approver: string;
  let viewer: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-console-authn-'));
    file = path.join(dir, 'auth.json');
    approver = (await addToken(file, 'alice', 'approver')).token;
    viewer = (await addToken(file, 'bob', 'viewer')).token;
    now = Date.parse('2024-05-01T10:00:00Z');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const open = () => Authenticator.open(file, () => now);
  const cookie = (id: string) => req({ cookie: `other=1; ${SESSION_COOKIE}=${id}` });

  /** Rewrites the file with a later mtime, as an editor would. */
  async function edit(doc: unknown): Promise<void> {
    await writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    const later = new Date(Date.now() + 5000);
    await utimes(file, later, later);
    now += 2000; // past the reload check interval
  }

  it('accepts a known bearer token with its role; anything else is no one', async () => {
    const auth = await open();
    expect(await auth.authenticate(req({ authorization: `Bearer ${approver}` }))).toEqual({ identity: 'alice', role: 'approver', via: 'bearer' });
    expect(await auth.authenticate(req({ authorization: `bearer ${viewer}` }))).toMatchObject({ identity: 'bob', role: 'viewer' });
    expect(await auth.authenticate(req({ authorization: `Bearer ${approver}x` }))).toBeUndefined();
    expect(await auth.authenticate(req({ authorization: `Basic ${approver}` }))).toBeUndefined();
    expect(await auth.authenticate(req())).toBeUndefined();
  });

  it('turns a token into a session with its own CSRF token, which expires', async () => {
    const auth = await open();
    expect(await auth.login('psc_wrong')).toBeUndefined();
    const s = (await auth.login(` ${viewer} `))!;
    expect(s.maxAgeSeconds).toBe(8 * 3600);
    const p = (await auth.authenticate(cookie(s.id)))!;
    expect(p).toMatchObject({ identity: 'bob', role: 'viewer', via: 'session', sessionId: s.id });
    expect(p.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.csrfValid(p, p.csrf)).toBe(true);
    expect(auth.csrfValid(p, `${p.csrf}x`)).toBe(false);
    expect(auth.csrfValid(p, undefined)).toBe(false);
    expect(auth.csrfValid({ identity: 'x', role: 'viewer', via: 'bearer' }, undefined)).toBe(true);
    expect(await auth.authenticate(cookie('forged'))).toBeUndefined();
    now += 8 * 3600 * 1000;
    expect(await auth.authenticate(cookie(s.id))).toBeUndefined();
  });

  it('ends sessions on logout, and on revocation or re-roling of their token when the file changes', async () => {
    const auth = await open();
    const a = (await auth.login(approver))!;
    const b = (await auth.login(viewer))!;
    const c = (await auth.login(viewer))!;
    auth.logout(c.id);
    expect(await auth.authenticate(cookie(c.id))).toBeUndefined();
    const config = JSON.parse(await readFile(file, 'utf8'));
    await edit({ ...config, tokens: [{ ...config.tokens[1], role: 'approver' }] });
    expect(await auth.authenticate(cookie(a.id))).toBeUndefined();
    expect(await auth.authenticate(cookie(b.id))).toMatchObject({ identity: 'bob', role: 'approver' });
    expect(await auth.authenticate(req({ authorization: `Bearer ${approver}` }))).toBeUndefined();
  });

  it('fails closed when the file is edited into something invalid', async () => {
    const auth = await open();
    await edit('{ "format": ');
    await expect(auth.authenticate(req({ authorization: `Bearer ${approver}` }))).rejects.toThrow(AuthConfigError);
    await expect(auth.login(approver)).rejects.toThrow(/is not valid JSON/);
  });

  it('trusts proxy identity headers only when enabled and only from the proxy, mapping groups to roles', async () => {
    const config = JSON.parse(await readFile(file, 'utf8'));
    const proxy = { enabled: true, trustedProxies: ['10.0.0.0/8', '::1'], approverGroups: ['ml-approvers'], viewerGroups: ['data-science'] };
    await writeFile(file, JSON.stringify({ ...config, proxy }));
    const auth = await open();
    const headers = (groups: string) => ({ 'x-forwarded-email': 'carol@example.com', 'x-forwarded-groups': groups });
    expect(await auth.authenticate(req(headers('data-science, ml-approvers'), '10.1.2.3'))).toMatchObject({ identity: 'carol@example.com', role: 'approver', via: 'proxy' });
    expect(await auth.authenticate(req(headers('data-science'), '::ffff:10.9.9.9'))).toMatchObject({ role: 'viewer' });
    expect(await auth.authenticate(req(headers('data-science'), '::1'))).toMatchObject({ role: 'viewer' });
    expect(await auth.authenticate(req(headers('marketing'), '10.1.2.3'))).toBeUndefined();
    // Anyone else sending the same headers is not the proxy.
    expect(await auth.authenticate(req(headers('ml-approvers'), '192.168.1.5'))).toBeUndefined();
    const p = (await auth.authenticate(req(headers('ml-approvers'), '10.1.2.3')))!;
    expect(auth.csrfValid(p, p.csrf)).toBe(true);
    expect(auth.csrfValid(p, 'x')).toBe(false);

    await writeFile(file, JSON.stringify({ ...config, proxy: { ...proxy, enabled: false } }));
    const off = await open();
    expect(await off.authenticate(req(headers('ml-approvers'), '10.1.2.3'))).toBeUndefined();
  });

  it('refuses a proxy identity or groups header sent more than once (a client copy the proxy appended to), over real HTTP', async () => {
    const config = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...config, proxy: { enabled: true, trustedProxies: ['127.0.0.1', '::1'], approverGroups: ['approvers'], viewerGroups: [] } }));
    const auth = await open();
    const server = http.createServer((r, res) => {
      auth.authenticate(r).then(
        (p) => res.end(JSON.stringify(p ? { identity: p.identity, role: p.role } : null)),
        (err: Error) => res.end(JSON.stringify({ error: err.constructor.name, message: err.message })),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const get = (headers: Record<string, string | string[]>) =>
      new Promise<unknown>((resolve, reject) => {
        const r = http.request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/', headers }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(JSON.parse(body)));
        });
        r.on('error', reject);
        r.end();
      });
    try {
      expect(await get({ 'x-forwarded-email': 'realuser@example.com', 'x-forwarded-groups': 'staff' })).toEqual({ identity: 'realuser@example.com', role: 'viewer' });
      expect(await get({ 'x-forwarded-email': 'realuser@example.com', 'x-forwarded-groups': ['approvers', 'staff'] })).toEqual({
        error: 'AmbiguousProxyHeaderError',
        message: 'the request carries x-forwarded-groups 2 times: the proxy must replace any copy the client sent, not add to it',
      });
      expect(await get({ 'x-forwarded-email': ['attacker@example.com', 'realuser@example.com'], 'x-forwarded-groups': 'staff' })).toMatchObject({ error: 'AmbiguousProxyHeaderError' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('parses cookies leniently, first value wins', () => {
    expect(parseCookies('a=1; b=2=3; a=4; =x; junk')).toEqual({ a: '1', b: '2=3' });
    expect(parseCookies(undefined)).toEqual({});
  });
});
