/**
 * Concurrency groups of the delivery workflows, rendered for the runs that happen (a main
 * push, two tags, a teardown per stack). One group per stack serialises deploys and teardowns;
 * GitHub keeps at most one pending job per group and cancels the older one, so every grouped
 * job first waits for its turn outside the group (wait-turn.sh; review M4, i11-i15-2 item 1). actionlint (cli/test/workflows.test.ts) checks the
 * syntax; this checks what the groups evaluate to.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { ROOT } from './stack-files';

interface Concurrency {
  readonly group: string;
  readonly 'cancel-in-progress'?: boolean | string;
}
type ConcurrencySpec = string | Concurrency | undefined;
interface Workflow {
  readonly concurrency?: ConcurrencySpec;
  readonly jobs: Record<string, { readonly concurrency?: ConcurrencySpec; readonly if?: string }>;
}
type Context = Record<string, Record<string, string>>;

const workflow = (name: string): Workflow => loadYaml(readFileSync(path.join(ROOT, '.github', 'workflows', name), 'utf8')) as Workflow;

/** The subset of the Actions expression language the groups use: 'literals', context.paths, ==, !=, &&, ||, ( ). */
function evaluate(expr: string, ctx: Context): string {
  const tokens = expr.match(/'(?:[^']|'')*'|==|!=|&&|\|\||[()]|[A-Za-z_][\w.-]*/g) ?? [];
  let at = 0;
  const primary = (): string => {
    const t = tokens[at++];
    if (t === '(') {
      const v = or();
      at++;
      return v;
    }
    if (t.startsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
    const [scope, ...keys] = t.split('.');
    const value = ctx[scope]?.[keys.join('.')];
    if (value === undefined) throw new Error(`the test gives no value for ${t}`);
    return value;
  };
  const comparison = (): string | boolean => {
    const left = primary();
    if (tokens[at] === '==' || tokens[at] === '!=') {
      const op = tokens[at++];
      const right = primary();
      return op === '==' ? left === right : left !== right;
    }
    return left;
  };
  // Actions' && and || return an operand, as in JavaScript; '' and false are falsy.
  const and = (): string | boolean => {
    let v = comparison();
    while (tokens[at] === '&&') {
      at++;
      const r = comparison();
      v = v ? r : v;
    }
    return v;
  };
  const or = (): string => {
    let v = and();
    while (tokens[at] === '||') {
      at++;
      const r = and();
      v = v ? v : r;
    }
    return String(v);
  };
  return or();
}

const render = (template: string, ctx: Context): string => template.replace(/\$\{\{(.*?)\}\}/g, (_m, e: string) => evaluate(e, ctx));

interface Group {
  readonly run: string;
  readonly job: string;
  readonly group: string;
  readonly cancelInProgress: boolean | string | undefined;
}

function groupsOf(file: string, run: string, ctx: Context): Group[] {
  const wf = workflow(file);
  const specs: [string, ConcurrencySpec][] = [['(workflow)', wf.concurrency], ...Object.entries(wf.jobs).map(([job, j]) => [job, j.concurrency] as [string, ConcurrencySpec])];
  return specs.filter(([, spec]) => spec !== undefined).map(([job, spec]) => {
    const c: Concurrency = typeof spec === 'string' ? { group: spec } : (spec as Concurrency);
    return { run, job, group: render(c.group, ctx).toLowerCase(), cancelInProgress: c['cancel-in-progress'] };
  });
}

const release = (ref: string, refType: 'branch' | 'tag'): Context => ({ github: { ref_name: ref, ref_type: refType } });
const RUNS: Group[] = [
  ...groupsOf('release.yml', 'release main@1', release('main', 'branch')),
  ...groupsOf('release.yml', 'release v1.0.0', release('v1.0.0', 'tag')),
  ...groupsOf('release.yml', 'release v1.1.0', release('v1.1.0', 'tag')),
  ...['dev', 'stage', 'prod'].flatMap((stack) => groupsOf('teardown.yml', `teardown ${stack}`, { inputs: { stack, confirm: stack } })),
];

describe('workflow concurrency groups', () => {
  test('the expression subset evaluates like Actions does', () => {
    const e = "github.ref_type == 'tag' && github.ref_name || 'main'";
    expect(evaluate(e, release('v2', 'tag'))).toBe('v2');
    expect(evaluate(e, release('main', 'branch'))).toBe('main');
    expect(render("a-${{ (inputs.s) }}-b", { inputs: { s: 'x' } })).toBe('a-x-b');
  });

  test('every deploy job and the teardown job is in a group (one run of a stack at a time)', () => {
    const jobs = (run: string): string[] => RUNS.filter((g) => g.run === run).map((g) => g.job);
    expect(jobs('release v1.0.0')).toEqual(expect.arrayContaining(['deploy-dev', 'deploy-stage', 'deploy-prod']));
    expect(jobs('teardown prod')).toEqual(['teardown']);
  });

  test('no group ever cancels a run in progress', () => {
    for (const g of RUNS) expect([g.run, g.job, g.cancelInProgress ?? false]).toEqual([g.run, g.job, false]);
  });

  // Review i11-i15-2 item 1: per-tag groups let a main run and a tag run of one commit, or a
  // teardown and a deploy, interleave on one environment.
  test('every run on a stack, deploy or teardown, main or tag, is in that stack\'s one group', () => {
    const deployJobs = RUNS.filter((g) => g.job.startsWith('deploy-') || g.job === 'teardown');
    for (const g of deployJobs) {
      const stack = g.job === 'teardown' ? g.run.split(' ')[1] : g.job.slice('deploy-'.length);
      expect([g.run, g.job, g.group]).toEqual([g.run, g.job, `deploy-${stack}`]);
    }
    const mainGroups = RUNS.filter((g) => g.run === 'release main@1').map((g) => g.group);
    expect(new Set(mainGroups).size).toBe(mainGroups.length); // a main run waiting for stage approval holds only stage
  });

  // GitHub cancels the older pending job of a group: each job that joins a group must first
  // wait (wait-turn.sh, no group of its own) for the older runs on its stack.
  test('each grouped job needs a turn job on its stack that is in no group', () => {
    const jobs = (file: string): Record<string, { needs?: string | string[]; concurrency?: unknown; steps?: { run?: string }[] }> =>
      (workflow(file) as unknown as { jobs: Record<string, { needs?: string | string[]; concurrency?: unknown; steps?: { run?: string }[] }> }).jobs;
    for (const [file, grouped, stackArg] of [
      ['release.yml', 'deploy-dev', 'dev'], ['release.yml', 'deploy-stage', 'stage'], ['release.yml', 'deploy-prod', 'prod'], ['teardown.yml', 'teardown', '"$STACK"'],
    ] as const) {
      const all = jobs(file);
      const needs = ([] as string[]).concat(all[grouped].needs ?? []);
      const turns = needs.filter((n) => (all[n]?.steps ?? []).some((s) => s.run === `bash .github/scripts/wait-turn.sh ${stackArg}`));
      expect([file, grouped, turns.length]).toEqual([file, grouped, 1]);
      expect(all[turns[0]].concurrency).toBeUndefined();
    }
  });
});

describe('workflow credentials last as long as the job (review L12)', () => {
  interface Step { readonly uses?: string; readonly with?: Record<string, unknown> }
  interface Job { readonly 'timeout-minutes'?: number; readonly steps?: Step[] }
  test.each(['release.yml', 'retrain.yml', 'teardown.yml'])('%s: every role session covers the job\'s timeout', (file) => {
    const jobs = (workflow(file) as unknown as { jobs: Record<string, Job> }).jobs;
    const sessions = Object.entries(jobs).flatMap(([name, job]) => (job.steps ?? [])
      .filter((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials') === true)
      // The action's default session is one hour.
      .map((s) => [name, Number(s.with?.['role-duration-seconds'] ?? 3600) >= 60 * (job['timeout-minutes'] ?? 360)]));
    expect(sessions.length).toBeGreaterThan(0);
    for (const [name, covered] of sessions) expect([name, covered]).toEqual([name, true]);
  });
});
