/** Versions: every version with status, headline metrics, gate verdict, registration, serving markers; filter by status. */
import { MODEL_STATUSES, type ModelStatus, type ModelVersion } from '../../model/registry';
import type { Principal } from '../auth';
import { groupedBars } from '../charts/bars';
import { gateReportOf, headlineOf } from '../evaluation-view';
import { html, type Html } from '../html';
import { f4, gateBadge, layout, markers, notice, STATUS_LABEL, statusBadge, versionSelect, when, type ServingState, type Site } from './layout';

/** Versions drawn in the metrics chart (the newest ones): beyond this the bars get too thin to read. */
const CHART_VERSIONS = 24;

export function versionsPage(o: {
  site: Site;
  principal: Principal;
  versions: readonly ModelVersion[];
  all: readonly ModelVersion[];
  status: ModelStatus | undefined;
  serving: ServingState;
  /** The table's page (newest first); the chart and the pickers are not paged. */
  page?: { number: number; size: number };
}): string {
  const size = o.page?.size ?? Number.POSITIVE_INFINITY;
  const pages = Math.max(1, Math.ceil(o.versions.length / size));
  const pageNumber = Math.min(o.page?.number ?? 1, pages);
  const newestFirst = [...o.versions].reverse();
  const onPage = Number.isFinite(size) ? newestFirst.slice((pageNumber - 1) * size, pageNumber * size) : newestFirst;
  const shown = o.versions.slice(-CHART_VERSIONS);
  const newest = [...o.all].reverse().find((v) => gateReportOf(v.metrics));
  const config = newest ? gateReportOf(newest.metrics)!.config : undefined;
  const chartBody =
    shown.length > 0
      ? groupedBars({
          id: 'versions-metrics',
          kind: 'version-metrics',
          title: 'Test metrics by version',
          description: `Test accuracy and macro F1 of ${shown.length} version(s)${config ? `, with the accuracy and macro-F1 gates (${f4(config.minAccuracy)}, ${f4(config.minMacroF1)}) as dashed lines` : ''}.`,
          groups: shown.map((v) => `v${v.version}`),
          series: ['accuracy', 'macro F1'],
          values: [shown.map((v) => headlineOf(v.metrics).accuracy), shown.map((v) => headlineOf(v.metrics).macroF1)],
          max: 1,
          format: (x) => x.toFixed(2),
          thresholds: config
            ? [
                { label: `accuracy gate ${config.minAccuracy}`, value: config.minAccuracy },
                { label: `macro-F1 gate ${config.minMacroF1}`, value: config.minMacroF1 },
              ]
            : [],
          yLabel: 'test split',
        })
      : '';
  const apiProblem = o.serving.api && 'error' in o.serving.api ? notice('error', html`Serving markers are from the registry only: ${o.serving.api.error}`) : '';
  const rows = onPage.map((v) => {
    const h = headlineOf(v.metrics);
    return html`<tr data-version="${v.version}">
<th scope="row"><a href="/versions/${v.version}">v${v.version}</a>${markers(v.version, o.serving)}</th>
<td>${statusBadge(v.status)}</td>
<td class="num">${f4(h.accuracy)}</td><td class="num">${f4(h.macroF1)}</td><td class="num">${f4(h.ece)}</td>
<td>${gateBadge(v)}</td>
<td>${v.lineage.registeredBy}</td><td><time datetime="${v.lineage.registeredAt}">${when(v.lineage.registeredAt)}</time></td>
<td><a href="/versions/${v.version}/review">${v.status === 'PendingManualApproval' ? 'Review' : 'Decide'}</a>${
      o.serving.latestApproved !== undefined && o.serving.latestApproved !== v.version
        ? html` · <a href="/compare?a=${o.serving.latestApproved}&amp;b=${v.version}">vs served</a>`
        : ''
    }</td></tr>`;
  });
  const filter = html`<form class="filters" method="get" action="/">
<div><label for="status">Status</label><br><select id="status" name="status"><option value="">All</option>${MODEL_STATUSES.map(
    (s) => html`<option value="${s}"${o.status === s ? html` selected` : ''}>${STATUS_LABEL[s]}</option>`,
  )}</select></div><button type="submit" class="secondary">Filter</button></form>`;
  const compareForm =
    o.all.length >= 2
      ? html`<h2>Compare two versions</h2><form class="filters" method="get" action="/compare">${versionSelect('a', 'Baseline', o.all, o.serving.latestApproved ?? o.all[o.all.length - 2].version)}${versionSelect(
          'b',
          'Candidate',
          o.all,
          o.all[o.all.length - 1].version,
        )}<button type="submit">Compare</button></form>`
      : '';
  const body = html`<h1>Model versions</h1>
${apiProblem}
${filter}
<p>${o.versions.length} ${o.status ? html`${STATUS_LABEL[o.status]} ` : ''}version(s) of ${o.all.length}. ${
    o.serving.latestApproved !== undefined ? html`The registry's latest Approved version is <a href="/versions/${o.serving.latestApproved}">v${o.serving.latestApproved}</a>.` : 'No version is Approved yet: nothing is served.'
  }</p>
${chartBody}
${
  o.versions.length > 0
    ? html`<table class="versions"><caption class="hint">Newest first. Metrics on the test split; ECE = expected calibration error.</caption><thead><tr><th scope="col">Version</th><th scope="col">Status</th><th scope="col" class="num">Accuracy</th><th scope="col" class="num">Macro F1</th><th scope="col" class="num">ECE</th><th scope="col">Gates</th><th scope="col">Registered by</th><th scope="col">Registered (UTC)</th><th scope="col">Actions</th></tr></thead><tbody>${rows}</tbody></table>`
    : notice('info', o.status ? `No ${STATUS_LABEL[o.status]} versions.` : 'The registry has no versions yet: register one with `pricesense train --register` or `pricesense registry register`.')
}
${pages > 1 ? pager(pageNumber, pages, o.status) : ''}
${compareForm}`;
  return layout({ title: 'Versions', site: o.site, principal: o.principal, active: 'versions', body });
}

function pager(current: number, pages: number, status: ModelStatus | undefined): Html {
  const href = (n: number) => `/?${status ? `status=${encodeURIComponent(status)}&` : ''}page=${n}`;
  return html`<nav class="pager" aria-label="pages of versions"><span data-page="${current}">Page ${current} of ${pages}</span>${
    current > 1 ? html` · <a rel="prev" href="${href(current - 1)}">newer</a>` : ''
  }${current < pages ? html` · <a rel="next" href="${href(current + 1)}">older</a>` : ''}</nav>`;
}
