/**
 * The console's only stylesheet and script, served from the console itself (no CDN:
 * it must work inside a private VPC) under a content-hashed URL, so the CSP can be
 * 'self' only and browsers may cache them forever.
 *
 * The script adds keyboard navigation to charts (Tab reaches a chart's first mark,
 * arrow keys / Home / End move between marks, and the focused mark's label is read
 * out and shown under the chart); pages work without it.
 */
import { createHash } from 'node:crypto';

const CSS = `
:root{--fg:#1b1b1b;--muted:#555;--line:#d0d0d0;--bg:#fff;--panel:#f6f7f9;--accent:#0072B2;--bad:#a33a00;--good:#00704f;--warn:#8a6d00;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid #E69F00;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.25rem .5rem;z-index:2}
header.top{display:flex;align-items:center;gap:1.5rem;padding:.6rem 1.2rem;background:#10263b;color:#fff;flex-wrap:wrap}
header.top a{color:#fff;text-decoration:none}header.top a[aria-current=page]{text-decoration:underline;text-underline-offset:6px}
header.top .brand{font-weight:700;letter-spacing:.02em}
header.top nav ul{display:flex;gap:1.1rem;list-style:none;margin:0;padding:0}
header.top .who{margin-left:auto;display:flex;gap:.75rem;align-items:center;font-size:.9rem}
header.top .who form{margin:0}
header.top button{background:transparent;color:#fff;border:1px solid #fff8;border-radius:4px;padding:.15rem .6rem;cursor:pointer}
main{padding:1rem 1.4rem 3rem;max-width:84rem}
h1{font-size:1.45rem;margin:.4rem 0 .8rem}h2{font-size:1.15rem;margin:1.8rem 0 .6rem;padding-bottom:.2rem;border-bottom:1px solid var(--line)}h3{font-size:1rem;margin:1rem 0 .4rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.92rem}
th,td{border-bottom:1px solid var(--line);padding:.3rem .65rem;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
tbody th[scope=row]{white-space:nowrap}
thead th{background:var(--panel);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.differs th,tr.differs td{background:#fff5e0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.86em;word-break:break-all}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;font-weight:600;border:1px solid}
.status-Approved{color:var(--good);border-color:var(--good)}.status-Rejected{color:var(--bad);border-color:var(--bad)}.status-PendingManualApproval{color:var(--warn);border-color:var(--warn)}
.marker{display:inline-block;margin-left:.35rem;padding:.05rem .45rem;border-radius:4px;font-size:.75rem;font-weight:700;background:#10263b;color:#fff}
.marker.canary{background:#E69F00;color:#000}.marker.shadow{background:#56B4E9;color:#000}.marker.latest{background:#fff;color:#10263b;border:1px solid #10263b}
.gate-passed{color:var(--good);font-weight:600}.gate-failed,.gate-forced{color:var(--bad);font-weight:600}
.notice{background:var(--panel);border-left:4px solid var(--accent);padding:.5rem .9rem;margin:.6rem 0}
.notice.error{border-color:var(--bad);background:#fff1ec}.notice.ok{border-color:var(--good);background:#eefaf4}
.grid{display:flex;flex-wrap:wrap;gap:1.2rem;align-items:flex-start}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1.5rem;align-items:start}
nav.toc ul{display:flex;flex-wrap:wrap;gap:.2rem 1rem;list-style:none;padding:0;margin:.2rem 0 .6rem;font-size:.9rem}
figure.chart{margin:.4rem 0 1rem;max-width:100%}
figure.chart svg.chart-svg{max-width:100%;height:auto;display:block;overflow:visible;margin-top:.3rem}
.chart .grid,.chart line.grid{stroke:#e3e3e3;stroke-width:1}
.chart .axis{stroke:#888}
.chart .row-rule{stroke:#eee}
.chart text{font-size:11px}
.chart .chart-background text{fill:#333}
.chart text.axis-label{font-size:12px;fill:#222;font-weight:600}
.chart text.cell-count{font-size:14px;font-weight:700}.chart text.cell-share{font-size:11px}
.chart text.threshold-label{fill:#a33a00;font-size:11px}
.chart .mark{cursor:default;outline:none}
.chart .mark:focus rect,.chart .mark:focus circle,.chart .mark:hover rect,.chart .mark:hover circle{stroke:#000;stroke-width:2.5}
figcaption{font-size:.86rem;color:var(--muted);max-width:44rem}
figcaption .chart-title{font-weight:600;color:var(--fg)}
figcaption ul.legend{list-style:none;display:flex;flex-wrap:wrap;gap:.2rem 1rem;padding:0;margin:.15rem 0 0}
figcaption ul.legend li{white-space:nowrap}
figcaption .swatch{vertical-align:-1px}
.chart-readout{display:block;min-height:1.3em;color:var(--fg);font-size:.86rem;font-weight:600}
details.chart-data summary{font-size:.82rem;color:var(--muted);cursor:pointer}
.small-multiples{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:.2rem 1rem}
.small-multiples figure.chart{margin:0}
form.inline{display:inline}
form.filters{display:flex;gap:.6rem;align-items:end;flex-wrap:wrap;margin:.4rem 0 1rem}
label{font-weight:600;font-size:.9rem}
select,input[type=text],input[type=password],textarea{font:inherit;padding:.3rem .45rem;border:1px solid #999;border-radius:4px}
textarea{width:min(40rem,100%);min-height:4.5rem;display:block}
button,.button{font:inherit;font-weight:600;padding:.35rem .9rem;border-radius:4px;border:1px solid #10263b;background:#10263b;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:#10263b}
button.danger{background:#a33a00;border-color:#a33a00}
fieldset{border:1px solid var(--line);border-radius:6px;padding:.6rem 1rem;margin:.8rem 0;max-width:44rem}
fieldset.override{border-color:var(--bad)}
.field{margin:.5rem 0}
.hint{font-size:.85rem;color:var(--muted);font-weight:400}
.login{max-width:30rem;margin:3rem auto}
.model-card{max-width:60rem}
footer.bottom{padding:1rem 1.4rem;color:var(--muted);font-size:.8rem;border-top:1px solid var(--line)}
`;

const JS = `
(function () {
  'use strict';
  function marksOf(svg) { return Array.prototype.slice.call(svg.querySelectorAll('.mark')); }
  function readout(mark) {
    var fig = mark.closest('figure');
    var out = fig && fig.querySelector('.chart-readout');
    if (out) out.textContent = mark.getAttribute('aria-label');
  }
  document.addEventListener('focusin', function (e) {
    var t = e.target;
    if (t && t.classList && t.classList.contains('mark')) readout(t);
  });
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    if (!t || !t.classList || !t.classList.contains('mark')) return;
    var marks = marksOf(t.ownerSVGElement || t.closest('svg'));
    var i = marks.indexOf(t), next = -1;
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') next = Math.min(marks.length - 1, i + 1);
    else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') next = Math.max(0, i - 1);
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = marks.length - 1;
    if (next < 0 || next === i) return;
    e.preventDefault();
    t.setAttribute('tabindex', '-1');
    marks[next].setAttribute('tabindex', '0');
    marks[next].focus();
  });
  document.addEventListener('change', function (e) {
    var t = e.target;
    if (t && t.id === 'override') {
      var reason = document.getElementById('override-reason');
      if (reason) reason.required = t.checked;
    }
  });
})();
`;

function asset(body: string, type: string): { body: string; type: string; hash: string } {
  return { body, type, hash: createHash('sha256').update(body).digest('hex').slice(0, 16) };
}

export const ASSETS = {
  css: asset(CSS.trim(), 'text/css; charset=utf-8'),
  js: asset(JS.trim(), 'text/javascript; charset=utf-8'),
} as const;
