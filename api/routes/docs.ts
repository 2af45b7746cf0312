/**
 * The API's own documentation: /openapi.json, generated from the served model's schemas
 * (rebuilt per model, so it follows hot swaps), and Swagger UI on it at /docs.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import swaggerUi from 'swagger-ui-express';
import type { UnknownCategoryPolicy } from '../config';
import type { ModelManager } from '../model-manager';
import { buildOpenApi } from '../openapi';
import type { ServedModel } from '../served-model';
import { methodNotAllowed } from './common';

/** Swagger UI's static files: next to the bundle (Docker image) or from node_modules (development). */
export function swaggerAssetsDir(): string {
  const bundled = path.join(__dirname, 'swagger-ui');
  if (existsSync(path.join(bundled, 'swagger-ui-bundle.js'))) return bundled;
  return path.dirname(require.resolve('swagger-ui-dist/package.json'));
}

/**
 * helmet's headers for browser pages, computed once: its configuration is static, so
 * running its middlewares on every request would recompute the same strings each time.
 */
export function pageSecurityHeaders(): [string, string][] {
  const out: [string, string][] = [];
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => out.push([name, String(value)]),
    removeHeader: () => undefined,
  };
  const middleware = helmet({
    // TLS ends at the load balancer; upgrading Swagger UI's asset URLs to https would break /docs over plain HTTP.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  let called = false;
  middleware({} as IncomingMessage, recorder as unknown as ServerResponse, () => (called = true));
  if (!called) throw new Error('helmet did not complete synchronously; cannot precompute security headers');
  return out;
}

export function docsRouter(manager: ModelManager, options: { serviceVersion: string; unknownCategories: UnknownCategoryPolicy }): express.Router {
  const router = express.Router();
  const openapiOptions = { batchLimit: manager.batchLimit, serviceVersion: options.serviceVersion, unknownCategories: options.unknownCategories };
  const cache = new WeakMap<ServedModel, Record<string, unknown>>();
  let empty: Record<string, unknown> | undefined;
  router.get('/openapi.json', (_req, res) => {
    const champion = manager.champion;
    let doc: Record<string, unknown> | undefined;
    if (champion) {
      doc = cache.get(champion);
      if (!doc) {
        doc = buildOpenApi({ name: champion.name, version: champion.version, features: champion.features, classes: champion.classes }, openapiOptions);
        cache.set(champion, doc);
      }
    } else {
      empty ??= buildOpenApi({ name: manager.modelName, version: undefined, features: [], classes: [] }, openapiOptions);
      doc = empty;
    }
    res.json(doc);
  });

  // Swagger UI pages: helmet's browser set replaces the API's (whose CSP forbids the page's own scripts).
  const pageHeaders = pageSecurityHeaders();
  router.use('/docs', (_req, res, next) => {
    for (const [name, value] of pageHeaders) res.setHeader(name, value);
    next();
  });

  // Swagger UI loads the live document, so it follows hot swaps (the categories can change between versions).
  const swaggerOptions = { swaggerUrl: '../openapi.json', customSiteTitle: 'pricesense API' };
  const docsHtml = swaggerUi.generateHTML(undefined, swaggerOptions);
  const [swaggerInit] = swaggerUi.serveFiles(undefined, swaggerOptions);
  router.get('/docs', (req, res) => {
    if (!req.originalUrl.split('?', 1)[0].endsWith('/')) {
      res.redirect(301, 'docs/');
      return;
    }
    res.type('html').send(docsHtml);
  });
  router.use('/docs', swaggerInit, express.static(swaggerAssetsDir(), { index: false, redirect: false, maxAge: '1h' }));
  methodNotAllowed(router, { '/openapi.json': 'GET' });
  return router;
}
