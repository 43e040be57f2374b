// Upstream faults through the session's real proxies (relay preamble, as the
// launcher's relay speaks it) and, for the fast path, through a real
// sandbox: the origin refuses, resets mid-transfer, stalls, half-closes; DNS
// fails or is slow. The client gets a prompt, correct answer (502 / SOCKS
// rep / reset), the proxy keeps serving other connections, and neither the
// proxy nor the origins are left holding connections.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync, readlinkSync } from 'node:fs';
import { startNetwork } from '../../dist/net/session.js';
import { tempDir, WHO, LAUNCHER, BASE_MOUNTS, run, have } from '../helpers.mjs';
import { relayConnect, exchange, socksConnect, listen, inNetSandbox } from '../net/net-helpers.mjs';
import { until } from './observe.mjs';

let tmp, session, token, fdBase;
const servers = {};
let releaseSlow;
const slowGate = new Promise((r) => (releaseSlow = r));
const fdCount = () => readdirSync('/proc/self/fd').length;

/** A TCP origin with a behaviour; tracks its open connections. */
async function origin(name, onConn) {
  const open = new Set();
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    open.add(c);
    c.on('close', () => open.delete(c));
    c.on('error', () => {});
    // The proxy's end (FIN) counts as letting go of the connection.
    c.on('end', () => setImmediate(() => c.destroy()));
    onConn(c);
  });
  const port = await listen(s);
  servers[name] = { server: s, port, open };
  return port;
}

before(async () => {
  tmp = tempDir('cordon-upstream-');
  // A port with nothing listening: bind, note, close.
  const probe = net.createServer();
  const refusedPort = await listen(probe);
  await new Promise((r) => probe.close(r));
  servers.refuse = { port: refusedPort, open: new Set() };
  await origin('ok', (c) => c.once('data', () => c.end('pong')));
  // Dies mid-transfer: HTTP headers promising 100 000 bytes (so a plain
  // HTTP client must not take the rest as complete), 20 000 sent, then gone.
  await origin('reset', (c) =>
    c.once('data', () => c.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(20000), () => c.resetAndDestroy())),
  );
  await origin('stall', () => {}); // accepts, never reads or answers
  // Answers and half-closes, keeps reading; reports what came after.
  await origin('half', (c) => {
    let after = '';
    c.once('data', () => {
      c.end('bye');
      c.on('data', (d) => (after += d));
      c.on('end', () => (servers.half.after = after));
    });
  });
  const table = { 'refuse.fault.test': 'refuse', 'ok.fault.test': 'ok', 'reset.fault.test': 'reset', 'stall.fault.test': 'stall', 'half.fault.test': 'half' };
  session = await startNetwork({
    network: { allowedDomains: ['*.fault.test'] },
    allowLoopbackResolution: true,
    tmpDir: tmp.dir,
    resolver: async (host) => {
      if (host === 'slow.fault.test') {
        await slowGate;
        return [{ address: '127.0.0.1', family: 4 }];
      }
      if (!table[host]) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return [{ address: '127.0.0.1', family: 4 }];
    },
  });
  token = session.registerCommand('faults', undefined, { command: 'faults' });
  fdBase = fdCount();
});

after(async () => {
  releaseSlow();
  await session?.close();
  for (const s of Object.values(servers)) s.server?.close();
  tmp?.cleanup();
});

const P = (n) => servers[n].port;
const connect = (host, port) => `CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`;
const socks = (host, port) => Buffer.concat([Buffer.from([5, 1, 0]), socksConnect(host, port)]);

test(`origin refuses: CONNECT 502, absolute-form 502, SOCKS rep 5 (${WHO})`, async () => {
  const c = (await exchange(session.relaySocket, token, 3128, connect('refuse.fault.test', P('refuse')))).toString('latin1');
  assert.match(c, /^HTTP\/1\.1 502 /);
  const g = (await exchange(session.relaySocket, token, 3128, `GET http://refuse.fault.test:${P('refuse')}/ HTTP/1.1\r\nHost: refuse.fault.test\r\n\r\n`)).toString('latin1');
  assert.match(g, /^HTTP\/1\.1 502 /);
  const s = await exchange(session.relaySocket, token, 1080, socks('refuse.fault.test', P('refuse')));
  // Greeting answer (5 0), then the reply: version 5, rep 5 (refused).
  assert.deepEqual([...s.subarray(0, 4)], [5, 0, 5, 5], `SOCKS bytes ${[...s]}`);
});

test(`DNS fails: CONNECT 502, SOCKS rep 4 (host unreachable) (${WHO})`, async () => {
  const c = (await exchange(session.relaySocket, token, 3128, connect('nx.fault.test', 443))).toString('latin1');
  assert.match(c, /^HTTP\/1\.1 502 /);
  const s = await exchange(session.relaySocket, token, 1080, socks('nx.fault.test', 443));
  assert.equal(s[3], 4, `SOCKS reply ${[...s]}`);
});

test(`origin dies mid-transfer: the client gets the bytes so far, then its connection ends (no truncated keep-alive left open) (${WHO})`, async () => {
  for (const [port, req] of [
    [3128, connect('reset.fault.test', P('reset')) + 'go'],
    [1080, Buffer.concat([socks('reset.fault.test', P('reset')), Buffer.from('go')])],
    [3128, `GET http://reset.fault.test:${P('reset')}/ HTTP/1.1\r\nHost: reset.fault.test\r\n\r\n`],
  ]) {
    const s = await relayConnect(session.relaySocket, token, port);
    const ended = new Promise((r) => {
      let n = 0;
      s.on('data', (d) => (n += d.length));
      // Tunnels pass the origin's end on (EOF); the plain-HTTP proxy must
      // close a connection whose response it cannot complete.
      s.on('end', () => r(n));
      s.on('close', () => r(n));
      s.on('error', () => {});
    });
    s.write(req);
    const n = await ended; // a hang here is the failure (test timeout)
    s.destroy();
    assert.ok(n > 0, `port ${port}: some answer arrived before the end`);
  }
  assert.ok(await until(() => servers.reset.open.size === 0, 3000), 'origin holds no connection');
});

test(`origin stalls: the tunnel stays open while other connections are served; closing the client frees the upstream (${WHO})`, async () => {
  const stalled = [];
  for (const [port, req] of [
    [3128, connect('stall.fault.test', P('stall'))],
    [1080, socks('stall.fault.test', P('stall'))],
  ]) {
    const s = await relayConnect(session.relaySocket, token, port);
    s.on('error', () => {});
    s.write(req);
    stalled.push(s);
  }
  assert.ok(await until(() => servers.stall.open.size === 2, 3000), `origin got the two stalled connections (${servers.stall.open.size})`);
  // Meanwhile the proxy serves others.
  const ok = (await exchange(session.relaySocket, token, 3128, connect('ok.fault.test', P('ok')) + 'ping', { until: (b) => b.toString().endsWith('pong') })).toString();
  assert.match(ok, /^HTTP\/1\.1 200 [\s\S]*pong$/);
  const sk = await exchange(session.relaySocket, token, 1080, Buffer.concat([socks('ok.fault.test', P('ok')), Buffer.from('ping')]), { until: (b) => b.toString('latin1').endsWith('pong') });
  assert.equal(sk[1], 0);
  for (const s of stalled) s.destroy();
  assert.ok(await until(() => servers.stall.open.size === 0, 3000), `upstream connections released (${servers.stall.open.size} open)`);
});

test(`plain HTTP to a stalled origin: a client that goes away frees the upstream (${WHO})`, { todo: 'known gap: the relay socket is half-open, so the HTTP server treats the client\'s FIN as a half-close and keeps the request (and its upstream) until the origin answers or closes' }, async () => {
  const s = await relayConnect(session.relaySocket, token, 3128);
  s.on('error', () => {});
  s.write(`GET http://stall.fault.test:${P('stall')}/ HTTP/1.1\r\nHost: stall.fault.test\r\n\r\n`);
  assert.ok(await until(() => servers.stall.open.size === 1, 3000), 'origin got the request');
  s.destroy();
  const freed = await until(() => servers.stall.open.size === 0, 3000);
  // Whatever the outcome, do not let the held connection skew the fd test.
  for (const c of servers.stall.open) c.destroy();
  assert.ok(freed, 'upstream released after the client left');
});

test(`origin half-closes: the client sees the end and can still send (CONNECT and SOCKS) (${WHO})`, async () => {
  for (const [port, req, skip] of [
    [3128, connect('half.fault.test', P('half')), (b) => b.indexOf('\r\n\r\n') + 4],
    [1080, socks('half.fault.test', P('half')), () => 12],
  ]) {
    servers.half.after = undefined;
    const s = await relayConnect(session.relaySocket, token, port);
    let buf = Buffer.alloc(0);
    let sent = false;
    const gotEnd = new Promise((r) => s.on('end', r));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const at = skip(buf);
      if (!sent && at > 3 && buf.length >= at) {
        sent = true;
        s.write('hello');
      }
    });
    s.write(req);
    await gotEnd;
    assert.ok(buf.toString('latin1').endsWith('bye'), `port ${port}: ${JSON.stringify(buf.toString('latin1'))}`);
    s.end('after-eof');
    assert.ok(await until(() => servers.half.after !== undefined, 3000), `port ${port}: origin saw the client's end`);
    assert.match(servers.half.after, /after-eof$/, `port ${port}: bytes sent after the origin's half-close arrived`);
    s.destroy();
  }
});

test(`slow DNS holds only its own connection; the rest are served; it completes when DNS answers (${WHO})`, async () => {
  const slow = exchange(session.relaySocket, token, 3128, connect('slow.fault.test', P('ok')) + 'ping', { until: (b) => b.toString().endsWith('pong'), timeoutMs: 20_000 });
  let slowDone = false;
  void slow.then(() => (slowDone = true));
  for (let i = 0; i < 5; i++) {
    const ok = (await exchange(session.relaySocket, token, 3128, connect('ok.fault.test', P('ok')) + 'ping', { until: (b) => b.toString().endsWith('pong') })).toString();
    assert.match(ok, /pong$/);
  }
  assert.equal(slowDone, false, 'the slow one is still waiting for DNS');
  releaseSlow();
  assert.match((await slow).toString(), /^HTTP\/1\.1 200 [\s\S]*pong$/);
});

test(`no descriptor is left in the host process after all of it (${WHO})`, async () => {
  const ok = await until(() => fdCount() <= fdBase + 2, 3000);
  const fds = () => readdirSync('/proc/self/fd').map((f) => { try { return readlinkSync(`/proc/self/fd/${f}`); } catch { return '-'; } });
  assert.ok(ok, `descriptors ${fdBase} -> ${fdCount()}: ${fds().join(' ')}; live relay conns ${session.stats?.() ?? '?'}`);
  for (const [n, s] of Object.entries(servers)) assert.equal(s.open.size, 0, `${n} origin holds ${s.open.size}`);
});

test(`through a real sandbox (relay v2 fast path): refused -> 502 / SOCKS error, reset -> curl fails promptly, the next request works (${WHO})`, async (t) => {
  if (!have('curl')) return t.skip('curl is not installed');
  const script = [
    `curl -s -o /dev/null -w 'c=%{http_connect}\\n' --max-time 10 -p -x http://127.0.0.1:3128 http://refuse.fault.test:${P('refuse')}/; echo rc1=$?`,
    `curl -s -o /dev/null --max-time 10 -x socks5h://127.0.0.1:1080 http://refuse.fault.test:${P('refuse')}/; echo rc2=$?`,
    `curl -s -o /dev/null -w 'n=%{http_connect}\\n' --max-time 10 -p -x http://127.0.0.1:3128 http://nx.fault.test:80/; echo rc3=$?`,
    `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | curl -s -o /dev/null --max-time 10 -p -x http://127.0.0.1:3128 telnet://reset.fault.test:${P('reset')}; echo rc4=$?`,
    `printf ping | curl -s --max-time 10 -p -x http://127.0.0.1:3128 telnet://ok.fault.test:${P('ok')}; echo; echo rc5=$?`,
  ].join('; ');
  const r = await inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token, script, { env: { NO_PROXY: '', no_proxy: '' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /c=502\n/);
  assert.match(r.stdout, /rc1=56\n/);
  assert.match(r.stdout, /rc2=(7|97)\n/, 'SOCKS: curl reports the proxy refusal');
  assert.match(r.stdout, /n=502\n/);
  assert.doesNotMatch(r.stdout, /rc4=28\n/, 'the reset is not turned into a hang (timeout)');
  assert.match(r.stdout, /pong\nrc5=0\n/, r.stdout);
});
