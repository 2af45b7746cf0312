/**
 * The SageMaker container contracts' inputs: where things live under /opt/ml, the
 * training job's hyperparameters.json (a map of strings) and resourceconfig.json (which
 * host this is). docs/sagemaker.md is the reference.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setting } from '../../core/config';
import { UserError } from '../../core/errors';
import type { ClassWeightOption, MaxFeatures } from '../trainer';
import { HYPERPARAMETERS, SM_ROOT, type HyperparameterName } from '../../contracts/sagemaker-job';

export const DEFAULT_SM_ROOT = SM_ROOT;

/** The /opt/ml root: the argument, else the SM_ROOT variable, else /opt/ml (tests use a temp dir laid out the same way). */
export function smRoot(root?: string): string {
  return path.resolve(setting('smRoot', root));
}

/** Paths of the SageMaker container layout under a root. */
export function smPaths(root: string) {
  return {
    hyperparameters: path.join(root, 'input', 'config', 'hyperparameters.json'),
    resourceConfig: path.join(root, 'input', 'config', 'resourceconfig.json'),
    channel: (name: string): string => path.join(root, 'input', 'data', name),
    model: path.join(root, 'model'),
    failure: path.join(root, 'output', 'failure'),
    processingInput: (name: string): string => path.join(root, 'processing', 'input', name),
    processingOutput: (name: string): string => path.join(root, 'processing', 'output', name),
  };
}

export interface JobHyperparameters {
  readonly trees?: number;
  readonly maxDepth?: number;
  readonly minSamplesLeaf?: number;
  readonly seed?: number;
  readonly maxFeatures?: MaxFeatures;
  readonly classWeight?: ClassWeightOption;
  readonly threads?: number;
}

const KNOWN = HYPERPARAMETERS;
const isHyperparameter = (key: string): key is HyperparameterName => (KNOWN as readonly string[]).includes(key);

async function readJson(file: string, what: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UserError(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Parses hyperparameters.json. SageMaker passes every value as a string; the Python SDK
 * JSON-encodes them once more ("\"sqrt\""), so one level of quotes is removed. Keys
 * starting with sagemaker_ belong to SageMaker and are ignored; any other unknown key is
 * an error (a typo would otherwise silently train with a default).
 */
export function parseHyperparameters(raw: unknown, source = 'hyperparameters.json'): JobHyperparameters {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${source} must be a JSON object of strings`);
  const values: Partial<Record<HyperparameterName, string>> = {};
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    if (key.startsWith('sagemaker_')) continue;
    if (!isHyperparameter(key)) throw new UserError(`${source}: unknown hyperparameter ${JSON.stringify(key)}; known: ${KNOWN.join(', ')}`);
    if (typeof v !== 'string' && typeof v !== 'number') throw new UserError(`${source}: hyperparameter ${key} must be a string, got ${JSON.stringify(v)}`);
    let s = String(v).trim();
    if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1);
    values[key] = s;
  }
  const int = (key: HyperparameterName, min: number): number | undefined => {
    const s = values[key];
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(n) || n < min) throw new UserError(`${source}: hyperparameter ${key} must be an integer >= ${min}, got ${JSON.stringify(s)}`);
    return n;
  };
  let maxFeatures: MaxFeatures | undefined;
  if (values.max_features !== undefined) {
    const s = values.max_features;
    const x = Number(s);
    if (s === 'sqrt' || s === 'log2' || s === 'all') maxFeatures = s;
    else if (s !== '' && x > 0 && (x < 1 || Number.isInteger(x))) maxFeatures = x;
    else throw new UserError(`${source}: hyperparameter max_features must be sqrt, log2, all, an integer count or a fraction in (0, 1), got ${JSON.stringify(s)}`);
  }
  let classWeight: ClassWeightOption | undefined;
  if (values.class_weight !== undefined) {
    if (values.class_weight === 'balanced') classWeight = 'balanced';
    else if (values.class_weight === 'none') classWeight = null;
    else throw new UserError(`${source}: hyperparameter class_weight must be none or balanced, got ${JSON.stringify(values.class_weight)}`);
  }
  return {
    trees: int('trees', 1),
    maxDepth: int('max_depth', 0),
    minSamplesLeaf: int('min_leaf', 1),
    seed: int('seed', 0),
    maxFeatures,
    classWeight,
    threads: int('threads', 1),
  };
}

export async function readHyperparameters(file: string): Promise<JobHyperparameters> {
  return parseHyperparameters(await readJson(file, 'hyperparameters file'), file);
}

export interface HostShare {
  readonly host: string;
  /** 0-based position of the host among the job's hosts (natural order: algo-2 before algo-10). */
  readonly index: number;
  readonly hosts: number;
}

const naturalOrder = new Intl.Collator('en', { numeric: true }).compare;

/** Which host this is; without resourceconfig.json, the only host of a single-host job. */
export function parseResourceConfig(raw: unknown, source = 'resourceconfig.json'): HostShare {
  if (raw === undefined) return { host: 'algo-1', index: 0, hosts: 1 };
  const cfg = raw as { current_host?: unknown; hosts?: unknown };
  if (typeof cfg !== 'object' || cfg === null || typeof cfg.current_host !== 'string' || !Array.isArray(cfg.hosts) || !cfg.hosts.every((h) => typeof h === 'string')) {
    throw new UserError(`${source} must hold "current_host" (a string) and "hosts" (an array of strings)`);
  }
  const hosts = [...new Set(cfg.hosts as string[])].sort(naturalOrder);
  const index = hosts.indexOf(cfg.current_host);
  if (index < 0) throw new UserError(`${source}: current_host ${JSON.stringify(cfg.current_host)} is not one of hosts ${JSON.stringify(hosts)}`);
  return { host: cfg.current_host, index, hosts: hosts.length };
}

export async function readResourceConfig(file: string): Promise<HostShare> {
  return parseResourceConfig(await readJson(file, 'resource config'), file);
}

/** Host i of n trains trees [floor(i*T/n), floor((i+1)*T/n)): contiguous, tiling [0, T). */
export function treeShare(index: number, hosts: number, trees: number): { start: number; end: number } {
  if (trees < hosts) throw new UserError(`cannot split ${trees} tree(s) across ${hosts} hosts: every host needs at least one tree (raise trees or lower the instance count)`);
  return { start: Math.floor((index * trees) / hosts), end: Math.floor(((index + 1) * trees) / hosts) };
}

/** forest-part-000.json: the host index, zero-padded so part files sort in tree order. */
export function partFileName(index: number): string {
  return `forest-part-${String(index).padStart(3, '0')}.json`;
}

export const PART_FILE_PATTERN = /^forest-part-(\d+)\.json$/;
