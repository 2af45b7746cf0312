/**
 * The Docker image without Docker: build the esbuild bundle, copy exactly what the
 * runtime stage copies into an empty directory (no node_modules anywhere above it),
 * start it against a local registry, call /ready and /predict, run the Dockerfile's
 * HEALTHCHECK command, stop it with SIGTERM, and check it wrote nothing to disk.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundleApi } from '../build-bundle';
import { call, sampleRow, testRegistry, waitFor, type TestRegistry } from './fixtures';

async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) out.push(path.join(e.parentPath, e.name));
  return out.sort();
}

describe('bundle (what the Docker image holds)', () => {
  let work: string;
  let reg: TestRegistry;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'pricesense-image-'));
    reg = await testRegistry();
  });
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
    await reg.cleanup();
  });

  it('starts from an empty directory with only the bundle, serves, and stops cleanly on SIGTERM', async () => {
    const built = await bundleApi(path.join(work, 'build'));
    const app = path.join(work, 'image', 'app');
    await mkdir(app, { recursive: true });
    // The runtime stage: COPY --from=build /out/ /app/
    await cp(built.outDir, app, { recursive: true });
    expect((await readdir(app)).sort()).toEqual(['server.js', 'swagger-ui']);
    const version = (await reg.publish(1, { trees: 20, depth: 6 })).version;
    const before = [...(await listing(app)), ...(await listing(reg.registry.uri))];

    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    child = spawn(process.execPath, ['server.js'], {
      cwd: app,
      // The image's environment, and nothing from this checkout.
      // Event-loop shedding off: on a busy shared machine it could legitimately turn the checks below away (it has its own test).
      env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1', PRICESENSE_REGISTRY: reg.registry.uri, PRICESENSE_MAX_EVENT_LOOP_DELAY: '0', HOME: '/nonexistent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    child.stdout!.on('data', (c: Buffer) => {
      buffered += c.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
        buffered = buffered.slice(nl + 1);
      }
    });
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor('the listening log line', () => lines.some((l) => l.event === 'listening') || child!.exitCode !== null, 20_000);
    expect(stderr).toBe('');
    const port = Number(lines.find((l) => l.event === 'listening')!.port);

    await waitFor('readiness', async () => (await call(port, 'GET', '/ready')).status === 200, 20_000);
    const res = await call(port, 'POST', '/predict', sampleRow());
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).model.version).toBe(version);
    expect((await call(port, 'GET', '/docs/swagger-ui.css')).status).toBe(200);
    expect(JSON.parse((await call(port, 'GET', '/openapi.json')).body).info.version).toBe(JSON.parse(await readFile(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version);
    // Every line of stdout is a structured JSON log with a level and a time.
    expect(lines.every((l) => typeof l.level === 'string' && typeof l.time === 'string')).toBe(true);
    // Successful predictions are logged at debug only (counted in the traffic summary); client errors one by one.
    expect(lines.some((l) => l.msg === 'request' && l.route === '/predict' && l.status === 200)).toBe(false);
    expect((await call(port, 'POST', '/predict', { SPEND: 'lots' })).status).toBe(422);
    await waitFor('the 422 log line', () => lines.some((l) => l.msg === 'request' && l.route === '/predict' && l.status === 422 && typeof l.reqId === 'string'), 5_000);

    // The Dockerfile's HEALTHCHECK, run as written.
    const dockerfile = await readFile(path.join(__dirname, '..', '..', 'Dockerfile'), 'utf8');
    const cmd = /HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])/.exec(dockerfile);
    expect(cmd).not.toBeNull();
    const argv = JSON.parse(cmd![1]) as string[];
    expect(argv[0]).toBe('node');
    execFileSync(process.execPath, argv.slice(1), { env: { PORT: String(port) }, timeout: 10_000 });

    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines.some((l) => l.event === 'stopped' && l.drained === true)).toBe(true);
    // The traffic summary written on the way out counts what was answered.
    const traffic = lines.filter((l) => l.event === 'traffic');
    expect(traffic.reduce((n, l) => n + ((l.statuses as Record<string, number>)['422'] ?? 0), 0)).toBe(1);
    expect(traffic.reduce((n, l) => n + ((l.statuses as Record<string, number>)['200'] ?? 0), 0)).toBeGreaterThanOrEqual(2);
    // Nothing written next to the code or into the registry: a read-only root filesystem works.
    expect([...(await listing(app)), ...(await listing(reg.registry.uri))]).toEqual(before);
  });
});
