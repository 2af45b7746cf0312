/**
 * The one prediction layer: every route that scores (POST /predict on either request
 * path, OIP infer) hands validated rows here. It finds the category values the model
 * has never seen (scored as missing by the walker, counted per feature, reported back),
 * feeds the drift windows, scores, counts predictions by class, and schedules the
 * shadow challenger — once, the same way for every protocol. Protocols only turn the
 * result into their response shape (api/predict.ts, api/routes/oip.ts).
 */
import type { Logger } from 'pino';
import type { BatchPrediction, Prediction, RawRow } from '../model/walker';
import type { ApiMetrics } from './metrics';
import type { Route, ServedModel } from './served-model';

/** Per row: the features whose value is a category unknown to the model (undefined: none). */
export type UnknownCategories = (readonly string[] | undefined)[];

export interface BatchResult {
  readonly prediction: BatchPrediction;
  /** Undefined when no row had an unknown category. */
  readonly unknown: UnknownCategories | undefined;
}

export class Predictor {
  private readonly metrics: ApiMetrics;
  private readonly logger: Logger;

  /** Runs deferred work (shadow scoring, in an immediate after the answers): the load shedder sees it (LoadShedder.deferred). */
  runDeferred: (work: () => void) => void = (work) => work();

  constructor(metrics: ApiMetrics, logger: Logger) {
    this.metrics = metrics;
    this.logger = logger;
  }

  /** One row: the hot path (no arrays unless a category is unknown). */
  one(route: Route, row: RawRow, requestId: string): { prediction: Prediction; unknown: readonly string[] | undefined } {
    const model = route.model;
    const unknown = this.unknownOf(model, row);
    if (this.metrics.perRequest) model.drift.observe(row);
    const prediction = model.forest.predict(row);
    this.metrics.countPrediction(model.versionLabel, route.role, prediction.label);
    if (route.shadow) this.scoreShadow(route, [row], [prediction.label], requestId);
    return { prediction, unknown };
  }

  /** Many rows (a batch, or OIP tensors); `routeLabel` labels the batch-size histogram. */
  many(route: Route, rows: RawRow[], requestId: string, routeLabel: string): BatchResult {
    const model = route.model;
    let unknown: UnknownCategories | undefined;
    for (let i = 0; i < rows.length; i++) {
      const u = this.unknownOf(model, rows[i]);
      if (u !== undefined) (unknown ??= new Array<readonly string[] | undefined>(rows.length))[i] = u;
      if (this.metrics.perRequest) model.drift.observe(rows[i]);
    }
    const prediction = model.forest.predictBatch(rows);
    if (this.metrics.perRequest) this.metrics.batchSize.observe({ route: routeLabel }, rows.length);
    this.countLabels(model.versionLabel, route.role, prediction.labels);
    if (route.shadow) this.scoreShadow(route, rows, prediction.labels, requestId);
    return { prediction, unknown };
  }

  /**
   * The categorical features of `row` holding a value the model was not trained on.
   * Validation let them through (policy "missing"; with "reject" the request schema
   * refuses them first); the walker encodes them as missing.
   */
  private unknownOf(model: ServedModel, row: RawRow): string[] | undefined {
    const categorical = model.categorical;
    let out: string[] | undefined;
    for (let i = 0; i < categorical.length; i++) {
      const f = categorical[i];
      const v = row[f.name];
      if (v !== null && v !== undefined && !f.known.has(v as string)) {
        (out ??= []).push(f.name);
        this.metrics.countUnknownCategory(model.versionLabel, f.name);
      }
    }
    return out;
  }

  private countLabels(version: string, role: 'champion' | 'canary' | 'shadow', labels: readonly string[]): void {
    const counts = new Map<string, number>();
    for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
    for (const [label, n] of counts) this.metrics.countPrediction(version, role, label, n);
  }

  /** Scores the shadow challenger after the response is on its way: measured, never returned, never a failure for the client. */
  private scoreShadow(route: Route, rows: RawRow[], championLabels: readonly string[], requestId: string): void {
    const shadow = route.shadow!;
    const champion = route.model;
    setImmediate(() =>
      this.runDeferred(() => {
        try {
          const labels = shadow.forest.predictBatch(rows).labels;
          let agree = 0;
          for (let i = 0; i < labels.length; i++) if (labels[i] === championLabels[i]) agree++;
          this.countLabels(shadow.versionLabel, 'shadow', labels);
          if (!this.metrics.perRequest) return;
          const versions = { champion_version: champion.versionLabel, shadow_version: shadow.versionLabel };
          if (agree > 0) this.metrics.shadowComparisons.inc({ ...versions, outcome: 'agree' }, agree);
          if (labels.length - agree > 0) this.metrics.shadowComparisons.inc({ ...versions, outcome: 'disagree' }, labels.length - agree);
        } catch (err) {
          this.logger.error({ reqId: requestId, event: 'shadow_failed', version: shadow.version, err: err instanceof Error ? err.message : String(err) }, 'shadow scoring failed');
        }
      }),
    );
  }
}
