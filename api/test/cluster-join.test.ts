/**
 * A worker's gate to the shared port (api/serve.ts joinWhenAnswerable), on the worker's
 * side of the IPC channel. Node emits the messages of one channel read one per nextTick
 * callback, all before any promise continuation: when the primary's 'listening' reply and
 * its 'join-anyway' (the last listener just exited) arrive together, a worker that starts
 * listening for 'join-anyway' only after awaiting the reply never hears it, and waits off
 * the port while nobody listens.
 */
import { joinWhenAnswerable, PortRoster } from '../serve';

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

describe("PortRoster (the primary's view of the shared port)", () => {
  it('tells only the first of two workers asking at once that nobody listens: the second waits instead of listening not ready beside it', () => {
    const roster = new PortRoster();
    // Both ask before either has joined (the race a loaded machine makes likely).
    expect(roster.ask(1)).toBe(0);
    expect(roster.ask(2)).toBe(1);
    expect(roster.joined(1, false)).toEqual([]);
    // The first dies before anyone is ready: the waiting one is asked to join anyway.
    expect(roster.exited(1)).toBe(2);
    expect(roster.exited(2)).toBeUndefined();
  });

  it('sends a not-ready listener off the port when a ready worker joins, and one that joins not ready beside a ready one', () => {
    const roster = new PortRoster();
    expect(roster.ask(1)).toBe(0);
    expect(roster.joined(1, false)).toEqual([]);
    // Worker 2 was ready at start (it never asks) and joins: 1 leaves.
    expect(roster.joined(2, true)).toEqual([1]);
    // Worker 3 was told "nobody" before 2 joined, and listens not ready after it: it leaves at once.
    const roster2 = new PortRoster();
    expect(roster2.ask(3)).toBe(0);
    expect(roster2.joined(4, true)).toEqual([3]);
    expect(roster2.joined(3, false)).toEqual([3]);
    // The ready one exits: nobody listens, and a waiting worker is asked to join anyway.
    expect(roster2.exited(4)).toBe(3);
  });
});
