// The one decision function shared by HTTP CONNECT, absolute-form plain HTTP,
// SOCKS5 CONNECT and relayed host loopback ports. It looks only at the
// requested authority (never headers, never DNS), in srt's order:
// deniedDomains -> allowedDomains -> strictAllowlist -> per-command lists ->
// ask callback -> deny.
import { canonicalizeHost } from './host.js';
import { compileList, matches, type Pattern } from './patterns.js';

/** The network part of the settings that the host side reads (a structural
 *  subset of the config schema, so this module does not depend on it). */
export interface NetworkConfig {
  allowedDomains?: string[];
  deniedDomains?: string[];
  /** Keyed by the exact deniedDomains entry. */
  deniedDomainReasons?: Record<string, string>;
  strictAllowlist?: boolean;
  /** Addresses/CIDRs an allowed *name* must not resolve to (IPv6 unbracketed). */
  deniedResolvedAddresses?: string[];
}

export interface PerCommandLists {
  allowedDomains?: string[];
  deniedDomains?: string[];
}

export interface CompiledPolicy {
  allowed: Pattern[];
  denied: Pattern[];
  reasons: ReadonlyMap<string, string>;
  strict: boolean;
  deniedResolvedAddresses: string[];
}

export interface CompiledPerCommand {
  allowed: Pattern[];
  denied: Pattern[];
}

export type AskAnswer = boolean | { allow: false; reason?: string } | unknown;
export type AskCallback = (req: { host: string; port: number }) => AskAnswer | Promise<AskAnswer>;

export interface NetRequest {
  host: string;
  port: number;
  commandId?: string;
}

export type Decision =
  | { allow: true; host: string; port: number; reason: string }
  | { allow: false; host: string; port: number; reason: string; invalid?: boolean; configuredReason?: boolean };

/** Validates and compiles the config; throws one Error naming the bad entry. */
export function compilePolicy(cfg: NetworkConfig | undefined): CompiledPolicy {
  const reasons = new Map<string, string>();
  for (const [k, v] of Object.entries(cfg?.deniedDomainReasons ?? {})) {
    if (typeof v === 'string' && v.length > 0) reasons.set(k, v);
  }
  return {
    allowed: compileList(cfg?.allowedDomains, 'allowed'),
    denied: compileList(cfg?.deniedDomains, 'denied'),
    reasons,
    strict: cfg?.strictAllowlist === true,
    deniedResolvedAddresses: [...(cfg?.deniedResolvedAddresses ?? [])],
  };
}

export function compilePerCommand(lists: PerCommandLists | undefined): CompiledPerCommand {
  return { allowed: compileList(lists?.allowedDomains, 'allowed'), denied: compileList(lists?.deniedDomains, 'denied') };
}

export function validPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** Text that may be shown to the client or stored: one tag-free line. */
export function sanitizeReason(s: string): string {
  return s
    .replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]+/gu, ' ')
    .replace(/[<>]/g, '')
    .trim()
    .slice(0, 300);
}

function isDeclaredDenial(a: unknown): a is { allow: false; reason?: unknown } {
  return typeof a === 'object' && a !== null && (a as { allow?: unknown }).allow === false;
}

export async function decide(
  req: NetRequest,
  ctx: { policy: CompiledPolicy; perCommand?: CompiledPerCommand; ask?: AskCallback },
): Promise<Decision> {
  const port = req.port;
  const host = canonicalizeHost(req.host);
  const shown = host ?? sanitizeReason(String(req.host)).slice(0, 100);
  if (host === undefined) return { allow: false, host: shown, port, reason: 'malformed host', invalid: true };
  if (!validPort(port)) return { allow: false, host, port, reason: 'invalid port', invalid: true };
  const { policy, perCommand } = ctx;

  for (const p of policy.denied) {
    if (matches(p, host, port)) {
      const configured = policy.reasons.get(p.source);
      if (configured !== undefined) return { allow: false, host, port, reason: sanitizeReason(configured), configuredReason: true };
      return { allow: false, host, port, reason: 'host is on the deny list' };
    }
  }
  // A per-command deny can only narrow, so it is checked with the global
  // denies, before anything can allow.
  for (const p of perCommand?.denied ?? []) {
    if (matches(p, host, port)) return { allow: false, host, port, reason: 'host is on the command\'s deny list' };
  }
  for (const p of policy.allowed) {
    if (matches(p, host, port)) return { allow: true, host, port, reason: `allowed by ${p.source}` };
  }
  if (policy.strict) return { allow: false, host, port, reason: 'host is not on the allow list' };
  for (const p of perCommand?.allowed ?? []) {
    if (matches(p, host, port)) return { allow: true, host, port, reason: `allowed by per-command ${p.source}` };
  }
  if (!ctx.ask) return { allow: false, host, port, reason: 'host is not on the allow list' };
  try {
    const answer = await ctx.ask({ host, port });
    if (answer === true) return { allow: true, host, port, reason: 'allowed by ask callback' };
    const why = isDeclaredDenial(answer) && typeof answer.reason === 'string' ? sanitizeReason(answer.reason) : '';
    return { allow: false, host, port, reason: why || 'user denied' };
  } catch {
    return { allow: false, host, port, reason: 'permission prompt failed' };
  }
}

/**
 * Whether a relayed host loopback port may be forwarded: only an explicit
 * allow entry for `localhost:<port>` or `127.0.0.1:<port>` (or the same
 * without a port) opens it; deny entries win; the ask callback is never
 * consulted for host loopback.
 */
export function allowsHostLoopbackPort(port: number, ctx: { policy: CompiledPolicy; perCommand?: CompiledPerCommand }): boolean {
  if (!validPort(port)) return false;
  const names = ['localhost', '127.0.0.1'];
  const hit = (ps: Pattern[]) => ps.some((p) => p.kind !== 'any' && p.kind !== 'wildcard' && names.some((n) => matches(p, n, port)));
  const deniedAll = (ps: Pattern[]) => ps.some((p) => names.some((n) => matches(p, n, port)));
  if (deniedAll(ctx.policy.denied) || deniedAll(ctx.perCommand?.denied ?? [])) return false;
  if (hit(ctx.policy.allowed)) return true;
  if (ctx.policy.strict) return false;
  return hit(ctx.perCommand?.allowed ?? []);
}
