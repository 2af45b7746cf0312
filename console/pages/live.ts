/** Live: what the serving API reports — served versions, requests and latency per version, drift (PSI) and unknown categories per feature. */
import type { Principal } from '../auth';
import { axisNumber, groupedBars, horizontalBars } from '../charts/bars';
import { html, type Html } from '../html';
import { PSI_THRESHOLDS, type FeatureValue, type LiveSnapshot } from '../serving-api';
import { layout, notice, pct, shortSha, type Site } from './layout';

const ms = (x: number | null): string => (x === null ? '—' : x < 1 ? x.toFixed(2) : x < 10 ? x.toFixed(1) : x.toFixed(0));
const count = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : Number.isInteger(x) ? String(x) : x.toFixed(1));

/** One row per feature, one series per served model (version and role). */
function perFeature(values: readonly FeatureValue[]): { series: string[]; rows: { label: string; values: (number | null)[] }[] } {
  const series = [...new Set(values.map((v) => `v${v.version}${v.role ? ` ${v.role}` : ''}`))];
  const features = [...new Set(values.map((v) => v.feature))];
  const rows = features.map((feature) => ({
    label: feature,
    values: series.map((s) => values.find((v) => v.feature === feature && `v${v.version}${v.role ? ` ${v.role}` : ''}` === s)?.value ?? null),
  }));
  rows.sort((a, b) => Math.max(...b.values.map((x) => x ?? 0)) - Math.max(...a.values.map((x) => x ?? 0)));
  return { series, rows };
}

function trafficSection(live: LiveSnapshot): Html {
  if (live.traffic.length === 0) return notice('info', 'No requests answered by a model yet.');
  const versions = live.traffic.map((t) => `v${t.version}`);
  return html`<div class="pair">${groupedBars({
    id: 'live-requests',
    kind: 'requests',
    title: 'Requests per version',
    description: `Requests answered by each model version since the API started: ${live.traffic.map((t) => `v${t.version} ${t.requests}`).join(', ')}.`,
    groups: versions,
    series: ['requests'],
    values: [live.traffic.map((t) => t.requests)],
    format: count,
    yLabel: 'requests',
  })}${groupedBars({
    id: 'live-latency',
    kind: 'latency',
    title: 'Latency per version',
    description: 'Median and 99th-percentile request latency per model version, estimated from the API histogram buckets (milliseconds).',
    groups: versions,
    series: ['p50 ms', 'p99 ms'],
    values: [live.traffic.map((t) => t.p50Ms), live.traffic.map((t) => t.p99Ms)],
    format: (x) => ms(x),
    axisFormat: axisNumber,
    yLabel: 'milliseconds',
  })}</div>
<table class="traffic"><thead><tr><th scope="col">version</th><th scope="col" class="num">requests</th><th scope="col" class="num">4xx</th><th scope="col" class="num">5xx</th><th scope="col" class="num">mean ms</th><th scope="col" class="num">p50 ms</th><th scope="col" class="num">p99 ms</th></tr></thead><tbody>${live.traffic.map(
    (t) =>
      html`<tr data-version="${t.version}"><th scope="row">v${t.version}</th><td class="num">${t.requests}</td><td class="num">${t.clientErrors}</td><td class="num">${t.serverErrors}</td><td class="num">${ms(t.meanMs)}</td><td class="num">${ms(t.p50Ms)}</td><td class="num">${ms(t.p99Ms)}</td></tr>`,
  )}</tbody></table>`;
}

function driftSection(live: LiveSnapshot): Html {
  if (live.drift.length === 0) return notice('info', 'No drift figures yet: the API reports PSI once its drift window has seen live rows.');
  const { series, rows } = perFeature(live.drift);
  const windows = live.driftWindow.map((w) => `v${w.version} ${w.role}: ${w.rows} rows`).join(', ');
  return horizontalBars({
    id: 'live-psi',
    kind: 'psi',
    title: 'Input drift (PSI) by feature',
    description: `Population stability index of the live inputs against each model's training distribution, per feature; above ${PSI_THRESHOLDS.moderate} is a moderate shift, above ${PSI_THRESHOLDS.major} a major one.`,
    series,
    rows,
    style: 'bar',
    min: 0,
    format: (x) => x.toFixed(3),
    thresholds: [
      { label: `moderate ${PSI_THRESHOLDS.moderate}`, value: PSI_THRESHOLDS.moderate },
      { label: `major ${PSI_THRESHOLDS.major}`, value: PSI_THRESHOLDS.major },
    ],
    xLabel: 'PSI',
    caption: windows ? `window: ${windows}` : undefined,
  });
}

function unknownSection(live: LiveSnapshot): Html {
  if (live.unknownCategories === null) {
    return notice(
      'info',
      html`No unknown categories reported. The API scores a category not seen in training as missing and counts it per feature (<code>pricesense_unknown_categories_total</code>) from the first one on; started with <code>PRICESENSE_UNKNOWN_CATEGORIES=reject</code> it refuses such requests instead, and they show up as 4xx above.`,
    );
  }
  if (live.unknownCategories.length === 0) return notice('info', 'No unknown categories seen.');
  const { series, rows } = perFeature(live.unknownCategories);
  return horizontalBars({
    id: 'live-unknown',
    kind: 'unknown-categories',
    title: 'Unknown-category rate by feature',
    description: 'Share of live values of each categorical feature that were not among the categories learned in training.',
    series,
    rows,
    style: 'bar',
    min: 0,
    format: (x) => pct(x),
    axisFormat: (x) => `${axisNumber(x * 100)}%`,
    xLabel: 'share of values',
  });
}

export function livePage(o: { site: Site; principal: Principal; live: LiveSnapshot | string }): string {
  let body: Html;
  if (typeof o.live === 'string') {
    body = html`<h1>Live</h1>${notice('error', o.live)}<p><a href="/live">Retry</a></p>`;
  } else {
    const live = o.live;
    body = html`<h1>Live</h1>
<p>From <code>${live.url}metrics</code> at ${live.fetchedAt} · <a href="/live">Refresh</a>. Figures are the answering replica's since it started.</p>
<section aria-labelledby="h-served"><h2 id="h-served">Served models</h2>${
      live.models.length
        ? html`<table class="served"><thead><tr><th scope="col">version</th><th scope="col">role</th><th scope="col">forest SHA-256</th></tr></thead><tbody>${live.models.map(
            (m) => html`<tr data-role="${m.role}"><th scope="row"><a href="/versions/${m.version}">v${m.version}</a></th><td>${m.role}</td><td><code>${shortSha(m.sha256)}</code></td></tr>`,
          )}</tbody></table>`
        : notice('error', 'The API reports no loaded model.')
    }</section>
<section aria-labelledby="h-traffic"><h2 id="h-traffic">Requests and latency</h2>${trafficSection(live)}</section>
<section aria-labelledby="h-drift"><h2 id="h-drift">Drift</h2>${driftSection(live)}</section>
<section aria-labelledby="h-unknown"><h2 id="h-unknown">Unknown categories</h2>${unknownSection(live)}</section>`;
  }
  return layout({ title: 'Live', site: o.site, principal: o.principal, active: 'live', body });
}
