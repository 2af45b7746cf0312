/**
 * Small, valid forest files for the registry tests: one numeric feature, one leaf,
 * sealed with the real forest-file code, so each `seed` gives a distinct digest.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION } from '../format';
import { sealForest, writeForestFile } from '../forest-file';
import { DEFAULT_GATES } from '../gates';
import { readCandidate } from '../registry/common';
import type { ModelStatus } from '../registry/types';

export interface FixtureOptions {
  readonly seed?: number;
  /** undefined: no gate results (an unevaluated forest). */
  readonly gatesPassed?: boolean;
  readonly accuracy?: number;
  readonly datasetManifestSha256?: string | null;
}

export async function writeFixtureForest(dir: string, name: string, options: FixtureOptions = {}): Promise<string> {
  const seed = options.seed ?? 1;
  const metrics: Record<string, unknown> = { accuracy: options.accuracy ?? 0.8, macroF1: 0.75, logLoss: 0.6 };
  if (options.gatesPassed !== undefined) {
    // The GateReport shape of model/gates.ts, as train writes it.
    const accuracy = options.accuracy ?? 0.8;
    const required = options.gatesPassed ? 0.8 : 0.9;
    metrics.gates = {
      passed: options.gatesPassed,
      split: 'test',
      config: DEFAULT_GATES,
      champion: null,
      results: [
        { gate: 'macroF1', passed: true, required: 0.7, actual: 0.75, shortfall: 0 },
        { gate: 'accuracy', passed: options.gatesPassed, required, actual: accuracy, shortfall: options.gatesPassed ? 0 : required - accuracy },
      ],
    };
  }
  const forest = sealForest({
    format: FOREST_FORMAT_ID,
    formatVersion: FOREST_FORMAT_VERSION,
    classes: ['Low', 'Medium', 'High'],
    features: [{ name: 'basket_value', kind: 'numeric' }],
    aggregation: 'soft',
    trees: [{ feature: [-1], threshold: [0], left: [-1], right: [-1], defaultLeft: [0], value: [0.25, 0.25, 0.5], count: [10], catBits: [] }],
    training: {
      trainer: 'fixture',
      hyperparameters: { trees: 1, maxDepth: seed % 7, seed },
      seed,
      datasetManifestSha256: options.datasetManifestSha256 === undefined ? 'a'.repeat(64) : options.datasetManifestSha256,
      rows: 10,
      createdAt: '2024-01-01T00:00:00.000Z',
      codeVersion: 'fixture-commit',
    },
    featureStats: {},
    metrics,
  });
  const file = path.join(dir, name);
  await writeForestFile(file, forest);
  return file;
}

/** One audit entry as pricesense wrote it before the chain: `{ at, by, from, to, note }`. */
export interface LegacyEntry {
  readonly at: string;
  readonly by: string;
  readonly from: ModelStatus | null;
  readonly to: ModelStatus;
  readonly note: string;
}

/**
 * A local version exactly as pricesense wrote it before the audit chain (commit d0f6ca3^,
 * model/registry/local.ts, register() and transition()): forest.json byte for byte,
 * version.json (`JSON.stringify(record, null, 2)` + newline, layout
 * pricesense.registry.local/1), audit/000001.json … one `JSON.stringify(entry)` + newline
 * per change, no HEAD.json, and an empty .staging/. `trail[0]` is the registration. (Checked
 * once against that commit's own LocalRegistry: byte-identical trees.)
 */
export async function writeLegacyLocalVersion(root: string, version: number, forestPath: string, trail: readonly LegacyEntry[]): Promise<void> {
  const candidate = await readCandidate(forestPath, { by: trail[0].by, note: trail[0].note });
  const dir = path.join(root, 'versions', String(version).padStart(6, '0'));
  await mkdir(path.join(root, '.staging'), { recursive: true });
  await mkdir(path.join(dir, 'audit'), { recursive: true });
  await writeFile(path.join(dir, 'forest.json'), candidate.bytes);
  const record = {
    layout: 'pricesense.registry.local/1',
    forestSha256: candidate.forest.sha256,
    artifactSha256: candidate.artifactSha256,
    formatVersion: candidate.forest.formatVersion,
    metrics: candidate.forest.metrics,
    lineage: { ...candidate.lineage, registeredAt: trail[0].at },
    artifact: 'forest.json',
  };
  await writeFile(path.join(dir, 'version.json'), `${JSON.stringify(record, null, 2)}\n`);
  for (const [i, e] of trail.entries()) {
    const entry: LegacyEntry = { at: e.at, by: e.by, from: e.from, to: e.to, note: e.note };
    await writeFile(path.join(dir, 'audit', `${String(i + 1).padStart(6, '0')}.json`), `${JSON.stringify(entry)}\n`);
  }
}

/** The key and body of an audit object as the SageMaker backend wrote it before the chain (d0f6ca3^, appendAudit). */
export function legacySageMakerAuditObject(group: string, version: number, entry: LegacyEntry, random: string): { key: string; body: string } {
  const stamp = entry.at.replace(/[-:.]/g, '');
  const e: LegacyEntry = { at: entry.at, by: entry.by, from: entry.from, to: entry.to, note: entry.note };
  return { key: `artifacts/registry/${group}/audit/${String(version).padStart(6, '0')}/${stamp}-${random}.json`, body: `${JSON.stringify(e)}\n` };
}

/** A registration, then changes, a minute apart from `start`: a legacy trail. */
export function legacyTrail(start: string, by: string, ...moves: ModelStatus[]): LegacyEntry[] {
  const t0 = Date.parse(start);
  const trail: LegacyEntry[] = [{ at: new Date(t0).toISOString(), by, from: null, to: 'PendingManualApproval', note: 'registered by an earlier pricesense' }];
  for (const [i, to] of moves.entries()) trail.push({ at: new Date(t0 + (i + 1) * 60_000).toISOString(), by, from: trail[i].to, to, note: `${to.toLowerCase()} before the upgrade` });
  return trail;
}
