/**
 * Approve / reject: the gate report and the comparison against the served version on
 * the same page as the decision form. A note is mandatory; approving a version whose
 * gates failed (or that was never evaluated) needs the override box ticked and a reason,
 * which the registry records as the audit entry's gate override.
 */
import { gateFailure, gatesToOverride, type ModelStatus, type ModelVersion } from '../../model/registry';
import type { Principal } from '../auth';
import { gateReportOf } from '../evaluation-view';
import { html, type Html } from '../html';
import { metricDeltas } from './evaluation-charts';
import { sideBySide } from './compare';
import { f4, gateBadge, layout, markers, notice, statusBadge, STATUS_LABEL, type ServingState, type Site } from './layout';

export type Decision = 'approve' | 'reject';

export interface DecisionForm {
  readonly note: string;
  readonly override: boolean;
  readonly overrideReason: string;
}

/** Which decisions the registry's status machine allows from a status. */
export function allowedDecisions(status: ModelStatus): Decision[] {
  if (status === 'PendingManualApproval') return ['approve', 'reject'];
  return status === 'Approved' ? ['reject'] : ['approve'];
}

function gateReport(v: ModelVersion): Html {
  const report = gateReportOf(v.metrics);
  if (!report) return notice('info', html`This version records no gate report (gates: ${gateBadge(v)}).`);
  return html`<p>Quality gates on the ${report.split} split: ${gateBadge(v)}${
    report.champion ? html`; checked against champion <code>${report.champion.sha256?.slice(0, 12) ?? '(unsealed)'}</code> (accuracy ${f4(report.champion.accuracy)}, macro F1 ${f4(report.champion.macroF1)})` : ''
  }.</p>
<table class="gates"><thead><tr><th scope="col">gate</th><th scope="col" class="num">required</th><th scope="col" class="num">actual</th><th scope="col">result</th></tr></thead><tbody>${report.results.map(
    (r) =>
      html`<tr data-gate="${r.gate}" data-passed="${r.passed}"><th scope="row">${r.gate}</th><td class="num">≥ ${f4(r.required)}</td><td class="num">${f4(r.actual)}</td><td>${
        r.passed ? html`<span class="gate-passed">pass</span>` : html`<span class="gate-failed">FAIL</span> (short by ${f4(r.shortfall)})`
      }</td></tr>`,
  )}</tbody></table>`;
}

function decisionForm(v: ModelVersion, principal: Principal, form: DecisionForm | undefined): Html {
  if (principal.role !== 'approver') {
    return notice('info', html`You are signed in as <strong>${principal.identity}</strong> with the <strong>viewer</strong> role: only approvers can approve or reject.`);
  }
  const allowed = allowedDecisions(v.status);
  const toOverride = gatesToOverride(v.metrics);
  const override =
    toOverride && allowed.includes('approve')
      ? html`<fieldset class="override"><legend>${gateFailure(v.metrics) ? 'Quality gates failed' : 'Not evaluated'}</legend><p>${toOverride}.</p>
<div class="field"><input type="checkbox" id="override" name="override" value="yes"${form?.override ? html` checked` : ''}> <label for="override">Override the failed gates (approving needs this; it is recorded as an override)</label></div>
<div class="field"><label for="override-reason">Override reason <span class="hint">(required to approve)</span></label><textarea id="override-reason" name="overrideReason" maxlength="2000">${form?.overrideReason ?? ''}</textarea></div></fieldset>`
      : '';
  return html`<form method="post" action="/versions/${v.version}/approve" class="decision">
<input type="hidden" name="_csrf" value="${principal.csrf ?? ''}">
<input type="hidden" name="expected" value="${v.status}">
<p>Deciding as <strong>${principal.identity}</strong> (recorded in the audit trail). Current status: ${statusBadge(v.status)}.</p>
<div class="field"><label for="note">Note <span class="hint">(required: why — it goes into the audit trail)</span></label><textarea id="note" name="note" required maxlength="2000">${form?.note ?? ''}</textarea></div>
${override}
${allowed.includes('approve') ? html`<button type="submit" formaction="/versions/${v.version}/approve" name="decision" value="approve">Approve v${v.version}</button> ` : ''}
${allowed.includes('reject') ? html`<button type="submit" class="danger" formaction="/versions/${v.version}/reject" name="decision" value="reject">Reject v${v.version}${v.status === 'Approved' ? ' (roll back)' : ''}</button>` : ''}
</form>`;
}

export function reviewPage(o: {
  site: Site;
  principal: Principal;
  v: ModelVersion;
  served: ModelVersion | undefined;
  serving: ServingState;
  error?: string;
  done?: string;
  form?: DecisionForm;
}): string {
  const v = o.v;
  const comparison =
    o.served && o.served.version !== v.version
      ? html`<p>Against the served version <a href="/versions/${o.served.version}">v${o.served.version}</a>${markers(o.served.version, o.serving)}: deltas are v${v.version} − v${o.served.version}.</p>${metricDeltas('review-deltas', o.served, v)}${sideBySide('review', o.served, v)}`
      : o.served
        ? notice('info', html`v${v.version} is the served version.`)
        : notice('info', 'No version is Approved yet: approving this one makes it the served model.');
  const body = html`<h1>Review version ${v.version} ${statusBadge(v.status)}${markers(v.version, o.serving)}</h1>
${o.done ? notice('ok', html`<span data-outcome="done">${o.done}</span>`) : ''}
${o.error ? notice('error', html`<span data-outcome="error">${o.error}</span>`) : ''}
<p><a href="/versions/${v.version}">Full version page</a> · registered by ${v.lineage.registeredBy}${v.lineage.forced ? html` · <strong class="gate-failed">registered with --force</strong>` : ''} · status ${STATUS_LABEL[v.status]}</p>
<section aria-labelledby="h-decision"><h2 id="h-decision">Decision</h2>${decisionForm(v, o.principal, o.form)}</section>
<section aria-labelledby="h-gates"><h2 id="h-gates">Gate report</h2>${gateReport(v)}</section>
<section aria-labelledby="h-served"><h2 id="h-served">Comparison with the served version</h2>${comparison}</section>`;
  return layout({ title: `Review v${v.version}`, site: o.site, principal: o.principal, active: 'versions', body });
}
