/**
 * Entry point of the Pulumi program (Pulumi.yaml `main: infra/`). Reads and validates
 * the stack config, builds the platform and exports the names other parts consume.
 */
import * as pulumi from '@pulumi/pulumi';
import { ConfigError, parseStackConfig, type StackConfig } from './config';
import { buildPlatform, extendPlatform, stackOutputs, type PlatformExtension } from './platform';
import { sagemakerPipelineExtension } from './sagemaker-pipeline';

export { buildPlatform, extendPlatform, stackOutputs } from './platform';
export type { Platform, PlatformExtension } from './platform';

/** Later concerns plug in here (the SageMaker pipeline and its EventBridge rule). */
const EXTENSIONS: PlatformExtension[] = [sagemakerPipelineExtension];

function loadConfig(): StackConfig {
  try {
    return parseStackConfig(pulumi.getStack(), pulumi.getProject(), pulumi.runtime.allConfig());
  } catch (err) {
    // RunError: Pulumi prints the message alone, without a stack trace.
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

const platform = buildPlatform(loadConfig());
const outputs = { ...stackOutputs(platform), ...extendPlatform(platform, EXTENSIONS) };

// null (not undefined) when there is no public endpoint / no app: shown as such, no warning.
export const apiEndpoint = outputs.apiEndpoint ?? null;
export const apiImage = outputs.apiImage ?? null;
export const ecrRepositoryUrl = outputs.ecrRepositoryUrl;
export const lakeBucket = outputs.lakeBucket;
export const lakeUri = outputs.lakeUri;
export const modelPackageGroup = outputs.modelPackageGroup;
export const registryUri = outputs.registryUri;
export const sagemakerExecutionRoleArn = outputs.sagemakerExecutionRoleArn;
export const clusterName = outputs.clusterName;
export const kubeconfig = outputs.kubeconfig;
export const alertTopicArn = outputs.alertTopicArn;
export const dashboardName = outputs.dashboardName;
export const region = outputs.region;
export const sagemakerPipelineName = outputs.sagemakerPipelineName;
