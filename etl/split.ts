/**
 * The train/validation/test split: a pure function of BASKET_ID, so it is stable across
 * reruns, across any partitioning or ordering of the input, and across DuckDB versions
 * (MD5 is specified; DuckDB's hash() is not).
 *
 *   bucket = int(first 8 hex digits of md5(BASKET_ID as decimal text)) mod 100
 *   train: bucket < 80, validation: 80 <= bucket < 90, test: bucket >= 90
 */
import { createHash } from 'node:crypto';
import type { GoldSplit } from './gold-schema';

export const SPLIT_FRACTIONS: Readonly<Record<GoldSplit, number>> = { train: 0.8, validation: 0.1, test: 0.1 };
export const SPLIT_METHOD = 'bucket = int(md5(BASKET_ID)[0:8], 16) mod 100; train < 80 <= validation < 90 <= test';

export function splitBucket(basketId: string): number {
  return parseInt(createHash('md5').update(basketId).digest('hex').slice(0, 8), 16) % 100;
}

export function splitOf(basketId: string): GoldSplit {
  const b = splitBucket(basketId);
  return b < 80 ? 'train' : b < 90 ? 'validation' : 'test';
}

/** The same function in DuckDB SQL; idExpr must be VARCHAR. */
export function splitSql(idExpr: string): string {
  const bucket = `(('0x' || substr(md5(${idExpr}), 1, 8))::BIGINT % 100)`;
  return `CASE WHEN ${bucket} < 80 THEN 'train' WHEN ${bucket} < 90 THEN 'validation' ELSE 'test' END`;
}
