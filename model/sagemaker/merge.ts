/**
 * Merging the partial forests of a multi-host training job into one forest: trees in
 * global tree-index order, after checking that the parts come from the same training
 * (classes, features and their encodings, hyperparameters, seed, data set, trainer)
 * and that their tree ranges tile [0, trees) exactly.
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../core/errors';
import { canonicalJson, parseForest, sealForest } from '../forest-file';
import type { ForestFileV1 } from '../format';
import { PART_FILE_PATTERN } from './config';
import { readTarMembers } from './tar';

export interface PartialForest {
  /** Where it came from, for messages. */
  readonly source: string;
  readonly forest: ForestFileV1;
}

/** What must be identical across parts: everything that decides what a tree means or how it was grown. */
const SHARED: { readonly name: string; readonly of: (f: ForestFileV1) => unknown }[] = [
  { name: 'format version', of: (f) => f.formatVersion },
  { name: 'classes', of: (f) => f.classes },
  { name: 'features (names, kinds and categorical encodings)', of: (f) => f.features },
  { name: 'aggregation', of: (f) => [f.aggregation, f.voteTieBreak ?? null] },
  { name: 'trainer', of: (f) => f.training.trainer },
  { name: 'hyperparameters', of: (f) => f.training.hyperparameters },
  { name: 'seed', of: (f) => f.training.seed },
  { name: 'dataset (datasetManifestSha256)', of: (f) => f.training.datasetManifestSha256 },
  { name: 'training rows', of: (f) => f.training.rows },
  { name: 'feature statistics', of: (f) => f.featureStats },
];

function rangeOf(p: PartialForest): { start: number; end: number; trees: number } {
  const r = p.forest.training.treeRange;
  if (r) {
    if (r.end - r.start !== p.forest.trees.length) {
      throw new UserError(`${p.source}: training.treeRange [${r.start}, ${r.end}) names ${r.end - r.start} trees but the file holds ${p.forest.trees.length}`);
    }
    return r;
  }
  // A whole forest is the part [0, trees).
  const trees = p.forest.trees.length;
  return { start: 0, end: trees, trees };
}

/**
 * One sealed forest from partial forests (any order). Errors (UserError) name the parts
 * and what differs, or the gap or overlap in the tree ranges.
 */
export function mergePartialForests(parts: readonly PartialForest[], options: { metrics?: Record<string, unknown> } = {}): ForestFileV1 {
  if (parts.length === 0) throw new UserError('no partial forests to merge');
  const first = parts[0];
  for (const check of SHARED) {
    const expected = canonicalJson(check.of(first.forest) ?? null);
    for (const p of parts.slice(1)) {
      if (canonicalJson(check.of(p.forest) ?? null) !== expected) {
        throw new UserError(`cannot merge ${p.source} with ${first.source}: their ${check.name} differ, so they are not parts of the same training run`);
      }
    }
  }
  const codeVersions = new Set(parts.map((p) => p.forest.training.codeVersion ?? null));
  if (codeVersions.size > 1) throw new UserError(`cannot merge partial forests built by different code versions: ${[...codeVersions].join(', ')}`);

  const ranged = parts.map((p) => ({ p, r: rangeOf(p) })).sort((a, b) => a.r.start - b.r.start || a.r.end - b.r.end);
  const totals = new Set(ranged.map(({ r }) => r.trees));
  if (totals.size > 1) throw new UserError(`partial forests disagree on the forest size: ${ranged.map(({ p, r }) => `${p.source} says ${r.trees}`).join(', ')}`);
  const total = ranged[0].r.trees;
  let next = 0;
  let previous: PartialForest | undefined;
  for (const { p, r } of ranged) {
    if (r.start > next) throw new UserError(`partial forests leave trees [${next}, ${r.start}) of ${total} missing (gap before ${p.source}, which starts at ${r.start}): a host's part is absent`);
    if (r.start < next) {
      throw new UserError(`partial forests overlap: ${p.source} holds trees [${r.start}, ${r.end}) but ${previous!.source} already covers trees up to ${next}`);
    }
    next = r.end;
    previous = p;
  }
  if (next !== total) throw new UserError(`partial forests cover trees [0, ${next}) of ${total}: trees [${next}, ${total}) are missing (a host's part is absent)`);

  const base = first.forest;
  const { treeRange: _range, ...training } = base.training;
  const createdAt = ranged.map(({ p }) => p.forest.training.createdAt).sort().at(-1)!;
  return sealForest({
    ...base,
    trees: ranged.flatMap(({ p }) => p.forest.trees),
    training: { ...training, createdAt },
    metrics: options.metrics ?? {
      merge: { parts: ranged.map(({ p, r }) => ({ start: r.start, end: r.end, sha256: p.forest.sha256, source: path.basename(p.source) })) },
    },
  });
}

/**
 * The partial forests in a directory: forest-part-*.json files, and the same inside any
 * *.tar.gz there (SageMaker's model.tar.gz). Each is validated (schema, structure, sha256).
 */
export async function readPartialForests(dir: string): Promise<PartialForest[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw new UserError(`cannot read the partial forests directory ${dir}: ${(e as Error).message}`);
  }
  const parts: PartialForest[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (PART_FILE_PATTERN.test(name)) {
      parts.push({ source: file, forest: parseForest(await readFile(file), file) });
    } else if (/\.(tar\.gz|tgz|tar)$/i.test(name)) {
      // Streamed from the file: only the partial forests are held, never the archive.
      for (const entry of await readTarMembers(createReadStream(file), file, (member) => PART_FILE_PATTERN.test(member.split('/').at(-1)!))) {
        const source = `${file}:${entry.name}`;
        parts.push({ source, forest: parseForest(entry.data, source) });
      }
    }
  }
  if (parts.length === 0) throw new UserError(`no partial forests in ${dir}: expected forest-part-*.json files or a model.tar.gz holding them`);
  return parts;
}
