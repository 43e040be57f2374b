// Host canonicalization and IP address classification. Every decision in the
// network policy compares canonical spellings, so that what the allow/deny
// lists see is what the kernel would dial: `127.1`, `2130706433`,
// `0x7f.0.0.1`, `[::ffff:127.0.0.1]` and `LOCALHOST.` are all one host.
import { BlockList, isIP } from 'node:net';

/** Characters that may never appear in a requested host. `%` is refused
 *  before the URL parser sees it, because WHATWG percent-decodes hosts
 *  (`ex%41` -> `exa`) and because IPv6 zone ids (`fe80::1%lo`) carry a
 *  charset loose enough to smuggle a suffix past wildcard matching. */
const FORBIDDEN = /[\x00-\x20\x7f%@/\\?#*]/;
const NAME_CHARSET = /^[a-z0-9._-]+$/;

function stripBrackets(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/**
 * The canonical spelling of a host as a client named it (a name, an IPv4
 * literal in any inet_aton form, or an IPv6 literal with or without
 * brackets), or undefined when it is not a host we will ever dial.
 * IPv6 comes back unbracketed; IPv4-mapped IPv6 comes back as the IPv4
 * address it reaches; names are lower-case, IDNA (punycode) encoded, without
 * one trailing dot.
 */
export function canonicalizeHost(input: string): string | undefined {
  if (typeof input !== 'string' || input.length === 0 || input.length > 255) return undefined;
  if (FORBIDDEN.test(input)) return undefined;
  const bare = stripBrackets(input);
  if (bare.includes('[') || bare.includes(']')) return undefined;
  const v6 = bare.includes(':');
  if (v6 && isIP(bare) !== 6) return undefined;
  // Brackets are for IPv6 only; `[1.2.3.4]` is not a host a URL can name.
  if (bare !== input && !v6) return undefined;
  let out: string;
  try {
    out = new URL(`http://${v6 ? `[${bare}]` : bare}/`).hostname;
  } catch {
    return undefined;
  }
  if (v6) {
    const addr = stripBrackets(out);
    return mappedIPv4(addr) ?? addr;
  }
  if (out.endsWith('.')) out = out.slice(0, -1);
  if (out.length === 0 || !NAME_CHARSET.test(out)) return undefined;
  if (isIP(out) === 4) return out;
  // Empty labels are not names any resolver answers for.
  if (out.split('.').some((l) => l.length === 0 || l.length > 63)) return undefined;
  return out;
}

/** How an IP address is spelled in a URL authority or Host header. */
export function formatHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** The eight 16-bit groups of a (zone-free) IPv6 literal, or undefined. */
export function ipv6Groups(address: string): number[] | undefined {
  if (isIP(address) !== 6) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const [head = '', tail] = host.split('::');
  const lead = head ? head.split(':') : [];
  const rest = tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - lead.length - rest.length;
  if (fill < 0 || lead.length + fill + rest.length !== 8) return undefined;
  return [...lead, ...Array<string>(fill).fill('0'), ...rest].map((g) => parseInt(g, 16));
}

const quad = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/** The IPv4 address of an IPv4-mapped IPv6 literal (`::ffff:a.b.c.d`). */
export function mappedIPv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (!g) return undefined;
  return g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff ? quad(g[6]!, g[7]!) : undefined;
}

/**
 * The IPv4 address an IPv6 address delivers to: IPv4-mapped and
 * -compatible (`::ffff:0:0/96`, `::/96`), IPv4-translated
 * (`::ffff:0:0:0/96`), NAT64 well-known prefix (`64:ff9b::/96`) and 6to4
 * (`2002::/16`). Deny rules for IPv4 apply to these too; they never earn an
 * allow.
 */
export function embeddedIPv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (!g) return undefined;
  const zero = (a: number, b: number) => g.slice(a, b).every((x) => x === 0);
  if (g[0] === 0x2002) return quad(g[1]!, g[2]!);
  const low = quad(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return low;
  if (zero(0, 5) && (g[5] === 0 || g[5] === 0xffff)) {
    // `::` and `::1` are themselves (unspecified, loopback), not 0.0.0.x.
    if (zero(0, 7) && (g[7] === 0 || g[7] === 1)) return undefined;
    return low;
  }
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return low;
  return undefined;
}

/** Parse `addr` or `addr/prefix` (IPv6 unbracketed) into a BlockList rule.
 *  IPv4-mapped IPv6 ranges become the IPv4 rule they stand for. */
export function parseAddressRange(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  if (typeof entry !== 'string' || entry.includes('%')) return undefined;
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const fam = isIP(address);
  if (fam === 0) return undefined;
  const max = fam === 6 ? 128 : 32;
  let prefix = max;
  if (slash !== -1) {
    const raw = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(raw) || Number(raw) > max) return undefined;
    prefix = Number(raw);
  }
  if (fam === 6) {
    const m = mappedIPv4(address);
    if (m !== undefined) return prefix < 96 ? undefined : { address: m, prefix: prefix - 96, family: 'ipv4' };
    return { address, prefix, family: 'ipv6' };
  }
  return { address, prefix, family: 'ipv4' };
}

/** A set of addresses/ranges; IPv4 rules also match IPv4 carried in IPv6. */
export class AddressSet {
  private readonly list = new BlockList();
  private empty = true;
  constructor(entries: Iterable<string> = []) {
    for (const e of entries) this.add(e);
  }
  /** Adds a literal or CIDR; throws on a malformed entry (validated earlier). */
  add(entry: string): void {
    const r = parseAddressRange(entry);
    if (!r) throw new Error(`invalid IP address or CIDR range: ${JSON.stringify(entry)}`);
    this.list.addSubnet(r.address, r.prefix, r.family);
    this.empty = false;
  }
  has(address: string): boolean {
    if (this.empty) return false;
    const fam = isIP(address);
    if (fam === 0) return false;
    if (this.list.check(address, fam === 4 ? 'ipv4' : 'ipv6')) return true;
    const v4 = fam === 6 ? (mappedIPv4(address) ?? embeddedIPv4(address)) : undefined;
    return v4 !== undefined && this.list.check(v4, 'ipv4');
  }
}

/** Cloud instance-metadata endpoints outside link-local space (srt's list). */
export const CLOUD_METADATA = [
  '169.254.169.254',
  '169.254.170.2',
  '100.100.100.200',
  '168.63.129.16',
  '192.0.0.192',
  'fd00:ec2::/32',
  'fd20:ce::254',
  'fd00:c1::a9fe:a9fe',
  'fd00:42::42',
  'fd00:a9fe:a9fe::1',
  'fd00:100::100:200',
];

/** Address classes an allowed name may never resolve to, in the order a
 *  refusal reports them. Private ranges are deliberately not here (srt:
 *  intranet names are legitimate; `deniedResolvedAddresses` opts in). */
export const DENIED_CLASSES: ReadonlyArray<readonly [string, AddressSet]> = [
  ['a loopback address', new AddressSet(['127.0.0.0/8', '::1'])],
  ['an unspecified address', new AddressSet(['0.0.0.0/8', '::'])],
  ['a cloud metadata address', new AddressSet(CLOUD_METADATA)],
  ['a link-local address', new AddressSet(['169.254.0.0/16', 'fe80::/10'])],
  ['a multicast address', new AddressSet(['224.0.0.0/4', 'ff00::/8'])],
  ['the broadcast address', new AddressSet(['255.255.255.255'])],
];

const PRIVATE = new AddressSet(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']);

export type AddressClass =
  | 'loopback'
  | 'unspecified'
  | 'metadata'
  | 'link-local'
  | 'multicast'
  | 'broadcast'
  | 'private'
  | 'public';

/** What kind of address this is (for tests, `explain` and debug lines). */
export function classifyAddress(address: string): AddressClass | undefined {
  if (isIP(address) === 0) return undefined;
  const names: AddressClass[] = ['loopback', 'unspecified', 'metadata', 'link-local', 'multicast', 'broadcast'];
  for (let i = 0; i < DENIED_CLASSES.length; i++) if (DENIED_CLASSES[i]![1].has(address)) return names[i];
  if (PRIVATE.has(address)) return 'private';
  return 'public';
}

/** The reason an address is in a built-in denied class, or undefined. */
export function deniedClassOf(address: string): string | undefined {
  for (const [why, set] of DENIED_CLASSES) if (set.has(address)) return why;
  return undefined;
}

/** `localhost` and names under `.localhost` (RFC 6761). */
export function isLoopbackName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}
