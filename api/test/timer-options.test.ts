/** Library options in milliseconds that feed a timer, past what Node holds: refused (the flags that set them are bounded in their own tests). */
import { EmfReporter } from '../emf';
import { ApiMetrics } from '../metrics';
import { AccessLog } from '../request-context';
import { loadForestInWorker } from '../../model/forest-loader';
import { ModelManager } from '../model-manager';
import { silentLogger, testRegistry } from './fixtures';

describe('timer options of the serving library', () => {
  it('the EMF reporter, the access log, the worker load and the model manager refuse an interval Node would turn into 1 ms', async () => {
    const metrics = new ApiMetrics({ defaultMetrics: false });
    const tooLong = 25 * 86_400_000;
    expect(() => new EmfReporter(metrics, silentLogger(), { namespace: 'ns', intervalMs: tooLong, sink: { kind: 'log' } })).toThrow(/EmfReporter intervalMs must be/);
    expect(() => new AccessLog(metrics, silentLogger(), { summaryIntervalMs: tooLong })).toThrow(/AccessLog summaryIntervalMs must be/);
    await expect(loadForestInWorker({ bytes: Buffer.from('{}') }, 'f.json', {}, {}, { timeoutMs: tooLong })).rejects.toThrow(/WorkerLoadLimits timeoutMs must be/);
    // The manager refuses a bad poll interval or load deadline when it is built (a RangeError, a caller's mistake): at a
    // load, the version would take the blame.
    const reg = await testRegistry();
    try {
      const base = { registry: reg.registry, metrics, logger: silentLogger() };
      expect(() => new ModelManager({ ...base, pollIntervalMs: tooLong })).toThrow(RangeError);
      expect(() => new ModelManager({ ...base, pollIntervalMs: tooLong })).toThrow(/ModelManager pollIntervalMs must be/);
      expect(() => new ModelManager({ ...base, loaderLimits: { timeoutMs: 0.5 } })).toThrow(/ModelManager loaderLimits.timeoutMs must be .* got 0\.5/);
      // Within bounds: constructed as before.
      expect(new AccessLog(metrics, silentLogger(), { summaryIntervalMs: 60_000 })).toBeInstanceOf(AccessLog);
      expect(new ModelManager({ ...base, pollIntervalMs: 60_000, loaderLimits: { timeoutMs: 30_000 } })).toBeInstanceOf(ModelManager);
    } finally {
      await reg.cleanup();
    }
  });
});
