import { axisNumber, groupedBars, horizontalBars, niceMax } from '../charts/bars';
import { featureDistribution } from '../charts/distribution';
import { confusionHeatmap } from '../charts/heatmap';
import { textOn, viridis } from '../charts/palette';
import { reliabilityDiagram } from '../charts/reliability';
import { escapeHtml, html, join } from '../html';

/** The marks of a rendered chart: each one's label and the data-value of its shape. */
function marks(markup: string): { label: string; value: number | null }[] {
  return [...markup.matchAll(/<g class="mark" role="img" tabindex="-?\d" aria-label="([^"]*)">([\s\S]*?)<\/g>/g)].map((m) => {
    const v = /data-value="([^"]*)"/.exec(m[2]);
    return { label: m[1], value: v ? Number(v[1]) : null };
  });
}

describe('html templates', () => {
  it('escapes every interpolated string, keeps Html, joins arrays', () => {
    const note = `<script>alert("x")</script> & 'quotes'`;
    const out = html`<p title="${note}">${note}</p>${[html`<b>${'a<b'}</b>`, 'c>d']}`.text;
    expect(out).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;</p><b>a&lt;b</b>c&gt;d',
    );
    expect(escapeHtml('"&"')).toBe('&quot;&amp;&quot;');
    expect(join([html`<i>1</i>`, '<2>'], html`<br>`).text).toBe('<i>1</i><br>&lt;2&gt;');
    expect(html`${null}${undefined}${false}${0}`.text).toBe('0');
  });
});

describe('palette', () => {
  it('runs viridis from dark purple to yellow, with readable text on both ends', () => {
    expect(viridis(0)).toBe('#440154');
    expect(viridis(1)).toBe('#fde725');
    expect(viridis(-3)).toBe('#440154');
    expect(viridis(Number.NaN)).toBe('#440154');
    expect(textOn(viridis(0))).toBe('#ffffff');
    expect(textOn(viridis(1))).toBe('#000000');
  });
});

describe('confusion heat map', () => {
  const classes = ['Low', 'Medium', 'High'];
  const confusion = [
    [50, 5, 0],
    [10, 30, 10],
    [0, 5, 40],
  ];
  const out = confusionHeatmap({ id: 'c', title: 'Confusion', classes, confusion }).text;

  it('draws one focusable mark per cell, labelled with its count and row share', () => {
    const m = marks(out);
    expect(m).toHaveLength(9);
    expect(out).toContain('data-marks="9"');
    expect(m.map((x) => x.value)).toEqual(confusion.flat());
    expect(m[3].label).toBe('actual Medium, predicted Low: 10 (20.0% of actual Medium)');
    // Roving tabindex: only the first mark is in the tab order; arrow keys move between them.
    expect(out.match(/tabindex="0"/g)).toHaveLength(1);
  });

  it('colours by share of the actual class and describes itself for screen readers', () => {
    expect(out).toContain(`fill="${viridis(50 / 55)}"`);
    expect(out).toContain(`fill="${viridis(0)}"`);
    expect(out).toMatch(/<title id="c-title">Confusion<\/title><desc id="c-desc">Confusion matrix of 150 test rows[^<]*120 \(80\.0%\) on the diagonal/);
    expect(out).toContain('aria-labelledby="c-title"');
    expect(out).toContain('<th scope="row">Medium</th><td>10 (20.0%)</td><td>30 (60.0%)</td><td>10 (20.0%)</td>');
  });
});

describe('bar charts', () => {
  it('skip missing values, mark thresholds over the bars, and label each bar', () => {
    const out = groupedBars({
      id: 'g',
      kind: 'test',
      title: 'T',
      description: 'D',
      groups: ['a', 'b'],
      series: ['x', 'y'],
      values: [
        [0.5, null],
        [0.25, 0.75],
      ],
      max: 1,
      format: (v) => v.toFixed(2),
      thresholds: [{ label: 'gate', value: 0.6 }],
    }).text;
    const m = marks(out);
    expect(m.map((x) => x.label)).toEqual(['a, x: 0.50', 'a, y: 0.25', 'b, y: 0.75']);
    expect(out.indexOf('class="chart-overlay"')).toBeGreaterThan(out.indexOf('class="chart-marks"'));
    expect(out).toContain('stroke-dasharray="6 3"');
  });

  it('dot plots use two shapes so series differ without colour', () => {
    const out = horizontalBars({
      id: 'h',
      kind: 'test',
      title: 'T',
      description: 'D',
      series: ['v1', 'v2'],
      rows: [{ label: 'accuracy', values: [0.8, 0.85], threshold: 0.8 }],
      style: 'dot',
      min: 0.6,
      max: 1,
      format: (v) => v.toFixed(2),
    }).text;
    const m = marks(out);
    expect(m).toEqual([
      { label: 'accuracy, v1: 0.80 (required 0.80)', value: 0.8 },
      { label: 'accuracy, v2: 0.85 (required 0.80)', value: 0.85 },
    ]);
    expect(out).toMatch(/<circle [^>]*data-value="0.8"/);
    expect(out).toMatch(/<rect [^>]*data-value="0.85"/);
  });

  it('labels axis ticks exactly when the marks format rounds (latency 12.5 / 37.5 ms of 50)', () => {
    const svg = groupedBars({ id: 'lat', kind: 'latency', title: 't', description: 'd', groups: ['v1'], series: ['p99 ms'], values: [[40]], format: (x) => x.toFixed(0), axisFormat: axisNumber }).text;
    expect([...svg.matchAll(/<text class="tick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]).filter((t) => t !== 'v1')).toEqual(['0', '12.5', '25', '37.5', '50']);
  });

  it('rounds axis maxima up to 1, 2, 2.5, 4 or 5 times a power of ten', () => {
    expect([0.36, 0.09, 1, 4.2, 230, 0, 0.45].map(niceMax)).toEqual([0.4, 0.1, 1, 5, 250, 1, 0.5]);
    expect([0, 12.5, 25, 37.5, 50, 0.1 + 0.2, 0.0625].map(axisNumber)).toEqual(['0', '12.5', '25', '37.5', '50', '0.3', '0.0625']);
  });
});

describe('reliability diagram', () => {
  it('has one mark per non-empty bin of each curve and states the ECE', () => {
    const bins = [
      { lower: 0, upper: 0.5, count: 0, meanConfidence: 0, accuracy: 0 },
      { lower: 0.5, upper: 0.75, count: 10, meanConfidence: 0.6, accuracy: 0.5 },
      { lower: 0.75, upper: 1, count: 30, meanConfidence: 0.9, accuracy: 0.8 },
    ];
    const out = reliabilityDiagram({ id: 'r', title: 'R', curves: [{ name: 'test', bins, ece: 0.0875 }, { name: 'validation', bins: bins.slice(2), ece: 0.1 }] }).text;
    const m = marks(out);
    expect(m).toHaveLength(3);
    expect(m[0].label).toBe('test, confidence 0.5–0.75: 10 rows, mean confidence 60.0%, accuracy 50.0%');
    expect(out).toContain('test ECE 0.0875, validation ECE 0.1000');
  });
});

describe('feature distribution', () => {
  it('treats integer features as whole values, so repeated decile edges do not spike', () => {
    const out = featureDistribution('d', 'LINES', {
      kind: 'numeric',
      count: 100,
      missing: 25,
      mean: 4,
      std: 2,
      min: 1,
      max: 40,
      edges: [1, 3, 6],
      fractions: [0.25, 0.25, 0.25, 0.25],
    }).text;
    const m = marks(out);
    expect(m.map((x) => x.label)).toEqual([
      'LINES 1: 25.0% of non-missing rows',
      'LINES 2–3: 25.0% of non-missing rows',
      'LINES 4–6: 25.0% of non-missing rows',
      'LINES 7–40: 25.0% of non-missing rows',
    ]);
    const heights = [...out.matchAll(/<rect x="[^"]*" y="[^"]*" width="[^"]*" height="([^"]*)"/g)].map((h) => Number(h[1]));
    // Equal shares: the single value 1 is the densest, then the two-value bin, then the three-value one.
    expect(heights[0]).toBeGreaterThan(heights[1]);
    expect(heights[1]).toBeGreaterThan(heights[2]);
    expect(out).toContain('20.0% missing');
    expect(out).toContain('… max 40');
  });

  it('draws categories largest first and folds the long tail into "other"', () => {
    const frequencies: Record<string, number> = {};
    for (let i = 0; i < 12; i++) frequencies[`R${i}`] = (12 - i) / 78;
    const m = marks(featureDistribution('d', 'STORE_REGION', { kind: 'categorical', count: 78, missing: 0, frequencies }).text);
    expect(m).toHaveLength(11);
    expect(m[0].label).toBe('STORE_REGION = R0: 15.4% of non-missing rows');
    expect(m[10].label).toBe('STORE_REGION = other (2): 3.8% of non-missing rows');
  });
});
