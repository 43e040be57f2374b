// SOCKS5 (RFC 1928): CONNECT only, through the same decide() as HTTP.
// No-auth and RFC 1929 username/password are both accepted (the
// credentials mean nothing: identity comes from the relay token). BIND and
// UDP ASSOCIATE -> 0x07; SOCKS4 and anything else -> closed.
import type { Socket } from 'node:net';
import { Gate, PolicyDenied, splice, type ConnContext } from './gate.js';
import { dialViaRelay, handOver, ECONNREFUSED, type FastLink } from './fast.js';

export const REP = {
  ok: 0x00,
  failure: 0x01,
  notAllowed: 0x02,
  netUnreachable: 0x03,
  hostUnreachable: 0x04,
  refused: 0x05,
  cmdUnsupported: 0x07,
  atypUnsupported: 0x08,
} as const;

function endThenClose(socket: Socket, data: Buffer): void {
  socket.end(data, () => socket.destroy());
}

export function socksReply(rep: number): Buffer {
  return Buffer.from([5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
}

/** Pull-style reader over a socket's data events. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private want = 0;
  private wake: (() => void) | undefined;
  private closed = false;
  /** Bytes handed out by read(): the protocol part of the stream. */
  consumed = 0;
  constructor(private readonly s: Socket) {
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.resume();
  }
  private onData = (d: Buffer) => {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    if (this.buf.length > 4096) this.s.destroy();
    if (this.buf.length >= this.want) this.wake?.();
  };
  private onEnd = () => {
    this.closed = true;
    this.wake?.();
  };
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error('client closed');
      this.want = n;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.consumed += n;
    return out;
  }
  /** Stops reading; returns bytes already received beyond the handshake. */
  detach(): Buffer {
    this.s.pause();
    this.s.removeListener('data', this.onData);
    this.s.removeListener('end', this.onEnd);
    this.s.removeListener('close', this.onEnd);
    return this.buf;
  }
}

export class SocksProxy {
  constructor(private readonly gate: Gate) {}

  /** `link`: a relay v2 data connection; the relay then dials and carries
   *  the bytes. */
  handle(socket: Socket, ctx: ConnContext, link?: FastLink): void {
    socket.on('error', () => socket.destroy());
    this.run(socket, ctx, link).catch((e: Error) => {
      this.gate.debug(`socks: ${e.message}`);
      socket.destroy();
    });
  }

  private async run(socket: Socket, ctx: ConnContext, link?: FastLink): Promise<void> {
    const r = new Reader(socket);
    const [ver, nMethods] = await r.read(2);
    if (ver !== 5) {
      // SOCKS4/4a has no authentication and no IPv6; refuse it outright
      // rather than grow a second parser (catalog X10).
      this.gate.debug(`socks: version ${ver} refused`);
      if (ver === 4) endThenClose(socket, Buffer.from([0, 0x5b, 0, 0, 0, 0, 0, 0]));
      else socket.destroy();
      return;
    }
    const methods = await r.read(nMethods!);
    if (methods.includes(0x00)) socket.write(Buffer.from([5, 0x00]));
    else if (methods.includes(0x02)) {
      socket.write(Buffer.from([5, 0x02]));
      const [authVer, ulen] = await r.read(2);
      await r.read(ulen!);
      const [plen] = await r.read(1);
      await r.read(plen!);
      if (authVer !== 1) return void endThenClose(socket, Buffer.from([1, 1]));
      socket.write(Buffer.from([1, 0]));
    } else return void endThenClose(socket, Buffer.from([5, 0xff]));

    const [v, cmd, , atyp] = await r.read(4);
    if (v !== 5) return void socket.destroy();
    let host: string;
    if (atyp === 1) host = [...(await r.read(4))].join('.');
    else if (atyp === 4) {
      const b = await r.read(16);
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
      host = groups.join(':');
    } else if (atyp === 3) {
      const [len] = await r.read(1);
      // Raw bytes as latin1: a NUL or non-ASCII byte stays visible and is
      // rejected by canonicalization rather than silently dropped.
      host = (await r.read(len!)).toString('latin1');
    } else return void endThenClose(socket, socksReply(REP.atypUnsupported));
    const port = (await r.read(2)).readUInt16BE(0);
    if (cmd !== 1) {
      this.gate.debug(`socks: command ${cmd} to ${host}:${port} not supported`);
      return void endThenClose(socket, socksReply(REP.cmdUnsupported));
    }
    const d = await this.gate.decide(host, port, ctx);
    if (!d.allow) return void endThenClose(socket, socksReply(REP.notAllowed));
    let addrs: string[];
    try {
      addrs = await this.gate.addresses(d, ctx);
    } catch (e) {
      if (e instanceof PolicyDenied) return void endThenClose(socket, socksReply(REP.notAllowed));
      this.gate.debug(`socks: ${host}:${port}: ${(e as Error).message}`);
      return void endThenClose(socket, socksReply(REP.hostUnreachable));
    }
    if (link) {
      const errno = await dialViaRelay(link, addrs, port);
      if (errno !== undefined) {
        this.gate.debug(`socks: ${host}:${port}: relay dial failed (errno ${errno})`);
        return void endThenClose(socket, socksReply(errno === ECONNREFUSED ? REP.refused : REP.hostUnreachable));
      }
      r.detach();
      if (socket.destroyed) return void link.ctrl.drop(link.connid);
      socket.write(socksReply(REP.ok));
      return handOver(link, socket, r.consumed);
    }
    let up: Socket;
    try {
      up = await this.gate.dialAddresses(addrs, port);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      this.gate.debug(`socks: ${host}:${port}: ${(e as Error).message}`);
      return void endThenClose(socket, socksReply(code === 'ECONNREFUSED' ? REP.refused : REP.hostUnreachable));
    }
    const rest = r.detach();
    if (socket.destroyed) return void up.destroy();
    socket.write(socksReply(REP.ok));
    if (rest.length) up.write(rest);
    splice(socket, up);
  }
}
