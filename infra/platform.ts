/**
 * Wires the components together in dependency order. One component per concern; later
 * concerns (the SageMaker pipeline and its EventBridge rule) plug in as extensions that
 * receive the built platform, so adding them touches no existing component.
 */
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from './config';
import { type AwsContext, createAwsContext } from './aws-context';
import { Network } from './network';
import { DataLake } from './data-lake';
import { ImageRegistry } from './image-registry';
import { ModelRegistry, modelPackageGroupArn } from './model-registry';
import { Monitoring } from './monitoring';
import { Cluster } from './cluster';
import { App } from './app';
import { Cost } from './cost';

export interface Platform {
  readonly config: StackConfig;
  readonly aws: AwsContext;
  readonly network: Network;
  readonly lake: DataLake;
  readonly imageRegistry: ImageRegistry;
  readonly modelRegistry: ModelRegistry;
  readonly monitoring: Monitoring;
  readonly cluster: Cluster;
  /** Absent until an image is configured (app.image.tag or app.image.digest). */
  readonly app: App | undefined;
  readonly cost: Cost;
}

/**
 * A later concern, e.g. `(p) => new SageMakerPipeline('pipeline', { lake: p.lake,
 * modelRegistry: p.modelRegistry, aws: p.aws })`. It may return extra stack outputs.
 */
export type PlatformExtension = (platform: Platform) => Record<string, pulumi.Input<unknown>> | void;

export function clusterNameFor(stack: string): string {
  return `pricesense-${stack}`;
}

export function buildPlatform(cfg: StackConfig): Platform {
  const ctx = createAwsContext(cfg);
  const aws = { providers: { aws: ctx.provider } };
  const clusterName = clusterNameFor(cfg.stack);

  const network = new Network('network', {
    cidr: cfg.network.cidr,
    azCount: cfg.network.azCount,
    endpointAzCount: cfg.network.endpointAzCount,
    region: cfg.region,
    clusterName,
  }, aws);

  const lake = new DataLake('lake', { tier: cfg.tier, ...cfg.lake }, aws);
  const imageRegistry = new ImageRegistry('images', { tier: cfg.tier, stack: cfg.stack, ...cfg.imageRegistry }, aws);
  const modelRegistry = new ModelRegistry('models', {
    stack: cfg.stack,
    lake,
    imageRepositoryArn: imageRegistry.repositoryArn,
    aws: ctx,
  }, aws);

  const monitoring = new Monitoring('monitoring', {
    stack: cfg.stack,
    clusterName,
    ...cfg.monitoring,
    aws: ctx,
  }, aws);

  const cluster = new Cluster('cluster', {
    clusterName,
    version: cfg.cluster.version,
    vpcId: network.vpcId,
    privateSubnetIds: network.privateSubnetIds,
    publicSubnetIds: network.publicSubnetIds,
    publicAccessCidrs: cfg.cluster.publicAccessCidrs,
    adminRoleArns: cfg.cluster.adminRoleArns,
    logTypes: cfg.cluster.logTypes,
    nodeGroups: cfg.nodeGroups,
    scheduledScaling: cfg.cost.demoHours !== undefined,
    aws: ctx,
    logGroups: monitoring.logGroups,
  }, { ...aws, dependsOn: [network] });

  const hasImage = cfg.app.image.tag !== undefined || cfg.app.image.digest !== undefined;
  if (!hasImage) {
    pulumi.log.info('app.image is not set: skipping the API deployment (push an image, then set pricesense:app.image.tag)');
  }
  const app = hasImage
    ? new App('app', {
        tier: cfg.tier,
        image: cfg.app.image,
        repositoryUrl: imageRegistry.repositoryUrl,
        lakeBucketName: lake.bucketName,
        lakeBucketArn: lake.bucketArn,
        modelPackageGroupName: modelRegistry.groupName,
        modelPackageGroupArn: modelPackageGroupArn(ctx, modelRegistry.groupName),
        oidcProviderArn: cluster.oidcProviderArn,
        oidcIssuer: cluster.oidcIssuer,
        publicEndpoint: cfg.app.publicEndpoint,
        publicEndpointCidrs: cfg.app.publicEndpointCidrs,
        minReplicas: cfg.app.minReplicas,
        maxReplicas: cfg.app.maxReplicas,
        targetCpuPercent: cfg.app.targetCpuPercent,
        scaleDownStabilizationSeconds: cfg.app.scaleDownStabilizationSeconds,
        resources: cfg.app,
        k8sProvider: cluster.k8sProvider,
        aws: ctx,
      }, aws)
    : undefined;

  const cost = new Cost('cost', {
    stack: cfg.stack,
    clusterName,
    nodeGroups: cfg.nodeGroups,
    monthlyBudgetUsd: cfg.cost.monthlyBudgetUsd,
    alertThresholdsPercent: cfg.cost.alertThresholdsPercent,
    budgetEmails: cfg.cost.budgetEmails,
    alertTopicArn: monitoring.alertTopicArn,
    demoHours: cfg.cost.demoHours,
    aws: ctx,
    cluster,
  }, aws);

  return { config: cfg, aws: ctx, network, lake, imageRegistry, modelRegistry, monitoring, cluster, app, cost };
}

/** The names other parts of pricesense consume (CLI, CI, the API's environment). */
export function stackOutputs(p: Platform): Record<string, pulumi.Input<unknown>> {
  return {
    apiEndpoint: p.app?.endpoint,
    apiImage: p.app?.image,
    ecrRepositoryUrl: p.imageRegistry.repositoryUrl,
    lakeBucket: p.lake.bucketName,
    lakeUri: pulumi.interpolate`s3://${p.lake.bucketName}`,
    modelPackageGroup: p.modelRegistry.groupName,
    registryUri: pulumi.interpolate`sagemaker://${p.modelRegistry.groupName}`,
    sagemakerExecutionRoleArn: p.modelRegistry.executionRoleArn,
    clusterName: p.cluster.clusterName,
    kubeconfig: p.cluster.kubeconfig,
    alertTopicArn: p.monitoring.alertTopicArn,
    dashboardName: p.monitoring.dashboardName,
    region: p.config.region,
  };
}

/** Runs the extensions after the core platform; their outputs join the stack outputs. */
export function extendPlatform(platform: Platform, extensions: readonly PlatformExtension[]): Record<string, pulumi.Input<unknown>> {
  const extra: Record<string, pulumi.Input<unknown>> = {};
  for (const extend of extensions) Object.assign(extra, extend(platform) ?? {});
  return extra;
}
