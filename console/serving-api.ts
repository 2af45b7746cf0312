/**
 * What the serving API says about itself, read over HTTP from its /metrics (the
 * console never imports the API's code: it may run elsewhere, another version, several
 * replicas). From the Prometheus samples: which versions are served in which role,
 * requests and latency per version, per-feature drift (PSI) and, when the API exports
 * them, unknown-category rates.
 */
import { UserError } from '../core/errors';
import { histogramQuantile, parsePrometheusText, type Sample } from './prometheus';

export type ServingRole = 'champion' | 'canary' | 'shadow';

export interface ServedModel {
  readonly version: number;
  readonly role: ServingRole;
  readonly sha256: string;
}

export interface VersionTraffic {
  readonly version: string;
  readonly requests: number;
  readonly clientErrors: number;
  readonly serverErrors: number;
  readonly meanMs: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

export interface FeatureValue {
  readonly feature: string;
  readonly version: string;
  readonly role: string;
  readonly value: number;
}

export interface LiveSnapshot {
  readonly url: string;
  readonly fetchedAt: string;
  readonly models: ServedModel[];
  readonly traffic: VersionTraffic[];
  readonly drift: FeatureValue[];
  readonly driftWindow: { version: string; role: string; rows: number }[];
  /** Share of live values per feature that were unseen categories; null when the API does not export it. */
  readonly unknownCategories: FeatureValue[] | null;
  readonly predictions: { version: string; role: string; label: string; count: number }[];
}

const DURATION = 'pricesense_http_request_duration_seconds';
/** PSI above these is a moderate / major population shift (the API's documented reading). */
export const PSI_THRESHOLDS = { moderate: 0.1, major: 0.25 } as const;
const ROLES: readonly ServingRole[] = ['champion', 'canary', 'shadow'];

const byName = (samples: Sample[], name: string): Sample[] => samples.filter((s) => s.name === name);

function traffic(samples: Sample[]): VersionTraffic[] {
  const versions = new Map<string, { count: number; sum: number; client: number; server: number; buckets: Map<number, number> }>();
  const get = (v: string) => {
    let t = versions.get(v);
    if (!t) versions.set(v, (t = { count: 0, sum: 0, client: 0, server: 0, buckets: new Map() }));
    return t;
  };
  for (const s of samples) {
    const v = s.labels.model_version;
    if (v === undefined || v === 'none' || v === '') continue;
    if (s.name === `${DURATION}_count`) {
      const t = get(v);
      t.count += s.value;
      const status = Number(s.labels.status);
      if (status >= 500) t.server += s.value;
      else if (status >= 400) t.client += s.value;
    } else if (s.name === `${DURATION}_sum`) get(v).sum += s.value;
    else if (s.name === `${DURATION}_bucket`) {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      if (Number.isNaN(le)) continue;
      const b = get(v).buckets;
      b.set(le, (b.get(le) ?? 0) + s.value);
    }
  }
  return [...versions.entries()]
    .sort((a, b) => Number(a[0]) - Number(b[0]) || a[0].localeCompare(b[0]))
    .map(([version, t]) => {
      const buckets = [...t.buckets.entries()].map(([le, count]) => ({ le, count }));
      const q = (x: number): number | null => {
        const s = histogramQuantile(x, buckets);
        return s === null ? null : s * 1000;
      };
      return { version, requests: t.count, clientErrors: t.client, serverErrors: t.server, meanMs: t.count > 0 ? (t.sum / t.count) * 1000 : null, p50Ms: q(0.5), p99Ms: q(0.99) };
    });
}

/**
 * Unknown-category shares, from whichever form the API exports: a gauge of the share
 * (name containing "unknown_categor" and ending in _ratio or _share), or a counter of
 * unknown values (…_total) divided by the rows predicted by that version and role.
 */
function unknownCategories(samples: Sample[]): FeatureValue[] | null {
  const relevant = samples.filter((s) => /unknown_categor/.test(s.name) && s.labels.feature !== undefined);
  if (relevant.length === 0) return null;
  const ratio = relevant.filter((s) => /_(ratio|share)$/.test(s.name));
  if (ratio.length > 0) return ratio.map((s) => ({ feature: s.labels.feature, version: s.labels.model_version ?? '', role: s.labels.role ?? '', value: s.value }));
  const rows = new Map<string, number>();
  for (const s of byName(samples, 'pricesense_predictions_total')) {
    const key = `${s.labels.model_version ?? ''}\u0000${s.labels.role ?? ''}`;
    rows.set(key, (rows.get(key) ?? 0) + s.value);
  }
  const totalRows = [...rows.values()].reduce((a, b) => a + b, 0);
  return relevant
    .filter((s) => s.name.endsWith('_total'))
    .map((s) => {
      const version = s.labels.model_version ?? '';
      const role = s.labels.role ?? '';
      const denominator = version ? (role ? rows.get(`${version}\u0000${role}`) : [...rows.entries()].filter(([k]) => k.startsWith(`${version}\u0000`)).reduce((a, [, n]) => a + n, 0)) : totalRows;
      return { feature: s.labels.feature, version, role, value: denominator ? s.value / denominator : 0 };
    });
}

export function summariseMetrics(samples: Sample[]): Omit<LiveSnapshot, 'url' | 'fetchedAt'> {
  const models: ServedModel[] = [];
  for (const s of byName(samples, 'pricesense_model_info')) {
    const version = Number(s.labels.model_version);
    const role = s.labels.role as ServingRole;
    if (s.value === 1 && Number.isSafeInteger(version) && ROLES.includes(role)) models.push({ version, role, sha256: s.labels.sha256 ?? '' });
  }
  models.sort((a, b) => ROLES.indexOf(a.role) - ROLES.indexOf(b.role));
  return {
    models,
    traffic: traffic(samples),
    drift: byName(samples, 'pricesense_feature_drift_psi').map((s) => ({ feature: s.labels.feature ?? '', version: s.labels.model_version ?? '', role: s.labels.role ?? '', value: s.value })),
    driftWindow: byName(samples, 'pricesense_drift_window_rows').map((s) => ({ version: s.labels.model_version ?? '', role: s.labels.role ?? '', rows: s.value })),
    unknownCategories: unknownCategories(samples),
    predictions: byName(samples, 'pricesense_predictions_total').map((s) => ({ version: s.labels.model_version ?? '', role: s.labels.role ?? '', label: s.labels.class ?? '', count: s.value })),
  };
}

/** Validates --api: an http(s) base URL, without credentials, query or fragment. */
export function parseApiUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(`--api '${text}' is not a URL: expected the serving API's base URL, e.g. http://pricesense-api.mlops:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`--api '${text}' must be an http:// or https:// URL`);
  if (url.username || url.password) throw new UserError(`--api '${text}' must not carry credentials`);
  if (url.search || url.hash) throw new UserError(`--api '${text}' must be a base URL without query or fragment`);
  return url;
}

/** Reads and summarises the API's /metrics; a failure is an Error whose message a page can show as it is. */
export async function readLive(api: URL, timeoutMs = 3000): Promise<LiveSnapshot> {
  const url = new URL('metrics', api.href.endsWith('/') ? api.href : `${api.href}/`);
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'text/plain' }, redirect: 'error' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new Error(`cannot read the serving API's metrics at ${url.href}: ${why}`, { cause: err });
  }
  return { url: api.href, fetchedAt: new Date().toISOString(), ...summariseMetrics(parsePrometheusText(text)) };
}
