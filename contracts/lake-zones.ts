/**
 * The lake's zones: top-level prefixes of the lake (a directory or one S3 bucket). The ETL
 * writes them (etl/lake) and infra grants and expires them per prefix (infra/data-lake.ts).
 * Dependency-free: infra may import it.
 */
export const LAKE_ZONES = ['raw', 'silver', 'gold', 'artifacts', 'logs', 'tmp'] as const;
export type LakeZone = (typeof LAKE_ZONES)[number];
