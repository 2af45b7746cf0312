/**
 * A worker's gate to the shared port (api/serve.ts joinWhenAnswerable), on the worker's
 * side of the IPC channel. Node emits the messages of one channel read one per nextTick
 * callback, all before any promise continuation: when the primary's 'listening' reply and
 * its 'join-anyway' (the last listener just exited) arrive together, a worker that starts
 * listening for 'join-anyway' only after awaiting the reply never hears it, and waits off
 * the port while nobody listens.
 */
import { joinWhenAnswerable } from '../serve';

describe('joinWhenAnswerable', () => {
  const sent: unknown[] = [];
  const saved = { send: process.send, connected: process.connected };
  beforeEach(() => {
    sent.length = 0;
    // The worker end of the channel: what it sends is recorded, not written to whatever parent runs the tests.
    Object.defineProperty(process, 'connected', { value: true, configurable: true, writable: true });
    process.send = (msg: unknown, ...rest: unknown[]) => {
      sent.push(msg);
      const callback = rest.find((r): r is (err: Error | null) => void => typeof r === 'function');
      callback?.(null);
      return true;
    };
  });
  afterEach(() => {
    process.send = saved.send;
    Object.defineProperty(process, 'connected', { value: saved.connected, configurable: true, writable: true });
  });

  /** The primary's messages as one channel read delivers them. */
  const deliver = (...messages: unknown[]) => {
    for (const m of messages) process.nextTick(() => process.emit('message', m, undefined));
  };
  const notReady = { ready: false, whenReady: () => new Promise<void>(() => undefined) };

  it("joins when 'join-anyway' comes in the same read as the 'listening' reply", async () => {
    const listeners = process.listenerCount('message');
    let joined = false;
    const gate = joinWhenAnswerable(notReady).then(() => (joined = true));
    expect(sent).toEqual([{ pricesense: 'anyone-listening?' }]);
    deliver({ pricesense: 'listening', others: 1 }, { pricesense: 'join-anyway' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(joined).toBe(true);
    await gate;
    expect(process.listenerCount('message')).toBe(listeners);
  });

  it("waits off the port while a sibling listens until 'join-anyway'; joins at once when nobody listens", async () => {
    const listeners = process.listenerCount('message');
    let joined = false;
    void joinWhenAnswerable(notReady).then(() => (joined = true));
    deliver({ pricesense: 'listening', others: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(joined).toBe(false);
    deliver({ pricesense: 'join-anyway' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(joined).toBe(true);

    const alone = joinWhenAnswerable(notReady);
    deliver({ pricesense: 'listening', others: 0 });
    await alone;
    // Nothing left listening for a 'join-anyway' that no longer concerns this worker.
    expect(process.listenerCount('message')).toBe(listeners);
  });
});
