/**
 * One set of image repositories for every environment. The image job pushes each image
 * once; dev, stage and prod pull the same bytes by digest (`<repo>@sha256:…`), so what was
 * scanned and smoke-tested in dev is what runs in prod. The repositories belong to the
 * delivery bootstrap (infra/delivery), not to a stack that is destroyed with its
 * environment.
 *
 * No dependency on the cloud SDKs: the config schemas, the policy pack and the tests use it.
 */
import { type Spec, obj, optional, str } from './config-schema';
import type { Tier } from './stack-config';

/** Repository name per image (the Dockerfile targets: runtime, jobs, and the in-VPC deployer). */
export const IMAGE_REPOSITORIES = {
  api: 'pricesense/api',
  jobs: 'pricesense/jobs',
  deployer: 'pricesense/deployer',
} as const;
export type ImageName = keyof typeof IMAGE_REPOSITORIES;

export interface ImageRef {
  readonly tag?: string;
  readonly digest?: string;
}

/**
 * The ECR mirror of registry.k8s.io/autoscaling/cluster-autoscaler, next to the API's
 * repository (no NAT: nodes pull from ECR only). `crane copy` keeps the upstream digest, so
 * one digest names the same bytes in every account (docs/infra.md, "Autoscaling").
 */
export const AUTOSCALER_MIRROR_REPOSITORY = 'mirror/cluster-autoscaler';

export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
/**
 * A full reference pinned to content in one of our repositories: `<account>.dkr.ecr.<region>.
 * amazonaws.com/<repository>[:<tag>]@sha256:<64 hex>`, the repository one of IMAGE_REPOSITORIES
 * or the autoscaler's mirror. Any other registry's digest is bytes nobody here scanned.
 */
export const DIGEST_REFERENCE = new RegExp(
  `^\\d{12}\\.dkr\\.ecr\\.[a-z]{2}(-[a-z]+)+-\\d\\.amazonaws\\.com(\\.cn)?/(${[...Object.values(IMAGE_REPOSITORIES), AUTOSCALER_MIRROR_REPOSITORY].join('|')})(:[\\w.-]+)?@sha256:[a-f0-9]{64}$`,
);

export function isDigestReference(image: string): boolean {
  return DIGEST_REFERENCE.test(image);
}

export function imageRefSpec(): Spec<ImageRef> {
  return obj({
    tag: optional(str({ pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, patternText: 'an image tag such as 1.4.2' })),
    digest: optional(str({ pattern: DIGEST_PATTERN, patternText: 'an image digest sha256:<64 hex>' })),
  });
}

/**
 * What is wrong with an image reference for a tier, or undefined. Stage and prod run only
 * what dev ran, so they take digests; dev may also take a tag for hand-made experiments.
 */
export function imageRefProblem(tier: Tier, ref: ImageRef): string | undefined {
  if (ref.tag !== undefined && ref.digest !== undefined) return 'either tag or digest, not both';
  if (tier !== 'dev' && ref.tag !== undefined) return `a digest in ${tier} (images are promoted from dev by digest; a tag names whatever was pushed under it)`;
  return undefined;
}

/** `<repo>@sha256:...` when a digest is configured, else `<repo>:<tag>`; undefined when neither. */
export function imageReference(repositoryUrl: string, ref: ImageRef): string | undefined {
  if (ref.digest !== undefined) return `${repositoryUrl}@${ref.digest}`;
  if (ref.tag !== undefined) return `${repositoryUrl}:${ref.tag}`;
  return undefined;
}

export function hasImage(ref: ImageRef): boolean {
  return ref.tag !== undefined || ref.digest !== undefined;
}

/**
 * Review H2 of issue 11: digests are never committed, so a `pulumi up` without them would
 * plan the deletion of what they run (the app's Deployment, the in-VPC deployer, the
 * pipeline's image defaults). The programs refuse instead; this says how to keep what runs.
 */
export function missingImageIssue(key: string, stack: string, output: string, deletes: string): { key: string; expected: string; got: string } {
  return {
    key,
    expected: `the release's image (a run without it would delete ${deletes}). The release workflow sets it; by hand, keep what runs: ` +
      `pulumi config set --stack ${stack} --path ${key}.digest "$(pulumi stack output --stack ${stack} ${output} | cut -d@ -f2)"`,
    got: 'nothing',
  };
}

export interface AutoscalerImage {
  /** Upstream release tag, v<Kubernetes minor>.<patch>. */
  readonly version: string;
  readonly digest: string;
}

/** `<registry>/mirror/cluster-autoscaler:<version>@<digest>`, in the registry of the API's repository. */
export function autoscalerImageReference(apiRepositoryUrl: string, image: AutoscalerImage): string {
  const registry = apiRepositoryUrl.split('/')[0];
  return `${registry}/${AUTOSCALER_MIRROR_REPOSITORY}:${image.version}@${image.digest}`;
}

/**
 * The autoscaler's minor version must be the cluster's (its compatibility rule: it simulates
 * the scheduler of that Kubernetes release). Undefined when they match.
 */
export function autoscalerVersionProblem(version: string, kubernetesVersion: string): string | undefined {
  const minor = /^v(1\.\d+)\./.exec(version)?.[1];
  return minor === kubernetesVersion ? undefined
    : `pricesense:clusterAutoscaler.version ${version} does not match the cluster's Kubernetes ${kubernetesVersion}: ` +
      `mirror registry.k8s.io/autoscaling/cluster-autoscaler:v${kubernetesVersion}.<patch> and set its version and digest (docs/infra.md, "Autoscaling")`;
}
