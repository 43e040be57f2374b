// Shared fixtures for the network tests: local origins, a fake DNS table
// with a query log, a self-signed certificate, relay-preamble clients and a
// tiny TCP front that plays the launcher's relay for off-the-shelf clients.
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A fake resolver: table maps a name to a list of answer sets, used in
 *  turn per query (so a name can "rebind"). Every query is logged. */
export function fakeDns(table) {
  const log = [];
  const turn = new Map();
  const resolver = async (host) => {
    log.push(host);
    const sets = table[host];
    if (!sets) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    const i = turn.get(host) ?? 0;
    turn.set(host, i + 1);
    const set = sets[i % sets.length];
    return set.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { resolver, log };
}

/** Listen on 127.0.0.1:0; resolves with the port. */
export function listen(server, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(server.address().port));
  });
}

/** An HTTP origin that answers with what it saw; records every request. */
export async function httpOrigin() {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      const out = JSON.stringify({ url: req.url, host: req.headers.host, body });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  const port = await listen(server);
  return { port, seen, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) };
}

/** A TCP origin that records connections and echoes, upper-cased, after the
 *  client half-closes (so half-close propagation is visible). */
export async function echoOrigin() {
  let connections = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    connections++;
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => s.end(Buffer.concat(chunks).toString().toUpperCase()));
    s.on('error', () => {});
  });
  const port = await listen(server);
  return { port, get connections() { return connections; }, close: () => new Promise((r) => server.close(() => r())) };
}

let certCache;
/** A self-signed certificate for allowed.test (and evil.test), via openssl. */
export function testCert(dir) {
  if (certCache) return certCache;
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=allowed.test', '-addext', 'subjectAltName=DNS:allowed.test,DNS:evil.test,DNS:sub.allowed.test'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  certCache = { key: readFileSync(key), cert: readFileSync(cert), certPath: cert };
  return certCache;
}

export async function httpsOrigin(dir) {
  const { key, cert } = testCert(dir);
  const seen = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    seen.push({ url: req.url, host: req.headers.host, sni: req.socket.servername });
    res.end(`tls ok ${req.socket.servername ?? '-'}\n`);
  });
  const port = await listen(server);
  return { port, seen, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) };
}

/** Connects to the session's relay socket and writes the preamble. */
export function relayConnect(relaySocket, token, port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: relaySocket, allowHalfOpen: true }, () => {
      s.write(`CORDON1 ${token} ${port}\n`);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Sends raw bytes over a fresh relayed connection; resolves with all bytes
 *  the proxy sent until it closed (or until `until` matches). */
export async function exchange(relaySocket, token, port, data, { until, end = false, timeoutMs = 5000 } = {}) {
  const s = await relayConnect(relaySocket, token, port);
  return new Promise((resolve) => {
    let out = Buffer.alloc(0);
    const finish = () => {
      clearTimeout(t);
      s.destroy();
      resolve(out);
    };
    const t = setTimeout(finish, timeoutMs);
    s.on('data', (d) => {
      out = Buffer.concat([out, d]);
      if (until && until(out)) finish();
    });
    s.on('end', finish);
    s.on('close', finish);
    s.on('error', finish);
    if (data) s.write(data);
    if (end) s.end();
  });
}

/** What the launcher's relay does, on a TCP port, so curl/python/git can
 *  use the proxies unmodified: each accepted connection -> relay socket with
 *  the preamble for `port`. */
export async function tcpFront(relaySocket, token, port) {
  const conns = new Set();
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    const u = net.connect({ path: relaySocket, allowHalfOpen: true }, () => {
      u.write(`CORDON1 ${token} ${port}\n`);
      c.pipe(u);
      u.pipe(c);
    });
    const kill = () => { c.destroy(); u.destroy(); };
    c.on('error', kill);
    u.on('error', kill);
    u.on('close', () => c.destroy());
  });
  const p = await listen(server);
  return { port: p, close: () => new Promise((r) => { for (const c of conns) c.destroy(); server.close(() => r()); }) };
}

export function socksGreeting() {
  return Buffer.from([5, 1, 0]);
}

/** A SOCKS5 CONNECT request for a domain name, IPv4 (a.b.c.d) or IPv6 (16 bytes). */
export function socksConnect(host, port, { cmd = 1, atyp } = {}) {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  if (atyp === 1 || (atyp === undefined && net.isIPv4(host))) return Buffer.concat([Buffer.from([5, cmd, 0, 1, ...host.split('.').map(Number)]), p]);
  if (atyp === 4) return Buffer.concat([Buffer.from([5, cmd, 0, 4]), host, p]);
  const name = Buffer.from(host, 'latin1');
  return Buffer.concat([Buffer.from([5, cmd, 0, 3, name.length]), name, p]);
}

export function have(cmd) {
  return spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Runs `script` with /bin/sh in a real sandbox (cordon-launcher) whose
 *  relays lead to `session` with `token`, with the proxy environment set. */
export async function inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token, script, { env = {}, extra = [], ports = [3128, 1080] } = {}) {
  const all = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', ...session.proxyEnv(), ...env };
  const args = ['run', ...BASE_MOUNTS, '--unshare-net', '--relay-socket', session.relaySocket, '--relay-token', token,
    ...ports.flatMap((p) => ['--relay', String(p)]), '--clearenv', ...Object.entries(all).flatMap(([k, v]) => ['--setenv', k, v]), ...extra,
    '--', '/bin/sh', '-c', script];
  return run(LAUNCHER, args, { timeout: 30_000 });
}

/** `KEY=value` lines of a sandbox's stdout as an object. */
export function kv(stdout) {
  const o = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) o[line.slice(0, i)] = line.slice(i + 1);
  }
  return o;
}
