/** Sign-in (token → session) and the error pages. */
import type { Principal } from '../auth';
import { html } from '../html';
import { layout, notice, type Site } from './layout';

/** Where to go after signing in: only a path on this console (never another origin). */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[^\s]*$/.test(next) ? next : '/';
}

export function loginPage(o: { site: Site; next: string; error?: string; proxyEnabled: boolean }): string {
  const body = html`<div class="login"><h1>Sign in</h1>
${o.error ? notice('error', o.error) : notice('info', 'This console needs a token. Ask an administrator for one (`pricesense console token`), or sign in through your organisation’s proxy.')}
<form method="post" action="/login">
<input type="hidden" name="next" value="${safeNext(o.next)}">
<div class="field"><label for="token">Access token</label><br><input type="password" id="token" name="token" autocomplete="off" required size="48" spellcheck="false"></div>
<button type="submit">Sign in</button>
</form>
<p class="hint">The token is exchanged for a session cookie (HttpOnly, SameSite=Strict) and is not stored in the browser. Scripts can send it as <code>Authorization: Bearer …</code> instead.${
    o.proxyEnabled ? ' Behind the OIDC proxy you are signed in automatically.' : ''
  }</p></div>`;
  return layout({ title: 'Sign in', site: o.site, body });
}

export function errorPage(o: { site: Site; principal?: Principal; status: number; title: string; message: string }): string {
  const body = html`<h1>${o.title}</h1>${notice('error', html`<span data-error-status="${o.status}">${o.message}</span>`)}<p><a href="/">Back to versions</a></p>`;
  return layout({ title: o.title, site: o.site, principal: o.principal, body });
}
