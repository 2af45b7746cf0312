import * as pulumi from '@pulumi/pulumi';

/**
 * Availability zones, by zone ID. Zone *names* map to different physical zones in every
 * account; IDs name the same zone everywhere, so exclusions, EKS's unsupported list and the
 * pinned zones of a stack are all IDs. No AWS SDK here: config validation uses it too.
 */

/**
 * Zones EKS refuses control-plane subnets in (UnsupportedAvailabilityZoneException), by
 * zone ID: https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html. Zone *names*
 * map to different physical zones in every account, so a name-based list cannot express
 * this; IDs can.
 */
export const EKS_UNSUPPORTED_ZONE_IDS: readonly string[] = ['use1-az3', 'usw1-az2', 'cac1-az3'];

export interface AvailableZones {
  readonly names: readonly string[];
  readonly zoneIds: readonly string[];
}

export interface Zone {
  readonly name: string;
  readonly id: string;
}

/**
 * The first `count` zones (in the region's zone ID order) that are neither unsupported by EKS
 * nor excluded by config. Throws with what was available, what was excluded and what to change.
 */
export function selectZones(available: AvailableZones, count: number, exclude: readonly string[], region: string): Zone[] {
  const excluded = new Set([...EKS_UNSUPPORTED_ZONE_IDS, ...exclude]);
  const zones = available.zoneIds
    .map((id, i) => ({ id, name: available.names[i] }))
    .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  const usable = zones.filter((z) => !excluded.has(z.id));
  if (usable.length < count) {
    const skipped = zones.filter((z) => excluded.has(z.id)).map((z) => z.id);
    throw new pulumi.RunError(
      `region ${region} has ${usable.length} usable availability zone(s) (${usable.map((z) => z.id).join(', ') || 'none'}; excluded: ${skipped.join(', ') || 'none'}); ` +
        `network.azCount asks for ${count}: lower pricesense:network.azCount or shorten pricesense:network.excludeZoneIds`,
    );
  }
  return usable.slice(0, count);
}


/**
 * What is wrong with a stack's pinned zones (network.zoneIds), as config complaints: one per
 * subnet and AZ count, none EKS refuses, none the stack excludes. Changing the list replaces
 * the subnets of every zone that moves, so the messages say so.
 */
export function pinnedZoneProblems(zoneIds: readonly string[], azCount: number, exclude: readonly string[]): { path: string; expected: string; value: unknown }[] {
  const problems: { path: string; expected: string; value: unknown }[] = [];
  if (zoneIds.length !== azCount) {
    problems.push({ path: 'network.zoneIds', expected: `${azCount} zone ID(s), one per network.azCount (adding a zone adds subnets; removing or reordering one replaces subnets)`, value: zoneIds });
  }
  if (new Set(zoneIds).size !== zoneIds.length) problems.push({ path: 'network.zoneIds', expected: 'distinct zone IDs', value: zoneIds });
  zoneIds.forEach((id, i) => {
    if (EKS_UNSUPPORTED_ZONE_IDS.includes(id)) problems.push({ path: `network.zoneIds[${i}]`, expected: `a zone EKS supports (not ${EKS_UNSUPPORTED_ZONE_IDS.join(', ')})`, value: id });
    if (exclude.includes(id)) {
      problems.push({ path: `network.zoneIds[${i}]`, expected: 'a zone not in network.excludeZoneIds (exclusions only steer the first choice; to move subnets out of a pinned zone, change network.zoneIds deliberately: its subnets are replaced)', value: id });
    }
  });
  return problems;
}

/** The region's own zones (Local and Wavelength zones are opt-in), by opt-in status only: a zone's momentary state is no criterion. */
export const REGION_ZONES_FILTER = [{ name: 'opt-in-status', values: ['opt-in-not-required'] }];

export interface ZoneChoice {
  readonly zoneIds: string[];
  /** Set when the zones were chosen by lookup: what to run to pin them. */
  readonly pinWith?: string;
}

/**
 * The stack's zones, before any resource is declared. Pinned zones (network.zoneIds) are used
 * as they are, with no lookup: a zone impaired today or an edit to excludeZoneIds cannot move a
 * subnet (a new zone ID replaces it, and the replacement's create-before-delete of the same CIDR
 * fails with InvalidSubnet.Conflict). Unpinned (a stack's first up) they are chosen by
 * selectZones from `lookup`, and a shortage fails the run here, with the reason, not inside an apply.
 */
export async function stackZones(
  network: { readonly azCount: number; readonly excludeZoneIds: readonly string[]; readonly zoneIds?: readonly string[] },
  region: string,
  lookup: () => Promise<AvailableZones>,
): Promise<ZoneChoice> {
  if (network.zoneIds !== undefined) return { zoneIds: [...network.zoneIds] };
  const zoneIds = selectZones(await lookup(), network.azCount, network.excludeZoneIds, region).map((z) => z.id);
  return {
    zoneIds,
    pinWith: `network.zoneIds is not pinned: this run chose ${zoneIds.join(', ')}. Pin them so no later change of the region's zones or of ` +
      `network.excludeZoneIds can move a subnet: ${zoneIds.map((id, i) => `pulumi config set --path 'pricesense:network.zoneIds[${i}]' ${id}`).join(' && ')} ` +
      '(docs/infra.md, "Zones")',
  };
}
