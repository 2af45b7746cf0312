/** Confusion matrix as a heat map: cells coloured (viridis) by the share of their actual class. */
import { html, join } from '../html';
import { chart, clip, px, type Mark } from './frame';
import { textOn, viridis } from './palette';

export interface ConfusionChartInput {
  readonly id: string;
  readonly title: string;
  readonly classes: readonly string[];
  /** confusion[actual][predicted]. */
  readonly confusion: readonly (readonly number[])[];
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

export function confusionHeatmap(input: ConfusionChartInput): ReturnType<typeof chart> {
  const K = input.classes.length;
  const cell = K <= 4 ? 72 : Math.max(28, Math.floor(288 / K));
  const left = 96;
  const top = 52;
  const width = left + cell * K + 16;
  const height = top + cell * K + 16;
  const rowTotals = input.confusion.map((r) => r.reduce((a, b) => a + b, 0));
  const total = rowTotals.reduce((a, b) => a + b, 0);
  const marks: Mark[] = [];
  const rows: (string | number)[][] = [];
  for (let a = 0; a < K; a++) {
    const row: (string | number)[] = [input.classes[a]];
    for (let p = 0; p < K; p++) {
      const n = input.confusion[a]?.[p] ?? 0;
      const share = rowTotals[a] > 0 ? n / rowTotals[a] : 0;
      const fill = viridis(share);
      const x = left + p * cell;
      const y = top + a * cell;
      const label = `actual ${input.classes[a]}, predicted ${input.classes[p]}: ${n} (${pct(share)} of actual ${input.classes[a]})`;
      marks.push({
        label,
        shapes: html`<rect x="${x}" y="${y}" width="${cell - 2}" height="${cell - 2}" fill="${fill}" data-value="${n}"/>${
          cell >= 48
            ? html`<text x="${px(x + cell / 2 - 1)}" y="${px(y + cell / 2 - 4)}" text-anchor="middle" fill="${textOn(fill)}" class="cell-count">${n}</text><text x="${px(x + cell / 2 - 1)}" y="${px(y + cell / 2 + 12)}" text-anchor="middle" fill="${textOn(fill)}" class="cell-share">${pct(share)}</text>`
            : ''
        }`,
      });
      row.push(`${n} (${pct(share)})`);
    }
    rows.push(row);
  }
  const background = join([
    html`<text class="axis-label" x="${px(left + (cell * K) / 2)}" y="14" text-anchor="middle">predicted</text>`,
    html`<text class="axis-label" x="12" y="${px(top + (cell * K) / 2)}" transform="rotate(-90 12 ${px(top + (cell * K) / 2)})" text-anchor="middle">actual</text>`,
    ...input.classes.map((c, i) => html`<text class="tick" x="${px(left + i * cell + cell / 2)}" y="${top - 8}" text-anchor="middle">${clip(c, 10)}</text>`),
    ...input.classes.map((c, i) => html`<text class="tick" x="${left - 8}" y="${px(top + i * cell + cell / 2 + 4)}" text-anchor="end">${clip(c, 10)}</text>`),
  ]);
  const correct = input.confusion.reduce((s, r, i) => s + (r[i] ?? 0), 0);
  return chart({
    id: input.id,
    kind: 'confusion',
    title: input.title,
    description: `Confusion matrix of ${total} test rows: rows are the actual class, columns the predicted class; ${correct} (${total > 0 ? pct(correct / total) : '0%'}) on the diagonal are correct. Colour is the share of the actual class.`,
    width,
    height,
    background,
    marks,
    table: { headers: ['actual ↓ predicted →', ...input.classes], rows },
    caption: `${total} rows; colour = share of the actual class (viridis, dark 0% → yellow 100%)`,
  });
}
