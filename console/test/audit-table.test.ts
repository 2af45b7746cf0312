import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalRegistry } from '../../model/registry';
import { legacyTrail, writeFixtureForest, writeLegacyLocalVersion } from '../../model/test/registry-fixtures';
import { auditTable } from '../pages/version';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'console-audit-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The chain column of each rendered audit row, in order. */
function chainColumn(markup: string): string[] {
  return [...markup.matchAll(/<td data-chain="([a-z]+)">/g)].map((m) => m[1]);
}

describe('the version page audit table', () => {
  it('shows entries written before the chain as sealed by the migration entry, never as linked', async () => {
    const root = path.join(dir, 'registry');
    // Registered then approved by an earlier pricesense (no chain), migrated, then rejected.
    await writeLegacyLocalVersion(root, 1, await writeFixtureForest(dir, 'v1.json', { seed: 1, gatesPassed: true }), legacyTrail('2026-06-01T09:00:00.000Z', 'olga', 'Approved'));
    const registry = new LocalRegistry(root);
    await registry.migrate({ by: 'ops' });
    await registry.reject(1, 'rolled back', 'ann');
    const markup = auditTable(await registry.show(1)).text;
    expect(chainColumn(markup)).toEqual(['sealed', 'sealed', 'linked', 'linked']);
    expect(markup).toContain('2 entries, each linked');
    expect(markup).toContain('2 earlier entries were written before the chain and are sealed as found by the migration entry');
  });

  it('marks every entry of a trail chained from its start as linked', async () => {
    const root = path.join(dir, 'fresh');
    const registry = new LocalRegistry(root);
    const v = await registry.register(await writeFixtureForest(dir, 'v2.json', { seed: 2, gatesPassed: true }), { by: 'ann' });
    await registry.approve(v.version, 'ship', 'ann');
    const markup = auditTable(await registry.show(v.version)).text;
    expect(chainColumn(markup)).toEqual(['linked', 'linked']);
    expect(markup).not.toContain('sealed');
  });
});
