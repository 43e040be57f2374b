// Resolved-address guard and pinned dialling. The policy decides by name;
// whoever controls an allowed name's DNS decides where it points. So an
// allowed name is resolved exactly once, every answer is checked, and the
// proxy dials a surviving *address* (never the name again), which closes the
// rebinding window between check and connect.
import { lookup } from 'node:dns/promises';
import { connect, isIP, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { AddressSet, deniedClassOf, isLoopbackName } from './host.js';
import type { CompiledPerCommand, CompiledPolicy } from './policy.js';
import type { Pattern } from './patterns.js';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}
/** Injectable for tests (a fake DNS table); default: getaddrinfo, all answers. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (host) => {
  const r = await lookup(host, { all: true, verbatim: true });
  return r.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** This host's own unicast addresses: a service bound to 0.0.0.0 answers on
 *  them exactly as on loopback. */
export function localInterfaceAddresses(): string[] {
  try {
    return Object.values(networkInterfaces())
      .flat()
      .flatMap((i) => (i ? [i.address.split('%')[0]!] : []));
  } catch {
    return [];
  }
}

export class ResolvedAddressDenied extends Error {
  constructor(
    readonly host: string,
    readonly reason: string,
    readonly addresses: string[],
  ) {
    super(`Connection to ${host} blocked: ${reason}`);
  }
}

/** IP-literal entries of a pattern list, as (address, port?) rules. */
class LiteralRules {
  private readonly any = new AddressSet();
  private readonly byPort = new Map<number, AddressSet>();
  constructor(patterns: Pattern[]) {
    for (const p of patterns) {
      if (p.kind !== 'ip') continue;
      if (p.port === undefined) this.any.add(p.ip);
      else {
        let s = this.byPort.get(p.port);
        if (!s) this.byPort.set(p.port, (s = new AddressSet()));
        s.add(p.ip);
      }
    }
  }
  has(address: string, port: number): boolean {
    return this.any.has(address) || (this.byPort.get(port)?.has(address) ?? false);
  }
}

export interface GuardOptions {
  resolver?: Resolver;
  /** Default: os.networkInterfaces() once, now. */
  localAddresses?: string[];
  /** Test seam: let names resolve to loopback (fake-DNS origins on 127.0.0.1).
   *  Never set by the CLI or library. */
  allowLoopbackResolution?: boolean;
}

export class AddressGuard {
  private readonly resolver: Resolver;
  private readonly local: AddressSet;
  private readonly loopback = new AddressSet(['127.0.0.0/8', '::1']);
  constructor(private readonly opts: GuardOptions = {}) {
    this.resolver = opts.resolver ?? systemResolver;
    this.local = new AddressSet();
    for (const a of opts.localAddresses ?? localInterfaceAddresses()) {
      try {
        this.local.add(a);
      } catch {
        /* an odd interface address is skipped; the fixed classes still apply */
      }
    }
  }

  /** Why `host:port` may not use `address`, or undefined if it may. */
  denial(host: string, address: string, port: number, ctx: { policy: CompiledPolicy; perCommand?: CompiledPerCommand }): string | undefined {
    if (isIP(address) === 0) return 'an unparsable address';
    const refused = new LiteralRules([...ctx.policy.denied, ...(ctx.perCommand?.denied ?? [])]);
    if (refused.has(address, port)) return 'a deny-listed address';
    const allowed = new LiteralRules([...ctx.policy.allowed, ...(ctx.policy.strict ? [] : (ctx.perCommand?.allowed ?? []))]);
    // An address the policy names explicitly may be reached by name too:
    // that grants nothing the literal entry did not.
    if (allowed.has(address, port)) return undefined;
    if (isLoopbackName(host)) return this.loopback.has(address) ? undefined : 'a non-loopback address';
    const isLoop = this.loopback.has(address);
    if (!(isLoop && this.opts.allowLoopbackResolution)) {
      const why = deniedClassOf(address);
      if (why) return why;
    }
    if (ctx.policy.deniedResolvedAddresses.length && new AddressSet(ctx.policy.deniedResolvedAddresses).has(address)) return 'a listed address';
    if (!isLoop && this.local.has(address)) return "one of this host's addresses";
    return undefined;
  }

  /**
   * The addresses to dial for an allowed host, in order. An IP literal is
   * returned as is (the policy matched that exact address). A name is
   * resolved once; denied answers are dropped; none left -> throws
   * ResolvedAddressDenied (a policy refusal) or the resolver's error.
   */
  async addressesFor(host: string, port: number, ctx: { policy: CompiledPolicy; perCommand?: CompiledPerCommand }): Promise<string[]> {
    if (isIP(host) !== 0) return [host];
    const answers = await this.resolver(host);
    const kept: string[] = [];
    const whys = new Set<string>();
    const dropped: string[] = [];
    for (const a of answers) {
      const why = this.denial(host, a.address, port, ctx);
      if (why === undefined) kept.push(a.address);
      else {
        whys.add(why);
        dropped.push(a.address);
      }
    }
    if (kept.length) return kept;
    if (dropped.length) throw new ResolvedAddressDenied(host, `resolved to ${[...whys].sort().join(' / ')}`, dropped);
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  }
}

/** Connects to the first address that answers (by IP: no lookup here). */
export function dialPinned(addresses: string[], port: number, timeoutMs = 10_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let i = 0;
    let lastErr: Error = new Error('no address');
    const next = () => {
      const address = addresses[i++];
      if (address === undefined) return reject(lastErr);
      const s = connect({ host: address, port, noDelay: true });
      const timer = setTimeout(() => s.destroy(Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' })), timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        lastErr = e;
        s.destroy();
        next();
      });
    };
    next();
  });
}
