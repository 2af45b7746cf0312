// The delivery bootstrap (infra/delivery): mocked update and first-up preview of the real program.
import { ACCOUNT, REGION, REGISTRY, policyDoc, runProgram, withProps, type ProgramRun } from './harness';
import { runPolicies } from './policy-engine';

const REPO = 'acme/pricesense';
const PROVIDER_ARN = `arn:aws:iam::${ACCOUNT}:oidc-provider/token.actions.githubusercontent.com`;
const overrides = { 'pricesense:github': JSON.stringify({ repository: REPO }) };

type Obj = Record<string, unknown>;

let run: ProgramRun;
let preview: ProgramRun;
beforeAll(async () => {
  run = await runProgram('delivery', 'shared', { overrides });
  preview = await runProgram('delivery', 'shared', { overrides, mode: 'preview' });
});

const trustOf = (r: ProgramRun, name: string): Obj[] => policyDoc(r.one('aws:iam/role:Role', name).inputs.assumeRolePolicy).Statement;

describe('delivery bootstrap', () => {
  test('the account\'s SageMaker job log groups exist with retention (SageMaker would create them with none)', () => {
    const groups = run.ofType('aws:cloudwatch/logGroup:LogGroup').map((g) => [g.inputs.name, g.inputs.retentionInDays]);
    expect(groups).toEqual([['/aws/sagemaker/ProcessingJobs', 30], ['/aws/sagemaker/TrainingJobs', 30]]);
  });

  test('one GitHub OIDC provider for sts.amazonaws.com, protected', () => {
    const provider = run.one('aws:iam/openIdConnectProvider:OpenIdConnectProvider');
    expect(provider.inputs).toMatchObject({ url: 'https://token.actions.githubusercontent.com', clientIdLists: ['sts.amazonaws.com'] });
    expect(provider.opts.protect).toBe(true);
  });

  test.each(['dev', 'stage', 'prod'])('the %s deploy role trusts only that environment of the repository, for STS', (env) => {
    const role = run.one('aws:iam/role:Role', `delivery-${env}-deploy`);
    expect(role.inputs).toMatchObject({ name: `pricesense-${env}-deploy`, path: '/pricesense-delivery/' });
    expect(trustOf(run, `delivery-${env}-deploy`)).toEqual([{
      Effect: 'Allow',
      Principal: { Federated: PROVIDER_ARN },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: { StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com', 'token.actions.githubusercontent.com:sub': `repo:${REPO}:environment:${env}` } },
    }]);
    expect(role.opts.dependsOn).toEqual(['aws:iam/openIdConnectProvider:OpenIdConnectProvider::delivery-github']);
  });

  test('a deploy role cannot touch the delivery roles or the OIDC provider, attach AdministratorAccess, or use another environment\'s stack secrets', () => {
    const statements = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'delivery-dev-deploy').inputs.policy).Statement;
    const sid = (s: string): Obj | undefined => statements.find((x) => x.Sid === s);
    expect(sid('KeepDeliveryRoles')).toEqual({ Sid: 'KeepDeliveryRoles', Effect: 'Deny', Action: 'iam:*', Resource: [`arn:aws:iam::${ACCOUNT}:role/pricesense-delivery/*`, `arn:aws:iam::${ACCOUNT}:policy/pricesense-delivery/*`, PROVIDER_ARN] });
    expect(sid('NoAdministrators')).toMatchObject({ Effect: 'Deny', Condition: { ArnLike: { 'iam:PolicyARN': expect.arrayContaining(['arn:aws:iam::aws:policy/AdministratorAccess']) } } });
    expect(sid('OnlyOwnStackSecrets')).toEqual({
      Sid: 'OnlyOwnStackSecrets', Effect: 'Deny', Action: 'kms:*', Resource: '*',
      Condition: { StringNotEquals: { 'aws:ResourceTag/pulumi-secrets-of': 'dev' }, Null: { 'aws:ResourceTag/pulumi-secrets-of': 'false' } },
    });
    const attached = run.ofType('aws:iam/rolePolicyAttachment:RolePolicyAttachment').map((a) => a.inputs.policyArn);
    expect(attached).toEqual(['arn:aws:iam::aws:policy/PowerUserAccess', 'arn:aws:iam::aws:policy/PowerUserAccess', 'arn:aws:iam::aws:policy/PowerUserAccess']);
  });

  test('the image role trusts only the images environment and can only push and scan images in the shared repositories', () => {
    expect(trustOf(run, 'delivery-image-push')[0]).toMatchObject({ Condition: { StringEquals: { 'token.actions.githubusercontent.com:sub': `repo:${REPO}:environment:images` } } });
    const statements = policyDoc(run.one('aws:iam/rolePolicy:RolePolicy', 'delivery-image-push').inputs.policy).Statement;
    const actions = statements.flatMap((s) => [s.Action].flat() as string[]);
    expect(actions.every((a) => /^ecr:(BatchCheckLayerAvailability|BatchGetImage|InitiateLayerUpload|UploadLayerPart|CompleteLayerUpload|PutImage|DescribeImages|DescribeImageScanFindings|GetAuthorizationToken)$/.test(a))).toBe(true);
    expect(statements.find((s) => s.Sid === 'PushAndScan')?.Resource).toEqual(['api', 'jobs', 'deployer'].map((n) => `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/pricesense/${n}`));
    expect(run.ofType('aws:iam/rolePolicyAttachment:RolePolicyAttachment').map((a) => a.inputs.role)).not.toContain(run.one('aws:iam/role:Role', 'delivery-image-push').state.name);
  });

  test('the shared repositories: immutable, scanned, protected and retained, release tags never expired', () => {
    const repos = run.ofType('aws:ecr/repository:Repository');
    expect(repos.map((r) => r.inputs.name)).toEqual(['pricesense/api', 'pricesense/jobs', 'pricesense/deployer']);
    for (const r of repos) {
      expect(r.inputs).toMatchObject({ imageTagMutability: 'IMMUTABLE', imageScanningConfiguration: { scanOnPush: true }, forceDelete: false });
      expect([r.opts.protect, r.opts.retainOnDelete]).toEqual([true, true]);
    }
    const lifecycle = JSON.parse(String(run.ofType('aws:ecr/lifecyclePolicy:LifecyclePolicy')[0].inputs.policy)) as { rules: Obj[] };
    const tagged = lifecycle.rules.map((r) => r.selection as Obj).filter((s) => s.tagStatus === 'tagged');
    expect(tagged).toEqual([expect.objectContaining({ tagPatternList: ['main-*'] })]); // nothing selects v* tags
    expect(run.outputs.repositoryUrls).toEqual({ api: `${REGISTRY}/pricesense/api`, jobs: `${REGISTRY}/pricesense/jobs`, deployer: `${REGISTRY}/pricesense/deployer` });
  });

  test('one Pulumi secrets key per environment, rotated, protected and retained, under the alias the deployer uses', () => {
    const keys = run.ofType('aws:kms/key:Key');
    expect(keys.map((k) => k.inputs.tags)).toEqual([{ 'pulumi-secrets-of': 'dev' }, { 'pulumi-secrets-of': 'stage' }, { 'pulumi-secrets-of': 'prod' }]);
    for (const k of keys) expect([k.inputs.enableKeyRotation, k.opts.protect, k.opts.retainOnDelete]).toEqual([true, true, true]);
    expect(run.ofType('aws:kms/alias:Alias').map((a) => a.inputs.name)).toEqual(['alias/pricesense-dev-pulumi', 'alias/pricesense-stage-pulumi', 'alias/pricesense-prod-pulumi']);
    expect(run.outputs.secretsProviders).toEqual({ dev: `awskms://alias/pricesense-dev-pulumi?region=${REGION}`, stage: `awskms://alias/pricesense-stage-pulumi?region=${REGION}`, prod: `awskms://alias/pricesense-prod-pulumi?region=${REGION}` });
  });

  test('an existing OIDC provider is reused, not created twice', async () => {
    const reuse = await runProgram('delivery', 'shared', { overrides: { 'pricesense:github': JSON.stringify({ repository: REPO, oidcProviderArn: PROVIDER_ARN }) } });
    expect(reuse.ofType('aws:iam/openIdConnectProvider:OpenIdConnectProvider')).toEqual([]);
    expect(trustOf(reuse, 'delivery-prod-deploy')[0]).toMatchObject({ Principal: { Federated: PROVIDER_ARN } });
  });

  test('policy pack: every rule passes, in the update and in the first-up preview, where the trust check already runs', () => {
    expect(runPolicies(run.checked()).violations).toEqual([]);
    const report = runPolicies(preview.checked());
    expect(report.violations).toEqual([]);
    // The trust policies are built from a computed provider ARN, so they are known before anything exists.
    expect(report.notRun.filter((n) => n.rule === 'github-oidc-trust-scoped-to-environment')).toEqual([]);
    expect(report.notRun.filter((n) => n.rule === 'data-resources-protected')).toEqual([]);
  });

  test.each([
    ['trusting the main branch instead of the environment', { 'token.actions.githubusercontent.com:sub': `repo:${REPO}:ref:refs/heads/main`, 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' }, undefined, /exactly one repo:<owner>\/<repo>:environment:<env>/],
    ['no audience', { 'token.actions.githubusercontent.com:sub': `repo:${REPO}:environment:prod` }, undefined, /must require token\.actions\.githubusercontent\.com:aud = sts\.amazonaws\.com/],
    ['a wildcard subject', { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' }, { 'token.actions.githubusercontent.com:sub': `repo:${REPO}:*` }, /widens the GitHub token conditions with StringLike/],
  ])('policy pack: a deploy role %s is caught, in the preview already', (_what, equals, like, message) => {
    const widened = preview.checked().map((r) => {
      if (r.name !== 'delivery-prod-deploy' || r.type !== 'aws:iam/role:Role') return r;
      const statement = { Effect: 'Allow', Principal: { Federated: PROVIDER_ARN }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: equals, ...(like ? { StringLike: like } : {}) } };
      return withProps(r, { assumeRolePolicy: JSON.stringify({ Version: '2012-10-17', Statement: [statement] }) });
    });
    const caught = runPolicies(widened).violations.filter((v) => v.rule === 'github-oidc-trust-scoped-to-environment');
    expect(caught.map((v) => v.message)).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
  });

  test('policy pack: an unprotected repository or secrets key is caught (the delivery stack is held to the prod rule)', () => {
    const unprotected = run.checked().map((r) => (r.type === 'aws:ecr/repository:Repository' || r.type === 'aws:kms/key:Key' ? { ...r, opts: { protect: false } } : r));
    const caught = runPolicies(unprotected).violations.filter((v) => v.rule === 'data-resources-protected');
    expect(caught).toHaveLength(6);
    expect(caught.map((v) => v.message)).toEqual(expect.arrayContaining([
      expect.stringContaining('delivery-images-api (aws:ecr/repository:Repository, shared) is not protected'),
      expect.stringContaining('delivery-prod-secrets (aws:kms/key:Key, shared) is not protected'),
    ]));
  });
  test('each environment has a permissions boundary that denies the other environments and the shared images', () => {
    const boundaries = run.ofType('aws:iam/policy:Policy');
    expect(boundaries.map((b) => [b.inputs.name, b.inputs.path])).toEqual(['dev', 'stage', 'prod'].map((e) => [`pricesense-${e}-boundary`, '/pricesense-delivery/']));
    const dev = policyDoc(boundaries[0].inputs.policy).Statement;
    expect(dev.find((s) => s.Sid === 'ServicesButIam')).toMatchObject({ Effect: 'Allow', NotAction: expect.arrayContaining(['iam:*']) });
    expect(dev.find((s) => s.Sid === 'PassOwnRoles')).toMatchObject({ Resource: `arn:aws:iam::${ACCOUNT}:role/pricesense-dev/*` });
    expect(dev.find((s) => s.Sid === 'OtherEnvironmentsByTag')).toMatchObject({ Effect: 'Deny', Condition: { StringEquals: { 'aws:ResourceTag/stack': ['stage', 'prod'] } } });
    expect(dev.find((s) => s.Sid === 'KeepSharedImages')).toMatchObject({ Effect: 'Deny', Action: expect.arrayContaining(['ecr:BatchDeleteImage', 'ecr:PutImage']) });
    expect(Object.keys(run.outputs.boundaryArns as object)).toEqual(['dev', 'stage', 'prod']);
  });

  test('policy pack: deploy-roles-isolated passes on the real roles and catches each removed deny', () => {
    const isolated = (resources: ReturnType<ProgramRun['checked']>): string[] => runPolicies(resources).violations.filter((v) => v.rule === 'deploy-roles-isolated').map((v) => v.message);
    expect(isolated(run.checked())).toEqual([]);
    const without = (sids: string[]): ReturnType<ProgramRun['checked']> => run.checked().map((r) => {
      if (r.type !== 'aws:iam/rolePolicy:RolePolicy' || r.name !== 'delivery-dev-deploy') return r;
      const doc = policyDoc(r.props.policy);
      return withProps(r, { policy: JSON.stringify({ ...doc, Statement: doc.Statement.filter((st) => !sids.includes(String(st.Sid))) }) });
    });
    // The dev role starting the prod deployer, writing prod state or joining the prod cluster.
    expect(isolated(without(['OtherEnvironmentsByName']))).toEqual(expect.arrayContaining([
      'delivery-dev-deploy (dev) is not denied codebuild:StartBuild on prod\'s arn:aws:codebuild:us-east-1:123456789012:project/pricesense-prod-deployer',
      expect.stringMatching(/delivery-dev-deploy \(dev\) is not denied s3:PutObject on stage's .*\.pulumi\/stacks\/pricesense-app\/stage\.json/),
      expect.stringMatching(/not denied eks:CreateAccessEntry on prod's .*cluster\/pricesense-prod$/),
    ]));
    // Tagged resources (security groups, instances) of prod.
    expect(isolated(without(['OtherEnvironmentsByTag']))).toEqual(expect.arrayContaining([expect.stringMatching(/not denied ec2:TerminateInstances on prod's/)]));
    // A role created without the boundary (e.g. "*" on "*", trusting GitHub for any subject).
    expect(isolated(without(['RequireBoundary']))).toEqual(expect.arrayContaining([expect.stringContaining('delivery-dev-deploy (dev) may iam:CreateRole without the permissions boundary')]));
    expect(isolated(without(['OtherEnvironmentsByName']))).not.toEqual(expect.arrayContaining([expect.stringMatching(/delivery-stage-deploy/)]));
  });
});
