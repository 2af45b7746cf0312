/**
 * A model version ready to answer requests, and the shapes the request path uses to
 * pick one (Route). Everything derivable from the forest — the compiled walker, request
 * validators, response parts, drift windows, category sets — is built here once per
 * load, so a request only reads it. The model manager (api/model-manager.ts) decides
 * which ServedModel answers; the prediction layer (api/prediction.ts) uses it.
 */
import type { FeatureStats } from '../etl/gold-schema';
import type { FeatureSpec, ForestFileV1 } from '../model/format';
import type { LoadedForest } from '../model/forest-loader';
import type { ModelVersion } from '../model/registry/types';
import type { CompiledForest } from '../model/walker';
import type { ChallengerConfig, UnknownCategoryPolicy } from './config';
import { DriftMonitor } from './drift';
import type { Role } from './metrics';
import { ResponseEncoder } from './response-encoder';
import { RequestValidator } from './validation';

/** A categorical feature and the categories the model was trained on (anything else is unknown). */
export interface CategoricalFeature {
  readonly name: string;
  readonly known: ReadonlySet<string>;
}

export interface LoadPhases {
  fetch: number;
  parse: number;
  compile: number;
  validators: number;
}

export interface ServedModel {
  readonly name: string;
  readonly version: number;
  /** String(version): the metrics label and the OIP model_version. */
  readonly versionLabel: string;
  readonly sha256: string;
  readonly registryEntry: ModelVersion;
  readonly forest: CompiledForest;
  readonly features: readonly FeatureSpec[];
  readonly categorical: readonly CategoricalFeature[];
  readonly classes: readonly string[];
  readonly validator: RequestValidator;
  /** The constant parts of this model's single-row responses. */
  readonly encoder: ResponseEncoder;
  readonly drift: DriftMonitor;
  readonly training: ForestFileV1['training'];
  readonly evaluation: Record<string, unknown>;
  readonly featureStats: Record<string, FeatureStats>;
  readonly aggregation: string;
  readonly trees: number;
  readonly loadedAt: string;
  readonly loadSeconds: number;
  /** Where the load time went, in ms: registry fetch (with checksum), parse (schema + decode, in a worker thread), compile (packing there, adopting here), the rest (validators, drift). */
  readonly loadPhasesMs: LoadPhases;
}

export interface Challenger {
  readonly model: ServedModel;
  readonly mode: ChallengerConfig['mode'];
  readonly percent: number;
}

/** The models a request uses, captured once at its start. */
export interface Route {
  readonly model: ServedModel;
  readonly role: Exclude<Role, 'shadow'>;
  readonly shadow: ServedModel | undefined;
}

export interface BuildOptions {
  readonly name: string;
  readonly batchLimit: number;
  readonly driftWindow: number;
  readonly unknownCategories: UnknownCategoryPolicy;
  readonly started?: bigint;
  readonly phases?: Pick<LoadPhases, 'fetch' | 'parse'>;
}

export function msBetween(from: bigint, to: bigint): number {
  return Math.round(Number(to - from) / 1e4) / 100;
}

export function buildServedModel(loaded: LoadedForest, entry: ModelVersion, options: BuildOptions): ServedModel {
  const started = options.started ?? process.hrtime.bigint();
  const { summary: doc, forest } = loaded;
  const compiled = process.hrtime.bigint();
  const validator = new RequestValidator(doc.features, options.batchLimit, options.unknownCategories, { featureDefinitions: doc.training.featureDefinitions, label: `version ${entry.version}` });
  const drift = new DriftMonitor(doc.features, doc.featureStats ?? {}, options.driftWindow);
  const categorical: CategoricalFeature[] = [];
  for (const f of doc.features) if (f.kind === 'categorical') categorical.push({ name: f.name, known: new Set(f.categories) });
  const done = process.hrtime.bigint();
  return {
    name: options.name,
    version: entry.version,
    versionLabel: String(entry.version),
    sha256: doc.sha256,
    registryEntry: entry,
    forest,
    features: doc.features,
    categorical,
    classes: doc.classes,
    validator,
    encoder: new ResponseEncoder({ name: options.name, version: entry.version, sha256: doc.sha256, classes: doc.classes }),
    drift,
    training: doc.training,
    evaluation: doc.metrics,
    featureStats: doc.featureStats,
    aggregation: doc.aggregation,
    trees: forest.treeCount,
    loadedAt: new Date().toISOString(),
    loadSeconds: Number(done - started) / 1e9,
    loadPhasesMs: { fetch: options.phases?.fetch ?? 0, parse: options.phases?.parse ?? 0, compile: Math.round((loaded.phasesMs.pack + loaded.phasesMs.adopt) * 100) / 100, validators: msBetween(compiled, done) },
  };
}
