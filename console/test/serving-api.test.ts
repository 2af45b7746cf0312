/**
 * Reading the serving API's /metrics. The exposition text comes from the API's own
 * metrics class (the console never imports it; the test does, so a renamed metric or
 * label fails here rather than as an empty Live page).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DriftMonitor } from '../../api/drift';
import { ApiMetrics } from '../../api/metrics';
import { histogramQuantile, parsePrometheusText } from '../prometheus';
import { parseApiUrl, readLive, summariseMetrics } from '../serving-api';

describe('Prometheus text', () => {
  it('parses labels with escapes, special values, and skips comments and junk', () => {
    const samples = parsePrometheusText(
      [
        '# HELP x help text',
        '# TYPE x counter',
        'x_total{a="1",b="q\\"uote\\\\ and \\n newline"} 3',
        'y +Inf',
        'z{le="0.5"} 1.5e3 1700000000000',
        'bad{a=1} 2',
        'w NaN',
        '',
      ].join('\n'),
    );
    expect(samples).toEqual([
      { name: 'x_total', labels: { a: '1', b: 'q"uote\\ and \n newline' }, value: 3 },
      { name: 'y', labels: {}, value: Infinity },
      { name: 'z', labels: { le: '0.5' }, value: 1500 },
      { name: 'w', labels: {}, value: NaN },
    ]);
  });

  it('estimates quantiles from cumulative buckets as histogram_quantile does', () => {
    const buckets = [
      { le: 0.001, count: 50 },
      { le: 0.002, count: 90 },
      { le: 0.005, count: 100 },
      { le: Infinity, count: 100 },
    ];
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.001, 12);
    expect(histogramQuantile(0.7, buckets)).toBeCloseTo(0.0015, 12);
    expect(histogramQuantile(0.99, buckets)).toBeCloseTo(0.0047, 12);
    expect(histogramQuantile(0.5, [{ le: Infinity, count: 0 }])).toBeNull();
    expect(histogramQuantile(0.999, [{ le: 0.1, count: 1 }, { le: Infinity, count: 10 }])).toBe(0.1);
  });
});

describe('the API metrics, summarised', () => {
  function apiMetrics(): ApiMetrics {
    const m = new ApiMetrics({ defaultMetrics: false });
    m.modelInfo.set({ model_version: '7', role: 'champion', sha256: 'a'.repeat(64) }, 1);
    m.modelInfo.set({ model_version: '8', role: 'canary', sha256: 'b'.repeat(64) }, 1);
    for (let i = 0; i < 90; i++) m.observeRequest('/predict', 'POST', 200, '7', 0.0008);
    for (let i = 0; i < 10; i++) m.observeRequest('/predict', 'POST', 200, '7', 0.02);
    m.observeRequest('/predict', 'POST', 422, '8', 0.001);
    m.observeRequest('/predict', 'POST', 500, '8', 0.001);
    m.observeRequest('/health', 'GET', 200, 'none', 0.0001);
    m.countPrediction('7', 'champion', 'Low', 60);
    m.countPrediction('7', 'champion', 'High', 40);
    const drift = new DriftMonitor(
      [
        { name: 'SPEND', kind: 'numeric' },
        { name: 'STORE_FORMAT', kind: 'categorical', categories: ['LS', 'SS'] },
      ],
      {
        SPEND: { kind: 'numeric', count: 100, missing: 0, mean: 5, std: 1, min: 0, max: 10, edges: [5], fractions: [0.5, 0.5] },
        STORE_FORMAT: { kind: 'categorical', count: 100, missing: 0, frequencies: { LS: 0.5, SS: 0.5 } },
      },
      100,
    );
    for (let i = 0; i < 50; i++) drift.observe({ SPEND: 9, STORE_FORMAT: 'LS' });
    m.setDriftSources(() => [{ version: '7', role: 'champion', drift }]);
    return m;
  }

  it('finds the served roles, traffic per version, drift per feature', async () => {
    const text = await apiMetrics().registry.metrics();
    const s = summariseMetrics(parsePrometheusText(text));
    expect(s.models).toEqual([
      { version: 7, role: 'champion', sha256: 'a'.repeat(64) },
      { version: 8, role: 'canary', sha256: 'b'.repeat(64) },
    ]);
    expect(s.traffic.map((t) => [t.version, t.requests, t.clientErrors, t.serverErrors])).toEqual([
      ['7', 100, 0, 0],
      ['8', 2, 1, 1],
    ]);
    const v7 = s.traffic[0];
    expect(v7.meanMs).toBeCloseTo((90 * 0.8 + 10 * 20) / 100, 6);
    // 90 of 100 requests are in the (0.0005, 0.001] bucket: the median interpolates inside it.
    expect(v7.p50Ms!).toBeGreaterThan(0.5);
    expect(v7.p50Ms!).toBeLessThanOrEqual(1);
    expect(v7.p99Ms!).toBeGreaterThan(10);
    expect(s.drift.map((d) => d.feature).sort()).toEqual(['SPEND', 'STORE_FORMAT']);
    const spend = s.drift.find((d) => d.feature === 'SPEND')!;
    expect(spend).toMatchObject({ version: '7', role: 'champion' });
    expect(spend.value).toBeGreaterThan(0.25); // every live value in one of two equal bins: a major shift
    expect(s.driftWindow).toEqual([{ version: '7', role: 'champion', rows: 50 }]);
    // The drift monitor reports each categorical feature's unknown share: all live values were known.
    expect(s.unknownCategories).toEqual([{ feature: 'STORE_FORMAT', version: '7', role: 'champion', value: 0 }]);
    expect(s.predictions.find((p) => p.label === 'Low')).toMatchObject({ version: '7', role: 'champion', count: 60 });
  });

  it('reads unknown-category counters against the rows each version predicted, when the API exports them', () => {
    const text = [
      'pricesense_predictions_total{model_version="7",role="champion",class="Low"} 150',
      'pricesense_predictions_total{model_version="7",role="champion",class="High"} 50',
      'pricesense_unknown_categories_total{feature="STORE_REGION",model_version="7",role="champion"} 20',
    ].join('\n');
    expect(summariseMetrics(parsePrometheusText(text)).unknownCategories).toEqual([{ feature: 'STORE_REGION', version: '7', role: 'champion', value: 0.1 }]);
    const ratio = 'pricesense_unknown_category_ratio{feature="STORE_FORMAT",model_version="7"} 0.25';
    expect(summariseMetrics(parsePrometheusText(ratio)).unknownCategories).toEqual([{ feature: 'STORE_FORMAT', version: '7', role: '', value: 0.25 }]);
  });

  it('reads /metrics over HTTP and says plainly when it cannot', async () => {
    const metrics = apiMetrics();
    const server = http.createServer((req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      void metrics.registry.metrics().then((t) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(t));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const live = await readLive(parseApiUrl(`http://127.0.0.1:${port}`));
      expect(live.url).toBe(`http://127.0.0.1:${port}/`);
      expect(live.models.map((m) => m.version)).toEqual([7, 8]);
    } finally {
      await new Promise((r) => server.close(r));
    }
    await expect(readLive(parseApiUrl(`http://127.0.0.1:${port}`), 2000)).rejects.toThrow(`cannot read the serving API's metrics at http://127.0.0.1:${port}/metrics: ECONNREFUSED`);
  });

  it('refuses an --api that is not a plain base URL', () => {
    expect(() => parseApiUrl('localhost:8080')).toThrow(/must be an http:\/\/ or https:\/\/ URL|is not a URL/);
    expect(() => parseApiUrl('ftp://x')).toThrow('must be an http:// or https:// URL');
    expect(() => parseApiUrl('http://u:p@x')).toThrow('must not carry credentials');
    expect(() => parseApiUrl('http://x/?a=1')).toThrow('without query or fragment');
    expect(parseApiUrl('http://api.mlops:8080/base').href).toBe('http://api.mlops:8080/base');
  });
});
