/**
 * EKS through @pulumi/eks: API authentication with access entries (no aws-auth
 * ConfigMap), an OIDC provider for IRSA, private nodes in managed node groups, and
 * the core add-ons managed explicitly as EKS add-ons so their versions and conflicts
 * are visible here rather than installed implicitly at cluster creation.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { CLOUDWATCH_AGENT_CONFIG } from './monitoring';
import { AUTOSCALER_ENABLED_TAG, AUTOSCALER_MUTATING_ACTIONS, AUTOSCALER_SERVICE_ACCOUNT, autoscalerClusterTag } from './app-contract';
import * as eks from '@pulumi/eks';
import type { NodeGroupSettings, Tier } from './config';
import { customerManagedKey, irsaAssumeRolePolicy, type AwsContext } from './aws-context';
import { DATA_RETENTION } from './teardown';

export interface ClusterArgs {
  readonly tier: Tier;
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
  readonly aws: AwsContext;
  /** Log groups that must exist (with retention) before EKS would create them without one. */
  readonly logGroups: pulumi.Resource[];
}

const CLUSTER_ADMIN_POLICY = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy';

/**
 * What the node role may do: join the cluster and pull images. The CNI policy is on the
 * aws-node service account's own IRSA role instead (EKS best practices: pods reaching the
 * node role could otherwise manage ENIs), and pulls need only PullOnly, not ReadOnly
 * (which also lists and describes every repository in the account).
 */
export const NODE_ROLE_POLICIES = ['AmazonEKSWorkerNodePolicy', 'AmazonEC2ContainerRegistryPullOnly'] as const;

/**
 * Instance metadata for nodes: IMDSv2 only, and a hop limit of 1 so a packet from a pod's
 * network namespace (one hop more) never gets a token: pods cannot borrow the node role.
 * hostNetwork pods (aws-node, kube-proxy) are on the node's namespace and keep IMDS.
 */
export const NODE_METADATA_OPTIONS = { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 } as const;

/** EC2 resources a node group launches; the launch template tags each with the stack's cost tags. */
export const NODE_TAGGED_RESOURCES = ['instance', 'volume', 'network-interface'] as const;
export function nodeGroupName(clusterName: string, group: string): string {
  return `${clusterName}-${group}`;
}

/** Trust of a role handed to pods through EKS Pod Identity, for this cluster only. */
function podIdentityTrust(ctx: AwsContext, clusterName: string): pulumi.Output<string> {
  return pulumi.jsonStringify({
    Version: '2012-10-17',
    Statement: [{
      Effect: 'Allow',
      Principal: { Service: 'pods.eks.amazonaws.com' },
      Action: ['sts:AssumeRole', 'sts:TagSession'],
      Condition: {
        StringEquals: { 'aws:SourceAccount': ctx.accountId },
        ArnEquals: { 'aws:SourceArn': pulumi.interpolate`arn:${ctx.partition}:eks:${ctx.region}:${ctx.accountId}:cluster/${clusterName}` },
      },
    }],
  });
}

/**
 * Cluster Autoscaler's permissions (its AWS README, "full features" policy), least privilege:
 * describes are read-only and cannot be scoped by resource; the two actions that change
 * capacity apply only to Auto Scaling groups tagged as this cluster's by EKS.
 */
export function autoscalerPolicyDocument(clusterName: string, nodegroupArns: pulumi.Input<string>): object {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Discover',
        Effect: 'Allow',
        Action: [
          'autoscaling:DescribeAutoScalingGroups', 'autoscaling:DescribeAutoScalingInstances', 'autoscaling:DescribeLaunchConfigurations',
          'autoscaling:DescribeScalingActivities', 'autoscaling:DescribeTags',
          'ec2:DescribeImages', 'ec2:DescribeInstanceTypes', 'ec2:DescribeLaunchTemplateVersions', 'ec2:GetInstanceTypesFromInstanceRequirements',
        ],
        Resource: '*',
      },
      // Labels and taints of a node group scaled to zero (dev at night).
      { Sid: 'DescribeOwnNodeGroups', Effect: 'Allow', Action: 'eks:DescribeNodegroup', Resource: nodegroupArns },
      {
        Sid: 'ScaleOwnNodeGroups',
        Effect: 'Allow',
        Action: [...AUTOSCALER_MUTATING_ACTIONS],
        Resource: '*',
        Condition: { StringEquals: { [`aws:ResourceTag/${autoscalerClusterTag(clusterName)}`]: 'owned', [`aws:ResourceTag/${AUTOSCALER_ENABLED_TAG}`]: 'true' } },
      },
    ],
  };
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

    // EC2 sets no aws:SourceAccount/SourceArn when it assumes an instance profile's role; only
    // principals allowed iam:PassRole on this role can hand it to an instance.
    const nodeRole = new aws.iam.Role(`${name}-node`, {
      ...args.aws.roleScope,
      description: 'EKS worker nodes',
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
    }, parent);
    const nodePolicies = NODE_ROLE_POLICIES.map((policy) => new aws.iam.RolePolicyAttachment(`${name}-node-${policy}`, {
      role: nodeRole.name,
      policyArn: pulumi.interpolate`arn:${args.aws.partition}:iam::aws:policy/${policy}`,
    }, parent));

    // Kubernetes secrets are envelope-encrypted with a key of ours (Security Hub EKS.3). Losing
    // it loses every secret in etcd, so it is protected like the data outside dev.
    const secretsKey = customerManagedKey(`${name}-secrets`, {
      description: `pricesense ${args.clusterName}: Kubernetes secrets envelope encryption`,
      services: [],
      ctx: args.aws,
    }, { ...parent, protect: DATA_RETENTION[args.tier].protect });

    // Our own cluster role rather than @pulumi/eks's: its trust carries the confused-deputy
    // guard, and it may use the secrets key.
    const clusterRole = new aws.iam.Role(`${name}-control-plane`, {
      ...args.aws.roleScope,
      description: `EKS control plane of ${args.clusterName}`,
      assumeRolePolicy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [{
          Effect: 'Allow',
          Principal: { Service: 'eks.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
          Condition: { StringEquals: { 'aws:SourceAccount': args.aws.accountId } },
        }],
      }),
    }, parent);
    const clusterPolicy = new aws.iam.RolePolicyAttachment(`${name}-control-plane`, {
      role: clusterRole.name,
      policyArn: pulumi.interpolate`arn:${args.aws.partition}:iam::aws:policy/AmazonEKSClusterPolicy`,
    }, parent);
    const clusterKeyUse = new aws.iam.RolePolicy(`${name}-control-plane-kms`, {
      role: clusterRole.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [{ Sid: 'SecretsKey', Effect: 'Allow', Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ListGrants', 'kms:DescribeKey'], Resource: secretsKey.arn }],
      }),
    }, parent);

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
      serviceRole: clusterRole,
      encryptionConfigKeyArn: secretsKey.arn,
      // pulumi-eks defaults to EXTENDED: once the version leaves standard support the control
      // plane silently costs $0.60/h instead of $0.10/h. STANDARD upgrades it instead.
      upgradePolicy: { supportType: 'STANDARD' },
      // The core add-ons below are EKS managed add-ons; nothing is installed behind our back.
      bootstrapSelfManagedAddons: false,
      useDefaultVpcCni: true,
      corednsAddonOptions: { enabled: false },
      kubeProxyAddonOptions: { enabled: false },
      tags: args.aws.tags,
    }, { parent: this, providers: { aws: provider }, dependsOn: [...args.logGroups, clusterPolicy, clusterKeyUse] });

    this.clusterName = pulumi.output(args.clusterName);
    this.kubeconfig = pulumi.secret(cluster.kubeconfigJson);
    this.oidcProviderArn = cluster.oidcProviderArn;
    this.oidcIssuer = cluster.oidcIssuer;
    this.clusterSecurityGroupId = cluster.clusterSecurityGroupId;

    // Versions resolved per Kubernetes version: the add-on's default build for args.version,
    // so a version bump moves every add-on with it (and a preview shows the new builds).
    const addon = (addonName: string, extra: Partial<aws.eks.AddonArgs>, dependsOn: pulumi.Resource[]): aws.eks.Addon =>
      new aws.eks.Addon(`${name}-${addonName}`, {
        clusterName: args.clusterName,
        addonName,
        addonVersion: aws.eks.getAddonVersionOutput({ addonName, kubernetesVersion: args.version }, { provider }).version,
        resolveConflictsOnCreate: 'OVERWRITE',
        resolveConflictsOnUpdate: 'OVERWRITE',
        ...extra,
      }, { ...parent, dependsOn });

    // The VPC CNI gets its own IRSA role (not the node role's), and enforces NetworkPolicy
    // objects (the app's default-deny in its namespace).
    const cniRole = new aws.iam.Role(`${name}-vpc-cni`, {
      ...args.aws.roleScope,
      description: 'VPC CNI (kube-system/aws-node), IRSA',
      assumeRolePolicy: irsaAssumeRolePolicy(cluster.oidcProviderArn, cluster.oidcIssuer, 'kube-system', 'aws-node'),
    }, parent);
    const cniPolicy = new aws.iam.RolePolicyAttachment(`${name}-vpc-cni`, {
      role: cniRole.name,
      policyArn: pulumi.interpolate`arn:${args.aws.partition}:iam::aws:policy/AmazonEKS_CNI_Policy`,
    }, parent);

    // Networking add-ons first: nodes only become Ready once the CNI runs on them.
    const vpcCni = addon('vpc-cni', {
      serviceAccountRoleArn: cniRole.arn,
      configurationValues: JSON.stringify({ enableNetworkPolicy: 'true' }),
    }, [cluster, cniPolicy]);
    const kubeProxy = addon('kube-proxy', {}, [cluster]);

    this.nodeGroupNames = [];
    const groups = args.nodeGroups.map((g) => {
      const groupName = nodeGroupName(args.clusterName, g.name);
      this.nodeGroupNames.push(groupName);
      // The launch template carries what a managed node group cannot: the metadata options,
      // and tags on the instances, volumes and ENIs it launches (node group tags stop at the
      // node group, so without these the budget's `stack` filter never sees the nodes).
      const template = new aws.ec2.LaunchTemplate(`${name}-${g.name}`, {
        description: `pricesense ${groupName} nodes`,
        metadataOptions: NODE_METADATA_OPTIONS,
        blockDeviceMappings: [{
          deviceName: '/dev/xvda', // the AL2023 root volume
          ebs: { volumeSize: g.diskSizeGiB, volumeType: 'gp3', encrypted: 'true', deleteOnTermination: 'true' },
        }],
        tagSpecifications: NODE_TAGGED_RESOURCES.map((resourceType) => ({ resourceType, tags: { ...args.aws.tags, Name: groupName } })),
        updateDefaultVersion: true,
      }, parent);
      return new eks.ManagedNodeGroup(`${name}-${g.name}`, {
        cluster,
        nodeGroupName: groupName,
        nodeRole,
        subnetIds: args.privateSubnetIds,
        capacityType: g.capacityType,
        instanceTypes: g.instanceTypes,
        // x86_64 matches every default instance type.
        amiType: 'AL2023_x86_64_STANDARD',
        launchTemplate: { id: template.id, version: template.latestVersion.apply(String) },
        scalingConfig: { minSize: g.minSize, desiredSize: g.desiredSize, maxSize: g.maxSize },
        // desiredSize belongs to Cluster Autoscaler (and dev's demo-hours schedule): `pulumi up` keeps it.
        ignoreScalingChanges: true,
        labels: { 'pricesense/capacity': g.capacityType.toLowerCase(), 'pricesense/node-group': g.name },
        tags: args.aws.tags,
      }, { parent: this, providers: { aws: provider }, dependsOn: [vpcCni, kubeProxy, ...nodePolicies] });
    });

    // These run as pods, so they need nodes to become healthy. metrics-server feeds the HPA.
    addon('coredns', {}, groups);
    addon('metrics-server', {}, groups);
    const podIdentityAgent = addon('eks-pod-identity-agent', {}, groups);

    const cwAgentRole = new aws.iam.Role(`${name}-cloudwatch-agent`, {
      ...args.aws.roleScope,
      description: 'Container Insights agent (EKS Pod Identity)',
      assumeRolePolicy: podIdentityTrust(args.aws, args.clusterName),
    }, parent);
    const cwAgentPolicy = new aws.iam.RolePolicyAttachment(`${name}-cloudwatch-agent`, {
      role: cwAgentRole.name,
      policyArn: pulumi.interpolate`arn:${args.aws.partition}:iam::aws:policy/CloudWatchAgentServerPolicy`,
    }, parent);
    addon('amazon-cloudwatch-observability', {
      podIdentityAssociations: [{ roleArn: cwAgentRole.arn, serviceAccount: 'cloudwatch-agent' }],
      // Container Insights plus the EMF listener the API sends its metrics to (infra/monitoring.ts).
      configurationValues: JSON.stringify(CLOUDWATCH_AGENT_CONFIG),
    }, [...groups, podIdentityAgent, cwAgentPolicy]);

    // Cluster Autoscaler (its Deployment is in the app project, infra/app/cluster-autoscaler.ts): grows a
    // node group up to its maxSize when pods are pending (the HPA's replicas included) and
    // shrinks it to minSize. Its credentials come from EKS Pod Identity; it may change only the
    // Auto Scaling groups EKS tagged as this cluster's node groups.
    const autoscalerRole = new aws.iam.Role(`${name}-autoscaler`, {
      ...args.aws.roleScope,
      description: `Cluster Autoscaler of ${args.clusterName} (EKS Pod Identity)`,
      assumeRolePolicy: podIdentityTrust(args.aws, args.clusterName),
    }, parent);
    const autoscalerPolicy = new aws.iam.RolePolicy(`${name}-autoscaler`, {
      role: autoscalerRole.name,
      policy: pulumi.jsonStringify(autoscalerPolicyDocument(args.clusterName, pulumi.interpolate`arn:${args.aws.partition}:eks:${args.aws.region}:${args.aws.accountId}:nodegroup/${args.clusterName}/*`)),
    }, parent);
    new aws.eks.PodIdentityAssociation(`${name}-autoscaler`, {
      clusterName: args.clusterName,
      namespace: AUTOSCALER_SERVICE_ACCOUNT.namespace,
      serviceAccount: AUTOSCALER_SERVICE_ACCOUNT.name,
      roleArn: autoscalerRole.arn,
    }, { ...parent, dependsOn: [podIdentityAgent, autoscalerPolicy] });

    this.registerOutputs({ clusterName: this.clusterName, oidcProviderArn: this.oidcProviderArn });
  }
}
