// Relay protocol v2, host side (docs/relay-protocol.md "Version 2"): Node
// still parses, decides, resolves and pins; the launcher's egress helper
// dials the checked address and the relay splices client <-> upstream, so
// tunnel bytes never pass through Node. One control connection per relay
// process carries DIAL/DIALED/GO/DROP lines; data connections name their
// relay and connection id in the preamble.
import type { Socket } from 'node:net';
import { isIP } from 'node:net';

/** The control connection of one relay process. */
export class RelayControl {
  private buf = '';
  private readonly dials = new Map<string, (errno: number) => void>();
  private closed = false;

  constructor(
    readonly key: string,
    private readonly socket: Socket,
    onClose: () => void,
  ) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      if (this.buf.length > 4096) return void socket.destroy();
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) !== -1) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const m = /^DIALED ([0-9]{1,20}) ([0-9]{1,5})$/.exec(line);
        if (!m) continue;
        const done = this.dials.get(m[1]!);
        if (done) {
          this.dials.delete(m[1]!);
          done(Number(m[2]));
        }
      }
    });
    socket.on('error', () => socket.destroy());
    // The relay socket server is allowHalfOpen: without this, a relay that
    // exits leaves its control connection half-open here, one descriptor
    // per command for the session's lifetime (found by the soak).
    socket.on('end', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      for (const done of this.dials.values()) done(5 /* EIO */);
      this.dials.clear();
      onClose();
    });
    socket.resume();
    socket.write('OK\n');
  }

  close(): void {
    this.socket.destroy();
  }

  get up(): boolean {
    return !this.closed;
  }

  /** Asks the relay's egress helper to connect to exactly ip:port; resolves
   *  with 0 or an errno. */
  dial(connid: string, ip: string, port: number): Promise<number> {
    if (this.closed || isIP(ip) === 0) return Promise.resolve(5);
    return new Promise((resolve) => {
      this.dials.get(connid)?.(125 /* ECANCELED */);
      this.dials.set(connid, resolve);
      this.socket.write(`DIAL ${connid} ${ip} ${port}\n`);
    });
  }

  /** GO: the relay joins the client to the dialled socket after skipping
   *  `skip` protocol bytes. Resolves once the line is handed to the kernel,
   *  so it precedes the data connection's end. */
  go(connid: string, skip: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(`GO ${connid} ${skip}\n`, (err) => resolve(!err)));
  }

  /** OPEN: after the host's answer ends (its shutdown write on the data
   *  connection), the relay lets upstream bytes flow to the client while the
   *  host still reads client bytes for its peek. */
  open(connid: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(`OPEN ${connid}\n`, (err) => resolve(!err)));
  }

  /** V1: this data connection stays with the host for good (plain HTTP), so
   *  the relay stops keeping a copy and never holds the client back. */
  v1(connid: string): void {
    if (!this.closed) this.socket.write(`V1 ${connid}\n`);
  }

  drop(connid: string): void {
    this.dials.get(connid)?.(125);
    this.dials.delete(connid);
    if (!this.closed) this.socket.write(`DROP ${connid}\n`);
  }
}

/** A v2 data connection: which relay control it belongs to and its id. */
export interface FastLink {
  ctrl: RelayControl;
  connid: string;
}

/**
 * Dials the first address that answers through the relay. Resolves with
 * undefined on success, or the last errno.
 */
export async function dialViaRelay(link: FastLink, addresses: string[], port: number): Promise<number | undefined> {
  let last = 113; // EHOSTUNREACH
  for (const a of addresses) {
    const errno = await link.ctrl.dial(link.connid, a, port);
    if (errno === 0) return undefined;
    last = errno;
  }
  return last;
}

/** Hands a decided, dialled connection to the relay: GO, then end the data
 *  connection. Client bytes that still reach us were also kept by the relay
 *  (it sends everything past `skip` upstream), so they are discarded here,
 *  not treated as an error that would reset the client. */
export async function handOver(link: FastLink, socket: Socket, skip: number): Promise<void> {
  if (!(await link.ctrl.go(link.connid, skip))) return void socket.destroy();
  socket.removeAllListeners('data');
  socket.on('data', () => {});
  socket.resume();
  // The relay shuts its side down on GO; ending ours lets the socket close.
  if (!socket.writableEnded) socket.end();
}

export const ECONNREFUSED = 111;
