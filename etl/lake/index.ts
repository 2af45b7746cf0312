import { SETTINGS, setting } from '../../core/config';
import { LocalLake } from './local';
import type { Lake } from './types';

export { LocalLake } from './local';
export type { Lake, LakeObject, LakeZone } from './types';
export { LAKE_ZONES } from './types';

export const DEFAULT_LAKE = SETTINGS.lake.fallback;

/** The lake URI to use: the argument, else the `lake` setting (PRICESENSE_LAKE, the config file), else `.pricesense/lake`. */
export function lakeUri(uri?: string): string {
  return setting('lake', uri);
}

/**
 * Open a lake by URI: `s3://bucket/prefix` selects the S3 backend (loaded lazily, so
 * local use never pays for the AWS SDK), anything else is a local directory.
 */
export async function openLake(uri?: string, options: { s3Client?: unknown } = {}): Promise<Lake> {
  const root = lakeUri(uri);
  if (root.startsWith('s3://')) {
    const { S3Lake } = await import('./s3');
    type S3Options = NonNullable<ConstructorParameters<typeof S3Lake>[1]>;
    return new S3Lake(root, { client: options.s3Client as S3Options['client'] });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(root)) {
    const { UserError } = await import('../../core/errors');
    throw new UserError(`unsupported lake URI '${root}': use a local directory or s3://bucket/prefix`);
  }
  return new LocalLake(root);
}
