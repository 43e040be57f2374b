// What the HTTP and SOCKS proxies share: decide (recording every denial),
// then dial the checked address. One instance per session; it reads the
// current policy at each request, so updateConfig applies to the next one.
import type { Socket } from 'node:net';
import { decide, type AskCallback, type CompiledPerCommand, type CompiledPolicy, type Decision } from './policy.js';
import { AddressGuard, dialPinned, ResolvedAddressDenied } from './resolve.js';
import { encodeCommand, type SandboxViolationEvent, type SandboxViolationStore } from './violations.js';
import { formatHost } from './host.js';

/** Who is asking: resolved from the relay's token, never from the request. */
export interface ConnContext {
  commandId: string;
  command?: string;
  perCommand?: CompiledPerCommand;
}

export class PolicyDenied extends Error {
  constructor(readonly decision: Decision) {
    super(decision.reason);
  }
}

export interface GateOptions {
  getPolicy: () => CompiledPolicy;
  ask?: AskCallback;
  guard: AddressGuard;
  violations: SandboxViolationStore;
  onViolation?: (v: SandboxViolationEvent) => void;
  debug?: (line: string) => void;
  connectTimeoutMs?: number;
}

export class Gate {
  constructor(private readonly o: GateOptions) {}

  debug(line: string): void {
    this.o.debug?.(`[cordon net] ${line}`);
  }

  record(host: string, port: number, reason: string, ctx: ConnContext | undefined): void {
    const v: SandboxViolationEvent = {
      line: `deny network-outbound ${formatHost(host)}:${port} (${reason})`,
      timestamp: new Date(),
      host,
      port,
      reason,
      ...(ctx ? { commandId: ctx.commandId } : {}),
      ...(ctx?.command !== undefined ? { command: ctx.command, encodedCommand: encodeCommand(ctx.command) } : {}),
    };
    this.o.violations.addViolation(v);
    this.debug(v.line + (ctx ? ` [command ${ctx.commandId}]` : ''));
    try {
      this.o.onViolation?.(v);
    } catch {
      /* an embedder's callback must not break the proxy */
    }
  }

  async decide(host: string, port: number, ctx: ConnContext): Promise<Decision> {
    const d = await decide({ host, port, commandId: ctx.commandId }, { policy: this.o.getPolicy(), perCommand: ctx.perCommand, ask: this.o.ask });
    if (!d.allow) this.record(d.host, port, d.reason, ctx);
    else this.debug(`allow ${formatHost(d.host)}:${port} (${d.reason})`);
    return d;
  }

  /** The checked addresses for an allowed decision (resolved once); a
   *  resolved-address refusal is recorded and thrown as PolicyDenied. */
  async addresses(d: Decision, ctx: ConnContext): Promise<string[]> {
    try {
      return await this.o.guard.addressesFor(d.host, d.port, { policy: this.o.getPolicy(), perCommand: ctx.perCommand });
    } catch (e) {
      if (e instanceof ResolvedAddressDenied) {
        this.debug(`${d.host}:${d.port} refused addresses ${e.addresses.join(', ')}`);
        this.record(d.host, d.port, e.reason, ctx);
        throw new PolicyDenied({ allow: false, host: d.host, port: d.port, reason: e.reason });
      }
      throw e;
    }
  }

  /** Dials an allowed decision from Node (the v1 data path). */
  async dial(d: Decision, ctx: ConnContext): Promise<Socket> {
    return this.dialAddresses(await this.addresses(d, ctx), d.port);
  }

  async dialAddresses(addrs: string[], port: number): Promise<Socket> {
    const s = await dialPinned(addrs, port, this.o.connectTimeoutMs);
    s.setNoDelay(true);
    return s;
  }
}

/** Copies both ways with half-close propagated (end -> shutdown(SHUT_WR)),
 *  and tears both down on an error. */
export function splice(a: Socket, b: Socket, opts: { holdAtoB?: boolean } = {}): void {
  // The upstream comes from dialPinned (not half-open): without this an
  // origin's half-close became a full close here, and bytes the client sent
  // after it never arrived (v1 tunnels; found by test/reliability/upstream).
  a.allowHalfOpen = true;
  b.allowHalfOpen = true;
  a.setNoDelay(true);
  b.setNoDelay(true);
  const kill = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', kill);
  b.on('error', kill);
  // A closed side ends the other only after its queued bytes are flushed,
  // so nothing in flight is truncated.
  const after = (x: Socket, y: Socket) => (hadError: boolean) => {
    if (hadError || y.destroyed) return y.destroy();
    if (!y.writableEnded) y.end();
    if (y.writableFinished) y.destroy();
    else y.once('finish', () => y.destroy());
  };
  a.on('close', after(a, b));
  b.on('close', after(b, a));
  // holdAtoB: the caller pipes a -> b itself once it has inspected a's first bytes.
  if (!opts.holdAtoB) a.pipe(b);
  b.pipe(a);
}
