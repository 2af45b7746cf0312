/**
 * The peer of `npm run bench:api`: the least any Node HTTP service can do per request on
 * this machine. node:http with the same number of cluster workers as the API, reading
 * the same request body and JSON.parse-ing it, answering a constant JSON body of the
 * API's response size with the API's response headers (so both put the same bytes on
 * the wire). Environment: PORT, HOST, WORKERS, BARE_BODY (the response), BARE_HEADERS
 * (JSON [name, value] pairs, as one /predict answer of the API carried them; empty: a
 * Content-Type only, the plain answer earlier figures were measured against).
 *
 * With BARE_FOREST (a forest file) it also scores the parsed body, a single raw row,
 * with the compiled walker (model/walker.ts) before answering the same constant: the
 * least any Node service can do per request to serve that forest with this walker —
 * the ceiling the scoring itself leaves for the API.
 *
 * With BARE_REJECT=1 it answers every request with a 503 of the given body and headers
 * without reading the request body (Node discards it), as the API's shed path does: the
 * cheapest refusal any Node service can make here, which bounds what load shedding can do.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import { readForestFile } from '../model/forest-file';
import { CompiledForest } from '../model/walker';

const workers = Number(process.env.WORKERS ?? 1);
const reject = process.env.BARE_REJECT === '1';
const body = Buffer.from(process.env.BARE_BODY ?? '{}');
const given = JSON.parse(process.env.BARE_HEADERS ?? '[]') as [string, string][];
// writeHead's flat array form: [name, value, name, value, ...], one write of the header block as the API's fast path does.
const headers = [...(given.length > 0 ? given : [['Content-Type', 'application/json; charset=utf-8']]), ['Content-Length', String(body.length)]].flat();

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.once('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const file = process.env.BARE_FOREST;
  if (file) void readForestFile(file).then((doc) => serve(CompiledForest.compile(doc)));
  else serve(undefined);
}

function serve(forest: CompiledForest | undefined): void {
  const server = http.createServer((req, res) => {
    if (reject) {
      res.writeHead(503, headers);
      res.end(body);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const row = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      forest?.predict(row);
      res.writeHead(200, headers);
      res.end(body);
    });
  });
  // The API's keep-alive settings, so connection reuse is the same.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1', () => {
    process.stdout.write('listening\n');
  });
  process.once('SIGTERM', () => process.exit(0));
}
