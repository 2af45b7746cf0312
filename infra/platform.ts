/**
 * The platform project: every AWS resource of one environment, wired in dependency order.
 * It talks to AWS APIs only, so it runs anywhere (a GitHub-hosted runner, a laptop); the
 * Kubernetes objects belong to the app project (infra/app), run by the in-VPC deployer
 * this project creates. One component per concern; later concerns (the SageMaker pipeline
 * and its EventBridge rule) plug in as extensions that receive the built platform.
 */
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from './config';
import type { AwsContext } from './aws-context';
import { Network } from './network';
import { DataLake } from './data-lake';
import { imageIn, lookupImageRepositories, type RepositoryRef } from './image-registry';
import type { ImageName } from './images';
import { ModelRegistry, modelPackageGroupArn } from './model-registry';
import { Monitoring } from './monitoring';
import { Cluster, nodeGroupName } from './cluster';
import { ApiIdentity } from './api-identity';
import { Deployer } from './deployer';
import { Cost } from './cost';

export interface Platform {
  readonly config: StackConfig;
  readonly aws: AwsContext;
  readonly network: Network;
  readonly lake: DataLake;
  /** The shared repositories (delivery bootstrap), looked up. */
  readonly images: Record<ImageName, RepositoryRef>;
  readonly modelRegistry: ModelRegistry;
  readonly monitoring: Monitoring;
  readonly cluster: Cluster;
  readonly apiIdentity: ApiIdentity;
  readonly deployer: Deployer;
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

/** `zoneIds`: the stack's zones, resolved before any resource (zones.ts, stackZones). */
export function buildPlatform(cfg: StackConfig, ctx: AwsContext, zoneIds: readonly string[]): Platform {
  const aws = { providers: { aws: ctx.provider } };
  const clusterName = clusterNameFor(cfg.stack);

  const network = new Network('network', {
    cidr: cfg.network.cidr,
    endpointAzCount: cfg.network.endpointAzCount,
    zoneIds,
    region: cfg.region,
    clusterName,
    aws: ctx,
    logRetentionDays: cfg.monitoring.logRetentionDays,
  }, aws);

  const lake = new DataLake('lake', { tier: cfg.tier, stack: cfg.stack, accountId: ctx.accountId, ...cfg.lake }, aws);
  const images = lookupImageRepositories(ctx.provider);
  const modelRegistry = new ModelRegistry('models', {
    tier: cfg.tier,
    stack: cfg.stack,
    lake,
    jobsRepositoryArn: images.jobs.arn,
    aws: ctx,
  }, aws);

  const monitoring = new Monitoring('monitoring', {
    tier: cfg.tier,
    stack: cfg.stack,
    clusterName,
    ...cfg.monitoring,
    metricsHeartbeat: cfg.cost.demoHours === undefined,
    aws: ctx,
  }, aws);

  const cluster = new Cluster('cluster', {
    tier: cfg.tier,
    clusterName,
    version: cfg.cluster.version,
    vpcId: network.vpcId,
    privateSubnetIds: network.privateSubnetIds,
    publicSubnetIds: network.publicSubnetIds,
    publicAccessCidrs: cfg.cluster.publicAccessCidrs,
    adminRoleArns: cfg.cluster.adminRoleArns,
    logTypes: cfg.cluster.logTypes,
    nodeGroups: cfg.nodeGroups,
    aws: ctx,
    logGroups: monitoring.logGroups,
  }, { ...aws, dependsOn: [network] });

  const apiIdentity = new ApiIdentity('api', {
    lakeBucketArn: lake.bucketArn,
    modelPackageGroupName: modelRegistry.groupName,
    modelPackageGroupArn: modelPackageGroupArn(ctx, modelRegistry.groupName),
    oidcProviderArn: cluster.oidcProviderArn,
    oidcIssuer: cluster.oidcIssuer,
    aws: ctx,
  }, aws);

  // parseReleasedStackConfig refuses a stack without the release's images (review H2).
  const deployerImage = imageIn(images.deployer, cfg.images.deployer);
  if (deployerImage === undefined) throw new pulumi.RunError('images.deployer is not set (parseReleasedStackConfig guards this)');
  const deployer = new Deployer('deployer', {
    stack: cfg.stack,
    clusterName,
    image: deployerImage,
    imageRepositoryArn: images.deployer.arn,
    vpcId: network.vpcId,
    vpcCidr: network.cidr,
    privateSubnetIds: network.privateSubnetIds,
    s3PrefixListId: network.s3PrefixListId,
    clusterSecurityGroupId: cluster.clusterSecurityGroupId,
    settings: cfg.deployer,
    logRetentionDays: cfg.monitoring.logRetentionDays,
    aws: ctx,
    cluster,
  }, aws);

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

  return { config: cfg, aws: ctx, network, lake, images, modelRegistry, monitoring, cluster, apiIdentity, deployer, cost };
}

/**
 * The names other parts of pricesense consume: the app project (through a StackReference),
 * the CLI, CI and the API's environment.
 */
export function stackOutputs(p: Platform): Record<string, pulumi.Input<unknown>> {
  return {
    apiRepositoryUrl: p.images.api.url,
    apiRoleArn: p.apiIdentity.roleArn,
    lakeBucket: p.lake.bucketName,
    lakeUri: pulumi.interpolate`s3://${p.lake.bucketName}`,
    modelPackageGroup: p.modelRegistry.groupName,
    registryUri: pulumi.interpolate`sagemaker://${p.modelRegistry.groupName}`,
    sagemakerExecutionRoleArn: p.modelRegistry.executionRoleArn,
    clusterName: p.cluster.clusterName,
    // The app project checks Cluster Autoscaler's release against it.
    kubernetesVersion: p.config.cluster.version,
    kubeconfig: p.cluster.kubeconfig,
    nodeCidrs: p.network.privateSubnetCidrs,
    zoneIds: p.network.zoneIds,
    deployerProject: p.deployer.projectName,
    deployerImage: p.deployer.image,
    alertTopicArn: p.monitoring.alertTopicArn,
    dashboardName: p.monitoring.dashboardName,
    region: p.config.region,
    tier: p.config.tier,
    costTags: p.aws.tags,
    // deploy.sh wakes scaled-to-zero node groups for a deploy outside demo hours (docs/delivery.md).
    demoHours: demoHoursOutput(p.config.cost.demoHours),
    scheduledNodeGroups: p.config.cost.demoHours === undefined ? undefined
      : p.config.nodeGroups.map((g) => `${nodeGroupName(clusterNameFor(p.config.stack), g.name)}:${g.desiredSize}:${g.maxSize}`).join(' '),
  };
}

/** "<timezone> <days> <start> <end>", the form deploy.sh reads; undefined without demo hours. */
export function demoHoursOutput(hours: StackConfig['cost']['demoHours']): string | undefined {
  return hours === undefined ? undefined : `${hours.timezone} ${hours.days} ${hours.start} ${hours.end}`;
}

/** Runs the extensions after the core platform; their outputs join the stack outputs. */
export function extendPlatform(platform: Platform, extensions: readonly PlatformExtension[]): Record<string, pulumi.Input<unknown>> {
  const extra: Record<string, pulumi.Input<unknown>> = {};
  for (const extend of extensions) Object.assign(extra, extend(platform) ?? {});
  return extra;
}
