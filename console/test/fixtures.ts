/**
 * A registry with several real versions for the console's tests: a small synthetic
 * lake through the real ETL, forests grown by the project's trainer and evaluated with
 * gates (so metrics, confusion matrices and calibration are real), registered and moved
 * through the approval workflow:
 *
 *   v1  Approved  (the served one)    v3  Pending, gates FAILED, registered with --force
 *   v2  Pending, gates passed         v4  Rejected
 */
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalLake } from '../../etl/lake/local';
import { runEtl } from '../../etl/pipeline';
import { synthesize } from '../../etl/synth/generate';
import { writeForestFile } from '../../model/forest-file';
import { resolveGateConfig } from '../../model/gates';
import { LocalRegistry } from '../../model/registry';
import { runTraining } from '../../model/training-run';
import { AUTH_FORMAT, hashToken, newToken, type Role } from '../auth-config';

/** Floors the small synthetic data set clears comfortably; the "weak" model is held to stricter ones so it fails. */
const LENIENT = resolveGateConfig({ minAccuracy: 0.6, minMacroF1: 0.5, minClassPrecision: 0.4 });
const STRICT = resolveGateConfig({ minAccuracy: 0.95, minMacroF1: 0.9, minClassPrecision: 0.9 });

export interface ConsoleFixture {
  readonly lakeDir: string;
  readonly registryDir: string;
  readonly registry: LocalRegistry;
}

/** The sources a fixture is built from: when any changes, the cached one is stale. */
async function sourceDigest(): Promise<string> {
  const root = path.resolve(__dirname, '../..');
  const h = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'test') await walk(p);
      } else if (e.name.endsWith('.ts')) h.update(path.relative(root, p)).update('\0').update(await readFile(p)).update('\0');
    }
  };
  for (const d of ['etl', 'model']) await walk(path.join(root, d));
  h.update(await readFile(__filename));
  return h.digest('hex').slice(0, 16);
}

/**
 * The fixture in `dir`, copied from one built once per source state and kept in the OS
 * temp directory: the suites that need it (HTTP, browser) each used to run the ETL and
 * train four forests. Built under a scratch name and renamed into place, so suites
 * running at once never see half a fixture (the second rename loses and is discarded).
 */
export async function consoleFixture(dir: string): Promise<ConsoleFixture> {
  const cached = path.join(os.tmpdir(), `pricesense-console-fixture-${await sourceDigest()}`);
  const ready = await readFile(path.join(cached, 'READY')).then(
    () => true,
    () => false,
  );
  if (!ready) {
    const scratch = `${cached}.${process.pid}-${randomBytes(4).toString('hex')}`;
    await buildConsoleFixture(scratch);
    await writeFile(path.join(scratch, 'READY'), '');
    await rename(scratch, cached).catch(() => rm(scratch, { recursive: true, force: true }));
  }
  await cp(path.join(cached, 'lake'), path.join(dir, 'lake'), { recursive: true });
  await cp(path.join(cached, 'registry'), path.join(dir, 'registry'), { recursive: true });
  return { lakeDir: path.join(dir, 'lake'), registryDir: path.join(dir, 'registry'), registry: new LocalRegistry(path.join(dir, 'registry')) };
}

export async function buildConsoleFixture(dir: string): Promise<ConsoleFixture> {
  const lakeDir = path.join(dir, 'lake');
  const registryDir = path.join(dir, 'registry');
  const lake = new LocalLake(lakeDir);
  await synthesize(lake, { baskets: 3000, weeks: 2, seed: 11 });
  await runEtl(lake, { threads: 1 });
  const registry = new LocalRegistry(registryDir);
  const models = [
    { name: 'v1', trees: 6, maxDepth: 4, seed: 1, gates: LENIENT, note: 'weekly retrain 2024-W18' },
    { name: 'v2', trees: 24, maxDepth: 12, seed: 2, gates: LENIENT, note: 'weekly retrain 2024-W19, deeper trees' },
    { name: 'v3', trees: 3, maxDepth: 2, seed: 3, gates: STRICT, note: 'stump experiment' },
    { name: 'v4', trees: 8, maxDepth: 6, seed: 4, gates: LENIENT, note: 'retrain with fewer trees' },
  ];
  for (const m of models) {
    const run = await runTraining(lake, { trees: m.trees, maxDepth: m.maxDepth, seed: m.seed, threads: 1, gates: m.gates, progress: false });
    const file = path.join(dir, `${m.name}.json`);
    await writeForestFile(file, run.forest);
    await registry.register(file, { by: 'trainer-bot', note: m.note, force: !run.gates.passed });
  }
  await registry.approve(1, 'gates passed; reviewed with pricing', 'alice@example.com');
  await registry.reject(4, 'fewer trees, no gain over v1', 'alice@example.com');
  return { lakeDir, registryDir, registry };
}

export interface FixtureTokens {
  readonly file: string;
  readonly approver: string;
  readonly viewer: string;
}

/** An access file with one approver and one viewer token. */
export async function writeAuthFile(dir: string, extra: Record<string, unknown> = {}): Promise<FixtureTokens> {
  const file = path.join(dir, 'console-auth.json');
  const approver = newToken();
  const viewer = newToken();
  const entry = (identity: string, role: Role, token: string) => ({ identity, role, sha256: hashToken(token) });
  await mkdir(dir, { recursive: true });
  await writeFile(
    file,
    JSON.stringify({ format: AUTH_FORMAT, tokens: [entry('approver@example.com', 'approver', approver), entry('viewer@example.com', 'viewer', viewer)], ...extra }),
  );
  return { file, approver, viewer };
}
