/**
 * Reads the running stack's config with a project's parser, turning a ConfigError into a
 * RunError: Pulumi prints its message alone, without a stack trace.
 */
import * as pulumi from '@pulumi/pulumi';
import { ConfigError, type RawConfig } from './stack-config';

export function loadStackConfig<T>(parse: (stack: string, project: string, raw: RawConfig) => T): T {
  try {
    return parse(pulumi.getStack(), pulumi.getProject(), pulumi.runtime.allConfig());
  } catch (err) {
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}
