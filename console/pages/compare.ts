/** Compare two versions: metric deltas against the gates, both confusion matrices and calibration curves, lineage diff. */
import type { ModelVersion } from '../../model/registry';
import type { Principal } from '../auth';
import { evaluationOf } from '../evaluation-view';
import { html, type Html } from '../html';
import type { VersionInsights } from '../version-data';
import { calibrationChart, confusionChart, lineageDiff, metricDeltas } from './evaluation-charts';
import { layout, markers, notice, statusBadge, versionSelect, type ServingState, type Site } from './layout';

/** Both versions' confusion matrices and calibration, side by side, plus both curves on one diagram. */
export function sideBySide(prefix: string, va: ModelVersion, vb: ModelVersion): Html {
  const a = evaluationOf(va.metrics);
  const b = evaluationOf(vb.metrics);
  const confusion = (v: ModelVersion, e: ReturnType<typeof evaluationOf>, id: string): Html =>
    e ? confusionChart(id, `v${v.version} confusion (${e.split}, ${e.rows} rows)`, e) : notice('info', `v${v.version} records no confusion matrix.`);
  const calibration = (v: ModelVersion, e: ReturnType<typeof evaluationOf>, id: string, series: number): Html =>
    e ? calibrationChart(id, `v${v.version} reliability`, [{ name: `v${v.version}`, e, series }]) : notice('info', `v${v.version} records no calibration.`);
  return html`<h3>Confusion matrices</h3><div class="pair">${confusion(va, a, `${prefix}-confusion-a`)}${confusion(vb, b, `${prefix}-confusion-b`)}</div>
<h3>Calibration</h3><div class="pair">${calibration(va, a, `${prefix}-reliability-a`, 0)}${calibration(vb, b, `${prefix}-reliability-b`, 1)}${
    a && b ? calibrationChart(`${prefix}-reliability-both`, `v${va.version} and v${vb.version} overlaid`, [{ name: `v${va.version}`, e: a }, { name: `v${vb.version}`, e: b }]) : ''
  }</div>`;
}

export function comparePage(o: {
  site: Site;
  principal: Principal;
  all: readonly ModelVersion[];
  a?: ModelVersion;
  b?: ModelVersion;
  ia?: VersionInsights;
  ib?: VersionInsights;
  serving: ServingState;
}): string {
  const form = html`<form class="filters" method="get" action="/compare">${versionSelect('a', 'Baseline (a)', o.all, o.a?.version ?? o.serving.latestApproved)}${versionSelect(
    'b',
    'Candidate (b)',
    o.all,
    o.b?.version ?? o.all[o.all.length - 1]?.version,
  )}<button type="submit">Compare</button></form>`;
  if (!o.a || !o.b) {
    const body = html`<h1>Compare versions</h1>${o.all.length < 2 ? notice('info', 'The registry needs at least two versions to compare.') : form}`;
    return layout({ title: 'Compare', site: o.site, principal: o.principal, active: 'compare', body });
  }
  const { a, b } = o;
  const head = (v: ModelVersion): Html => html`<a href="/versions/${v.version}">v${v.version}</a> ${statusBadge(v.status)}${markers(v.version, o.serving)}`;
  const body = html`<h1>Compare v${a.version} and v${b.version}</h1>
${form}
<p>Baseline ${head(a)} · candidate ${head(b)}. Deltas are candidate − baseline; gates are the candidate's.</p>
<section aria-labelledby="h-deltas"><h2 id="h-deltas">Metric deltas</h2>${metricDeltas('compare-deltas', a, b)}</section>
<section aria-labelledby="h-side"><h2 id="h-side">Side by side</h2>${sideBySide('compare', a, b)}</section>
<section aria-labelledby="h-lineage"><h2 id="h-lineage">Lineage diff</h2>${lineageDiff(a, b, o.ia, o.ib)}</section>`;
  return layout({ title: `Compare v${a.version} and v${b.version}`, site: o.site, principal: o.principal, active: 'compare', body });
}
