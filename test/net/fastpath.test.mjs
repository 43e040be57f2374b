// Relay protocol v2 end to end: a real sandbox (cordon-launcher with its
// relay and egress helper) talks to the real session proxies; allowed
// CONNECT / SOCKS5 / forwarded-port connections are dialled by the egress
// helper and spliced by the relay. Each origin checks who holds the other end
// of every connection it accepts: with the fast path it is never this
// process (where the session's Node proxies run), with v1 it always is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { startNetwork } from '../../dist/net/session.js';
import { LAUNCHER, BASE_MOUNTS, run, tempDir } from '../helpers.mjs';
import { fakeDns, httpOrigin, httpsOrigin, testCert, listen, inNetSandbox, kv } from './net-helpers.mjs';

const MB = 1 << 20;
const BULK = 24 * MB;

/** Whether this process holds the client end of an accepted TCP connection
 *  (looked up by port pair in /proc/net/tcp*, then among our own fds). */
function heldByThisProcess(sock) {
  const hex = (p) => ':' + p.toString(16).toUpperCase().padStart(4, '0');
  const local = hex(sock.remotePort);
  const remote = hex(sock.localPort);
  let inode;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length > 9 && c[1].endsWith(local) && c[2].endsWith(remote)) inode = c[9];
    }
  }
  assert.ok(inode, `no /proc/net/tcp entry for the client end of port ${sock.remotePort}`);
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`) return true;
    } catch { /* closed meanwhile */ }
  }
  return false;
}

/** Deterministic bytes, so a reordered or corrupted stream shows. */
function pattern(len, seed) {
  const b = Buffer.allocUnsafe(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}
const sha = (b) => createHash('sha256').update(b).digest('hex');

/** Origin: reads until the client half-closes, then answers with BULK
 *  bytes (seeded by the connection number). Records per connection the
 *  hash of what it got and whether this process held the client end. */
async function bulkOrigin() {
  const conns = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const rec = { viaNode: heldByThisProcess(s), got: createHash('sha256'), n: 0, done: false };
    conns.push(rec);
    s.on('data', (d) => { rec.got.update(d); rec.n += d.length; });
    s.on('end', () => {
      rec.sha = rec.got.digest('hex');
      const reply = pattern(BULK, conns.indexOf(rec) + 1);
      rec.sent = sha(reply);
      s.end(reply);
    });
    s.on('error', () => {});
  });
  const port = await listen(server);
  return { port, conns, close: () => new Promise((r) => { server.close(() => r()); }) };
}

/** Origin that speaks first (like ssh or SMTP), then echoes upper-cased. */
async function bannerOrigin() {
  const conns = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    conns.push({ viaNode: heldByThisProcess(s) });
    s.write('SSH-2.0-origin\r\n');
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => s.end(Buffer.concat(chunks).toString().toUpperCase()));
    s.on('error', () => {});
  });
  const port = await listen(server);
  return { port, conns, close: () => new Promise((r) => server.close(() => r())) };
}

// Inside the sandbox: open a tunnel (CONNECT, SOCKS5 or a forwarded port),
// send BULK random bytes while reading, half-close, read to the end; print
// the hashes. `mode host port`.
const CLIENT = `
import socket, hashlib, os, sys, threading, struct
mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def read_head(s):
    b = b''
    while b'\\r\\n\\r\\n' not in b:
        c = s.recv(1)
        if not c: break
        b += c
    return b.decode('latin1')
if mode == 'connect':
    s = socket.create_connection(('127.0.0.1', 3128))
    s.sendall(('CONNECT %s:%d HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n' % (host, port, host, port)).encode())
    head = read_head(s)
    print('STATUS=' + head.split('\\r\\n')[0])
    if ' 200 ' not in head: sys.exit(0)
elif mode == 'socks':
    s = socket.create_connection(('127.0.0.1', 1080))
    s.sendall(b'\\x05\\x01\\x00')
    assert s.recv(2) == b'\\x05\\x00'
    s.sendall(b'\\x05\\x01\\x00\\x03' + bytes([len(host)]) + host.encode() + struct.pack('>H', port))
    rep = b''
    while len(rep) < 10:
        c = s.recv(10 - len(rep))
        if not c: break
        rep += c
    print('REP=%d' % (rep[1] if len(rep) > 1 else -1))
    if len(rep) < 10 or rep[1] != 0: sys.exit(0)
else:
    s = socket.create_connection(('127.0.0.1', port))
if mode == 'banner':
    pass
data = os.urandom(n)
def send():
    s.sendall(data); s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
h = hashlib.sha256(); got = 0
while True:
    b = s.recv(1 << 20)
    if not b: break
    h.update(b); got += len(b)
t.join()
print('SENT=' + hashlib.sha256(data).hexdigest())
print('GOT=%s %d' % (h.hexdigest(), got))
`;

// A server-first protocol through CONNECT: the banner must arrive although
// the proxy is still waiting for the client's first bytes (SNI check).
const BANNER_CLIENT = `
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', 3128))
s.sendall(('CONNECT allowed.test:%d HTTP/1.1\\r\\n\\r\\n' % port).encode())
b = b''
while b.count(b'\\r\\n') < 3:
    c = s.recv(1)
    if not c: break
    b += c
print('HEAD=' + repr(b))
s.sendall(b'hello after banner'); s.shutdown(socket.SHUT_WR)
r = b''
while True:
    c = s.recv(65536)
    if not c: break
    r += c
print('REPLY=' + r.decode())
`;

// TLS through CONNECT with a chosen server name (the SNI check runs on the
// ClientHello before the relay takes over).
const TLS_CLIENT = `
import socket, ssl, sys
port, name = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(('127.0.0.1', 3128))
s.sendall(('CONNECT allowed.test:%d HTTP/1.1\\r\\n\\r\\n' % port).encode())
b = b''
while b'\\r\\n\\r\\n' not in b:
    c = s.recv(1)
    if not c: break
    b += c
ctx = ssl.create_default_context(cafile='/tmp/ca.pem')
ctx.check_hostname = False
try:
    t = ctx.wrap_socket(s, server_hostname=name)
    t.sendall(b'GET / HTTP/1.1\\r\\nHost: allowed.test\\r\\nConnection: close\\r\\n\\r\\n')
    r = b''
    while True:
        c = t.recv(65536)
        if not c: break
        r += c
    print('TLS=' + r.decode().split('\\r\\n\\r\\n', 1)[-1].strip())
except (ssl.SSLError, OSError) as e:
    print('TLS=failed ' + type(e).__name__)
`;

// Plain HTTP through the proxy on one keep-alive connection: a 1 MiB POST,
// then 300 requests (well over the relay's 64 KiB negotiation copy).
const PLAIN_CLIENT = `
import http.client, json, sys
port = int(sys.argv[1])
c = http.client.HTTPConnection('127.0.0.1', 3128, timeout=20)
c.request('POST', 'http://allowed.test:%d/upload' % port, body=b'x' * int(sys.argv[2]))
r = c.getresponse()
print('POST=%d %d' % (r.status, len(json.loads(r.read())['body'])))
ok = 0
for i in range(300):
    c.request('GET', 'http://allowed.test:%d/k%d' % (port, i), headers={'X-Pad': 'p' * 300})
    r = c.getresponse()
    if json.loads(r.read())['url'] == '/k%d' % i: ok += 1
print('GETS=%d' % ok)
`;

let tmp, dns, certPem;

before(() => {
  tmp = tempDir('cordon-fastpath-');
  dns = fakeDns({ 'allowed.test': [['127.0.0.1']], 'evil.test': [['127.0.0.1']] });
  certPem = testCert(tmp.dir).cert.toString();
});
after(() => tmp?.cleanup());

async function withSession(opts, fn) {
  const debug = [];
  const session = await startNetwork({
    network: { allowedDomains: ['allowed.test', ...(opts.allow ?? [])], deniedDomains: [] },
    resolver: dns.resolver,
    allowLoopbackResolution: true,
    debug: (l) => debug.push(l),
    ...(opts.disableFastPath ? { disableFastPath: true } : {}),
  });
  try {
    const token = session.registerCommand('fastpath');
    return await fn({ session, token, debug });
  } finally {
    await session.close();
  }
}

async function sandbox(s, script, args, { ports = [3128, 1080], env = {} } = {}) {
  const quoted = args.map((a) => `'${a}'`).join(' ');
  const sh = `printf '%s' "$CERT" > /tmp/ca.pem; cat > /tmp/c.py <<'PY'\n${script}\nPY\nexec /usr/bin/python3 /tmp/c.py ${quoted}`;
  const r = await inNetSandbox(LAUNCHER, BASE_MOUNTS, run, s.session, s.token, sh, { ports, env: { CERT: certPem, ...env } });
  assert.equal(r.code, 0, r.stderr);
  return kv(r.stdout);
}

function checkBulk(o, origin, i) {
  const c = origin.conns[i];
  assert.ok(c, 'the origin saw the connection');
  assert.equal(c.n, BULK, 'every client byte reached the origin');
  assert.equal(o.SENT, c.sha, 'client -> origin bytes intact');
  assert.equal(o.GOT, `${c.sent} ${BULK}`, 'origin -> client bytes intact, after the client half-closed');
}

test('CONNECT and SOCKS5 through the fast path: 24 MB each way intact with half-close; bytes never pass through Node', async () => {
  const origin = await bulkOrigin();
  try {
    await withSession({}, async (s) => {
      const a = await sandbox(s, CLIENT, ['connect', 'allowed.test', origin.port, BULK]);
      assert.match(a.STATUS, /^HTTP\/1\.1 200 /);
      checkBulk(a, origin, 0);
      const b = await sandbox(s, CLIENT, ['socks', 'allowed.test', origin.port, BULK]);
      assert.equal(b.REP, '0');
      checkBulk(b, origin, 1);
      assert.deepEqual(origin.conns.map((c) => c.viaNode), [false, false], 'the egress helper dialled, the relay holds the socket');
    });
  } finally {
    await origin.close();
  }
});

test('forwarded host loopback port through the fast path', async () => {
  const origin = await bulkOrigin();
  try {
    await withSession({ allow: [`localhost:${origin.port}`] }, async (s) => {
      const o = await sandbox(s, CLIENT, ['port', '-', origin.port, BULK], { ports: [3128, 1080, origin.port] });
      checkBulk(o, origin, 0);
      assert.equal(origin.conns[0].viaNode, false);
    });
  } finally {
    await origin.close();
  }
});

test('the same through v1 when the session refuses the control connection (fallback)', async () => {
  const origin = await bulkOrigin();
  try {
    await withSession({ disableFastPath: true }, async (s) => {
      const a = await sandbox(s, CLIENT, ['connect', 'allowed.test', origin.port, 4 * MB]);
      assert.match(a.STATUS, /^HTTP\/1\.1 200 /);
      assert.equal(origin.conns[0].n, 4 * MB);
      assert.equal(a.SENT, origin.conns[0].sha);
      assert.equal(origin.conns[0].viaNode, true, 'v1: Node dialled');
    });
  } finally {
    await origin.close();
  }
});

test('denied host and refused port: 403 / SOCKS 0x02 and 502 / SOCKS 0x05; the egress helper never dials what the host did not approve', async () => {
  const origin = await bulkOrigin();
  const closed = net.createServer();
  const deadPort = await listen(closed);
  await new Promise((r) => closed.close(r));
  try {
    await withSession({ allow: [`allowed.test:${deadPort}`] }, async (s) => {
      const a = await sandbox(s, CLIENT, ['connect', 'evil.test', origin.port, 1]);
      assert.match(a.STATUS, /^HTTP\/1\.1 403 /);
      const b = await sandbox(s, CLIENT, ['socks', 'evil.test', origin.port, 1]);
      assert.equal(b.REP, '2');
      assert.equal(origin.conns.length, 0, 'nothing reached the origin');
      assert.ok(!dns.log.includes('evil.test'), 'a denied name is never resolved');
      const c = await sandbox(s, CLIENT, ['connect', 'allowed.test', deadPort, 1]);
      assert.match(c.STATUS, /^HTTP\/1\.1 502 /);
      const d = await sandbox(s, CLIENT, ['socks', 'allowed.test', deadPort, 1]);
      assert.equal(d.REP, '5');
      assert.ok(s.debug.some((l) => l.includes('deny network-outbound evil.test')), s.debug.join('\n'));
    });
  } finally {
    await origin.close();
  }
});

test('TLS through CONNECT: the SNI check still runs before the relay takes over', async () => {
  const tls = await httpsOrigin(tmp.dir);
  try {
    await withSession({}, async (s) => {
      const ok = await sandbox(s, TLS_CLIENT, [tls.port, 'allowed.test']);
      assert.equal(ok.TLS, 'tls ok allowed.test');
      const bad = await sandbox(s, TLS_CLIENT, [tls.port, 'evil.test']);
      assert.match(bad.TLS, /^failed /);
      assert.deepEqual(tls.seen.map((x) => x.sni), ['allowed.test'], 'the mismatched ClientHello never reached the origin');
      assert.ok(s.session.violations.getViolations().some((v) => v.host === 'evil.test'), 'recorded as a violation');
    });
  } finally {
    await tls.close();
  }
});

test('plain HTTP stays with Node on a v2 connection: 1 MiB POST and 300 keep-alive requests', async () => {
  const origin = await httpOrigin();
  try {
    await withSession({}, async (s) => {
      const o = await sandbox(s, PLAIN_CLIENT, [origin.port, 1 << 20]);
      assert.equal(o.POST, `200 ${1 << 20}`);
      assert.equal(o.GETS, '300');
      assert.equal(origin.seen.length, 301);
    });
  } finally {
    await origin.close();
  }
});

test('a server-first protocol through CONNECT gets its banner while the proxy waits for the client', async () => {
  const origin = await bannerOrigin();
  try {
    await withSession({}, async (s) => {
      const o = await sandbox(s, BANNER_CLIENT, [origin.port]);
      assert.match(o.HEAD, /200 Connection Established.*SSH-2\.0-origin/);
      assert.equal(o.REPLY, 'HELLO AFTER BANNER');
    });
  } finally {
    await origin.close();
  }
});

test('the egress helper lives outside the sandbox and goes when the launcher is killed', async () => {
  await withSession({}, async (s) => {
    const env = Object.entries({ PATH: '/usr/bin:/bin', ...s.session.proxyEnv() }).flatMap(([k, v]) => ['--setenv', k, v]);
    const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--unshare-net', '--relay-socket', s.session.relaySocket, '--relay-token', s.token,
      '--relay', '3128', '--relay', '1080', '--clearenv', ...env, '--', '/bin/sh', '-c', 'echo up; ls /proc | grep -c "^[0-9]"; exec sleep 60'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise((r) => child.stdout.on('data', (d) => { out += d; if (out.split('\n').length > 2) r(); }));
    // Inside: PID 1, sh, ls and grep; no relay or egress helper.
    assert.ok(Number(out.split('\n')[1]) <= 4, out);
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    assert.equal(kids.length, 3, `relay, egress helper, PID 1: ${kids}`);
    // Exactly one of them (the egress helper) is in the host's network
    // namespace. Helpers are non-dumpable: unprivileged, we cannot look.
    const host = readlinkSync('/proc/self/ns/net');
    const inHost = kids.map((k) => { try { return readlinkSync(`/proc/${k}/ns/net`) === host; } catch { return undefined; } });
    if (!inHost.includes(undefined)) {
      assert.equal(inHost.filter(Boolean).length, 1, String(inHost));
      const status = readFileSync(`/proc/${kids[inHost.indexOf(true)]}/status`, 'utf8');
      assert.match(status, /^Seccomp:\s+2$/m, 'the egress helper runs under the helper seccomp filter');
      assert.match(status, /^NoNewPrivs:\s+1$/m);
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    // PDEATHSIG: every helper dies with the launcher (wait for it, no fixed sleep).
    const guard = Date.now() + 10_000;
    for (;;) {
      const alive = kids.filter((k) => {
        try { return !/^\S+ \S+ Z/.test(readFileSync(`/proc/${k}/stat`, 'utf8').replace(/\(.*\)/, 'x')); } catch { return false; }
      });
      if (alive.length === 0) break;
      assert.ok(Date.now() < guard, `helpers outlived the launcher: ${alive}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});
