/**
 * A training feature's distribution from the statistics stored in the forest file:
 * numeric features as a histogram over their decile bins (bar area = share of rows, so
 * bar height is density), categorical ones as the share of each category.
 */
import type { FeatureStats } from '../../etl/gold-schema';
import { html, join, type Html } from '../html';
import { chart, clip, px, type Mark } from './frame';
import { seriesColour } from './palette';

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
/** Categories beyond this many are summed into one "other" bar. */
const MAX_CATEGORIES = 10;

function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  if (Number.isInteger(v)) return String(v);
  return a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function featureDistribution(id: string, feature: string, stats: FeatureStats): Html {
  const total = stats.count + stats.missing;
  const missing = total > 0 ? stats.missing / total : 0;
  const left = 12;
  const top = 8;
  const plotWidth = 236;
  const plotHeight = 84;
  const bottom = top + plotHeight;
  const width = left + plotWidth + 12;
  const height = bottom + 30;
  const colour = seriesColour(0);
  const marks: Mark[] = [];
  const rows: (string | number)[][] = [];
  let background: Html;
  if (stats.kind === 'numeric') {
    // Integer-valued features (counts, hours) have repeated decile edges: a bin then
    // holds whole values, and its width is how many integers it covers, not edge minus edge.
    const integral = [stats.min, stats.max, ...stats.edges].every(Number.isInteger);
    const half = integral ? 0.5 : 0;
    const cuts = [stats.min - half, ...stats.edges.map((e) => e + half), stats.max + half];
    const bins = stats.fractions.map((f, i) => {
      const lo = cuts[i];
      const hi = Math.max(cuts[i + 1], lo);
      return { lo, hi, fraction: f };
    });
    // The last decile often reaches far (one huge basket): the axis stops a little past the
    // last edge and the tail bin is drawn to the axis end, labelled with the true maximum.
    const lastEdge = cuts[cuts.length - 2];
    const domainMax = Math.min(cuts[cuts.length - 1], lastEdge + Math.max((lastEdge - cuts[0]) * 0.3, 1e-9));
    const span = Math.max(1e-12, domainMax - cuts[0]);
    const minWidth = span / 100;
    const density = (b: { lo: number; hi: number; fraction: number }): number => b.fraction / Math.max(Math.min(b.hi, domainMax) - b.lo, minWidth);
    const maxDensity = Math.max(1e-12, ...bins.map(density));
    const x = (v: number): number => px(left + ((Math.min(v, domainMax) - cuts[0]) / span) * plotWidth);
    const rangeText = (b: { lo: number; hi: number }, i: number): string =>
      integral ? (b.hi - b.lo <= 1 ? `${compact(b.lo + 0.5)}` : `${compact(b.lo + 0.5)}–${compact(b.hi - 0.5)}`) : `${i === 0 ? '[' : '('}${compact(b.lo)}, ${compact(b.hi)}]`;
    bins.forEach((b, i) => {
      const x0 = x(b.lo);
      const w = Math.max(1.5, x(b.hi) - x0 - 1);
      const h = (density(b) / maxDensity) * plotHeight;
      const label = `${feature} ${rangeText(b, i)}: ${pct(b.fraction)} of non-missing rows`;
      marks.push({ label, shapes: html`<rect x="${x0}" y="${px(bottom - h)}" width="${px(w)}" height="${px(Math.max(0.5, h))}" fill="${colour}" data-value="${b.fraction}"/>` });
      rows.push([rangeText(b, i), pct(b.fraction)]);
    });
    background = join([
      html`<line class="axis" x1="${left}" x2="${left + plotWidth}" y1="${bottom}" y2="${bottom}"/>`,
      html`<text class="tick" x="${left}" y="${bottom + 14}">${compact(stats.min)}</text>`,
      html`<text class="tick" x="${left + plotWidth}" y="${bottom + 14}" text-anchor="end">${domainMax < cuts[cuts.length - 1] ? `… max ${compact(stats.max)}` : compact(stats.max)}</text>`,
      html`<text class="tick" x="${px(left + plotWidth / 2)}" y="${bottom + 26}" text-anchor="middle">mean ${compact(stats.mean)} · sd ${compact(stats.std)}</text>`,
    ]);
  } else {
    const sorted = Object.entries(stats.frequencies).sort((a, b) => b[1] - a[1]);
    const shown = sorted.slice(0, MAX_CATEGORIES);
    const rest = sorted.slice(MAX_CATEGORIES).reduce((s, [, f]) => s + f, 0);
    if (rest > 0) shown.push([`other (${sorted.length - MAX_CATEGORIES})`, rest]);
    const maxF = Math.max(1e-12, ...shown.map(([, f]) => f));
    const slot = plotWidth / Math.max(1, shown.length);
    shown.forEach(([category, f], i) => {
      const h = (f / maxF) * plotHeight;
      marks.push({
        label: `${feature} = ${category}: ${pct(f)} of non-missing rows`,
        shapes: html`<rect x="${px(left + i * slot + 1)}" y="${px(bottom - h)}" width="${px(Math.max(1.5, slot - 3))}" height="${px(Math.max(0.5, h))}" fill="${colour}" data-value="${f}"/>`,
      });
      rows.push([category, pct(f)]);
    });
    background = join([
      html`<line class="axis" x1="${left}" x2="${left + plotWidth}" y1="${bottom}" y2="${bottom}"/>`,
      ...shown.map(([category], i) => html`<text class="tick small" x="${px(left + i * slot + slot / 2)}" y="${bottom + 14}" text-anchor="middle">${clip(category, Math.max(2, Math.floor(slot / 6)))}</text>`),
    ]);
  }
  return chart({
    id,
    kind: 'distribution',
    title: feature,
    description: `Training distribution of ${feature} (${stats.kind}): ${stats.count} non-missing rows, ${pct(missing)} missing.`,
    width,
    height,
    background,
    marks,
    table: { headers: [stats.kind === 'numeric' ? 'range' : 'category', 'share'], rows },
    caption: `${stats.kind}, ${pct(missing)} missing`,
  });
}
