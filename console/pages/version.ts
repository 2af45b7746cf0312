/**
 * Version: metrics, confusion heat map, per-class precision/recall/F1, reliability
 * diagram, feature importance, training feature distributions, lineage, artifact
 * digests with the verify action, audit trail and the model card.
 */
import type { AuditEntry, ChainStanding, ModelVersion } from '../../model/registry';
import type { Principal } from '../auth';
import { horizontalBars } from '../charts/bars';
import { featureDistribution } from '../charts/distribution';
import { cardFragment, type ModelCard } from '../card';
import { evaluationOf, gateReportOf, type EvaluationView } from '../evaluation-view';
import { html, type Html } from '../html';
import type { VerifyResult, VersionInsights } from '../version-data';
import { calibrationChart, confusionChart, perClassChart } from './evaluation-charts';
import { f4, gateBadge, layout, markers, notice, statusBadge, when, type ServingState, type Site } from './layout';

function metricsTable(splits: EvaluationView[]): Html {
  const cell = (x: number | null | undefined): Html => html`<td class="num">${f4(x)}</td>`;
  return html`<table class="metrics"><thead><tr><th scope="col">split</th><th scope="col" class="num">rows</th><th scope="col" class="num">accuracy</th><th scope="col" class="num">macro F1</th><th scope="col" class="num">log loss</th><th scope="col" class="num">ECE</th><th scope="col" class="num">max calibration gap</th><th scope="col" class="num">Brier</th></tr></thead><tbody>${splits.map(
    (e) =>
      html`<tr data-split="${e.split}"><th scope="row">${e.split}</th><td class="num">${e.rows}</td>${cell(e.accuracy)}${cell(e.macroF1)}${cell(e.logLoss)}${cell(e.calibration?.expectedCalibrationError)}${cell(e.calibration?.maxCalibrationError)}${cell(e.calibration?.brierScore)}</tr>`,
  )}</tbody></table>`;
}

function importanceSection(insights: VersionInsights | string): Html {
  if (typeof insights === 'string') return notice('error', `The forest file could not be read: ${insights}`);
  const saabas = typeof insights.saabas === 'string' ? undefined : insights.saabas;
  const byFeature = new Map(saabas?.importances.map((i) => [i.feature, i.share]));
  const order = [...insights.impurity].sort((a, b) => b.share - a.share);
  const chart = horizontalBars({
    id: 'importance',
    kind: 'importance',
    title: 'Feature importance',
    description: `Share of importance per feature: mean decrease in Gini impurity over the trees${saabas ? `, and mean absolute Saabas contribution on ${saabas.rows} test rows` : ''}; each series sums to 100%.`,
    series: saabas ? ['impurity decrease', 'mean |Saabas| (test)'] : ['impurity decrease'],
    rows: order.map((i) => ({ label: i.feature, values: saabas ? [i.share, byFeature.get(i.feature) ?? 0] : [i.share] })),
    style: 'bar',
    min: 0,
    format: (x) => `${(x * 100).toFixed(1)}%`,
    xLabel: 'share of importance',
  });
  const note =
    typeof insights.saabas === 'string'
      ? notice('info', html`Mean absolute Saabas contribution: ${insights.saabas}.`)
      : insights.saabas.matchesLineage
        ? html`<p class="hint">Saabas contributions on the first ${insights.saabas.rows} rows of the test split of this version's own data set.</p>`
        : notice('info', html`Saabas contributions on the lake's current test split (manifest <code>${insights.saabas.manifestSha256.slice(0, 12)}</code>), which is not the data set this version was trained on: read them as behaviour on today's data.`);
  return html`${chart}${note}`;
}

function distributions(insights: VersionInsights | string): Html {
  if (typeof insights === 'string') return html``;
  const features = insights.features.filter((f) => insights.featureStats[f.name]);
  if (features.length === 0) return notice('info', 'This forest carries no training feature statistics.');
  return html`<div class="small-multiples">${features.map((f, i) => featureDistribution(`dist-${i}`, f.name, insights.featureStats[f.name]))}</div>`;
}

function lineageTable(v: ModelVersion, insights: VersionInsights | string, lakeManifest: string | undefined, lakeUri: string | undefined): Html {
  const l = v.lineage;
  const rows: [string, Html | string][] = [
    ['dataset manifest (SHA-256)', html`<code>${l.datasetManifestSha256 ?? 'not recorded'}</code>${
      lakeManifest === undefined ? '' : lakeManifest === l.datasetManifestSha256 ? html` <span class="gate-passed">= the lake's current gold</span>` : html` <span class="hint">(the lake's current gold is <code>${lakeManifest.slice(0, 12)}</code>)</span>`
    }`],
    ['lake', lakeUri ? html`<code>${lakeUri}</code> (the console's --lake; the registry records the data set by its manifest digest)` : 'not given to the console (--lake)'],
    ['code version', html`<code>${l.codeVersion ?? 'not recorded'}</code>`],
    ['hyperparameters', html`<code>${JSON.stringify(l.hyperparameters)}</code>`],
    ['registered', `${l.registeredAt} by ${l.registeredBy}`],
    ['forced registration', l.forced ? 'yes — registered despite failed quality gates' : 'no'],
  ];
  if (typeof insights !== 'string') {
    const t = insights.training;
    rows.push(
      ['trainer (source)', `${t.trainer}${t.trainer === 'ml-random-forest' ? ' (converted from an ml-random-forest model)' : ''}`],
      ['parent', t.treeRange ? `partial forest: trees ${t.treeRange.start}–${t.treeRange.end} of ${t.treeRange.trees}` : 'none (trained as a whole)'],
      ['training', `${t.rows} rows, seed ${t.seed}, created ${t.createdAt}`],
      ['forest', `${insights.trees} trees, ${insights.nodes} nodes, ${insights.aggregation} aggregation, classes ${insights.classes.join(' / ')}`],
    );
  }
  return html`<table class="lineage"><tbody>${rows.map(([k, val]) => html`<tr><th scope="row">${k}</th><td>${val}</td></tr>`)}</tbody></table>`;
}

function artifact(v: ModelVersion, principal: Principal, verify: VerifyResult | undefined): Html {
  const result = verify
    ? notice(
        verify.ok ? 'ok' : 'error',
        html`<span data-verify="${verify.ok ? 'ok' : 'mismatch'}">${verify.ok ? 'Verified' : 'Verification FAILED'}</span> by the registry at ${verify.checkedAt}: ${
          verify.ok
            ? html`the audit trail's hash chain links and the stored artifact hashes to its registered SHA-256 <code>${v.artifactSha256}</code>.`
            : html`<ul>${verify.problems.map((p) => html`<li data-problem>${p}</li>`)}</ul>This version is not served while this holds; restore the altered files or reject and re-register it.`
        }${verify.warnings.length ? html`<ul>${verify.warnings.map((w) => html`<li data-warning>${w}</li>`)}</ul>` : ''}`,
      )
    : '';
  return html`<table class="artifact"><tbody>
<tr><th scope="row">artifact</th><td><code>${v.artifactUri}</code></td></tr>
<tr><th scope="row">artifact SHA-256 (registered)</th><td><code data-digest="artifact">${v.artifactSha256}</code></td></tr>
<tr><th scope="row">forest SHA-256 (content)</th><td><code>${v.forestSha256}</code> (format v${v.formatVersion})</td></tr>
</tbody></table>
<form method="post" action="/versions/${v.version}/verify"><input type="hidden" name="_csrf" value="${principal.csrf ?? ''}"><button type="submit" class="secondary">Verify</button> <span class="hint">the registry re-checks the audit trail's hash chain and re-reads the stored file to recompute its SHA-256 against the registered one</span></form>
${result}`;
}

/** How an entry stands to the hash chain, as the registry that verified it marked it (AuditEntry.chain); unmarked entries are linked. */
export function chainState(e: AuditEntry): 'linked' | ChainStanding {
  return e.chain ?? 'linked';
}

const CHAIN_LABEL = {
  linked: '✓ linked',
  outside: 'outside the chain (reconstructed from SageMaker: changed or registered outside pricesense)',
  sealed: 'sealed (written before the chain; covered by the migration entry)',
  unsealed: 'UNSEALED (written before the chain and not covered by it: not tamper-evident)',
  'not-applied': 'linked, NOT APPLIED (SageMaker never took this change; the status did not move)',
} as const;

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/**
 * The audit trail. The registry verified its hash chain when it read the version (a
 * trail that does not verify is never shown as valid: the read fails), so each entry
 * written through pricesense is marked as linked; entries reconstructed from SageMaker's
 * record are marked as outside the chain.
 */
export function auditTable(v: ModelVersion): Html {
  const states = v.audit.map(chainState);
  const count = (state: ReturnType<typeof chainState>) => states.filter((c) => c === state).length;
  const linked = count('linked') + count('not-applied');
  const [sealed, unsealed, outside, notApplied] = [count('sealed'), count('unsealed'), count('outside'), count('not-applied')];
  return html`<p data-chain-state="verified">Hash chain <strong class="gate-passed">verified</strong> when this page was read: ${plural(linked, 'entry', 'entries')}, each linked to the SHA-256 of the one before, the first to the version's registration record${
    sealed > 0 ? html`; ${plural(sealed, 'earlier entry was', 'earlier entries were')} written before the chain and ${sealed === 1 ? 'is' : 'are'} sealed as found by the migration entry` : ''
  }${notApplied > 0 ? html`; ${plural(notApplied, 'linked entry records a change', 'linked entries record changes')} SageMaker never took (not applied)` : ''}${
    unsealed > 0 ? html`; ${plural(unsealed, 'entry was', 'entries were')} written before the chain and ${unsealed === 1 ? 'is' : 'are'} <strong class="gate-failed">not covered by it</strong> (not tamper-evident)` : ''
  }${outside > 0 ? html`; ${plural(outside, 'entry', 'entries')} reconstructed from SageMaker (outside pricesense) ${outside === 1 ? 'is' : 'are'} not part of it` : ''}.</p>
<table class="audit"><thead><tr><th scope="col">#</th><th scope="col">when (UTC)</th><th scope="col">who</th><th scope="col">change</th><th scope="col">note</th><th scope="col">gate override</th><th scope="col">chain</th></tr></thead><tbody>${v.audit.map(
    (e, i) =>
      html`<tr data-audit="${i}" data-to="${e.to}" data-by="${e.by}"><td class="num">${i + 1}</td><td><time datetime="${e.at}">${when(e.at)}</time></td><td>${e.by}</td><td>${e.from ?? 'registered'} → ${e.to}</td><td>${e.note || '—'}</td><td>${
        e.override ? html`<span data-override="yes"><strong class="gate-failed">OVERRIDE</strong> of ${e.override.gates}: ${e.override.reason}</span>` : '—'
      }</td><td data-chain="${states[i]}">${CHAIN_LABEL[states[i]]}</td></tr>`,
  )}</tbody></table>`;
}

export function versionPage(o: {
  site: Site;
  principal: Principal;
  v: ModelVersion;
  serving: ServingState;
  insights: VersionInsights | string;
  card: ModelCard;
  lakeManifestSha256: string | undefined;
  verify?: VerifyResult;
}): string {
  const v = o.v;
  const test = evaluationOf(v.metrics, 'test');
  const validation = evaluationOf(v.metrics, 'validation');
  const splits = [test, validation].filter((e): e is EvaluationView => !!e);
  const config = gateReportOf(v.metrics)?.config;
  const toc = [
    ['metrics', 'Metrics'],
    ['confusion', 'Confusion & per class'],
    ['calibration', 'Calibration'],
    ['importance', 'Feature importance'],
    ['distributions', 'Training distributions'],
    ['lineage', 'Lineage'],
    ['artifact', 'Artifact'],
    ['audit', 'Audit trail'],
    ['card', 'Model card'],
  ];
  const compareLink =
    o.serving.latestApproved !== undefined && o.serving.latestApproved !== v.version ? html` · <a href="/compare?a=${o.serving.latestApproved}&amp;b=${v.version}">Compare with served v${o.serving.latestApproved}</a>` : '';
  const body = html`<h1>Version ${v.version} ${statusBadge(v.status)}${markers(v.version, o.serving)}</h1>
<p>Registered ${when(v.lineage.registeredAt)} UTC by <strong>${v.lineage.registeredBy}</strong>; quality gates ${gateBadge(v)}. <a href="/versions/${v.version}/review">Approve / reject</a>${compareLink}</p>
<nav class="toc" aria-label="sections"><ul>${toc.map(([id, t]) => html`<li><a href="#${id}">${t}</a></li>`)}</ul></nav>
${o.verify ? html`<section aria-label="verification result">${artifact(v, o.principal, o.verify)}</section>` : ''}
<section id="metrics" aria-labelledby="h-metrics"><h2 id="h-metrics">Metrics</h2>${splits.length ? metricsTable(splits) : notice('info', 'This version records no evaluation by split.')}</section>
<section id="confusion" aria-labelledby="h-confusion"><h2 id="h-confusion">Confusion matrix and per-class metrics</h2>${
    test ? html`<div class="pair">${confusionChart('confusion-test', `Confusion matrix (${test.split}, ${test.rows} rows)`, test)}${perClassChart('per-class', test, config)}</div>` : notice('info', 'No confusion matrix recorded.')
  }</section>
<section id="calibration" aria-labelledby="h-calibration"><h2 id="h-calibration">Calibration</h2>${
    test ? calibrationChart('reliability', 'Reliability diagram', splits.map((e) => ({ name: e.split, e }))) : notice('info', 'No calibration recorded.')
  }</section>
<section id="importance" aria-labelledby="h-importance"><h2 id="h-importance">Feature importance</h2>${importanceSection(o.insights)}</section>
<section id="distributions" aria-labelledby="h-distributions"><h2 id="h-distributions">Training feature distributions</h2>${distributions(o.insights)}</section>
<section id="lineage" aria-labelledby="h-lineage"><h2 id="h-lineage">Lineage</h2>${lineageTable(v, o.insights, o.lakeManifestSha256, o.site.lakeUri)}</section>
<section id="artifact" aria-labelledby="h-artifact"><h2 id="h-artifact">Artifact</h2>${o.verify ? html`<p>Verification result above.</p>` : artifact(v, o.principal, undefined)}</section>
<section id="audit" aria-labelledby="h-audit"><h2 id="h-audit">Audit trail</h2>${auditTable(v)}</section>
<section id="card" aria-labelledby="h-card"><h2 id="h-card">Model card</h2><p><a href="/versions/${v.version}/card?format=md">Download Markdown</a> · <a href="/versions/${v.version}/card?format=html">Download HTML</a></p>${cardFragment(o.card, 3)}</section>`;
  return layout({ title: `Version ${v.version}`, site: o.site, principal: o.principal, active: 'versions', body });
}
