/**
 * IPv4 blocks that can never be the source address of a client on the internet, from the
 * IANA IPv4 Special-Purpose Address Registry (RFC 6890 and the RFCs it lists). A public
 * access list (the EKS public endpoint's `publicAccessCidrs`, a load balancer's source
 * ranges) naming one of them admits nobody: the documentation range 203.0.113.0/24 in all
 * three stack files made every deploy after the first one unable to reach the cluster.
 *
 * Shared by config validation (infra/config.ts) and the policy pack (infra/policies), so
 * both refuse the same blocks. No dependencies: the policy pack loads it on its own.
 */

export interface SpecialRange {
  readonly cidr: string;
  /** Why no internet client has an address in it. */
  readonly what: string;
  /** RFC 1918: what an internal load balancer's clients (inside the VPC or a peered network) have. */
  readonly privateUse?: true;
}

export const NON_ROUTABLE_RANGES: readonly SpecialRange[] = [
  { cidr: '0.0.0.0/8', what: '"this network" (RFC 791)' },
  { cidr: '10.0.0.0/8', what: 'private use (RFC 1918)', privateUse: true },
  { cidr: '100.64.0.0/10', what: 'carrier-grade NAT shared space (RFC 6598)' },
  { cidr: '127.0.0.0/8', what: 'loopback (RFC 1122)' },
  { cidr: '169.254.0.0/16', what: 'link-local (RFC 3927)' },
  { cidr: '172.16.0.0/12', what: 'private use (RFC 1918)', privateUse: true },
  { cidr: '192.0.0.0/24', what: 'IETF protocol assignments (RFC 6890)' },
  { cidr: '192.0.2.0/24', what: 'documentation TEST-NET-1 (RFC 5737)' },
  { cidr: '192.88.99.0/24', what: 'deprecated 6to4 relay anycast (RFC 7526)' },
  { cidr: '192.168.0.0/16', what: 'private use (RFC 1918)', privateUse: true },
  { cidr: '198.18.0.0/15', what: 'benchmarking (RFC 2544)' },
  { cidr: '198.51.100.0/24', what: 'documentation TEST-NET-2 (RFC 5737)' },
  { cidr: '203.0.113.0/24', what: 'documentation TEST-NET-3 (RFC 5737)' },
  { cidr: '224.0.0.0/4', what: 'multicast (RFC 5771)' },
  { cidr: '240.0.0.0/4', what: 'reserved for future use (RFC 1112), including broadcast' },
];

interface Block {
  readonly base: number;
  readonly bits: number;
}

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** The block as an unsigned 32-bit base address and prefix length, or undefined if it is not an IPv4 CIDR. */
export function parseCidr(cidr: string): Block | undefined {
  const m = CIDR.exec(cidr);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 32) return undefined;
  const base = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  return { base, bits };
}

function mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** True when every address of `inner` lies in `outer`. */
function within(inner: Block, outer: Block): boolean {
  return inner.bits >= outer.bits && ((inner.base & mask(outer.bits)) >>> 0) === outer.base;
}

const PARSED = NON_ROUTABLE_RANGES.map((r) => ({ range: r, block: parseCidr(r.cidr) as Block }));

/**
 * Why `cidr` cannot admit an internet client, or undefined when it can. A block that merely
 * overlaps a special range (0.0.0.0/0, 192.0.0.0/8) is not refused: it also holds public
 * addresses. A block with host bits set (10.0.0.1/16) is refused too: AWS would store a
 * different block than the one written.
 */
export function nonRoutableReason(cidr: string): string | undefined {
  const block = parseCidr(cidr);
  if (!block) return `${cidr} is not an IPv4 CIDR`;
  if (((block.base & mask(block.bits)) >>> 0) !== block.base) {
    return `${cidr} has host bits set (did you mean ${formatBlock({ base: (block.base & mask(block.bits)) >>> 0, bits: block.bits })}?)`;
  }
  const hit = PARSED.find((p) => within(block, p.block));
  return hit ? `${cidr} lies in ${hit.range.cidr}, ${hit.range.what}: no client on the internet has such an address` : undefined;
}

function formatBlock(b: Block): string {
  return `${b.base >>> 24}.${(b.base >>> 16) & 255}.${(b.base >>> 8) & 255}.${b.base & 255}/${b.bits}`;
}

/** Whether `cidr` is a well-formed block (no host bits set) inside a private-use (RFC 1918) range. */
export function isPrivateUse(cidr: string): boolean {
  const block = parseCidr(cidr);
  if (!block || ((block.base & mask(block.bits)) >>> 0) !== block.base) return false;
  return PARSED.some((p) => p.range.privateUse === true && within(block, p.block));
}
