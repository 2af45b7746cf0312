import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_VARS } from '../../api/config';
import { CONFIG_FILE_ENV, SETTINGS } from '../../core/config';
import { buildProgram } from '../index';

const ROOT = path.join(__dirname, '..', '..');
// Set by pricesense for its own children, not settings: the API primary marks its cluster workers.
const INTERNAL = new Set(['PRICESENSE_WORKER']);

/** The variables named in README.md's "Configuration" table. */
function documented(): Set<string> {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Exit codes'));
  const firstCells = [...section.matchAll(/^\| ([^|]+) \|/gm)].map((m) => m[1]);
  return new Set(firstCells.flatMap((cell) => [...cell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1])));
}

describe('README "Configuration" and the configuration layer', () => {
  it('lists every variable core/config.ts and api/config.ts read', () => {
    const read = [CONFIG_FILE_ENV, ...Object.values(SETTINGS).map((s) => s.env), ...Object.values(ENV_VARS)];
    expect(read.filter((v) => !documented().has(v))).toEqual([]);
  });

  it('lists every PRICESENSE_ variable the production code names', () => {
    const sources = execFileSync('git', ['ls-files', '*.ts'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && !f.startsWith('infra/') && !f.startsWith('bench/') && !/(^|\/)(test|testing)\//.test(f));
    const named = new Set<string>();
    for (const f of sources) for (const m of readFileSync(path.join(ROOT, f), 'utf8').matchAll(/\bPRICESENSE_[A-Z0-9_]*[A-Z0-9]\b/g)) named.add(m[0]);
    expect([...named].filter((v) => !documented().has(v) && !INTERNAL.has(v)).sort()).toEqual([]);
  });
});

describe('flag help for settings (core/config.ts, not commander env())', () => {
  const help = (...names: string[]): string => {
    let cmd = buildProgram();
    for (const n of names) cmd = cmd.commands.find((c) => c.name() === n)!;
    return cmd.helpInformation().replace(/\s+/g, ' ');
  };

  it('names the variable, the configuration file key and the default from the one table', () => {
    expect(help('train')).toContain(`--lake <uri> lake root: a directory or s3://bucket/prefix (default: $${SETTINGS.lake.env}, then the configuration file's "lake", else ${SETTINGS.lake.fallback})`);
    expect(help('registry', 'approve')).toContain(`(default: $${SETTINGS.user.env}, then the configuration file's "user", else the OS user)`);
    expect(help('registry', 'card')).toContain(`gold manifest (default: $${SETTINGS.lake.env}, then the configuration file's "lake", when set)`);
  });
});
