/**
 * The committed stack files of the three projects, as the Pulumi engine hands their config
 * to a program. No Pulumi SDK: config tests and script tests load only this.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { load as loadYaml } from 'js-yaml';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIGEST = `sha256:${'ab'.repeat(32)}`;
export const AUTOSCALER_DIGEST = `sha256:${'0c'.repeat(32)}`;
/** An app stack's Cluster Autoscaler mirror, as committed once per stack (docs/infra.md, "Autoscaling"). */
export const AUTOSCALER_CONFIG = { 'pricesense:clusterAutoscaler': JSON.stringify({ version: 'v1.33.0', digest: AUTOSCALER_DIGEST }) };

export type Project = 'platform' | 'app' | 'delivery';
export const PROJECT_NAMES: Record<Project, string> = { platform: 'pricesense', app: 'pricesense-app', delivery: 'pricesense-delivery' };
const PROJECT_DIRS: Record<Project, string> = { platform: ROOT, app: path.join(ROOT, 'infra', 'app'), delivery: path.join(ROOT, 'infra', 'delivery') };

/** Stack config as the engine hands it to the program: every value a string, objects as JSON. */
export function stackConfig(project: Project, stack: string): Record<string, string> {
  const file = path.join(PROJECT_DIRS[project], `Pulumi.${stack}.yaml`);
  const doc = loadYaml(fs.readFileSync(file, 'utf8')) as { config?: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.config ?? {})) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}
