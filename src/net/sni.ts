// Peek at the first client bytes of a CONNECT tunnel and read the TLS
// ClientHello's server_name, so a tunnel opened for one allowed host cannot
// carry a TLS session for another name (catalog X8). Non-TLS streams (ssh
// through CONNECT) pass untouched.
import type { Socket } from 'node:net';
import { canonicalizeHost } from './host.js';

const MAX_RECORD = 16384 + 5;

/** The server_name of a ClientHello record, `null` for a TLS record without
 *  one (or one we could not read completely), undefined for non-TLS. */
export function parseSni(buf: Buffer): string | null | undefined {
  if (buf.length < 1 || buf[0] !== 0x16) return undefined;
  if (buf.length < 5) return null;
  const recLen = buf.readUInt16BE(3);
  const end = Math.min(buf.length, 5 + recLen);
  let p = 5;
  if (end < p + 4 || buf[p] !== 0x01) return null;
  p += 4; // handshake type + length
  p += 2 + 32; // client_version + random
  if (p + 1 > end) return null;
  p += 1 + buf[p]!; // session id
  if (p + 2 > end) return null;
  p += 2 + buf.readUInt16BE(p); // cipher suites
  if (p + 1 > end) return null;
  p += 1 + buf[p]!; // compression methods
  if (p + 2 > end) return null;
  const extEnd = Math.min(end, p + 2 + buf.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 2);
    p += 4;
    if (p + len > extEnd) return null;
    if (type === 0) {
      let q = p + 2;
      const listEnd = Math.min(p + len, p + 2 + buf.readUInt16BE(p));
      while (q + 3 <= listEnd) {
        const nameType = buf[q]!;
        const nameLen = buf.readUInt16BE(q + 1);
        q += 3;
        if (q + nameLen > listEnd) return null;
        if (nameType === 0) return buf.subarray(q, q + nameLen).toString('latin1');
        q += nameLen;
      }
      return null;
    }
    p += len;
  }
  return null;
}

export interface FirstBytes {
  /** Canonical SNI, or '' when the name is not a valid host; undefined when
   *  there is none (not TLS, or no server_name). */
  sni?: string;
  data: Buffer;
  ended: boolean;
}

/** Reads the client's first TLS record (or first chunk, if not TLS). The
 *  returned bytes have been consumed from the socket; the caller forwards
 *  them. The socket is left paused. */
export function checkSni(socket: Socket, head: Buffer): Promise<FirstBytes> {
  return new Promise((resolve) => {
    let buf = head;
    let done = false;
    const finish = (ended: boolean) => {
      if (done) return;
      done = true;
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.pause();
      const sni = parseSni(buf);
      resolve({ sni: typeof sni === 'string' ? (canonicalizeHost(sni) ?? '') : undefined, data: buf, ended });
    };
    const complete = () => {
      if (buf.length === 0) return false;
      if (buf[0] !== 0x16) return true;
      if (buf.length < 5) return false;
      return buf.length >= Math.min(MAX_RECORD, 5 + buf.readUInt16BE(3));
    };
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (complete()) finish(false);
    };
    const onEnd = () => finish(true);
    if (complete()) return finish(false);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.resume();
  });
}
