/**
 * The two metrics every prediction request updates — the request-duration histogram and
 * the predictions counter — kept as plain numbers per label set and exposed in
 * prom-client's metric shape (`get()`: name, help, type, aggregator, values), so the
 * registry, the cluster aggregation (api/cluster-metrics.ts) and the EMF reporter read
 * them like any other metric.
 *
 * Why not prom-client's own: its labelled observe/inc hashes the label object on every
 * call, even through a cached child (prom-client 15: `labels()` returns a closure that
 * calls the parent with the same object). Here a label set is found through nested Maps
 * keyed by the label values the caller already holds (no string building), and an
 * observation is a bucket scan and three additions.
 */
import type { Metric, Registry } from 'prom-client';

type LabelValues = readonly string[];

interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface MetricData {
  name: string;
  help: string;
  type: 'histogram' | 'counter';
  aggregator: 'sum';
  values: Value[];
}

/** Label sets by their values, one Map level per label. */
class SeriesIndex<S> {
  private readonly root = new Map<string, unknown>();
  readonly all: { labels: Record<string, string>; series: S }[] = [];

  constructor(
    private readonly labelNames: readonly string[],
    private readonly create: () => S,
  ) {
    if (labelNames.length !== 3 && labelNames.length !== 4) throw new Error(`a series metric has 3 or 4 labels, not ${labelNames.length}`);
  }

  /** The series of label values a, b, c[, d] (as many as labelNames; 3 or 4). */
  get(a: string, b: string, c: string, d?: string): S {
    const four = this.labelNames.length === 4;
    const l1 = this.level(this.root, a);
    const l2 = this.level(l1, b);
    const l3 = four ? this.level(l2, c) : l2;
    const key = four ? (d as string) : c;
    let series = l3.get(key) as S | undefined;
    if (series === undefined) series = this.add(l3, key, four ? [a, b, c, key] : [a, b, c]);
    return series;
  }

  private level(map: Map<string, unknown>, key: string): Map<string, unknown> {
    let next = map.get(key) as Map<string, unknown> | undefined;
    if (next === undefined) map.set(key, (next = new Map()));
    return next;
  }

  private add(map: Map<string, unknown>, key: string, values: LabelValues): S {
    const series = this.create();
    map.set(key, series);
    const labels: Record<string, string> = {};
    this.labelNames.forEach((name, i) => (labels[name] = values[i]));
    this.all.push({ labels, series });
    return series;
  }

  clear(): void {
    this.root.clear();
    this.all.length = 0;
  }
}

export class HistogramSeries {
  /** Per bucket (upper bounds ascending), observations at or below it and above the previous one. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export class CounterSeries {
  value = 0;

  inc(n = 1): void {
    this.value += n;
  }
}

interface Options {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly registers: readonly Registry[];
}

abstract class SeriesMetric<S> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  protected readonly index: SeriesIndex<S>;

  constructor(options: Options, create: () => S) {
    this.name = options.name;
    this.help = options.help;
    this.index = new SeriesIndex(options.labelNames, create);
    // The registry reads a metric through get() (and reset()); this class has both, in prom-client's shape.
    for (const r of options.registers) r.registerMetric(this as unknown as Metric);
  }

  /** The series for these label values, in labelNames order (3 or 4 of them). */
  at(a: string, b: string, c: string, d?: string): S {
    return this.index.get(a, b, c, d);
  }

  reset(): void {
    this.index.clear();
  }

  abstract get(): Promise<MetricData>;
}

export class SeriesHistogram extends SeriesMetric<HistogramSeries> {
  readonly type = 'histogram' as const;
  private readonly bounds: Float64Array;

  constructor(options: Options & { readonly buckets: readonly number[] }) {
    const bounds = Float64Array.from([...options.buckets].sort((a, b) => a - b));
    super(options, () => new HistogramSeries(bounds));
    this.bounds = bounds;
  }

  get(): Promise<MetricData> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, series } of this.index.all) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.counts[i];
        values.push({ labels: { le: this.bounds[i], ...labels }, value: cumulative, metricName: bucket });
      }
      values.push(
        { labels: { le: '+Inf', ...labels }, value: series.count, metricName: bucket },
        { labels: { ...labels }, value: series.sum, metricName: `${this.name}_sum` },
        { labels: { ...labels }, value: series.count, metricName: `${this.name}_count` },
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

export class SeriesCounter extends SeriesMetric<CounterSeries> {
  readonly type = 'counter' as const;

  constructor(options: Options) {
    super(options, () => new CounterSeries());
  }

  get(): Promise<MetricData> {
    const values: Value[] = this.index.all.map(({ labels, series }) => ({ labels: { ...labels }, value: series.value }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
