import { UserError } from '../../core/errors';
import { DEFAULT_CONFIG, loadConfig } from '../config';
import { workerExecArgv } from '../serve';

describe('api config', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({})).toEqual(DEFAULT_CONFIG);
    expect(DEFAULT_CONFIG).toMatchObject({ port: 8080, batchLimit: 1000, pollIntervalMs: 30_000, bodyLimitBytes: 2 * 1024 * 1024 });
  });

  it('reads the environment, and flags win over it', () => {
    const env = { PORT: '9000', PRICESENSE_REGISTRY: '/r', PRICESENSE_POLL_INTERVAL: '500ms', PRICESENSE_BATCH_LIMIT: '10', PRICESENSE_BODY_LIMIT: '64kb', PRICESENSE_CANARY: '7:12.5' };
    expect(loadConfig(env)).toMatchObject({ port: 9000, registry: '/r', pollIntervalMs: 500, batchLimit: 10, bodyLimitBytes: 65536, challenger: { version: 7, mode: 'canary', percent: 12.5 } });
    expect(loadConfig(env, { port: '1234', pollInterval: '2m', canary: undefined })).toMatchObject({ port: 1234, pollIntervalMs: 120_000 });
    expect(loadConfig({ PRICESENSE_SHADOW: '3' }).challenger).toEqual({ version: 3, mode: 'shadow', percent: 0 });
    expect(loadConfig({}, { workers: 'auto' }).workers).toBeGreaterThanOrEqual(1);
  });

  it('rejects bad values naming the variable, the value and what was expected', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ PORT: 'eighty' }, /PORT="eighty" is invalid: expected an integer from 0 to 65535/],
      [{ PRICESENSE_POLL_INTERVAL: 'soon' }, /PRICESENSE_POLL_INTERVAL="soon" is invalid: expected a duration/],
      [{ PRICESENSE_CANARY: '7' }, /PRICESENSE_CANARY="7" is invalid: expected VERSION:PERCENT/],
      [{ PRICESENSE_CANARY: '7:0' }, /above 0/],
      [{ PRICESENSE_CANARY: '7:10', PRICESENSE_SHADOW: '8' }, /at most one challenger/],
      [{ PRICESENSE_BODY_LIMIT: '5gb' }, /PRICESENSE_BODY_LIMIT="5gb"/],
      [{ PRICESENSE_LOG_LEVEL: 'loud' }, /one of fatal, error/],
      [{ PRICESENSE_MODEL_NAME: '../x' }, /PRICESENSE_MODEL_NAME/],
      [{ PRICESENSE_UNKNOWN_CATEGORIES: 'ignore' }, /PRICESENSE_UNKNOWN_CATEGORIES="ignore" is invalid: expected one of missing, reject/],
      [{ PRICESENSE_MAX_IN_FLIGHT: '0' }, /PRICESENSE_MAX_IN_FLIGHT="0" is invalid: expected an integer from 1/],
      [{ PRICESENSE_MAX_EVENT_LOOP_DELAY: '2m' }, /PRICESENSE_MAX_EVENT_LOOP_DELAY="2m" is invalid: expected a duration 0 \(off\) or from 10ms/],
      // Below 10 ms a timer tick or a minor GC inside a turn would shed.
      [{ PRICESENSE_MAX_EVENT_LOOP_DELAY: '5ms' }, /PRICESENSE_MAX_EVENT_LOOP_DELAY="5ms" is invalid: expected a duration 0 \(off\) or from 10ms to 1m/],
    ];
    for (const [env, message] of bad) {
      expect(() => loadConfig(env)).toThrow(UserError);
      expect(() => loadConfig(env)).toThrow(message);
    }
    expect(() => loadConfig({}, { batchLimit: '0' })).toThrow(/--batch-limit="0"/);
  });

  it('bounds every duration: beyond 2^31-1 ms Node clamps a timer to 1 ms, so 25 days must not become a tight poll loop', () => {
    for (const value of ['600h', '2160000s', '2147483648ms', '36000m']) {
      expect(() => loadConfig({ PRICESENSE_POLL_INTERVAL: value })).toThrow(/PRICESENSE_POLL_INTERVAL=".*" is invalid: expected a duration from 100ms to 24h/);
      expect(() => loadConfig({}, { shutdownTimeout: value })).toThrow(/--shutdown-timeout=".*" is invalid: expected a duration from 0s to 1h/);
    }
    expect(loadConfig({ PRICESENSE_POLL_INTERVAL: '24h', PRICESENSE_SHUTDOWN_TIMEOUT: '1h' })).toMatchObject({ pollIntervalMs: 86_400_000, shutdownTimeoutMs: 3_600_000 });
    // The others, at their upper bound and past it.
    const others: [Record<string, string>, Record<string, string>, RegExp, Record<string, number>][] = [
      [{ PRICESENSE_EMF_INTERVAL: '1h' }, { PRICESENSE_EMF_INTERVAL: '25d' }, /PRICESENSE_EMF_INTERVAL="25d" is invalid: expected a duration from 100ms to 1h/, { emfIntervalMs: 3_600_000 }],
      [{ PRICESENSE_EMF_INTERVAL: '1h' }, { PRICESENSE_EMF_INTERVAL: '2160000' }, /PRICESENSE_EMF_INTERVAL="2160000" is invalid/, { emfIntervalMs: 3_600_000 }],
      [{ PRICESENSE_MAX_EVENT_LOOP_DELAY: '1m' }, { PRICESENSE_MAX_EVENT_LOOP_DELAY: '600h' }, /PRICESENSE_MAX_EVENT_LOOP_DELAY="600h" is invalid: expected a duration 0 \(off\) or from 10ms to 1m/, { maxEventLoopDelayMs: 60_000 }],
    ];
    for (const [atBound, past, message, parsed] of others) {
      expect(loadConfig(atBound)).toMatchObject(parsed);
      expect(() => loadConfig(past)).toThrow(message);
    }
  });

  it('gives cluster workers a smaller nursery, unless the operator chose', () => {
    expect(workerExecArgv([], '')).toEqual(['--max-semi-space-size=8']);
    expect(workerExecArgv(['--max-semi-space-size=32'], '')).toEqual(['--max-semi-space-size=32']);
    expect(workerExecArgv(['--inspect'], '--max_semi_space_size=2')).toEqual(['--inspect']);
  });
});
