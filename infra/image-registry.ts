/**
 * The ECR repository for the API image. Tags are immutable, so a tag names one image
 * forever and a deployment by tag is as reproducible as one by digest.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { Tier } from './config';

export interface ImageRegistryArgs {
  readonly tier: Tier;
  readonly stack: string;
  readonly untaggedExpireDays: number;
  readonly keepReleases: number;
}

/** ECR lifecycle policy: untagged layers expire, only the newest N tagged images stay. */
export function lifecyclePolicy(untaggedExpireDays: number, keepReleases: number): string {
  return JSON.stringify({
    rules: [
      {
        rulePriority: 1,
        description: `expire untagged images after ${untaggedExpireDays} days`,
        selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: untaggedExpireDays },
        action: { type: 'expire' },
      },
      {
        rulePriority: 2,
        description: `keep the last ${keepReleases} tagged images`,
        selection: { tagStatus: 'tagged', tagPatternList: ['*'], countType: 'imageCountMoreThan', countNumber: keepReleases },
        action: { type: 'expire' },
      },
    ],
  });
}

export class ImageRegistry extends pulumi.ComponentResource {
  readonly repositoryUrl: pulumi.Output<string>;
  readonly repositoryArn: pulumi.Output<string>;

  constructor(name: string, args: ImageRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:ImageRegistry', name, {}, opts);
    const repo = new aws.ecr.Repository(`${name}`, {
      name: `pricesense-${args.stack}/api`,
      imageTagMutability: 'IMMUTABLE',
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfigurations: [{ encryptionType: 'AES256' }],
      // Only dev may lose its images on destroy; elsewhere destroy fails while images exist.
      forceDelete: args.tier === 'dev',
    }, { parent: this });
    new aws.ecr.LifecyclePolicy(`${name}-lifecycle`, {
      repository: repo.name,
      policy: lifecyclePolicy(args.untaggedExpireDays, args.keepReleases),
    }, { parent: this });
    this.repositoryUrl = repo.repositoryUrl;
    this.repositoryArn = repo.arn;
    this.registerOutputs({ repositoryUrl: this.repositoryUrl });
  }
}
