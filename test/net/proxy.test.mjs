// The session's relay socket, HTTP and SOCKS5 proxies, with real origins on
// loopback and a fake DNS table (allowed.test -> 127.0.0.1), spoken to with
// the relay preamble exactly as the launcher's relay does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { existsSync, statSync } from 'node:fs';
import { startNetwork } from '../../dist/net/session.js';
import { tempDir } from '../helpers.mjs';
import { fakeDns, httpOrigin, echoOrigin, httpsOrigin, testCert, relayConnect, exchange, socksGreeting, socksConnect, listen } from './net-helpers.mjs';

let tmp, dns, session, token, origin, echo, tlsOrigin, debugLines;

before(async () => {
  tmp = tempDir('cordon-net-');
  dns = fakeDns({
    'allowed.test': [['127.0.0.1']],
    'sub.allowed.test': [['127.0.0.1']],
    'rebind.allowed.test': [['127.0.0.1'], ['169.254.169.254'], ['10.0.0.1'], ['fd00:ec2::254']],
    'evil.test': [['127.0.0.1']],
  });
  origin = await httpOrigin();
  echo = await echoOrigin();
  tlsOrigin = await httpsOrigin(tmp.dir);
  debugLines = [];
  session = await startNetwork({
    network: { allowedDomains: ['allowed.test', '*.allowed.test', 'localhost:' + echo.port], deniedDomains: ['blocked.allowed.test'], deniedDomainReasons: { 'blocked.allowed.test': 'use allowed.test' } },
    resolver: dns.resolver,
    allowLoopbackResolution: true,
    debug: (l) => debugLines.push(l),
  });
  token = session.registerCommand('cmd-1', undefined, { command: 'curl something' });
});

after(async () => {
  await session?.close();
  await origin?.close();
  await echo?.close();
  await tlsOrigin?.close();
  tmp?.cleanup();
});

const connectReq = (authority, extra = '') => `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${extra}\r\n`;
const headEnd = (b) => b.includes('\r\n\r\n');

test('session dir is private and the relay socket exists', () => {
  assert.equal(statSync(session.dir).mode & 0o777, 0o700);
  assert.ok(statSync(session.relaySocket).isSocket());
});

test('CONNECT allowed: 200, bytes flow, half-close propagates', async () => {
  const s = await relayConnect(session.relaySocket, token, 3128);
  let got = '';
  const done = new Promise((r) => s.on('end', r));
  s.on('data', (d) => {
    got += d;
    if (got.startsWith('HTTP/1.1 200') && got.includes('\r\n\r\n') && !s.sentPayload) {
      s.sentPayload = true;
      s.write('hello ');
      s.end('tunnel');
    }
  });
  s.write(connectReq(`allowed.test:${echo.port}`));
  await done;
  s.destroy();
  assert.match(got, /^HTTP\/1.1 200 /);
  assert.ok(got.endsWith('HELLO TUNNEL'), got);
});

test('CONNECT denied: 403 blocked-by-allowlist, violation recorded with command id, no DNS query', async () => {
  const before = session.violations.getTotalCount();
  const name = 'abcdefghij.exfil.test';
  const out = (await exchange(session.relaySocket, token, 3128, connectReq(`${name}:443`))).toString();
  assert.match(out, /^HTTP\/1.1 403 /);
  assert.match(out, /X-Proxy-Error: blocked-by-allowlist/i);
  assert.ok(out.endsWith('Connection blocked by network allowlist'), out);
  assert.ok(!dns.log.includes(name), 'X4: no DNS lookup for a denied name');
  assert.equal(session.violations.getTotalCount(), before + 1);
  const v = session.violations.getViolations(1)[0];
  assert.equal(v.commandId, 'cmd-1');
  assert.equal(v.host, name);
  assert.equal(v.port, 443);
  assert.match(v.line, /deny network-outbound abcdefghij\.exfil\.test:443 \(host is not on the allow list\)/);
  assert.equal(session.violations.getViolationsForCommand('cmd-1').at(-1), v);
  assert.equal(session.violations.getViolationsForCommand('curl something').at(-1), v);
  assert.ok(debugLines.some((l) => l.includes(name)));
  const r = (await exchange(session.relaySocket, token, 3128, connectReq('blocked.allowed.test:443'))).toString();
  assert.match(r, /^HTTP\/1.1 403 use allowed\.test\r\n/, 'srt: a configured reason is the status phrase');
  assert.match(session.violations.getViolations(1)[0].line, /\(use allowed\.test\)/);
});

test('X5/X12/X13: literal spellings, loopback, bad ports, the proxy itself', async () => {
  for (const a of ['127.0.0.1:' + echo.port, '127.1:80', '2130706433:443', '0x7f000001:443', '0:443', '[::1]:443', '[::ffff:127.0.0.1]:443', 'localhost.:443', '127.0.0.1.nip.io:443', '169.254.169.254:80', 'localhost:3128', 'allowed.test.evil.test:443', '127.0.0.1:3128']) {
    const out = (await exchange(session.relaySocket, token, 3128, connectReq(a))).toString();
    assert.match(out, /^HTTP\/1.1 403 /, a);
  }
  for (const a of ['allowed.test:0', 'allowed.test:65536', 'allowed.test', '[fe80::1%25lo]:443', 'allowed.test%00.evil:443', 'user@allowed.test:443', ':443']) {
    const out = (await exchange(session.relaySocket, token, 3128, connectReq(a))).toString();
    assert.match(out, /^HTTP\/1.1 (400|403) /, a);
  }
});

test('X6: an allowed name resolving to loopback/metadata/private is refused when loopback resolution is not granted', async () => {
  const strictSession = await startNetwork({
    network: { allowedDomains: ['*.allowed.test'], deniedDomains: [], deniedResolvedAddresses: ['10.0.0.0/8', 'fd00::/8'] },
    resolver: dns.resolver,
  });
  try {
    const t = strictSession.registerCommand('x6');
    for (let i = 0; i < 4; i++) {
      const out = (await exchange(strictSession.relaySocket, t, 3128, connectReq(`rebind.allowed.test:${echo.port}`))).toString();
      assert.match(out, /^HTTP\/1.1 403 /, `answer ${i}`);
      const s = (await exchange(strictSession.relaySocket, t, 1080, Buffer.concat([socksGreeting(), socksConnect('rebind.allowed.test', echo.port)]), { until: (b) => b.length >= 12 }));
      assert.equal(s[3], 0x02, `socks answer ${i}`);
    }
    assert.ok(strictSession.violations.getViolations().every((v) => /resolved to/.test(v.reason)));
    assert.equal(echo.connections >= 0, true);
  } finally {
    await strictSession.close();
  }
});

test('plain HTTP: routed by the request-target, Host rewritten, Proxy-Authorization stripped; pipelined request decided independently (X7)', async () => {
  const n = origin.seen.length;
  const req1 = `GET http://allowed.test:${origin.port}/one?x=1 HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nX-Sandbox-Id: other\r\n\r\n`;
  const req2 = `GET http://evil.test:${origin.port}/two HTTP/1.1\r\nHost: evil.test\r\n\r\n`;
  const out = (await exchange(session.relaySocket, token, 3128, req1 + req2, { until: (b) => b.includes('Connection blocked by network allowlist') })).toString();
  assert.match(out, /^HTTP\/1.1 200 /);
  assert.match(out, /HTTP\/1.1 403 Forbidden[\s\S]*X-Proxy-Error: blocked-by-allowlist/i);
  const seen = origin.seen.slice(n);
  assert.equal(seen.length, 1, 'only the allowed request reached the origin');
  assert.equal(seen[0].url, '/one?x=1');
  assert.equal(seen[0].headers.host, `allowed.test:${origin.port}`);
  assert.equal(seen[0].headers['proxy-authorization'], undefined);
  assert.ok(!dns.log.includes('evil.test'));
});

test('plain HTTP: POST body forwarded; origin-form and https:// refused with 400; dial failure 502', async () => {
  const body = 'x'.repeat(100000);
  const out = (await exchange(session.relaySocket, token, 3128, `POST http://allowed.test:${origin.port}/p HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)).toString();
  assert.match(out, /^HTTP\/1.1 200 /);
  assert.equal(JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, '')).body.length, body.length);
  const o2 = (await exchange(session.relaySocket, token, 3128, 'GET /x HTTP/1.1\r\nHost: allowed.test\r\n\r\n', { until: headEnd })).toString();
  assert.match(o2, /^HTTP\/1.1 400 /);
  const o3 = (await exchange(session.relaySocket, token, 3128, 'GET https://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n', { until: headEnd })).toString();
  assert.match(o3, /^HTTP\/1.1 400 /);
  const dead = net.createServer();
  const deadPort = await listen(dead);
  await new Promise((r) => dead.close(r));
  const o4 = (await exchange(session.relaySocket, token, 3128, connectReq(`allowed.test:${deadPort}`))).toString();
  assert.match(o4, /^HTTP\/1.1 502 /);
  const o5 = (await exchange(session.relaySocket, token, 3128, 'garbage\r\n\r\n')).toString();
  assert.match(o5, /^HTTP\/1.1 400 /);
});

test('X15: unknown, unregistered or malformed tokens are closed without an answer', async () => {
  for (const [t, port] of [['nope', 3128], ['-', 1080]]) {
    const out = await exchange(session.relaySocket, t, port, connectReq(`allowed.test:${echo.port}`));
    assert.equal(out.length, 0);
  }
  const t2 = session.registerCommand('short-lived');
  session.unregisterCommand(t2);
  assert.equal((await exchange(session.relaySocket, t2, 3128, connectReq(`allowed.test:${echo.port}`))).length, 0);
  for (const pre of ['CORDON2 x 3128\n', `CORDON1 ${token} 99999\n`, 'x'.repeat(300)]) {
    const s = net.connect(session.relaySocket);
    const out = await new Promise((r) => { let b = ''; s.on('data', (d) => (b += d)); s.on('close', () => r(b)); s.on('error', () => r(b)); s.write(pre + connectReq(`allowed.test:${echo.port}`)); });
    assert.equal(out, '', pre.slice(0, 20));
  }
});

test('SOCKS5: CONNECT by name (no-auth and user/pass), half-close; denied 0x02; BIND/UDP 0x07; SOCKS4 refused; refused port 0x05', async () => {
  const s = await relayConnect(session.relaySocket, token, 1080);
  let got = Buffer.alloc(0);
  const ended = new Promise((r) => s.on('end', r));
  s.on('data', (d) => (got = Buffer.concat([got, d])));
  s.write(Buffer.from([5, 1, 2]));
  s.write(Buffer.from([1, 4, ...Buffer.from('user'), 4, ...Buffer.from('pass')]));
  s.write(socksConnect('allowed.test', echo.port));
  await new Promise((r) => setTimeout(r, 50));
  s.end('socks data');
  await ended;
  s.destroy();
  assert.deepEqual([...got.subarray(0, 2)], [5, 2]);
  assert.deepEqual([...got.subarray(2, 4)], [1, 0]);
  assert.equal(got[5], 0x00);
  assert.equal(got.subarray(14).toString(), 'SOCKS DATA');

  const reply = async (req) => (await exchange(session.relaySocket, token, 1080, Buffer.concat([socksGreeting(), req]), { until: (b) => b.length >= 12 }));
  assert.equal((await reply(socksConnect('evil.test', 443)))[3], 0x02);
  assert.equal((await reply(socksConnect('127.0.0.1', echo.port)))[3], 0x02);
  const v6loop = Buffer.alloc(16); v6loop[15] = 1;
  assert.equal((await reply(socksConnect(v6loop, echo.port, { atyp: 4 })))[3], 0x02);
  const mapped = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
  assert.equal((await reply(socksConnect(mapped, echo.port, { atyp: 4 })))[3], 0x02);
  assert.equal((await reply(socksConnect('allowed.test\0.evil', 443)))[3], 0x02);
  assert.equal((await reply(socksConnect('allowed.test', echo.port, { cmd: 2 })))[3], 0x07);
  assert.equal((await reply(socksConnect('8.8.8.8', 53, { cmd: 3 })))[3], 0x07);
  const dead = net.createServer();
  const deadPort = await listen(dead);
  await new Promise((r) => dead.close(r));
  assert.equal((await reply(socksConnect('allowed.test', deadPort)))[3], 0x05);
  const s4 = await exchange(session.relaySocket, token, 1080, Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
  assert.ok(s4.length === 0 || s4[1] === 0x5b, 'SOCKS4 refused');
  const noMethod = await exchange(session.relaySocket, token, 1080, Buffer.from([5, 1, 0x80]));
  assert.deepEqual([...noMethod], [5, 0xff]);
});

test('X8: a ClientHello naming another host than CONNECT is cut; matching SNI works end to end', async () => {
  const { certPath } = testCert(tmp.dir);
  const viaTunnel = async (connectHost, servername) => {
    const s = await relayConnect(session.relaySocket, token, 3128);
    s.write(connectReq(`${connectHost}:${tlsOrigin.port}`));
    await new Promise((r) => { let b = ''; const on = (d) => { b += d; if (b.includes('\r\n\r\n')) { s.removeListener('data', on); r(); } }; s.on('data', on); });
    return new Promise((resolve) => {
      const t = tls.connect({ socket: s, servername, ca: testCert(tmp.dir).cert }, () => {
        t.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
      });
      let out = '';
      t.on('data', (d) => (out += d));
      t.on('end', () => { resolve({ ok: out.includes('tls ok'), out }); t.destroy(); });
      t.on('close', () => resolve({ ok: out.includes('tls ok'), out }));
      t.on('error', () => resolve({ ok: false, out }));
    });
  };
  assert.ok(certPath);
  const good = await viaTunnel('allowed.test', 'allowed.test');
  assert.ok(good.ok, good.out);
  assert.match(good.out, /tls ok allowed\.test/);
  const before = session.violations.getTotalCount();
  const bad = await viaTunnel('allowed.test', 'evil.test');
  assert.equal(bad.ok, false);
  assert.equal(session.violations.getTotalCount(), before + 1);
  assert.match(session.violations.getViolations(1)[0].reason, /TLS server name/);
  assert.ok(!tlsOrigin.seen.some((s) => s.sni === 'evil.test'));
});

test('host loopback ports: only the listed one is forwarded', async () => {
  const s = await relayConnect(session.relaySocket, token, echo.port);
  const out = await new Promise((r) => { let b = ''; s.on('data', (d) => (b += d)); s.on('end', () => r(b)); s.end('loop'); });
  s.destroy();
  assert.equal(out, 'LOOP');
  const before = session.violations.getTotalCount();
  const other = await exchange(session.relaySocket, token, origin.port, `GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(other.length, 0);
  assert.equal(session.violations.getTotalCount(), before + 1);
});

test('per-command lists, ask callback and updateConfig apply to the next connection', async () => {
  const asked = [];
  const s2 = await startNetwork({
    network: { allowedDomains: [], deniedDomains: [] },
    resolver: dns.resolver,
    allowLoopbackResolution: true,
    ask: async ({ host, port }) => (asked.push(`${host}:${port}`), host === 'sub.allowed.test'),
  });
  try {
    const a = s2.registerCommand('a', { allowedDomains: ['allowed.test'] });
    const b = s2.registerCommand('b');
    const c = (t, h) => exchange(s2.relaySocket, t, 3128, connectReq(`${h}:${echo.port}`), { until: headEnd }).then(String);
    assert.match(await c(a, 'allowed.test'), /^HTTP\/1.1 200 /);
    assert.match(await c(b, 'allowed.test'), /^HTTP\/1.1 403 /);
    assert.match(await c(b, 'sub.allowed.test'), /^HTTP\/1.1 200 /);
    assert.deepEqual(asked, ['allowed.test:' + echo.port, 'sub.allowed.test:' + echo.port]);
    s2.setCommandLists(b, { allowedDomains: ['allowed.test'] });
    assert.match(await c(b, 'allowed.test'), /^HTTP\/1.1 200 /);
    s2.updateConfig({ allowedDomains: [], deniedDomains: ['allowed.test'] });
    assert.match(await c(a, 'allowed.test'), /^HTTP\/1.1 403 /);
    assert.equal(s2.violations.getViolationsForCommand('a').length, 1);
    assert.throws(() => s2.registerCommand('bad', { allowedDomains: ['*.com'] }), /\*\.com/);
  } finally {
    await s2.close();
  }
  assert.ok(!existsSync(s2.dir), 'close removes the session dir');
});

test('publish: host 127.0.0.1:PORT reaches the launcher-side Unix socket', async () => {
  const probe = net.createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  const pub = await session.publish(port);
  assert.ok(pub.hostSocket.startsWith(session.dir + '/'));
  // Play the launcher: listen on the host socket and echo.
  const inner = net.createServer({ allowHalfOpen: true }, (c) => { let b = ''; c.on('data', (d) => (b += d)); c.on('end', () => c.end(`inner:${b}`)); });
  await new Promise((r) => inner.listen(pub.hostSocket, r));
  const out = await new Promise((r) => { const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => c.end('ping')); let b = ''; c.on('data', (d) => (b += d)); c.on('end', () => { c.destroy(); r(b); }); });
  assert.equal(out, 'inner:ping');
  await pub.close();
  await new Promise((r) => inner.close(r));
  await assert.rejects(new Promise((res, rej) => { const c = net.connect({ port, host: '127.0.0.1' }, () => { c.destroy(); res(); }); c.on('error', rej); }));
});

test('proxyEnv: srt variables pointing at the in-sandbox relays', () => {
  const env = session.proxyEnv();
  assert.equal(env.HTTP_PROXY, 'http://localhost:3128');
  assert.equal(env.https_proxy, 'http://localhost:3128');
  assert.equal(env.FTP_PROXY, 'socks5h://localhost:1080');
  assert.equal(env.NODE_USE_ENV_PROXY, '1');
  assert.equal(env.NO_PROXY, 'localhost,127.0.0.1,::1');
  assert.match(env.GIT_SSH_COMMAND, /ProxyCommand='\/tmp\/\.cordon\/cordon-launcher connect %h %p/);
  assert.ok(!JSON.stringify(env).includes(token), 'the token never enters the sandbox');
});

/** Plays the launcher relay's v2 side: a control connection and data
 *  connections naming it. Lines the host sends on the control connection
 *  are collected. */
async function fakeRelayV2(relaySocket, tok, relay = 'a1b2c3d4') {
  const ctrl = net.connect(relaySocket);
  await new Promise((r) => ctrl.once('connect', r));
  ctrl.setEncoding('latin1');
  const lines = [];
  let buf = '';
  const waiters = [];
  ctrl.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) !== -1) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      for (const w of [...waiters]) w();
    }
  });
  const closed = new Promise((r) => ctrl.on('close', r));
  ctrl.write(`CORDON2 ${tok} ctrl ${relay}\n`);
  const nextLine = (re) => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${re} line; got ${JSON.stringify(lines)}`)), 3000);
    const check = () => {
      const i = lines.findIndex((l) => re.test(l));
      if (i === -1) return;
      clearTimeout(t);
      waiters.splice(waiters.indexOf(check), 1);
      resolve(lines.splice(i, 1)[0]);
    };
    waiters.push(check);
    check();
  });
  let connid = 0;
  const data = async (port) => {
    const id = ++connid;
    const s = net.connect({ path: relaySocket, allowHalfOpen: true });
    await new Promise((r) => s.once('connect', r));
    s.write(`CORDON2 ${tok} ${port} ${relay} ${id}\n`);
    let got = Buffer.alloc(0);
    const ended = new Promise((r) => { s.on('end', r); s.on('close', r); });
    s.on('data', (d) => (got = Buffer.concat([got, d])));
    return { id, s, ended, got: () => got };
  };
  return { ctrl, lines, nextLine, data, closed, send: (l) => ctrl.write(l + '\n') };
}

test('relay v2: the host decides and pins, the relay dials and carries the bytes (GO with the exact skip)', async () => {
  const r = await fakeRelayV2(session.relaySocket, token);
  assert.equal(await r.nextLine(/^OK$/), 'OK');
  // CONNECT: DIAL names the checked address, 200 after DIALED 0, GO skips the header.
  const head = `CONNECT allowed.test:${echo.port} HTTP/1.1\r\nHost: allowed.test:${echo.port}\r\nUser-Agent: x\r\n\r\n`;
  const d = await r.data(3128);
  d.s.write(head);
  assert.equal(await r.nextLine(/^DIAL /), `DIAL ${d.id} 127.0.0.1 ${echo.port}`);
  r.send(`DIALED ${d.id} 0`);
  // OPEN before the peek: a server that speaks first is not held back by it.
  assert.equal(await r.nextLine(/^OPEN /), `OPEN ${d.id}`);
  await d.ended;
  const hello = Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 0, 0]); // a TLS record without server_name
  d.s.write(hello);
  assert.equal(await r.nextLine(/^GO /), `GO ${d.id} ${Buffer.byteLength(head)}`);
  assert.equal(d.got().toString(), 'HTTP/1.1 200 Connection Established\r\n\r\n');

  // Denied and rebinding: answered by the host, no DIAL.
  const n = r.lines.length;
  const d2 = await r.data(3128);
  d2.s.write(connectReq('evil.test:443'));
  await d2.ended;
  assert.match(d2.got().toString(), /^HTTP\/1.1 403 /);
  // SNI mismatch: DROP and closed, no GO.
  const d3 = await r.data(3128);
  d3.s.write(connectReq(`allowed.test:${echo.port}`));
  assert.equal(await r.nextLine(/^DIAL /), `DIAL ${d3.id} 127.0.0.1 ${echo.port}`);
  r.send(`DIALED ${d3.id} 0`);
  await new Promise((res) => setTimeout(res, 20));
  tls.connect({ socket: d3.s, servername: 'evil.test', rejectUnauthorized: false }).on('error', () => {});
  assert.equal(await r.nextLine(/^DROP /), `DROP ${d3.id}`);
  await d3.ended;
  assert.match(session.violations.getViolations(1)[0].reason, /TLS server name/);
  // Dial failure -> 502.
  const d4 = await r.data(3128);
  d4.s.write(connectReq(`allowed.test:${echo.port}`));
  await r.nextLine(new RegExp(`^DIAL ${d4.id} `));
  r.send(`DIALED ${d4.id} 111`);
  await d4.ended;
  assert.match(d4.got().toString(), /^HTTP\/1.1 502 /);
  // SOCKS5: GO skips greeting + request; payload sent early stays for upstream.
  const d5 = await r.data(1080);
  const req = Buffer.concat([socksGreeting(), socksConnect('allowed.test', echo.port)]);
  d5.s.write(Buffer.concat([req, Buffer.from('early')]));
  assert.equal(await r.nextLine(/^DIAL /), `DIAL ${d5.id} 127.0.0.1 ${echo.port}`);
  r.send(`DIALED ${d5.id} 0`);
  assert.equal(await r.nextLine(/^GO /), `GO ${d5.id} ${req.length}`);
  await d5.ended;
  assert.equal(d5.got()[3], 0x00);
  // Host loopback port: DIAL 127.0.0.1 and GO 0; another port is refused.
  const d6 = await r.data(echo.port);
  assert.equal(await r.nextLine(/^DIAL /), `DIAL ${d6.id} 127.0.0.1 ${echo.port}`);
  r.send(`DIALED ${d6.id} 0`);
  assert.equal(await r.nextLine(/^GO /), `GO ${d6.id} 0`);
  const d7 = await r.data(origin.port);
  await d7.ended;
  // Plain HTTP stays in Node even on a v2 data connection.
  const d8 = await r.data(3128);
  d8.s.write(`GET http://allowed.test:${origin.port}/v2 HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n`);
  await d8.ended;
  assert.match(d8.got().toString(), /"url":"\/v2"/);
  assert.equal(await r.nextLine(/^V1 /), `V1 ${d8.id}`, 'the relay is told it stays v1');
  assert.ok(!r.lines.slice(n).some((l) => /^(DIAL|GO) (2|7|8) /.test(l)), JSON.stringify(r.lines));
  r.ctrl.destroy();
});

test('relay v2: control connections need a known token; disableFastPath refuses them', async () => {
  const bad = net.connect(session.relaySocket);
  const out = await new Promise((res) => { let b = ''; bad.on('data', (d) => (b += d)); bad.on('close', () => res(b)); bad.write('CORDON2 nope ctrl ab12\n'); });
  assert.equal(out, '');
  const s2 = await startNetwork({ network: { allowedDomains: ['allowed.test'], deniedDomains: [] }, resolver: dns.resolver, allowLoopbackResolution: true, disableFastPath: true });
  try {
    const t = s2.registerCommand('nofast');
    const c = net.connect(s2.relaySocket);
    const got = await new Promise((res) => { let b = ''; c.on('data', (d) => (b += d)); c.on('close', () => res(b)); c.write(`CORDON2 ${t} ctrl ab12\n`); });
    assert.equal(got, '');
    // A v2 data connection naming a relay without a control connection is served by Node.
    const d = net.connect({ path: s2.relaySocket, allowHalfOpen: true });
    const res = await new Promise((res) => { let b = ''; d.on('data', (x) => (b += x)); d.on('end', () => { res(b); d.destroy(); }); d.write(`CORDON2 ${t} 3128 ab12 1\n` + connectReq(`allowed.test:${echo.port}`)); setTimeout(() => d.end('v1 data'), 50); });
    assert.match(res, /^HTTP\/1.1 200 [\s\S]*V1 DATA$/);
  } finally {
    await s2.close();
  }
});
