// srt's domain-pattern grammar: `example.com`, `*.example.com` (strict
// subdomains only), `localhost`, IPv4 literals, `[v6]` literals, each with an
// optional `:port`; a bare `*` (or `*:port`) only in deniedDomains.
// Patterns are parsed once into a canonical form, so matching is plain
// equality on canonical hosts (see host.ts).
import { isIP } from 'node:net';
import { canonicalizeHost } from './host.js';

export type Pattern =
  | { kind: 'any'; port?: number; source: string }
  | { kind: 'exact'; host: string; port?: number; source: string }
  | { kind: 'wildcard'; base: string; port?: number; source: string }
  | { kind: 'ip'; ip: string; port?: number; source: string };

export type ListKind = 'allowed' | 'denied';

export type ParseResult = { ok: true; pattern: Pattern } | { ok: false; error: string };

const GRAMMAR =
  'expected a domain ("example.com"), a wildcard ("*.example.com"), "localhost", an IPv4 literal or a bracketed IPv6 literal ("[::1]"), optionally with ":port" (1-65535)';

function parsePort(s: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

/** Splits `host[:port]` / `[v6][:port]`; undefined when the port part is bad
 *  or an IPv6 literal is unbracketed (`::1:443` is ambiguous). */
function splitPort(s: string): { host: string; port?: number; bracketed: boolean } | undefined {
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close === -1) return undefined;
    const host = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest === '') return { host, bracketed: true };
    if (!rest.startsWith(':')) return undefined;
    const port = parsePort(rest.slice(1));
    return port === undefined ? undefined : { host, port, bracketed: true };
  }
  const first = s.indexOf(':');
  if (first === -1) return { host: s, bracketed: false };
  if (s.indexOf(':', first + 1) !== -1) return undefined;
  const port = parsePort(s.slice(first + 1));
  return port === undefined ? undefined : { host: s.slice(0, first), port, bracketed: false };
}

/**
 * Parses one allowedDomains/deniedDomains entry. The error names the entry,
 * so a settings loader can print it as is.
 */
export function parsePattern(entry: string, list: ListKind = 'allowed'): ParseResult {
  const bad = (why: string): ParseResult => ({ ok: false, error: `invalid ${list}Domains entry ${JSON.stringify(entry)}: ${why}` });
  if (typeof entry !== 'string' || entry.length === 0) return bad('empty');
  if (entry.length > 260) return bad('too long');
  if (/[\x00-\x20\x7f]/.test(entry)) return bad('contains whitespace or control characters');
  if (entry.includes('://') || entry.includes('/')) return bad(`a host pattern, not a URL; ${GRAMMAR}`);
  const sp = splitPort(entry);
  if (!sp) {
    return bad(
      entry.indexOf(':') !== entry.lastIndexOf(':') && !entry.startsWith('[')
        ? 'IPv6 literals must be bracketed, e.g. "[::1]" or "[::1]:443"'
        : `bad port; ${GRAMMAR}`,
    );
  }
  const { host, port, bracketed } = sp;
  const withPort = <T extends object>(p: T) => (port === undefined ? p : { ...p, port });
  if (bracketed) {
    if (host.includes('%')) return bad('IPv6 zone ids are not allowed');
    if (isIP(host) !== 6) return bad('not an IPv6 literal inside the brackets');
    const c = canonicalizeHost(host);
    if (c === undefined) return bad('not an IPv6 literal inside the brackets');
    return { ok: true, pattern: withPort({ kind: 'ip' as const, ip: c, source: entry }) };
  }
  if (host === '*') {
    if (list !== 'denied') return bad('a bare "*" is only accepted in deniedDomains');
    return { ok: true, pattern: withPort({ kind: 'any' as const, source: entry }) };
  }
  if (host.startsWith('*.')) {
    const rest = host.slice(2);
    if (rest.includes('*')) return bad('only one leading "*." wildcard is allowed');
    const base = canonicalizeHost(rest);
    if (base === undefined || isIP(base) !== 0) return bad(`wildcards apply to domain names only; ${GRAMMAR}`);
    if (!base.includes('.')) return bad('too broad: a wildcard needs at least two labels after "*." (e.g. "*.example.com")');
    if (rest.endsWith('.')) return bad('trailing dot');
    return { ok: true, pattern: withPort({ kind: 'wildcard' as const, base, source: entry }) };
  }
  if (host.includes('*')) return bad(`"*" is only allowed as a leading "*." label; ${GRAMMAR}`);
  if (host.includes('%') || host.includes('@')) return bad(GRAMMAR);
  const c = canonicalizeHost(host);
  if (c === undefined) return bad(GRAMMAR);
  if (isIP(c) !== 0) {
    // Only dotted-quad spellings count as IP patterns, so an entry reads as
    // what it matches (`127.1` in a policy is almost certainly a mistake).
    if (isIP(host) !== 4) return bad('IPv4 literals must be written as four decimal octets');
    return { ok: true, pattern: withPort({ kind: 'ip' as const, ip: c, source: entry }) };
  }
  if (c !== 'localhost' && !c.includes('.')) return bad(`a domain needs at least one dot (or use "localhost"); ${GRAMMAR}`);
  if (host.startsWith('.') || host.endsWith('.')) return bad('leading or trailing dot');
  return { ok: true, pattern: withPort({ kind: 'exact' as const, host: c, source: entry }) };
}

/** The validation error for an entry, or undefined when it is valid. */
export function patternError(entry: string, list: ListKind = 'allowed'): string | undefined {
  const r = parsePattern(entry, list);
  return r.ok ? undefined : r.error;
}

/** Parses a whole list; throws one Error naming the first bad entry. */
export function compileList(entries: readonly string[] | undefined, list: ListKind): Pattern[] {
  const out: Pattern[] = [];
  for (const e of entries ?? []) {
    const r = parsePattern(e, list);
    if (!r.ok) throw new Error(r.error);
    out.push(r.pattern);
  }
  return out;
}

/** Whether a canonical host (see canonicalizeHost) and port match. */
export function matches(p: Pattern, canonicalHost: string, port: number): boolean {
  if (p.port !== undefined && p.port !== port) return false;
  switch (p.kind) {
    case 'any':
      return true;
    case 'ip':
      return canonicalHost === p.ip;
    case 'exact':
      return canonicalHost === p.host;
    case 'wildcard':
      // Never for IP literals: `1.2.3.4` is not a subdomain of anything.
      return isIP(canonicalHost) === 0 && canonicalHost.endsWith('.' + p.base);
  }
}
