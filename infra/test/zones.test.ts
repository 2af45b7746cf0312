// Availability zones are chosen by zone ID, never by name, and never one EKS refuses.
import { EKS_UNSUPPORTED_ZONE_IDS, selectZones, type AvailableZones } from '../network';
import { US_EAST_1_ZONES, releaseImages, runProgram } from './harness';

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
      const run = await runProgram('platform', 'prod', { zones, overrides: { 'pricesense:images': releaseImages() } });
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
