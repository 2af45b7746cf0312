/**
 * What CloudWatch does with an embedded-metric-format log event, as far as the alarms
 * need it: validate the record against the EMF specification (a violation is an error
 * here, where CloudWatch would silently publish nothing) and extract one datapoint per
 * metric and dimension set; then a metric's statistic over the datapoints, as an alarm's
 * MetricStat reads it (infra/api-alarms.ts).
 */
import type { MetricStat } from '../api-alarms';

export interface Datapoint {
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly values: readonly number[];
  /** How often each value occurred: 1 each for a number or an array, the record's Counts for a distribution. */
  readonly counts: readonly number[];
  readonly timestamp: number;
  readonly logGroup: string | undefined;
}

const UNITS = new Set(['Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None']);

function fail(line: string, problem: string): never {
  throw new Error(`not a valid EMF record (${problem}): ${line.slice(0, 300)}`);
}

const isNumbers = (x: unknown): x is number[] => Array.isArray(x) && x.length <= 100 && x.every((v) => typeof v === 'number' && Number.isFinite(v));

/**
 * A metric member's samples: a number, an array of at most 100 numbers, or a distribution
 * `{ Values, Counts, Count, Sum, Min, Max }` (the form the AWS Distro for OpenTelemetry's EMF
 * exporters write for histograms: Values and Counts of equal length, at most 100 each,
 * Count the sum of Counts, Min ≤ every value ≤ Max).
 */
function metricValues(line: string, name: string, target: unknown): { values: number[]; counts: number[] } {
  if (typeof target === 'number' && Number.isFinite(target)) return { values: [target], counts: [1] };
  if (isNumbers(target)) return { values: target, counts: target.map(() => 1) };
  if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
    const d = target as Record<string, unknown>;
    const scalars = ['Count', 'Sum', 'Min', 'Max'].map((k) => d[k]);
    if (!isNumbers(d.Values) || !isNumbers(d.Counts) || d.Values.length !== d.Counts.length || d.Values.length === 0) fail(line, `distribution ${name} needs Values and Counts of the same non-zero length, at most 100`);
    if (!scalars.every((v) => typeof v === 'number' && Number.isFinite(v))) fail(line, `distribution ${name} needs numeric Count, Sum, Min and Max`);
    const [count, , min, max] = scalars as number[];
    const counts = d.Counts;
    if (counts.some((c) => c < 0) || counts.reduce((a, b) => a + b, 0) !== count) fail(line, `distribution ${name}: Count must be the sum of Counts`);
    if (d.Values.some((v) => v < min || v > max)) fail(line, `distribution ${name}: every value must lie within Min and Max`);
    return { values: d.Values, counts };
  }
  return fail(line, `metric ${name} must be a number, an array of at most 100 numbers or a Values/Counts distribution`);
}

/** The datapoints CloudWatch extracts from one log event (one line). */
export function extractEmf(line: string): Datapoint[] {
  if (Buffer.byteLength(line) > 256 * 1024) fail(line, 'larger than 256 KB');
  let root: Record<string, unknown>;
  try {
    root = JSON.parse(line) as Record<string, unknown>;
  } catch {
    fail(line, 'not JSON');
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) fail(line, 'not a JSON object');
  const aws = root._aws as Record<string, unknown> | undefined;
  if (typeof aws !== 'object' || aws === null) fail(line, '_aws missing');
  if (!Number.isInteger(aws.Timestamp)) fail(line, '_aws.Timestamp is not an integer of milliseconds');
  if (!Array.isArray(aws.CloudWatchMetrics)) fail(line, '_aws.CloudWatchMetrics is not an array');
  const out: Datapoint[] = [];
  for (const directive of aws.CloudWatchMetrics as Record<string, unknown>[]) {
    const ns = directive.Namespace;
    if (typeof ns !== 'string' || ns.length < 1 || ns.length > 255) fail(line, 'Namespace');
    const dimensionSets = directive.Dimensions;
    if (!Array.isArray(dimensionSets) || dimensionSets.length < 1) fail(line, 'Dimensions must be a non-empty array of dimension sets');
    const metrics = directive.Metrics;
    if (!Array.isArray(metrics) || metrics.length > 100) fail(line, 'Metrics must be an array of at most 100');
    for (const set of dimensionSets as unknown[]) {
      if (!Array.isArray(set) || set.length > 9) fail(line, 'a DimensionSet is an array of at most 9 keys');
      const dimensions: Record<string, string> = {};
      for (const key of set as unknown[]) {
        if (typeof key !== 'string' || typeof root[key] !== 'string') fail(line, `dimension ${String(key)} must be a string member of the root`);
        dimensions[key] = root[key] as string;
      }
      for (const m of metrics as Record<string, unknown>[]) {
        if (typeof m.Name !== 'string' || m.Name.length < 1 || m.Name.length > 255) fail(line, 'metric Name');
        const unit = m.Unit === undefined ? 'None' : m.Unit;
        if (typeof unit !== 'string' || !UNITS.has(unit)) fail(line, `unit ${String(unit)}`);
        const { values, counts } = metricValues(line, m.Name, root[m.Name]);
        out.push({ namespace: ns, name: m.Name, unit, dimensions, values, counts, timestamp: aws.Timestamp as number, logGroup: typeof aws.LogGroupName === 'string' ? aws.LogGroupName : undefined });
      }
    }
  }
  return out;
}

/**
 * The statistic an alarm's MetricStat (no dimensions: the service-wide metric) takes over
 * these datapoints; `pNN` is the nearest-rank percentile over every sample, each value
 * weighted by its count.
 */
export function statistic(points: readonly Datapoint[], metric: Pick<MetricStat, 'namespace' | 'metricName' | 'stat'>): number | undefined {
  const samples = points
    .filter((p) => p.namespace === metric.namespace && p.name === metric.metricName && Object.keys(p.dimensions).length === 0)
    .flatMap((p) => p.values.map((v, i) => [v, p.counts[i]] as const));
  if (samples.length === 0) return undefined;
  const values = samples.map(([v]) => v);
  const total = samples.reduce((a, [, c]) => a + c, 0);
  switch (metric.stat) {
    case 'Sum':
      return samples.reduce((a, [v, c]) => a + v * c, 0);
    case 'Maximum':
      return Math.max(...values);
    case 'Minimum':
      return Math.min(...values);
    case 'SampleCount':
      return total;
    default: {
      const p = Number(/^p(\d+(?:\.\d+)?)$/.exec(metric.stat)?.[1]);
      if (!(p > 0 && p <= 100)) throw new Error(`unsupported statistic ${metric.stat}`);
      const rank = Math.ceil((p / 100) * total);
      let seen = 0;
      for (const [v, c] of [...samples].sort((a, b) => a[0] - b[0])) {
        seen += c;
        if (seen >= rank) return v;
      }
      return Math.max(...values);
    }
  }
}
