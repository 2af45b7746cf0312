/**
 * The checked-in Grafana dashboard and PrometheusRule (deploy/observability/) against the
 * API's real /metrics output and the platform's CloudWatch alarms: every metric a query
 * names exists, `promtool check rules` accepts the rules, and the rules are the same
 * alerts, with the same thresholds and durations, as the CloudWatch alarms.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';
import { apiAlarms, type ApiAlarm } from '../../infra/api-alarms';
import { CLOUDWATCH_AGENT_EMF_ENDPOINT, CLOUDWATCH_AGENT_EMF_PORT, HOST_IP_ENV } from '../../infra/app-contract';
import { parseEmfSink } from '../config';
import { parseStackConfig } from '../../infra/config';
import { stackConfig } from '../../infra/test/stack-files';
import { startServer, type RunningServer } from '../server';
import { call, promtool, sampleRow, silentLogger, testConfig, testRegistry, type TestRegistry } from './fixtures';

const ROOT = path.join(__dirname, '..', '..');
const DIR = path.join(ROOT, 'deploy', 'observability');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
}

/** Metric names of an exposition: every TYPE line, with a histogram's or summary's series names. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m[1]}${s}`);
    if (m[2] === 'summary') for (const s of ['_sum', '_count']) names.add(`${m[1]}${s}`);
  }
  return names;
}

/** The metric names a PromQL expression reads (ours and the Node defaults: what the API exposes). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:pricesense|process|nodejs)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]);
}

describe('deploy/observability: Grafana dashboard and PrometheusRule', () => {
  let reg: TestRegistry;
  let server: RunningServer;
  let names: Set<string>;
  let tmp: string;
  const rules = async (): Promise<Rule[]> => {
    const doc = load(await readFile(path.join(DIR, 'prometheus-rule.yaml'), 'utf8')) as { kind: string; spec: { groups: { rules: Rule[] }[] } };
    expect(doc.kind).toBe('PrometheusRule');
    return doc.spec.groups.flatMap((g) => g.rules);
  };

  beforeAll(async () => {
    reg = await testRegistry();
    await reg.publish(1, { trees: 5, depth: 4 });
    server = await startServer(testConfig({ registry: reg.registry.uri }), { registry: reg.registry, logger: silentLogger() });
    expect((await call(server.port, 'POST', '/predict', sampleRow())).status).toBe(200);
    names = exposedNames((await call(server.port, 'GET', '/metrics')).body);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'pricesense-rules-'));
  });
  afterAll(async () => {
    await server.close(1000);
    await reg.cleanup();
    await rm(tmp, { recursive: true, force: true });
  });

  it('the dashboard\'s queries name only metrics the API exposes, and every panel has one', async () => {
    const dashboard = JSON.parse(await readFile(path.join(DIR, 'grafana-dashboard.json'), 'utf8')) as { uid: string; panels: { title: string; targets: { expr: string }[] }[] };
    expect(dashboard.uid).toBe('pricesense-api');
    expect(names.has('pricesense_http_request_duration_seconds_bucket')).toBe(true);
    const missing: string[] = [];
    for (const panel of dashboard.panels) {
      expect([panel.title, panel.targets.length > 0]).toEqual([panel.title, true]);
      for (const t of panel.targets) {
        const used = metricsIn(t.expr);
        expect([panel.title, used.length > 0]).toEqual([panel.title, true]);
        missing.push(...used.filter((n) => !names.has(n)).map((n) => `${panel.title}: ${n}`));
      }
    }
    expect(missing).toEqual([]);
  });

  it('promtool check rules accepts the PrometheusRule\'s groups; its expressions name only metrics the API exposes', async () => {
    const doc = load(await readFile(path.join(DIR, 'prometheus-rule.yaml'), 'utf8')) as { spec: { groups: unknown[] } };
    const file = path.join(tmp, 'rules.yaml');
    // promtool reads a rules file ({groups: ...}): the PrometheusRule's spec is one.
    await writeFile(file, JSON.stringify({ groups: doc.spec.groups }));
    const { code, output } = await promtool(['check', 'rules', file]);
    expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining(`SUCCESS: ${(await rules()).length} rules found`) });
    for (const r of await rules()) expect([r.alert, metricsIn(r.expr).filter((n) => !names.has(n))]).toEqual([r.alert, []]);
  });

  it('the same alerts as the CloudWatch alarms, with the platform\'s default thresholds and durations', async () => {
    const monitoring = parseStackConfig('prod', 'pricesense', stackConfig('platform', 'prod')).monitoring;
    const alarms = apiAlarms('prod', monitoring);
    const byAlert = new Map((await rules()).map((r) => [r.alert, r]));
    // Only Prometheus can say that CloudWatch gets no records: that alert has no alarm of its own.
    const prometheusOnly = ['PricesenseEmfRecordsDropped'];
    expect([...byAlert.keys()].sort()).toEqual([...alarms.map((a) => a.prometheusAlert), ...prometheusOnly].sort());
    const threshold: Record<string, (a: ApiAlarm) => number> = {
      'api-5xx-rate': () => monitoring.error5xxPercent,
      'api-p99-latency': () => monitoring.p99LatencyMs / 1000,
      'drift-psi': (a) => a.threshold,
      'drift-unknown-categories': (a) => a.threshold,
      'drift-missing-values': (a) => a.threshold,
      'api-model-load-failures': () => 0,
      'api-no-model': () => 1,
      'api-metrics-missing': () => 0,
    };
    for (const a of alarms) {
      const rule = byAlert.get(a.prometheusAlert)!;
      expect([a.id, rule.expr]).toEqual([a.id, expect.stringMatching(new RegExp(`[<>] ${threshold[a.id](a)}\\b`))]);
      expect([a.id, rule.for]).toEqual([a.id, a.evaluationPeriods > 1 ? `${a.evaluationPeriods * 5}m` : undefined]);
    }
  });

  it('the Deployment\'s PRICESENSE_EMF, as Kubernetes expands it, is a sink the API accepts, on the port the NetworkPolicy opens', () => {
    // infra/test/app-assertions.ts checks the other half: the env names this endpoint and the policy opens this port to the nodes.
    const expanded = CLOUDWATCH_AGENT_EMF_ENDPOINT.replace(`$(${HOST_IP_ENV})`, '10.0.17.42');
    expect(expanded).not.toContain('$(');
    expect(parseEmfSink('PRICESENSE_EMF', expanded)).toEqual({ kind: 'tcp', host: '10.0.17.42', port: CLOUDWATCH_AGENT_EMF_PORT });
  });
});
