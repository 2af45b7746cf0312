/**
 * The model a batch job scores with: a forest file, or a registry version ("latest"
 * being the latest Approved one), loaded for scoring (model/forest-loader.ts).
 */
import { readFile } from 'node:fs/promises';
import { UserError } from '../core/errors';
import { loadForest } from './forest-loader';
import { forestBytesOfArtifact, isGzip } from './sagemaker/tar';
import type { Registry } from './registry/types';
import type { CompiledForest } from './walker';

export interface ScoringModel {
  readonly forest: CompiledForest;
  /** The registry version, or null for a model read from a file. */
  readonly version: number | null;
  /** Where it came from, for messages and reports. */
  readonly source: string;
  /** The feature-definition version it was trained with (training.featureDefinitions): raw transaction lines are scored only when it is this code's. */
  readonly featureDefinitions: string | undefined;
}

/** A forest file, or a SageMaker model.tar.gz holding forest.json. */
export async function scoringModelFromFile(file: string): Promise<ScoringModel> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UserError(err.code === 'ENOENT' ? `model file not found: ${file}` : `cannot read model file ${file}: ${err.message}`);
  }
  const source = isGzip(bytes) ? `${file}:forest.json` : file;
  const { forest, summary } = loadForest(await forestBytesOfArtifact(bytes, file), source);
  return { forest, version: null, source, featureDefinitions: summary.training.featureDefinitions };
}

/** A registry version ("latest": the latest Approved), its bytes verified by the registry. */
export async function scoringModelFromRegistry(registry: Registry, version: string): Promise<ScoringModel> {
  let entry;
  if (version === 'latest') {
    entry = await registry.latestApproved();
    if (!entry) throw new UserError(`no Approved version in ${registry.uri}: approve one, or name a version`);
  } else {
    if (!/^\d+$/.test(version) || Number(version) < 1) throw new UserError(`invalid version '${version}': expected a positive integer or latest`);
    entry = await registry.show(Number(version));
  }
  const bytes = await registry.fetch(entry.version);
  const source = `${registry.uri} version ${entry.version}`;
  const { forest, summary } = loadForest(bytes, source, { registryVerifiedSha256: entry.forestSha256 });
  return { forest, version: entry.version, source, featureDefinitions: summary.training.featureDefinitions };
}
