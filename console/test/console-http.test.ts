/**
 * The console over HTTP on a registry of real trained versions: authentication,
 * authorisation, the cross-site defences, decisions and their audit entries, the
 * verify action, the model card (also through the CLI), and the serving markers
 * and Live page from an API's /metrics. The browser suite covers rendering.
 */
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import MarkdownIt from 'markdown-it';
import pino from 'pino';
import request from 'supertest';
import { ApiMetrics } from '../../api/metrics';
import { startDemoConsole, type DemoSummary } from '../../cli/demo';
import { runCli } from '../../cli/test/run-cli';
import { LocalLake } from '../../etl/lake/local';
import type { ReadOptions } from '../../etl/lake/types';
import { LocalRegistry, type ModelVersion } from '../../model/registry';
import { createConsoleApp, parsePublicUrl } from '../app';
import { versionsPage } from '../pages/versions';
import { readAuthConfig } from '../auth-config';
import { Authenticator, SESSION_COOKIE } from '../auth';
import { buildModelCard, cardHtmlDocument, cardMarkdown } from '../card';
import { startConsole } from '../server';
import { VersionData } from '../version-data';
import { consoleFixture, writeAuthFile, type ConsoleFixture, type FixtureTokens } from './fixtures';

const silent = pino({ level: 'silent' });

describe('registry console over HTTP', () => {
  let dir: string;
  let fx: ConsoleFixture;
  let tokens: FixtureTokens;
  let copies = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-console-http-'));
    fx = await consoleFixture(dir);
    tokens = await writeAuthFile(dir);
  }, 120_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A console on a private copy of the fixture registry (decisions change it). */
  async function consoleApp(options: { api?: URL; lake?: boolean; registry?: LocalRegistry } = {}) {
    let registry = options.registry;
    if (!registry) {
      const copy = path.join(dir, `registry-copy-${++copies}`);
      await cp(fx.registryDir, copy, { recursive: true });
      registry = new LocalRegistry(copy);
    }
    const auth = await Authenticator.open(tokens.file);
    const lake = options.lake === false ? undefined : new LocalLake(fx.lakeDir);
    return { app: createConsoleApp({ registry, auth, logger: silent, lake, api: options.api }), registry };
  }

  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const csrfOf = (page: string): string => /name="_csrf" value="([^"]*)"/.exec(page)![1];
  /** One version's row of the versions table. */
  const rowOf = (page: string, version: number): string => new RegExp(`<tr data-version="${version}">[\\s\\S]*?</tr>`).exec(page)![0];

  it('answers 401 with the sign-in page to anyone without valid credentials; health and assets are public', async () => {
    const { app, registry } = await consoleApp({ api: new URL('http://localhost:1') });
    for (const url of ['/', '/versions/1', '/compare?a=1&b=2', '/versions/2/review', '/versions/2/card', '/nowhere', '/login']) {
      const res = await request(app).get(url);
      expect(res.status).toBe(url === '/login' ? 200 : 401);
      if (url !== '/login') expect(res.headers['www-authenticate']).toBe('Bearer realm="pricesense-console"');
      expect(res.text).toContain('<form method="post" action="/login">');
      expect(res.text).not.toContain('approver@example.com');
      // Nothing about where the registry, lake or API live before signing in.
      for (const secret of [registry.uri, fx.lakeDir, 'localhost:1']) expect(res.text).not.toContain(secret);
    }
    expect((await request(app).get('/').set(bearer(tokens.viewer))).text).toContain(`registry <code>${registry.uri}</code>`);
    expect((await request(app).get('/').set(bearer('psc_not-a-token'))).status).toBe(401);
    expect((await request(app).post('/versions/2/approve').type('form').send({ note: 'x' })).status).toBe(401);
    expect((await request(app).get('/healthz')).body).toEqual({ status: 'ok' });
    const css = await request(app).get('/assets/console.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('sends a strict CSP and security headers, and pages load nothing from another origin', async () => {
    const { app } = await consoleApp();
    const res = await request(app).get('/versions/2').set(bearer(tokens.viewer));
    expect(res.status).toBe(200);
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none';script-src 'self';style-src 'self';img-src 'self' data:;connect-src 'self';form-action 'self';base-uri 'none';frame-ancestors 'none';object-src 'none'",
    );
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['referrer-policy']).toBe('same-origin');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-powered-by']).toBeUndefined();
    const refs = [...res.text.matchAll(/\s(?:src|href|action)="([^"]*)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(r).toMatch(/^(\/(?!\/)|#)/);
    expect(res.text).not.toMatch(/\sstyle="/); // the CSP forbids inline styles
  });

  it('lists versions with status, metrics, gate verdict and the served marker; filters by status', async () => {
    const { app } = await consoleApp();
    const all = await request(app).get('/').set(bearer(tokens.viewer));
    expect([...all.text.matchAll(/<tr data-version="(\d+)">/g)].map((m) => m[1])).toEqual(['4', '3', '2', '1']);
    expect(rowOf(all.text, 1)).toMatch(/data-marker="served"[\s\S]*?data-status="Approved"/);
    expect(rowOf(all.text, 2)).not.toContain('data-marker');
    expect(rowOf(all.text, 3)).toContain('data-gates="forced"');
    expect(all.text).toContain('data-chart="version-metrics"');
    const pending = await request(app).get('/?status=pending').set(bearer(tokens.viewer));
    expect([...pending.text.matchAll(/<tr data-version="(\d+)">/g)].map((m) => m[1])).toEqual(['3', '2']);
    const bad = await request(app).get('/?status=shipped').set(bearer(tokens.viewer));
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('unknown status &#39;shipped&#39;');
  });

  it("reads the lake's gold manifest once per version page and once per comparison", async () => {
    const { app } = await consoleApp();
    const reads = jest.spyOn(VersionData.prototype, 'goldManifest'); // counts; the real read runs
    try {
      const page = await request(app).get('/versions/2').set(bearer(tokens.viewer));
      expect(page.status).toBe(200);
      expect(page.text).toContain('data-chart="importance"');
      expect(reads).toHaveBeenCalledTimes(1);
      expect((await request(app).get('/compare?a=1&b=2').set(bearer(tokens.viewer))).status).toBe(200);
      expect(reads).toHaveBeenCalledTimes(2);
    } finally {
      reads.mockRestore();
    }
  });

  it('reuses the registry listing between page views, and reads afresh after a decision made through it', async () => {
    const copy = path.join(dir, `registry-copy-${++copies}`);
    await cp(fx.registryDir, copy, { recursive: true });
    /** The real registry, counting the listing calls a page view costs. */
    class Counting extends LocalRegistry {
      lists = 0;
      override list(filter?: Parameters<LocalRegistry['list']>[0]): Promise<ModelVersion[]> {
        this.lists++;
        return super.list(filter);
      }
    }
    const registry = new Counting(copy);
    const { app } = await consoleApp({ registry });
    const views = await Promise.all([1, 2, 3].map(() => request(app).get('/').set(bearer(tokens.viewer))));
    expect(views.map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await request(app).get('/compare').set(bearer(tokens.viewer))).status).toBe(200);
    expect(registry.lists).toBe(1);
    // A decision made through this console shows on the next page view, not after the reuse window.
    const review = await request(app).get('/versions/2/review').set(bearer(tokens.approver));
    expect(review.status).toBe(200);
    const decided = await request(app).post('/versions/2/reject').set(bearer(tokens.approver)).type('form').send({ note: 'no', expected: 'PendingManualApproval' });
    expect(decided.status).toBe(303);
    expect(rowOf((await request(app).get('/').set(bearer(tokens.viewer))).text, 2)).toContain('data-status="Rejected"');
    expect(registry.lists).toBe(2);
  });

  it('pages the versions table, newest first, keeping the status filter in the links', async () => {
    const v1 = await fx.registry.show(1);
    const versions = [1, 2, 3, 4, 5].map((n) => ({ ...v1, version: n }));
    const principal = { identity: 'v', role: 'viewer' as const, via: 'bearer' as const };
    const render = (number: number) => versionsPage({ site: { registryUri: 'r' }, principal, versions, all: versions, status: 'Approved', serving: { latestApproved: 1, api: undefined }, page: { number, size: 2 } });
    const rowsOf = (page: string) => [...page.matchAll(/<tr data-version="(\d+)">/g)].map((m) => Number(m[1]));
    expect(rowsOf(render(1))).toEqual([5, 4]);
    expect(render(1)).toContain('<a rel="next" href="/?status=Approved&amp;page=2">older</a>');
    expect(rowsOf(render(2))).toEqual([3, 2]);
    expect(rowsOf(render(3))).toEqual([1]);
    expect(render(3)).not.toContain('rel="next"');
    expect(rowsOf(render(99))).toEqual([1]);
  });

  it('shows a version with its charts, lineage, audit trail and model card', async () => {
    const { app, registry } = await consoleApp();
    const v = await registry.show(2);
    const res = await request(app).get('/versions/2').set(bearer(tokens.viewer));
    expect(res.status).toBe(200);
    const test = v.metrics.test as { calibration: { bins: { count: number }[] } };
    const validation = v.metrics.validation as typeof test;
    const used = (e: typeof test) => e.calibration.bins.filter((b) => b.count > 0).length;
    const charts = Object.fromEntries([...res.text.matchAll(/data-chart="([a-z-]+)" id="([^"]+)">[\s\S]*?data-marks="(\d+)"/g)].map((m) => [m[2], [m[1], Number(m[3])]]));
    expect(charts['confusion-test']).toEqual(['confusion', 9]);
    expect(charts['per-class']).toEqual(['per-class', 9]);
    expect(charts.reliability).toEqual(['reliability', used(test) + used(validation)]);
    expect(charts.importance).toEqual(['importance', 17 * 2]); // impurity and Saabas (the lake is given)
    expect(Object.values(charts).filter(([kind]) => kind === 'distribution')).toHaveLength(17);
    expect(res.text).toContain(`<code data-digest="artifact">${v.artifactSha256}</code>`);
    expect(res.text).toContain("= the lake's current gold");
    expect(res.text).toMatch(/<tr data-audit="0" data-to="PendingManualApproval" data-by="trainer-bot">/);
    expect(res.text).toContain('id="card-intended-use"');
    expect(res.text).toContain('Saabas contributions on the first');

    const noLake = await consoleApp({ lake: false });
    const without = await request(noLake.app).get('/versions/2').set(bearer(tokens.viewer));
    expect(without.text).toMatch(/data-chart="importance" id="importance">[\s\S]*?data-marks="17"/);
    expect(without.text).toContain('start the console with --lake to compute it on the test split');

    expect((await request(app).get('/versions/99').set(bearer(tokens.viewer))).status).toBe(404);
    expect((await request(app).get('/versions/abc').set(bearer(tokens.viewer))).status).toBe(404);
  });

  it('compares two versions: deltas against the gates, both confusion matrices and calibrations, the lineage diff', async () => {
    const { app } = await consoleApp();
    const res = await request(app).get('/compare?a=1&b=2').set(bearer(tokens.viewer));
    expect(res.status).toBe(200);
    for (const id of ['compare-confusion-a', 'compare-confusion-b', 'compare-reliability-a', 'compare-reliability-b', 'compare-reliability-both', 'compare-deltas']) {
      expect(res.text).toContain(`id="${id}"`);
    }
    expect(res.text).toMatch(/<tr data-metric="accuracy">[\s\S]*?≥ 0\.6000/);
    expect(res.text).toMatch(/<tr class="differs" data-field="hyperparameter trees" data-differs="true">/);
    expect(res.text).toMatch(/<tr class="" data-field="dataset manifest" data-differs="false">/);
    const form = await request(app).get('/compare').set(bearer(tokens.viewer));
    expect(form.text).toContain('<form class="filters" method="get" action="/compare">');
  });

  it('refuses decisions from a viewer with 403, and changes nothing', async () => {
    const { app, registry } = await consoleApp();
    const page = await request(app).get('/versions/2/review').set(bearer(tokens.viewer));
    expect(page.text).toContain('with the <strong>viewer</strong> role: only approvers can approve or reject');
    expect(page.text).not.toContain('action="/versions/2/approve"');
    for (const decision of ['approve', 'reject']) {
      const res = await request(app).post(`/versions/2/${decision}`).set(bearer(tokens.viewer)).type('form').send({ note: 'looks fine' });
      expect(res.status).toBe(403);
      expect(res.text).toContain(`viewer@example.com has the viewer role: only approvers can ${decision} a version`);
    }
    expect((await registry.show(2)).status).toBe('PendingManualApproval');
  });

  it('lets an approver sign in and approve; the audit trail records the signed-in identity and the served version moves', async () => {
    const { app, registry } = await consoleApp();
    const agent = request.agent(app);
    const bad = await agent.post('/login').type('form').send({ token: 'psc_wrong', next: '/' });
    expect(bad.status).toBe(401);
    const login = await agent.post('/login').type('form').send({ token: tokens.approver, next: '/versions/2/review' });
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/versions/2/review');
    const cookie = login.headers['set-cookie'][0];
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; Max-Age=28800; Path=/; Expires=[^;]+; HttpOnly; SameSite=Strict$`));
    const review = await agent.get('/versions/2/review');
    expect(review.text).toContain('Deciding as <strong>approver@example.com</strong>');
    const csrf = csrfOf(review.text);

    // The session cookie alone is not enough: the form's token must come along.
    expect((await agent.post('/versions/2/approve').type('form').send({ note: 'ok', expected: 'PendingManualApproval' })).status).toBe(403);
    expect((await agent.post('/versions/2/approve').type('form').send({ note: 'ok', _csrf: 'forged', expected: 'PendingManualApproval' })).status).toBe(403);
    // A page on another origin cannot post here even with the token (Origin / Fetch Metadata).
    const foreign = await agent.post('/versions/2/approve').set('Origin', 'https://evil.example').type('form').send({ note: 'ok', _csrf: csrf });
    expect(foreign.status).toBe(403);
    expect(foreign.text).toContain('a request from https://evil.example cannot change anything here');
    expect((await agent.post('/versions/2/approve').set('Sec-Fetch-Site', 'same-site').type('form').send({ note: 'ok', _csrf: csrf })).status).toBe(403);
    expect((await registry.show(2)).status).toBe('PendingManualApproval');

    // An empty note is refused, and the page keeps what was typed.
    const empty = await agent.post('/versions/2/approve').type('form').send({ note: '   ', _csrf: csrf, expected: 'PendingManualApproval' });
    expect(empty.status).toBe(400);
    expect(empty.text).toContain('A note is required');

    const ok = await agent.post('/versions/2/approve').set('Origin', 'http://127.0.0.1').set('Host', '127.0.0.1').type('form').send({ note: 'macro-F1 +0.05 <b>reviewed</b>', _csrf: csrf, expected: 'PendingManualApproval', by: 'someone-else' });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/versions/2/review?done=1');
    const v2 = await registry.show(2);
    expect(v2.status).toBe('Approved');
    expect(v2.audit[v2.audit.length - 1]).toMatchObject({ by: 'approver@example.com', from: 'PendingManualApproval', to: 'Approved', note: 'macro-F1 +0.05 <b>reviewed</b>' });
    const done = await agent.get('/versions/2/review?done=1');
    expect(done.text).toContain('Approved by approver@example.com');
    expect(done.text).toContain('macro-F1 +0.05 &lt;b&gt;reviewed&lt;/b&gt;');
    const list = await agent.get('/');
    expect(rowOf(list.text, 2)).toContain('data-marker="served"');
    expect(rowOf(list.text, 1)).not.toContain('data-marker');

    // Signing out ends the session.
    const out = await agent.post('/logout').type('form').send({ _csrf: csrf });
    expect(out.status).toBe(303);
    expect((await agent.get('/')).status).toBe(401);
  });

  it('behind a proxy that ends TLS and rewrites Host, accepts sign-in and decisions from --public-url only', async () => {
    const { registry } = await consoleApp();
    const app = createConsoleApp({ registry, auth: await Authenticator.open(tokens.file), logger: silent, publicUrl: parsePublicUrl('https://console.example.com') });
    // What the console sees: plain http, the proxy's upstream Host; the browser sent its own Origin.
    const viaProxy = { Origin: 'https://console.example.com', Host: 'console-svc:8090', 'Sec-Fetch-Site': 'same-origin' };
    const login = await request(app).post('/login').set(viaProxy).type('form').send({ token: tokens.approver, next: '/versions/2/review' });
    expect(login.status).toBe(303);
    const setCookie = login.headers['set-cookie'][0];
    expect(setCookie).toMatch(/; Secure; SameSite=Strict$/);
    const session = { ...viaProxy, Cookie: setCookie.split(';')[0] };
    // The origin the request itself names is not ours any more.
    expect((await request(app).post('/login').set({ Origin: 'http://console-svc:8090', Host: 'console-svc:8090' }).type('form').send({ token: tokens.approver })).status).toBe(403);
    const csrf = csrfOf((await request(app).get('/versions/2/review').set(session)).text);
    const ok = await request(app).post('/versions/2/approve').set(session).type('form').send({ note: 'ok', _csrf: csrf, expected: 'PendingManualApproval' });
    expect(ok.status).toBe(303);
    expect((await registry.show(2)).status).toBe('Approved');
    expect(() => parsePublicUrl('console.example.com')).toThrow("--public-url 'console.example.com' is not a URL");
    expect(() => parsePublicUrl('https://console.example.com/app')).toThrow('must be an origin only');
  });

  it('needs an explicit override and a reason to approve a version whose gates failed, and records it as one', async () => {
    const { app, registry } = await consoleApp();
    const page = await request(app).get('/versions/3/review').set(bearer(tokens.approver));
    expect(page.text).toContain('<legend>Quality gates failed</legend>');
    const send = (form: Record<string, string>) => request(app).post('/versions/3/approve').set(bearer(tokens.approver)).type('form').send({ expected: 'PendingManualApproval', ...form });
    const noOverride = await send({ note: 'ship it' });
    expect(noOverride.status).toBe(400);
    expect(noOverride.text).toContain('failed its quality gates');
    expect((await send({ note: 'ship it', override: 'yes' })).status).toBe(400);
    expect((await registry.show(3)).status).toBe('PendingManualApproval');
    const ok = await send({ note: 'ship it', override: 'yes', overrideReason: 'needed for the pricing pilot; strict gates are wrong for it' });
    expect(ok.status).toBe(303);
    const last = (await registry.show(3)).audit.at(-1)!;
    expect(last.by).toBe('approver@example.com');
    expect(last.to).toBe('Approved');
    expect(last.note).toBe('ship it');
    expect(last.override).toEqual({ reason: 'needed for the pricing pilot; strict gates are wrong for it', gates: expect.stringMatching(/^quality gates failed on test: accuracy/) });
  });

  it('refuses a decision made on a stale page, and an impossible transition, with 409', async () => {
    const { app, registry } = await consoleApp();
    const stale = await request(app).post('/versions/1/reject').set(bearer(tokens.approver)).type('form').send({ note: 'roll back', expected: 'PendingManualApproval' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('v1 changed from PendingManualApproval to Approved while you were reviewing it');
    const impossible = await request(app).post('/versions/4/reject').set(bearer(tokens.approver)).type('form').send({ note: 'again', expected: 'Rejected' });
    expect(impossible.status).toBe(409);
    expect(impossible.text).toContain('version 4 is already Rejected');
    const unsaid = await request(app).post('/versions/1/reject').set(bearer(tokens.approver)).type('form').send({ note: 'roll back' });
    expect(unsaid.status).toBe(400);
    expect(unsaid.text).toContain('The form does not say which status of v1 you decided on');
    expect((await registry.show(1)).status).toBe('Approved');
  });

  it('refuses a decision when another one lands between reading the version and writing the change (the registry checks atomically)', async () => {
    const copy = path.join(dir, `registry-copy-${++copies}`);
    await cp(fx.registryDir, copy, { recursive: true });
    /** A reject by someone else lands right after the console read v2 to decide on it. */
    class RejectedMeanwhile extends LocalRegistry {
      armed = true;
      override async show(version: number): Promise<ModelVersion> {
        const v = await super.show(version);
        if (this.armed && version === 2) {
          this.armed = false;
          await new LocalRegistry(copy).reject(2, 'not this one', 'bob@example.com');
        }
        return v;
      }
    }
    const registry = new RejectedMeanwhile(copy);
    const app = createConsoleApp({ registry, auth: await Authenticator.open(tokens.file), logger: silent });
    const res = await request(app).post('/versions/2/approve').set(bearer(tokens.approver)).type('form').send({ note: 'ship', expected: 'PendingManualApproval' });
    expect(res.status).toBe(409);
    expect(res.text).toContain('v2 changed from PendingManualApproval to Rejected while you were reviewing it (by bob@example.com at');
    const v2 = await new LocalRegistry(copy).show(2);
    expect(v2.status).toBe('Rejected');
    expect(v2.audit).toHaveLength(2);
  });

  it('verifies an artifact digest, and reports a tampered artifact with both digests', async () => {
    const { app, registry } = await consoleApp();
    const ok = await request(app).post('/versions/2/verify').set(bearer(tokens.viewer)).type('form').send({});
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('data-verify="ok"');
    const v = await registry.show(2);
    expect(ok.text).toContain(`stored artifact hashes to its registered SHA-256 <code>${v.artifactSha256}</code>`);
    const bytes = await readFile(v.artifactUri);
    const tampered = Buffer.concat([bytes, Buffer.from(' ')]);
    await writeFile(v.artifactUri, tampered);
    // Within the reuse window the earlier result stands (each check re-reads the artifact)...
    const again = await request(app).post('/versions/2/verify').set(bearer(tokens.viewer)).type('form').send({});
    expect(again.text).toContain('data-verify="ok"');
    // ...a fresh console checks again, through the registry's verify.
    const { app: fresh } = await consoleApp({ registry });
    const bad = await request(fresh).post('/versions/2/verify').set(bearer(tokens.viewer)).type('form').send({});
    expect(bad.text).toContain('data-verify="mismatch"');
    expect(bad.text).toContain(`<li data-problem>artifact ${v.artifactUri} hashes to ${createHash('sha256').update(tampered).digest('hex')}, registered ${v.artifactSha256}</li>`);
  });

  it('verifies the hash chain: an edited audit entry fails Verify and the version page', async () => {
    const { app, registry } = await consoleApp();
    const file = path.join(registry.uri, 'versions', '000004', 'audit', '000002.json');
    const entry = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...entry, note: 'edited' }) + '\n');
    const bad = await request(app).post('/versions/4/verify').set(bearer(tokens.viewer)).type('form').send({});
    expect(bad.status).toBe(409);
    expect(bad.text).toContain('Verification FAILED for v4');
    expect(bad.text).toMatch(/data-error-status="409">entry 2 does not match the digest [^<]*it was altered\. The version is not served while this holds/);
    expect((await request(app).get('/versions/4').set(bearer(tokens.viewer))).text).toContain('audit trail does not verify');
  });

  it('keeps a storage engine’s own error message out of pages and the card (logged instead)', async () => {
    const copy = path.join(dir, `registry-copy-${++copies}`);
    await cp(fx.registryDir, copy, { recursive: true });
    /** The real lake, whose gold manifest read fails as an SDK would: with an internal message. */
    class FailingLake extends LocalLake {
      override async read(key: string, options?: ReadOptions): Promise<Buffer> {
        if (key.includes('gold')) throw new Error('SdkInternal: socket hang up at TLSSocket.onConnectEnd (internal/bucket-7f3a)');
        return super.read(key, options);
      }
    }
    const logged: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
    const app = createConsoleApp({ registry: new LocalRegistry(copy), auth: await Authenticator.open(tokens.file), logger, lake: new FailingLake(fx.lakeDir) });
    for (const url of ['/versions/1', '/versions/1/card?format=md']) {
      const res = await request(app).get(url).set(bearer(tokens.viewer));
      expect(res.status).toBe(200);
      expect(res.text).not.toContain('SdkInternal');
      expect(res.text).toMatch(/reading the lake(&#39;|')s gold manifest failed with an internal error \(the details are in the console(&#39;|')s log\)/);
    }
    expect(logged.join('')).toContain('SdkInternal: socket hang up');
  });

  it('serves the model card, and the CLI writes the same card', async () => {
    const { app } = await consoleApp();
    const md = await request(app).get('/versions/1/card?format=md').set(bearer(tokens.viewer));
    expect(md.headers['content-type']).toBe('text/markdown; charset=utf-8');
    expect(md.headers['content-disposition']).toBe('attachment; filename="model-card-v1.md"');
    for (const heading of ['## Model details', '## Intended use', '## Training data', '## Evaluation by class', '## Calibration', '## Quality gates', '## Known limits', '## Approval history']) {
      expect(md.text).toContain(heading);
    }
    expect(md.text).toMatch(/\| train \| [\d,]+ \|/);
    expect(md.text).toContain('| PendingManualApproval → Approved | gates passed; reviewed with pricing |');

    const cli = await runCli(['registry', 'card', '1', '--registry', fx.registryDir, '--lake', fx.lakeDir]);
    expect(cli.code).toBe(0);
    const strip = (t: string) => t.replace(/generated \S+\./, '');
    expect(strip(cli.out)).toBe(strip(md.text).replace(/Registry \S+;/, `Registry ${fx.registryDir};`));
    const out = path.join(dir, 'card.html');
    const html = await runCli(['registry', 'card', 'latest', '--format', 'html', '--out', out, '--registry', fx.registryDir]);
    expect(html.out).toBe(`wrote the model card of version 1 (html) to ${out}\n`);
    const doc = await readFile(out, 'utf8');
    expect(doc).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(doc).toContain('<h2 id="card-approval-history">Approval history</h2>');
    expect(doc).toContain('The data set&#39;s own manifest was not read');
    const bad = await runCli(['registry', 'card', '1', '--format', 'pdf', '--registry', fx.registryDir]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("option '--format <format>' argument 'pdf' is invalid. Allowed choices are md, html.");
  });

  it('renders hostile registry content in the model card as text, in Markdown (through a real renderer) and HTML', async () => {
    const { app, registry } = await consoleApp();
    const v1 = await registry.show(1);
    const script = '<script>alert(1)</script>';
    const img = '<img src=x onerror=alert(1)>';
    const link = '[x](javascript:alert(1)) ![i](https://evil.example/p.png) **bold** `code` &lt;b&gt;';
    const forest = path.join(dir, `hostile-${copies}.json`);
    await cp(v1.artifactUri, forest);
    const v = await registry.register(forest, { by: img, note: `${script} ${link}` });
    await registry.approve(v.version, `# heading\n- item | cell ${script}`, `${img}\n1. list`);
    const md = await request(app).get(`/versions/${v.version}/card?format=md`).set(bearer(tokens.viewer));
    expect(md.status).toBe(200);
    const cli = await runCli(['registry', 'card', String(v.version), '--registry', registry.uri]);
    expect(cli.code).toBe(0);

    // Feature, class and lineage strings a forest or its registration could carry.
    const data = new VersionData(registry, new LocalLake(fx.lakeDir));
    const insights = await data.insights(v);
    const card = buildModelCard({
      version: { ...v, lineage: { ...v.lineage, codeVersion: `${img}[c](javascript:1)`, hyperparameters: { [script]: '**x**' } } },
      insights: { ...insights, classes: insights.classes.map((c) => `${c}${script}`), features: insights.features.map((f) => ({ ...f, name: `${f.name}${img}` })) },
      gold: `${script} cannot read`,
      registryUri: `${img}`,
      generatedAt: '2024-01-01T00:00:00.000Z',
    });
    const markdownIt = new MarkdownIt({ html: true, linkify: true });
    for (const text of [md.text, cli.out, cardMarkdown(card)]) {
      const rendered = markdownIt.render(text);
      expect(rendered).not.toMatch(/<(script|img|strong|em|code|ol|h[3-6])\b/i);
      // A bare http(s) URL in a note is autolinked by GFM-style renderers (linkify); nothing else becomes a link.
      expect(rendered).not.toMatch(/<a\b(?! href="https:\/\/evil\.example\/p\.png">)/i);
      expect(rendered).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(rendered).toContain('&lt;img src=x onerror=alert(1)&gt;');
    }
    expect(markdownIt.render(md.text)).toContain('[x](javascript:alert(1))');
    // Each row of the approval history stays one row of four cells.
    expect(md.text).toContain('| \\# heading - item \\| cell &lt;script&gt;alert(1)&lt;/script&gt; |');

    const htmlDoc = cardHtmlDocument(card);
    const page = await request(app).get(`/versions/${v.version}`).set(bearer(tokens.viewer));
    for (const doc of [htmlDoc, page.text, (await request(app).get(`/versions/${v.version}/card?format=html`).set(bearer(tokens.viewer))).text]) {
      expect(doc).not.toContain(script);
      expect(doc).not.toContain(img);
    }
    expect(htmlDoc).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('creates and revokes tokens from the CLI; a running console picks them up', async () => {
    const file = path.join(dir, 'cli-auth.json');
    const made = await runCli(['console', 'token', '--identity', 'dana@example.com', '--role', 'approver', '--auth', file, '--json']);
    expect(made.code).toBe(0);
    const { token, sha256 } = JSON.parse(made.out);
    expect(await readFile(file, 'utf8')).toContain(sha256);
    const running = await startConsole({ registry: fx.registryDir, auth: file, port: 0, logger: silent });
    try {
      const page = await fetch(`${running.url}/`, { headers: bearer(token) });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('dana@example.com · approver');
      const revoked = await runCli(['console', 'token', '--revoke', 'dana@example.com', '--auth', file]);
      expect(revoked.out).toBe(`removed 1 token(s) of dana@example.com from ${file}\n`);
      await new Promise((r) => setTimeout(r, 1100)); // the access file is looked at once a second
      expect((await fetch(`${running.url}/`, { headers: bearer(token) })).status).toBe(401);
      await expect(startConsole({ registry: fx.registryDir, auth: file, port: running.port, logger: silent })).rejects.toThrow(`cannot listen on 127.0.0.1:${running.port}: the port is in use (choose another with --port)`);
    } finally {
      await running.close();
    }
    const missing = await runCli(['console', 'token', '--identity', 'x', '--auth', file]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('console token needs --identity <name> and --role viewer|approver');
    const badRole = await runCli(['console', 'token', '--identity', 'x', '--role', 'admin', '--auth', file]);
    expect(badRole).toMatchObject({ code: 2, err: expect.stringContaining("option '--role <role>' argument 'admin' is invalid. Allowed choices are viewer, approver.") });
    await expect(startConsole({ registry: fx.registryDir, auth: path.join(dir, 'none.json'), port: 0, logger: silent })).rejects.toThrow('no console access configuration at');
  });

  it('runs next to the demo API with --keep-serving, and says why when it cannot; its token lives only while the demo serves', async () => {
    const demoDir = path.join(dir, 'demo');
    const auth = path.join(demoDir, 'console-auth.json');
    const summary = { dir: demoDir, registry: fx.registryDir, lake: fx.lakeDir, url: 'http://127.0.0.1:8080' } as DemoSummary;
    const demoTokens = async () => (await readAuthConfig(auth)).tokens.filter((t) => t.identity === 'demo').length;
    const ui = await startDemoConsole(summary, 0);
    try {
      expect(ui.line).toBe(`console     ${ui.running!.url}/login — sign in with ${ui.token} (approver "demo", valid while the demo serves; stored hashed in ${auth})\n`);
      const page = await fetch(`${ui.running!.url}/versions/1/review`, { headers: bearer(ui.token!) });
      expect(await page.text()).toContain('Deciding as <strong>demo</strong>');
      const clash = await startDemoConsole(summary, ui.running!.port);
      expect(clash.running).toBeUndefined();
      expect(clash.line).toBe(`console     not started: cannot listen on 127.0.0.1:${ui.running!.port}: the port is in use (choose another with --port)\n`);
    } finally {
      await ui.close();
    }
    expect(await demoTokens()).toBe(0);
    // Runs one after another leave one demo token at most, never a growing list.
    const again = await startDemoConsole(summary, 0);
    try {
      expect(await demoTokens()).toBe(1);
      expect((await fetch(`${again.running!.url}/`, { headers: bearer(ui.token!) })).status).toBe(401);
      expect((await fetch(`${again.running!.url}/`, { headers: bearer(again.token!) })).status).toBe(200);
    } finally {
      await again.close();
    }
    expect(await demoTokens()).toBe(0);
  });

  describe('with --api', () => {
    let server: http.Server;
    let api: URL;
    beforeAll(async () => {
      const metrics = new ApiMetrics({ defaultMetrics: false });
      metrics.modelInfo.set({ model_version: '1', role: 'champion', sha256: 'a'.repeat(64) }, 1);
      metrics.modelInfo.set({ model_version: '2', role: 'canary', sha256: 'b'.repeat(64) }, 1);
      metrics.observeRequest('/predict', 'POST', 200, '1', 0.001);
      metrics.observeRequest('/predict', 'POST', 200, '2', 0.002);
      server = http.createServer((_req, res) => void metrics.registry.metrics().then((t) => res.end(t)));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      api = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
    afterAll(() => new Promise((r) => server.close(r)));

    it('marks what the API serves, as champion and canary, and shows its traffic on the Live page', async () => {
      const { app } = await consoleApp({ api });
      const list = await request(app).get('/').set(bearer(tokens.viewer));
      expect(rowOf(list.text, 1)).toContain('data-marker="served"');
      expect(rowOf(list.text, 2)).toContain('data-marker="canary"');
      expect(rowOf(list.text, 2)).not.toContain('data-marker="served"');
      expect(list.text).toContain('<a href="/live">Live</a>');
      const live = await request(app).get('/live').set(bearer(tokens.viewer));
      expect(live.status).toBe(200);
      expect(live.text).toMatch(/data-chart="requests" id="live-requests">[\s\S]*?data-marks="2"/);
      expect(live.text).toContain('<tr data-role="canary">');
      expect(live.text).toContain('No drift figures yet');
    });

    it('scrapes the API once for page views within the reuse window', async () => {
      let scrapes = 0;
      const counting = http.createServer((_req, res) => {
        scrapes++;
        void new ApiMetrics({ defaultMetrics: false }).registry.metrics().then((t) => res.end(t));
      });
      await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
      try {
        const { app } = await consoleApp({ api: new URL(`http://127.0.0.1:${(counting.address() as AddressInfo).port}`) });
        for (const page of ['/', '/live', '/versions/1/review', '/']) expect((await request(app).get(page).set(bearer(tokens.viewer))).status).toBe(200);
        expect(scrapes).toBe(1);
      } finally {
        await new Promise((r) => counting.close(r));
      }
    });

    it('says so when the API cannot be reached, and still serves the pages', async () => {
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((r) => closed.close(r));
      const { app } = await consoleApp({ api: new URL(`http://127.0.0.1:${port}`) });
      const list = await request(app).get('/').set(bearer(tokens.viewer));
      expect(list.status).toBe(200);
      expect(list.text).toContain(`Serving markers are from the registry only: cannot read the serving API&#39;s metrics at http://127.0.0.1:${port}/metrics: ECONNREFUSED`);
      const live = await request(app).get('/live').set(bearer(tokens.viewer));
      expect(live.status).toBe(200);
      expect(live.text).toContain('ECONNREFUSED');
    });

    it('has no Live page without --api', async () => {
      const { app } = await consoleApp();
      const res = await request(app).get('/live').set(bearer(tokens.viewer));
      expect(res.status).toBe(404);
      expect(res.text).toContain('start the console with --api');
    });
  });
});
