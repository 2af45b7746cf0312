/**
 * The console in a real browser: Debian's Chromium (apt-get install chromium; listed in
 * .ci/apt-packages.txt), driven by playwright-core — no browser download. One browser
 * per suite, one context (cookie jar) per person. Against a console on a registry of
 * real trained versions, next to the real inference API:
 * - each page renders its charts: every chart's marks are in the DOM and laid out
 *   (non-empty boxes), as many as the data says; arrow keys move between them;
 * - an approver signs in, approves, and sees the audit trail and the served marker move;
 * - no credentials: 401; a viewer's decision: 403; forged cross-site posts: refused.
 *
 * PRICESENSE_CONSOLE_SCREENSHOTS=<dir> also saves a screenshot of each page there
 * (`npm run docs:console-screenshots` writes the ones docs/console.md shows).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DEFAULT_CONFIG } from '../../api/config';
import { startServer, type RunningServer } from '../../api/server';
import { readGoldSplit } from '../../etl/gold';
import { LocalLake } from '../../etl/lake/local';
import type { ForestFileV1 } from '../../model/format';
import { startConsole, type RunningConsole } from '../server';
import { consoleFixture, writeAuthFile, type ConsoleFixture, type FixtureTokens } from './fixtures';

const CHROMIUM = process.env.PRICESENSE_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = process.env.PRICESENSE_CONSOLE_SCREENSHOTS;

interface ChartInDom {
  readonly id: string;
  readonly kind: string;
  readonly marks: number;
  /** Marks the browser laid out with a non-empty box. */
  readonly drawn: number;
  readonly declared: number;
}

/** The part of an SVG element the check below uses (the test compiles without the DOM library). */
interface Laid {
  getBBox(): { width: number; height: number };
}

/** Every chart on the page as the browser rendered it. */
function chartsOf(page: Page): Promise<ChartInDom[]> {
  return page.$$eval('figure[data-chart]', (figures) =>
    figures.map((f) => {
      const marks = [...f.querySelectorAll('svg.chart-svg .mark')] as unknown as Laid[];
      return {
        id: f.id,
        kind: f.getAttribute('data-chart') ?? '',
        marks: marks.length,
        drawn: marks.filter((m) => {
          const b = m.getBBox();
          return b.width > 0 && b.height > 0;
        }).length,
        declared: Number(f.querySelector('svg.chart-svg')?.getAttribute('data-marks')),
      };
    }),
  );
}

function byId(charts: ChartInDom[]): Record<string, ChartInDom> {
  return Object.fromEntries(charts.map((c) => [c.id, c]));
}

/** Expect the chart to be on the page with n marks, all drawn. */
function expectMarks(charts: Record<string, ChartInDom>, id: string, n: number): void {
  expect(charts[id]).toBeDefined();
  expect({ id, marks: charts[id].marks, drawn: charts[id].drawn, declared: charts[id].declared }).toEqual({ id, marks: n, drawn: n, declared: n });
}

const usedBins = (metrics: Record<string, unknown>, split: string): number =>
  ((metrics[split] as { calibration: { bins: { count: number }[] } }).calibration.bins.filter((b) => b.count > 0)).length;

describe('registry console in Chromium', () => {
  let dir: string;
  let fx: ConsoleFixture;
  let tokens: FixtureTokens;
  let api: RunningServer;
  let consoleServer: RunningConsole;
  let browser: Browser;
  let attacker: http.Server;
  let attackerPort: number;
  let approver: BrowserContext;
  let page: Page;
  let unknownFeature: string;

  /** A screenshot of the whole page, or of the part between two sections (for pages too long to read as one picture). */
  async function shot(p: Page, name: string, between?: [string | null, string]): Promise<void> {
    if (!SHOTS) return;
    await mkdir(SHOTS, { recursive: true });
    const file = path.join(SHOTS, `${name}.png`);
    if (!between) return void (await p.screenshot({ path: file, fullPage: true }));
    const top = between[0] ? (await p.locator(between[0]).boundingBox())!.y : 0;
    const bottom = (await p.locator(between[1]).boundingBox())!.y;
    await p.screenshot({ path: file, fullPage: true, clip: { x: 0, y: top, width: 1280, height: bottom - top } });
  }

  async function signIn(context: BrowserContext, token: string): Promise<Page> {
    const p = await context.newPage();
    await p.goto(`${consoleServer.url}/login`);
    await p.fill('#token', token);
    await Promise.all([p.waitForURL(`${consoleServer.url}/`), p.click('form[action="/login"] button[type=submit]')]);
    return p;
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (it is in .ci/apt-packages.txt), or set PRICESENSE_CHROMIUM`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-console-browser-'));
    fx = await consoleFixture(dir);
    tokens = await writeAuthFile(dir);
    // The real API on the same registry: it serves v1 (latest Approved) with v3 shadowing it.
    // Its event-loop shedding is off: this process also builds the fixture and drives Chromium,
    // so the loop's delay says nothing about the API's load (it shed the first requests with 503).
    api = await startServer({
      ...DEFAULT_CONFIG,
      host: '127.0.0.1',
      port: 0,
      registry: fx.registryDir,
      pollIntervalMs: 200,
      logLevel: 'silent',
      maxEventLoopDelayMs: 0,
      challenger: { version: 3, mode: 'shadow', percent: 0 },
    });
    const test = await readGoldSplit(new LocalLake(fx.lakeDir), 'test');
    const instances = Array.from({ length: Math.min(200, test.rows) }, (_, i) => {
      const row: Record<string, unknown> = {};
      for (const [name, col] of Object.entries(test.numeric)) row[name] = Number.isNaN(col[i]) ? null : col[i];
      for (const [name, col] of Object.entries(test.categorical)) row[name] = col[i];
      return row;
    });
    const predict = (body: unknown) => fetch(`http://127.0.0.1:${api.port}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await predict({ instances })).status).toBe(200);
    for (const row of instances.slice(0, 40)) expect((await predict(row)).status).toBe(200);
    // A store format the forest never saw: the API scores it as missing and counts it per feature.
    const [categorical] = Object.keys(test.categorical);
    unknownFeature = categorical;
    for (const row of instances.slice(0, 10)) expect((await predict({ ...row, [categorical]: 'NEW-STORE-FORMAT' })).status).toBe(200);
    consoleServer = await startConsole({ registry: fx.registryDir, lake: fx.lakeDir, api: `http://127.0.0.1:${api.port}`, auth: tokens.file, port: 0, logger: pino({ level: 'silent' }) });

    // Pages an attacker controls: they post forms to the console when opened.
    attacker = http.createServer((req, res) => {
      const target = new URL(req.url ?? '/', 'http://x').searchParams.get('target') ?? '';
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!doctype html><form id="f" method="post" action="${target}"><input name="note" value="forged"><input name="_csrf" value="guessed"><input name="expected" value="Rejected"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    attackerPort = (attacker.address() as AddressInfo).port;

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    approver = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await signIn(approver, tokens.approver);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await consoleServer?.close();
    await api?.close(1000);
    if (attacker) await new Promise((r) => attacker.close(r));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers a visitor without credentials with 401 and the sign-in form', async () => {
    const context = await browser.newContext();
    const p = await context.newPage();
    const res = await p.goto(`${consoleServer.url}/versions/2`);
    expect(res!.status()).toBe(401);
    expect(await p.locator('form[action="/login"] #token').count()).toBe(1);
    await shot(p, 'login');
    await context.close();
  });

  it('lists the versions with their chart, markers from the registry and the API', async () => {
    await page.goto(`${consoleServer.url}/`);
    expectMarks(byId(await chartsOf(page)), 'versions-metrics', 4 * 2);
    expect(await page.locator('tr[data-version="1"] [data-marker="served"]').count()).toBe(1);
    expect(await page.locator('tr[data-version="3"] [data-marker="shadow"]').count()).toBe(1);
    await shot(page, 'versions');
  });

  it('renders every chart of a version page with one mark per datum, and moves between marks with the keyboard', async () => {
    const v = await fx.registry.show(2);
    const forest = JSON.parse((await fx.registry.fetch(2)).toString('utf8')) as ForestFileV1;
    await page.goto(`${consoleServer.url}/versions/2`);
    const charts = byId(await chartsOf(page));
    expectMarks(charts, 'confusion-test', 9);
    expectMarks(charts, 'per-class', 9);
    expectMarks(charts, 'reliability', usedBins(v.metrics, 'test') + usedBins(v.metrics, 'validation'));
    expectMarks(charts, 'importance', forest.features.length * 2);
    forest.features.forEach((f, i) => {
      const stats = forest.featureStats[f.name];
      const expected = stats.kind === 'numeric' ? stats.fractions.length : Math.min(10, Object.keys(stats.frequencies).length) + (Object.keys(stats.frequencies).length > 10 ? 1 : 0);
      expectMarks(charts, `dist-${i}`, expected);
    });

    const first = page.locator('#confusion-test .mark').first();
    await first.focus();
    await page.keyboard.press('ArrowRight');
    const second = await page.locator('#confusion-test .mark').nth(1).getAttribute('aria-label');
    expect(await page.locator(':focus').getAttribute('aria-label')).toBe(second);
    expect(await page.locator('#confusion-test .chart-readout').textContent()).toBe(second);
    await page.keyboard.press('End');
    expect(await page.locator(':focus').getAttribute('aria-label')).toBe(await page.locator('#confusion-test .mark').last().getAttribute('aria-label'));
    await shot(page, 'version', [null, '#distributions']);
    await shot(page, 'version-distributions', ['#distributions', '#artifact']);
    await shot(page, 'version-audit-card', ['#artifact', 'footer']);
  });

  it('compares two versions side by side', async () => {
    const [v1, v2] = [await fx.registry.show(1), await fx.registry.show(2)];
    await page.goto(`${consoleServer.url}/compare?a=1&b=2`);
    const charts = byId(await chartsOf(page));
    expectMarks(charts, 'compare-confusion-a', 9);
    expectMarks(charts, 'compare-confusion-b', 9);
    expectMarks(charts, 'compare-reliability-a', usedBins(v1.metrics, 'test'));
    expectMarks(charts, 'compare-reliability-b', usedBins(v2.metrics, 'test'));
    expectMarks(charts, 'compare-reliability-both', usedBins(v1.metrics, 'test') + usedBins(v2.metrics, 'test'));
    // accuracy, macro F1, and precision/recall/F1 of three classes, for both versions
    expectMarks(charts, 'compare-deltas', (2 + 3 * 3) * 2);
    expect(await page.locator('tr.differs[data-field="hyperparameter trees"]').count()).toBe(1);
    await shot(page, 'compare');
  });

  it('shows drift and traffic from the serving API on the Live page', async () => {
    await page.goto(`${consoleServer.url}/live`);
    const charts = byId(await chartsOf(page));
    expectMarks(charts, 'live-requests', 1); // only v1 answered: the shadow never does
    expectMarks(charts, 'live-latency', 2);
    // One bar per PSI figure the API exports (feature × served model).
    const exported = (await (await fetch(`http://127.0.0.1:${api.port}/metrics`)).text()).split('\n').filter((l) => l.startsWith('pricesense_feature_drift_psi{'));
    expect(exported.length).toBeGreaterThanOrEqual(17);
    expectMarks(charts, 'live-psi', exported.length);
    expect(await page.locator('tr[data-role="champion"] a').textContent()).toBe('v1');
    // One bar per unknown-category figure the API exports, under the API's own metric name.
    const unknown = (await (await fetch(`http://127.0.0.1:${api.port}/metrics`)).text()).split('\n').filter((l) => l.startsWith('pricesense_unknown_categories_total{'));
    expect(unknown.length).toBeGreaterThanOrEqual(1);
    expect(unknown.every((l) => l.includes(`feature="${unknownFeature}"`))).toBe(true);
    // The chart draws the API's unknown share gauge: one bar per categorical feature × served model, the unseen feature's above 0.
    const shares = (await (await fetch(`http://127.0.0.1:${api.port}/metrics`)).text()).split('\n').filter((l) => l.startsWith('pricesense_feature_unknown_category_ratio{'));
    expect(shares.some((l) => l.includes(`feature="${unknownFeature}"`) && Number(l.split(' ').at(-1)) > 0)).toBe(true);
    expectMarks(charts, 'live-unknown', shares.length);
    await shot(page, 'live');
  });

  it('refuses a viewer’s decision with 403 and shows no decision form', async () => {
    const context = await browser.newContext();
    const viewer = await signIn(context, tokens.viewer);
    await viewer.goto(`${consoleServer.url}/versions/2/review`);
    expect(await viewer.locator('form.decision').count()).toBe(0);
    const csrf = await viewer.locator('input[name="_csrf"]').first().inputValue();
    // A same-origin post from the console's own page, with the viewer's session and form token.
    const status = await viewer.evaluate(async (token) => (await fetch('/versions/2/approve', { method: 'POST', body: new URLSearchParams({ note: 'I approve', _csrf: token }) })).status, csrf);
    expect(status).toBe(403);
    expect((await fx.registry.show(2)).status).toBe('PendingManualApproval');
    await context.close();
  });

  it('refuses forged cross-site and same-site posts from another origin', async () => {
    // Cross-site (localhost is another site than 127.0.0.1): the SameSite=Strict cookie stays home.
    const cross = await approver.newPage();
    const crossAnswer = cross.waitForResponse((r) => r.url().startsWith(consoleServer.url) && r.request().method() === 'POST');
    await cross.goto(`http://localhost:${attackerPort}/?target=${encodeURIComponent(`${consoleServer.url}/versions/4/approve`)}`);
    expect((await crossAnswer).status()).toBe(401);
    // Same site, another origin (another port): the cookie goes along, the fetch-metadata and CSRF checks stop it.
    const sameSite = await approver.newPage();
    const sameSiteAnswer = sameSite.waitForResponse((r) => r.url().startsWith(consoleServer.url) && r.request().method() === 'POST');
    await sameSite.goto(`http://127.0.0.1:${attackerPort}/?target=${encodeURIComponent(`${consoleServer.url}/versions/4/approve`)}`);
    const refused = await sameSiteAnswer;
    expect(refused.status()).toBe(403);
    expect(await refused.text()).toContain('a same-site request cannot change anything here');
    expect((await fx.registry.show(4)).status).toBe('Rejected');
    await cross.close();
    await sameSite.close();
  });

  it('lets the approver approve with a note; the audit trail and the served marker follow', async () => {
    await page.goto(`${consoleServer.url}/versions/2/review`);
    const charts = byId(await chartsOf(page));
    // Against the served v1: accuracy, macro F1 and precision/recall/F1 of three classes, for both versions.
    expect(await page.locator('#h-served + p a').first().textContent()).toBe('v1');
    expectMarks(charts, 'review-deltas', (2 + 3 * 3) * 2);
    expect(await page.locator('table.gates tr[data-passed="true"]').count()).toBeGreaterThan(0);
    await page.fill('#note', 'macro F1 up on the same test split; reviewed with pricing');
    await shot(page, 'review');
    await Promise.all([page.waitForURL(`${consoleServer.url}/versions/2/review?done=1`), page.click('button[value="approve"]')]);
    expect(await page.locator('[data-outcome="done"]').textContent()).toContain('Approved by approver@example.com');

    await page.goto(`${consoleServer.url}/versions/2#audit`);
    const last = page.locator('table.audit tbody tr').last();
    expect(await last.getAttribute('data-by')).toBe('approver@example.com');
    expect(await last.getAttribute('data-to')).toBe('Approved');
    expect(await last.textContent()).toContain('macro F1 up on the same test split; reviewed with pricing');

    // The API polls the registry: within a few polls it serves v2, and the console shows it.
    let served = 0;
    for (let i = 0; i < 100 && served === 0; i++) {
      await page.goto(`${consoleServer.url}/`);
      served = await page.locator('tr[data-version="2"] [data-marker="served"]').count();
      if (served === 0) await page.waitForTimeout(100);
    }
    expect(served).toBe(1);
    expect(await page.locator('tr[data-version="1"] [data-marker]').count()).toBe(0);
  });

  it('asks for an override and a reason before approving a version whose gates failed', async () => {
    await page.goto(`${consoleServer.url}/versions/3/review`);
    expect(await page.locator('fieldset.override').count()).toBe(1);
    await page.fill('#note', 'pilot needs it');
    await shot(page, 'review-override');
    await page.click('button[value="approve"]');
    await page.waitForLoadState();
    expect(await page.locator('[data-outcome="error"]').textContent()).toContain('failed its quality gates');
    expect((await fx.registry.show(3)).status).toBe('PendingManualApproval');
    await page.check('#override');
    await page.fill('#override-reason', 'the pilot store accepts the risk');
    await Promise.all([page.waitForURL(`${consoleServer.url}/versions/3/review?done=1`), page.click('button[value="approve"]')]);
    const last = (await fx.registry.show(3)).audit.at(-1)!;
    expect(last).toMatchObject({ to: 'Approved', by: 'approver@example.com', note: 'pilot needs it', override: { reason: 'the pilot store accepts the risk' } });
    expect(last.override!.gates).toMatch(/^quality gates? failed on test: /);
    await page.goto(`${consoleServer.url}/versions/3#audit`);
    expect(await page.locator('table.audit tbody tr').last().locator('[data-override="yes"]').textContent()).toContain('OVERRIDE of quality gate');
  });
});
