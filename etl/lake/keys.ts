/**
 * Lake keys are relative, '/'-separated and may not escape the root. Every backend
 * checks them the same way, so a key that works locally also works on S3.
 */
export function assertLakeKey(key: string, allowTrailingSlash = false): void {
  const bad =
    key === '' ||
    key.startsWith('/') ||
    key.includes('\\') ||
    key.includes('\0') ||
    (!allowTrailingSlash && key.endsWith('/')) ||
    key.split('/').some((part, i, parts) => part === '..' || part === '.' || (part === '' && !(allowTrailingSlash && i === parts.length - 1)));
  if (bad) throw new Error(`invalid lake key '${key}': keys are relative paths like 'gold/train.parquet' (no leading '/', no '..', no empty segments)`);
}
