/**
 * POST /predict through Express: requests the lean path (api/fast-predict.ts) leaves
 * alone — a query string such as ?explain=true, a charset or encoding to negotiate, a
 * chunked body. Same prediction layer, same response bytes.
 */
import express from 'express';
import type { LoadShedder } from '../load-shedding';
import type { ModelManager } from '../model-manager';
import { predictJson } from '../predict';
import type { Predictor } from '../prediction';
import { jsonBody, methodNotAllowed, shed, state, useRoute } from './common';

export interface PredictRouterOptions {
  readonly manager: ModelManager;
  readonly predictor: Predictor;
  readonly shedder: LoadShedder;
  readonly bodyLimitBytes: number;
}

function isTrue(v: unknown): boolean {
  return v === 'true' || v === '1' || v === '';
}

export function predictRouter(options: PredictRouterOptions): express.Router {
  const { manager, predictor } = options;
  const router = express.Router();
  router.post('/predict', shed(options.shedder, '/predict'), ...jsonBody(options.bodyLimitBytes, options.shedder), (req, res) => {
    const route = useRoute(manager, res);
    const input = route.model.validator.parsePredict(req.body);
    const query = req.url.includes('?');
    const extras = { explain: query && isTrue(req.query.explain), features: query && isTrue(req.query.features) };
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.send(predictJson(predictor, route, input, extras, state(res).requestId));
  });
  methodNotAllowed(router, { '/predict': 'POST' });
  return router;
}
