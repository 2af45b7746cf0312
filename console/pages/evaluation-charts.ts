/**
 * The evaluation pieces the Version, Compare and Review pages share: confusion heat
 * map, per-class precision/recall/F1, reliability diagram, metric deltas against the
 * gate thresholds, and the lineage diff.
 */
import type { GateConfig } from '../../model/gates';
import type { ModelVersion } from '../../model/registry';
import { groupedBars, horizontalBars } from '../charts/bars';
import { confusionHeatmap } from '../charts/heatmap';
import { reliabilityDiagram } from '../charts/reliability';
import { evaluationOf, gateReportOf, metricThresholds, type EvaluationView } from '../evaluation-view';
import { html, type Html } from '../html';
import type { VersionInsights } from '../version-data';
import { f4, notice, shortSha, signed } from './layout';

export function confusionChart(id: string, title: string, e: EvaluationView): Html {
  return confusionHeatmap({ id, title, classes: e.classes, confusion: e.confusion });
}

export function perClassChart(id: string, e: EvaluationView, config: GateConfig | undefined): Html {
  return groupedBars({
    id,
    kind: 'per-class',
    title: 'Precision, recall and F1 by class',
    description: `Per-class precision, recall and F1 on the ${e.split} split${config ? `; the dashed line is the precision gate (${config.minClassPrecision})` : ''}.`,
    groups: e.classes,
    series: ['precision', 'recall', 'F1'],
    values: [e.classes.map((c) => e.perClass[c].precision), e.classes.map((c) => e.perClass[c].recall), e.classes.map((c) => e.perClass[c].f1)],
    max: 1,
    format: (x) => x.toFixed(2),
    thresholds: config ? [{ label: `precision gate ${config.minClassPrecision}`, value: config.minClassPrecision }] : [],
    yLabel: e.split,
  });
}

export function calibrationChart(id: string, title: string, curves: readonly { name: string; e: EvaluationView; series?: number }[]): Html {
  const usable = curves.filter((c) => c.e.calibration);
  if (usable.length === 0) return notice('info', 'No calibration summary recorded for this version.');
  return reliabilityDiagram({
    id,
    title,
    curves: usable.map((c) => ({ name: c.name, bins: c.e.calibration!.bins, ece: c.e.calibration!.expectedCalibrationError, series: c.series })),
  });
}

interface MetricRow {
  readonly name: string;
  readonly a: number | null;
  readonly b: number | null;
  readonly threshold?: number;
  /** Whether larger is better (log loss, ECE: smaller). */
  readonly higherIsBetter: boolean;
}

function metricRows(a: EvaluationView, b: EvaluationView, config: GateConfig | undefined): MetricRow[] {
  const thresholds: Record<string, number | undefined> = config ? metricThresholds(config, [...new Set([...a.classes, ...b.classes])]) : {};
  const rows: MetricRow[] = [
    { name: 'accuracy', a: a.accuracy, b: b.accuracy, threshold: thresholds.accuracy, higherIsBetter: true },
    { name: 'macroF1', a: a.macroF1, b: b.macroF1, threshold: thresholds.macroF1, higherIsBetter: true },
  ];
  for (const c of b.classes) {
    const pa = a.perClass[c];
    const pb = b.perClass[c];
    rows.push({ name: `precision[${c}]`, a: pa?.precision ?? null, b: pb.precision, threshold: thresholds[`precision[${c}]`], higherIsBetter: true });
    rows.push({ name: `recall[${c}]`, a: pa?.recall ?? null, b: pb.recall, higherIsBetter: true });
    rows.push({ name: `F1[${c}]`, a: pa?.f1 ?? null, b: pb.f1, higherIsBetter: true });
  }
  rows.push({ name: 'logLoss', a: a.logLoss, b: b.logLoss, higherIsBetter: false });
  rows.push({ name: 'ECE', a: a.calibration?.expectedCalibrationError ?? null, b: b.calibration?.expectedCalibrationError ?? null, higherIsBetter: false });
  return rows;
}

/**
 * Metric deltas of b against a, with the gate each metric is held to (b's gate
 * configuration: the one the candidate was checked against) marked in the table and chart.
 */
export function metricDeltas(id: string, va: ModelVersion, vb: ModelVersion): Html {
  const a = evaluationOf(va.metrics);
  const b = evaluationOf(vb.metrics);
  if (!a || !b) return notice('info', `v${(a ? vb : va).version} records no test evaluation: there is nothing to compare metric by metric.`);
  const config = (gateReportOf(vb.metrics) ?? gateReportOf(va.metrics))?.config;
  const rows = metricRows(a, b, config);
  const passes = (v: number | null, t: number | undefined): Html =>
    t === undefined || v === null ? html`` : v >= t - 1e-12 ? html`<span class="gate-passed">pass</span>` : html`<span class="gate-failed">FAIL</span>`;
  const table = html`<table class="deltas"><thead><tr><th scope="col">metric (test)</th><th scope="col" class="num">v${va.version}</th><th scope="col" class="num">v${vb.version}</th><th scope="col" class="num">Δ v${vb.version} − v${va.version}</th><th scope="col" class="num">gate</th><th scope="col">v${va.version}</th><th scope="col">v${vb.version}</th></tr></thead><tbody>${rows.map((r) => {
    const delta = r.a !== null && r.b !== null ? r.b - r.a : null;
    const better = delta === null || Math.abs(delta) < 5e-5 ? '' : (delta > 0) === r.higherIsBetter ? 'better' : 'worse';
    const t = r.threshold;
    return html`<tr data-metric="${r.name}"><th scope="row">${r.name}</th><td class="num">${f4(r.a)}</td><td class="num">${f4(r.b)}</td><td class="num" data-delta="${better}">${delta === null ? '—' : signed(delta)}${better ? html` <span class="hint">(${better})</span>` : ''}</td><td class="num">${t === undefined ? '' : `≥ ${f4(t)}`}</td><td>${passes(r.a, t)}</td><td>${passes(r.b, t)}</td></tr>`;
  })}</tbody></table>`;
  const charted = rows.filter((r) => r.higherIsBetter);
  const lowest = Math.min(...charted.flatMap((r) => [r.a, r.b, r.threshold ?? 1]).filter((x): x is number => x !== null && Number.isFinite(x)));
  const chart = horizontalBars({
    id,
    kind: 'metric-deltas',
    title: `Test metrics, v${va.version} and v${vb.version}`,
    description: `Dot plot of ${charted.length} test metrics for v${va.version} (circles) and v${vb.version} (squares); a vertical bar marks the gate a metric is held to.`,
    series: [`v${va.version}`, `v${vb.version}`],
    rows: charted.map((r) => ({ label: r.name, values: [r.a, r.b], threshold: r.threshold })),
    style: 'dot',
    // Zoomed to the data, in steps of 0.2 below 1 so the quarter ticks land on round numbers.
    min: Math.max(0, Math.round((1 - Math.ceil((1 - lowest + 0.02) / 0.2) * 0.2) * 100) / 100),
    max: 1,
    format: (x) => x.toFixed(3),
    rowThresholdLabel: 'gate',
  });
  return html`${chart}${table}`;
}

/** Lineage of two versions, row by row, differences flagged. */
export function lineageDiff(va: ModelVersion, vb: ModelVersion, ia?: VersionInsights, ib?: VersionInsights): Html {
  const rows: [string, string, string][] = [
    ['dataset manifest', va.lineage.datasetManifestSha256 ?? '—', vb.lineage.datasetManifestSha256 ?? '—'],
    ['code version', va.lineage.codeVersion ?? '—', vb.lineage.codeVersion ?? '—'],
    ['registered by', va.lineage.registeredBy, vb.lineage.registeredBy],
    ['forced registration', String(va.lineage.forced), String(vb.lineage.forced)],
  ];
  if (ia && ib) {
    rows.push(['trainer', ia.training.trainer, ib.training.trainer], ['training rows', String(ia.training.rows), String(ib.training.rows)], ['trees / nodes', `${ia.trees} / ${ia.nodes}`, `${ib.trees} / ${ib.nodes}`]);
  }
  const keys = [...new Set([...Object.keys(va.lineage.hyperparameters), ...Object.keys(vb.lineage.hyperparameters)])].sort();
  for (const k of keys) rows.push([`hyperparameter ${k}`, JSON.stringify(va.lineage.hyperparameters[k]) ?? '—', JSON.stringify(vb.lineage.hyperparameters[k]) ?? '—']);
  rows.push(['forest SHA-256', va.forestSha256, vb.forestSha256]);
  const differing = rows.filter(([, a, b]) => a !== b).length;
  return html`<p>${differing} of ${rows.length} lineage fields differ.</p><table class="lineage-diff"><thead><tr><th scope="col">field</th><th scope="col">v${va.version}</th><th scope="col">v${vb.version}</th><th scope="col">same?</th></tr></thead><tbody>${rows.map(
    ([field, a, b]) =>
      html`<tr class="${a === b ? '' : 'differs'}" data-field="${field}" data-differs="${String(a !== b)}"><th scope="row">${field}</th><td><code>${a.length === 64 ? shortSha(a) : a}</code></td><td><code>${b.length === 64 ? shortSha(b) : b}</code></td><td>${a === b ? 'same' : html`<strong>differs</strong>`}</td></tr>`,
  )}</tbody></table>`;
}
