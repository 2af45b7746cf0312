import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { legacyTrail, writeFixtureForest, writeLegacyLocalVersion } from '../../model/test/registry-fixtures';
import type { ModelVersion } from '../../model/registry';
import { main } from '../index';

let dir: string;
let reg: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-cli-registry-'));
  reg = path.join(dir, 'registry');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI in-process, as bin/pricesense.js does, capturing output and exit code. */
async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  process.exitCode = 0;
  try {
    await main(['node', 'pricesense', 'registry', ...args, '--registry', reg]);
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, out, err };
}

describe('pricesense registry', () => {
  it('register -> approve -> list -> show -> reject (rollback), end to end', async () => {
    const m1 = await writeFixtureForest(dir, 'm1.json', { seed: 1, gatesPassed: true, accuracy: 0.81 });
    const m2 = await writeFixtureForest(dir, 'm2.json', { seed: 2, gatesPassed: true, accuracy: 0.84 });

    const r1 = await run('register', '--model', m1, '--note', 'baseline', '--by', 'alice');
    expect(r1).toMatchObject({ code: 0, err: '' });
    expect(r1.out).toContain('registered version 1');
    expect(r1.out).toContain('pricesense registry approve 1 --note');
    expect((await run('register', '--model', m2, '--by', 'alice')).out).toContain('registered version 2');

    const a1 = await run('approve', '1', '--note', 'baseline ok', '--by', 'bob');
    expect(a1.out).toContain('version 1: PendingManualApproval -> Approved (by bob)');
    expect(a1.out).toContain('served model: nothing (no Approved version) -> version 1');
    expect((await run('approve', '2', '--note', 'better', '--by', 'bob')).out).toContain('served model: version 1 -> version 2');

    const list = await run('list');
    expect(list.out.split('\n')[0]).toMatch(/^VERSION\s+STATUS\s+REGISTERED \(UTC\)\s+BY\s+ACCURACY\s+MACRO_F1\s+GATES\s+FOREST$/);
    expect(list.out).toMatch(/\n1\s+Approved\s+.*alice\s+0\.8100\s+0\.7500\s+passed/);
    expect(list.out).toMatch(/\n2\*\s+Approved\s+.*0\.8400/);

    const json = JSON.parse((await run('list', '--status', 'approved', '--json')).out) as ModelVersion[];
    expect(json.map((v) => v.version)).toEqual([1, 2]);

    const rollback = await run('reject', '2', '--note', 'drift alarm', '--by', 'carol');
    expect(rollback.out).toContain('version 2: Approved -> Rejected (by carol)');
    expect(rollback.out).toContain('served model: version 2 -> version 1');

    const show = await run('show', '2');
    expect(show.out).toMatch(/^version 2 {2}Rejected\n/);
    expect(show.out).toContain('carol  Approved -> Rejected  "drift alarm"');
    expect(JSON.parse((await run('show', 'latest', '--json')).out)).toMatchObject({ version: 1, status: 'Approved' });

    const cmp = await run('compare', '1', '2');
    expect(cmp.out).toMatch(/accuracy\s+0\.8100\s+0\.8400\s+\+0\.0300/);
    expect(cmp.out).toMatch(/hp\.seed\s+1\s+2\s+differs/);

    const out = path.join(dir, 'served.json');
    expect((await run('fetch', 'latest', '--out', out)).code).toBe(0);
    expect(await readFile(out)).toEqual(await readFile(m1));
  });

  it('refuses a model whose gates failed unless --force, and records the force', async () => {
    const bad = await writeFixtureForest(dir, 'bad.json', { seed: 7, gatesPassed: false });
    const refused = await run('register', '--model', bad);
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/^pricesense: refusing to register .*bad\.json': quality gate failed on test: accuracy 0\.80+ < required 0\.90+ \(short by 0\.10+\)\. .*--force/);
    expect(refused.out).toBe('');

    const forced = await run('register', '--model', bad, '--force', '--note', 'demo only');
    expect(forced.code).toBe(0);
    expect(forced.out).toContain('WARNING: forced registration despite failed gates (quality gate failed on test: accuracy');
    expect((await run('list')).out).toMatch(/\n1\s+PendingManualApproval\s+.*FAILED\(forced\)/);
    const v = JSON.parse((await run('show', '1', '--json')).out) as ModelVersion;
    expect(v.lineage.forced).toBe(true);
    expect(v.audit[0].note).toMatch(/^demo only \| FORCED registration/);
  });

  it('verify checks every version and exits 5 (integrity) when a trail or an artifact was tampered with', async () => {
    await run('register', '--model', await writeFixtureForest(dir, 'm1.json', { seed: 1, gatesPassed: true }));
    await run('register', '--model', await writeFixtureForest(dir, 'm2.json', { seed: 2, gatesPassed: true }));
    await run('approve', '2', '--note', 'ok');
    await run('reject', '2', '--note', 'rolled back');
    const clean = await run('verify');
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/^VERSION\s+STATUS\s+RESULT\n1\s+PendingManualApproval\s+ok\n2\s+Rejected\s+ok\n.*all 2 version\(s\) verified/);

    // Delete the rejection: without the chain this would re-approve version 2.
    await rm(path.join(reg, 'versions', '000002', 'audit', '000003.json'));
    const tampered = await run('verify');
    expect(tampered.code).toBe(5);
    expect(tampered.out).toMatch(/\n2\s+\?\s+FAILED\n/);
    expect(tampered.out).toMatch(/version 2: FAILED: .*HEAD\.json names entry 3 but the trail ends at entry 2: the last entry was deleted/);
    expect(tampered.out).toMatch(/1 of 2 version\(s\) FAILED verification; they are not served/);
    expect(JSON.parse((await run('verify', '--json')).out)).toMatchObject({ ok: false, versions: [{ version: 1, problems: [] }, { version: 2 }] });
    const show = await run('show', '2');
    expect(show).toMatchObject({ code: 5, err: expect.stringMatching(/^pricesense: version 2: audit trail does not verify: .* run `pricesense registry verify`/) });
  });

  it('approves a gate-failed or unevaluated version only with --override-gates --reason, recorded as a gate override', async () => {
    await run('register', '--model', await writeFixtureForest(dir, 'bad.json', { seed: 1, gatesPassed: false }), '--force');
    await run('register', '--model', await writeFixtureForest(dir, 'plain.json', { seed: 2 }));
    const refused = await run('approve', '1', '--note', 'x', '--by', 'anyone');
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/^pricesense: version 1 failed its quality gates \(quality gate failed on test: accuracy .*\): approving it needs --override-gates --reason "<why>"/);
    expect((await run('approve', '2', '--note', 'x')).err).toMatch(/^pricesense: version 2 has no quality gate results \(it was never evaluated\): approving it needs --override-gates/);
    expect((await run('approve', '1', '--note', 'x', '--override-gates')).err).toBe('pricesense: --override-gates needs --reason "<why the gates may be overridden>"\n');
    expect((await run('approve', '1', '--note', 'x', '--reason', 'r')).err).toBe('pricesense: --reason goes with --override-gates\n');
    const ok = await run('approve', '1', '--note', 'pilot', '--override-gates', '--reason', 'pricing pilot needs it', '--by', 'carol');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/GATE OVERRIDE recorded: quality gate failed on test: accuracy .*; reason: pricing pilot needs it/);
    expect((await run('approve', '2', '--note', 'imported', '--override-gates', '--reason', 'evaluated offline')).code).toBe(0);
    const shown = JSON.parse((await run('show', '2', '--json')).out) as ModelVersion;
    expect(shown.audit.at(-1)!.override).toEqual({ reason: 'evaluated offline', gates: 'not evaluated: no quality gate results recorded' });
    expect((await run('show', '1')).out).toContain('GATE OVERRIDE (quality gate failed on test: accuracy');
  });

  it('gives clear errors for bad input', async () => {
    expect(await run('approve', 'x', '--note', 'n')).toMatchObject({ code: 2, err: "pricesense: invalid version 'x': expected a positive integer\n" });
    expect((await run('approve', '3', '--note', 'n')).err).toMatch(/version 3 not found in registry .* \(it has no versions yet\)/);
    expect((await run('approve', '3', '--note', '  ')).err).toBe('pricesense: approve needs a non-empty --note saying why\n');
    expect((await run('list', '--status', 'live')).err).toMatch(/unknown status 'live': expected one of PendingManualApproval, Approved, Rejected/);
    expect((await run('show', 'latest')).err).toMatch(/no Approved version in .*: nothing is servable yet/);
    expect((await run('list')).out).toMatch(/^no versions in /);
  });

  it('a registry written before the audit chain: commands say to run `registry migrate`; migrate seals it (exit 0), a rerun changes nothing', async () => {
    await writeLegacyLocalVersion(reg, 1, await writeFixtureForest(dir, 'old.json', { seed: 1, gatesPassed: true }), legacyTrail('2026-06-01T09:00:00.000Z', 'olga', 'Approved'));
    const list = await run('list');
    expect(list.code).toBe(5);
    expect(list.err).toBe(
      `pricesense: version 1: registry not migrated: its 2 audit entries were written by an earlier pricesense, before the audit trail was hash-chained, and not yet sealed: run \`pricesense registry migrate --registry ${reg}\` once (it adds a genesis entry sealing that history; nothing is rewritten). Until then the version is not served and cannot be changed.\n`,
    );
    const migrated = await run('migrate', '--by', 'ops');
    expect(migrated).toMatchObject({ code: 0, err: '' });
    expect(migrated.out).toMatch(/^VERSION\s+RESULT\s+SEALED ENTRIES\n1\s+sealed\s+2\n/);
    expect(migrated.out).toContain(`${reg}: 1 version(s) sealed into the audit chain, 0 already chained`);
    expect((await run('list')).out).toMatch(/\n1\*\s+Approved\s+/);
    const shown = (await run('show', '1')).out;
    expect(shown).toMatch(/ops {2}Approved -> Approved {2}"audit chain started by pricesense registry migrate: the 2 entries before this one/);
    // The old entries are marked as the registry marked them; the genesis entry is an ordinary linked one.
    expect(shown.split('\n').filter((l) => l.includes('[sealed: written before the chain]'))).toHaveLength(2);
    expect(shown).not.toMatch(/ops .*\[/);
    expect((await run('migrate')).out).toMatch(/\n1\s+already chained\s+2\n/);
    expect((await run('verify')).code).toBe(0);
  });

  it('a registry chained before its marker existed, with unmigrated versions: an emergency reject goes ahead (exit 0) and warns on stderr naming `registry migrate`', async () => {
    await writeLegacyLocalVersion(reg, 1, await writeFixtureForest(dir, 'old.json', { seed: 1, gatesPassed: true }), legacyTrail('2026-06-01T09:00:00.000Z', 'olga', 'Approved'));
    // Version 2 as the chain-aware release that wrote no marker left it (chained, approved and served).
    expect((await run('register', '--model', await writeFixtureForest(dir, 'new.json', { seed: 2, gatesPassed: true }))).code).toBe(0);
    await rm(path.join(reg, 'CHAIN.json'));
    const approved = await run('approve', '2', '--note', 'ship');
    expect(approved.code).toBe(0);
    const rejected = await run('reject', '2', '--note', 'emergency: bad prices');
    expect(rejected.code).toBe(0);
    expect(rejected.out).toMatch(/^version 2: Approved -> Rejected/);
    expect(rejected.err).toMatch(/^WARNING: the registry's chain marker was not created, .* until `pricesense registry migrate` is run once; this change was made and recorded in the hash chain\. .*`pricesense registry migrate --registry .* --accept-unchained 1`\n$/);
  });
});
