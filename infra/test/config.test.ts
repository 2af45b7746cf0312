// Stack config validation: the real stack files pass; each class of mistake names key, stack and expected type.
import { ConfigError, cronAt, parseStackConfig, type RawConfig } from '../config';
import { stackConfig } from './harness';

function errorOf(stack: string, raw: RawConfig): ConfigError {
  try {
    parseStackConfig(stack, 'pricesense', raw);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const dev = (): Record<string, string> => stackConfig('dev');
const prod = (): Record<string, string> => stackConfig('prod');

describe('stack files', () => {
  test.each(['dev', 'stage', 'prod'])('Pulumi.%s.yaml is valid and gets its tier defaults', (stack) => {
    const cfg = parseStackConfig(stack, 'pricesense', stackConfig(stack));
    expect(cfg.tier).toBe(stack);
    expect(cfg.region).toBe('us-east-1');
    expect(cfg.network.azCount).toBe(stack === 'prod' ? 3 : 2);
    expect(cfg.monitoring.logRetentionDays).toBe({ dev: 7, stage: 14, prod: 30 }[stack]);
    expect(cfg.cost.demoHours !== undefined).toBe(stack === 'dev');
  });

  test('user values merge over defaults key by key; lists replace', () => {
    const cfg = parseStackConfig('prod', 'p', { ...prod(), 'pricesense:app': JSON.stringify({ maxReplicas: 20 }) });
    expect(cfg.app.maxReplicas).toBe(20);
    expect(cfg.app.minReplicas).toBe(3);
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
    const err = errorOf('dev', { ...dev(), 'pricesense:app': JSON.stringify({ maxReplicas: 'ten' }) });
    expect(err.message).toContain('Invalid stack config for stack "dev"');
    expect(err.message).toContain('pricesense:app.maxReplicas: expected an integer from 1 to 100, got string "ten"');
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
    expect(errorOf('dev', { ...dev(), 'pricesense:app': JSON.stringify({ publicEndpoint: 'yes' }) }).message).toContain(
      'pricesense:app.publicEndpoint: expected a boolean (true or false), got string "yes"',
    );
    expect(errorOf('dev', { ...dev(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: '10.0.0.0/8' }) }).message).toMatch(
      /pricesense:cluster\.publicAccessCidrs: expected a list of 1 to 40 item\(s\), each an IPv4 CIDR/,
    );
    expect(errorOf('dev', { ...dev(), 'pricesense:network': JSON.stringify({ azCount: 6 }) }).message).toContain(
      'pricesense:network.azCount: expected an integer from 2 to 3, got number 6',
    );
  });

  test('malformed values inside lists name the index', () => {
    const cfg = { ...dev(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: ['203.0.113.0/24', '300.1.1.1/8'] }) };
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
    expect(errorOf('dev', { ...dev(), 'pricesense:app.maxReplicas': '5' }).message).toContain('use `pulumi config set --path pricesense:app.maxReplicas ...`');
    expect(errorOf('dev', { ...dev(), 'pricesense:app': JSON.stringify({ maxReplica: 5 }) }).message).toMatch(/pricesense:app\.maxReplica: expected no such key \(known keys: image, publicEndpoint/);
  });

  test('unknown stack name without a tier', () => {
    expect(errorOf('qa', dev()).message).toMatch(/Invalid stack config for stack "qa".*\n.*pricesense:tier: expected one of "dev", "stage", "prod" \(stack "qa" is not named after a tier, so set it\), got nothing/);
  });

  test('rules across keys', () => {
    const sizes = JSON.stringify([{ name: 'spot', capacityType: 'SPOT', instanceTypes: ['t3.medium'], minSize: 0, desiredSize: 5, maxSize: 2, diskSizeGiB: 20 }]);
    expect(errorOf('dev', { ...dev(), 'pricesense:nodeGroups': sizes }).message).toContain('pricesense:nodeGroups[0]: expected minSize <= desiredSize <= maxSize, got 0 / 5 / 2');
    const nonZero = JSON.stringify([{ name: 'spot', capacityType: 'SPOT', instanceTypes: ['t3.medium'], minSize: 1, desiredSize: 1, maxSize: 2, diskSizeGiB: 20 }]);
    expect(errorOf('dev', { ...dev(), 'pricesense:nodeGroups': nonZero }).message).toContain('pricesense:nodeGroups[0].minSize: expected 0 when cost.demoHours is set');
    expect(errorOf('dev', { ...dev(), 'pricesense:app': JSON.stringify({ minReplicas: 5, maxReplicas: 2 }) }).message).toContain('pricesense:app.minReplicas: expected at most app.maxReplicas (2)');
    expect(errorOf('dev', { ...dev(), 'pricesense:app': JSON.stringify({ image: { tag: '1', digest: `sha256:${'0'.repeat(64)}` } }) }).message).toContain('either tag or digest, not both');
    expect(errorOf('dev', { ...dev(), 'pricesense:network': JSON.stringify({ endpointAzCount: 3 }) }).message).toContain('pricesense:network.endpointAzCount: expected at most network.azCount (2)');
  });

  test('prod guardrails: no open Kubernetes API, no scale-to-zero', () => {
    const open = { ...prod(), 'pricesense:cluster': JSON.stringify({ publicAccessCidrs: ['0.0.0.0/0'] }) };
    expect(errorOf('prod', open).message).toContain('pricesense:cluster.publicAccessCidrs: expected specific CIDRs in prod');
    const hours = { timezone: 'UTC', days: 'MON-FRI', start: '08:00', end: '18:00' };
    const zero = JSON.stringify([{ name: 'base', capacityType: 'ON_DEMAND', instanceTypes: ['m6i.large'], minSize: 0, desiredSize: 3, maxSize: 6, diskSizeGiB: 50 }]);
    expect(errorOf('prod', { ...prod(), 'pricesense:nodeGroups': zero, 'pricesense:cost': JSON.stringify({ demoHours: hours }) }).message).toContain(
      'pricesense:cost.demoHours: expected unset in prod',
    );
  });

  test('every problem is reported in one run', () => {
    const raw = { ...dev(), 'pricesense:owner': '', 'pricesense:app': JSON.stringify({ maxReplicas: 0, publicEndpoint: 1 }) };
    const err = errorOf('dev', raw);
    expect(err.issues.map((i) => i.key)).toEqual(['pricesense:owner', 'pricesense:app.publicEndpoint', 'pricesense:app.maxReplicas']);
    expect(err.message).toContain('(3 problems)');
  });
});

describe('pipeline settings (the SageMaker pipeline parameters\' defaults)', () => {
  test('per-tier defaults: dev small and on spot, prod on-demand with more training hosts', () => {
    const of = (stack: string) => parseStackConfig(stack, 'pricesense', stackConfig(stack)).pipeline;
    expect(of('dev')).toMatchObject({ etlInstanceType: 'ml.m5.large', trainInstanceCount: 1, trees: 100, spotTraining: true, jobsImageTag: undefined });
    expect(of('stage')).toMatchObject({ trainInstanceCount: 2, spotTraining: true });
    expect(of('prod')).toMatchObject({ trainInstanceType: 'ml.m5.2xlarge', trainInstanceCount: 3, spotTraining: false });
    const cfg = parseStackConfig('dev', 'p', { ...dev(), 'pricesense:pipeline': JSON.stringify({ trees: 400, jobsImageTag: 'jobs-7' }) });
    expect(cfg.pipeline).toMatchObject({ trees: 400, jobsImageTag: 'jobs-7', maxDepth: 16, seed: 42 });
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
