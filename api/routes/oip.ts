/**
 * The Open Inference Protocol (KServe v2 REST) data plane, mounted at /v2: server and
 * model metadata, health, and infer. Tensors become rows (api/oip-tensors.ts), rows go
 * through the same prediction layer as /predict, and errors take the protocol's shape
 * {"error": "<message>"} (details are an extension clients may ignore).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { ApiError } from '../errors';
import type { LoadShedder } from '../load-shedding';
import type { ModelManager } from '../model-manager';
import { oipModelMetadata, oipRequestedOutputs, oipToRows } from '../oip-tensors';
import type { Predictor } from '../prediction';
import { notReady } from '../request-context';
import type { ServedModel } from '../served-model';
import { errorHandler, jsonBody, methodNotAllowed, routeTo, shed, state, useRoute } from './common';

export interface OipRouterOptions {
  readonly manager: ModelManager;
  readonly predictor: Predictor;
  readonly shedder: LoadShedder;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  readonly serviceVersion: string;
}

const INFER_ROUTE = '/v2/models/:name/infer';

export function oipRouter(options: OipRouterOptions): express.Router {
  const { manager, predictor } = options;
  const router = express.Router();

  router.get('/', (_req, res) => {
    res.json({ name: 'pricesense', version: options.serviceVersion, extensions: [] });
  });
  router.get('/health/live', (_req, res) => {
    res.json({ live: true });
  });
  // The protocol signals "not ready" with a 4xx status (Triton uses 400).
  router.get('/health/ready', (_req, res) => {
    const ready = manager.ready;
    res.status(ready ? 200 : 400).json({ ready });
  });

  /** The model a path names: 404 for another name or an unserved version, 503 before any model is loaded. */
  const modelOf = (req: Request, version?: string): ServedModel => {
    const name = String(req.params.name);
    if (name !== manager.modelName) throw new ApiError(404, 'model_not_found', `Unknown model ${JSON.stringify(name.slice(0, 100))}; this server serves ${JSON.stringify(manager.modelName)}`);
    const champion = manager.champion;
    if (!champion) throw notReady(manager);
    if (version === undefined) return champion;
    const model = manager.byVersion(version);
    if (!model) throw new ApiError(404, 'version_not_found', `Version ${JSON.stringify(version.slice(0, 20))} of ${name} is not served here; served: ${manager.servedVersions().join(', ')}`);
    return model;
  };

  router.get('/models/:name', (req, res) => {
    res.json(oipModelMetadata(modelOf(req), manager.servedVersions()));
  });
  router.get('/models/:name/versions/:version', (req, res) => {
    const model = modelOf(req, String(req.params.version));
    res.json(oipModelMetadata(model, [model.versionLabel]));
  });
  const modelReady = (req: Request, res: Response, version?: string) => {
    try {
      modelOf(req, version);
      res.status(manager.ready ? 200 : 400).json({ name: manager.modelName, ready: manager.ready });
    } catch (err) {
      if (err instanceof ApiError && err.status === 503) res.status(400).json({ name: manager.modelName, ready: false });
      else throw err;
    }
  };
  router.get('/models/:name/ready', (req, res) => modelReady(req, res));
  router.get('/models/:name/versions/:version/ready', (req, res) => modelReady(req, res, String(req.params.version)));

  const infer = (req: Request, res: Response, version?: string) => {
    const target = modelOf(req, version); // 404 / 503 before looking at the body
    // Unaddressed calls follow the canary split like /predict; a version-addressed call gets exactly that version.
    const route = useRoute(manager, res, version === undefined ? manager.route() : routeTo(manager, target));
    const model = route.model;
    const request = model.validator.parseOip(req.body);
    const outputs = oipRequestedOutputs(request);
    const rows = oipToRows(request, model, manager.batchLimit);
    const { prediction, unknown } = predictor.many(route, rows, state(res).requestId, INFER_ROUTE);
    const tensors: Record<string, unknown>[] = [];
    if (outputs.has('label')) tensors.push({ name: 'label', shape: [rows.length], datatype: 'BYTES', data: prediction.labels });
    if (outputs.has('probabilities')) {
      tensors.push({ name: 'probabilities', shape: [rows.length, model.classes.length], datatype: 'FP64', data: Array.from(prediction.probabilities) });
    }
    const parameters: Record<string, unknown> = { role: route.role };
    if (unknown) parameters.unknown_categories = byFeature(unknown);
    const body: Record<string, unknown> = { model_name: String(req.params.name), model_version: model.versionLabel, outputs: tensors, parameters };
    if (request.id !== undefined) body.id = request.id;
    res.json(body);
  };
  const body = jsonBody(options.bodyLimitBytes, options.shedder);
  router.post('/models/:name/infer', shed(options.shedder, INFER_ROUTE), ...body, (req, res) => infer(req, res));
  router.post('/models/:name/versions/:version/infer', shed(options.shedder, '/v2/models/:name/versions/:version/infer'), ...body, (req, res) => infer(req, res, String(req.params.version)));
  methodNotAllowed(router, { '/models/:name/infer': 'POST', '/models/:name/versions/:version/infer': 'POST' });

  router.use((req: Request, _res: Response, next: NextFunction) => {
    next(new ApiError(404, 'not_found', `No route ${req.method} ${req.originalUrl.split('?', 1)[0].slice(0, 200)}; see /docs for the API`));
  });
  router.use(errorHandler({ logger: options.logger, bodyLimitBytes: options.bodyLimitBytes, shape: 'oip' }));
  return router;
}

/** Per row's unknown features → per feature, the rows (the OIP response is columnar). */
function byFeature(unknown: readonly (readonly string[] | undefined)[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  unknown.forEach((features, row) => {
    for (const f of features ?? []) (out[f] ??= []).push(row);
  });
  return out;
}
