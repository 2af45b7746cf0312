import express from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createResponseTracker } from '../response-tracker';

/** A server whose handler parks every request until released; answers with res.end (no explicit writeHead), as Express does. */
async function parkingServer() {
  const tracker = createResponseTracker();
  const parked: http.ServerResponse[] = [];
  const server = http.createServer({ ServerResponse: tracker.Response }, (_req, res) => {
    parked.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { tracker, parked, server, port };
}

function request(port: number, agent: http.Agent): { done: Promise<http.IncomingMessage>; req: http.ClientRequest } {
  let req!: http.ClientRequest;
  const done = new Promise<http.IncomingMessage>((resolve, reject) => {
    req = http.request({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    req.on('error', reject);
    req.end();
  });
  return { done, req };
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('response tracker', () => {
  it('counts responses in flight until they finish or their client goes away', async () => {
    const { tracker, parked, server, port } = await parkingServer();
    const agent = new http.Agent({ keepAlive: true });
    try {
      const a = request(port, agent);
      const b = request(port, agent);
      const c = request(port, agent);
      c.done.catch(() => undefined);
      await until('three requests parked', () => parked.length === 3);
      expect(tracker.inFlight()).toBe(3);

      parked[0].end('ok');
      await a.done;
      await until('the finished response to be closed', () => tracker.inFlight() === 2);

      // A client that hangs up: the response closes without being written.
      c.req.destroy();
      await until('the abandoned response to be closed', () => tracker.inFlight() === 1);

      parked[1].end('ok');
      await b.done;
      await until('nothing in flight', () => tracker.inFlight() === 0);
      // Written after its close: no second decrement.
      parked[2].end('late');
      await new Promise((r) => setTimeout(r, 20));
      expect(tracker.inFlight()).toBe(0);
    } finally {
      agent.destroy();
      server.closeAllConnections();
      server.close();
    }
  });

  it('once connections are to close, a response written afterwards says so, whether it was admitted before or after', async () => {
    const { tracker, parked, server, port } = await parkingServer();
    const agent = new http.Agent({ keepAlive: true });
    try {
      const before = request(port, agent);
      await until('a parked request', () => parked.length === 1);
      parked[0].end('ok');
      expect((await before.done).headers.connection).toBe('keep-alive');

      const admitted = request(port, agent);
      await until('a second parked request', () => parked.length === 2);
      tracker.closeConnections();
      const after = request(port, new http.Agent({ keepAlive: true }));
      await until('a third parked request', () => parked.length === 3);
      parked[1].end('ok'); // implicit header (no writeHead call of ours)
      parked[2].writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      expect((await admitted.done).headers.connection).toBe('close');
      expect((await after.done).headers.connection).toBe('close');

      tracker.keepConnections();
      const rejoined = request(port, new http.Agent({ keepAlive: true }));
      await until('a fourth parked request', () => parked.length === 4);
      parked[3].end('ok');
      expect((await rejoined.done).headers.connection).toBe('keep-alive');
    } finally {
      agent.destroy();
      server.closeAllConnections();
      server.close();
    }
  });

  it('counts and closes responses Express answers too (Express swaps every response\'s prototype)', async () => {
    const tracker = createResponseTracker();
    const parked: express.Response[] = [];
    const app = express();
    app.get('/json', (_req, res) => void res.json({ ok: true }));
    app.get('/parked', (_req, res) => void parked.push(res));
    const server = http.createServer({ ServerResponse: tracker.Response }, app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const agent = new http.Agent({ keepAlive: true });
    const get = (path: string) =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ port, host: '127.0.0.1', path, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res));
        }).on('error', reject);
      });
    try {
      for (let i = 0; i < 5; i++) expect((await get('/json')).headers.connection).toBe('keep-alive');
      await until('the answered responses to be closed', () => tracker.inFlight() === 0);
      const held = get('/parked');
      await until('a parked request', () => parked.length === 1);
      expect(tracker.inFlight()).toBe(1);
      tracker.closeConnections();
      parked[0].json({ late: true });
      expect((await held).headers.connection).toBe('close');
      expect((await get('/json')).headers.connection).toBe('close');
      await until('nothing in flight', () => tracker.inFlight() === 0);
    } finally {
      agent.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});
