/**
 * Backend-agnostic conformance suite for Registry implementations (model/registry/types.ts):
 * what each method returns and throws, asserted identically against every backend. Each
 * backend's test file calls describeRegistryConformance with a factory returning a fresh,
 * empty registry plus a way to corrupt a stored artifact behind the registry's back.
 *
 * The contract, method by method:
 * - register(file, {by, note, force}): the next version number (1, 2, …), PendingManualApproval,
 *   forestSha256 / artifactSha256 / formatVersion / metrics / lineage from the file, audit =
 *   [registration entry, from null]. Throws UserError for an unreadable or invalid file and for
 *   a forest whose gates failed unless force (then lineage.forced and a FORCED audit note).
 * - approve / reject(version, note, by): the version after the move, one audit entry appended.
 *   Pending → Approved | Rejected, Approved ↔ Rejected. UserError for a move to the current
 *   status or out of the allowed set; VersionNotFoundError for an unknown version; UserError
 *   for a version that is not a positive integer.
 * - list({status}): every version, ascending, optionally one status; [] when empty.
 * - show(version): the version; VersionNotFoundError / UserError as above.
 * - latestApproved(): the highest Approved version, undefined when none.
 * - latestServable(): { latest: as latestApproved, broken: [] } on an intact registry.
 * - fetch(version): the registered bytes; ChecksumMismatchError (an InvalidArtifactError,
 *   exit code 3) when the stored bytes changed; VersionNotFoundError for an unknown version.
 * - verify(): { registry: uri, ok, versions: [{version, status, problems, warnings}] },
 *   ascending; ok false and a problem naming the digest when an artifact changed.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/errors';
import { sha256Hex } from '../registry/common';
import { ChecksumMismatchError, InvalidArtifactError, VersionNotFoundError, type ModelVersion, type Registry } from '../registry';
import { writeFixtureForest } from './registry-fixtures';

export interface RegistryFixture {
  readonly registry: Registry;
  /** Overwrites the stored artifact of a version with other bytes, as someone with write access to the store could. */
  readonly tamperArtifact: (version: ModelVersion, bytes: Buffer) => Promise<void>;
  /** The registry's maxArtifactBytes (the fixture sets it low, so that an artifact over it is cheap to store). */
  readonly maxArtifactBytes: number;
  readonly cleanup?: () => Promise<void>;
}

export function describeRegistryConformance(name: string, makeRegistry: () => Promise<RegistryFixture>): void {
  describe(`Registry conformance: ${name}`, () => {
    let fx: RegistryFixture;
    let registry: Registry;
    let dir: string;

    beforeEach(async () => {
      fx = await makeRegistry();
      registry = fx.registry;
      dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-registry-conformance-'));
    });
    afterEach(async () => {
      await fx.cleanup?.();
      await rm(dir, { recursive: true, force: true });
    });

    const forest = (seed: number, gatesPassed = true): Promise<string> => writeFixtureForest(dir, `f${seed}-${String(gatesPassed)}.json`, { seed, gatesPassed });
    const registerSeeds = async (...seeds: number[]): Promise<void> => {
      for (const seed of seeds) await registry.register(await forest(seed), { by: 'trainer' });
    };

    it('an empty registry lists nothing, has nothing approved, verifies ok and knows no version', async () => {
      expect(await registry.list()).toEqual([]);
      expect(await registry.latestApproved()).toBeUndefined();
      expect(await registry.latestServable()).toEqual({ latest: undefined, broken: [] });
      expect(await registry.verify()).toEqual({ registry: registry.uri, ok: true, versions: [] });
      await expect(registry.show(1)).rejects.toBeInstanceOf(VersionNotFoundError);
      await expect(registry.fetch(1)).rejects.toBeInstanceOf(VersionNotFoundError);
      await expect(registry.approve(1, 'ok')).rejects.toBeInstanceOf(VersionNotFoundError);
    });

    it('register: the next version, PendingManualApproval, digests and lineage from the file, a registration audit entry', async () => {
      const file = await forest(3);
      const bytes = await readFile(file);
      const v = await registry.register(file, { by: 'alice', note: 'first forest' });
      expect(v).toMatchObject({
        version: 1,
        status: 'PendingManualApproval',
        forestSha256: (JSON.parse(bytes.toString('utf8')) as { sha256: string }).sha256,
        artifactSha256: sha256Hex(bytes),
        formatVersion: 1,
        metrics: { accuracy: 0.8, gates: { passed: true } },
        lineage: { datasetManifestSha256: 'a'.repeat(64), codeVersion: 'fixture-commit', hyperparameters: { trees: 1, maxDepth: 3, seed: 3 }, registeredBy: 'alice', forced: false },
      });
      expect(v.audit).toEqual([{ at: v.lineage.registeredAt, by: 'alice', from: null, to: 'PendingManualApproval', note: 'first forest' }]);
      expect((await registry.register(await forest(4))).version).toBe(2);
      expect(await registry.show(1)).toEqual(v);
    });

    it('register: UserError for a missing or invalid file and for failed gates without force; force records itself', async () => {
      await expect(registry.register(path.join(dir, 'missing.json'))).rejects.toThrow(UserError);
      await expect(registry.register(path.join(dir, 'missing.json'))).rejects.toThrow(/cannot read model file .*missing\.json': no such file/);
      const failed = await forest(9, false);
      await expect(registry.register(failed)).rejects.toThrow(/refusing to register .*quality gate failed.*--force/);
      expect(await registry.list()).toEqual([]);
      const v = await registry.register(failed, { force: true, note: 'demo', by: 'bob' });
      expect(v.lineage.forced).toBe(true);
      expect(v.audit[0].note).toMatch(/^demo \| FORCED registration despite failed gates/);
    });

    it('approve / reject: the moved version with one audit entry appended; rollback is Approved ↔ Rejected', async () => {
      await registerSeeds(1);
      const approved = await registry.approve(1, 'looks good', 'carol');
      expect(approved.status).toBe('Approved');
      expect(approved.audit.map((e) => [e.from, e.to, e.by, e.note])).toEqual([
        [null, 'PendingManualApproval', 'trainer', ''],
        ['PendingManualApproval', 'Approved', 'carol', 'looks good'],
      ]);
      const rejected = await registry.reject(1, 'rollback', 'dave');
      expect(rejected.status).toBe('Rejected');
      expect(rejected.audit.at(-1)).toMatchObject({ from: 'Approved', to: 'Rejected', by: 'dave', note: 'rollback' });
      expect((await registry.approve(1, 'undo rollback')).status).toBe('Approved');
      expect((await registry.show(1)).audit).toHaveLength(4);
    });

    it('approve / reject: UserError for a move to the current status or out of the allowed set, nothing recorded', async () => {
      await registerSeeds(1, 2);
      await registry.approve(1, 'ok');
      await expect(registry.approve(1, 'again')).rejects.toThrow(/version 1 is already Approved: nothing to change/);
      await registry.reject(2, 'no');
      await expect(registry.reject(2, 'again')).rejects.toThrow(UserError);
      expect((await registry.show(1)).audit).toHaveLength(2);
      expect((await registry.show(2)).audit).toHaveLength(2);
    });

    it('every method taking a version: VersionNotFoundError for an unknown one, UserError for one that is not a positive integer', async () => {
      await registerSeeds(1);
      const calls: [string, (v: number) => Promise<unknown>][] = [
        ['show', (v) => registry.show(v)],
        ['fetch', (v) => registry.fetch(v)],
        ['approve', (v) => registry.approve(v, 'n')],
        ['reject', (v) => registry.reject(v, 'n')],
      ];
      for (const [what, call] of calls) {
        const notFound = await call(7).then(() => undefined, (err: unknown) => err);
        expect([what, notFound instanceof VersionNotFoundError, (notFound as VersionNotFoundError).version]).toEqual([what, true, 7]);
        expect([what, (notFound as Error).message]).toEqual([what, expect.stringMatching(/version 7 not found/)]);
        for (const bad of [0, -1, 1.5, Number.NaN]) {
          const invalid = await call(bad).then(() => undefined, (err: unknown) => err);
          expect([what, bad, invalid instanceof UserError, (invalid as Error).message]).toEqual([what, bad, true, expect.stringMatching(/invalid model version .*expected a positive integer/)]);
        }
      }
    });

    it('list: every version ascending, optionally one status', async () => {
      await registerSeeds(1, 2, 3);
      await registry.approve(2, 'good');
      await registry.reject(3, 'bad');
      expect((await registry.list()).map((v) => [v.version, v.status])).toEqual([[1, 'PendingManualApproval'], [2, 'Approved'], [3, 'Rejected']]);
      expect((await registry.list({ status: 'Approved' })).map((v) => v.version)).toEqual([2]);
      expect((await registry.list({ status: 'PendingManualApproval' })).map((v) => v.version)).toEqual([1]);
      expect((await registry.list({ status: 'Rejected' })).map((v) => v.version)).toEqual([3]);
    });

    it('latestApproved / latestServable: the highest Approved version; rejecting it rolls back to the previous one', async () => {
      await registerSeeds(1, 2, 3);
      expect(await registry.latestApproved()).toBeUndefined();
      await registry.approve(1, 'a');
      await registry.approve(2, 'b');
      expect((await registry.latestApproved())?.version).toBe(2);
      const servable = await registry.latestServable();
      expect([servable.latest?.version, servable.broken]).toEqual([2, []]);
      await registry.reject(2, 'rollback');
      expect((await registry.latestApproved())?.version).toBe(1);
      expect(await registry.latestApproved()).toEqual(await registry.show(1));
    });

    it('fetch: the registered bytes; ChecksumMismatchError (exit code 3) once the stored bytes change', async () => {
      const file = await forest(5);
      const v = await registry.register(file);
      expect(await registry.fetch(1)).toEqual(await readFile(file));
      await fx.tamperArtifact(v, Buffer.from('{"tampered":true}'));
      const err = await registry.fetch(1).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ChecksumMismatchError);
      expect(err).toBeInstanceOf(InvalidArtifactError);
      expect(err).toMatchObject({ kind: 'integrity', expected: v.artifactSha256, actual: sha256Hex('{"tampered":true}') });
    });

    it('refuses an artifact over maxArtifactBytes on its size, before reading it: fetch says which limit, verify reports it', async () => {
      const v = await registry.register(await forest(6));
      const max = fx.maxArtifactBytes;
      await fx.tamperArtifact(v, Buffer.alloc(max, 0x20)); // whitespace: no larger than the limit, read (and then refused by its digest)
      await expect(registry.fetch(1)).rejects.toBeInstanceOf(ChecksumMismatchError);
      await fx.tamperArtifact(v, Buffer.alloc(max + 1, 0x20));
      const err = await registry.fetchArtifact(1).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArtifactError);
      expect(err).toMatchObject({ kind: 'integrity' });
      const message = (err as Error).message;
      expect(message).toContain(
        `version 1's artifact ${v.artifactUri} is ${(max + 1).toLocaleString('en-US')} bytes, more than the ${max.toLocaleString('en-US')} bytes this registry client allows (its maxArtifactBytes option); it was refused on its size, before it was downloaded`,
      );
      await expect(registry.fetch(1)).rejects.toThrow(message);
      const report = await registry.verify();
      expect(report.ok).toBe(false);
      expect(report.versions[0].problems.join('\n')).toContain(message);
    });

    it('verify: every version ascending with its status; ok false naming the version whose artifact changed', async () => {
      await registerSeeds(1, 2);
      await registry.approve(2, 'ok');
      const clean = await registry.verify();
      expect(clean).toEqual({
        registry: registry.uri,
        ok: true,
        versions: [
          { version: 1, status: 'PendingManualApproval', problems: [], warnings: [] },
          { version: 2, status: 'Approved', problems: [], warnings: [] },
        ],
      });
      await fx.tamperArtifact(await registry.show(2), Buffer.from('changed'));
      const report = await registry.verify();
      expect(report.ok).toBe(false);
      expect(report.versions.map((c) => [c.version, c.problems.length > 0])).toEqual([[1, false], [2, true]]);
      expect(report.versions[1].problems.join('\n')).toMatch(new RegExp(sha256Hex('changed')));
    });
  });
}
