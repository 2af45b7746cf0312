/**
 * The Prometheus text exposition format (version 0.0.4), as far as reading the
 * serving API's /metrics needs: samples with labels and values; comments, HELP and
 * TYPE lines are skipped. Label values may contain escaped quotes, backslashes and
 * newlines. Malformed lines are skipped rather than failing the page that shows them.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(text: string): number {
  switch (text) {
    case '+Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return NaN;
    default:
      return text.trim() === '' ? NaN : Number(text);
  }
}

function parseLine(line: string): Sample | undefined {
  const m = NAME.exec(line);
  if (!m) return undefined;
  const name = m[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!key || line[i + key[0].length] !== '=' || line[i + key[0].length + 1] !== '"') return undefined;
      i += key[0].length + 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return undefined;
        i++;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i++];
          value += e === 'n' ? '\n' : (e ?? '');
        } else value += c;
      }
      labels[key[0]] = value;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = parseValue(rest[0] ?? '');
  if (Number.isNaN(value) && rest[0] !== 'NaN') return undefined;
  return { name, labels, value };
}

export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = parseLine(line);
    if (s) out.push(s);
  }
  return out;
}

/**
 * A quantile from cumulative histogram buckets, as PromQL's histogram_quantile does:
 * linear interpolation inside the bucket holding the rank (the first bucket starts at 0;
 * a rank in the +Inf bucket returns the highest finite bound).
 */
export function histogramQuantile(q: number, buckets: readonly { le: number; count: number }[]): number | null {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  if (sorted.length === 0) return null;
  const total = sorted[sorted.length - 1].count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket > 0 ? prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket : b.le;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}
