/**
 * The ECR repositories of the API, jobs and deployer images: created once per account by
 * the delivery bootstrap (infra/delivery), looked up by every environment's platform stack.
 * CI pushes each image once; environments differ only in the digest they run.
 *
 * Tags are immutable and every image is scanned on push. The lifecycle policy never
 * expires a release tag (`v*`): prod may run any release, and a rollback pulls the one
 * before it.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { IMAGE_REPOSITORIES, type ImageName, type ImageRef, hasImage, imageReference } from './images';

/** ECR lifecycle policy: untagged layers expire, only the newest N branch builds (`main-*`) stay; release tags stay. */
export function lifecyclePolicy(untaggedExpireDays: number, keepBuilds: number): string {
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
        description: `keep the last ${keepBuilds} branch builds (main-*); release tags (v*) never expire`,
        selection: { tagStatus: 'tagged', tagPatternList: ['main-*'], countType: 'imageCountMoreThan', countNumber: keepBuilds },
        action: { type: 'expire' },
      },
    ],
  });
}

export interface ImageRepositoriesArgs {
  readonly untaggedExpireDays: number;
  readonly keepBuilds: number;
}

/** The repositories themselves (delivery stack). */
export class ImageRepositories extends pulumi.ComponentResource {
  readonly urls: Record<ImageName, pulumi.Output<string>>;
  readonly arns: Record<ImageName, pulumi.Output<string>>;

  constructor(name: string, args: ImageRepositoriesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:ImageRepositories', name, {}, opts);
    const urls: Partial<Record<ImageName, pulumi.Output<string>>> = {};
    const arns: Partial<Record<ImageName, pulumi.Output<string>>> = {};
    for (const image of Object.keys(IMAGE_REPOSITORIES) as ImageName[]) {
      // Every environment runs from these repositories, prod included: protected, retained
      // on destroy, never force-deleted with images in them.
      const repo = new aws.ecr.Repository(`${name}-${image}`, {
        name: IMAGE_REPOSITORIES[image],
        imageTagMutability: 'IMMUTABLE',
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: 'AES256' }],
        forceDelete: false,
      }, { parent: this, protect: true, retainOnDelete: true });
      new aws.ecr.LifecyclePolicy(`${name}-${image}`, {
        repository: repo.name,
        policy: lifecyclePolicy(args.untaggedExpireDays, args.keepBuilds),
      }, { parent: this });
      urls[image] = repo.repositoryUrl;
      arns[image] = repo.arn;
    }
    this.urls = urls as Record<ImageName, pulumi.Output<string>>;
    this.arns = arns as Record<ImageName, pulumi.Output<string>>;
    this.registerOutputs({ urls: this.urls });
  }
}

export interface RepositoryRef {
  readonly url: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;
}

/**
 * The shared repositories as a platform stack sees them. A lookup, not a resource: the
 * platform never owns (or deletes) them, and a missing repository fails the preview with
 * the delivery bootstrap as the fix instead of a pull error at deploy time.
 */
export function lookupImageRepositories(provider: aws.Provider): Record<ImageName, RepositoryRef> {
  const out: Partial<Record<ImageName, RepositoryRef>> = {};
  for (const image of Object.keys(IMAGE_REPOSITORIES) as ImageName[]) {
    const repo = aws.ecr.getRepositoryOutput({ name: IMAGE_REPOSITORIES[image] }, { provider });
    out[image] = { url: repo.repositoryUrl, arn: repo.arn };
  }
  return out as Record<ImageName, RepositoryRef>;
}

/** The configured image in a shared repository (`<url>@sha256:…` or `<url>:<tag>`), or undefined when none is set. */
export function imageIn(repo: RepositoryRef, ref: ImageRef): pulumi.Output<string> | undefined {
  return hasImage(ref) ? repo.url.apply((url) => imageReference(url, ref) as string) : undefined;
}
