/**
 * The whole loop on one machine, on the embedded defaults: synthesize a drop → ETL →
 * train → evaluate with gates → register → approve → serve → call /predict over HTTP
 * → summary. Everything it writes stays in one directory it names.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { startServer, type RunningServer } from '../api/server';
import { DEFAULT_CONFIG } from '../api/config';
import { addToken, revokeTokens } from '../console/auth-config';
import { DEFAULT_CONSOLE_PORT, startConsole, type RunningConsole } from '../console/server';
import { UserError } from '../core/errors';
import { readGoldSplit } from '../etl/gold';
import type { GoldTable } from '../etl/gold-schema';
import { openLake } from '../etl/lake';
import { runEtl } from '../etl/pipeline';
import { logEvent } from '../core/progress';
import { synthesize } from '../etl/synth/generate';
import { writeForestFile } from '../model/forest-file';
import { gateFailureMessage } from '../model/gates';
import { openRegistry } from '../model/registry';
import { runTraining } from '../model/training-run';

const MARKER = '.pricesense-demo';

export interface DemoOptions {
  readonly dir: string;
  readonly baskets: number;
  readonly trees: number;
  readonly seed: number;
  readonly port: number;
  readonly requests: number;
  readonly keepServing: boolean;
  /** Where step headers go (stderr by default, so --json output stays clean). */
  readonly out?: NodeJS.WritableStream;
}

export interface SamplePrediction {
  readonly basket: string;
  readonly inputs: Record<string, unknown>;
  readonly actual: string;
  readonly predicted: string;
  readonly probability: number;
}

export interface DemoSummary {
  readonly dir: string;
  readonly lake: string;
  readonly registry: string;
  readonly data: { readonly rawLines: number; readonly rejectedLines: number; readonly baskets: number; readonly goldRows: Record<string, number> };
  readonly bayesOptimalAccuracy: number;
  readonly testAccuracy: number;
  readonly testMacroF1: number;
  readonly gates: { readonly passed: boolean; readonly results: { name: string; passed: boolean; detail: string }[] };
  readonly servedVersion: number;
  readonly url: string;
  readonly samples: SamplePrediction[];
  readonly http: { readonly requests: number; readonly agreementWithLabels: number; readonly p50Ms: number; readonly p99Ms: number; readonly meanMs: number; readonly batch100Ms: number };
  readonly seconds: Record<string, number>;
}

async function prepareDir(dir: string): Promise<void> {
  if (existsSync(dir)) {
    const entries = await readdir(dir);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new UserError(`${dir} exists and was not made by pricesense demo: choose another --dir`);
    }
    // A previous demo's directory: start clean so every run shows the whole loop.
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, MARKER), 'made by `pricesense demo`; safe to delete\n');
}

/** One gold row as the raw request body a client would send. */
function requestRow(table: GoldTable, i: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const [name, col] of Object.entries(table.numeric)) row[name] = Number.isNaN(col[i]) ? null : col[i];
  for (const [name, col] of Object.entries(table.categorical)) row[name] = col[i];
  return row;
}

function post(agent: http.Agent, port: number, body: unknown): Promise<{ status: number; json: unknown; ms: number }> {
  const payload = Buffer.from(JSON.stringify(body));
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/predict', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')), ms: performance.now() - t0 }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const round = (x: number, digits = 4): number => Math.round(x * 10 ** digits) / 10 ** digits;

export async function runDemo(options: DemoOptions): Promise<{ summary: DemoSummary; server: RunningServer }> {
  const out = options.out ?? process.stderr;
  const steps = 7;
  let step = 0;
  const seconds: Record<string, number> = {};
  const begin = (name: string, what: string): (() => void) => {
    step += 1;
    out.write(`\n[${step}/${steps}] ${what}\n`);
    logEvent('demo_step', { step, of: steps, name });
    const t0 = performance.now();
    return () => {
      seconds[name] = round((performance.now() - t0) / 1000, 2);
    };
  };

  const dir = path.resolve(options.dir);
  await prepareDir(dir);
  const lakeDir = path.join(dir, 'lake');
  const registryDir = path.join(dir, 'registry');
  const modelFile = path.join(dir, 'model.json');
  out.write(`pricesense demo: everything goes to ${dir}\n`);
  const lake = await openLake(lakeDir);

  let done = begin('synth', `synthesize ${options.baskets.toLocaleString('en-US')} baskets of dunnhumby-style transactions`);
  const synth = await synthesize(lake, { baskets: options.baskets, weeks: 4, seed: options.seed });
  done();

  done = begin('etl', 'ETL raw → silver → gold');
  const etl = await runEtl(lake);
  done();

  done = begin('train', `train a ${options.trees}-tree RandomForest, evaluate on the test split, check the gates`);
  const run = await runTraining(lake, { trees: options.trees, seed: options.seed });
  await writeForestFile(modelFile, run.forest);
  done();
  if (!run.gates.passed) {
    throw new UserError(`${gateFailureMessage(run.gates)}: the demo model was written to ${modelFile} but not registered`, 'gate_failed');
  }

  done = begin('register', 'register the model and approve it (as a data scientist would)');
  const registry = await openRegistry(registryDir);
  const registered = await registry.register(modelFile, { note: 'trained by pricesense demo', by: 'demo' });
  await registry.approve(registered.version, `demo: gates passed (test accuracy ${run.test.accuracy.toFixed(4)})`, 'demo');
  done();

  done = begin('serve', 'start the API on the approved model');
  const server = await startServer({ ...DEFAULT_CONFIG, host: '127.0.0.1', port: options.port, registry: registryDir, logLevel: 'warn', pollIntervalMs: 5000 });
  if (!server.service.manager.ready) {
    await server.close(1000);
    throw new Error(`the API did not become ready: ${JSON.stringify(server.service.manager.status())}`);
  }
  const url = `http://127.0.0.1:${server.port}`;
  done();

  done = begin('predict', `send ${options.requests} single-basket requests and one batch of 100 to ${url}/predict`);
  const test = await readGoldSplit(lake, 'test');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  const samples: SamplePrediction[] = [];
  let agree = 0;
  const n = Math.min(options.requests, test.rows);
  try {
    for (let i = 0; i < n; i++) {
      const inputs = requestRow(test, i);
      const res = await post(agent, server.port, inputs);
      if (res.status !== 200) throw new Error(`/predict answered ${res.status}: ${JSON.stringify(res.json)}`);
      const body = res.json as { label: string; probabilities: Record<string, number> };
      latencies.push(res.ms);
      if (body.label === test.labels[i]) agree += 1;
      if (samples.length < 5) {
        samples.push({ basket: test.basketIds[i], inputs, actual: test.labels[i], predicted: body.label, probability: round(body.probabilities[body.label]) });
      }
    }
    const batch = await post(agent, server.port, { instances: Array.from({ length: Math.min(100, test.rows) }, (_, i) => requestRow(test, i)) });
    if (batch.status !== 200) throw new Error(`batch /predict answered ${batch.status}`);
    latencies.sort((a, b) => a - b);
    done();

    step += 1;
    out.write(`\n[${step}/${steps}] summary\n`);
    const summary: DemoSummary = {
      dir,
      lake: lakeDir,
      registry: registryDir,
      data: { rawLines: etl.silver.lines, rejectedLines: etl.silver.rejected, baskets: synth.baskets, goldRows: etl.gold.rows },
      bayesOptimalAccuracy: round(synth.bayesAccuracy),
      testAccuracy: round(run.test.accuracy),
      testMacroF1: round(run.test.macroF1),
      gates: { passed: run.gates.passed, results: run.gates.results.map((g) => ({ name: g.gate, passed: g.passed, detail: `${g.actual.toFixed(4)} ${g.passed ? '≥' : '<'} ${g.required.toFixed(4)}` })) },
      servedVersion: registered.version,
      url,
      samples,
      http: {
        requests: n,
        agreementWithLabels: round(agree / n),
        p50Ms: round(quantile(latencies, 0.5), 3),
        p99Ms: round(quantile(latencies, 0.99), 3),
        meanMs: round(latencies.reduce((a, b) => a + b, 0) / latencies.length, 3),
        batch100Ms: round(batch.ms, 2),
      },
      seconds,
    };
    return { summary, server };
  } finally {
    agent.destroy();
  }
}

export function formatSummary(s: DemoSummary, keepServing: boolean): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `data        ${s.data.rawLines.toLocaleString('en-US')} raw lines (${s.data.rejectedLines} rejected), ${s.data.baskets.toLocaleString('en-US')} baskets → gold train ${s.data.goldRows.train.toLocaleString('en-US')} / validation ${s.data.goldRows.validation.toLocaleString('en-US')} / test ${s.data.goldRows.test.toLocaleString('en-US')}`,
    `accuracy    test ${s.testAccuracy.toFixed(4)} (macro F1 ${s.testMacroF1.toFixed(4)}) vs Bayes-optimal ${s.bayesOptimalAccuracy.toFixed(4)} (gap ${(s.bayesOptimalAccuracy - s.testAccuracy).toFixed(4)})`,
    `gates       ${s.gates.passed ? 'PASSED' : 'FAILED'}: ${s.gates.results.map((g) => `${g.name} ${g.passed ? 'ok' : 'FAIL'} (${g.detail})`).join('; ')}`,
    `served      version ${s.servedVersion} (Approved) at ${s.url}`,
    `http        ${s.http.requests} single-row /predict: p50 ${s.http.p50Ms} ms, p99 ${s.http.p99Ms} ms, mean ${s.http.meanMs} ms; batch of 100: ${s.http.batch100Ms} ms; agreement with true labels ${pct(s.http.agreementWithLabels)}`,
    'samples',
    ...s.samples.map(
      (p) =>
        `  basket ${p.basket}: SPEND ${p.inputs.SPEND} STORE_FORMAT ${p.inputs.STORE_FORMAT} BASKET_TYPE ${p.inputs.BASKET_TYPE} → ${p.predicted} (p=${p.probability.toFixed(2)}), actual ${p.actual}`,
    ),
    `time        ${Object.entries(s.seconds).map(([k, v]) => `${k} ${v}s`).join(', ')}`,
    `left in     ${s.dir} (lake: ${s.lake}, registry: ${s.registry})`,
    keepServing
      ? `serving     ${s.url}/docs (Swagger UI), ${s.url}/metrics — Ctrl-C to stop`
      : `next        npx pricesense demo --keep-serving, then open ${s.url.replace(/:\d+$/, ':8080')}/docs`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The identity of the demo's console token. */
const DEMO_IDENTITY = 'demo';

export interface DemoConsole {
  readonly running?: RunningConsole;
  readonly token?: string;
  /** The summary line: where to sign in, or why the console did not start. */
  readonly line: string;
  /** Stops the console and revokes the demo token: it is valid only while the demo serves. */
  close(): Promise<void>;
}

/**
 * With --keep-serving, the registry console runs next to the API, on the demo's registry
 * and lake, with an approver token for "demo" (kept hashed in the demo directory). Each
 * run replaces the previous run's demo token, and stopping the demo revokes it, so the
 * token printed (on the terminal, or in --json) opens nothing once the demo is gone.
 * A console that cannot start (port taken) is reported, not fatal: the API still serves.
 */
export async function startDemoConsole(s: DemoSummary, port = DEFAULT_CONSOLE_PORT): Promise<DemoConsole> {
  const auth = path.join(s.dir, 'console-auth.json');
  const revoke = async (): Promise<void> => {
    if (existsSync(auth)) await revokeTokens(auth, DEMO_IDENTITY);
  };
  try {
    await revoke();
    const { token } = await addToken(auth, DEMO_IDENTITY, 'approver');
    try {
      const running = await startConsole({ registry: s.registry, lake: s.lake, api: s.url, auth, port, logLevel: 'warn' });
      const close = async (): Promise<void> => {
        await running.close();
        await revoke();
      };
      return { running, token, close, line: `console     ${running.url}/login — sign in with ${token} (approver "${DEMO_IDENTITY}", valid while the demo serves; stored hashed in ${auth})\n` };
    } catch (err) {
      await revoke();
      throw err;
    }
  } catch (err) {
    return { line: `console     not started: ${(err as Error).message}\n`, close: async () => undefined };
  }
}
