// The HTTP proxy: CONNECT tunnels and absolute-form plain HTTP. It never
// listens itself; the session hands it connections that arrived on the relay
// socket with a known token. Each request (also each pipelined one) is
// decided on its request-target alone; headers never decide anything.
import { createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Gate, PolicyDenied, splice, type ConnContext } from './gate.js';
import { formatHost } from './host.js';
import { validPort, type Decision } from './policy.js';
import { checkSni } from './sni.js';
import { dialViaRelay, handOver, type FastLink } from './fast.js';

const HEAD_MAX = 16 * 1024;

/** Reads one request head (through the blank line) without parsing it. */
function readHead(socket: Socket): Promise<{ head: Buffer; rest: Buffer } | undefined> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (v: { head: Buffer; rest: Buffer } | undefined) => {
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.pause();
      resolve(v);
    };
    const onEnd = () => done(undefined);
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      const i = buf.indexOf('\r\n\r\n');
      if (i !== -1) return done({ head: buf.subarray(0, i + 4), rest: buf.subarray(i + 4) });
      if (buf.length > HEAD_MAX) done(undefined);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.resume();
  });
}

const DENY_BODY = 'Connection blocked by network allowlist';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** `host:port` of a CONNECT request-target (IPv6 bracketed); port required. */
export function parseAuthority(target: string): { host: string; port: number } | undefined {
  let host: string;
  let portStr: string;
  if (target.startsWith('[')) {
    const close = target.indexOf(']');
    if (close === -1 || target[close + 1] !== ':') return undefined;
    host = target.slice(1, close);
    portStr = target.slice(close + 2);
  } else {
    const i = target.lastIndexOf(':');
    if (i <= 0 || target.indexOf(':') !== i) return undefined;
    host = target.slice(0, i);
    portStr = target.slice(i + 1);
  }
  if (!/^[0-9]{1,5}$/.test(portStr)) return undefined;
  const port = Number(portStr);
  return validPort(port) && host.length > 0 ? { host, port } : undefined;
}

/** Answers and closes: a client that never closes its side must not keep a
 *  refused connection open. */
function endThenClose(socket: Socket, data: string): void {
  socket.end(data, () => socket.destroy());
}

function reasonPhrase(reason: string): string {
  return reason.replace(/[^ -~]/g, '?').slice(0, 200) || 'Forbidden';
}

function rawResponse(status: number, phrase: string, body: string, extra = ''): string {
  return `HTTP/1.1 ${status} ${phrase}\r\nContent-Type: text/plain\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** srt shows a configured deniedDomainReasons entry to the client as the
 *  403's status phrase (what a CONNECT client prints). */
export function deniedResponse(d: Pick<Decision, 'reason'> & { configuredReason?: boolean }): string {
  return rawResponse(403, d.configuredReason ? reasonPhrase(d.reason) : 'Forbidden', DENY_BODY, `X-Proxy-Error: blocked-by-allowlist\r\nX-Proxy-Reason: ${reasonPhrase(d.reason)}\r\n`);
}

function stripHopByHop(raw: string[]): OutgoingHttpHeaders {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (k === 'connection' || k === 'proxy-connection') for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    const lk = k.toLowerCase();
    if (HOP_BY_HOP.has(lk) || named.has(lk) || lk === 'host') continue;
    const prev = out[k];
    out[k] = prev === undefined ? raw[i + 1]! : Array.isArray(prev) ? [...prev, raw[i + 1]!] : [prev, raw[i + 1]!];
  }
  return out;
}

export class HttpProxy {
  // No request timeout: a long upload through the proxy is legitimate.
  private readonly server = createServer({ requireHostHeader: false, requestTimeout: 0 });
  private readonly ctxs = new WeakMap<Socket, ConnContext>();

  constructor(private readonly gate: Gate) {
    this.server.on('request', (req, res) => void this.onRequest(req, res));
    this.server.on('connect', (req, socket, head) => void this.onConnect(req, socket as Socket, head));
    this.server.on('upgrade', (_req, socket: Socket) => {
      endThenClose(socket, rawResponse(501, 'Not Implemented', 'Upgrade through the plain-HTTP proxy is not supported; use CONNECT'));
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      socket.on('error', () => {});
      if (err.code !== 'ECONNRESET' && socket.writable) {
        endThenClose(socket, rawResponse(400, 'Bad Request', 'Bad Request'));
      } else socket.destroy();
    });
  }

  /** Takes over a connection whose relay preamble has been read. */
  handle(socket: Socket, ctx: ConnContext): void {
    this.ctxs.set(socket, ctx);
    this.server.emit('connection', socket);
    socket.resume();
  }

  /**
   * A relay v2 data connection. CONNECT is parsed here (the exact header
   * length is the GO skip) and, once decided and dialled by the relay, the
   * tunnel is handed to the relay; anything else is plain HTTP, which stays
   * in Node so every pipelined request is decided.
   */
  async handleFast(socket: Socket, ctx: ConnContext, link: FastLink): Promise<void> {
    socket.on('error', () => socket.destroy());
    const got = await readHead(socket);
    if (!got) return void socket.destroy();
    const text = got.head.toString('latin1');
    if (!text.startsWith('CONNECT ')) {
      link.ctrl.v1(link.connid);
      socket.unshift(Buffer.concat([got.head, got.rest]));
      return this.handle(socket, ctx);
    }
    const m = /^CONNECT ([^ \r\n]+) HTTP\/1\.[01]\r\n/.exec(text);
    const auth = m ? parseAuthority(m[1]!) : undefined;
    if (!auth) return void endThenClose(socket, rawResponse(400, 'Bad Request', 'Bad Request: CONNECT needs host:port'));
    const d = await this.gate.decide(auth.host, auth.port, ctx);
    if (!d.allow) return void endThenClose(socket, d.invalid ? rawResponse(400, 'Bad Request', 'Bad Request') : deniedResponse(d));
    let addrs: string[];
    try {
      addrs = await this.gate.addresses(d, ctx);
    } catch (e) {
      if (e instanceof PolicyDenied) return void endThenClose(socket, deniedResponse(e.decision));
      this.gate.debug(`CONNECT ${formatHost(d.host)}:${d.port}: ${(e as Error).message}`);
      return void endThenClose(socket, rawResponse(502, 'Bad Gateway', 'Bad Gateway'));
    }
    const errno = await dialViaRelay(link, addrs, d.port);
    if (errno !== undefined) {
      this.gate.debug(`CONNECT ${formatHost(d.host)}:${d.port}: relay dial failed (errno ${errno})`);
      return void endThenClose(socket, rawResponse(502, 'Bad Gateway', 'Bad Gateway'));
    }
    if (socket.destroyed) return void link.ctrl.drop(link.connid);
    // The answer ends here (OPEN, then our end of output), so a server that
    // speaks first reaches the client while we wait for its first bytes.
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (!(await link.ctrl.open(link.connid))) return void socket.destroy();
    socket.end();
    const first = await checkSni(socket, got.rest);
    if (first.sni !== undefined && first.sni !== d.host) {
      this.gate.record(first.sni || '(invalid name)', d.port, `TLS server name does not match CONNECT ${formatHost(d.host)}`, ctx);
      link.ctrl.drop(link.connid);
      return void socket.destroy();
    }
    await handOver(link, socket, got.head.length);
  }

  private async onConnect(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const ctx = this.ctxs.get(socket);
    if (!ctx) return void socket.destroy();
    const auth = parseAuthority(req.url ?? '');
    if (!auth) {
      this.gate.debug(`CONNECT ${JSON.stringify(req.url)}: malformed authority`);
      return void endThenClose(socket, rawResponse(400, 'Bad Request', 'Bad Request: CONNECT needs host:port'));
    }
    const d = await this.gate.decide(auth.host, auth.port, ctx);
    if (!d.allow) return void endThenClose(socket, d.invalid ? rawResponse(400, 'Bad Request', 'Bad Request') : deniedResponse(d));
    let up: Socket;
    try {
      up = await this.gate.dial(d, ctx);
    } catch (e) {
      if (e instanceof PolicyDenied) return void endThenClose(socket, deniedResponse(e.decision));
      this.gate.debug(`CONNECT ${formatHost(d.host)}:${d.port}: ${(e as Error).message}`);
      return void endThenClose(socket, rawResponse(502, 'Bad Gateway', 'Bad Gateway'));
    }
    if (socket.destroyed) return void up.destroy();
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    return this.tunnel(socket, up, head, d, ctx);
  }

  /** Node carries the tunnel (v1), with the SNI check on the first bytes. */
  private async tunnel(socket: Socket, up: Socket, head: Buffer, d: Decision, ctx: ConnContext): Promise<void> {
    // Server-first protocols must not wait for the peek below.
    splice(socket, up, { holdAtoB: true });
    // The ClientHello names the host TLS is for; a different name than the
    // CONNECT authority is a policy decision too (X8).
    const first = await checkSni(socket, head);
    if (first.sni !== undefined && first.sni !== d.host) {
      this.gate.record(first.sni || '(invalid name)', d.port, `TLS server name does not match CONNECT ${formatHost(d.host)}`, ctx);
      socket.destroy();
      up.destroy();
      return;
    }
    if (socket.destroyed || up.destroyed) return;
    if (first.data.length) up.write(first.data);
    if (first.ended) up.end();
    else socket.pipe(up);
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = this.ctxs.get(req.socket as Socket);
    if (!ctx) return void req.socket.destroy();
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      return this.plain(res, 400, 'Bad Request: the proxy needs an absolute http:// URL');
    }
    if (url.protocol !== 'http:') return this.plain(res, 400, 'Bad Request: only http:// URLs (use CONNECT for https)');
    const port = url.port ? Number(url.port) : 80;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const d = await this.gate.decide(host, port, ctx);
    if (!d.allow) {
      if (d.invalid) return this.plain(res, 400, 'Bad Request');
      return this.deny(res, d);
    }
    let up: Socket;
    try {
      up = await this.gate.dial(d, ctx);
    } catch (e) {
      if (e instanceof PolicyDenied) return this.deny(res, e.decision);
      this.gate.debug(`${req.method} ${formatHost(d.host)}:${d.port}: ${(e as Error).message}`);
      return this.plain(res, 502, 'Bad Gateway');
    }
    const headers = stripHopByHop(req.rawHeaders);
    // Routed by the request-target: the origin sees that authority as Host,
    // whatever Host header the client sent (X7).
    headers['Host'] = port === 80 ? formatHost(d.host) : `${formatHost(d.host)}:${port}`;
    const upReq = httpRequest({
      method: req.method,
      path: url.pathname + url.search,
      headers,
      createConnection: () => up,
    });
    upReq.on('response', (upRes) => {
      const out = stripHopByHop(upRes.rawHeaders);
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, out);
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    });
    upReq.on('error', (e) => {
      this.gate.debug(`${req.method} ${formatHost(d.host)}:${d.port}: ${e.message}`);
      if (!res.headersSent) this.plain(res, 502, 'Bad Gateway');
      else res.destroy();
    });
    res.on('close', () => up.destroy());
    req.pipe(upReq);
  }

  private deny(res: ServerResponse, d: Pick<Decision, 'reason'> & { configuredReason?: boolean }): void {
    res.writeHead(403, d.configuredReason ? reasonPhrase(d.reason) : 'Forbidden', {
      'Content-Type': 'text/plain',
      'X-Proxy-Error': 'blocked-by-allowlist',
      'X-Proxy-Reason': reasonPhrase(d.reason),
      'Content-Length': Buffer.byteLength(DENY_BODY),
    });
    res.end(DENY_BODY);
  }

  private plain(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  close(): void {
    this.server.close();
  }
}
