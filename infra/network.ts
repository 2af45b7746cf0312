/**
 * The VPC, built from plain aws.ec2 resources so every part is visible to tests and
 * the policy pack. Nodes and pods live in private subnets that have no route to the
 * internet at all (no NAT gateway: it costs ~$33/month per AZ plus data and is an
 * egress path we do not want); AWS APIs are reached through VPC endpoints instead.
 * Public subnets exist only so a load balancer can be placed there.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';

/** Interface endpoints the private nodes and pods need, by AWS service suffix. */
export const INTERFACE_ENDPOINT_SERVICES = [
  'ecr.api', // image manifests, auth token
  'ecr.dkr', // image pulls (layers come through the S3 gateway endpoint)
  'sts', // IRSA: AssumeRoleWithWebIdentity
  'logs', // control plane + Container Insights log shipping
  'ec2', // vpc-cni ENI management
  'elasticloadbalancing', // the service controller creating the NLB
  'autoscaling', // node group scaling
  'monitoring', // CloudWatch metrics from the agent
  'sagemaker.api', // model registry reads from the API
  'sagemaker.runtime',
  'eks-auth', // EKS Pod Identity (the CloudWatch agent's credentials)
] as const;

export interface NetworkArgs {
  readonly cidr: string;
  readonly azCount: number;
  readonly endpointAzCount: number;
  readonly region: string;
  /** Subnets carry the cluster tag so EKS and its load balancer controller find them. */
  readonly clusterName: string;
}

/** The n-th /20 (private) or /24 (public) inside a /16. */
export function subnetCidr(vpcCidr: string, kind: 'private' | 'public', index: number): string {
  const [a, b] = vpcCidr.split('/')[0].split('.');
  return kind === 'private' ? `${a}.${b}.${index * 16}.0/20` : `${a}.${b}.${240 + index}.0/24`;
}

export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly privateSubnetIds: pulumi.Output<string>[];
  readonly publicSubnetIds: pulumi.Output<string>[];
  readonly privateRouteTableId: pulumi.Output<string>;
  readonly endpointSecurityGroupId: pulumi.Output<string>;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:Network', name, {}, opts);
    const parent = { parent: this };

    const zones = aws.getAvailabilityZonesOutput(
      { state: 'available', filters: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }] },
      parent,
    );
    const azName = (i: number): pulumi.Output<string> =>
      zones.names.apply((names) => {
        if (names.length < args.azCount) {
          throw new Error(`region ${args.region} has ${names.length} availability zones; network.azCount asks for ${args.azCount}`);
        }
        return names[i];
      });

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
    this.publicSubnetIds = [];
    for (let i = 0; i < args.azCount; i++) {
      const priv = new aws.ec2.Subnet(`${name}-private-${i}`, {
        vpcId: vpc.id,
        availabilityZone: azName(i),
        cidrBlock: subnetCidr(args.cidr, 'private', i),
        mapPublicIpOnLaunch: false,
        tags: { Name: `${name}-private-${i}`, 'kubernetes.io/role/internal-elb': '1', tier: 'private', ...clusterTag },
      }, parent);
      new aws.ec2.RouteTableAssociation(`${name}-private-${i}`, { subnetId: priv.id, routeTableId: privateRt.id }, parent);
      this.privateSubnetIds.push(priv.id);

      const pub = new aws.ec2.Subnet(`${name}-public-${i}`, {
        vpcId: vpc.id,
        availabilityZone: azName(i),
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

    new aws.ec2.VpcEndpoint(`${name}-s3`, {
      vpcId: vpc.id,
      serviceName: `com.amazonaws.${args.region}.s3`,
      vpcEndpointType: 'Gateway',
      routeTableIds: [privateRt.id],
      tags: { Name: `${name}-s3` },
    }, parent);

    // Interface endpoints are billed per AZ-hour: endpointAzCount < azCount trades some
    // cross-AZ traffic for a lower bill (dev); prod puts one in every AZ.
    const endpointSubnets = this.privateSubnetIds.slice(0, args.endpointAzCount);
    for (const service of INTERFACE_ENDPOINT_SERVICES) {
      new aws.ec2.VpcEndpoint(`${name}-${service.replace(/\./g, '-')}`, {
        vpcId: vpc.id,
        serviceName: `com.amazonaws.${args.region}.${service}`,
        vpcEndpointType: 'Interface',
        privateDnsEnabled: true,
        subnetIds: endpointSubnets,
        securityGroupIds: [endpointSg.id],
        tags: { Name: `${name}-${service}` },
      }, parent);
    }

    this.registerOutputs({ vpcId: this.vpcId });
  }
}
