/**
 * The shared settings of every layer, resolved in one place: an explicit value (a CLI
 * flag or a function argument) wins, then the environment variable, then the
 * configuration file (`--config <file>` or PRICESENSE_CONFIG), then the default. Every
 * value is validated here, and a bad one is a UserError naming where it came from, the
 * value and what was expected.
 *
 * The API server's own settings (port, limits, canary, …) are read by api/config.ts from
 * the environment and `serve` flags. README.md ("Configuration") lists both sets; a test
 * keeps that table and the code in step. ESLint refuses `process.env.PRICESENSE_*`
 * anywhere else.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SM_ROOT } from '../contracts/sagemaker-job';
import { UserError } from './errors';

interface Spec<T> {
  /** The environment variable. */
  readonly env: string;
  /** Whether the configuration file may hold it (secrets may not). */
  readonly inFile: boolean;
  readonly parse: (where: string, raw: string) => T;
  readonly fallback?: T;
}

const text = (_where: string, raw: string): string => raw;

function choice<C extends string>(choices: readonly C[]) {
  return (where: string, raw: string): C => {
    const v = raw.trim() as C;
    if (!choices.includes(v)) throw invalid(where, raw, `one of ${choices.join(', ')}`);
    return v;
  };
}

function positiveInteger(where: string, raw: string): number {
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw invalid(where, raw, 'an integer >= 1');
  return n;
}

function invalid(where: string, raw: string, expected: string): UserError {
  return new UserError(`${where}=${JSON.stringify(raw)} is invalid: expected ${expected}`);
}

export const PROGRESS_MODES = ['tty', 'json', 'off'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** The settings shared by the layers; the key is also the configuration file's key. */
export const SETTINGS = {
  lake: { env: 'PRICESENSE_LAKE', inFile: true, parse: text, fallback: '.pricesense/lake' },
  registry: { env: 'PRICESENSE_REGISTRY', inFile: true, parse: text, fallback: '.pricesense/registry' },
  user: { env: 'PRICESENSE_USER', inFile: true, parse: text },
  image: { env: 'PRICESENSE_IMAGE', inFile: true, parse: text },
  registryAuditKey: { env: 'PRICESENSE_REGISTRY_AUDIT_KEY', inFile: false, parse: text },
  consoleAuth: { env: 'PRICESENSE_CONSOLE_AUTH', inFile: true, parse: text, fallback: '.pricesense/console-auth.json' },
  progress: { env: 'PRICESENSE_PROGRESS', inFile: true, parse: choice(PROGRESS_MODES) },
  loaderMemoryMb: { env: 'PRICESENSE_LOADER_MEMORY_MB', inFile: true, parse: positiveInteger },
  codeVersion: { env: 'PRICESENSE_CODE_VERSION', inFile: false, parse: text },
  smRoot: { env: 'SM_ROOT', inFile: false, parse: text, fallback: SM_ROOT },
} satisfies Record<string, Spec<unknown>>;

export type SettingName = keyof typeof SETTINGS;
type ValueOf<K extends SettingName> = ReturnType<(typeof SETTINGS)[K]['parse']>;

/** The configuration file's own variable. */
export const CONFIG_FILE_ENV = 'PRICESENSE_CONFIG';

let explicitConfigFile: string | undefined;
const fileCache = new Map<string, Partial<Record<SettingName, string>>>();

/**
 * Called by the CLI before each command with `--config <file>` (which wins over
 * PRICESENSE_CONFIG) or undefined; reads and checks the file now, so a bad one fails
 * before any work.
 */
export function useConfigFile(file: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  explicitConfigFile = file;
  fileCache.clear();
  configFileValues(env);
}

function configFileValues(env: NodeJS.ProcessEnv): { file: string; values: Partial<Record<SettingName, string>> } | undefined {
  const named = explicitConfigFile ?? (env[CONFIG_FILE_ENV] || undefined);
  if (!named) return undefined;
  const file = path.resolve(named);
  let values = fileCache.get(file);
  if (!values) {
    values = readConfigFile(file, explicitConfigFile ? '--config' : CONFIG_FILE_ENV);
    fileCache.set(file, values);
  }
  return { file, values };
}

/** Reads and checks the whole file at once, so a typo fails at start rather than when its key is first used. */
export function readConfigFile(file: string, namedBy: string): Partial<Record<SettingName, string>> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code ? (err as Error).message : `not valid JSON (${(err as Error).message})`;
    throw new UserError(`configuration file ${file} (named by ${namedBy}): ${why}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UserError(`configuration file ${file}: expected a JSON object such as {"lake": "s3://bucket/lake", "registry": "sagemaker://pricesense"}`);
  }
  const allowed = (Object.keys(SETTINGS) as SettingName[]).filter((k) => SETTINGS[k].inFile);
  const values: Partial<Record<SettingName, string>> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (!(allowed as string[]).includes(key)) {
      const secret = key in SETTINGS ? `: ${key} is read only from ${SETTINGS[key as SettingName].env}` : `; the keys are ${allowed.join(', ')}`;
      throw new UserError(`configuration file ${file}: unknown key ${JSON.stringify(key)}${secret}`);
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new UserError(`configuration file ${file}: ${key} must be a string or a number, got ${JSON.stringify(value)}`);
    }
    const name = key as SettingName;
    SETTINGS[name].parse(`${file}: ${key}`, String(value));
    values[name] = String(value);
  }
  return values;
}

/**
 * A setting's value and where it came from, or undefined when nothing sets it (the
 * default is not applied: for "use a lake only when one is configured").
 */
export function configuredSetting<K extends SettingName>(name: K, explicit?: string, env: NodeJS.ProcessEnv = process.env): ValueOf<K> | undefined {
  const spec: Spec<unknown> = SETTINGS[name];
  if (explicit !== undefined && explicit !== '') return spec.parse(name, explicit) as ValueOf<K>;
  const fromEnv = env[spec.env];
  if (fromEnv !== undefined && fromEnv !== '') return spec.parse(spec.env, fromEnv) as ValueOf<K>;
  const file = spec.inFile ? configFileValues(env) : undefined;
  const fromFile = file?.values[name];
  if (fromFile !== undefined) return spec.parse(`${file!.file}: ${name}`, fromFile) as ValueOf<K>;
  return undefined;
}

/** A setting's value: explicit, environment, configuration file, else its default. */
export function setting<K extends SettingName>(name: K, explicit?: string, env: NodeJS.ProcessEnv = process.env): ValueOf<K> | ((typeof SETTINGS)[K] extends { fallback: infer F } ? F : undefined) {
  const spec: Spec<unknown> = SETTINGS[name];
  return (configuredSetting(name, explicit, env) ?? spec.fallback) as never;
}
