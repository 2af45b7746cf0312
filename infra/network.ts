/**
 * The VPC, built from plain aws.ec2 resources so every part is visible to tests and
 * the policy pack. Nodes and pods live in private subnets that have no route to the
 * internet at all (no NAT gateway: it costs ~$33/month per AZ plus data and is an
 * egress path we do not want); AWS APIs are reached through VPC endpoints instead.
 * Public subnets exist only so a load balancer can be placed there.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { serviceAssumeRolePolicy, type AwsContext } from './aws-context';

/**
 * Interface endpoints the private nodes, pods, deployer builds and SageMaker jobs use, by AWS
 * service suffix. Not here, on purpose: `elasticloadbalancing` (the in-tree service
 * controller that creates the NLB runs in the EKS control plane, outside the VPC),
 * `autoscaling` (the node groups are scaled by EKS and the schedule, both outside the VPC)
 * and `sagemaker.runtime` (nothing invokes an endpoint): ~$7.30 per AZ-month each.
 */
export const INTERFACE_ENDPOINT_SERVICES = [
  'ecr.api', // image manifests, auth token
  'ecr.dkr', // image pulls (layers come through the S3 gateway endpoint)
  'sts', // IRSA: AssumeRoleWithWebIdentity
  'logs', // Container Insights log shipping
  'ec2', // vpc-cni ENI management
  'monitoring', // CloudWatch metrics from the agent
  'sagemaker.api', // model registry reads from the API
  'eks-auth', // EKS Pod Identity (the CloudWatch agent's credentials)
  'kms', // the in-VPC deployer: Pulumi stack secrets (awskms secrets provider)
  'autoscaling', // Cluster Autoscaler: describe node groups' Auto Scaling groups, set their desired capacity
] as const;

/** The bucket ECR serves image layers from, in every region (what the S3 endpoint must let through for pulls). */
export function ecrLayerBucketArn(partition: string, region: string): string {
  return `arn:${partition}:s3:::prod-${region}-starport-layer-bucket/*`;
}

/**
 * Endpoint policies. With no NAT gateway the endpoints are the only way out of the VPC; the
 * default policy ("everything, for everyone") would let a pod or build use them with another
 * account's credentials or write to another account's bucket. These admit only requests made
 * by this account's principals or addressed to this account's resources (either suffices:
 * AssumeRoleWithWebIdentity has no calling principal, ECR's auth token no resource).
 */
export function interfaceEndpointPolicy(accountId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'ThisAccountsPrincipals', Effect: 'Allow', Principal: '*', Action: '*', Resource: '*', Condition: { StringEquals: { 'aws:PrincipalAccount': accountId } } },
      { Sid: 'ThisAccountsResources', Effect: 'Allow', Principal: '*', Action: '*', Resource: '*', Condition: { StringEquals: { 'aws:ResourceAccount': accountId } } },
    ],
  });
}

/** S3 through the gateway: this account's buckets (lake, Pulumi state) and ECR's layer bucket, read-only. */
export function s3EndpointPolicy(accountId: string, partition: string, region: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'ThisAccountsBuckets', Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: '*', Condition: { StringEquals: { 'aws:ResourceAccount': accountId } } },
      { Sid: 'EcrImageLayers', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: ecrLayerBucketArn(partition, region) },
    ],
  });
}

export { EKS_UNSUPPORTED_ZONE_IDS, selectZones, type AvailableZones, type Zone } from './zones';

export interface NetworkArgs {
  readonly cidr: string;
  readonly endpointAzCount: number;
  /** One per subnet pair, resolved before any resource (zones.ts, stackZones). */
  readonly zoneIds: readonly string[];
  readonly region: string;
  /** Subnets carry the cluster tag so EKS and its load balancer controller find them. */
  readonly clusterName: string;
  readonly aws: AwsContext;
  /** Retention of the VPC flow log group. */
  readonly logRetentionDays: number;
}

/** The n-th /20 (private) or /24 (public) inside a /16. */
export function subnetCidr(vpcCidr: string, kind: 'private' | 'public', index: number): string {
  const [a, b] = vpcCidr.split('/')[0].split('.');
  return kind === 'private' ? `${a}.${b}.${index * 16}.0/20` : `${a}.${b}.${240 + index}.0/24`;
}

export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly privateSubnetIds: pulumi.Output<string>[];
  /** The private subnets' CIDRs: where the nodes (and host-network pods) have their addresses. */
  readonly privateSubnetCidrs: string[];
  readonly publicSubnetIds: pulumi.Output<string>[];
  readonly privateRouteTableId: pulumi.Output<string>;
  readonly endpointSecurityGroupId: pulumi.Output<string>;
  /** The S3 gateway endpoint's prefix list: what an egress rule to S3 names. */
  readonly s3PrefixListId: pulumi.Output<string>;
  readonly cidr: string;
  /** The zone IDs in subnet order: pin them in config after the first up (docs/infra.md, "Zones"). */
  readonly zoneIds: string[];

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:Network', name, {}, opts);
    const parent = { parent: this };

    this.cidr = args.cidr;
    this.zoneIds = [...args.zoneIds];
    const zoneId = (i: number): string => args.zoneIds[i];

    const vpc = new aws.ec2.Vpc(`${name}-vpc`, {
      cidrBlock: args.cidr,
      enableDnsSupport: true,
      enableDnsHostnames: true, // required for private DNS on interface endpoints
      tags: { Name: `${name}-vpc` },
    }, parent);
    this.vpcId = vpc.id;

    const clusterTag = { [`kubernetes.io/cluster/${args.clusterName}`]: 'shared' };
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: { Name: `${name}-igw` } }, parent);
    const publicRt = new aws.ec2.RouteTable(`${name}-public-rt`, { vpcId: vpc.id, tags: { Name: `${name}-public` } }, parent);
    new aws.ec2.Route(`${name}-public-default`, { routeTableId: publicRt.id, destinationCidrBlock: '0.0.0.0/0', gatewayId: igw.id }, parent);
    // One private route table for all AZs: with no NAT there is nothing AZ-specific to route.
    const privateRt = new aws.ec2.RouteTable(`${name}-private-rt`, { vpcId: vpc.id, tags: { Name: `${name}-private` } }, parent);
    this.privateRouteTableId = privateRt.id;

    this.privateSubnetIds = [];
    this.privateSubnetCidrs = [];
    this.publicSubnetIds = [];
    for (let i = 0; i < args.zoneIds.length; i++) {
      const privateCidr = subnetCidr(args.cidr, 'private', i);
      const priv = new aws.ec2.Subnet(`${name}-private-${i}`, {
        vpcId: vpc.id,
        availabilityZoneId: zoneId(i),
        cidrBlock: privateCidr,
        mapPublicIpOnLaunch: false,
        tags: { Name: `${name}-private-${i}`, 'kubernetes.io/role/internal-elb': '1', tier: 'private', ...clusterTag },
      }, parent);
      new aws.ec2.RouteTableAssociation(`${name}-private-${i}`, { subnetId: priv.id, routeTableId: privateRt.id }, parent);
      this.privateSubnetIds.push(priv.id);
      this.privateSubnetCidrs.push(privateCidr);

      const pub = new aws.ec2.Subnet(`${name}-public-${i}`, {
        vpcId: vpc.id,
        availabilityZoneId: zoneId(i),
        cidrBlock: subnetCidr(args.cidr, 'public', i),
        // Load balancers get their addresses from AWS; nothing here needs an auto-assigned public IP.
        mapPublicIpOnLaunch: false,
        tags: { Name: `${name}-public-${i}`, 'kubernetes.io/role/elb': '1', tier: 'public', ...clusterTag },
      }, parent);
      new aws.ec2.RouteTableAssociation(`${name}-public-${i}`, { subnetId: pub.id, routeTableId: publicRt.id }, parent);
      this.publicSubnetIds.push(pub.id);
    }

    const endpointSg = new aws.ec2.SecurityGroup(`${name}-endpoints`, {
      vpcId: vpc.id,
      description: 'HTTPS from inside the VPC to the AWS interface endpoints',
      tags: { Name: `${name}-endpoints` },
    }, parent);
    new aws.vpc.SecurityGroupIngressRule(`${name}-endpoints-https`, {
      securityGroupId: endpointSg.id,
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      cidrIpv4: args.cidr,
      description: 'HTTPS from the VPC',
    }, parent);
    this.endpointSecurityGroupId = endpointSg.id;

    const s3 = new aws.ec2.VpcEndpoint(`${name}-s3`, {
      vpcId: vpc.id,
      serviceName: `com.amazonaws.${args.region}.s3`,
      vpcEndpointType: 'Gateway',
      routeTableIds: [privateRt.id],
      policy: pulumi.all([args.aws.accountId, args.aws.partition]).apply(([account, partition]) => s3EndpointPolicy(account, partition, args.region)),
      tags: { Name: `${name}-s3` },
    }, parent);
    this.s3PrefixListId = s3.prefixListId;

    // Interface endpoints are billed per AZ-hour: endpointAzCount < azCount trades some
    // cross-AZ traffic for a lower bill (dev); prod puts one in every AZ.
    const endpointSubnets = this.privateSubnetIds.slice(0, args.endpointAzCount);
    const endpointPolicy = args.aws.accountId.apply(interfaceEndpointPolicy);
    for (const service of INTERFACE_ENDPOINT_SERVICES) {
      new aws.ec2.VpcEndpoint(`${name}-${service.replace(/\./g, '-')}`, {
        vpcId: vpc.id,
        serviceName: `com.amazonaws.${args.region}.${service}`,
        vpcEndpointType: 'Interface',
        privateDnsEnabled: true,
        subnetIds: endpointSubnets,
        securityGroupIds: [endpointSg.id],
        policy: endpointPolicy,
        tags: { Name: `${name}-${service}` },
      }, parent);
    }

    this.flowLogs(name, vpc, args);
    this.registerOutputs({ vpcId: this.vpcId });
  }

  /** Flow logs of every interface in the VPC (Security Hub EC2.6), accepted and rejected, to a log group with retention. */
  private flowLogs(name: string, vpc: aws.ec2.Vpc, args: NetworkArgs): void {
    const parent = { parent: this };
    const ctx = args.aws;
    const group = new aws.cloudwatch.LogGroup(`${name}-flow-logs`, { name: `/pricesense/${args.clusterName}/vpc-flow-logs`, retentionInDays: args.logRetentionDays }, parent);
    const role = new aws.iam.Role(`${name}-flow-logs`, {
      ...ctx.roleScope,
      description: 'VPC flow logs delivery to CloudWatch Logs',
      assumeRolePolicy: serviceAssumeRolePolicy(ctx, 'vpc-flow-logs.amazonaws.com'),
    }, parent);
    const policy = new aws.iam.RolePolicy(`${name}-flow-logs`, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [{ Sid: 'Deliver', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'], Resource: pulumi.interpolate`${group.arn}:*` }],
      }),
    }, parent);
    new aws.ec2.FlowLog(`${name}-flow-logs`, {
      vpcId: vpc.id,
      trafficType: 'ALL',
      logDestinationType: 'cloud-watch-logs',
      logDestination: group.arn,
      iamRoleArn: role.arn,
      // 10-minute aggregation: fewer, larger records (flow logs are billed per GB ingested).
      maxAggregationInterval: 600,
      tags: { Name: `${name}-flow-logs` },
    }, { ...parent, dependsOn: [policy] });
  }
}
