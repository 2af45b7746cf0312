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
  readonly timestamp: number;
  readonly logGroup: string | undefined;
}

const UNITS = new Set(['Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None']);

function fail(line: string, problem: string): never {
  throw new Error(`not a valid EMF record (${problem}): ${line.slice(0, 300)}`);
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
        const target = root[m.Name];
        const values = typeof target === 'number' ? [target] : Array.isArray(target) && target.length <= 100 && target.every((v) => typeof v === 'number') ? (target as number[]) : fail(line, `metric ${m.Name} must be a number or an array of at most 100 numbers`);
        if (!values.every(Number.isFinite)) fail(line, `metric ${m.Name} has a non-finite value`);
        out.push({ namespace: ns, name: m.Name, unit, dimensions, values, timestamp: aws.Timestamp as number, logGroup: typeof aws.LogGroupName === 'string' ? aws.LogGroupName : undefined });
      }
    }
  }
  return out;
}

/** The statistic an alarm's MetricStat (no dimensions: the service-wide metric) takes over these datapoints. */
export function statistic(points: readonly Datapoint[], metric: Pick<MetricStat, 'namespace' | 'metricName' | 'stat'>): number | undefined {
  const values = points
    .filter((p) => p.namespace === metric.namespace && p.name === metric.metricName && Object.keys(p.dimensions).length === 0)
    .flatMap((p) => p.values);
  if (values.length === 0) return undefined;
  switch (metric.stat) {
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'Maximum':
      return Math.max(...values);
    case 'Minimum':
      return Math.min(...values);
    case 'SampleCount':
      return values.length;
  }
}
