// Stack config validation: the real stack files pass; each class of mistake names key, stack and expected type.
import { ConfigError, cronAt, parseStackConfig, type RawConfig } from '../config';
import { parseAppConfig, parseReleasedAppConfig, requireSameTier } from '../app/config';
import { parseDeliveryConfig } from '../delivery/config';
import { AUTOSCALER_CONFIG, AUTOSCALER_DIGEST, DIGEST, stackConfig } from './stack-files';
import { autoscalerImageReference, autoscalerVersionProblem } from '../images';

function errorOf(stack: string, raw: RawConfig, parse: (stack: string, project: string, raw: RawConfig) => unknown = parseStackConfig): ConfigError {
  try {
    parse(stack, 'pricesense', raw);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const dev = (): Record<string, string> => stackConfig('platform', 'dev');
const prod = (): Record<string, string> => stackConfig('platform', 'prod');

describe('stack files', () => {
  test.each(['dev', 'stage', 'prod'])('Pulumi.%s.yaml is valid and gets its tier defaults: no public API endpoint, no images yet', (stack) => {
    const cfg = parseStackConfig(stack, 'pricesense', stackConfig('platform', stack));
    expect(cfg.tier).toBe(stack);
    expect(cfg.region).toBe('us-east-1');
    expect(cfg.network.azCount).toBe(stack === 'prod' ? 3 : 2);
    expect(cfg.monitoring.logRetentionDays).toBe({ dev: 7, stage: 14, prod: 30 }[stack]);
    expect(cfg.cost.demoHours !== undefined).toBe(stack === 'dev');
    expect(cfg.cluster.publicAccessCidrs).toEqual([]);
    expect(cfg.images).toEqual({ api: {}, jobs: {}, deployer: {} });
  });

  test('user values merge over defaults key by key; lists replace', () => {
    const cfg = parseStackConfig('prod', 'p', { ...prod(), 'pricesense:monitoring': JSON.stringify({ p99LatencyMs: 100 }) });
    expect(cfg.monitoring.p99LatencyMs).toBe(100);
    expect(cfg.monitoring.error5xxPercent).toBe(5);
    expect(cfg.cost.alertThresholdsPercent).toEqual([50, 80, 100, 120]);
  });

  test('a stack not named after a tier works once pricesense:tier is set', () => {
    expect(parseStackConfig('dev-alice', 'p', { ...dev(), 'pricesense:tier': 'dev' }).tier).toBe('dev');
  });

  test('cron expressions for EventBridge Scheduler', () => {
    expect(cronAt('08:30', 'MON-FRI')).toBe('cron(30 8 ? * MON-FRI *)');
  });
});

describe('invalid config gives a clear message', () => {
  test('the message names the stack, the full key, the expected type and what was given', () => {
    const err = errorOf('dev', { ...dev(), 'pricesense:monitoring': JSON.stringify({ podRestarts: 'ten' }) });
    expect(err.message).toContain('Invalid stack config for stack "dev"');
    expect(err.message).toContain('pricesense:monitoring.podRestarts: expected an integer from 1 to 1000, got string "ten"');
    expect(err.message).toContain('pulumi config set --stack dev');
  });

  test('missing required key', () => {
    const raw = dev();
    delete raw['pricesense:owner'];
    expect(errorOf('dev', raw).message).toMatch(/pricesense:owner: expected a tag value .*, got nothing \(the key is missing\)/);
  });

  test('missing or malformed aws:region', () => {
    const raw = dev();
    delete raw['aws:region'];
    expect(errorOf('dev', raw).message).toContain('aws:region: expected an AWS region such as eu-west-1, got nothing');
    expect(errorOf('dev', { ...dev(), 'aws:region': 'Frankfurt' }).message).toContain('aws:region: expected an AWS region');
  });

  test('wrong type: string for a boolean, object for a list, number out of range', () => {
    expect(errorOf('dev', { ...dev(), 'pricesense:pipeline': JSON.stringify({ spotTraining: 'yes' }) }).message).toContain(
      'pricesense:pipeline.spotTraining: expected a boolean (true or false), got string "yes"',
    );
    expect(errorOf('dev', { ...dev(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: '81.2.69.0/24' }) }).message).toMatch(
      /pricesense:cluster\.publicAccessCidrs: expected a list of 0 to 40 item\(s\), each an IPv4 CIDR/,
    );
    expect(errorOf('dev', { ...dev(), 'pricesense:network': JSON.stringify({ azCount: 6 }) }).message).toContain(
      'pricesense:network.azCount: expected an integer from 2 to 3, got number 6',
    );
  });

  test('malformed values inside lists name the index', () => {
    // Review i14-2 item 10: the preStop sleep action needs Kubernetes 1.30.
    for (const version of ['1.29', '1.9', '1.100']) {
      expect(errorOf('dev', { ...dev(), 'pricesense:cluster': JSON.stringify({ version }) }).message).toContain(
        `pricesense:cluster.version: expected a Kubernetes minor version of at least 1.30 (the API pods' preStop sleep action needs it) such as 1.33, got string "${version}"`);
    }
    const cfg = { ...dev(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: ['81.2.69.0/24', '300.1.1.1/8'] }) };
    expect(errorOf('dev', cfg).message).toContain('pricesense:cluster.publicAccessCidrs[1]: expected an IPv4 CIDR such as 10.0.0.0/16, got string "300.1.1.1/8"');
    const groups = JSON.stringify([{ name: 'spot', capacityType: 'SPOTTY', instanceTypes: ['t3.medium'], minSize: 0, desiredSize: 1, maxSize: 2, diskSizeGiB: 20 }]);
    expect(errorOf('dev', { ...dev(), 'pricesense:nodeGroups': groups }).message).toContain(
      'pricesense:nodeGroups[0].capacityType: expected one of "ON_DEMAND", "SPOT", got string "SPOTTY"',
    );
  });

  test('enumerations: retention must be a CloudWatch value, time zones must exist', () => {
    expect(errorOf('dev', { ...dev(), 'pricesense:monitoring': JSON.stringify({ logRetentionDays: 10 }) }).message).toMatch(
      /pricesense:monitoring\.logRetentionDays: expected an integer, one of 1, 3, 5, 7, 14/,
    );
    const hours = { timezone: 'Mars/Olympus', days: 'MON-FRI', start: '08:00', end: '18:00' };
    expect(errorOf('dev', { ...dev(), 'pricesense:cost': JSON.stringify({ demoHours: hours }) }).message).toContain(
      'pricesense:cost.demoHours.timezone: expected an IANA time zone',
    );
  });

  test('unknown keys (typos), with a hint for dotted keys set without --path', () => {
    expect(errorOf('dev', { ...dev(), 'pricesense:ownr': 'x' }).message).toMatch(/pricesense:ownr: expected no such key; known keys: pricesense:tier, pricesense:owner/);
    expect(errorOf('dev', { ...dev(), 'pricesense:monitoring.podRestarts': '5' }).message).toContain('use `pulumi config set --path pricesense:monitoring.podRestarts ...`');
    expect(errorOf('dev', { ...dev(), 'pricesense:monitoring': JSON.stringify({ podRestart: 5 }) }).message).toMatch(/pricesense:monitoring\.podRestart: expected no such key \(known keys: logRetentionDays, alarmEmail/);
    // The app's keys moved to the app project: setting them on the platform is a clear error, not silently ignored.
    expect(errorOf('dev', { ...dev(), 'pricesense:app': JSON.stringify({ maxReplicas: 5 }) }).message).toMatch(/pricesense:app: expected no such key; known keys: .*pricesense:images/);
  });

  test('unknown stack name without a tier', () => {
    expect(errorOf('qa', dev()).message).toMatch(/Invalid stack config for stack "qa".*\n.*pricesense:tier: expected one of "dev", "stage", "prod" \(stack "qa" is not named after a tier, so set it\), got nothing/);
  });

  test('rules across keys', () => {
    const sizes = JSON.stringify([{ name: 'spot', capacityType: 'SPOT', instanceTypes: ['t3.medium'], minSize: 0, desiredSize: 5, maxSize: 2, diskSizeGiB: 20 }]);
    expect(errorOf('dev', { ...dev(), 'pricesense:nodeGroups': sizes }).message).toContain('pricesense:nodeGroups[0]: expected minSize <= desiredSize <= maxSize, got 0 / 5 / 2');
    const nonZero = JSON.stringify([{ name: 'spot', capacityType: 'SPOT', instanceTypes: ['t3.medium'], minSize: 1, desiredSize: 1, maxSize: 2, diskSizeGiB: 20 }]);
    expect(errorOf('dev', { ...dev(), 'pricesense:nodeGroups': nonZero }).message).toContain('pricesense:nodeGroups[0].minSize: expected 0 when cost.demoHours is set');
    expect(errorOf('dev', { ...dev(), 'pricesense:images': JSON.stringify({ api: { tag: '1', digest: `sha256:${'0'.repeat(64)}` } }) }).message).toContain('pricesense:images.api: expected either tag or digest, not both');
    expect(errorOf('dev', { ...dev(), 'pricesense:network': JSON.stringify({ endpointAzCount: 3 }) }).message).toContain('pricesense:network.endpointAzCount: expected at most network.azCount (2)');
  });

  test('budget notifications stay within the service limit (5 per budget, one is the forecast)', () => {
    expect(errorOf('dev', { ...dev(), 'pricesense:cost': JSON.stringify({ alertThresholdsPercent: [10, 20, 30, 40, 50] }) }).message).toContain('pricesense:cost.alertThresholdsPercent: expected a list of 1 to 4 item(s)');
  });

  test('prod guardrails: no open Kubernetes API, no scale-to-zero', () => {
    expect(() => parseStackConfig('dev', 'p', { ...dev(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: ['81.2.69.160/27'] }) })).not.toThrow();
    expect(errorOf('dev', { ...dev(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: ['0.0.0.0/0'] }) }).message).toContain('pricesense:cluster.publicAccessCidrs: expected specific operator CIDRs');
    const open = { ...prod(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: ['81.2.69.160/27'] }) };
    expect(errorOf('prod', open).message).toContain('pricesense:cluster.publicAccessCidrs: expected empty in prod (private API endpoint only');
    expect(errorOf('dev', { ...dev(), 'pricesense:cluster': JSON.stringify({ logTypes: ['api'] }) }).message).toContain('pricesense:cluster.logTypes: expected a list including api, audit, authenticator (missing audit, authenticator)');
    const hours = { timezone: 'UTC', days: 'MON-FRI', start: '08:00', end: '18:00' };
    const zero = JSON.stringify([{ name: 'base', capacityType: 'ON_DEMAND', instanceTypes: ['m6i.large'], minSize: 0, desiredSize: 3, maxSize: 6, diskSizeGiB: 50 }]);
    expect(errorOf('prod', { ...prod(), 'pricesense:nodeGroups': zero, 'pricesense:cost': JSON.stringify({ demoHours: hours }) }).message).toContain(
      'pricesense:cost.demoHours: expected unset in prod',
    );
  });

  test('every problem is reported in one run', () => {
    const raw = { ...dev(), 'pricesense:owner': '', 'pricesense:monitoring': JSON.stringify({ podRestarts: 0, alarmEmail: 1 }) };
    const err = errorOf('dev', raw);
    expect(err.issues.map((i) => i.key)).toEqual(['pricesense:owner', 'pricesense:monitoring.alarmEmail', 'pricesense:monitoring.podRestarts']);
    expect(err.message).toContain('(3 problems)');
  });
});

describe('pipeline settings (the SageMaker pipeline parameters\' defaults)', () => {
  test('per-tier defaults: dev small and on spot, prod on-demand with more training hosts', () => {
    const of = (stack: string) => parseStackConfig(stack, 'pricesense', stackConfig('platform', stack)).pipeline;
    expect(of('dev')).toMatchObject({ etlInstanceType: 'ml.m5.large', trainInstanceCount: 1, trees: 100, spotTraining: true });
    expect(of('stage')).toMatchObject({ trainInstanceCount: 2, spotTraining: true });
    expect(of('prod')).toMatchObject({ trainInstanceType: 'ml.m5.2xlarge', trainInstanceCount: 3, spotTraining: false });
    const cfg = parseStackConfig('dev', 'p', { ...dev(), 'pricesense:pipeline': JSON.stringify({ trees: 400 }) });
    expect(cfg.pipeline).toMatchObject({ trees: 400, maxDepth: 16, seed: 42 });
  });

  test('wrong types and values name the key', () => {
    const err = errorOf('dev', { ...dev(), 'pricesense:pipeline': JSON.stringify({ trainInstanceType: 'm5.large', trainInstanceCount: 0, spotTraining: 'yes' }) });
    expect(err.message).toContain('pricesense:pipeline.trainInstanceType: expected a SageMaker instance type such as ml.m5.large, got string "m5.large"');
    expect(err.message).toContain('pricesense:pipeline.trainInstanceCount: expected an integer from 1 to 50, got number 0');
    expect(err.message).toContain('pricesense:pipeline.spotTraining: expected a boolean (true or false), got string "yes"');
  });

  test('rules across keys: spot wait covers the run time, every training host gets a tree', () => {
    const wait = errorOf('dev', { ...dev(), 'pricesense:pipeline': JSON.stringify({ maxRuntimeSeconds: 7200, spotMaxWaitSeconds: 3600 }) });
    expect(wait.message).toContain('pricesense:pipeline.spotMaxWaitSeconds: expected at least pipeline.maxRuntimeSeconds (7200) when pipeline.spotTraining is on, got number 3600');
    expect(() => parseStackConfig('prod', 'p', { ...prod(), 'pricesense:pipeline': JSON.stringify({ spotMaxWaitSeconds: 3600 }) })).not.toThrow();
    const trees = errorOf('dev', { ...dev(), 'pricesense:pipeline': JSON.stringify({ trees: 2, trainInstanceCount: 4 }) });
    expect(trees.message).toContain('pricesense:pipeline.trees: expected at least pipeline.trainInstanceCount (4)');
  });
});

describe('public access lists must admit someone on the internet', () => {
  const cidrs = (list: string[]): Record<string, string> => ({ ...dev(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: list }) });

  test.each([
    ['203.0.113.0/24', 'documentation TEST-NET-3 (RFC 5737)'],
    ['198.51.100.7/32', 'documentation TEST-NET-2 (RFC 5737)'],
    ['192.0.2.0/24', 'documentation TEST-NET-1 (RFC 5737)'],
    ['10.20.0.0/16', 'private use (RFC 1918)'],
    ['172.16.0.0/12', 'private use (RFC 1918)'],
    ['192.168.1.0/24', 'private use (RFC 1918)'],
    ['100.64.0.0/10', 'carrier-grade NAT shared space (RFC 6598)'],
    ['127.0.0.1/32', 'loopback'],
    ['169.254.169.254/32', 'link-local'],
    ['224.0.0.0/4', 'multicast'],
  ])('%s is refused (%s), with the key, the range and why', (cidr, what) => {
    const message = errorOf('dev', cidrs(['81.2.69.160/27', cidr])).message;
    expect(message).toContain(`pricesense:cluster.publicAccessCidrs[1]: expected a CIDR of addresses on the internet (${cidr} lies in`);
    expect(message).toContain(what);
    expect(message).toContain('no client on the internet has such an address');
  });

  test('a block with host bits set is refused with the block that was probably meant', () => {
    expect(errorOf('dev', cidrs(['81.2.69.161/27'])).message).toContain('81.2.69.161/27 has host bits set (did you mean 81.2.69.160/27?)');
  });

  test('public blocks pass, including ones that merely overlap a special range', () => {
    // (0.0.0.0/0 is routable but refused for the Kubernetes API: see the guardrails above.)
    for (const ok of [['81.2.69.160/27'], ['192.0.0.0/8'], ['203.0.112.0/24', '203.0.114.0/23'], []]) {
      expect(() => parseStackConfig('dev', 'p', cidrs(ok))).not.toThrow();
    }
  });
});

describe('images: stage and prod run only what dev ran, by digest', () => {
  const images = (v: object): Record<string, string> => ({ 'pricesense:images': JSON.stringify(v) });

  test.each(['stage', 'prod'])('%s refuses a tag for any image', (stack) => {
    const raw = { ...stackConfig('platform', stack), ...images({ api: { tag: '1.2.3' }, deployer: { tag: '1.2.3' } }) };
    const err = errorOf(stack, raw);
    expect(err.issues.map((i) => i.key)).toEqual(['pricesense:images.api', 'pricesense:images.deployer']);
    expect(err.message).toContain(`expected a digest in ${stack} (images are promoted from dev by digest`);
  });

  test('dev takes a tag for hand-made experiments; every tier takes digests', () => {
    expect(parseStackConfig('dev', 'p', { ...dev(), ...images({ api: { tag: 'exp-1' } }) }).images.api).toEqual({ tag: 'exp-1' });
    expect(parseStackConfig('prod', 'p', { ...prod(), ...images({ api: { digest: DIGEST }, jobs: { digest: DIGEST } }) }).images.jobs).toEqual({ digest: DIGEST });
    expect(errorOf('prod', { ...prod(), ...images({ api: { digest: 'sha256:abc' } }) }).message).toContain('pricesense:images.api.digest: expected an image digest sha256:<64 hex>');
  });

  test('zones: excluded zone IDs are validated as IDs (a zone name is refused: it means different zones in different accounts)', () => {
    expect(errorOf('dev', { ...dev(), 'pricesense:network': JSON.stringify({ excludeZoneIds: ['us-east-1a'] }) }).message).toContain('pricesense:network.excludeZoneIds[0]: expected an availability zone ID such as use1-az3');
    expect(parseStackConfig('dev', 'p', { ...dev(), 'pricesense:network': JSON.stringify({ excludeZoneIds: ['use1-az2'] }) }).network.excludeZoneIds).toEqual(['use1-az2']);
  });
});

describe('app project config (infra/app/Pulumi.<stack>.yaml)', () => {
  const app = (stack: string): Record<string, string> => stackConfig('app', stack);

  test.each(['dev', 'stage', 'prod'])('Pulumi.%s.yaml is valid: no AWS region needed, no image yet, tier defaults', (stack) => {
    const cfg = parseAppConfig(stack, 'pricesense-app', app(stack));
    expect(cfg.tier).toBe(stack);
    expect(cfg.app.image).toEqual({});
    expect(cfg.app.publicEndpoint).toBe(false); // a demo load balancer needs source CIDRs: an operator's choice
    expect(cfg.app.minReplicas).toBe({ dev: 1, stage: 2, prod: 3 }[stack]);
  });

  test.each(['dev', 'stage', 'prod'])('%s: the app program refuses a stack without app.image, which would delete the API (review H2)', (stack) => {
    const message = errorOf(stack, app(stack), parseReleasedAppConfig).message;
    expect(message).toContain('pricesense:app.image: expected the release\'s image (a run without it would delete the namespace, Deployment and Service of the API)');
    expect(message).toContain(`pulumi config set --stack ${stack} --path pricesense:app.image.digest "$(pulumi stack output --stack ${stack} apiImage | cut -d@ -f2)"`);
    expect(parseReleasedAppConfig(stack, 'p', { ...app(stack), 'pricesense:app': JSON.stringify({ image: { digest: DIGEST } }), ...AUTOSCALER_CONFIG }).app.image).toEqual({ digest: DIGEST });
  });

  test.each(['dev', 'stage', 'prod'])('%s: the app program refuses a stack without Cluster Autoscaler\'s mirrored image, saying how to mirror it', (stack) => {
    const released = { ...app(stack), 'pricesense:app': JSON.stringify({ image: { digest: DIGEST } }) };
    const message = errorOf(stack, released, parseReleasedAppConfig).message;
    expect(message).toContain('pricesense:clusterAutoscaler: expected Cluster Autoscaler\'s mirrored image, version and digest (without it nothing adds a node');
    expect(message).toContain('crane copy registry.k8s.io/autoscaling/cluster-autoscaler:v<kubernetes minor>.<patch> <account>.dkr.ecr.<region>.amazonaws.com/mirror/cluster-autoscaler:<same tag>');
    expect(message).not.toContain('pricesense:app.image');
    expect(parseReleasedAppConfig(stack, 'p', { ...released, ...AUTOSCALER_CONFIG }).clusterAutoscaler).toEqual({ version: 'v1.33.0', digest: AUTOSCALER_DIGEST });
    const half = { ...released, 'pricesense:clusterAutoscaler': JSON.stringify({ version: 'v1.33.0' }) };
    expect(errorOf(stack, half, parseAppConfig).message).toContain('pricesense:clusterAutoscaler: expected both version and digest');
    const tagged = { ...released, 'pricesense:clusterAutoscaler': JSON.stringify({ version: 'latest', digest: AUTOSCALER_DIGEST }) };
    expect(errorOf(stack, tagged, parseAppConfig).message).toContain('pricesense:clusterAutoscaler.version: expected an upstream release tag such as v1.33.0');
  });

  test('the autoscaler\'s minor version must be the cluster\'s; its image is the mirror next to the API repository, by digest', () => {
    expect(autoscalerVersionProblem('v1.33.2', '1.33')).toBeUndefined();
    expect(autoscalerVersionProblem('v1.32.0', '1.33')).toContain('pricesense:clusterAutoscaler.version v1.32.0 does not match the cluster\'s Kubernetes 1.33');
    expect(autoscalerVersionProblem('v1.3.0', '1.33')).toContain('pricesense:clusterAutoscaler.version v1.3.0 does not match the cluster\'s Kubernetes 1.33');
    expect(autoscalerImageReference('1.dkr.ecr.us-east-1.amazonaws.com/pricesense/api', { version: 'v1.33.0', digest: AUTOSCALER_DIGEST }))
      .toBe(`1.dkr.ecr.us-east-1.amazonaws.com/mirror/cluster-autoscaler:v1.33.0@${AUTOSCALER_DIGEST}`);
  });

  test('stage and prod refuse an image tag; dev takes one; never both', () => {
    const withImage = (stack: string, image: object): Record<string, string> => ({ ...app(stack), 'pricesense:app': JSON.stringify({ image }) });
    expect(errorOf('prod', withImage('prod', { tag: '1.0.0' }), parseAppConfig).message).toContain('pricesense:app.image: expected a digest in prod');
    expect(parseAppConfig('dev', 'p', withImage('dev', { tag: '1.0.0' })).app.image).toEqual({ tag: '1.0.0' });
    expect(errorOf('dev', withImage('dev', { tag: '1', digest: DIGEST }), parseAppConfig).message).toContain('either tag or digest, not both');
  });

  test('rules across keys, prod guardrails, public load balancer ranges', () => {
    const with_ = (stack: string, v: object): Record<string, string> => ({ ...app(stack), 'pricesense:app': JSON.stringify(v) });
    expect(errorOf('dev', with_('dev', { minReplicas: 5, maxReplicas: 2 }), parseAppConfig).message).toContain('pricesense:app.minReplicas: expected at most app.maxReplicas (2)');
    expect(errorOf('prod', with_('prod', { minReplicas: 1 }), parseAppConfig).message).toContain('pricesense:app.minReplicas: expected at least 2 in prod');
    expect(errorOf('dev', with_('dev', { publicEndpoint: true }), parseAppConfig).message).toContain('pricesense:app.publicEndpointCidrs: expected the CIDRs allowed to the demo load balancer when app.publicEndpoint is true (at least one, never 0.0.0.0/0)');
    expect(errorOf('dev', with_('dev', { publicEndpoint: true, publicEndpointCidrs: ['0.0.0.0/0'] }), parseAppConfig).message).toContain('never 0.0.0.0/0');
    expect(errorOf('dev', with_('dev', { tlsCertificateArn: 'my-cert' }), parseAppConfig).message).toContain('pricesense:app.tlsCertificateArn: expected an ACM certificate ARN');
    expect(errorOf('dev', with_('dev', { publicEndpoint: true, publicEndpointCidrs: ['192.168.0.0/16'] }), parseAppConfig).message).toContain('pricesense:app.publicEndpointCidrs[0]: expected a CIDR of addresses on the internet (192.168.0.0/16 lies in 192.168.0.0/16, private use (RFC 1918)');
    expect(errorOf('dev', with_('dev', { maxReplicas: 'ten' }), parseAppConfig).message).toContain('pricesense:app.maxReplicas: expected an integer from 1 to 100, got string "ten"');
  });

  test('the platform stack defaults to the same environment; a platform of another tier is refused', () => {
    const cfg = parseAppConfig('stage', 'p', app('stage'));
    expect(requireSameTier(cfg, 'stage')).toBe('stage');
    expect(() => requireSameTier(cfg, 'dev')).toThrow('app stack "stage" is tier stage, but platform stack organization/pricesense/stage is tier dev: set pricesense:platformStack');
    expect(errorOf('stage', { ...app('stage'), 'pricesense:platformStack': 'pricesense/stage' }, parseAppConfig).message).toContain('pricesense:platformStack: expected a fully qualified stack name');
  });
});

describe('delivery config (infra/delivery/Pulumi.shared.yaml)', () => {
  const shared = (): Record<string, string> => stackConfig('delivery', 'shared');

  test('the committed file lacks the repository, and the message says what to set', () => {
    expect(errorOf('shared', shared(), parseDeliveryConfig).message).toContain('pricesense:github.repository: expected the GitHub repository as <owner>/<repo>');
  });

  test('with the repository set: three environments and the images environment by default', () => {
    const cfg = parseDeliveryConfig('shared', 'p', { ...shared(), 'pricesense:github': JSON.stringify({ repository: 'acme/pricesense' }) });
    expect(cfg.environments).toEqual(['dev', 'stage', 'prod']);
    expect(cfg.github).toEqual({ repository: 'acme/pricesense', imageEnvironment: 'images', oidcProviderArn: undefined });
  });

  test('the image job cannot share an environment with a deploy role; no wildcard repositories', () => {
    const github = (v: object): Record<string, string> => ({ ...shared(), 'pricesense:github': JSON.stringify(v) });
    expect(errorOf('shared', github({ repository: 'acme/pricesense', imageEnvironment: 'prod' }), parseDeliveryConfig).message).toContain('pricesense:github.imageEnvironment: expected an environment of its own');
    expect(errorOf('shared', github({ repository: 'acme/*' }), parseDeliveryConfig).message).toContain('pricesense:github.repository: expected the GitHub repository as <owner>/<repo>');
  });
});
