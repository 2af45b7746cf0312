import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, mkdir, readdir, readFile, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/errors';
import { MAX_AUDIT_ENTRY_BYTES, MAX_RECORD_BYTES, MAX_TRAIL_BYTES, sha256Hex } from '../registry/common';
import { AuditChainError, ChecksumMismatchError, ConcurrentChangeError, GateOverrideRequiredError, LocalRegistry, openRegistry, UnmigratedVersionError, type ModelVersion, type Registry } from '../registry';
import { notPermitted } from '../registry/local';
import { legacyTrail, writeFixtureForest, writeLegacyLocalVersion } from './registry-fixtures';

let dir: string;
let root: string;
let registry: Registry;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-registry-'));
  root = path.join(dir, 'registry');
  registry = new LocalRegistry(root);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Versions 1 and 2 registered and approved; version 2's directory, its audit directory and its entries (without HEAD.json), sorted. */
async function twoApprovedVersions(): Promise<{ v2: string; audit2: string; entries: string[] }> {
  await registerSeeds(1, 2);
  await registry.approve(1, 'ok');
  await registry.approve(2, 'better');
  const v2 = path.join(root, 'versions', '000002');
  const audit2 = path.join(v2, 'audit');
  return { v2, audit2, entries: (await readdir(audit2)).filter((n) => n !== 'HEAD.json').sort() };
}

async function registerSeeds(...seeds: number[]): Promise<void> {
  for (const seed of seeds) {
    await registry.register(await writeFixtureForest(dir, `f${seed}.json`, { seed, gatesPassed: true }), { by: 'trainer' });
  }
}

describe('local registry: register', () => {
  it('creates version 1 in PendingManualApproval with digests, metrics, lineage and a registration audit entry', async () => {
    const file = await writeFixtureForest(dir, 'model.json', { seed: 3, gatesPassed: true });
    const bytes = await readFile(file);
    const v = await registry.register(file, { by: 'alice', note: 'first forest' });
    const forest = JSON.parse(bytes.toString('utf8')) as { sha256: string };

    expect(v.version).toBe(1);
    expect(v.status).toBe('PendingManualApproval');
    expect(v.forestSha256).toBe(forest.sha256);
    expect(v.artifactSha256).toBe(sha256Hex(bytes));
    expect(v.formatVersion).toBe(1);
    expect(v.metrics).toMatchObject({ accuracy: 0.8, gates: { passed: true } });
    expect(v.lineage).toMatchObject({
      datasetManifestSha256: 'a'.repeat(64),
      codeVersion: 'fixture-commit',
      hyperparameters: { trees: 1, maxDepth: 3, seed: 3 },
      registeredBy: 'alice',
      forced: false,
    });
    expect(Date.parse(v.lineage.registeredAt)).not.toBeNaN();
    expect(v.audit).toEqual([{ at: v.lineage.registeredAt, by: 'alice', from: null, to: 'PendingManualApproval', note: 'first forest' }]);
    expect(await readFile(v.artifactUri)).toEqual(bytes);
    expect(await registry.fetch(1)).toEqual(bytes);
  });

  it('numbers versions consecutively and lists them in order, with a status filter', async () => {
    await registerSeeds(1, 2, 3);
    await registry.approve(2, 'good');
    await registry.reject(3, 'bad');
    expect((await registry.list()).map((v) => [v.version, v.status])).toEqual([
      [1, 'PendingManualApproval'],
      [2, 'Approved'],
      [3, 'Rejected'],
    ]);
    expect((await registry.list({ status: 'Approved' })).map((v) => v.version)).toEqual([2]);
    expect((await registry.list({ status: 'PendingManualApproval' })).map((v) => v.version)).toEqual([1]);
  });

  it('refuses a forest whose gates failed, and registers it with force, recording that in lineage and audit', async () => {
    const file = await writeFixtureForest(dir, 'failed.json', { seed: 9, gatesPassed: false });
    await expect(registry.register(file)).rejects.toThrow(/refusing to register .*failed\.json': quality gate failed on test: accuracy 0\.80+ < required 0\.90+ \(short by 0\.10+\)\. .*--force/);
    expect(await registry.list()).toEqual([]);

    const v = await registry.register(file, { force: true, note: 'needed for a demo', by: 'bob' });
    expect(v.lineage.forced).toBe(true);
    expect(v.audit[0].note).toMatch(/^needed for a demo \| FORCED registration despite failed gates \(quality gate failed on test: accuracy/);
  });

  it('refuses an invalid forest file with the forest validator\'s error and leaves nothing behind', async () => {
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '{"format":"pricesense.forest"}');
    await expect(registry.register(bad)).rejects.toThrow(/bad\.json: invalid forest file/);
    await expect(registry.register(path.join(dir, 'missing.json'))).rejects.toThrow(/cannot read model file .*missing\.json.*no such file/);
    expect(await registry.list()).toEqual([]);
    expect(await readdir(path.join(root, '.staging')).catch(() => [])).toEqual([]);
  });

  it('never lists a half-written version (a staging folder left by a crash)', async () => {
    await registerSeeds(1);
    const crashed = path.join(root, '.staging', 'v-crashed');
    await mkdir(crashed, { recursive: true });
    await writeFile(path.join(crashed, 'forest.json'), '{"trunc');
    expect((await registry.list()).map((v) => v.version)).toEqual([1]);
    await registerSeeds(2);
    expect((await registry.list()).map((v) => v.version)).toEqual([1, 2]);
  });
});

describe('local registry: status machine', () => {
  beforeEach(() => registerSeeds(1));

  it('allows Pending -> Approved -> Rejected -> Approved (rollback and back)', async () => {
    expect((await registry.approve(1, 'ok')).status).toBe('Approved');
    expect((await registry.reject(1, 'regression in prod')).status).toBe('Rejected');
    expect((await registry.approve(1, 'false alarm')).status).toBe('Approved');
  });

  it('allows Pending -> Rejected', async () => {
    expect((await registry.reject(1, 'no')).status).toBe('Rejected');
  });

  it('refuses a move to the current status, with a clear error', async () => {
    await registry.approve(1, 'ok');
    await expect(registry.approve(1, 'again')).rejects.toThrow(new UserError('version 1 is already Approved: nothing to change'));
    await registry.reject(1, 'no');
    await expect(registry.reject(1, 'again')).rejects.toThrow('version 1 is already Rejected');
  });

  it('names a version that does not exist, and rejects malformed numbers', async () => {
    await expect(registry.approve(7, 'x')).rejects.toThrow(/version 7 not found in registry .* \(it has versions 1\.\.1\)/);
    await expect(registry.show(0)).rejects.toThrow(/invalid model version '0'/);
    await expect(registry.fetch(1.5)).rejects.toThrow(/invalid model version '1.5'/);
    await expect(new LocalRegistry(path.join(dir, 'empty')).show(1)).rejects.toThrow(/it has no versions yet/);
  });

  it('serialises concurrent changes on one version: exactly one of ten simultaneous approvals wins', async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => registry.approve(1, `attempt ${i}`, `user${i}`)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(9);
    // Decided on Pending and beaten to it (a race), or decided after the winner landed (already Approved).
    for (const r of lost) expect(String(r.reason)).toMatch(/version 1 changed while this change was being made: it was PendingManualApproval, it is now Approved|version 1 is already Approved/);
    const v = await registry.show(1);
    expect(v.audit.map((e) => [e.from, e.to])).toEqual([
      [null, 'PendingManualApproval'],
      ['PendingManualApproval', 'Approved'],
    ]);
  });

  it('makes a change conditional on the status it was decided on: of a concurrent approve and reject, one lands and the other is refused as a race', async () => {
    const results = await Promise.allSettled([registry.approve(1, 'yes', 'ann'), registry.reject(1, 'no', 'rob')]);
    const won = results.filter((r): r is PromiseFulfilledResult<ModelVersion> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(ConcurrentChangeError);
    expect(String(lost[0].reason)).toMatch(/version 1 changed while this change was being made: it was PendingManualApproval, it is now (Approved|Rejected) \(by (ann|rob) at .*\); nothing was changed — re-run if the change is still wanted/);
    const v = await registry.show(1);
    expect(v.audit.map((e) => [e.from, e.to])).toEqual([
      [null, 'PendingManualApproval'],
      ['PendingManualApproval', won[0].value.status],
    ]);
  });
});

describe('local registry: expected status and gate overrides', () => {
  it('applies a change only in the status the caller decided on', async () => {
    await registerSeeds(1);
    await registry.reject(1, 'no', 'rob');
    // Decided on a page that still showed Pending: Rejected -> Approved is allowed, but not what was decided.
    const stale = registry.approve(1, 'yes', 'ann', { expected: 'PendingManualApproval' });
    await expect(stale).rejects.toBeInstanceOf(ConcurrentChangeError);
    await expect(stale).rejects.toThrow(/version 1 changed while this change was being made: it was PendingManualApproval, it is now Rejected \(by rob at .*\); nothing was changed/);
    expect((await registry.show(1)).audit).toHaveLength(2);
    expect((await registry.approve(1, 'yes after all', 'ann', { expected: 'Rejected' })).status).toBe('Approved');
  });

  it('approves a version whose gates failed only with an override and a reason, recorded as a field of the audit entry in the chain', async () => {
    await registry.register(await writeFixtureForest(dir, 'failed.json', { seed: 9, gatesPassed: false }), { by: 'trainer', force: true });
    await expect(registry.approve(1, 'ship it', 'ann')).rejects.toThrow(GateOverrideRequiredError);
    await expect(registry.approve(1, 'ship it', 'ann')).rejects.toThrow(/^version 1 failed its quality gates \(quality gate failed on test: accuracy.*\): approving it needs an explicit gate override with a reason/);
    await expect(registry.approve(1, 'ship it', 'ann', { overrideGates: { reason: '  ' } })).rejects.toThrow('a gate override needs a reason');
    await expect(registry.reject(1, 'no', 'ann', { overrideGates: { reason: 'x' } })).rejects.toThrow('a gate override applies to approvals only');
    expect((await registry.show(1)).status).toBe('PendingManualApproval');
    const v = await registry.approve(1, 'ship it', 'ann', { overrideGates: { reason: 'pilot needs it' } });
    const last = v.audit.at(-1)!;
    expect(last).toMatchObject({ by: 'ann', to: 'Approved', note: 'ship it', override: { reason: 'pilot needs it' } });
    expect(last.override!.gates).toMatch(/^quality gate failed on test: accuracy/);
    const stored = JSON.parse(await readFile(path.join(root, 'versions', '000001', 'audit', '000002.json'), 'utf8'));
    expect(stored.override).toEqual(last.override);
    // The override is part of the hashed entry: editing it breaks the chain.
    const file = path.join(root, 'versions', '000001', 'audit', '000002.json');
    await writeFile(file, JSON.stringify({ ...stored, override: { ...stored.override, reason: 'edited' } }) + '\n');
    await expect(new LocalRegistry(root).show(1)).rejects.toThrow(AuditChainError);
  });

  it('records an acknowledged approval of an unevaluated version; refuses an override of gates that passed; plain entries stay as they were', async () => {
    await registry.register(await writeFixtureForest(dir, 'plain.json', { seed: 2 }), { by: 'trainer' });
    await registerSeeds(3);
    const v1 = await registry.approve(1, 'imported model', 'ann', { overrideGates: { reason: 'evaluated offline' } });
    expect(v1.audit.at(-1)!.override).toEqual({ reason: 'evaluated offline', gates: 'not evaluated: no quality gate results recorded' });
    await expect(registry.approve(2, 'fine', 'ann', { overrideGates: { reason: 'x' } })).rejects.toThrow('version 2 passed its quality gates: there is nothing to override');
    const v2 = await registry.approve(2, 'fine', 'ann');
    expect('override' in v2.audit.at(-1)!).toBe(false);
    expect(Object.keys(JSON.parse(await readFile(path.join(root, 'versions', '000002', 'audit', '000002.json'), 'utf8')))).toEqual(['seq', 'prev', 'at', 'by', 'from', 'to', 'note']);
  });
});

describe('local registry: audit trail', () => {
  it('records who, when, from, to and note for every change, oldest first, and never rewrites an entry', async () => {
    await registerSeeds(1);
    const auditDir = path.join(root, 'versions', '000001', 'audit');
    const first = await readFile(path.join(auditDir, '000001.json'));
    const firstMtime = (await stat(path.join(auditDir, '000001.json'))).mtimeMs;

    await registry.approve(1, 'passes review', 'carol');
    await registry.reject(1, 'rollback: drift alarm', 'dave');
    const v = await registry.approve(1, 're-approved after fix', 'carol');

    expect(v.audit.map(({ by, from, to, note }) => ({ by, from, to, note }))).toEqual([
      { by: 'trainer', from: null, to: 'PendingManualApproval', note: '' },
      { by: 'carol', from: 'PendingManualApproval', to: 'Approved', note: 'passes review' },
      { by: 'dave', from: 'Approved', to: 'Rejected', note: 'rollback: drift alarm' },
      { by: 'carol', from: 'Rejected', to: 'Approved', note: 're-approved after fix' },
    ]);
    const times = v.audit.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(await readFile(path.join(auditDir, '000001.json'))).toEqual(first);
    expect((await stat(path.join(auditDir, '000001.json'))).mtimeMs).toBe(firstMtime);
    expect((await readdir(auditDir)).sort()).toEqual(['000001.json', '000002.json', '000003.json', '000004.json', 'HEAD.json']);
  });

  it('defaults "who" to PRICESENSE_USER, then the OS user', async () => {
    const saved = process.env.PRICESENSE_USER;
    try {
      process.env.PRICESENSE_USER = 'ci-bot';
      const v = await registry.register(await writeFixtureForest(dir, 'a.json', { seed: 1 }));
      expect(v.lineage.registeredBy).toBe('ci-bot');
      delete process.env.PRICESENSE_USER;
      const approved = await registry.approve(1, 'ok');
      expect(approved.audit[1].by).toBe(os.userInfo().username);
    } finally {
      if (saved === undefined) delete process.env.PRICESENSE_USER;
      else process.env.PRICESENSE_USER = saved;
    }
  });
});

describe('local registry: tamper-evident audit trail', () => {
  const auditDir = (v: number) => path.join(root, 'versions', String(v).padStart(6, '0'), 'audit');
  const entryFile = (v: number, k: number) => path.join(auditDir(v), `${String(k).padStart(6, '0')}.json`);

  beforeEach(async () => {
    await registerSeeds(1, 2);
    await registry.approve(1, 'ok');
    await registry.approve(2, 'better');
    await registry.reject(2, 'drift alarm: rolled back');
  });

  it('deleting the "Rejected" entry does not silently re-approve the version: it is refused and serving stays on the previous one', async () => {
    await rm(entryFile(2, 3));
    await expect(registry.show(2)).rejects.toThrow(AuditChainError);
    await expect(registry.show(2)).rejects.toThrow(/version 2: audit trail does not verify: .*HEAD\.json names entry 3 but the trail ends at entry 2: the last entry was deleted/);
    const fresh = new LocalRegistry(root);
    expect(await fresh.latestServable()).toMatchObject({ latest: { version: 1 }, broken: [{ version: 2, problem: expect.stringMatching(/the last entry was deleted/) }] });
    expect((await fresh.latestApproved())?.version).toBe(1);
  });

  it('an edited entry breaks the link of the one after it; an edited registration record breaks entry 1', async () => {
    const text = await readFile(entryFile(2, 2), 'utf8');
    await writeFile(entryFile(2, 2), text.replace('"note":"better"', '"note":"betterr"'));
    await expect(registry.show(2)).rejects.toThrow(/audit entry .*000003\.json does not link to entry 2 .*entry 2 was altered or replaced/);
    const record = path.join(root, 'versions', '000001', 'version.json');
    await writeFile(record, (await readFile(record, 'utf8')).replace('"registeredBy": "trainer"', '"registeredBy": "mallory"'));
    await expect(registry.show(1)).rejects.toThrow(/000001\.json does not link to the version's registration record .*the record or the entry was altered/);
  });

  it('refuses a missing HEAD, a missing middle entry and an entry without a hash link', async () => {
    await rm(path.join(auditDir(2), 'HEAD.json'));
    await expect(registry.show(2)).rejects.toThrow(/HEAD\.json is missing/);
    await rm(entryFile(1, 1));
    await expect(registry.show(1)).rejects.toThrow(/entry 1 is missing/);
    await registerSeeds(3);
    await writeFile(entryFile(3, 1), `${JSON.stringify({ at: 'x', by: 'y', from: null, to: 'PendingManualApproval', note: '' })}\n`);
    await expect(registry.show(3)).rejects.toThrow(/HEAD\.json names entry 1, but the trail holds only entries without a hash link .*: its chained entries were deleted or replaced/);
  });

  it('a long-lived reader also catches a consistent rollback (last entry deleted and HEAD rewritten)', async () => {
    expect((await registry.show(2)).status).toBe('Rejected');
    const second = await readFile(entryFile(2, 2));
    await rm(entryFile(2, 3));
    await writeFile(path.join(auditDir(2), 'HEAD.json'), `${JSON.stringify({ seq: 2, sha256: sha256Hex(second) })}\n`);
    // A new process cannot tell (nothing outside the directory remembers the entry) ...
    expect((await new LocalRegistry(root).show(2)).status).toBe('Approved');
    // ... but one that read the trail before can.
    await expect(registry.show(2)).rejects.toThrow(/the trail was cut back from 3 to 2 entries since this process read it/);
    expect((await registry.latestServable()).latest?.version).toBe(1);
  });

  it('verify checks every version: its trail and its stored artifact', async () => {
    expect(await registry.verify()).toEqual({
      registry: root,
      ok: true,
      versions: [
        { version: 1, status: 'Approved', problems: [], warnings: [] },
        { version: 2, status: 'Rejected', problems: [], warnings: [] },
      ],
    });
    await rm(entryFile(2, 3));
    const forest = path.join(root, 'versions', '000001', 'forest.json');
    await writeFile(forest, Buffer.concat([await readFile(forest), Buffer.from(' ')]));
    const report = await new LocalRegistry(root).verify();
    expect(report.ok).toBe(false);
    expect(report.versions[0].problems).toEqual([expect.stringMatching(/artifact .*forest\.json hashes to [0-9a-f]{64}, registered [0-9a-f]{64}/)]);
    expect(report.versions[1].problems).toEqual([expect.stringMatching(/the last entry was deleted/)]);
    // One version only: the same check, no other version read.
    expect(await new LocalRegistry(root).verify({ version: 2 })).toEqual({ registry: root, ok: false, versions: [report.versions[1]] });
    await expect(registry.verify({ version: 9 })).rejects.toThrow(/version 9 not found/);
  });

  const appendEntry = async (v: number, seq: number, fields: { from: string; to: string }) => {
    const prev = sha256Hex(await readFile(entryFile(v, seq - 1)));
    await writeFile(entryFile(v, seq), `${JSON.stringify({ seq, prev, at: '2026-01-01T00:00:00.000Z', by: 'mallory', ...fields, note: 'hand-made' })}\n`);
  };

  it('refuses a hand-made entry whose "from" is not where the previous entry left the version', async () => {
    // Version 2 is Rejected; a well-linked entry claiming it was Pending re-approves nothing.
    await appendEntry(2, 4, { from: 'PendingManualApproval', to: 'Approved' });
    await expect(new LocalRegistry(root).show(2)).rejects.toThrow(/000004\.json moves from PendingManualApproval but entry 3 left the version Rejected: a hand-made entry/);
    expect((await new LocalRegistry(root).latestServable()).latest?.version).toBe(1);
  });

  it('lets HEAD lag one entry (a crash between the two writes) and repairs it on the next change, but not two', async () => {
    const second = await readFile(entryFile(2, 2));
    await writeFile(path.join(auditDir(2), 'HEAD.json'), `${JSON.stringify({ seq: 2, sha256: sha256Hex(second) })}\n`);
    expect((await new LocalRegistry(root).show(2)).status).toBe('Rejected');
    await registry.approve(2, 'again');
    expect(JSON.parse(await readFile(path.join(auditDir(2), 'HEAD.json'), 'utf8'))).toMatchObject({ seq: 4 });
    await appendEntry(2, 5, { from: 'Approved', to: 'Rejected' });
    await appendEntry(2, 6, { from: 'Rejected', to: 'Approved' });
    await expect(new LocalRegistry(root).show(2)).rejects.toThrow(/HEAD\.json names entry 4 but the trail has 6 entries: entries 5\.\.6 were added without pricesense/);
  });

  it('refuses to change a version whose trail does not verify', async () => {
    await rm(entryFile(2, 3));
    await expect(registry.approve(2, 'again')).rejects.toThrow(AuditChainError);
  });
});

describe('local registry: latestApproved', () => {
  it('passes over a version whose record is unreadable (a truncated version.json) and reports it, instead of failing every poll', async () => {
    await registerSeeds(1, 2);
    await registry.approve(1, 'ok');
    await registry.approve(2, 'better');
    await writeFile(path.join(root, 'versions', '000002', 'version.json'), '{trunc');
    const fresh = new LocalRegistry(root);
    expect(await fresh.latestServable()).toMatchObject({ latest: { version: 1 }, broken: [{ version: 2, problem: expect.stringMatching(/version\.json is not valid JSON/) }] });
    await expect(fresh.show(2)).rejects.toThrow(/version 2: registry record unreadable: .*version\.json is not valid JSON/);
  });

  it('passes over a version whose record, audit entry or whole trail is over its cap without holding it, and reports it', async () => {
    await registerSeeds(1, 2, 3);
    await registry.approve(1, 'ok');
    await registry.approve(2, 'better');
    await registry.approve(3, 'best');
    // Sparse: over the cap on paper, nothing on disk. A registry writer could make it 2 GiB: every worker would allocate it on each poll.
    await truncate(path.join(root, 'versions', '000003', 'version.json'), MAX_RECORD_BYTES + 1);
    const fresh = new LocalRegistry(root);
    expect(await fresh.latestServable()).toMatchObject({
      latest: { version: 2 },
      broken: [{ version: 3, problem: expect.stringContaining(`version.json is ${(MAX_RECORD_BYTES + 1).toLocaleString('en-US')} bytes, more than the ${MAX_RECORD_BYTES.toLocaleString('en-US')} bytes`) }],
    });
    const audit2 = path.join(root, 'versions', '000002', 'audit');
    const [entry] = (await readdir(audit2)).filter((n) => n !== 'HEAD.json').sort();
    const original = await readFile(path.join(audit2, entry));
    await truncate(path.join(audit2, entry), MAX_AUDIT_ENTRY_BYTES + 1);
    await expect(fresh.show(2)).rejects.toThrow(`is ${(MAX_AUDIT_ENTRY_BYTES + 1).toLocaleString('en-US')} bytes, more than the ${MAX_AUDIT_ENTRY_BYTES.toLocaleString('en-US')} bytes`);
    expect(await fresh.latestServable()).toMatchObject({ latest: { version: 1 } });
    // Each entry within its cap, the trail over MAX_TRAIL_BYTES: read no further than the budget.
    await writeFile(path.join(audit2, entry), original);
    const extra = Math.ceil(MAX_TRAIL_BYTES / MAX_AUDIT_ENTRY_BYTES) + 1;
    for (let i = 0; i < extra; i++) {
      const file = path.join(audit2, `${String(900 + i).padStart(6, '0')}.json`);
      await writeFile(file, '');
      await truncate(file, MAX_AUDIT_ENTRY_BYTES);
    }
    await expect(fresh.show(2)).rejects.toThrow(new RegExp(`holds more than ${MAX_TRAIL_BYTES.toLocaleString('en-US')} bytes of audit entries \\(MAX_TRAIL_BYTES\\); the rest was not read`));
    expect(await fresh.latestServable()).toMatchObject({ latest: { version: 1 } });
  });

  it('passes over a version with a FIFO, a directory or nothing where a file belongs, and reports it, instead of failing every poll', async () => {
    const { v2, audit2, entries } = await twoApprovedVersions();
    const served = async () => (await new LocalRegistry(root).latestServable()).latest?.version;
    const planted = async (file: string, what: 'fifo' | 'dir' | 'gone', check: RegExp) => {
      const saved = path.join(dir, 'saved');
      await rename(file, saved);
      if (what === 'fifo') execFileSync('mkfifo', [file]);
      else if (what === 'dir') await mkdir(file);
      const resolution = await new LocalRegistry(root).latestServable();
      expect(resolution).toMatchObject({ latest: { version: 1 }, broken: [{ version: 2, problem: expect.stringMatching(check) }] });
      await rm(file, { recursive: true, force: true });
      await rename(saved, file);
      expect(await served()).toBe(2);
    };
    expect(await served()).toBe(2);
    // A FIFO must not block the reader (it would wait for a writer) nor fail the poll.
    await planted(path.join(v2, 'version.json'), 'fifo', /version\.json is not a regular file \(a FIFO, socket or device\)/);
    await planted(path.join(audit2, entries.at(-1)!), 'fifo', /is not a regular file/);
    await planted(path.join(audit2, 'HEAD.json'), 'fifo', /HEAD\.json is not a regular file/);
    await planted(path.join(v2, 'version.json'), 'dir', /version\.json is a directory, not a file/);
    await planted(path.join(v2, 'version.json'), 'gone', /version\.json is missing/);
    await planted(audit2, 'gone', /holds no audit entries/);
    // The audit directory replaced by a file.
    await rename(audit2, path.join(dir, 'audit-saved'));
    await writeFile(audit2, 'x');
    expect(await new LocalRegistry(root).latestServable()).toMatchObject({ latest: { version: 1 }, broken: [{ version: 2, problem: expect.stringMatching(/audit is a file, not the directory of audit entries/) }] });
    // A version that is not there at all is still "not found", not a broken one.
    await expect(new LocalRegistry(root).show(7)).rejects.toThrow(/version 7 not found/);
  });

  it('passes over a version made unreadable by a file where its directory belongs, a symbolic link loop or a socket, and verify reports each in words', async () => {
    const { v2, audit2, entries } = await twoApprovedVersions();
    const [entry] = entries;
    // The newest number is a plain file: every poll would have failed on it for good.
    await writeFile(path.join(root, 'versions', '000003'), 'not a version');
    expect(await new LocalRegistry(root).latestServable()).toMatchObject({
      latest: { version: 2 },
      broken: [{ version: 3, problem: expect.stringMatching(/000003\/version\.json cannot be read: a part of the path is a file where a directory belongs/) }],
    });
    // A symbolic link loop at the record, and a socket in the place of an audit entry.
    await rename(path.join(v2, 'version.json'), path.join(dir, 'record'));
    await symlink('version.json', path.join(v2, 'version.json'));
    expect(await new LocalRegistry(root).latestServable()).toMatchObject({ latest: { version: 1 }, broken: [{ version: 3 }, { version: 2, problem: expect.stringMatching(/version\.json cannot be read: a loop of symbolic links/) }] });
    await rm(path.join(v2, 'version.json'));
    await rename(path.join(dir, 'record'), path.join(v2, 'version.json'));
    await rename(path.join(audit2, entry), path.join(dir, 'entry'));
    const socket = net.createServer();
    await new Promise<void>((resolve) => socket.listen(path.join(audit2, entry), resolve));
    try {
      expect(await new LocalRegistry(root).latestServable()).toMatchObject({ latest: { version: 1 }, broken: [{ version: 3 }, { version: 2, problem: expect.stringMatching(/is not a regular file \(a FIFO, socket or device\)/) }] });
      const report = await new LocalRegistry(root).verify();
      expect(report.ok).toBe(false);
      const problems = Object.fromEntries(report.versions.map((c) => [c.version, c.problems.join(' ')]));
      expect(problems[1]).toBe('');
      expect(problems[2]).toMatch(/not a regular file/);
      expect(problems[3]).toMatch(/a part of the path is a file where a directory belongs/);
      expect(Object.values(problems).join(' ')).not.toMatch(/ENOTDIR|ENXIO|ELOOP/);
    } finally {
      await new Promise((resolve) => socket.close(resolve));
    }
  });

  it('passes over a version this process may not read, in words, as not readable (a reader keeps serving it: it says nothing about the version); versions are readable by others', async () => {
    await registerSeeds(1, 2, 3);
    await registry.approve(1, 'ok');
    await registry.approve(2, 'better');
    // Registered versions are 0755 like any directory (mkdtemp alone would make them 0700: unreadable to the API's user).
    expect((await stat(path.join(root, 'versions', '000003'))).mode & 0o777).toBe(0o755);
    await chmod(dir, 0o755);
    await chmod(path.join(root, 'versions', '000003'), 0o000);
    const script = `require(${JSON.stringify(path.join(__dirname, '..', 'registry'))}).openRegistry(${JSON.stringify(root)}).then((r) => r.latestServable()).then((r) => console.log('OK', r.latest && r.latest.version, JSON.stringify(r.broken)), (e) => console.log('ERR', e.name, e.message))`;
    // Root reads through any mode: the read runs as nobody then; as anyone else, the mode itself denies it.
    const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const repo = path.join(__dirname, '..', '..');
    const run = (args: string[], asNobody: boolean) => execFileSync(process.execPath, args, { cwd: repo, encoding: 'utf8', stdio: 'pipe', ...(asNobody ? { uid: 65534, gid: 65534 } : {}) });
    let nobodyReadsRepo = true;
    try {
      if (asRoot) run(['-e', `require('fs').accessSync(${JSON.stringify(require.resolve('ts-node/register/transpile-only'))}); require('fs').accessSync(${JSON.stringify(__filename)})`], true);
    } catch {
      nobodyReadsRepo = false;
    }
    try {
      if (!asRoot || nobodyReadsRepo) {
        const out = run(['-r', 'ts-node/register/transpile-only', '-e', script], asRoot);
        // Version 3 (pending) cannot be read: passed over, version 2 served — not a failed poll that would block a rollback.
        expect(out.trim()).toMatch(/^OK 2 \[\{"version":3,"problem":".*000003\/version\.json cannot be read: permission denied; the registry must be readable by the user this process runs as \(uid \d+\): fix the owner or mode"\}\]$/);
      } else {
        // A checkout nobody may read (under /root, say): the translation itself, on the error the read would have got.
        const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', path: path.join(root, 'versions', '000003', 'version.json') });
        expect(notPermitted(denied, 3)).toMatchObject({ name: 'VersionNotReadableError', version: 3, problem: expect.stringMatching(/000003\/version\.json cannot be read: permission denied; the registry must be readable/) });
        expect(notPermitted(Object.assign(new Error('EIO'), { code: 'EIO' }), 3)).toMatchObject({ code: 'EIO' });
      }
    } finally {
      await chmod(path.join(root, 'versions', '000003'), 0o755);
    }
  });

  it('refuses an artifact that is not a regular file as an invalid artifact, naming it', async () => {
    await registerSeeds(1);
    const v = await registry.show(1);
    await rm(v.artifactUri);
    execFileSync('mkfifo', [v.artifactUri]);
    await expect(new LocalRegistry(root).fetchArtifact(1)).rejects.toThrow(`version 1's artifact ${v.artifactUri} is not a regular file (a FIFO, socket or device)`);
    await expect(new LocalRegistry(root).fetchArtifact(1)).rejects.toMatchObject({ name: 'InvalidArtifactError' });
    // A link loop is as permanent: invalid (remembered as failed), in words.
    await rm(v.artifactUri);
    await symlink(path.basename(v.artifactUri), v.artifactUri);
    await expect(new LocalRegistry(root).fetchArtifact(1)).rejects.toThrow(`version 1's artifact ${v.artifactUri} cannot be read: a loop of symbolic links`);
    await expect(new LocalRegistry(root).fetchArtifact(1)).rejects.toMatchObject({ name: 'InvalidArtifactError' });
  });

  it('is the highest-numbered Approved version through approve -> reject -> approve sequences', async () => {
    await registerSeeds(1, 2, 3);
    expect(await registry.latestApproved()).toBeUndefined();
    await registry.approve(1, 'ok');
    expect((await registry.latestApproved())?.version).toBe(1);
    await registry.approve(2, 'better');
    expect((await registry.latestApproved())?.version).toBe(2);
    await registry.reject(2, 'rollback');
    expect((await registry.latestApproved())?.version).toBe(1);
    await registry.approve(2, 'fixed');
    expect((await registry.latestApproved())?.version).toBe(2);
    // Approving an older version later does not make it "latest": latest means newest registered.
    await registry.reject(1, 'retire');
    await registry.approve(1, 'back');
    expect((await registry.latestApproved())?.version).toBe(2);
    await registry.reject(3, 'never');
    expect((await registry.latestApproved())?.version).toBe(2);
    await registry.reject(2, 'rollback again');
    await registry.reject(1, 'all bad');
    expect(await registry.latestApproved()).toBeUndefined();
  });
});

describe('local registry: fetch verifies the checksum', () => {
  it('refuses a corrupted stored forest with an error naming both digests', async () => {
    await registerSeeds(1);
    const v = await registry.approve(1, 'ok');
    const bytes = await readFile(v.artifactUri);
    const corrupt = Buffer.from(bytes);
    corrupt[Math.floor(corrupt.length / 2)] ^= 0x01;
    await writeFile(v.artifactUri, corrupt);

    const err = await registry.fetch(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    const mismatch = err as ChecksumMismatchError;
    expect(mismatch.expected).toBe(v.artifactSha256);
    expect(mismatch.actual).toBe(sha256Hex(corrupt));
    expect(mismatch.message).toContain(v.artifactSha256);
    expect(mismatch.message).toContain(sha256Hex(corrupt));
    expect(mismatch.message).toMatch(/refusing to return this model/);

    await writeFile(v.artifactUri, bytes);
    expect(await registry.fetch(1)).toEqual(bytes);
  });
});

describe('openRegistry', () => {
  const saved = process.env.PRICESENSE_REGISTRY;
  afterEach(() => {
    if (saved === undefined) delete process.env.PRICESENSE_REGISTRY;
    else process.env.PRICESENSE_REGISTRY = saved;
  });

  it('opens a local directory, file:// URI or PRICESENSE_REGISTRY', async () => {
    expect((await openRegistry(root)).uri).toBe(root);
    expect((await openRegistry(`file://${root}`)).uri).toBe(root);
    process.env.PRICESENSE_REGISTRY = root;
    expect((await openRegistry()).uri).toBe(root);
    delete process.env.PRICESENSE_REGISTRY;
    expect((await openRegistry()).uri).toBe(path.resolve('.pricesense/registry'));
  });

  it('refuses other schemes and bad SageMaker group names clearly', async () => {
    await expect(openRegistry('s3://bucket/registry')).rejects.toThrow(
      "unsupported registry URI 's3://bucket/registry': use a local directory, file:///path, or sagemaker://<model-package-group>",
    );
    await expect(openRegistry('sagemaker://bad_name', { lake: { kind: 's3', root: 's3://b' } as never })).rejects.toThrow(/invalid SageMaker model package group name 'bad_name'/);
  });

  it('refuses a SageMaker registry over a local lake (ModelDataUrl must be s3://)', async () => {
    await expect(openRegistry('sagemaker://pricesense', { lake: { kind: 'local', root: '/tmp/lake' } as never })).rejects.toThrow(
      /stores artifacts in an S3 lake, but the lake is \/tmp\/lake \(local\)/,
    );
  });
});

describe('local registry: audit key (PRICESENSE_REGISTRY_AUDIT_KEY)', () => {
  const auditDir = (v: number) => path.join(root, 'versions', String(v).padStart(6, '0'), 'audit');
  const entryFile = (v: number, k: number) => path.join(auditDir(v), `${String(k).padStart(6, '0')}.json`);
  const KEY = 'test-audit-key-held-by-the-writers';

  beforeEach(async () => {
    registry = new LocalRegistry(root, { auditKey: KEY });
    await registerSeeds(1, 2);
    await registry.approve(1, 'ok');
    await registry.approve(2, 'better');
    await registry.reject(2, 'drift alarm: rolled back');
  });

  it('catches a consistent rollback in a fresh process too: the last entry deleted and HEAD rewritten without the key', async () => {
    expect((await new LocalRegistry(root, { auditKey: KEY }).show(2)).status).toBe('Rejected');
    const second = await readFile(entryFile(2, 2));
    await rm(entryFile(2, 3));
    await writeFile(path.join(auditDir(2), 'HEAD.json'), `${JSON.stringify({ seq: 2, sha256: sha256Hex(second) })}\n`);
    const fresh = new LocalRegistry(root, { auditKey: KEY });
    await expect(fresh.show(2)).rejects.toThrow(/HEAD\.json carries no HMAC although PRICESENSE_REGISTRY_AUDIT_KEY is set/);
    await writeFile(path.join(auditDir(2), 'HEAD.json'), `${JSON.stringify({ seq: 2, sha256: sha256Hex(second), mac: 'ab'.repeat(32) })}\n`);
    await expect(fresh.show(2)).rejects.toThrow(/HMAC does not verify/);
    expect((await fresh.latestServable()).latest?.version).toBe(1);
    // Without the key the same forgery passes: the documented limit of the unkeyed mode.
    expect((await new LocalRegistry(root, { auditKey: undefined }).show(2)).status).toBe('Approved');
  });

  it('an entry beyond HEAD is not in effect, and a change waits until it is removed', async () => {
    const prev = sha256Hex(await readFile(entryFile(2, 3)));
    await writeFile(entryFile(2, 4), `${JSON.stringify({ seq: 4, prev, at: '2026-01-01T00:00:00.000Z', by: 'mallory', from: 'Rejected', to: 'Approved', note: 'hand-made' })}\n`);
    const fresh = new LocalRegistry(root, { auditKey: KEY });
    expect((await fresh.show(2)).status).toBe('Rejected');
    expect((await fresh.latestApproved())?.version).toBe(1);
    await expect(fresh.approve(2, 'again')).rejects.toThrow(/000004\.json is not named by HEAD\.json .*remove it to change this version/);
    await rm(entryFile(2, 4));
    expect((await fresh.approve(2, 'again')).status).toBe('Approved');
  });
});

describe('local registry: a registry written before the audit chain, and `registry migrate`', () => {
  const T0 = '2026-06-01T09:00:00.000Z';
  /** Every file under the registry, with its bytes: what "the migration only adds" is checked against. */
  async function snapshot(): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else out.set(path.relative(root, p), await readFile(p));
      }
    };
    await walk(root);
    return out;
  }

  beforeEach(async () => {
    // v1 approved, v2 approved then rejected (the rollback), v3 pending: as the earlier pricesense left them.
    await writeLegacyLocalVersion(root, 1, await writeFixtureForest(dir, 'l1.json', { seed: 1, gatesPassed: true }), legacyTrail(T0, 'olga', 'Approved'));
    await writeLegacyLocalVersion(root, 2, await writeFixtureForest(dir, 'l2.json', { seed: 2, gatesPassed: true }), legacyTrail(T0, 'olga', 'Approved', 'Rejected'));
    await writeLegacyLocalVersion(root, 3, await writeFixtureForest(dir, 'l3.json', { seed: 3, gatesPassed: true }), legacyTrail(T0, 'olga'));
  });

  it('unmigrated: reads fail naming the command to run, nothing is served or changed, verify lists every version', async () => {
    const command = `pricesense registry migrate --registry ${root}`;
    const err = await registry.show(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnmigratedVersionError);
    expect((err as UserError).exitCode).toBe(5);
    expect(String((err as Error).message)).toBe(
      `version 1: registry not migrated: its 2 audit entries were written by an earlier pricesense, before the audit trail was hash-chained, and not yet sealed: run \`${command}\` once (it adds a genesis entry sealing that history; nothing is rewritten). Until then the version is not served and cannot be changed.`,
    );
    await expect(registry.list()).rejects.toThrow(command);
    const before = await snapshot();
    await expect(registry.approve(3, 'ship', 'ann')).rejects.toThrow(UnmigratedVersionError);
    expect(await snapshot()).toEqual(before);
    const servable = await registry.latestServable();
    expect(servable.latest).toBeUndefined();
    expect(servable.broken.map((b) => b.version)).toEqual([3, 2, 1]);
    expect(servable.broken.every((b) => b.problem.includes(command))).toBe(true);
    const report = await registry.verify();
    expect(report.ok).toBe(false);
    expect(report.versions.map((v) => v.problems)).toEqual([1, 2, 3].map(() => [expect.stringContaining(command)]));
  });

  it('migrate seals each trail with a genesis entry and HEAD, only adding files; statuses and history are kept', async () => {
    const before = await snapshot();
    const report = await registry.migrate({ by: 'ops' });
    expect(report).toEqual({
      registry: root,
      ok: true,
      versions: [
        { version: 1, result: 'sealed', legacyEntries: 2 },
        { version: 2, result: 'sealed', legacyEntries: 3 },
        { version: 3, result: 'sealed', legacyEntries: 1 },
      ],
    });
    const after = await snapshot();
    // Every file that was there is there, byte for byte; the only new ones are a genesis entry and HEAD per version.
    for (const [file, bytes] of before) expect(after.get(file)).toEqual(bytes);
    expect([...after.keys()].filter((f) => !before.has(f)).sort()).toEqual([
      'CHAIN.json',
      'versions/000001/audit/000003.json',
      'versions/000001/audit/HEAD.json',
      'versions/000002/audit/000004.json',
      'versions/000002/audit/HEAD.json',
      'versions/000003/audit/000002.json',
      'versions/000003/audit/HEAD.json',
    ]);
    // Sealing is closed: the marker lists the versions it was for and says the migration is complete.
    expect(JSON.parse(after.get('CHAIN.json')!.toString('utf8'))).toEqual({ layout: 'pricesense.registry.chain/1', state: 'complete', legacy: [1, 2, 3] });
    const fresh = new LocalRegistry(root);
    const v2 = await fresh.show(2);
    expect(v2.status).toBe('Rejected');
    expect(v2.audit.map((e) => [e.by, e.from, e.to])).toEqual([
      ['olga', null, 'PendingManualApproval'],
      ['olga', 'PendingManualApproval', 'Approved'],
      ['olga', 'Approved', 'Rejected'],
      ['ops', 'Rejected', 'Rejected'],
    ]);
    expect(v2.audit[3]).toMatchObject({ genesis: { legacyEntries: 3 }, note: expect.stringMatching(/^audit chain started by pricesense registry migrate: the 3 entries before this one were written before the trail was hash-chained/) });
    expect((await fresh.latestApproved())?.version).toBe(1);
    expect((await fresh.verify()).ok).toBe(true);
    // The trail goes on from the genesis entry.
    await fresh.approve(3, 'reviewed after the upgrade', 'ann', { expected: 'PendingManualApproval' });
    expect((await fresh.show(3)).audit.map((e) => e.to)).toEqual(['PendingManualApproval', 'PendingManualApproval', 'Approved']);
    expect((await fresh.latestApproved())?.version).toBe(3);
  });

  it('is idempotent: a second run changes nothing and says every version is chained', async () => {
    await registry.migrate({ by: 'ops' });
    const once = await snapshot();
    const again = await new LocalRegistry(root).migrate({ by: 'ops' });
    expect(again.versions.map((v) => [v.version, v.result, v.legacyEntries])).toEqual([
      [1, 'chained', 2],
      [2, 'chained', 3],
      [3, 'chained', 1],
    ]);
    expect(await snapshot()).toEqual(once);
  });

  it('after migration the sealed history is tamper-evident: a deleted or edited legacy entry breaks the genesis link', async () => {
    await registry.migrate({ by: 'ops' });
    // Deleting v2's "Rejected" (a legacy entry) would have re-approved it before; now the version is not served.
    await rm(path.join(root, 'versions', '000002', 'audit', '000003.json'));
    const fresh = new LocalRegistry(root);
    await expect(fresh.show(2)).rejects.toThrow(/entry 3 is missing|does not seal the 2 entries/);
    expect((await fresh.latestApproved())?.version).toBe(1);
    const first = path.join(root, 'versions', '000001', 'audit', '000001.json');
    await writeFile(first, (await readFile(first, 'utf8')).replace('"by":"olga"', '"by":"mallory"'));
    await expect(new LocalRegistry(root).show(1)).rejects.toThrow(/000003\.json does not seal the 2 entries written before the chain .*altered, added or deleted after the migration/);
    // And migrate does not paper over it: the version is reported, not re-sealed.
    const report = await new LocalRegistry(root).migrate();
    expect(report.ok).toBe(false);
    expect(report.versions.find((v) => v.version === 1)).toMatchObject({ result: 'failed', problem: expect.stringMatching(/does not seal/) });
  });

  it('a migration interrupted between the genesis entry and HEAD is not served and is finished by re-running', async () => {
    await registry.migrate({ by: 'ops' });
    // What a crash after version 1's genesis entry leaves: no HEAD, and the marker still \`migrating\` (it is closed last).
    await rm(path.join(root, 'versions', '000001', 'audit', 'HEAD.json'));
    await writeFile(path.join(root, 'CHAIN.json'), `${JSON.stringify({ layout: 'pricesense.registry.chain/1', state: 'migrating', legacy: [1, 2, 3] })}\n`);
    const fresh = new LocalRegistry(root);
    await expect(fresh.show(1)).rejects.toThrow(`the migration that sealed this trail was interrupted; re-run \`pricesense registry migrate --registry ${root}\` to finish it`);
    expect((await fresh.latestServable()).latest).toBeUndefined();
    expect((await fresh.migrate()).versions[0]).toEqual({ version: 1, result: 'resumed', legacyEntries: 2 });
    expect((await new LocalRegistry(root).show(1)).status).toBe('Approved');
  });

  it('a mixed registry (versions registered after the upgrade) and a trail that cannot be sealed: those are left as they are', async () => {
    await registerSeeds(4);
    // v3's history has a gap (entry 2 of 3 gone): sealing it would bless the deletion.
    await writeLegacyLocalVersion(root, 3, await writeFixtureForest(dir, 'l3.json', { seed: 3, gatesPassed: true }), legacyTrail(T0, 'olga', 'Approved', 'Rejected'));
    await rm(path.join(root, 'versions', '000003', 'audit', '000002.json'));
    const before = await readdir(path.join(root, 'versions', '000003', 'audit'));
    const report = await registry.migrate({ by: 'ops' });
    expect(report.ok).toBe(false);
    expect(report.versions.map((v) => [v.version, v.result])).toEqual([
      [1, 'sealed'],
      [2, 'sealed'],
      [3, 'failed'],
      [4, 'chained'],
    ]);
    expect(report.versions[2].problem).toMatch(/entry 2 is missing \(deleted\?\) among the entries written before the chain/);
    expect(await readdir(path.join(root, 'versions', '000003', 'audit'))).toEqual(before);
  });

  it('two migrations at once: each version gets exactly one genesis entry', async () => {
    const [a, b] = await Promise.all([new LocalRegistry(root).migrate({ by: 'a' }), new LocalRegistry(root).migrate({ by: 'b' })]);
    for (const n of [1, 2, 3]) {
      // The other run finds it sealed, or sealed but HEAD not yet written and writes the same HEAD (resumed).
      const results = [a.versions[n - 1].result, b.versions[n - 1].result];
      expect(results.filter((r) => r === 'sealed')).toHaveLength(1);
      expect(results.filter((r) => r === 'chained' || r === 'resumed')).toHaveLength(1);
      expect((await new LocalRegistry(root).show(n)).audit.filter((e) => e.genesis)).toHaveLength(1);
    }
  });

  describe('sealing is once per registry: migrate never blesses a rewritten history', () => {
    const KEY = 'k'.repeat(32);
    const auditDir = (v: number) => path.join(root, 'versions', String(v).padStart(6, '0'), 'audit');

    it('(a) a version the chain-aware pricesense wrote, rewritten by hand into an old-style Approved trail, is reported as tampered and never sealed', async () => {
      const keyed = new LocalRegistry(root, { auditKey: KEY });
      await keyed.migrate({ by: 'ops' });
      await keyed.register(await writeFixtureForest(dir, 'f4.json', { seed: 4, gatesPassed: true }), { by: 'trainer' });
      await keyed.approve(4, 'ok', 'ann');
      await keyed.reject(4, 'drift alarm', 'ann');
      // Someone with write access replaces v4's chained entries and HEAD with an old-style trail ending in Approved.
      await rm(path.join(root, 'versions', '000004'), { recursive: true });
      await writeLegacyLocalVersion(root, 4, await writeFixtureForest(dir, 'f4.json', { seed: 4, gatesPassed: true }), legacyTrail(T0, 'trainer', 'Approved'));
      const fresh = new LocalRegistry(root, { auditKey: KEY });
      const err = await fresh.show(4).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuditChainError);
      expect(err).not.toBeInstanceOf(UnmigratedVersionError);
      expect((err as Error).message).toContain('version 4: audit trail does not verify');
      expect((err as Error).message).toMatch(/CHAIN\.json does not list it\), so its chained entries were replaced: written without the chain \(by a pricesense older than the hash-chained audit trail still in use, or by hand\)\. `registry migrate` will not seal it: retire every pricesense from before the chain that writes to this registry; then restore .*000004\/audit from a backup/);
      expect((err as Error).message).not.toContain('run `pricesense registry migrate');
      const before = await readdir(auditDir(4));
      const report = await fresh.migrate({ by: 'ops' });
      expect(report.ok).toBe(false);
      expect(report.versions.find((v) => v.version === 4)).toMatchObject({ result: 'failed', problem: expect.stringContaining('will not seal it') });
      expect(await readdir(auditDir(4))).toEqual(before);
      expect((await new LocalRegistry(root, { auditKey: KEY }).latestApproved())?.version).toBe(1);
    });

    it('(a) before any migrate: the register that made the registry chain-aware listed only the versions written before it', async () => {
      await registerSeeds(4);
      await registry.approve(4, 'ok', 'ann');
      await registry.reject(4, 'drift alarm', 'ann');
      await rm(path.join(root, 'versions', '000004'), { recursive: true });
      await writeLegacyLocalVersion(root, 4, await writeFixtureForest(dir, 'f4.json', { seed: 4, gatesPassed: true }), legacyTrail(T0, 'trainer', 'Approved'));
      await expect(new LocalRegistry(root).show(4)).rejects.toThrow(/written without the chain \(by a pricesense older than the hash-chained audit trail still in use, or by hand\)/);
      const report = await new LocalRegistry(root).migrate({ by: 'ops' });
      expect(report.versions.map((v) => [v.version, v.result])).toEqual([
        [1, 'sealed'],
        [2, 'sealed'],
        [3, 'sealed'],
        [4, 'failed'],
      ]);
      expect((await new LocalRegistry(root).latestApproved())?.version).toBe(1);
    });

    it('a deleted marker does not reopen sealing when other versions are chained from their registration', async () => {
      await registry.migrate({ by: 'ops' });
      await registerSeeds(4);
      await rm(path.join(root, 'CHAIN.json'));
      await rm(path.join(root, 'versions', '000004'), { recursive: true });
      await writeLegacyLocalVersion(root, 4, await writeFixtureForest(dir, 'f4.json', { seed: 4, gatesPassed: true }), legacyTrail(T0, 'trainer', 'Approved'));
      await expect(new LocalRegistry(root).migrate()).rejects.toThrow(/CHAIN\.json is missing, yet versions of this registry have hash-chained trails .*version 4 looks written before the chain.*will not seal them/);
      expect((await readdir(auditDir(4))).sort()).toEqual(['000001.json', '000002.json']);
    });

    it('a registry upgraded to a chain-aware pricesense before the marker existed: older versions are sealed only with --accept-unchained naming them', async () => {
      // Version 4 registered by the chain-aware code that wrote no CHAIN.json; 1-3 still as the pre-chain pricesense left them.
      await registerSeeds(4);
      await rm(path.join(root, 'CHAIN.json'));
      await expect(new LocalRegistry(root).migrate()).rejects.toThrow(/--accept-unchained 1,2,3/);
      await expect(new LocalRegistry(root).migrate({ acceptUnchained: [1, 2] })).rejects.toThrow(/will not seal them on its own/);
      // Any other write goes ahead (an emergency reject must always work), chained, and says what to run; no marker is made.
      const warned = [expect.stringMatching(/^the registry's chain marker was not created, so its older versions stay unmigrated .* until `pricesense registry migrate` is run once; this change was made and recorded in the hash chain\. .*--accept-unchained 1,2,3`$/)];
      expect((await new LocalRegistry(root).approve(4, 'ship', 'ann')).warnings).toEqual(warned);
      const rejected = await new LocalRegistry(root).reject(4, 'emergency: bad prices', 'rob');
      expect([rejected.status, rejected.warnings]).toEqual(['Rejected', warned]);
      const registered = await new LocalRegistry(root).register(await writeFixtureForest(dir, 'f5.json', { seed: 5, gatesPassed: true }), { by: 'trainer' });
      expect([registered.version, registered.warnings]).toEqual([5, warned]);
      await expect(readFile(path.join(root, 'CHAIN.json'), 'utf8')).rejects.toThrow(/ENOENT/);
      expect((await new LocalRegistry(root).verify()).versions.filter((v) => v.problems.length > 0).map((v) => v.version)).toEqual([1, 2, 3]);
      const report = await new LocalRegistry(root).migrate({ by: 'ops', acceptUnchained: [1, 2, 3] });
      expect(report.versions.map((v) => [v.version, v.result])).toEqual([
        [1, 'sealed'],
        [2, 'sealed'],
        [3, 'sealed'],
        [4, 'chained'],
        [5, 'chained'],
      ]);
      expect(JSON.parse(await readFile(path.join(root, 'CHAIN.json'), 'utf8'))).toMatchObject({ state: 'complete', legacy: [1, 2, 3] });
      expect((await new LocalRegistry(root).latestApproved())?.version).toBe(1);
      // With the marker made, writes carry no warning.
      expect((await new LocalRegistry(root).approve(5, 'ship', 'ann')).warnings).toBeUndefined();
    });

    it('(b) a sealed version later Rejected: deleting the Rejected entry and HEAD is tampering, not an interrupted migration', async () => {
      const keyed = new LocalRegistry(root, { auditKey: KEY });
      await keyed.migrate({ by: 'ops' });
      await keyed.reject(1, 'drift alarm', 'ann');
      await rm(path.join(auditDir(1), '000004.json'));
      await rm(path.join(auditDir(1), 'HEAD.json'));
      const fresh = new LocalRegistry(root, { auditKey: KEY });
      const err = await fresh.show(1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuditChainError);
      expect((err as Error).message).toContain("HEAD.json is missing after the genesis entry although this registry's migration is complete: the entries after it and HEAD.json were deleted (tampering)");
      expect((err as Error).message).not.toContain('re-run');
      const servable = await fresh.latestServable();
      expect(servable.latest).toBeUndefined();
      expect(servable.broken.map((b) => b.version)).toContain(1);
      const report = await fresh.migrate({ by: 'ops' });
      expect(report.versions[0]).toMatchObject({ version: 1, result: 'failed' });
      expect(await readdir(auditDir(1))).not.toContain('HEAD.json');
      await expect(new LocalRegistry(root, { auditKey: KEY }).show(1)).rejects.toThrow(/tampering/);
    });

    it('with the audit key, a marker rewritten by hand (reopened to `migrating`) is refused', async () => {
      const keyed = new LocalRegistry(root, { auditKey: KEY });
      await keyed.migrate({ by: 'ops' });
      await rm(path.join(auditDir(1), 'HEAD.json'));
      await writeFile(path.join(root, 'CHAIN.json'), `${JSON.stringify({ layout: 'pricesense.registry.chain/1', state: 'migrating', legacy: [1, 2, 3] })}\n`);
      await expect(new LocalRegistry(root, { auditKey: KEY }).migrate()).rejects.toThrow(/CHAIN\.json's HMAC does not verify under PRICESENSE_REGISTRY_AUDIT_KEY/);
      expect(await readdir(auditDir(1))).not.toContain('HEAD.json');
      // Readers pass over the version it concerns and go on serving the others.
      const servable = await new LocalRegistry(root, { auditKey: KEY }).latestServable();
      expect(servable.broken).toEqual([{ version: 1, problem: expect.stringContaining("CHAIN.json's HMAC does not verify") }]);
    });
  });

  it('with the audit key, the HEAD a migration writes carries its HMAC', async () => {
    const keyed = new LocalRegistry(root, { auditKey: 'k'.repeat(32) });
    await keyed.migrate({ by: 'ops' });
    expect((await new LocalRegistry(root, { auditKey: 'k'.repeat(32) }).show(2)).status).toBe('Rejected');
    await expect(new LocalRegistry(root, { auditKey: 'other' }).show(2)).rejects.toThrow(/HMAC does not verify/);
  });
});
