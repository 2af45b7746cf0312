/** Probes and introspection: /health (liveness), /ready (readiness, with the reasons), /model, /metrics. */
import express from 'express';
import { FEATURE_DEFINITIONS_VERSION } from '../../etl/feature-definitions';
import type { ModelManager } from '../model-manager';
import { notReady } from '../request-context';
import type { ServedModel } from '../served-model';
import { methodNotAllowed } from './common';

export function probesRouter(manager: ModelManager): express.Router {
  const router = express.Router();
  const metrics = manager.metrics;

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime() * 10) / 10, pid: process.pid });
  });

  router.get('/ready', (_req, res) => {
    const status = manager.status();
    res.status(status.ready ? 200 : 503);
    if (!status.ready) res.setHeader('Retry-After', '5');
    res.json(status);
  });

  router.get('/model', (_req, res) => {
    const champion = manager.champion;
    if (!champion) throw notReady(manager);
    const ch = manager.challenger;
    res.json({
      name: manager.modelName,
      champion: describeModel(champion),
      challenger: ch ? { mode: ch.mode, percent: ch.percent, ...describeModel(ch.model) } : null,
      registry: manager.registry.uri,
      pollIntervalMs: manager.pollIntervalMs,
      batchLimit: manager.batchLimit,
    });
  });

  router.get('/metrics', async (_req, res) => {
    const text = await metrics.scrape();
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(text);
  });

  methodNotAllowed(router, { '/health': 'GET', '/ready': 'GET', '/model': 'GET', '/metrics': 'GET' });
  return router;
}

/** The model's feature-definition version beside this server's: raw-line requests need them equal. */
function featureDefinitionsOf(m: ServedModel): Record<string, unknown> {
  const model = m.training.featureDefinitions ?? null;
  return { version: model, server: FEATURE_DEFINITIONS_VERSION, rawLines: model === FEATURE_DEFINITIONS_VERSION };
}

function describeModel(m: ServedModel): Record<string, unknown> {
  return {
    name: m.name,
    version: m.version,
    sha256: m.sha256,
    status: m.registryEntry.status,
    loadedAt: m.loadedAt,
    loadSeconds: m.loadSeconds,
    loadPhasesMs: m.loadPhasesMs,
    trees: m.trees,
    aggregation: m.aggregation,
    classes: m.classes,
    features: m.features,
    featureDefinitions: featureDefinitionsOf(m),
    training: m.training,
    evaluation: m.evaluation,
    registryMetrics: m.registryEntry.metrics,
    lineage: m.registryEntry.lineage,
  };
}
