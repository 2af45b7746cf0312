import { execFileSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

// ESLint loads its flat config with a dynamic import, which Jest's module sandbox does not
// run: every case is linted in one plain node child with the repository's eslint.config.mjs.
const LINT = `
const { ESLint } = require('eslint');
(async () => {
  const cases = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
  const eslint = new ESLint({ cwd: process.cwd() });
  const out = [];
  for (const [file, code] of cases) {
    const [r] = await eslint.lintText(code + '\\nexport const used = x;\\n', { filePath: require('node:path').resolve(file) });
    out.push(r.messages.map((m) => m.ruleId + ': ' + m.message));
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

function lint(cases: [string, string][]): string[][] {
  return JSON.parse(execFileSync(process.execPath, ['-e', LINT], { cwd: ROOT, input: JSON.stringify(cases), encoding: 'utf8' })) as string[][];
}

const REFUSED: [string, string, string][] = [
  ['etl/lake/probe.ts', "import { x } from '../../model/gates';", 'etl/ may import only contracts, core'],
  ['etl/probe.ts', "import { x } from '../api/config';", 'etl/ may import only contracts, core'],
  ['model/registry/probe.ts', "import { x } from '../../api/app';", 'model/ may import only contracts, core, etl'],
  ['api/probe.ts', "import { x } from '../cli/index';", 'api/ may import only contracts, core, etl, model'],
  ['console/probe.ts', "import { x } from '../api/config';", 'console/ may import only contracts, core, etl, model'],
  ['core/probe.ts', "import { x } from '../etl/lake';", 'core/ may import only contracts'],
  ['infra/probe.ts', "import { x } from '../etl/lake/types';", 'infra/ may import only contracts'],
  ['contracts/probe.ts', "import { x } from '../core/config';", 'contracts/ may import only itself'],
  ['contracts/probe.ts', "import { x } from 'node:path';", 'contracts/ is dependency-free'],
  ['model/probe.ts', 'const x = process.env.PRICESENSE_LAKE;', 'read settings through core/config.ts'],
  ['etl/probe.ts', 'const x = process.env.JEST_WORKER_ID;', 'read settings through core/config.ts'],
];

const ALLOWED: [string, string][] = [
  ['cli/probe.ts', "import { x } from '../api/config';"],
  ['api/probe.ts', "import { x } from '../model/gates';"],
  ['etl/lake/probe.ts', "import { x } from '../../core/config';"],
  ['infra/probe.ts', "import { x } from '../contracts/lake-zones';"],
  ['model/test/probe.test.ts', "import { x } from '../../infra/config';"],
  ['core/probe.ts', 'const x = process.env.HOME;'],
];

describe('ESLint enforces the layers (docs/architecture.md) and the one configuration layer', () => {
  let results: string[][];
  beforeAll(() => {
    results = lint([...REFUSED.map(([f, c]) => [f, c] as [string, string]), ...ALLOWED]);
  });

  it.each(REFUSED.map((c, i) => [...c, i] as const))('refuses in %s: %s', (_file, _code, message, i) => {
    expect(results[i]).toEqual([expect.stringContaining(message)]);
  });

  it.each(ALLOWED.map((c, i) => [...c, REFUSED.length + i] as const))('allows in %s: %s', (_file, _code, i) => {
    expect(results[i]).toEqual([]);
  });
});
