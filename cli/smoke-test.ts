import { checkSeconds, type SecondsBounds } from '../core/durations';
import { UserError } from '../core/errors';

/**
 * Post-deploy smoke test against a running pricesense API: it must become ready,
 * describe its model, answer a well-formed /predict with a valid distribution from
 * the version it says it serves, and refuse a malformed one with a 4xx. Used by the
 * release workflow (rollback on failure) and by anyone checking a deployment.
 */
export interface SmokeOptions {
  readonly url: string;
  readonly timeoutSeconds?: number;
  readonly fetchImpl?: typeof fetch;
}

/** How long to wait for /ready: up to a day. */
export const SMOKE_TIMEOUT_BOUNDS: SecondsBounds = { min: 1, max: 86_400 };

export interface SmokeCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly ms: number;
}

export interface SmokeReport {
  readonly url: string;
  readonly ok: boolean;
  readonly version?: string | number;
  readonly checks: SmokeCheck[];
}

interface FeatureLike {
  readonly name: string;
  readonly kind: 'numeric' | 'categorical';
  readonly categories?: string[];
}

export async function smokeTest(options: SmokeOptions): Promise<SmokeReport> {
  const base = options.url.replace(/\/+$/, '');
  if (!/^https?:\/\//.test(base)) throw new UserError(`--url must be an http(s) URL, got '${options.url}'`);
  const doFetch = options.fetchImpl ?? fetch;
  const checks: SmokeCheck[] = [];
  const deadline = Date.now() + checkSeconds('the smoke test timeout (--timeout)', options.timeoutSeconds ?? 120, SMOKE_TIMEOUT_BOUNDS) * 1000;

  const timed = async <T>(name: string, fn: () => Promise<{ ok: boolean; detail: string; value?: T }>): Promise<T | undefined> => {
    const t0 = performance.now();
    let result: { ok: boolean; detail: string; value?: T };
    try {
      result = await fn();
    } catch (err) {
      result = { ok: false, detail: (err as Error).message };
    }
    checks.push({ name, ok: result.ok, detail: result.detail, ms: Math.round((performance.now() - t0) * 10) / 10 });
    return result.ok ? result.value : undefined;
  };

  const ready = await timed('ready', async () => {
    let last = 'no answer';
    while (Date.now() < deadline) {
      try {
        const res = await doFetch(`${base}/ready`, { signal: AbortSignal.timeout(5000) });
        if (res.status === 200) return { ok: true, detail: 'GET /ready 200', value: true };
        last = `GET /ready ${res.status}: ${(await res.text()).slice(0, 300)}`;
      } catch (err) {
        last = `GET /ready failed: ${(err as Error).message}`;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { ok: false, detail: `not ready within ${options.timeoutSeconds ?? 120}s (last: ${last})` };
  });
  if (!ready) return { url: base, ok: false, checks };

  const model = await timed('model', async () => {
    const res = await doFetch(`${base}/model`);
    const body = (await res.json()) as { champion?: { version?: string | number; features?: FeatureLike[]; classes?: string[] } };
    const champion = body.champion;
    if (res.status !== 200 || !champion?.features?.length || !champion.classes?.length) {
      return { ok: false, detail: `GET /model ${res.status}: no champion with features and classes` };
    }
    return { ok: true, detail: `serving version ${champion.version} (${champion.features.length} features)`, value: champion };
  });
  if (!model) return { url: base, ok: false, checks };

  const row: Record<string, unknown> = {};
  for (const f of model.features ?? []) row[f.name] = f.kind === 'categorical' ? (f.categories?.[0] ?? null) : 1;

  await timed('predict', async () => {
    const res = await doFetch(`${base}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(row) });
    const body = (await res.json()) as { label?: string; probabilities?: Record<string, number>; model?: { version?: string | number } };
    if (res.status !== 200) return { ok: false, detail: `POST /predict ${res.status}: ${JSON.stringify(body).slice(0, 300)}` };
    const classes = model.classes ?? [];
    const probs = body.probabilities ?? {};
    const sum = classes.reduce((s, c) => s + (probs[c] ?? NaN), 0);
    if (!body.label || !classes.includes(body.label)) return { ok: false, detail: `label '${body.label}' is not one of ${classes.join(', ')}` };
    if (!(Math.abs(sum - 1) < 1e-6)) return { ok: false, detail: `probabilities sum to ${sum}, not 1` };
    if (body.model?.version === undefined) return { ok: false, detail: 'response does not say which model version answered' };
    return { ok: true, detail: `${body.label} from version ${body.model.version}` };
  });

  await timed('rejects bad input', async () => {
    const res = await doFetch(`${base}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"not": "a basket"' });
    await res.text();
    return res.status >= 400 && res.status < 500
      ? { ok: true, detail: `malformed JSON answered ${res.status}` }
      : { ok: false, detail: `malformed JSON answered ${res.status}, expected a 4xx` };
  });

  return { url: base, ok: checks.every((c) => c.ok), version: model.version, checks };
}
