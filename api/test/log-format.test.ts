import { PassThrough } from 'node:stream';
import { LOG_LEVELS } from '../../core/log';
import { logEvent } from '../../core/progress';
import { createLogger } from '../server';

/** The one log format (core/log.ts): the API's pino lines and the CLI/ETL JSON lines share their standard fields. */
describe('one log format for the API and the CLI', () => {
  const STANDARD = ['level', 'time', 'service', 'pid', 'event', 'msg'];

  function lines(chunks: Buffer[]): Record<string, unknown>[] {
    return Buffer.concat(chunks).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  function checkStandard(line: Record<string, unknown>): void {
    expect(Object.keys(line)).toEqual(expect.arrayContaining(STANDARD));
    expect(LOG_LEVELS).toContain(line.level);
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
    expect(line.pid).toBe(process.pid);
    expect(typeof line.service).toBe('string');
  }

  it('writes level, time, service, pid, event and msg the same way in both', async () => {
    const apiOut = new PassThrough();
    const apiChunks: Buffer[] = [];
    apiOut.on('data', (c: Buffer) => apiChunks.push(c));
    const logger = createLogger('info', apiOut);
    logger.warn({ event: 'registry_poll_failed', registry: '/r' }, 'registry poll failed; serving the current model');
    await new Promise((resolve) => setImmediate(resolve));
    const [api] = lines(apiChunks);
    checkStandard(api);
    expect(api).toMatchObject({ level: 'warn', service: 'pricesense-api', event: 'registry_poll_failed', msg: 'registry poll failed; serving the current model', registry: '/r' });

    const saved = process.env.PRICESENSE_PROGRESS;
    process.env.PRICESENSE_PROGRESS = 'json';
    const cliOut = new PassThrough();
    const cliChunks: Buffer[] = [];
    cliOut.on('data', (c: Buffer) => cliChunks.push(c));
    try {
      logEvent('etl_start', { lake: '/l', threads: 2 }, cliOut as unknown as NodeJS.WriteStream);
      logEvent('ml_random_forest_slow', { level: 'warn', msg: 'this may take minutes', pid: 'not overwritten' }, cliOut as unknown as NodeJS.WriteStream);
    } finally {
      process.env.PRICESENSE_PROGRESS = saved;
    }
    const [start, slow] = lines(cliChunks);
    checkStandard(start);
    checkStandard(slow);
    expect(start).toMatchObject({ level: 'info', service: 'pricesense', event: 'etl_start', msg: 'etl_start', lake: '/l', threads: 2 });
    expect(slow).toMatchObject({ level: 'warn', event: 'ml_random_forest_slow', msg: 'this may take minutes' });
    // The standard fields lead, in the same order pino writes them where both have them.
    expect(Object.keys(start).slice(0, 4)).toEqual(Object.keys(api).slice(0, 4));
  });
});
