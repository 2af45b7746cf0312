/**
 * Bar and dot charts: grouped vertical bars (per-class precision/recall/F1, metrics
 * by version) and horizontal rows (feature importance, drift, metric comparison).
 * Series are told apart by colour and, for dots, by shape; thresholds are dashed lines.
 */
import { html, join, type Html } from '../html';
import { chart, clip, px, yAxis, type LegendItem, type Mark } from './frame';
import { OKABE_ITO, seriesColour } from './palette';

export interface Threshold {
  readonly label: string;
  readonly value: number;
}

interface Common {
  readonly id: string;
  readonly kind: string;
  readonly title: string;
  readonly description: string;
  readonly series: readonly string[];
  readonly format: (v: number) => string;
  /**
   * Axis tick labels (default: format). Ticks fall on quarters of a nice maximum (12.5 and
   * 37.5 of 50): a format that rounds for the marks must not label them (axisNumber).
   */
  readonly axisFormat?: (v: number) => string;
  readonly thresholds?: readonly Threshold[];
  readonly caption?: string;
}

export interface GroupedBarsInput extends Common {
  readonly groups: readonly string[];
  /** values[series][group]; null draws no bar. */
  readonly values: readonly (readonly (number | null)[])[];
  readonly max?: number;
  readonly yLabel?: string;
}

const THRESHOLD_COLOUR = OKABE_ITO.vermillion;

/** What a bar chart passes through to its frame unchanged. */
const frameOf = (input: Common) => ({ id: input.id, kind: input.kind, title: input.title, description: input.description, caption: input.caption });

/** A tick value as it is: no rounding a quarter tick could not survive, no float noise (0.30000000000000004). */
export function axisNumber(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** The smallest 1, 2, 2.5, 4 or 5 × 10^k at or above x: an axis maximum whose quarter ticks read well. */
export function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const k = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 2.5, 4, 5, 10].map((m) => m * k).find((m) => m >= x * (1 - 1e-9))!;
}

function legend(series: readonly string[], shapes: boolean, thresholds: readonly Threshold[] = []): LegendItem[] {
  return [
    ...series.map((s, i): LegendItem => ({ label: s, colour: seriesColour(i), shape: shapes ? (i % 2 === 0 ? 'circle' : 'square') : 'square' })),
    ...thresholds.map((t): LegendItem => ({ label: t.label, colour: THRESHOLD_COLOUR, shape: 'dash' })),
  ];
}

export function groupedBars(input: GroupedBarsInput): Html {
  const S = input.series.length;
  const G = input.groups.length;
  const all = input.values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  const max = input.max ?? niceMax(Math.max(1e-9, ...all, ...(input.thresholds ?? []).map((t) => t.value)) * 1.05);
  const bar = Math.max(8, Math.min(28, Math.floor(360 / Math.max(1, G * S))));
  const groupWidth = bar * S + 18;
  const left = 56;
  const top = 16;
  const plotHeight = 200;
  const bottom = top + plotHeight;
  const plotRight = Math.max(220, left + groupWidth * G + 8);
  // Threshold labels sit right of the plot, never over the bars.
  const width = plotRight + (input.thresholds?.length ? 132 : 12);
  const height = bottom + 40;
  const y = (v: number): number => px(bottom - (Math.min(v, max) / max) * plotHeight);
  const marks: Mark[] = [];
  for (let g = 0; g < G; g++) {
    for (let s = 0; s < S; s++) {
      const v = input.values[s]?.[g];
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      const x = left + g * groupWidth + 9 + s * bar;
      const top = y(Math.max(0, v));
      marks.push({
        label: `${input.groups[g]}, ${input.series[s]}: ${input.format(v)}`,
        shapes: html`<rect x="${x}" y="${top}" width="${bar - 2}" height="${px(Math.max(1, bottom - top))}" fill="${seriesColour(s)}" data-value="${v}"/>`,
      });
    }
  }
  const background = join([
    yAxis({ left, right: plotRight, top, bottom, max, ticks: 4, format: input.axisFormat ?? input.format, label: input.yLabel }),
    ...input.groups.map((g, i) => html`<text class="tick" x="${px(left + i * groupWidth + groupWidth / 2)}" y="${bottom + 16}" text-anchor="middle">${clip(g, Math.max(4, Math.floor(groupWidth / 7)))}</text>`),
  ]);
  const overlay = join([
    ...(input.thresholds ?? []).map(
      (t, i) =>
        html`<line class="threshold" x1="${left}" x2="${plotRight}" y1="${y(t.value)}" y2="${y(t.value)}" stroke="${THRESHOLD_COLOUR}" stroke-dasharray="6 3"/><text class="threshold-label" x="${plotRight + 4}" y="${px(y(t.value) + 4 + (i > 0 && Math.abs(y(t.value) - y(input.thresholds![i - 1].value)) < 12 ? 12 : 0))}">${t.label}</text>`,
    ),
  ]);
  return chart({
    ...frameOf(input),
    width,
    height,
    background,
    marks,
    overlay,
    legend: legend(input.series, false, input.thresholds),
    table: {
      headers: ['', ...input.series],
      rows: input.groups.map((g, gi) => [g, ...input.series.map((_, s) => fmtCell(input.values[s]?.[gi], input.format))]),
    },
  });
}

export interface HorizontalRow {
  readonly label: string;
  /** One value per series; null draws nothing. */
  readonly values: readonly (number | null)[];
  /** A per-row requirement (e.g. the gate a metric must reach), drawn as a tick. */
  readonly threshold?: number;
}

export interface HorizontalInput extends Common {
  readonly rows: readonly HorizontalRow[];
  /** 'bar' from the axis minimum, or 'dot' (a dot plot: differences show on a zoomed axis). */
  readonly style: 'bar' | 'dot';
  readonly min?: number;
  readonly max?: number;
  readonly xLabel?: string;
  readonly rowThresholdLabel?: string;
}

export function horizontalBars(input: HorizontalInput): Html {
  const S = input.series.length;
  const R = input.rows.length;
  const values = input.rows.flatMap((r) => r.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const reference = [...(input.thresholds ?? []).map((t) => t.value), ...input.rows.map((r) => r.threshold).filter((t): t is number => t !== undefined)];
  const min = input.min ?? 0;
  const max = Math.max(min + 1e-9, input.max ?? min + niceMax((Math.max(...values, ...reference, min + 1e-9) - min) * 1.05));
  const rowHeight = input.style === 'dot' ? 26 : Math.max(14, 8 + 10 * S);
  const left = 196;
  const top = input.thresholds?.length ? 24 : 12;
  const plotWidth = 380;
  const right = left + plotWidth;
  const bottom = top + rowHeight * R;
  const width = right + 24;
  const height = bottom + 40;
  const x = (v: number): number => px(left + ((Math.min(max, Math.max(min, v)) - min) / (max - min)) * plotWidth);
  const marks: Mark[] = [];
  input.rows.forEach((row, r) => {
    const y0 = top + r * rowHeight;
    row.values.forEach((v, s) => {
      if (v === null || !Number.isFinite(v)) return;
      const colour = seriesColour(s);
      const label = `${row.label}${S > 1 ? `, ${input.series[s]}` : ''}: ${input.format(v)}${row.threshold !== undefined ? ` (required ${input.format(row.threshold)})` : ''}`;
      if (input.style === 'dot') {
        const cy = px(y0 + rowHeight / 2);
        const shape =
          s % 2 === 0
            ? html`<circle cx="${x(v)}" cy="${cy}" r="6" fill="${colour}" data-value="${v}"/>`
            : html`<rect x="${px(x(v) - 5.5)}" y="${px(cy - 5.5)}" width="11" height="11" fill="${colour}" data-value="${v}"/>`;
        marks.push({ label, shapes: shape });
      } else {
        const h = (rowHeight - 6) / S;
        marks.push({
          label,
          shapes: html`<rect x="${left}" y="${px(y0 + 3 + s * h)}" width="${px(Math.max(1, x(v) - left))}" height="${px(Math.max(2, h - 1))}" fill="${colour}" data-value="${v}"/>`,
        });
      }
    });
  });
  const ticks: Html[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = min + ((max - min) * i) / 4;
    ticks.push(html`<line class="grid" x1="${x(v)}" x2="${x(v)}" y1="${top}" y2="${bottom}"/><text class="tick" x="${x(v)}" y="${bottom + 14}" text-anchor="middle">${(input.axisFormat ?? input.format)(v)}</text>`);
  }
  const background = join([
    join(ticks),
    ...input.rows.map(
      (row, r) => html`<text class="tick" x="${left - 8}" y="${px(top + r * rowHeight + rowHeight / 2 + 4)}" text-anchor="end">${clip(row.label, 28)}</text>${
        input.style === 'dot' ? html`<line class="row-rule" x1="${left}" x2="${right}" y1="${px(top + r * rowHeight + rowHeight / 2)}" y2="${px(top + r * rowHeight + rowHeight / 2)}"/>` : ''
      }`,
    ),
    input.xLabel ? html`<text class="axis-label" x="${px((left + right) / 2)}" y="${bottom + 32}" text-anchor="middle">${input.xLabel}</text>` : '',
  ]);
  const overlay = join([
    ...input.rows.map((row, r) =>
      row.threshold !== undefined
        ? html`<line class="threshold" x1="${x(row.threshold)}" x2="${x(row.threshold)}" y1="${top + r * rowHeight + 2}" y2="${top + (r + 1) * rowHeight - 2}" stroke="${THRESHOLD_COLOUR}" stroke-width="3"/>`
        : '',
    ),
    ...(input.thresholds ?? []).map(
      (t) => html`<line class="threshold" x1="${x(t.value)}" x2="${x(t.value)}" y1="${top}" y2="${bottom}" stroke="${THRESHOLD_COLOUR}" stroke-dasharray="6 3"/><text class="threshold-label" x="${x(t.value)}" y="${top - 8}" text-anchor="middle">${t.label}</text>`,
    ),
  ]);
  const legendItems = legend(input.series, input.style === 'dot', input.thresholds);
  if (input.rows.some((r) => r.threshold !== undefined)) legendItems.push({ label: input.rowThresholdLabel ?? 'required', colour: THRESHOLD_COLOUR, shape: 'dash' });
  const hasThreshold = input.rows.some((r) => r.threshold !== undefined);
  return chart({
    ...frameOf(input),
    width,
    height,
    background,
    marks,
    overlay,
    legend: legendItems,
    table: {
      headers: ['', ...input.series, ...(hasThreshold ? [input.rowThresholdLabel ?? 'required'] : [])],
      rows: input.rows.map((r) => [r.label, ...input.series.map((_, s) => fmtCell(r.values[s], input.format)), ...(hasThreshold ? [fmtCell(r.threshold, input.format)] : [])]),
    },
  });
}

function fmtCell(v: number | null | undefined, format: (v: number) => string): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : format(v);
}
