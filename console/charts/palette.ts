/**
 * Colour-blind-safe colours. Categories use the Okabe–Ito palette (distinguishable
 * under the common colour-vision deficiencies, and in greyscale by lightness); series
 * that must be told apart also differ by shape. Quantities use viridis, which is
 * perceptually uniform and monotonic in lightness.
 */

export const OKABE_ITO = {
  blue: '#0072B2',
  orange: '#E69F00',
  vermillion: '#D55E00',
  bluishGreen: '#009E73',
  skyBlue: '#56B4E9',
  reddishPurple: '#CC79A7',
  yellow: '#F0E442',
  black: '#000000',
} as const;

/** Series colours in order: two compared versions are blue and orange. */
export const SERIES_COLOURS: readonly string[] = [
  OKABE_ITO.blue,
  OKABE_ITO.orange,
  OKABE_ITO.bluishGreen,
  OKABE_ITO.reddishPurple,
  OKABE_ITO.skyBlue,
  OKABE_ITO.vermillion,
  OKABE_ITO.black,
];

export const seriesColour = (i: number): string => SERIES_COLOURS[i % SERIES_COLOURS.length];

/** Viridis at nine evenly spaced stops (matplotlib's table), interpolated linearly between them. */
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];

function channel(hex: string, i: number): number {
  return parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16);
}

/** Viridis colour of t in [0, 1] (clamped). */
export function viridis(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const rgb = [0, 1, 2].map((c) => Math.round(channel(VIRIDIS[i], c) * (1 - f) + channel(VIRIDIS[i + 1], c) * f));
  return `#${rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** Black or white, whichever reads better on the background (WCAG relative luminance). */
export function textOn(background: string): string {
  const lin = (c: number): number => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const l = 0.2126 * lin(channel(background, 0)) + 0.7152 * lin(channel(background, 1)) + 0.0722 * lin(channel(background, 2));
  return l > 0.179 ? '#000000' : '#ffffff';
}
