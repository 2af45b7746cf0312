/**
 * Opening a registry by URI: a local directory (the default, `.pricesense/registry`,
 * or PRICESENSE_REGISTRY; `file://` accepted) or `sagemaker://<model-package-group>`.
 */
import path from 'node:path';
import type { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { SETTINGS, setting } from '../../core/config';
import { UserError } from '../../core/errors';
import { openLake } from '../../etl/lake';
import type { Lake } from '../../etl/lake/types';
import { LocalRegistry } from './local';
import type { Registry } from './types';

export * from './types';
import type { ArtifactLimitOptions } from './common';

export { ArtifactNotReadableError, ChecksumMismatchError, CorruptVersionError, VersionNotReadableError, MAX_STORED_ARTIFACT_BYTES, gateFailure, GateOverrideRequiredError, gatesToOverride, hasGateResults, InvalidArtifactError, parseStatus, VersionNotFoundError } from './common';
export { AuditChainError, ConcurrentChangeError, UnmigratedVersionError } from './audit-chain';
export { LocalRegistry } from './local';

export const DEFAULT_REGISTRY = SETTINGS.registry.fallback;

export interface OpenRegistryOptions extends ArtifactLimitOptions {
  /** SageMaker backend: the lake for artifacts (default: openLake(), i.e. PRICESENSE_LAKE). */
  readonly lake?: Lake;
  /** SageMaker backend: a preconfigured client (default: adaptive retries, region and credentials from the environment). */
  readonly sagemaker?: SageMakerClient;
  /** SageMaker backend: the API image recorded in the model package (default PRICESENSE_IMAGE). */
  readonly image?: string;
}

/** The registry URI to use: the argument, else the `registry` setting (PRICESENSE_REGISTRY, the config file), else `.pricesense/registry`. */
export function registryUri(uri?: string): string {
  return setting('registry', uri);
}

export async function openRegistry(uri?: string, options: OpenRegistryOptions = {}): Promise<Registry> {
  const target = registryUri(uri);
  const sm = /^sagemaker:\/\/(.*)$/i.exec(target);
  if (sm) {
    const group = sm[1].replace(/\/+$/, '');
    // Loaded lazily: local use never pays for the SageMaker SDK.
    const { SageMakerRegistry } = await import('./sagemaker');
    const lake = options.lake ?? (await openLake());
    return new SageMakerRegistry(group, { lake, client: options.sagemaker, image: options.image, maxArtifactBytes: options.maxArtifactBytes, artifactLimitName: options.artifactLimitName });
  }
  const limits = { maxArtifactBytes: options.maxArtifactBytes, artifactLimitName: options.artifactLimitName };
  if (/^file:\/\//i.test(target)) return new LocalRegistry(decodeURIComponent(target.replace(/^file:\/\//i, '')), limits);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    throw new UserError(`unsupported registry URI '${target}': use a local directory, file:///path, or sagemaker://<model-package-group>`);
  }
  return new LocalRegistry(path.resolve(target), limits);
}
