// End to end: real clients inside a real sandbox (cordon-launcher with its
// relays) reach origins on the host's loopback through this session's
// proxies. Names come from a fake DNS table on the host side
// (allowed.test -> 127.0.0.1); nothing leaves the machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { startNetwork } from '../../dist/net/session.js';
import { LAUNCHER, BASE_MOUNTS, run, tempDir, have } from '../helpers.mjs';
import { fakeDns, httpOrigin, httpsOrigin, testCert, listen, inNetSandbox, kv } from './net-helpers.mjs';

let tmp, dns, session, token, origin, tlsOrigin, gitServer, gitPort, certPem;
const PY = '/usr/bin/python3';

/** A dumb-HTTP git repository served by Node's http module. */
async function gitRepo(dir) {
  const g = (args, cwd) => {
    const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  };
  const work = join(dir, 'work');
  mkdirSync(work);
  g(['init', '-q', '-b', 'main'], work);
  writeFileSync(join(work, 'hello.txt'), 'hello from git\n');
  g(['add', '.'], work);
  g(['commit', '-q', '-m', 'first'], work);
  g(['clone', '-q', '--bare', work, join(dir, 'srv', 'repo.git')], dir);
  g(['update-server-info'], join(dir, 'srv', 'repo.git'));
  const root = join(dir, 'srv');
  const server = http.createServer((req, res) => {
    const p = normalize(join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    if (!p.startsWith(root + '/') || !existsSync(p) || !statSync(p).isFile()) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-length': statSync(p).size });
    createReadStream(p).pipe(res);
  });
  return { server, port: await listen(server) };
}

before(async () => {
  tmp = tempDir('cordon-net-e2e-');
  dns = fakeDns({ 'allowed.test': [['127.0.0.1']], 'sub.allowed.test': [['127.0.0.1']], 'git.allowed.test': [['127.0.0.1']] });
  origin = await httpOrigin();
  tlsOrigin = await httpsOrigin(tmp.dir);
  certPem = testCert(tmp.dir).cert.toString();
  if (have('git')) ({ server: gitServer, port: gitPort } = await gitRepo(tmp.dir));
  session = await startNetwork({
    network: { allowedDomains: ['allowed.test', '*.allowed.test'], deniedDomains: [] },
    resolver: dns.resolver,
    allowLoopbackResolution: true,
  });
  token = session.registerCommand('e2e');
});

after(async () => {
  await session?.close();
  await origin?.close();
  await tlsOrigin?.close();
  await new Promise((r) => (gitServer ? gitServer.close(r) : r()));
  tmp?.cleanup();
});

test('curl: HTTP via HTTP_PROXY, HTTPS via CONNECT, socks5h; denied host gets the 403', async (t) => {
  if (!have('curl')) return t.skip('curl not installed');
  const script = `
    printf '%s' "$CERT" > /tmp/ca.pem
    echo "HTTP=$(curl -sS http://allowed.test:${origin.port}/plain)"
    echo "HTTPS=$(curl -sS --cacert /tmp/ca.pem https://allowed.test:${tlsOrigin.port}/)"
    echo "SOCKS=$(curl -sS --proxy socks5h://127.0.0.1:1080 http://sub.allowed.test:${origin.port}/socks)"
    echo "DENY=$(curl -s -o /dev/null -w '%{http_code}' http://evil.test/)"
    echo "DENYTLS=$(curl -s -o /dev/null -w '%{http_connect}' https://evil.test/)"
  `;
  const r = await inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token, script, { env: { CERT: certPem } });
  assert.equal(r.code, 0, r.stderr);
  const o = kv(r.stdout);
  assert.ok(o.HTTP, r.stdout + r.stderr);
  assert.equal(JSON.parse(o.HTTP).host, `allowed.test:${origin.port}`);
  assert.equal(o.HTTPS, 'tls ok allowed.test');
  assert.ok(o.SOCKS, r.stdout + r.stderr);
  assert.equal(JSON.parse(o.SOCKS).url, '/socks');
  assert.equal(o.DENY, '403');
  assert.equal(o.DENYTLS, '403');
  assert.ok(session.violations.getViolationsForCommand('e2e').some((v) => v.host === 'evil.test' && v.port === 443));
});

test('python urllib and node use the proxy environment', async (t) => {
  if (!existsSync(PY)) return t.skip('python3 not installed');
  const py = `import urllib.request,sys; print("PY=" + urllib.request.urlopen("http://allowed.test:${origin.port}/py").read().decode())`;
  const node = `const http=require("http");const u=new URL(process.env.HTTP_PROXY);http.get({host:u.hostname,port:u.port,path:"http://allowed.test:${origin.port}/node"},r=>{let b="";r.on("data",d=>b+=d);r.on("end",()=>console.log("NODE="+b))})`;
  const r = await inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token, `${PY} -I -c '${py}'; ${process.execPath} -e '${node}'`);
  assert.equal(r.code, 0, r.stderr);
  const o = kv(r.stdout);
  assert.equal(JSON.parse(o.PY).url, '/py');
  assert.equal(JSON.parse(o.NODE).url, '/node');
});

test('git clone over HTTP through the proxy', async (t) => {
  if (!gitServer) return t.skip('git not installed');
  const r = await inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token,
    `GIT_CONFIG_NOSYSTEM=1 git clone -q http://git.allowed.test:${gitPort}/repo.git /tmp/r && echo "FILE=$(cat /tmp/r/hello.txt)"; git ls-remote http://evil.test/repo.git >/dev/null 2>&1; echo "EVIL=$?"`);
  assert.equal(r.code, 0, r.stderr);
  const o = kv(r.stdout);
  assert.equal(o.FILE, 'hello from git');
  assert.notEqual(o.EVIL, '0');
});

test('the relay socket, its directory and the token are not visible inside', async () => {
  const r = await inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token,
    `test -e '${session.relaySocket}'; echo "SOCK=$?"; test -e '${session.dir}'; echo "DIR=$?"; env`);
  const o = kv(r.stdout);
  assert.notEqual(o.SOCK, '0');
  assert.notEqual(o.DIR, '0');
  assert.ok(r.stdout.includes('HTTP_PROXY=http://localhost:3128'));
  assert.ok(!r.stdout.includes(token), 'the token is not in the environment');
});

test('the token is not readable from /proc inside the sandbox', async () => {
  const r = await inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token, `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done`);
  assert.ok(!r.stdout.includes(token));
});

test('server-speaks-first through CONNECT (the SNI peek must not hold the greeting back)', async (t) => {
  if (!existsSync(PY)) return t.skip('python3 not installed');
  const net = await import('node:net');
  const banner = net.createServer((s) => {
    s.write('220 banner\r\n');
    s.on('data', (d) => s.end(`echo ${d}`));
    s.on('error', () => {});
  });
  const port = await listen(banner);
  try {
    const py = [
      'import socket',
      's = socket.create_connection(("127.0.0.1", 3128))',
      `s.sendall(b"CONNECT allowed.test:${port} HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n")`,
      'buf = b""',
      'while b"220 banner" not in buf:',
      '    d = s.recv(4096)',
      '    if not d: break',
      '    buf += d',
      'print("HEAD=" + buf.split(b"\\r\\n")[0].decode())',
      'print("BANNER=" + str(b"220 banner" in buf))',
      's.sendall(b"hi")',
      'out = b""',
      'while True:',
      '    d = s.recv(4096)',
      '    if not d: break',
      '    out += d',
      'print("ECHO=" + out.decode())',
    ].join('\n');
    const r = await inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token, `${PY} -I -c '${py}'`);
    assert.equal(r.code, 0, r.stderr);
    const o = kv(r.stdout);
    assert.equal(o.HEAD, 'HTTP/1.1 200 Connection Established');
    assert.equal(o.BANNER, 'True');
    assert.equal(o.ECHO, 'echo hi');
  } finally {
    await new Promise((r) => banner.close(r));
  }
});

test('publish: a server inside the sandbox is reachable at host 127.0.0.1:PORT', async (t) => {
  if (!existsSync(PY)) return t.skip('python3 not installed');
  const net = await import('node:net');
  const probe = net.createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  const pub = await session.publish(port);
  try {
    const py = [
      'import socket',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(("127.0.0.1", ${port}))`,
      's.listen(1)',
      'print("LISTENING", flush=True)',
      'c, _ = s.accept()',
      'data = b""',
      'while True:',
      '    d = c.recv(4096)',
      '    if not d: break',
      '    data += d',
      'c.sendall(b"inside:" + data)',
      'c.close()',
    ].join('\n');
    const sandboxRun = inNetSandbox(LAUNCHER, BASE_MOUNTS, run, session, token, `${PY} -I -c '${py}'`, { extra: ['--publish', pub.hostSocket, String(port)] });
    // The sandbox's server starts after the launcher does; retry (bounded)
    // until the published port answers with the sandbox's reply.
    let reply = '';
    for (let i = 0; i < 300 && !reply; i++) {
      reply = await new Promise((resolve) => {
        const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => c.end('ping'));
        let b = '';
        c.on('data', (d) => (b += d));
        c.on('end', () => { c.destroy(); resolve(b); });
        c.on('error', () => resolve(''));
      });
      if (!reply) await new Promise((r) => setTimeout(r, 50));
    }
    const r = await sandboxRun;
    assert.equal(reply, 'inside:ping', `code ${r.code}: ${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    await pub.close();
  }
});
