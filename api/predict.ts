/**
 * Scoring a validated /predict body and turning it into the response, shared by the
 * lean request path (api/fast-predict.ts) and the Express route (api/app.ts), so both
 * answer byte for byte the same.
 *
 * The single-row response is the hot one: its JSON is assembled from strings
 * precomputed per model (keys, label, model reference), so a prediction costs the
 * walker call, a few number-to-string conversions and one concatenation — no
 * intermediate objects and no JSON.stringify walk.
 */
import type { Logger } from 'pino';
import type { RawRow } from '../model/walker';
import type { ApiMetrics, Role } from './metrics';
import type { ModelManager, Route, ServedModel } from './model-manager';

export interface PredictionBody {
  label: string;
  probabilities: Record<string, number>;
  explanation?: { bias: Record<string, number>; contributions: Record<string, Record<string, number>> };
}

/** Per served model: the constant parts of a single-row response. */
export class ResponseEncoder {
  /** Per class k: `{"label":"<class k>","probabilities":{"<class 0>":`. */
  private readonly heads: string[];
  /** Per class k >= 1: `,"<class k>":`. */
  private readonly keys: string[];
  /** Per role: `},"model":{...}}`. */
  private readonly tails: Record<'champion' | 'canary', string>;

  constructor(model: Pick<ServedModel, 'name' | 'version' | 'sha256' | 'classes'>) {
    const classes = model.classes;
    this.heads = classes.map((c) => `{"label":${JSON.stringify(c)},"probabilities":{${JSON.stringify(classes[0])}:`);
    this.keys = classes.map((c) => `,${JSON.stringify(c)}:`);
    const tail = (role: string) => `},"model":${JSON.stringify({ name: model.name, version: model.version, sha256: model.sha256, role })}}`;
    this.tails = { champion: tail('champion'), canary: tail('canary') };
  }

  /**
   * Scores one row and returns the response JSON, identical to JSON.stringify of
   * `{label, probabilities: {class: p, ...}, model: {name, version, sha256, role}}`.
   */
  single(model: ServedModel, role: 'champion' | 'canary', row: RawRow): { json: string; label: string } {
    // predict() decides the label (hard-vote forests may break ties by first-to-reach, not argmax).
    const { classIndex, label, probabilities: p } = model.forest.predict(row);
    // Probabilities are finite, where String(x) and JSON.stringify(x) agree.
    let json = this.heads[classIndex] + String(p[0]);
    for (let k = 1; k < p.length; k++) json += this.keys[k] + String(p[k]);
    return { json: json + this.tails[role], label };
  }
}

/**
 * A validated /predict body → the response JSON, with drift observed, predictions
 * counted and the shadow scheduled. `rows`/`batch` come from RequestValidator.parsePredict.
 */
export function predictResponse(
  manager: ModelManager,
  logger: Logger,
  route: Route,
  rows: RawRow[],
  batch: boolean,
  explain: boolean,
  requestId: string,
): string {
  const model = route.model;
  const metrics = manager.metrics;
  for (let i = 0; i < rows.length; i++) model.drift.observe(rows[i]);
  let json: string;
  let labels: string[];
  if (!batch && !explain) {
    const out = model.encoder.single(model, route.role, rows[0]);
    metrics.countPrediction(model.versionLabel, route.role, out.label);
    json = out.json;
    labels = route.shadow ? [out.label] : [];
  } else {
    const modelRef = { name: model.name, version: model.version, sha256: model.sha256, role: route.role };
    if (!batch) {
      const out: PredictionBody & { model?: typeof modelRef } = predictOne(model, rows[0], true);
      metrics.countPrediction(model.versionLabel, route.role, out.label);
      out.model = modelRef;
      json = JSON.stringify(out);
      labels = [out.label];
    } else {
      metrics.batchSize.observe({ route: '/predict' }, rows.length);
      const predictions = explain ? rows.map((r) => predictOne(model, r, true)) : predictMany(model, rows);
      countLabels(metrics, model.versionLabel, route.role, predictions);
      json = JSON.stringify({ predictions, model: modelRef });
      labels = predictions.map((p) => p.label);
    }
  }
  if (route.shadow) scoreShadow(manager, logger, route, rows, labels, requestId);
  return json;
}

export function classRecord(classes: readonly string[], values: ArrayLike<number>, offset = 0): Record<string, number> {
  const out: Record<string, number> = {};
  for (let k = 0; k < classes.length; k++) out[classes[k]] = values[offset + k];
  return out;
}

export function predictOne(model: ServedModel, row: RawRow, explain: boolean): PredictionBody {
  if (explain) {
    const e = model.forest.explain(row);
    const contributions: Record<string, Record<string, number>> = {};
    for (const [feature, values] of Object.entries(e.contributions)) contributions[feature] = classRecord(model.classes, values);
    let best = 0;
    for (let k = 1; k < model.classes.length; k++) if (e.probabilities[k] > e.probabilities[best]) best = k;
    return {
      label: model.classes[best],
      probabilities: classRecord(model.classes, e.probabilities),
      explanation: { bias: classRecord(model.classes, e.bias), contributions },
    };
  }
  const p = model.forest.predict(row);
  return { label: p.label, probabilities: classRecord(model.classes, p.probabilities) };
}

export function predictMany(model: ServedModel, rows: RawRow[]): PredictionBody[] {
  const result = model.forest.predictBatch(rows);
  const k = model.classes.length;
  const out: PredictionBody[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = { label: result.labels[i], probabilities: classRecord(model.classes, result.probabilities, i * k) };
  return out;
}

export function countLabels(metrics: ApiMetrics, version: string, role: Role, predictions: readonly { label: string }[]): void {
  const counts = new Map<string, number>();
  for (const p of predictions) counts.set(p.label, (counts.get(p.label) ?? 0) + 1);
  for (const [label, n] of counts) metrics.countPrediction(version, role, label, n);
}

/** Scores the shadow challenger after the response is on its way: measured, never returned, never a failure for the client. */
export function scoreShadow(manager: ModelManager, logger: Logger, route: Route, rows: RawRow[], championLabels: readonly string[], requestId: string): void {
  const shadow = route.shadow;
  if (!shadow) return;
  const champion = route.model;
  setImmediate(() => {
    try {
      const labels = shadow.forest.predictBatch(rows).labels;
      let agree = 0;
      for (let i = 0; i < labels.length; i++) if (labels[i] === championLabels[i]) agree++;
      const m = manager.metrics;
      countLabels(m, shadow.versionLabel, 'shadow', labels.map((label) => ({ label })));
      const versions = { champion_version: champion.versionLabel, shadow_version: shadow.versionLabel };
      if (agree > 0) m.shadowComparisons.inc({ ...versions, outcome: 'agree' }, agree);
      if (labels.length - agree > 0) m.shadowComparisons.inc({ ...versions, outcome: 'disagree' }, labels.length - agree);
    } catch (err) {
      logger.error({ reqId: requestId, event: 'shadow_failed', version: shadow.version, err: err instanceof Error ? err.message : String(err) }, 'shadow scoring failed');
    }
  });
}
