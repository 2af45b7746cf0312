import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { configuredSetting } from './config';

/**
 * The package root, found by walking up from this file. Works from sources
 * (core/version.ts under ts-jest) and from the build (dist/core/version.js).
 */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'pricesense') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`pricesense package.json not found above ${__dirname}`);
    dir = parent;
  }
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** PRICESENSE_CODE_VERSION, or the git commit of the checkout, or undefined outside a checkout. */
export function codeVersion(): string | undefined {
  const configured = configuredSetting('codeVersion');
  if (configured) return configured;
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
}
