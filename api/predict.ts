/**
 * The POST /predict protocol: a validated body → the response JSON, shared by the lean
 * request path (api/fast-predict.ts) and the Express route (api/routes/predict.ts) so
 * both answer byte for byte the same. Scoring, counting, drift and shadow are the
 * prediction layer's (api/prediction.ts); this file only shapes the answer.
 *
 * `?explain=true` adds a Saabas explanation and changes nothing else: label and
 * probabilities are the plain prediction's (for a hard-vote forest the explanation
 * attributes the mean leaf distribution, which is not the vote; `explains` says so).
 */
import type { RawRow } from '../model/walker';
import type { Predictor } from './prediction';
import type { Route, ServedModel } from './served-model';
import type { PredictInput } from './validation';

export interface Explanation {
  bias: Record<string, number>;
  contributions: Record<string, Record<string, number>>;
  /** What bias + Σ contributions adds up to: the probabilities (soft vote), or the mean leaf distribution (hard vote). */
  explains: 'probabilities' | 'mean-leaf-distribution';
}

export interface PredictionBody {
  label: string;
  probabilities: Record<string, number>;
  /** Categorical features whose value the model has never seen: scored as missing. */
  unknownCategories?: readonly string[];
  explanation?: Explanation;
  /** Only with ?features=true: the feature row scored (for a raw-line basket, the features computed from its lines). */
  features?: RawRow;
}

/** What a /predict response adds to the plain prediction (query parameters). */
export interface PredictExtras {
  readonly explain: boolean;
  readonly features: boolean;
}

export const NO_EXTRAS: PredictExtras = { explain: false, features: false };

export function classRecord(classes: readonly string[], values: ArrayLike<number>, offset = 0): Record<string, number> {
  const out: Record<string, number> = {};
  for (let k = 0; k < classes.length; k++) out[classes[k]] = values[offset + k];
  return out;
}

function explanationOf(model: ServedModel, row: RawRow): Explanation {
  const e = model.forest.explain(row);
  const contributions: Record<string, Record<string, number>> = {};
  for (const [feature, values] of Object.entries(e.contributions)) contributions[feature] = classRecord(model.classes, values);
  return { bias: classRecord(model.classes, e.bias), contributions, explains: e.explains };
}

/** The response JSON of a validated /predict body. */
export function predictJson(predictor: Predictor, route: Route, input: PredictInput, extras: PredictExtras, requestId: string): string {
  const model = route.model;
  const { rows, batch } = input;
  const { explain, features } = extras;
  if (!batch) {
    const { prediction, unknown } = predictor.one(route, rows[0], requestId);
    if (!explain && !features) return model.encoder.single(prediction, route.role, unknown);
    const body: PredictionBody = { label: prediction.label, probabilities: classRecord(model.classes, prediction.probabilities) };
    if (unknown) body.unknownCategories = unknown;
    if (explain) body.explanation = explanationOf(model, rows[0]);
    if (features) body.features = rows[0];
    return JSON.stringify({ ...body, model: modelRef(route) });
  }
  const { prediction, unknown } = predictor.many(route, rows, requestId, '/predict');
  const K = model.classes.length;
  const predictions: PredictionBody[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const p: PredictionBody = { label: prediction.labels[i], probabilities: classRecord(model.classes, prediction.probabilities, i * K) };
    const u = unknown?.[i];
    if (u) p.unknownCategories = u;
    if (explain) p.explanation = explanationOf(model, rows[i]);
    if (features) p.features = rows[i];
    predictions[i] = p;
  }
  return JSON.stringify({ predictions, model: modelRef(route) });
}

function modelRef(route: Route) {
  const m = route.model;
  return { name: m.name, version: m.version, sha256: m.sha256, role: route.role };
}
