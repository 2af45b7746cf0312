/**
 * sendIpc on a real IPC channel whose peer has exited: Node's own send() reports the
 * closed channel as an 'error' event, which nobody listens to in the cluster primary
 * (an uncaught exception there stops every worker); sendIpc drops the message instead.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { sendIpc } from '../cluster-ipc';

function exitedChild(): Promise<ChildProcess> {
  const child = fork('-e', ['process.exit(0)'], { execArgv: [], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  const gone = (event: 'exit' | 'disconnect') => new Promise((resolve) => child.once(event, resolve));
  return Promise.all([gone('exit'), gone('disconnect')]).then(() => child);
}

describe('sendIpc', () => {
  it('drops a message to a peer that exited, where send() would emit an error event', async () => {
    const child = await exitedChild();
    const errors: Error[] = [];
    child.on('error', (e) => errors.push(e));
    expect(sendIpc(child, { pricesense: 'worker-metrics?', id: 1 })).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(errors).toEqual([]);
    // What it guards against: Node reports the closed channel as an 'error' event.
    child.send({ pricesense: 'worker-metrics?', id: 2 });
    await new Promise((r) => setImmediate(r));
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ERR_IPC_CHANNEL_CLOSED']);
  });

  it('delivers on an open channel', async () => {
    const child = fork('-e', ['process.once("message", (m) => process.send(m, () => process.exit(0)))'], { execArgv: [], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    const echoed = new Promise((resolve) => child.once('message', resolve));
    expect(sendIpc(child, { pricesense: 'shutdown' })).toBe(true);
    expect(await echoed).toEqual({ pricesense: 'shutdown' });
  });
});
