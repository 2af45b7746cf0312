/**
 * Cost control: a monthly budget that alerts through the stack's alert topic, and (dev)
 * node groups that run only during demo hours.
 *
 * Scale-to-zero goes through the EKS API, not the Auto Scaling group: EventBridge
 * Scheduler calls eks:UpdateNodegroupConfig directly (a universal target, no Lambda).
 * An ASG scheduled action would also start and stop instances, but the ASG belongs to
 * EKS: its name is generated, and EKS keeps its own scalingConfig that then disagrees
 * with the ASG and is written back on the next node group update. Through the EKS API
 * the node group's recorded size is the real one, and the node group (created with
 * ignoreScalingChanges, which Cluster Autoscaler needs too) does not fight the schedule on `pulumi up`.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { cronAt, type NodeGroupSettings } from './config';
import { nodeGroupName } from './cluster';
import { serviceAssumeRolePolicy, type AwsContext } from './aws-context';

export interface DemoHours {
  readonly timezone: string;
  readonly days: string;
  readonly start: string;
  readonly end: string;
}

export interface CostArgs {
  readonly stack: string;
  readonly clusterName: string;
  readonly nodeGroups: readonly NodeGroupSettings[];
  readonly monthlyBudgetUsd: number;
  readonly alertThresholdsPercent: readonly number[];
  readonly budgetEmails: readonly string[];
  readonly alertTopicArn: pulumi.Input<string>;
  readonly demoHours: DemoHours | undefined;
  readonly aws: AwsContext;
  /** The cluster the schedules act on; they are created after it and removed before it. */
  readonly cluster: pulumi.Resource;
}

export const SCHEDULER_TARGET_UPDATE_NODEGROUP = 'arn:aws:scheduler:::aws-sdk:eks:updateNodegroupConfig';

/** The UpdateNodegroupConfig request body for one node group at one size. */
export function scalingInput(clusterName: string, group: NodeGroupSettings, desiredSize: number): string {
  return JSON.stringify({
    ClusterName: clusterName,
    NodegroupName: nodeGroupName(clusterName, group.name),
    ScalingConfig: { MinSize: 0, MaxSize: group.maxSize, DesiredSize: desiredSize },
  });
}

export class Cost extends pulumi.ComponentResource {
  readonly budgetName: pulumi.Output<string>;

  constructor(name: string, args: CostArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:Cost', name, {}, opts);
    const ctx = args.aws;
    const parent: pulumi.CustomResourceOptions = { parent: this, provider: ctx.provider };

    const notifications: aws.types.input.budgets.BudgetNotification[] = args.alertThresholdsPercent.map((threshold) => ({
      comparisonOperator: 'GREATER_THAN',
      notificationType: 'ACTUAL',
      threshold,
      thresholdType: 'PERCENTAGE',
      subscriberSnsTopicArns: [args.alertTopicArn],
      ...(args.budgetEmails.length > 0 ? { subscriberEmailAddresses: [...args.budgetEmails] } : {}),
    }));
    notifications.push({
      comparisonOperator: 'GREATER_THAN',
      notificationType: 'FORECASTED',
      threshold: 100,
      thresholdType: 'PERCENTAGE',
      subscriberSnsTopicArns: [args.alertTopicArn],
    });
    const budget = new aws.budgets.Budget(`${name}-budget`, {
      name: `pricesense-${args.stack}-monthly`,
      budgetType: 'COST',
      timeUnit: 'MONTHLY',
      limitAmount: args.monthlyBudgetUsd.toFixed(2),
      limitUnit: 'USD',
      // Counts only this stack's resources; needs the `stack` cost allocation tag activated (docs/infra.md).
      costFilters: [{ name: 'TagKeyValue', values: [`user:stack$${args.stack}`] }],
      notifications,
    }, parent);
    this.budgetName = budget.name;

    if (args.demoHours) this.scheduleDemoHours(name, args, args.demoHours, parent);
    this.registerOutputs({ budgetName: this.budgetName });
  }

  private scheduleDemoHours(name: string, args: CostArgs, hours: DemoHours, parent: pulumi.CustomResourceOptions): void {
    const ctx = args.aws;
    const opts: pulumi.CustomResourceOptions = { ...parent, dependsOn: [args.cluster] };
    const group = new aws.scheduler.ScheduleGroup(`${name}-schedules`, { name: `pricesense-${args.stack}` }, opts);

    const role = new aws.iam.Role(`${name}-scheduler`, {
      ...ctx.roleScope,
      description: 'EventBridge Scheduler: scale pricesense node groups for demo hours',
      assumeRolePolicy: serviceAssumeRolePolicy(ctx, 'scheduler.amazonaws.com'),
    }, parent);
    const policy = new aws.iam.RolePolicy(`${name}-scheduler`, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [{
          Effect: 'Allow',
          Action: ['eks:UpdateNodegroupConfig'],
          Resource: args.nodeGroups.map(
            (g) => pulumi.interpolate`arn:${ctx.partition}:eks:${ctx.region}:${ctx.accountId}:nodegroup/${args.clusterName}/${nodeGroupName(args.clusterName, g.name)}/*`,
          ),
        }],
      }),
    }, parent);

    for (const g of args.nodeGroups) {
      const schedule = (id: string, at: string, desired: number, what: string): aws.scheduler.Schedule =>
        new aws.scheduler.Schedule(`${name}-${g.name}-${id}`, {
          groupName: group.name,
          description: `${what} node group ${nodeGroupName(args.clusterName, g.name)}`,
          scheduleExpression: cronAt(at, hours.days),
          scheduleExpressionTimezone: hours.timezone,
          flexibleTimeWindow: { mode: 'OFF' },
          target: {
            arn: SCHEDULER_TARGET_UPDATE_NODEGROUP,
            roleArn: role.arn,
            input: scalingInput(args.clusterName, g, desired),
            retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3600 },
          },
        }, { ...opts, dependsOn: [args.cluster, policy] });
      schedule('up', hours.start, g.desiredSize, `Start of demo hours: scale up`);
      schedule('down', hours.end, 0, `End of demo hours: scale to zero`);
    }
  }
}
