import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from '../metric-series';

const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const HISTOGRAM = { name: 'req_seconds', help: 'request duration', labelNames: ['route', 'method', 'status', 'model_version'] };
const COUNTER = { name: 'predictions_total', help: 'predictions', labelNames: ['model_version', 'role', 'class'] };

/** The same observations into prom-client's own metrics and into ours, each in its own registry. */
function both() {
  const theirs = new Registry();
  const ours = new Registry();
  const h = new Histogram({ ...HISTOGRAM, buckets: BUCKETS, registers: [theirs] });
  const c = new Counter({ ...COUNTER, registers: [theirs] });
  const sh = new SeriesHistogram({ ...HISTOGRAM, buckets: BUCKETS, registers: [ours] });
  const sc = new SeriesCounter({ ...COUNTER, registers: [ours] });
  let seed = 7;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const routes = ['/predict', '/v2/models/pricesense/infer'];
  const statuses = ['200', '422', '503'];
  const versions = ['3', '4'];
  const classes = ['Low', 'Medium', 'High'];
  for (let i = 0; i < 5000; i++) {
    const route = routes[i % 2];
    const status = statuses[Math.floor(random() * 3)];
    const version = versions[i % 3 === 0 ? 1 : 0];
    // Values on bucket bounds too: "le" is inclusive.
    const seconds = i % 17 === 0 ? BUCKETS[i % BUCKETS.length] : random() ** 3 * 4;
    h.observe({ route, method: 'POST', status, model_version: version }, seconds);
    sh.at(route, 'POST', status, version).observe(seconds);
    const label = classes[i % 3];
    const n = 1 + (i % 4);
    c.inc({ model_version: version, role: i % 5 === 0 ? 'shadow' : 'champion', class: label }, n);
    sc.at(version, i % 5 === 0 ? 'shadow' : 'champion', label).inc(n);
  }
  return { theirs, ours };
}

/** Exposition lines, sorted (series order is insertion order on both sides, but that is not the contract). */
const lines = async (r: { metrics(): Promise<string> }) => (await r.metrics()).trim().split('\n').sort();

describe('series metrics', () => {
  it("expose exactly what prom-client's Histogram and Counter expose for the same observations", async () => {
    const { theirs, ours } = both();
    const expected = await lines(theirs);
    expect(expected.length).toBeGreaterThan(100);
    expect(await lines(ours)).toEqual(expected);
  });

  it("give prom-client's JSON, so cluster aggregation sums them as it sums prom-client's", async () => {
    const a = both();
    const b = both();
    const theirs = AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
    const ours = AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
    expect(await lines(ours)).toEqual(await lines(theirs));
  });

  it('start empty again after a registry reset', async () => {
    const { ours } = both();
    ours.resetMetrics();
    expect((await ours.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([]);
  });
});
