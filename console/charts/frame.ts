/**
 * What every chart shares: an SVG with a title and description for screen readers,
 * one focusable group per data mark (arrow keys move between them, see
 * console/assets.ts), an HTML legend, and the numbers as a table under a disclosure —
 * the chart is never the only way to read the data.
 */
import { html, join, type Html, type HtmlValue } from '../html';

export interface Mark {
  /** What a screen reader announces and the tooltip shows, e.g. "actual Low, predicted High: 12 (4.1%)". */
  readonly label: string;
  /** The shapes of the mark (SVG, positioned in the chart's coordinates). */
  readonly shapes: Html;
}

export interface LegendItem {
  readonly label: string;
  readonly colour: string;
  readonly shape?: 'square' | 'circle' | 'dash';
}

export interface ChartSpec {
  /** Unique within the page (ids of the title and description derive from it). */
  readonly id: string;
  /** The chart type, as data-chart (tests and styling key on it). */
  readonly kind: string;
  readonly title: string;
  readonly description: string;
  readonly width: number;
  readonly height: number;
  /** Axes, grid lines and labels: decoration, hidden from assistive technology. */
  readonly background: Html;
  readonly marks: readonly Mark[];
  /** Reference lines drawn over the marks (thresholds), also hidden from assistive technology. */
  readonly overlay?: Html;
  readonly legend?: readonly LegendItem[];
  readonly table: { readonly headers: readonly string[]; readonly rows: readonly (readonly (string | number)[])[] };
  readonly caption?: HtmlValue;
}

/** Rounds a coordinate: shorter markup, no visible difference. */
export const px = (x: number): number => Math.round(x * 10) / 10;

export function swatch(item: LegendItem): Html {
  const shape =
    item.shape === 'circle'
      ? html`<circle cx="6" cy="6" r="5" fill="${item.colour}"/>`
      : item.shape === 'dash'
        ? html`<line x1="0" y1="6" x2="12" y2="6" stroke="${item.colour}" stroke-width="2" stroke-dasharray="4 2"/>`
        : html`<rect x="1" y="1" width="10" height="10" fill="${item.colour}"/>`;
  return html`<svg class="swatch" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true">${shape}</svg>`;
}

export function chart(spec: ChartSpec): Html {
  const titleId = `${spec.id}-title`;
  const descId = `${spec.id}-desc`;
  const marks = spec.marks.map(
    (m, i) => html`<g class="mark" role="img" tabindex="${i === 0 ? 0 : -1}" aria-label="${m.label}"><title>${m.label}</title>${m.shapes}</g>`,
  );
  const legend = spec.legend?.length
    ? html`<ul class="legend">${spec.legend.map((l) => html`<li>${swatch(l)} ${l.label}</li>`)}</ul>`
    : '';
  return html`<figure class="chart" data-chart="${spec.kind}" id="${spec.id}">
<figcaption><span class="chart-title">${spec.title}</span>${spec.caption ? html` — ${spec.caption}` : ''}${legend}</figcaption>
<svg class="chart-svg" viewBox="0 0 ${spec.width} ${spec.height}" width="${spec.width}" height="${spec.height}" role="group" aria-labelledby="${titleId}" aria-describedby="${descId}" data-marks="${spec.marks.length}">
<title id="${titleId}">${spec.title}</title><desc id="${descId}">${spec.description}</desc>
<g class="chart-background" aria-hidden="true">${spec.background}</g>
<g class="chart-marks">${join(marks)}</g>
${spec.overlay ? html`<g class="chart-overlay" aria-hidden="true">${spec.overlay}</g>` : ''}
</svg>
<output class="chart-readout" aria-live="polite"></output>
<details class="chart-data"><summary>Data table</summary><table>
<thead><tr>${spec.table.headers.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
<tbody>${spec.table.rows.map((r) => html`<tr>${r.map((c, i) => (i === 0 ? html`<th scope="row">${c}</th>` : html`<td>${c}</td>`))}</tr>`)}</tbody>
</table></details>
</figure>`;
}

/** Horizontal grid lines with tick labels for a 0..max linear axis. */
export function yAxis(o: { left: number; right: number; top: number; bottom: number; max: number; ticks: number; format: (v: number) => string; label?: string }): Html {
  const parts: Html[] = [];
  for (let i = 0; i <= o.ticks; i++) {
    const v = (o.max * i) / o.ticks;
    const y = px(o.bottom - ((o.bottom - o.top) * i) / o.ticks);
    parts.push(html`<line class="grid" x1="${o.left}" y1="${y}" x2="${o.right}" y2="${y}"/><text class="tick" x="${o.left - 6}" y="${y + 4}" text-anchor="end">${o.format(v)}</text>`);
  }
  if (o.label) {
    const cy = px((o.top + o.bottom) / 2);
    parts.push(html`<text class="axis-label" x="12" y="${cy}" transform="rotate(-90 12 ${cy})" text-anchor="middle">${o.label}</text>`);
  }
  return join(parts);
}

/** Shortens a label to n characters with an ellipsis (the full text stays in the mark's label and the table). */
export function clip(text: string, n: number): string {
  return text.length <= n ? text : `${text.slice(0, Math.max(1, n - 1))}…`;
}
