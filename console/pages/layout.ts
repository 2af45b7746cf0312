/** The page frame (navigation, who is signed in, sign-out) and the small pieces every page uses. */
import type { ModelStatus, ModelVersion } from '../../model/registry';
import { ASSETS } from '../assets';
import type { Principal } from '../auth';
import { gateStatus } from '../evaluation-view';
import { html, type Html, type HtmlValue } from '../html';
import type { ServedModel } from '../serving-api';

export interface Site {
  readonly registryUri: string;
  readonly lakeUri?: string;
  readonly apiUrl?: string;
}

export type Section = 'versions' | 'compare' | 'live' | 'none';

/** What the console knows about serving: the registry's latest Approved, and the API's own report when --api is given. */
export interface ServingState {
  readonly latestApproved: number | undefined;
  readonly api: { readonly models: readonly ServedModel[] } | { readonly error: string } | undefined;
}

export const f4 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(4));
export const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
export const signed = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(4)}`;
export const shortSha = (s: string | null | undefined): string => (s ? s.slice(0, 12) : '—');
export const when = (iso: string): string => iso.slice(0, 19).replace('T', ' ');

export const STATUS_LABEL: Record<ModelStatus, string> = { PendingManualApproval: 'Pending', Approved: 'Approved', Rejected: 'Rejected' };

export function statusBadge(status: ModelStatus): Html {
  return html`<span class="badge status-${status}" data-status="${status}">${STATUS_LABEL[status]}</span>`;
}

export function gateBadge(v: ModelVersion): Html {
  const s = gateStatus(v);
  const text = s === 'forced' ? 'FAILED (forced)' : s === 'failed' ? 'FAILED' : s;
  return html`<span class="gate-${s.replace(' ', '-')}" data-gates="${s}">${text}</span>`;
}

/** served / canary / shadow / latest-Approved markers of one version. */
export function markers(version: number, serving: ServingState): Html {
  const out: Html[] = [];
  const api = serving.api && 'models' in serving.api ? serving.api.models : undefined;
  if (api) {
    for (const m of api.filter((m) => m.version === version)) {
      const text = m.role === 'champion' ? 'served' : m.role;
      out.push(html`<span class="marker ${m.role}" data-marker="${text}" title="the serving API reports this version as its ${m.role}">${text}</span>`);
    }
    if (serving.latestApproved === version && !api.some((m) => m.role === 'champion' && m.version === version)) {
      out.push(html`<span class="marker latest" data-marker="latest-approved" title="the registry's latest Approved version: the API loads it on its next poll">latest Approved</span>`);
    }
  } else if (serving.latestApproved === version) {
    out.push(html`<span class="marker" data-marker="served" title="the registry's latest Approved version, which the API serves (start the console with --api to see what it actually serves)">served</span>`);
  }
  return html`${out}`;
}

export function notice(kind: 'info' | 'error' | 'ok', body: HtmlValue): Html {
  return html`<div class="notice ${kind === 'info' ? '' : kind}" role="${kind === 'error' ? 'alert' : 'status'}">${body}</div>`;
}

function nav(active: Section, site: Site): Html {
  const item = (key: Section, href: string, text: string): Html =>
    html`<li><a href="${href}"${active === key ? html` aria-current="page"` : ''}>${text}</a></li>`;
  return html`<nav aria-label="main"><ul>${item('versions', '/', 'Versions')}${item('compare', '/compare', 'Compare')}${site.apiUrl ? item('live', '/live', 'Live') : ''}</ul></nav>`;
}

export function layout(o: { title: string; site: Site; principal?: Principal; active?: Section; body: Html }): string {
  const who = o.principal
    ? html`<div class="who"><span data-identity="${o.principal.identity}" data-role="${o.principal.role}">${o.principal.identity} · ${o.principal.role}</span>${
        o.principal.via === 'session'
          ? html`<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${o.principal.csrf ?? ''}"><button type="submit">Sign out</button></form>`
          : ''
      }</div>`
    : '';
  const doc = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · pricesense console</title>
<link rel="stylesheet" href="/assets/console.css?v=${ASSETS.css.hash}">
<script src="/assets/console.js?v=${ASSETS.js.hash}" defer></script>
</head><body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="/">pricesense console</a>${o.principal ? nav(o.active ?? 'none', o.site) : ''}${who}</header>
<main id="main">${o.body}</main>
${
  // Where the registry, lake and API live is for people who signed in, not for anyone who can reach the sign-in page.
  o.principal
    ? html`<footer class="bottom">registry <code>${o.site.registryUri}</code>${o.site.lakeUri ? html` · lake <code>${o.site.lakeUri}</code>` : ''}${o.site.apiUrl ? html` · API <code>${o.site.apiUrl}</code>` : ''}</footer>`
    : ''
}
</body></html>`;
  return doc.text;
}

/** A <select> of versions (for the compare form). */
export function versionSelect(name: string, label: string, versions: readonly ModelVersion[], selected: number | undefined): Html {
  return html`<div><label for="${name}">${label}</label><br><select id="${name}" name="${name}">${versions.map(
    (v) => html`<option value="${v.version}"${v.version === selected ? html` selected` : ''}>v${v.version} · ${STATUS_LABEL[v.status]}</option>`,
  )}</select></div>`;
}
