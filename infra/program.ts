/**
 * The platform project's program as a function: infra/index.ts runs it once under the
 * Pulumi engine; the tests run it under the mock engine, once per stack and mode.
 */
import type * as pulumi from '@pulumi/pulumi';
import { parseReleasedStackConfig } from './config';
import { loadStackConfig } from './load-config';
import { buildPlatform, extendPlatform, stackOutputs, type PlatformExtension } from './platform';
import { sagemakerPipelineExtension } from './sagemaker-pipeline';

/** Later concerns plug in here (the SageMaker pipeline and its EventBridge rule). */
const EXTENSIONS: PlatformExtension[] = [sagemakerPipelineExtension];

/** Builds the platform for the running stack; returns its outputs (null, not undefined, when absent: shown as such, no warning). */
export function platformProgram(): Record<string, pulumi.Input<unknown>> {
  const platform = buildPlatform(loadStackConfig(parseReleasedStackConfig));
  const outputs = { ...stackOutputs(platform), ...extendPlatform(platform, EXTENSIONS) };
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v ?? null]));
}
