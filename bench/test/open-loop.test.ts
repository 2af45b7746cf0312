import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openLoop, percentiles } from '../open-loop';

/**
 * A loopback server that works on one request at a time, each for `serviceMs` (a timer,
 * not CPU), and answers `status(n)` to the n-th: a server with a known capacity of
 * 1000 / serviceMs requests per second.
 */
async function serialServer(serviceMs: number, status: (n: number) => number = () => 200): Promise<{ url: string; close(): Promise<void> }> {
  let busyUntil = 0;
  let n = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const code = status(n++);
      const start = Math.max(performance.now(), busyUntil);
      busyUntil = start + serviceMs;
      setTimeout(() => res.writeHead(code, { 'content-type': 'text/plain', 'content-length': '1' }).end('x'), busyUntil - performance.now());
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const median = (xs: number[]) => percentiles(xs).p50;

describe('openLoop', () => {
  it('keeps to its schedule against a server slower than the arrival rate: latency from the due time grows through the run', async () => {
    // Capacity 50/s (20 ms each, one at a time), offered 100/s for 1.5 s: the backlog, and so each request's
    // wait, grows by about the time elapsed (the k-th request, due at 10k ms, is sent at ~20k ms). A slower
    // machine only makes the server slower and the growth steeper.
    const server = await serialServer(20);
    try {
      const r = await openLoop({ url: server.url, method: 'POST', body: '{}', rate: 100, seconds: 1.5, maxConnections: 4, drainSeconds: 10, keepSamples: true });
      const samples = r.samples!;

      // Open loop: every due request is accounted for, whether it was sent or not.
      expect(r.scheduled).toBe(150);
      expect(samples).toHaveLength(150);
      expect(r.ok + r.shed + r.otherStatus + r.errors + r.unfinished + r.neverSent).toBe(150);
      // Evenly spaced due times, 10 ms apart, independent of the answers.
      const dues = samples.map((s) => s.due).sort((a, b) => a - b);
      for (let i = 1; i < dues.length; i++) expect(dues[i] - dues[i - 1]).toBeCloseTo(10, 6);

      // Four connections, each held ~20 ms × 4 by the serial server: most requests had to wait for one,
      // and that wait is counted; the pool never exceeded its bound.
      expect(r.peakInFlight).toBeLessThanOrEqual(4);
      expect(r.connectionsOpened).toBeLessThanOrEqual(4);
      expect(r.waitedForConnection).toBeGreaterThan(50);

      // Four connections answered at 50/s between them: about half the schedule (the earliest due) got one
      // before the window closed, the rest was never sent. Among the answered, the latency from the due time
      // grows with the due time — each waited for all the backlog before it: the median of each third (by due
      // time) above the one before, the last third's over 0.25 s above the first's (~0.5 s expected).
      const answered = samples.filter((s) => s.status === 200).sort((a, b) => a.due - b.due);
      expect(answered.length + r.neverSent).toBe(150);
      const size = Math.floor(answered.length / 3);
      const thirds = [0, 1, 2].map((k) => answered.slice(k * size, (k + 1) * size));
      expect(size).toBeGreaterThan(5);
      const medians = thirds.map((t) => median(t.map((s) => s.latency)));
      expect(medians[1]).toBeGreaterThan(medians[0]);
      expect(medians[2]).toBeGreaterThan(medians[1]);
      expect(medians[2] - medians[0]).toBeGreaterThan(250);

      // What a closed-loop generator would have measured — from the moment a request got a connection — does
      // not grow: it stays bounded by the connections in flight, so the late requests' latency from their due
      // time is several times their latency from their send.
      const late = thirds[2];
      expect(median(late.map((s) => s.latency))).toBeGreaterThan(3 * median(late.map((s) => s.latency - (s.sent! - s.due))));
      expect(r.okLatencyMs.p99).toBeGreaterThan(3 * r.okFromSendMs.p50);
    } finally {
      await server.close();
    }
  });

  it('counts answers by status, and what the window could not send', async () => {
    // Every third request answered 503; 100/s for 1 s into a server that can do 50/s on 2 connections: some
    // requests are still waiting for a connection when the window closes and are never sent.
    const server = await serialServer(20, (n) => (n % 3 === 2 ? 503 : 200));
    try {
      const r = await openLoop({ url: server.url, method: 'POST', body: '{}', rate: 100, seconds: 1, maxConnections: 2, drainSeconds: 10 });
      expect(r.scheduled).toBe(100);
      expect(r.samples).toBeUndefined();
      expect(r.errors + r.otherStatus + r.unfinished).toBe(0);
      expect(r.neverSent).toBeGreaterThan(0);
      expect(r.sent + r.neverSent).toBe(100);
      expect(r.ok + r.shed).toBe(r.sent);
      expect(r.shed).toBe(Math.floor(r.sent / 3));
      // Rates count answers inside the window only, so they cannot exceed what was sent.
      expect(r.okPerSec + r.shedPerSec).toBeLessThanOrEqual(r.sentPerSec);
      expect(r.allLatencyMs.count).toBe(100);
      expect(r.okLatencyMs.count).toBe(r.ok);
    } finally {
      await server.close();
    }
  });

  it('opens the whole pool before the schedule when asked to, and then opens no more', async () => {
    const server = await serialServer(1);
    try {
      const r = await openLoop({ url: server.url, rate: 20, seconds: 0.25, maxConnections: 3, preconnect: true });
      expect(r.connectionsOpened).toBe(3);
      expect(r.ok).toBe(5);
    } finally {
      await server.close();
    }
  });

  it('with warmUp, answers one request on each connection before the schedule and counts none of them', async () => {
    let seen = 0;
    const server = await serialServer(1, () => (seen++ < 3 ? 503 : 200));
    try {
      const r = await openLoop({ url: server.url, rate: 20, seconds: 0.25, maxConnections: 3, preconnect: true, warmUp: true });
      // The server answered 3 + 5 requests; the three warm-ups (all 503 here) are not in the figures.
      expect(seen).toBe(8);
      expect(r).toMatchObject({ connectionsOpened: 3, sent: 5, ok: 5, shed: 0, errors: 0 });
      expect(r.allLatencyMs.count).toBe(5);
    } finally {
      await server.close();
    }
  });

  it('counts refused connections and answers it cannot frame as errors, by kind, and refuses nonsense options', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const refused = await openLoop({ url: `http://127.0.0.1:${port}/`, rate: 50, seconds: 0.2, maxConnections: 8 });
    expect(refused.scheduled).toBe(10);
    expect(refused.errors).toBe(10);
    expect(refused.errorKinds).toEqual({ ECONNREFUSED: 10 });
    expect(refused.ok + refused.shed + refused.otherStatus).toBe(0);

    // A chunked answer (two writes, no Content-Length): the generator reads answers by their length only.
    const chunked = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('a');
        res.end('b');
      });
    });
    await new Promise<void>((resolve) => chunked.listen(0, '127.0.0.1', resolve));
    try {
      const r = await openLoop({ url: `http://127.0.0.1:${(chunked.address() as AddressInfo).port}/`, rate: 50, seconds: 0.2, maxConnections: 8 });
      expect(r.errorKinds).toEqual({ 'answer without Content-Length': 10 });
      expect(r.ok).toBe(0);
    } finally {
      chunked.closeAllConnections();
      await new Promise((resolve) => chunked.close(resolve));
    }
    await expect(openLoop({ url: 'http://127.0.0.1:1/', rate: 0, seconds: 1, maxConnections: 1 })).rejects.toThrow(/rate, seconds and maxConnections must be positive/);
    await expect(openLoop({ url: 'http://127.0.0.1:1/', rate: 1, seconds: 1, maxConnections: 1, warmUp: true })).rejects.toThrow('openLoop: warmUp warms the preconnected pool; it needs preconnect');
    await expect(openLoop({ url: `http://127.0.0.1:${port}/`, rate: 1, seconds: 1, maxConnections: 2, preconnect: true })).rejects.toThrow(/could not open 2 connections to 127\.0\.0\.1:\d+ before the schedule: ECONNREFUSED/);
    await expect(openLoop({ url: 'https://127.0.0.1:1/', rate: 1, seconds: 1, maxConnections: 1 })).rejects.toThrow(/only http: URLs/);
  });
});

describe('percentiles', () => {
  it('takes the nearest rank', () => {
    const p = percentiles(Array.from({ length: 1000 }, (_, i) => 1000 - i));
    expect(p).toEqual({ count: 1000, p50: 500, p90: 900, p99: 990, p999: 999, max: 1000 });
    expect(percentiles([])).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
  });
});
