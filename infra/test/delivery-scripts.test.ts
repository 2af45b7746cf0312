/**
 * The delivery scripts (release, in-VPC deploy, teardown) run for real under bash, with the
 * outside tools they drive (pulumi, aws, kubectl, docker, the pricesense CLI) replaced by
 * stubs on PATH that record every call and answer from the scenario's environment. What is
 * asserted is the scripts' own logic: order, arguments, rollback, refusals. shellcheck
 * (Debian package, .ci/apt-packages.txt) checks every script.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { IMAGE_REPOSITORIES } from '../images';
import { ROOT } from './stack-files';

const SCRIPTS = {
  build: path.join(ROOT, '.github', 'scripts', 'build-push-scan.sh'),
  deploy: path.join(ROOT, '.github', 'scripts', 'deploy.sh'),
  runInVpc: path.join(ROOT, '.github', 'scripts', 'run-in-vpc.sh'),
  teardown: path.join(ROOT, '.github', 'scripts', 'teardown.sh'),
  inVpc: path.join(ROOT, 'infra', 'deployer', 'in-vpc.sh'),
};
const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const [NEW, OLD, JOBS, DEPLOYER] = [digest('a'), digest('b'), digest('c'), digest('d')];
const REGISTRY = '123456789012.dkr.ecr.us-east-1.amazonaws.com';

// Each stub logs "<tool> <args>" and answers from env: OUT_<name> for `pulumi stack output <name>`,
// FAIL_UP_DIGEST / SMOKE_FAIL_DIGEST for the digest last set in config, BUILD_STATUS, LEFTOVER_LBS, ...
const STUBS: Record<string, string> = {
  pulumi: `
log pulumi "$@"
# Like the CLI: a command on "the current stack" needs one selected (stack select) or named (--stack).
explicit=""; for a in "$@"; do [ "$a" = --stack ] && explicit=1; done
case "$1 $2" in
  "stack select") echo "$3" > "$STATE.stack"; exit 0 ;;
  "login "*) exit 0 ;;
esac
if [ -z "$explicit" ] && [ ! -s "$STATE.stack" ]; then echo "error: no stack selected; please use pulumi stack select" >&2; exit 255; fi
case "$1 $2" in
  "stack output")
    shift 2; name=""
    while [ $# -gt 0 ]; do case "$1" in --stack) shift 2 ;; -*) shift ;; *) [ -z "$name" ] && name="$1"; shift ;; esac; done
    # After an up, the image outputs are the digests it applied (or UP_OUT_<name>: another run's).
    if [ -s "$STATE.up" ]; then
      after="UP_OUT_$name"; [ -n "\${!after+x}" ] && { echo "\${!after}"; exit 0; }
      case "$name" in
        pipelineApiImage) echo "${REGISTRY}/pricesense/api@$(grep -E 'images.api.digest=' "$STATE" | tail -1 | cut -d= -f2)"; exit 0 ;;
        pipelineJobsImage) echo "${REGISTRY}/pricesense/jobs@$(grep -E 'images.jobs.digest=' "$STATE" | tail -1 | cut -d= -f2)"; exit 0 ;;
        deployerImage) echo "${REGISTRY}/pricesense/deployer@$(grep -E 'images.deployer.digest=' "$STATE" | tail -1 | cut -d= -f2)"; exit 0 ;;
      esac
    fi
    var="OUT_$name"; [ -n "\${!var+x}" ] || { echo "no output $name" >&2; exit 1; }; echo "\${!var}" ;;
  "config set") echo "$4=$5" >> "$STATE" ;;
  *)
    if [ "$1" = up ] && [ -n "\${FAIL_UP_DIGEST:-}" ] && [ "$(current)" = "$FAIL_UP_DIGEST" ]; then echo "update failed" >&2; exit 1; fi
    if [ "$1" = up ] && [ -n "\${PLATFORM_LOCKED:-}" ]; then echo "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with \\\`pulumi cancel\\\`." >&2; exit 255; fi
    [ "$1" = up ] && echo 1 > "$STATE.up"
    true
    # FAILED_DESTROYS: how many of the first destroys fail (DependencyViolation on the deployer's ENIs).
    if [ "$1" = destroy ]; then
      n=$(( $(cat "$STATE.destroys" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$STATE.destroys"
      if [ "$n" -le "\${FAILED_DESTROYS:-0}" ]; then echo "error: deleting security group: DependencyViolation" >&2; exit 1; fi
    fi ;;
esac`,
  aws: `
log aws "$@"
case "$1 $2" in
  "codebuild start-build")
    # FAILED_BUILDS: how many of the first builds fail (then BUILD_STATUS, default SUCCEEDED).
    n=$(( $(cat "$STATE.builds" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$STATE.builds"
    if [ "$n" -le "\${FAILED_BUILDS:-0}" ]; then echo FAILED > "$STATE.status"; else echo "\${BUILD_STATUS:-SUCCEEDED}" > "$STATE.status"; fi
    echo "pricesense-deployer:build-1" ;;
  "codebuild batch-get-builds")
    case "$*" in *buildStatus*) cat "$STATE.status" ;; *deepLink*) echo "https://console.aws/logs/build-1" ;; *groupName*) echo "/aws/codebuild/deployer" ;; *streamName*) echo "build-1" ;; esac ;;
  "logs get-log-events") echo "\${BUILD_LOG:-Error: pulumi up failed}" ;;
  "resourcegroupstaggingapi get-resources") echo "\${LEFTOVER_LBS:-}" ;;
  "sagemaker list-model-packages") echo "\${MODEL_PACKAGES:-None}" ;;
  "ecr describe-images")
    case "$*" in
      *imageDigest*) case "$*" in *pricesense/api*) echo "${NEW}" ;; *pricesense/jobs*) echo "${JOBS}" ;; *) echo "${DEPLOYER}" ;; esac ;;
      *) exit 1 ;;
    esac ;;
  "ecr describe-image-scan-findings")
    case "$*" in
      # SCAN_STATUSES: the status each successive look reports, the last one sticking.
      *imageScanStatus*)
        n=$(cat "$STATE.scans" 2>/dev/null || echo 0); echo $(( n + 1 )) > "$STATE.scans"
        read -r -a statuses <<< "\${SCAN_STATUSES:-COMPLETE}"; i=$(( n < \${#statuses[@]} ? n : \${#statuses[@]} - 1 ))
        # NOT_FOUND / DENIED: the CLI's errors (ScanNotFoundException right after a push; a missing permission).
        case "\${statuses[$i]}" in
          NOT_FOUND) echo "An error occurred (ScanNotFoundException) when calling the DescribeImageScanFindings operation: Image scan does not exist" >&2; exit 254 ;;
          DENIED) echo "An error occurred (AccessDeniedException) when calling the DescribeImageScanFindings operation: not authorized" >&2; exit 254 ;;
        esac
        echo "\${statuses[$i]}" ;;
      *) echo "\${CRITICAL:-None}" ;;
    esac ;;
  "eks describe-nodegroup") echo "\${NODEGROUP_DESIRED:-2}" ;;
esac`,
  kubectl: `
log kubectl "$@"
case "$1 $2" in "get nodes") echo "\${NODES_READY-True}" ;; get*) echo "\${K8S_LBS:-}" ;; port-forward*) exec sleep 5 ;; esac`,
  docker: 'log docker "$@"',
  pricesense: `
log pricesense "$@"
# Like the real smoke test (which retries until --timeout), wait until the port-forward is up.
case "$1" in smoke-test) for _ in $(seq 200); do grep -q ' port-forward ' "$CALLS" 2>/dev/null && break; sleep 0.05; done ;; esac
if [ -n "\${SMOKE_FAIL_DIGEST:-}" ] && [ "$(current)" = "$SMOKE_FAIL_DIGEST" ]; then echo "smoke test failed" >&2; exit 1; fi`,
};
const PRELUDE = `#!/usr/bin/env bash
log() { echo "$*" >> "$CALLS"; }
current() { grep -E '(app.image|images.api).digest=' "$STATE" 2>/dev/null | tail -1 | cut -d= -f2; }
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'pricesense-scripts-'));
  for (const [name, body] of Object.entries(STUBS)) {
    writeFileSync(path.join(dir, name), `${PRELUDE}${body}\n`);
    chmodSync(path.join(dir, name), 0o755);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  readonly status: number | null;
  readonly output: string;
  readonly calls: string[];
}

let runs = 0;
function run(script: string, args: string[], env: Record<string, string> = {}): Result {
  const calls = path.join(dir, `calls-${++runs}`);
  const state = path.join(dir, `state-${runs}`);
  const r = spawnSync('bash', [script, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir, CALLS: calls, STATE: state, POLL_SECONDS: '0', ...env },
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}`, calls: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [] };
}

const platformOutputs = (stack: string): Record<string, string> => ({
  OUT_deployerProject: `pricesense-${stack}-deployer`,
  OUT_tier: stack,
  OUT_clusterName: `pricesense-${stack}`,
  OUT_modelPackageGroup: `pricesense-${stack}`,
  OUT_lakeBucket: `pricesense-lake-${stack}-123456789012`,
  OUT_pipelineApiImage: `${REGISTRY}/pricesense/api@${OLD}`,
  OUT_pipelineJobsImage: `${REGISTRY}/pricesense/jobs@${digest('e')}`,
  OUT_deployerImage: `${REGISTRY}/pricesense/deployer@${digest('f')}`,
});

describe('the stubs behave like the tools where the scripts depend on it', () => {
  test('pulumi refuses a command on the current stack when none is selected or named', () => {
    const script = path.join(dir, 'no-select.sh');
    writeFileSync(script, 'set -e\npulumi config set --path pricesense:x 1\n');
    const r = run(script, []);
    expect(r.status).toBe(255);
    expect(r.output).toContain('no stack selected');
    writeFileSync(script, 'set -e\npulumi stack select dev\npulumi config set --path pricesense:x 1\npulumi stack output --stack prod tier\n');
    expect(run(script, [], { OUT_tier: 'prod' }).status).toBe(0);
  });
});

describe('shellcheck', () => {
  test.each(Object.entries(SCRIPTS))('%s is clean', (_name, script) => {
    const r = spawnSync('shellcheck', ['--severity=style', script], { encoding: 'utf8' });
    expect(r.error).toBeUndefined(); // shellcheck must be installed (.ci/apt-packages.txt)
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('build-push-scan.sh', () => {
  test('pushes each image once to its shared repository and hands the digests on', () => {
    const out = path.join(dir, 'github-output');
    const r = run(SCRIPTS.build, [], { REGISTRY, TAG: 'v1.2.3', GITHUB_OUTPUT: out });
    expect(r.status).toBe(0);
    const pushes = r.calls.filter((c) => c.startsWith('docker push')).map((c) => c.replace('docker push ', ''));
    expect(pushes).toEqual(Object.values(IMAGE_REPOSITORIES).map((repo) => `${REGISTRY}/${repo}:v1.2.3`));
    expect(r.calls).toContain(`docker build --pull -f infra/deployer/Dockerfile --build-arg CODE_VERSION=unknown -t ${REGISTRY}/pricesense/deployer:v1.2.3 .`);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toEqual([`api_digest=${NEW}`, `jobs_digest=${JOBS}`, `deployer_digest=${DEPLOYER}`]);
  });

  test('waits for enhanced scanning (PENDING, then ACTIVE: it never reports COMPLETE), then hands the digests on', () => {
    const out = path.join(dir, 'github-output-enhanced');
    const r = run(SCRIPTS.build, [], { REGISTRY, TAG: 'v1.2.5', GITHUB_OUTPUT: out, SCAN_STATUSES: 'NOT_FOUND PENDING IN_PROGRESS ACTIVE', SCAN_POLL_SECONDS: '0' });
    expect(r.status).toBe(0);
    expect(r.calls.filter((c) => c.includes('imageScanStatus'))).toHaveLength(4 + 1 + 1);
    expect(readFileSync(out, 'utf8')).toContain(`api_digest=${NEW}`);
  });

  test.each([
    ['a scan that fails', 'FAILED', '1800', 'the scan of pricesense/api:v1.2.6 ended FAILED'],
    ['no result within SCAN_WAIT_SECONDS', 'PENDING', '0', 'no scan result for pricesense/api:v1.2.6 after 0s (status PENDING)'],
    // Review i11-i15-2 item 7: only ScanNotFound means "not yet"; any other error is not a pending scan.
    ['an error other than ScanNotFound', 'DENIED', '1800', 'could not read the scan status of pricesense/api:v1.2.6: An error occurred (AccessDeniedException)'],
  ])('%s stops the release before any digest is handed on', (_what, statuses, wait, message) => {
    const out = path.join(dir, `github-output-${statuses}`);
    const r = run(SCRIPTS.build, [], { REGISTRY, TAG: 'v1.2.6', GITHUB_OUTPUT: out, SCAN_STATUSES: statuses, SCAN_WAIT_SECONDS: wait, SCAN_POLL_SECONDS: '0' });
    expect(r.status).toBe(1);
    expect(r.output).toContain(`::error::${message}`);
    expect(existsSync(out)).toBe(false);
  });

  test('a critical finding stops the release before any digest is handed on', () => {
    const out = path.join(dir, 'github-output-critical');
    const r = run(SCRIPTS.build, [], { REGISTRY, TAG: 'v1.2.4', GITHUB_OUTPUT: out, CRITICAL: '2' });
    expect(r.status).toBe(1);
    expect(r.output).toContain(`::error::${REGISTRY}/pricesense/api:v1.2.4 has 2 CRITICAL vulnerabilities; not deploying`);
    expect(existsSync(out)).toBe(false);
  });
});

describe('deploy.sh (GitHub side)', () => {
  test('platform up with the policy pack at the new digests, then the app from inside the VPC', () => {
    const r = run(SCRIPTS.deploy, ['stage', NEW, JOBS, DEPLOYER], platformOutputs('stage'));
    expect(r.status).toBe(0);
    expect(r.calls).toEqual([
      'pulumi stack select stage',
      'pulumi stack output pipelineApiImage',
      'pulumi stack output pipelineJobsImage',
      'pulumi stack output deployerImage',
      'pulumi stack output demoHours',
      `pulumi config set --path pricesense:images.api.digest ${NEW}`,
      `pulumi config set --path pricesense:images.jobs.digest ${JOBS}`,
      `pulumi config set --path pricesense:images.deployer.digest ${DEPLOYER}`,
      'pulumi up --yes --policy-pack infra/policies',
      'pulumi stack output deployerProject --stack stage',
      `aws codebuild start-build --project-name pricesense-stage-deployer --environment-variables-override name=ACTION,value=deploy,type=PLAINTEXT name=API_DIGEST,value=${NEW},type=PLAINTEXT --query build.id --output text`,
      'aws codebuild batch-get-builds --ids pricesense-deployer:build-1 --query builds[0].buildStatus --output text',
      'aws codebuild batch-get-builds --ids pricesense-deployer:build-1 --query builds[0].logs.deepLink --output text',
    ]);
  });

  // The platform's image references and the deployer builds, in order: what a rollback is made of.
  const releaseSteps = (r: Result): string[] => r.calls
    .filter((c) => c.startsWith('pulumi config set') || c.startsWith('pulumi up') || c.includes('start-build'))
    .map((c) => c.replace(/^pulumi config set --path pricesense:images\.(\w+)\.digest /, '$1 ').replace(/^aws codebuild start-build .*API_DIGEST,value=(sha256:\w+).*$/, 'deployer build $1'));

  test('a failed app deploy brings the previous release back whole: its platform references (its deployer), then its app at its digest', () => {
    const r = run(SCRIPTS.deploy, ['prod', NEW, JOBS, DEPLOYER], { ...platformOutputs('prod'), FAILED_BUILDS: '1' });
    expect(r.status).toBe(1);
    expect(r.output).toContain('Error: pulumi up failed'); // the failed build's log
    expect(releaseSteps(r)).toEqual([
      `api ${NEW}`, `jobs ${JOBS}`, `deployer ${DEPLOYER}`, 'pulumi up --yes --policy-pack infra/policies', `deployer build ${NEW}`,
      `api ${OLD}`, `jobs ${digest('e')}`, `deployer ${digest('f')}`, 'pulumi up --yes --policy-pack infra/policies', `deployer build ${OLD}`,
    ]);
    expect(r.output).toContain(`::error::prod rolled back to ${OLD}`);
  });

  test('a release that changed only the jobs and deployer images is rolled back too', () => {
    const r = run(SCRIPTS.deploy, ['stage', OLD, JOBS, DEPLOYER], { ...platformOutputs('stage'), FAILED_BUILDS: '1' });
    expect(r.status).toBe(1);
    expect(releaseSteps(r).slice(5)).toEqual([`api ${OLD}`, `jobs ${digest('e')}`, `deployer ${digest('f')}`, 'pulumi up --yes --policy-pack infra/policies', `deployer build ${OLD}`]);
  });

  test('when the previous release fails too, the job says so', () => {
    const r = run(SCRIPTS.deploy, ['prod', NEW, JOBS, DEPLOYER], { ...platformOutputs('prod'), BUILD_STATUS: 'FAILED' });
    expect(r.status).toBe(1);
    expect(r.output).toContain(`the previous release ${OLD} also fails to deploy or smoke-test on prod`);
  });

  test('a first deploy (no previous release) fails without a rollback', () => {
    const outputs: Record<string, string> = { ...platformOutputs('dev') };
    delete outputs.OUT_pipelineApiImage;
    const r = run(SCRIPTS.deploy, ['dev', NEW, JOBS, DEPLOYER], { ...outputs, BUILD_STATUS: 'FAILED' });
    expect(r.status).toBe(1);
    expect(r.output).toContain('dev had no previous release to roll back to');
    expect(r.calls.filter((c) => c.startsWith('pulumi up'))).toHaveLength(1);
  });

  // Review i11-i15-2 item 1: another run holding the stack is not a failed release.
  test('an app build that hit another run\'s lock fails without a rollback, saying so', () => {
    const r = run(SCRIPTS.deploy, ['dev', NEW, JOBS, DEPLOYER], { ...platformOutputs('dev'), FAILED_BUILDS: '1', BUILD_LOG: 'error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.' });
    expect(r.status).toBe(75);
    expect(r.output).toContain('the dev app stack is locked by another run');
    expect(r.output).toContain('nothing was rolled back');
    expect(r.calls.filter((c) => c.startsWith('pulumi up') || c.includes('start-build'))).toHaveLength(2);
  });

  test('a platform up that hit another run\'s lock fails without a rollback or an app build', () => {
    const r = run(SCRIPTS.deploy, ['stage', NEW, JOBS, DEPLOYER], { ...platformOutputs('stage'), PLATFORM_LOCKED: '1' });
    expect(r.status).toBe(75);
    expect(r.output).toContain('the stage platform stack is locked by another run');
    expect(r.calls.filter((c) => c.startsWith('pulumi up') || c.includes('start-build'))).toEqual(['pulumi up --yes --policy-pack infra/policies']);
  });

  test('a failed deploy is not rolled back once the platform holds another run\'s digests', () => {
    const r = run(SCRIPTS.deploy, ['dev', NEW, JOBS, DEPLOYER], { ...platformOutputs('dev'), FAILED_BUILDS: '1', UP_OUT_pipelineApiImage: `${REGISTRY}/pricesense/api@${digest('9')}` });
    expect(r.status).toBe(1);
    expect(r.output).toContain('the dev platform no longer holds this run\'s digests (another run deployed since): nothing was rolled back');
    expect(r.calls.filter((c) => c.startsWith('pulumi up'))).toHaveLength(1);
  });

  describe('dev outside demo hours (node groups scaled to zero by the schedule)', () => {
    const dev = { ...platformOutputs('dev'), OUT_demoHours: 'UTC MON-FRI 08:00 20:00', OUT_scheduledNodeGroups: 'pricesense-dev-spot:2:3' };
    const scaling = (r: Result): string[] => r.calls.filter((c) => /nodegroup|start-build/.test(c));
    const wake = 'aws eks update-nodegroup-config --cluster-name pricesense-dev --nodegroup-name pricesense-dev-spot --scaling-config minSize=0,maxSize=3,desiredSize=2';
    const asleep = 'aws eks update-nodegroup-config --cluster-name pricesense-dev --nodegroup-name pricesense-dev-spot --scaling-config minSize=0,maxSize=3,desiredSize=0';
    const active = 'aws eks wait nodegroup-active --cluster-name pricesense-dev --nodegroup-name pricesense-dev-spot';
    const describe = 'aws eks describe-nodegroup --cluster-name pricesense-dev --nodegroup-name pricesense-dev-spot --query nodegroup.scalingConfig.desiredSize --output text';
    const startBuild = expect.stringMatching(/^aws codebuild start-build --project-name pricesense-dev-deployer /);

    test.each([
      ['a Tuesday night', '2026-12-01T02:00:00Z', 0],
      ['a Saturday noon', '2026-12-05T12:00:00Z', 0],
      ['a failed deploy on a Tuesday night', '2026-12-01T02:00:00Z', 1],
    ])('%s: the node group is scaled up before the deploy and back to zero after it', (_when, now, failed) => {
      const r = run(SCRIPTS.deploy, ['dev', NEW, JOBS, DEPLOYER], { ...dev, NODEGROUP_DESIRED: '0', PRICESENSE_NOW: now, ...(failed ? { BUILD_STATUS: 'FAILED' } : {}) });
      expect(r.status).toBe(failed);
      // A failed deploy's rollback build runs on the woken nodes too; the nodes sleep after it.
      expect(scaling(r)).toEqual([describe, wake, active, startBuild, ...(failed ? [startBuild] : []), active, asleep]);
    });

    test('a deploy ending inside demo hours leaves the woken node group up (the schedule wants it up)', () => {
      const r = run(SCRIPTS.deploy, ['dev', NEW, JOBS, DEPLOYER], { ...dev, NODEGROUP_DESIRED: '0', PRICESENSE_NOW: '2026-12-01T09:30:00Z' });
      expect(r.status).toBe(0);
      expect(scaling(r)).toEqual([describe, wake, active, startBuild]);
    });

    test('a node group already up is left alone', () => {
      const r = run(SCRIPTS.deploy, ['dev', NEW, JOBS, DEPLOYER], { ...dev, NODEGROUP_DESIRED: '2', PRICESENSE_NOW: '2026-12-01T02:00:00Z' });
      expect(r.status).toBe(0);
      expect(scaling(r)).toEqual([describe, startBuild]);
    });
  });

  test('a tag instead of a digest is refused before anything runs', () => {
    const r = run(SCRIPTS.deploy, ['prod', 'v1.2.3', JOBS, DEPLOYER]);
    expect(r.status).toBe(2);
    expect(r.output).toContain("not an image digest: 'v1.2.3'");
    expect(r.calls).toEqual([]);
  });

  test('a platform without a deployer fails with what to set', () => {
    const outputs = platformOutputs('dev');
    delete (outputs as Partial<typeof outputs>).OUT_deployerProject;
    const r = run(SCRIPTS.runInVpc, ['dev', 'destroy'], outputs);
    expect(r.status).toBe(1);
    expect(r.output).toContain('platform stack dev has no deployer: set pricesense:images.deployer');
  });
});

describe('in-vpc.sh (inside the deployer build)', () => {
  // The app stack's state knows the running image: in-vpc.sh must not use it to roll back.
  const env = { STACK: 'prod', PULUMI_BACKEND_URL: 's3://state', OUT_apiImage: `${REGISTRY}/pricesense/api@${OLD}`, OUT_kubeconfig: '{}' };

  test('deploy: up with the policy pack, rollout, smoke test through the API server', () => {
    const r = run(SCRIPTS.inVpc, ['deploy'], { ...env, API_DIGEST: NEW });
    expect(r.status).toBe(0);
    // The port-forward runs in the background: its log line may land before or after the smoke test's.
    expect(r.calls).toContain('kubectl -n mlops port-forward service/pricesense-api 18080:8080');
    expect(r.calls.filter((c) => !c.includes(' port-forward '))).toEqual([
      'pulumi login s3://state',
      'pulumi stack select prod',
      'pulumi stack output --stack organization/pricesense/prod kubeconfig --show-secrets',
      'kubectl get nodes -o jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
      `pulumi config set --path pricesense:app.image.digest ${NEW}`,
      'pulumi up --yes --policy-pack ../policies',
      'kubectl -n mlops rollout status deployment/pricesense-api --timeout=10m',
      'pricesense smoke-test --url http://127.0.0.1:18080 --timeout 300',
    ]);
  });

  test.each([
    ['a failed smoke test', { SMOKE_FAIL_DIGEST: NEW }],
    ['a failed up (unpullable image)', { FAIL_UP_DIGEST: NEW }],
  ])('deploy: %s fails the build; the new release\'s program never rolls back to the old image itself', (_what, failure) => {
    const r = run(SCRIPTS.inVpc, ['deploy'], { ...env, API_DIGEST: NEW, ...failure });
    expect(r.status).toBe(1);
    expect(r.calls.filter((c) => c.startsWith('pulumi config set')).map((c) => c.split(' ').pop())).toEqual([NEW]);
    expect(r.output).toContain(`deploy or smoke test failed on prod with ${NEW}`);
  });

  test('deploy: without a Ready node it stops before the up, saying why, instead of timing out in the rollout and the rollback', () => {
    const r = run(SCRIPTS.inVpc, ['deploy'], { ...env, API_DIGEST: NEW, NODES_READY: 'False', NODE_WAIT_SECONDS: '0' });
    expect(r.status).toBe(1);
    // The seconds waited are measured by the script (one check takes a moment on a busy host).
    expect(r.output).toMatch(/no Ready node in prod after \d+s: nothing can run the API\. Are the node groups scaled to zero \(cost\.demoHours\)\?/);
    expect(r.calls.filter((c) => c.startsWith('pulumi up') || c.startsWith('pulumi config set'))).toEqual([]);
  });

  test('destroy: refuses to report success while a LoadBalancer Service is left in the cluster', () => {
    expect(run(SCRIPTS.inVpc, ['destroy'], env).status).toBe(0);
    const r = run(SCRIPTS.inVpc, ['destroy'], { ...env, K8S_LBS: 'default/leftover' });
    expect(r.status).toBe(1);
    expect(r.output).toContain('LoadBalancer Services are still in the cluster; their load balancers would hold the VPC: default/leftover');
  });
});

describe('teardown.sh', () => {
  test('dev: app stack from inside the VPC, load balancer check, model versions, then everything', () => {
    const r = run(SCRIPTS.teardown, ['dev'], { ...platformOutputs('dev'), MODEL_PACKAGES: 'arn:pkg/1\tarn:pkg/2' });
    expect(r.status).toBe(0);
    const steps = r.calls.filter((c) => /start-build|resourcegroupstaggingapi|delete-model-package|pulumi destroy/.test(c));
    expect(steps).toEqual([
      'aws codebuild start-build --project-name pricesense-dev-deployer --environment-variables-override name=ACTION,value=destroy,type=PLAINTEXT --query build.id --output text',
      'aws resourcegroupstaggingapi get-resources --resource-type-filters elasticloadbalancing:loadbalancer --tag-filters Key=kubernetes.io/cluster/pricesense-dev --query ResourceTagMappingList[].ResourceARN --output text',
      'aws sagemaker delete-model-package --model-package-name arn:pkg/1',
      'aws sagemaker delete-model-package --model-package-name arn:pkg/2',
      'pulumi destroy --yes',
    ]);
  });

  test('stage: keeps the model versions and the protected data', () => {
    const r = run(SCRIPTS.teardown, ['stage'], { ...platformOutputs('stage'), MODEL_PACKAGES: 'arn:pkg/1' });
    expect(r.status).toBe(0);
    expect(r.calls.filter((c) => /delete-model-package/.test(c))).toEqual([]);
    expect(r.calls).toContain('pulumi destroy --yes --exclude-protected');
    expect(r.output).toContain('stage: kept the lake (pricesense-lake-stage-123456789012) and the model package group (pricesense-stage)');
  });

  test('the platform destroy is retried while the deployer build\'s network interfaces linger, and gives up with a pointer', () => {
    const retried = run(SCRIPTS.teardown, ['dev'], { ...platformOutputs('dev'), FAILED_DESTROYS: '2', DESTROY_RETRY_SECONDS: '0' });
    expect(retried.status).toBe(0);
    expect(retried.calls.filter((c) => c.startsWith('pulumi destroy'))).toEqual(['pulumi destroy --yes', 'pulumi destroy --yes', 'pulumi destroy --yes']);
    const given = run(SCRIPTS.teardown, ['stage'], { ...platformOutputs('stage'), FAILED_DESTROYS: '3', DESTROY_RETRY_SECONDS: '0' });
    expect(given.status).toBe(1);
    expect(given.calls.filter((c) => c.startsWith('pulumi destroy'))).toEqual(Array(3).fill('pulumi destroy --yes --exclude-protected'));
    expect(given.output).toContain('the platform destroy of stage failed 3 times; if the error is DependencyViolation, look for network interfaces');
  });

  test('stops before the platform while a load balancer of the cluster exists', () => {
    const r = run(SCRIPTS.teardown, ['dev'], { ...platformOutputs('dev'), LEFTOVER_LBS: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/a1/b2' });
    expect(r.status).toBe(1);
    expect(r.output).toContain('load balancers of pricesense-dev still exist');
    expect(r.calls.filter((c) => c.startsWith('pulumi destroy'))).toEqual([]);
  });

  test('stops before the platform when the app stack cannot be destroyed', () => {
    const r = run(SCRIPTS.teardown, ['prod'], { ...platformOutputs('prod'), BUILD_STATUS: 'FAILED' });
    expect(r.status).toBe(1);
    expect(r.calls.filter((c) => c.startsWith('pulumi destroy') || c.includes('resourcegroupstaggingapi'))).toEqual([]);
  });
});
