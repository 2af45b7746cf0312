/**
 * The platform project's program as a function: infra/index.ts runs it once under the
 * Pulumi engine; the tests run it under the mock engine, once per stack and mode.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { parseReleasedStackConfig } from './config';
import { createAwsContext } from './aws-context';
import { REGION_ZONES_FILTER, stackZones } from './zones';
import { loadStackConfig } from './load-config';
import { buildPlatform, extendPlatform, stackOutputs, type PlatformExtension } from './platform';
import { sagemakerPipelineExtension } from './sagemaker-pipeline';

/** Later concerns plug in here (the SageMaker pipeline and its EventBridge rule). */
const EXTENSIONS: PlatformExtension[] = [sagemakerPipelineExtension];

/** Builds the platform for the running stack; returns its outputs (null, not undefined, when absent: shown as such, no warning). */
export async function platformProgram(): Promise<Record<string, pulumi.Input<unknown>>> {
  const cfg = loadStackConfig(parseReleasedStackConfig);
  const ctx = createAwsContext(cfg);
  const zones = await stackZones(cfg.network, cfg.region, () => aws.getAvailabilityZones({ filters: REGION_ZONES_FILTER }, { provider: ctx.provider }));
  if (zones.pinWith !== undefined) void pulumi.log.warn(zones.pinWith);
  const platform = buildPlatform(cfg, ctx, zones.zoneIds);
  const outputs = { ...stackOutputs(platform), ...extendPlatform(platform, EXTENSIONS) };
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v ?? null]));
}
