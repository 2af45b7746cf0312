/**
 * Calibration reliability diagram: per confidence bin, the accuracy of the rows
 * against their mean top-class probability; the diagonal is perfect calibration.
 * One point per non-empty bin, and bars along the bottom for how many rows each bin holds.
 */
import { html, join, type Html } from '../html';
import { chart, px, type LegendItem, type Mark } from './frame';
import { OKABE_ITO, seriesColour } from './palette';

export interface ReliabilityBinInput {
  readonly lower: number;
  readonly upper: number;
  readonly count: number;
  readonly meanConfidence: number;
  readonly accuracy: number;
}

export interface ReliabilityCurve {
  readonly name: string;
  readonly bins: readonly ReliabilityBinInput[];
  readonly ece: number;
  /** Colour and shape index (default: the curve's position), so a version keeps its look across charts. */
  readonly series?: number;
}

export interface ReliabilityInput {
  readonly id: string;
  readonly title: string;
  readonly curves: readonly ReliabilityCurve[];
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
/** A bin bound as written: 0.6, 0.75 (no trailing zeros). */
export const bound = (x: number): string => String(Number(x.toFixed(2)));

export function reliabilityDiagram(input: ReliabilityInput): Html {
  const left = 56;
  const top = 14;
  const size = 240;
  const countBand = 36;
  const right = left + size;
  const bottom = top + size;
  const width = right + 20;
  const height = bottom + countBand + 40;
  const x = (v: number): number => px(left + v * size);
  const y = (v: number): number => px(bottom - v * size);
  const maxCount = Math.max(1, ...input.curves.flatMap((c) => c.bins.map((b) => b.count)));
  const marks: Mark[] = [];
  const lines: Html[] = [];
  const bars: Html[] = [];
  const C = input.curves.length;
  input.curves.forEach((curve, ci) => {
    const si = curve.series ?? ci;
    const colour = seriesColour(si);
    const used = curve.bins.filter((b) => b.count > 0);
    if (used.length > 1) {
      lines.push(html`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${used.map((b) => `${x(b.meanConfidence)},${y(b.accuracy)}`).join(' ')}"/>`);
    }
    for (const b of curve.bins) {
      const w = (b.upper - b.lower) * size;
      const h = (b.count / maxCount) * (countBand - 4);
      if (b.count > 0) {
        bars.push(html`<rect class="count-bar" x="${px(x(b.lower) + (ci * w) / C + 1)}" y="${px(bottom + countBand + 2 - h)}" width="${px(Math.max(1, w / C - 2))}" height="${px(h)}" fill="${colour}" opacity="0.55"/>`);
      }
    }
    for (const b of used) {
      const cx = x(b.meanConfidence);
      const cy = y(b.accuracy);
      const label = `${C > 1 ? `${curve.name}, ` : ''}confidence ${bound(b.lower)}–${bound(b.upper)}: ${b.count} rows, mean confidence ${pct(b.meanConfidence)}, accuracy ${pct(b.accuracy)}`;
      const shape =
        si % 2 === 0
          ? html`<circle cx="${cx}" cy="${cy}" r="5" fill="${colour}" stroke="#fff" stroke-width="1"/>`
          : html`<rect x="${px(cx - 4.5)}" y="${px(cy - 4.5)}" width="9" height="9" fill="${colour}" stroke="#fff" stroke-width="1"/>`;
      marks.push({ label, shapes: shape });
    }
  });
  const grid: Html[] = [];
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    grid.push(
      html`<line class="grid" x1="${left}" x2="${right}" y1="${y(v)}" y2="${y(v)}"/><line class="grid" x1="${x(v)}" x2="${x(v)}" y1="${top}" y2="${bottom}"/><text class="tick" x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text><text class="tick" x="${x(v)}" y="${bottom + countBand + 16}" text-anchor="middle">${v.toFixed(1)}</text>`,
    );
  }
  const background = join([
    join(grid),
    html`<line class="diagonal" x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="${OKABE_ITO.black}" stroke-dasharray="4 4"/>`,
    html`<text class="axis-label" x="${px((left + right) / 2)}" y="${height - 4}" text-anchor="middle">mean predicted probability (confidence)</text>`,
    html`<text class="axis-label" x="12" y="${px((top + bottom) / 2)}" transform="rotate(-90 12 ${px((top + bottom) / 2)})" text-anchor="middle">accuracy</text>`,
    html`<text class="tick" x="${left - 6}" y="${bottom + countBand / 2 + 4}" text-anchor="end">rows</text>`,
    join(bars),
    join(lines),
  ]);
  const legend: LegendItem[] = input.curves.map((c, i) => {
    const si = c.series ?? i;
    return { label: `${c.name} (ECE ${c.ece.toFixed(4)})`, colour: seriesColour(si), shape: si % 2 === 0 ? 'circle' : 'square' };
  });
  legend.push({ label: 'perfect calibration', colour: OKABE_ITO.black, shape: 'dash' });
  return chart({
    id: input.id,
    kind: 'reliability',
    title: input.title,
    description: `Reliability diagram: for each confidence bin, accuracy against mean predicted probability; points on the diagonal are perfectly calibrated, below it over-confident. ${input.curves
      .map((c) => `${c.name}: expected calibration error ${c.ece.toFixed(4)}`)
      .join('; ')}.`,
    width,
    height,
    background,
    marks,
    legend,
    table: {
      headers: ['series', 'bin', 'rows', 'mean confidence', 'accuracy'],
      rows: input.curves.flatMap((c) => c.bins.filter((b) => b.count > 0).map((b) => [c.name, `${bound(b.lower)}–${bound(b.upper)}`, b.count, pct(b.meanConfidence), pct(b.accuracy)])),
    },
    caption: input.curves.map((c) => `${C > 1 ? `${c.name} ` : ''}ECE ${c.ece.toFixed(4)}`).join(', '),
  });
}
