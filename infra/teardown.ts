/**
 * What `pulumi destroy` may do to the resources that hold data (the lake bucket and its
 * guards, the model package group), per tier. One table, used by every component that
 * owns data, asserted in the tests through the captured resource options and enforced by
 * the policy pack (`data-resources-protected`):
 *
 * | tier  | protect | retainOnDelete | forceDestroy (lake) | `pulumi destroy` |
 * | dev   | no      | no             | yes                 | removes everything, objects included |
 * | stage | yes     | no             | yes                 | stops before the data; once unprotected, empties and deletes it |
 * | prod  | yes     | yes            | no                  | stops before the data; once unprotected, leaves it in AWS, forgotten by the stack |
 *
 * Stage: protected, because stage holds a prod-like copy that takes a full pipeline run
 * to rebuild; force-destroyed once someone deliberately unprotects it, so that decision is
 * not followed by a BucketNotEmpty failure half way through a teardown.
 */
import type { Tier } from './stack-config';

export interface DataRetention {
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  /** Empty the bucket on delete (S3 refuses to delete a non-empty bucket). */
  readonly forceDestroy: boolean;
}

export const DATA_RETENTION: Readonly<Record<Tier, DataRetention>> = {
  dev: { protect: false, retainOnDelete: false, forceDestroy: true },
  stage: { protect: true, retainOnDelete: false, forceDestroy: true },
  prod: { protect: true, retainOnDelete: true, forceDestroy: false },
};
