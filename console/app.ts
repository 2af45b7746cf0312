/**
 * The console's HTTP application: pages over the Registry interface, read-only for
 * viewers, decisions for approvers, every request authenticated (docs/console.md).
 *
 * Request flow: security headers → static assets and /healthz (public) → login/logout →
 * authentication (401 with the sign-in page when there is none) → for POSTs, the
 * cross-site checks (Origin, Sec-Fetch-Site, the form's CSRF token) → the page.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { UserError } from '../core/errors';
import type { Lake } from '../etl/lake/types';
import { AuditChainError, ConcurrentChangeError, gateFailure, gatesToOverride, MODEL_STATUSES, parseStatus, type ModelVersion, type Registry } from '../model/registry';
import { ASSETS } from './assets';
import { AmbiguousProxyHeaderError, AuthConfigError, SESSION_COOKIE, type Authenticator, type Principal } from './auth';
import { cardHtmlDocument, cardMarkdown, modelCardOf } from './card';
import { comparePage } from './pages/compare';
import type { ServingState, Site } from './pages/layout';
import { livePage } from './pages/live';
import { errorPage, loginPage, safeNext } from './pages/login';
import { reviewPage, type Decision, type DecisionForm } from './pages/review';
import { versionPage } from './pages/version';
import { versionsPage } from './pages/versions';
import { Reused } from './reuse';
import { readLive } from './serving-api';
import { VersionData, type VerifyResult } from './version-data';

export interface ConsoleAppOptions {
  readonly registry: Registry;
  readonly auth: Authenticator;
  readonly logger: Logger;
  readonly lake?: Lake;
  readonly api?: URL;
  /** Express's "trust proxy" (hops or addresses): set it when TLS ends at a proxy, so cookies get Secure. */
  readonly trustProxy?: string | number | boolean;
  /**
   * The URL people open the console at (--public-url). Form posts must come from its origin;
   * without it, from the origin the request itself names (scheme and Host), which a proxy
   * that terminates TLS or rewrites Host changes. An https URL also makes the cookie Secure.
   */
  readonly publicUrl?: URL;
  /**
   * How long the registry listing and the serving API's state are reused between page
   * views (default REUSE_MS); decisions made through this console refresh them at once.
   */
  readonly reuseMs?: number;
}

/** Default reuse of the registry listing and the serving API's state (see Reused). */
export const REUSE_MS = 5000;

/** Rows of the versions table per page. */
export const VERSIONS_PER_PAGE = 100;

/** Longest note or override reason accepted (the audit trail is not a document store). */
export const MAX_NOTE_LENGTH = 2000;

interface Locals {
  principal: Principal;
}

const principalOf = (res: Response): Principal => (res.locals as Locals).principal;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}

function parseVersionParam(text: unknown): number {
  const s = String(text);
  if (!/^\d{1,9}$/.test(s) || Number(s) < 1) throw new HttpError(404, 'Not found', `'${s}' is not a version number`);
  return Number(s);
}

/** --public-url: an http(s) origin, nothing after it (the console serves from its root). */
export function parsePublicUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(`--public-url '${text}' is not a URL: expected the address people open the console at, e.g. https://console.example.com`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UserError(`--public-url '${text}' must be http:// or https://`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
    throw new UserError(`--public-url '${text}' must be an origin only (scheme, host and port, e.g. https://console.example.com): the console is served from the root of its host`);
  }
  return url;
}

function bodyField(req: Request, name: string): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
}

export function createConsoleApp(options: ConsoleAppOptions): express.Express {
  const { registry, auth, logger } = options;
  const data = new VersionData(registry, options.lake, logger);
  const site: Site = { registryUri: registry.uri, lakeUri: options.lake?.root, apiUrl: options.api?.href };
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', options.trustProxy ?? false);
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          connectSrc: ["'self'"],
          formAction: ["'self'"],
          baseUri: ["'none'"],
          frameAncestors: ["'none'"],
          objectSrc: ["'none'"],
        },
      },
      // same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on our own form posts, which the cross-site check must refuse.
      referrerPolicy: { policy: 'same-origin' },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    }),
  );

  const sendAsset = (a: { body: string; type: string; hash: string }) => (req: Request, res: Response) => {
    res.setHeader('Content-Type', a.type);
    res.setHeader('Cache-Control', req.query.v === a.hash ? 'public, max-age=31536000, immutable' : 'no-cache');
    res.send(a.body);
  };
  app.get('/assets/console.css', sendAsset(ASSETS.css));
  app.get('/assets/console.js', sendAsset(ASSETS.js));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Everything below is about people and models: never cached by a browser or a proxy.
  app.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  app.use(express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 50 }));

  const sendPage = (res: Response, status: number, page: string): void => {
    res.status(status).type('html').send(page);
  };
  const unauthenticated = (req: Request, res: Response): void => {
    res.setHeader('WWW-Authenticate', 'Bearer realm="pricesense-console"');
    sendPage(res, 401, loginPage({ site, next: req.method === 'GET' ? req.originalUrl : '/', proxyEnabled: auth.proxyEnabled }));
  };

  /** A POST from another site (or a page of ours opened from one) is refused before anything else happens. */
  const crossSite = (req: Request): string | undefined => {
    const fetchSite = req.get('sec-fetch-site');
    if (fetchSite && fetchSite !== 'same-origin' && fetchSite !== 'none') return `a ${fetchSite} request`;
    const origin = req.get('origin');
    const ours = options.publicUrl?.origin ?? `${req.protocol}://${req.get('host')}`;
    if (origin && origin !== ours) return `a request from ${origin}`;
    return undefined;
  };

  app.get('/login', async (req, res) => {
    if (await auth.authenticate(req)) return res.redirect(303, safeNext(req.query.next));
    sendPage(res, 200, loginPage({ site, next: safeNext(req.query.next), proxyEnabled: auth.proxyEnabled }));
  });

  app.post('/login', async (req, res) => {
    const refused = crossSite(req);
    if (refused) throw new HttpError(403, 'Cross-site request refused', `${refused} may not sign in to this console`);
    const session = await auth.login(bodyField(req, 'token'));
    if (!session) {
      logger.warn({ event: 'login_failed', ip: req.ip }, 'sign-in with an unknown token');
      res.setHeader('WWW-Authenticate', 'Bearer realm="pricesense-console"');
      return sendPage(res, 401, loginPage({ site, next: safeNext(bodyField(req, 'next')), error: 'That token is not valid (or was revoked).', proxyEnabled: auth.proxyEnabled }));
    }
    res.cookie(SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'strict', secure: req.secure || options.publicUrl?.protocol === 'https:', path: '/', maxAge: session.maxAgeSeconds * 1000 });
    logger.info({ event: 'login', identity: session.principal.identity, role: session.principal.role }, 'signed in');
    res.redirect(303, safeNext(bodyField(req, 'next')));
  });

  // Authentication for everything else.
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    const principal = await auth.authenticate(req);
    if (!principal) return unauthenticated(req, res);
    (res.locals as Locals).principal = principal;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const refused = crossSite(req);
      if (refused) throw new HttpError(403, 'Cross-site request refused', `${refused} cannot change anything here`);
      if (!auth.csrfValid(principal, bodyField(req, '_csrf'))) {
        throw new HttpError(403, 'Request refused', 'the form is missing its anti-forgery token or it has expired: reload the page and try again');
      }
    }
    next();
  });

  app.post('/logout', (_req, res) => {
    const p = principalOf(res);
    auth.logout(p.sessionId);
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    res.redirect(303, '/login');
  });

  const reuseMs = options.reuseMs ?? REUSE_MS;
  const listing = new Reused(reuseMs, () => registry.list());
  const latestApproved = new Reused(reuseMs, async () => (await registry.latestApproved())?.version);
  const api = options.api;
  const live = api ? new Reused(reuseMs, () => readLive(api)) : undefined;
  const serving = async (): Promise<ServingState> => {
    const latest = await latestApproved.get();
    if (!live) return { latestApproved: latest, api: undefined };
    try {
      return { latestApproved: latest, api: { models: (await live.get()).models } };
    } catch (err) {
      return { latestApproved: latest, api: { error: (err as Error).message } };
    }
  };

  app.get('/', async (req, res) => {
    const status = typeof req.query.status === 'string' && req.query.status ? parseStatus(req.query.status) : undefined;
    const page = typeof req.query.page === 'string' && /^\d{1,6}$/.test(req.query.page) ? Math.max(1, Number(req.query.page)) : 1;
    const [all, state] = await Promise.all([listing.get(), serving()]);
    const versions = status ? all.filter((v) => v.status === status) : all;
    sendPage(res, 200, versionsPage({ site, principal: principalOf(res), versions, all, status, serving: state, page: { number: page, size: VERSIONS_PER_PAGE } }));
  });

  const renderVersion = async (res: Response, v: ModelVersion, verify?: VerifyResult): Promise<void> => {
    // One read of the lake's manifest serves the insights, the card and the lineage table.
    const [state, gold] = await Promise.all([serving(), data.goldManifest()]);
    const [insights, card] = await Promise.all([data.insightsOrReason(v, gold), modelCardOf(data, v, gold)]);
    sendPage(
      res,
      200,
      versionPage({ site, principal: principalOf(res), v, serving: state, insights, card, verify, lakeManifestSha256: typeof gold === 'string' ? undefined : gold.sha256 }),
    );
  };

  app.get('/versions/:n', async (req, res) => {
    await renderVersion(res, await registry.show(parseVersionParam(req.params.n)));
  });

  app.post('/versions/:n/verify', async (req, res) => {
    const n = parseVersionParam(req.params.n);
    const result = await data.verify(n);
    logger.info({ event: 'verify', version: n, ok: result.ok, identity: principalOf(res).identity }, 'version verified');
    // A trail that does not verify cannot be shown as a version page: the registry refuses to read it.
    const v = await registry.show(n).catch((err: unknown) => {
      if (err instanceof AuditChainError && !result.ok) throw new HttpError(409, `Verification FAILED for v${n}`, `${result.problems.join('; ')}. The version is not served while this holds: restore the altered files from a backup, or reject and re-register it.`);
      throw err;
    });
    await renderVersion(res, v, result);
  });

  app.get('/versions/:n/card', async (req, res) => {
    const v = await registry.show(parseVersionParam(req.params.n));
    const format = req.query.format === 'html' ? 'html' : 'md';
    const card = await modelCardOf(data, v);
    res.setHeader('Content-Disposition', `attachment; filename="model-card-v${v.version}.${format}"`);
    if (format === 'html') res.type('html').send(cardHtmlDocument(card));
    else res.type('text/markdown; charset=utf-8').send(cardMarkdown(card));
  });

  const renderReview = async (res: Response, status: number, v: ModelVersion, extra: { error?: string; done?: string; form?: DecisionForm } = {}): Promise<void> => {
    const state = await serving();
    const servedNumber = state.api && 'models' in state.api ? (state.api.models.find((m) => m.role === 'champion')?.version ?? state.latestApproved) : state.latestApproved;
    const served = servedNumber === undefined ? undefined : await registry.show(servedNumber).catch(() => undefined);
    sendPage(res, status, reviewPage({ site, principal: principalOf(res), v, served, serving: state, ...extra }));
  };

  app.get('/versions/:n/review', async (req, res) => {
    const v = await registry.show(parseVersionParam(req.params.n));
    const last = v.audit[v.audit.length - 1];
    const done = req.query.done === '1' && last.from !== null ? `${last.to} by ${last.by} at ${last.at}: “${last.note}”` : undefined;
    await renderReview(res, 200, v, { done });
  });

  const decide = (decision: Decision) => async (req: Request, res: Response) => {
    const principal = principalOf(res);
    const n = parseVersionParam(req.params.n);
    if (principal.role !== 'approver') {
      logger.warn({ event: 'decision_forbidden', decision, version: n, identity: principal.identity }, 'viewer tried to decide');
      throw new HttpError(403, 'Forbidden', `${principal.identity} has the viewer role: only approvers can ${decision} a version`);
    }
    const v = await registry.show(n);
    const form: DecisionForm = { note: bodyField(req, 'note').trim(), override: bodyField(req, 'override') === 'yes', overrideReason: bodyField(req, 'overrideReason').trim() };
    const refuse = (status: number, error: string) => renderReview(res, status, v, { error, form });
    if (!form.note) return refuse(400, `A note is required: say why you ${decision} v${n} (it is recorded in the audit trail).`);
    if (form.note.length > MAX_NOTE_LENGTH || form.overrideReason.length > MAX_NOTE_LENGTH) return refuse(400, `Notes are limited to ${MAX_NOTE_LENGTH} characters.`);
    // The status the page showed: the registry applies the decision only if the version is still in it, atomically with the write.
    const expected = MODEL_STATUSES.find((st) => st === bodyField(req, 'expected'));
    if (!expected) return refuse(400, `The form does not say which status of v${n} you decided on: reload the review page and decide again.`);
    const toOverride = decision === 'approve' ? gatesToOverride(v.metrics) : undefined;
    if (toOverride && (!form.override || !form.overrideReason)) {
      const what = gateFailure(v.metrics) ? `failed its quality gates (${toOverride})` : 'has no quality gate results (it was never evaluated)';
      return refuse(400, `v${n} ${what}: approving it needs the override box ticked and a reason.`);
    }
    const options = { expected, ...(toOverride ? { overrideGates: { reason: form.overrideReason } } : {}) };
    try {
      const done = decision === 'approve' ? await registry.approve(n, form.note, principal.identity, options) : await registry.reject(n, form.note, principal.identity, options);
      // The decision stands; what is left to do (an upgrade step) is for the operators' log.
      for (const warning of done.warnings ?? []) logger.warn({ event: 'registry_warning', version: n }, warning);
    } catch (err) {
      if (err instanceof ConcurrentChangeError) {
        const now = await registry.show(n);
        const last = now.audit[now.audit.length - 1];
        const what =
          now.status === expected ? `another change to v${n} was being made at the same moment` : `v${n} changed from ${expected} to ${now.status} while you were reviewing it (by ${last.by} at ${last.at})`;
        return renderReview(res, 409, now, { error: `${what}: nothing was changed; review its current state and decide again.`, form });
      }
      if (err instanceof UserError) return refuse(409, err.message);
      throw err;
    }
    listing.invalidate();
    latestApproved.invalidate();
    logger.info({ event: 'decision', decision, version: n, identity: principal.identity, via: principal.via, override: !!toOverride }, `${decision} v${n}`);
    res.redirect(303, `/versions/${n}/review?done=1`);
  };
  app.post('/versions/:n/approve', decide('approve'));
  app.post('/versions/:n/reject', decide('reject'));

  app.get('/compare', async (req, res) => {
    // The pickers need the version numbers only (the reused listing); the two compared are read afresh.
    const [all, state] = await Promise.all([listing.get(), serving()]);
    const pick = async (q: unknown): Promise<ModelVersion | undefined> => (q === undefined || q === '' ? undefined : registry.show(parseVersionParam(q)));
    const [a, b] = await Promise.all([pick(req.query.a), pick(req.query.b)]);
    const gold = a || b ? await data.goldManifest() : undefined;
    const [ia, ib] = await Promise.all([a && data.insights(a, gold).catch(() => undefined), b && data.insights(b, gold).catch(() => undefined)]);
    sendPage(res, 200, comparePage({ site, principal: principalOf(res), all, a, b, ia, ib, serving: state }));
  });

  app.get('/live', async (_req, res) => {
    if (!live) throw new HttpError(404, 'No serving API configured', 'start the console with --api <serving URL> to see live drift and traffic');
    const snapshot = await live.get().catch((err: Error) => err.message);
    sendPage(res, 200, livePage({ site, principal: principalOf(res), live: snapshot }));
  });

  app.use((_req: Request, _res: Response) => {
    throw new HttpError(404, 'Not found', 'there is no such page');
  });

  // Errors: a page saying what went wrong; internal details only in the log.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const principal = (res.locals as Partial<Locals>).principal;
    let status = 500;
    let title = 'Something went wrong';
    let message = 'the console could not complete this request; the details are in its log';
    if (err instanceof HttpError) ({ status, title, message } = err);
    else if (err instanceof AuthConfigError) {
      status = 503;
      title = 'Access configuration unusable';
      message = `nobody can sign in until it is fixed: ${err.message}`;
    } else if (err instanceof AmbiguousProxyHeaderError) {
      status = 400;
      title = 'Ambiguous identity headers';
      message = `refused: ${err.message}`;
      logger.warn({ event: 'proxy_header_repeated', ip: req.ip, message: err.message }, 'proxy identity header sent more than once');
    } else if (err instanceof UserError) {
      status = /not found/.test(err.message) ? 404 : 400;
      title = status === 404 ? 'Not found' : 'Cannot do that';
      message = err.message;
    } else if ((err as { type?: string }).type === 'entity.too.large') {
      status = 413;
      title = 'Request too large';
      message = 'the form is larger than this console accepts';
    }
    if (status >= 500) logger.error({ err, path: req.path }, 'request failed');
    if (res.headersSent) return;
    sendPage(res, status, errorPage({ site, principal, status, title, message }));
  });
  return app;
}
