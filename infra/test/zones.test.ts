// Availability zones are chosen by zone ID, never by name, and never one EKS refuses.
import { EKS_UNSUPPORTED_ZONE_IDS, selectZones, type AvailableZones } from '../network';
import * as pulumi from '@pulumi/pulumi';
import { pinnedZoneProblems, stackZones } from '../zones';
import { ConfigError, parseReleasedStackConfig } from '../config';
import { US_EAST_1_ZONES, releaseImages, runProgram } from './harness';
import { stackConfig } from './stack-files';

describe('selectZones', () => {
  test('skips the zones EKS refuses and takes the rest in zone ID order, whatever the names', () => {
    expect(selectZones(US_EAST_1_ZONES, 3, [], 'us-east-1')).toEqual([
      { id: 'use1-az1', name: 'us-east-1c' },
      { id: 'use1-az2', name: 'us-east-1d' },
      { id: 'use1-az4', name: 'us-east-1e' },
    ]);
  });

  test('config exclusions add to the EKS list', () => {
    expect(selectZones(US_EAST_1_ZONES, 2, ['use1-az1', 'use1-az4'], 'us-east-1').map((z) => z.id)).toEqual(['use1-az2', 'use1-az5']);
  });

  test('the EKS list covers the zones AWS documents as unsupported', () => {
    expect([...EKS_UNSUPPORTED_ZONE_IDS].sort()).toEqual(['cac1-az3', 'use1-az3', 'usw1-az2']);
  });

  test('too few usable zones: the message lists what was usable, what was excluded and what to change', () => {
    const usw1: AvailableZones = { names: ['us-west-1a', 'us-west-1c'], zoneIds: ['usw1-az1', 'usw1-az2'] };
    expect(() => selectZones(usw1, 2, [], 'us-west-1')).toThrow(
      'region us-west-1 has 1 usable availability zone(s) (usw1-az1; excluded: usw1-az2); network.azCount asks for 2: lower pricesense:network.azCount or shorten pricesense:network.excludeZoneIds',
    );
  });
});

describe('the program places subnets by zone ID (mocked getAvailabilityZones)', () => {
  // The same physical zones under other names, as another account sees them.
  const otherAccount: AvailableZones = {
    names: ['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-east-1d', 'us-east-1e', 'us-east-1f'],
    zoneIds: ['use1-az4', 'use1-az1', 'use1-az5', 'use1-az3', 'use1-az2', 'use1-az6'],
  };

  test('two accounts with different name mappings get the same physical zones, and never use1-az3', async () => {
    const zonesOf = async (zones: AvailableZones): Promise<unknown[]> => {
      // Unpinned, as on a stack's first up (prod's stack file pins the same zones).
      const run = await runProgram('platform', 'prod', { zones, overrides: { 'pricesense:images': releaseImages(), 'pricesense:network': '{}' } });
      return run.ofType('aws:ec2/subnet:Subnet').filter((s) => /private/.test(s.name)).map((s) => s.inputs.availabilityZoneId);
    };
    const here = await zonesOf(US_EAST_1_ZONES);
    expect(here).toEqual(['use1-az1', 'use1-az2', 'use1-az4']);
    expect(await zonesOf(otherAccount)).toEqual(here);
  });

  test('config exclusions reach the subnets', async () => {
    const run = await runProgram('platform', 'dev', { overrides: { 'pricesense:images': releaseImages(), 'pricesense:network': JSON.stringify({ excludeZoneIds: ['use1-az1'] }) } });
    const zones = run.ofType('aws:ec2/subnet:Subnet').map((s) => s.inputs.availabilityZoneId);
    expect([...new Set(zones)]).toEqual(['use1-az2', 'use1-az4']);
  });
});

describe('pinned zones (network.zoneIds): nothing moves a subnet once a stack has its zones', () => {
  const images = { 'pricesense:images': releaseImages() };
  const subnetZones = (run: Awaited<ReturnType<typeof runProgram>>): unknown[] =>
    run.ofType('aws:ec2/subnet:Subnet').filter((s) => /private/.test(s.name)).map((s) => s.inputs.availabilityZoneId);
  // use1-az2 missing from the lookup: impaired today, or listed differently.
  const withoutAz2: AvailableZones = { names: ['us-east-1a', 'us-east-1c', 'us-east-1e'], zoneIds: ['use1-az3', 'use1-az1', 'use1-az4'] };

  test.each(['dev', 'stage', 'prod'])('%s: the committed stack file pins its zones, and no zone lookup is made', async (stack) => {
    const run = await runProgram('platform', stack, { zones: withoutAz2, overrides: images });
    expect(subnetZones(run)).toEqual(stack === 'prod' ? ['use1-az1', 'use1-az2', 'use1-az4'] : ['use1-az1', 'use1-az2']);
    expect(run.outputs.zoneIds).toEqual(subnetZones(run));
    expect(run.invokes.map((i) => i.token)).not.toContain('aws:index/getAvailabilityZones:getAvailabilityZones');
    // What deploy.sh reads to wake dev's sleeping node groups (the form delivery-scripts.test.ts feeds it).
    expect([run.outputs.demoHours, run.outputs.scheduledNodeGroups]).toEqual(stack === 'dev' ? ['UTC MON-FRI 08:00 20:00', 'pricesense-dev-spot:2:3'] : [null, null]);
  });

  test('unpinned (a first up): the lookup filters on opt-in status only, and the chosen zones come out with the command that pins them', async () => {
    const run = await runProgram('platform', 'dev', { overrides: { ...images, 'pricesense:network': '{}' } });
    const lookup = run.invokes.filter((i) => i.token === 'aws:index/getAvailabilityZones:getAvailabilityZones');
    expect(lookup.map((i) => i.inputs)).toEqual([{ filters: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }] }]);
    expect(run.outputs.zoneIds).toEqual(['use1-az1', 'use1-az2']);
    expect(run.logs).toContainEqual(expect.stringContaining("pulumi config set --path 'pricesense:network.zoneIds[0]' use1-az1 && pulumi config set --path 'pricesense:network.zoneIds[1]' use1-az2"));
  });

  test('an exclusion of a pinned zone is a config error before any resource, not a subnet replacement', () => {
    const raw = { ...stackConfig('platform', 'dev'), 'pricesense:images': releaseImages(), 'pricesense:network': JSON.stringify({ zoneIds: ['use1-az1', 'use1-az2'], excludeZoneIds: ['use1-az2'] }) };
    expect(() => parseReleasedStackConfig('dev', 'pricesense', raw)).toThrow(ConfigError);
    expect(() => parseReleasedStackConfig('dev', 'pricesense', raw)).toThrow('pricesense:network.zoneIds[1]: expected a zone not in network.excludeZoneIds');
  });

  test('pinned zones are checked against azCount, duplicates and the zones EKS refuses', () => {
    expect(pinnedZoneProblems(['use1-az1', 'use1-az2'], 2, [])).toEqual([]);
    expect(pinnedZoneProblems(['use1-az1'], 2, []).map((p) => p.path)).toEqual(['network.zoneIds']);
    expect(pinnedZoneProblems(['use1-az1', 'use1-az1'], 2, []).map((p) => p.expected)).toEqual(['distinct zone IDs']);
    expect(pinnedZoneProblems(['use1-az1', 'use1-az3'], 2, [])).toEqual([{ path: 'network.zoneIds[1]', expected: expect.stringContaining('a zone EKS supports'), value: 'use1-az3' }]);
  });

  // The program awaits stackZones before declaring any resource (infra/program.ts): its
  // rejection is the run's error. (Under the mock engine a failing program takes the test
  // process down, so this is checked on stackZones itself.)
  test('unpinned with too few usable zones: the zones step fails with the reason, before any resource', async () => {
    const usw1: AvailableZones = { names: ['us-west-1a', 'us-west-1c'], zoneIds: ['usw1-az1', 'usw1-az2'] };
    const choice = stackZones({ azCount: 2, excludeZoneIds: [] }, 'us-west-1', () => Promise.resolve(usw1));
    await expect(choice).rejects.toThrow(pulumi.RunError);
    await expect(choice).rejects.toThrow('region us-west-1 has 1 usable availability zone(s) (usw1-az1; excluded: usw1-az2)');
  });

  test('pinned zones need no lookup at all', async () => {
    const lookup = jest.fn(() => Promise.reject(new Error('no lookup expected')));
    await expect(stackZones({ azCount: 2, excludeZoneIds: ['use1-az2'], zoneIds: ['use1-az4', 'use1-az1'] }, 'us-east-1', lookup)).resolves.toEqual({ zoneIds: ['use1-az4', 'use1-az1'] });
    expect(lookup).not.toHaveBeenCalled();
  });
});
