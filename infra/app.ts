/**
 * The API on Kubernetes: namespace, IRSA service account, Deployment, Service, HPA and
 * PodDisruptionBudget, all through the cluster's own provider. The pod's AWS identity
 * reads only the lake's artifacts/ prefix and the model package group.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import * as k8s from '@pulumi/kubernetes';
import type { AwsContext } from './aws-context';
import { APP_NAME, APP_NAMESPACE } from './monitoring';
import { modelPackagesArn } from './model-registry';
import type { Tier } from './config';

export const CONTAINER_PORT = 8080;
export const SERVICE_ACCOUNT = APP_NAME;

export interface AppArgs {
  readonly tier: Tier;
  readonly image: { readonly tag?: string; readonly digest?: string };
  readonly repositoryUrl: pulumi.Input<string>;
  readonly lakeBucketName: pulumi.Input<string>;
  readonly lakeBucketArn: pulumi.Input<string>;
  readonly modelPackageGroupName: pulumi.Input<string>;
  readonly modelPackageGroupArn: pulumi.Input<string>;
  readonly oidcProviderArn: pulumi.Input<string>;
  readonly oidcIssuer: pulumi.Input<string>;
  readonly publicEndpoint: boolean;
  readonly publicEndpointCidrs: readonly string[];
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly targetCpuPercent: number;
  readonly scaleDownStabilizationSeconds: number;
  readonly resources: { cpuRequest: string; cpuLimit: string; memoryRequest: string; memoryLimit: string };
  readonly k8sProvider: k8s.Provider;
  readonly aws: AwsContext;
}

/** `<repo>@sha256:...` when a digest is configured, else `<repo>:<tag>`. */
export function imageRef(repositoryUrl: pulumi.Input<string>, image: AppArgs['image']): pulumi.Output<string> {
  if (image.digest !== undefined) return pulumi.interpolate`${repositoryUrl}@${image.digest}`;
  if (image.tag !== undefined) return pulumi.interpolate`${repositoryUrl}:${image.tag}`;
  throw new Error('App needs app.image.tag or app.image.digest');
}

export class App extends pulumi.ComponentResource {
  readonly endpoint: pulumi.Output<string> | undefined;
  readonly roleArn: pulumi.Output<string>;
  readonly image: pulumi.Output<string>;

  constructor(name: string, args: AppArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:App', name, {}, opts);
    const awsOpts: pulumi.CustomResourceOptions = { parent: this, provider: args.aws.provider };
    const k8sOpts: pulumi.CustomResourceOptions = { parent: this, provider: args.k8sProvider };
    const labels = { 'app.kubernetes.io/name': APP_NAME, 'app.kubernetes.io/part-of': 'pricesense' };

    const role = new aws.iam.Role(`${name}-irsa`, {
      description: `IRSA role of ${APP_NAMESPACE}/${SERVICE_ACCOUNT}`,
      assumeRolePolicy: pulumi.all([args.oidcProviderArn, args.oidcIssuer]).apply(([providerArn, issuer]) =>
        JSON.stringify({
          Version: '2012-10-17',
          Statement: [{
            Effect: 'Allow',
            Principal: { Federated: providerArn },
            Action: 'sts:AssumeRoleWithWebIdentity',
            // Only this service account, and only tokens minted for STS.
            Condition: {
              StringEquals: {
                [`${issuer}:sub`]: `system:serviceaccount:${APP_NAMESPACE}:${SERVICE_ACCOUNT}`,
                [`${issuer}:aud`]: 'sts.amazonaws.com',
              },
            },
          }],
        }),
      ),
    }, awsOpts);
    new aws.iam.RolePolicy(`${name}-irsa`, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'ReadArtifacts', Effect: 'Allow', Action: ['s3:GetObject'], Resource: pulumi.interpolate`${args.lakeBucketArn}/artifacts/*` },
          {
            Sid: 'ListArtifacts',
            Effect: 'Allow',
            Action: ['s3:ListBucket'],
            Resource: args.lakeBucketArn,
            Condition: { StringLike: { 's3:prefix': ['artifacts/', 'artifacts/*'] } },
          },
          {
            Sid: 'DescribeModels',
            Effect: 'Allow',
            Action: ['sagemaker:DescribeModelPackageGroup', 'sagemaker:DescribeModelPackage', 'sagemaker:ListTags'],
            Resource: [args.modelPackageGroupArn, modelPackagesArn(args.aws, args.modelPackageGroupName)],
          },
          {
            // ListModelPackages has no resource-level permissions in IAM; it is read-only.
            Sid: 'ListModels',
            Effect: 'Allow',
            Action: ['sagemaker:ListModelPackages'],
            Resource: '*',
          },
        ],
      }),
    }, awsOpts);
    this.roleArn = role.arn;

    const ns = new k8s.core.v1.Namespace(`${name}-ns`, {
      metadata: { name: APP_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    }, k8sOpts);
    const inNs = { namespace: ns.metadata.name, labels };

    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { ...inNs, name: SERVICE_ACCOUNT, annotations: { 'eks.amazonaws.com/role-arn': role.arn } },
    }, k8sOpts);

    this.image = imageRef(args.repositoryUrl, args.image);
    const registry = pulumi.interpolate`sagemaker://${args.modelPackageGroupName}`;
    const lake = pulumi.interpolate`s3://${args.lakeBucketName}`;
    const probe = (path: string, periodSeconds: number, failureThreshold: number): k8s.types.input.core.v1.Probe => ({
      httpGet: { path, port: 'http' },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 2,
    });
    const spread = (topologyKey: string, hard: boolean): k8s.types.input.core.v1.TopologySpreadConstraint => ({
      maxSkew: 1,
      topologyKey,
      // prod refuses to stack replicas in one zone; smaller stacks prefer spreading but still schedule.
      whenUnsatisfiable: hard ? 'DoNotSchedule' : 'ScheduleAnyway',
      labelSelector: { matchLabels: labels },
    });

    const deployment = new k8s.apps.v1.Deployment(`${name}-api`, {
      metadata: { ...inNs, name: APP_NAME },
      spec: {
        // The HPA owns the replica count after creation (see ignoreChanges below).
        replicas: args.minReplicas,
        selector: { matchLabels: labels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: sa.metadata.name,
            securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
            topologySpreadConstraints: [spread('topology.kubernetes.io/zone', args.tier === 'prod'), spread('kubernetes.io/hostname', false)],
            terminationGracePeriodSeconds: 30,
            containers: [{
              name: 'api',
              image: this.image,
              ports: [{ name: 'http', containerPort: CONTAINER_PORT, protocol: 'TCP' }],
              env: [
                { name: 'PRICESENSE_REGISTRY', value: registry },
                { name: 'PRICESENSE_LAKE', value: lake },
                { name: 'AWS_REGION', value: args.aws.region },
                { name: 'PORT', value: String(CONTAINER_PORT) },
              ],
              resources: {
                requests: { cpu: args.resources.cpuRequest, memory: args.resources.memoryRequest },
                limits: { cpu: args.resources.cpuLimit, memory: args.resources.memoryLimit },
              },
              startupProbe: probe('/health', 2, 30),
              livenessProbe: probe('/health', 10, 3),
              readinessProbe: probe('/ready', 5, 2),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                privileged: false,
                capabilities: { drop: ['ALL'] },
              },
              // The only writable path: scratch space for downloaded model files.
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            }],
            volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '256Mi' } }],
          },
        },
      },
    }, { ...k8sOpts, ignoreChanges: ['spec.replicas'] });

    const service = new k8s.core.v1.Service(`${name}-svc`, {
      metadata: {
        ...inNs,
        name: APP_NAME,
        annotations: args.publicEndpoint
          ? { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb', 'service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled': 'true' }
          : {},
      },
      spec: {
        type: args.publicEndpoint ? 'LoadBalancer' : 'ClusterIP',
        selector: labels,
        ports: [{ name: 'http', port: args.publicEndpoint ? 80 : CONTAINER_PORT, targetPort: 'http', protocol: 'TCP' }],
        ...(args.publicEndpoint ? { loadBalancerSourceRanges: [...args.publicEndpointCidrs] } : {}),
      },
    }, k8sOpts);

    new k8s.autoscaling.v2.HorizontalPodAutoscaler(`${name}-hpa`, {
      metadata: { ...inNs, name: APP_NAME },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name },
        minReplicas: args.minReplicas,
        maxReplicas: args.maxReplicas,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: args.targetCpuPercent } } }],
        behavior: {
          scaleDown: { stabilizationWindowSeconds: args.scaleDownStabilizationSeconds, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
          scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: 'Percent', value: 100, periodSeconds: 30 }] },
        },
      },
    }, k8sOpts);

    new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, {
      metadata: { ...inNs, name: APP_NAME },
      // maxUnavailable, not minAvailable: a one-replica dev stack must still let nodes drain.
      spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
    }, k8sOpts);

    this.endpoint = args.publicEndpoint
      ? service.status.loadBalancer.ingress.apply((ingress) => {
          const host = ingress?.[0]?.hostname ?? ingress?.[0]?.ip;
          return host ? `http://${host}` : '';
        })
      : undefined;
    this.registerOutputs({ endpoint: this.endpoint, image: this.image });
  }
}
