/**
 * The app project's program (infra/app/Pulumi.yaml): the API's Kubernetes objects. Runs
 * where the cluster's API server is reachable: the platform's in-VPC deployer (CodeBuild in
 * the private subnets; see docs/infra.md, "Deploying to a private cluster"). Everything
 * AWS-side comes from the platform stack of the same environment.
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { loadStackConfig } from '../load-config';
import { autoscalerImageReference, autoscalerVersionProblem, imageReference } from '../images';
import { parseReleasedAppConfig, platformStackName, requireSameTier } from './config';
import { App } from './app';
import { ClusterAutoscaler } from './cluster-autoscaler';
import { apiMetricNamespace, apiMetricsLogGroup } from '../app-contract';

export function appProgram(): Record<string, pulumi.Input<unknown>> {
  const cfg = loadStackConfig(parseReleasedAppConfig);
  const platform = new pulumi.StackReference('platform', { name: platformStackName(cfg) });
  const fromPlatform = (name: string): pulumi.Output<string> => platform.requireOutput(name).apply(String);

  // The provider (and so every object) waits for this check.
  const tierChecked = platform.requireOutput('tier').apply((tier) => requireSameTier(cfg, tier));

  const k8sProvider = new k8s.Provider('k8s', {
    kubeconfig: pulumi.all([platform.requireOutput('kubeconfig'), tierChecked]).apply(([kubeconfig]) => String(kubeconfig)),
    enableServerSideApply: true,
  });

  // parseReleasedAppConfig refuses a stack without app.image (review H2), so there is always an app.
  const image = fromPlatform('apiRepositoryUrl').apply((url) => {
    const reference = imageReference(url, cfg.app.image);
    if (reference === undefined) throw new pulumi.RunError('app.image is not set (parseReleasedAppConfig guards this)');
    return reference;
  });

  const app = new App('app', {
    tier: cfg.tier,
    image,
    roleArn: fromPlatform('apiRoleArn'),
    registryUri: fromPlatform('registryUri'),
    lakeUri: fromPlatform('lakeUri'),
    region: fromPlatform('region'),
    publicEndpoint: cfg.app.publicEndpoint,
    publicEndpointCidrs: cfg.app.publicEndpointCidrs,
    tlsCertificateArn: cfg.app.tlsCertificateArn,
    lakeBucket: fromPlatform('lakeBucket'),
    costTags: platform.requireOutput('costTags').apply((t) => t as Record<string, string>),
    minReplicas: cfg.app.minReplicas,
    maxReplicas: cfg.app.maxReplicas,
    targetCpuPercent: cfg.app.targetCpuPercent,
    scaleDownStabilizationSeconds: cfg.app.scaleDownStabilizationSeconds,
    resources: cfg.app,
    metrics: { namespace: apiMetricNamespace(cfg.stack), logGroup: apiMetricsLogGroup(cfg.stack) },
    nodeCidrs: platform.requireOutput('nodeCidrs').apply((c) => c as string[]),
    k8sProvider,
  });

  // parseReleasedAppConfig refuses a stack without it (nothing would add a node); the
  // version must be the cluster's Kubernetes minor.
  const autoscalerImage = pulumi.all([fromPlatform('apiRepositoryUrl'), fromPlatform('kubernetesVersion')]).apply(([url, kubernetesVersion]) => {
    const problem = autoscalerVersionProblem(cfg.clusterAutoscaler.version, kubernetesVersion);
    if (problem !== undefined) throw new pulumi.RunError(problem);
    return autoscalerImageReference(url, cfg.clusterAutoscaler);
  });
  new ClusterAutoscaler('cluster-autoscaler', {
    tier: cfg.tier,
    clusterName: fromPlatform('clusterName'),
    region: fromPlatform('region'),
    image: autoscalerImage,
    k8sProvider,
  });

  // null (not undefined) when there is no public endpoint: shown as such, no warning.
  return { apiImage: app.image, apiEndpoint: app.endpoint ?? null, clusterAutoscalerImage: autoscalerImage };
}
