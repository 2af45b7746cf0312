import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors';
import { configuredSetting, setting, useConfigFile } from '../config';

describe('shared settings', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-config-'));
  });
  afterEach(async () => {
    useConfigFile(undefined, {});
    await rm(dir, { recursive: true, force: true });
  });

  async function file(doc: unknown): Promise<string> {
    const f = path.join(dir, 'pricesense.json');
    await writeFile(f, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return f;
  }

  it('takes the explicit value, then the environment, then the configuration file, then the default', async () => {
    const env = { PRICESENSE_CONFIG: await file({ lake: 's3://from-file/lake', registry: 'from-file' }) };
    expect(setting('lake', 'flag-lake', { ...env, PRICESENSE_LAKE: 'env-lake' })).toBe('flag-lake');
    expect(setting('lake', undefined, { ...env, PRICESENSE_LAKE: 'env-lake' })).toBe('env-lake');
    expect(setting('lake', undefined, env)).toBe('s3://from-file/lake');
    expect(setting('lake', undefined, {})).toBe('.pricesense/lake');
    // Without a default: unset stays unset.
    expect(configuredSetting('user', undefined, {})).toBeUndefined();
    expect(configuredSetting('lake', '', { PRICESENSE_LAKE: '' })).toBeUndefined();
  });

  it('lets --config win over PRICESENSE_CONFIG', async () => {
    const named = await file({ registry: 'from-flag-file' });
    useConfigFile(named, { PRICESENSE_CONFIG: path.join(dir, 'other.json') });
    expect(setting('registry', undefined, { PRICESENSE_CONFIG: path.join(dir, 'other.json') })).toBe('from-flag-file');
  });

  it('validates values and names where they came from', async () => {
    expect(() => setting('progress', undefined, { PRICESENSE_PROGRESS: 'fancy' })).toThrow('PRICESENSE_PROGRESS="fancy" is invalid: expected one of tty, json, off');
    expect(setting('progress', undefined, { PRICESENSE_PROGRESS: 'json' })).toBe('json');
    expect(() => configuredSetting('loaderMemoryMb', undefined, { PRICESENSE_LOADER_MEMORY_MB: '1.5' })).toThrow('PRICESENSE_LOADER_MEMORY_MB="1.5" is invalid: expected an integer >= 1');
    expect(configuredSetting('loaderMemoryMb', undefined, { PRICESENSE_LOADER_MEMORY_MB: '512' })).toBe(512);
  });

  it('checks the whole configuration file when it is named', async () => {
    const f = await file({ progress: 'loud' });
    expect(() => useConfigFile(f, {})).toThrow(`${f}: progress="loud" is invalid: expected one of tty, json, off`);
    const typo = await file({ lakes: 'x' });
    expect(() => useConfigFile(typo, {})).toThrow(/unknown key "lakes"; the keys are lake, registry, user, image, consoleAuth, progress, loaderMemoryMb$/);
    const secret = await file({ registryAuditKey: 'k' });
    expect(() => useConfigFile(secret, {})).toThrow(/unknown key "registryAuditKey": registryAuditKey is read only from PRICESENSE_REGISTRY_AUDIT_KEY/);
    const nested = await file({ lake: { uri: 'x' } });
    expect(() => useConfigFile(nested, {})).toThrow('lake must be a string or a number, got {"uri":"x"}');
    const broken = await file('{"lake": ');
    expect(() => useConfigFile(broken, {})).toThrow(/not valid JSON/);
    expect(() => useConfigFile(undefined, { PRICESENSE_CONFIG: path.join(dir, 'missing.json') })).toThrow(`configuration file ${path.join(dir, 'missing.json')} (named by PRICESENSE_CONFIG): no such file`);
    let caught: unknown;
    try {
      useConfigFile(typo, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as UserError).exitCode).toBe(2);
  });
});
