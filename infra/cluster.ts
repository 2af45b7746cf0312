/**
 * EKS through @pulumi/eks: API authentication with access entries (no aws-auth
 * ConfigMap), an OIDC provider for IRSA, private nodes in managed node groups, and
 * the core add-ons managed explicitly as EKS add-ons so their versions and conflicts
 * are visible here rather than installed implicitly at cluster creation.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import * as eks from '@pulumi/eks';
import type { NodeGroupSettings } from './config';
import type { AwsContext } from './aws-context';

export interface ClusterArgs {
  readonly clusterName: string;
  readonly version: string;
  readonly vpcId: pulumi.Input<string>;
  readonly privateSubnetIds: pulumi.Input<string>[];
  readonly publicSubnetIds: pulumi.Input<string>[];
  /** Empty: no public endpoint at all (the API server is reached from inside the VPC only). */
  readonly publicAccessCidrs: string[];
  readonly adminRoleArns: string[];
  readonly logTypes: string[];
  readonly nodeGroups: readonly NodeGroupSettings[];
  /** Leave desiredSize to the scale-to-zero schedule instead of resetting it on every `pulumi up`. */
  readonly scheduledScaling: boolean;
  readonly aws: AwsContext;
  /** Log groups that must exist (with retention) before EKS would create them without one. */
  readonly logGroups: pulumi.Resource[];
}

const CLUSTER_ADMIN_POLICY = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy';

export function nodeGroupName(clusterName: string, group: string): string {
  return `${clusterName}-${group}`;
}

export class Cluster extends pulumi.ComponentResource {
  readonly clusterName: pulumi.Output<string>;
  readonly kubeconfig: pulumi.Output<string>;
  readonly oidcProviderArn: pulumi.Output<string>;
  /** Issuer host and path, without https:// (the form IAM condition keys use). */
  readonly oidcIssuer: pulumi.Output<string>;
  /** Security group on the API server's network interfaces in the VPC: in-VPC clients are let in here. */
  readonly clusterSecurityGroupId: pulumi.Output<string>;
  readonly nodeGroupNames: string[];

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:Cluster', name, {}, opts);
    const provider = args.aws.provider;
    const parent: pulumi.CustomResourceOptions = { parent: this, provider };

    const nodeRole = new aws.iam.Role(`${name}-node`, {
      description: 'EKS worker nodes',
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
    }, parent);
    const nodePolicies = [
      'AmazonEKSWorkerNodePolicy',
      'AmazonEKS_CNI_Policy',
      'AmazonEC2ContainerRegistryReadOnly',
    ].map((policy) => new aws.iam.RolePolicyAttachment(`${name}-node-${policy}`, {
      role: nodeRole.name,
      policyArn: pulumi.interpolate`arn:${args.aws.partition}:iam::aws:policy/${policy}`,
    }, parent));

    const accessEntries: Record<string, eks.types.input.AccessEntryArgs> = {};
    args.adminRoleArns.forEach((principalArn, i) => {
      accessEntries[`admin-${i}`] = {
        principalArn,
        accessPolicies: { admin: { policyArn: CLUSTER_ADMIN_POLICY, accessScope: { type: 'cluster' } } },
      };
    });

    const cluster = new eks.Cluster(`${name}`, {
      name: args.clusterName,
      version: args.version,
      vpcId: args.vpcId,
      privateSubnetIds: args.privateSubnetIds,
      publicSubnetIds: args.publicSubnetIds,
      nodeAssociatePublicIpAddress: false,
      skipDefaultNodeGroup: true,
      authenticationMode: eks.AuthenticationMode.Api,
      accessEntries,
      createOidcProvider: true,
      // Nodes and the in-VPC deployer (deployer.ts) reach the API server privately. A public
      // endpoint exists only when operators' CIDRs are configured, and admits only those.
      endpointPrivateAccess: true,
      endpointPublicAccess: args.publicAccessCidrs.length > 0,
      ...(args.publicAccessCidrs.length > 0 ? { publicAccessCidrs: args.publicAccessCidrs } : {}),
      enabledClusterLogTypes: args.logTypes,
      // The core add-ons below are EKS managed add-ons; nothing is installed behind our back.
      bootstrapSelfManagedAddons: false,
      useDefaultVpcCni: true,
      corednsAddonOptions: { enabled: false },
      kubeProxyAddonOptions: { enabled: false },
      tags: args.aws.tags,
    }, { parent: this, providers: { aws: provider }, dependsOn: args.logGroups });

    this.clusterName = pulumi.output(args.clusterName);
    this.kubeconfig = pulumi.secret(cluster.kubeconfigJson);
    this.oidcProviderArn = cluster.oidcProviderArn;
    this.oidcIssuer = cluster.oidcIssuer;
    this.clusterSecurityGroupId = cluster.clusterSecurityGroupId;

    const addon = (addonName: string, extra: Partial<aws.eks.AddonArgs>, dependsOn: pulumi.Resource[]): aws.eks.Addon =>
      new aws.eks.Addon(`${name}-${addonName}`, {
        clusterName: args.clusterName,
        addonName,
        resolveConflictsOnCreate: 'OVERWRITE',
        resolveConflictsOnUpdate: 'OVERWRITE',
        ...extra,
      }, { ...parent, dependsOn });

    // Networking add-ons first: nodes only become Ready once the CNI runs on them.
    const vpcCni = addon('vpc-cni', {}, [cluster]);
    const kubeProxy = addon('kube-proxy', {}, [cluster]);

    this.nodeGroupNames = [];
    const groups = args.nodeGroups.map((g) => {
      const groupName = nodeGroupName(args.clusterName, g.name);
      this.nodeGroupNames.push(groupName);
      return new eks.ManagedNodeGroup(`${name}-${g.name}`, {
        cluster,
        nodeGroupName: groupName,
        nodeRole,
        subnetIds: args.privateSubnetIds,
        capacityType: g.capacityType,
        instanceTypes: g.instanceTypes,
        // AL2023 requires IMDSv2 by default; x86_64 matches every default instance type.
        amiType: 'AL2023_x86_64_STANDARD',
        diskSize: g.diskSizeGiB,
        scalingConfig: { minSize: g.minSize, desiredSize: g.desiredSize, maxSize: g.maxSize },
        ignoreScalingChanges: args.scheduledScaling,
        labels: { 'pricesense/capacity': g.capacityType.toLowerCase(), 'pricesense/node-group': g.name },
        tags: args.aws.tags,
      }, { parent: this, providers: { aws: provider }, dependsOn: [vpcCni, kubeProxy, ...nodePolicies] });
    });

    // These run as pods, so they need nodes to become healthy. metrics-server feeds the HPA.
    addon('coredns', {}, groups);
    addon('metrics-server', {}, groups);
    const podIdentityAgent = addon('eks-pod-identity-agent', {}, groups);

    const cwAgentRole = new aws.iam.Role(`${name}-cloudwatch-agent`, {
      description: 'Container Insights agent (EKS Pod Identity)',
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: ['sts:AssumeRole', 'sts:TagSession'] }],
      }),
    }, parent);
    const cwAgentPolicy = new aws.iam.RolePolicyAttachment(`${name}-cloudwatch-agent`, {
      role: cwAgentRole.name,
      policyArn: pulumi.interpolate`arn:${args.aws.partition}:iam::aws:policy/CloudWatchAgentServerPolicy`,
    }, parent);
    addon('amazon-cloudwatch-observability', {
      podIdentityAssociations: [{ roleArn: cwAgentRole.arn, serviceAccount: 'cloudwatch-agent' }],
    }, [...groups, podIdentityAgent, cwAgentPolicy]);

    this.registerOutputs({ clusterName: this.clusterName, oidcProviderArn: this.oidcProviderArn });
  }
}
