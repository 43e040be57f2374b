// The launcher's network data path, end to end: a real sandbox (own netns),
// the relay on 127.0.0.1/::1 inside it, a real Unix-socket server in this
// process standing in for the host proxy (docs/relay-protocol.md), inbound
// --publish, and `cordon-launcher connect` against a SOCKS5 server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { createHash } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { LAUNCHER, BASE_MOUNTS, tempDir, run, have } from '../helpers.mjs';

const PY = '/usr/bin/python3';
// The launcher binary as the sandbox sees it (the test tree may live under
// /tmp, which is a fresh tmpfs inside).
const INNER_LAUNCHER = '/tmp/cordon-launcher';

/** Buffered reads on a socket: exact byte counts, lines, and the rest. */
function reader(sock) {
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake = null;
  const onData = (d) => { buf = Buffer.concat([buf, d]); wake?.(); };
  const onEnd = () => { ended = true; wake?.(); };
  sock.on('data', onData);
  sock.on('end', onEnd);
  const more = () => new Promise((r) => { wake = () => { wake = null; r(); }; });
  return {
    async take(n) {
      while (buf.length < n) {
        if (ended) throw new Error(`end of input after ${buf.length} of ${n} bytes`);
        await more();
      }
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    },
    async line() {
      for (;;) {
        const i = buf.indexOf(10);
        if (i >= 0) {
          const out = buf.subarray(0, i).toString('latin1');
          buf = buf.subarray(i + 1);
          return out;
        }
        if (ended) throw new Error('end of input before a line');
        await more();
      }
    },
    /** Stops buffering; returns what was read but not taken. */
    detach() {
      sock.off('data', onData);
      sock.off('end', onEnd);
      return { early: buf, ended };
    },
    async rest() {
      while (!ended) await more();
      const out = buf;
      buf = Buffer.alloc(0);
      return out;
    },
  };
}

/** A Unix-socket "host proxy" in DIR; `handle(sock, rd, preamble)` per
 *  connection. It speaks protocol v1 only: the relay's v2 control connection
 *  (`CORDON2 <token> ctrl <relay>`) is recorded in `ctrls` and closed, which
 *  tells the relay to use v1 for every connection. */
async function hostProxy(dir, handle) {
  const path = join(dir, 'relay.sock');
  const preambles = [];
  const ctrls = [];
  const errors = [];
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const rd = reader(sock);
    rd.line()
      .then((p) => {
        if (/^CORDON2 \S+ ctrl [0-9a-f]{16}$/.test(p)) return void (ctrls.push(p), sock.destroy());
        preambles.push(p);
        return handle(sock, rd, p);
      })
      .catch((e) => { errors.push(e); sock.destroy(); });
  });
  await new Promise((r) => server.listen(path, r));
  return { path, preambles, ctrls, errors, close: () => new Promise((r) => server.close(r)) };
}

function relayArgs(sock, token, ports, extra = []) {
  const args = ['run', ...BASE_MOUNTS, '--relay-socket', sock];
  if (token) args.push('--relay-token', token);
  for (const p of ports) args.push('--relay', String(p));
  return [...args, ...extra];
}

// Inside: connect (first instruction: the relay must already listen), send
// N random bytes while reading, half-close, read to the end. The host echoes
// and, after the client's end, appends the sha256 of what it received.
const BULK = `
import socket, hashlib, os, sys, threading
fam, host, n = socket.AF_INET6 if sys.argv[1] == '6' else socket.AF_INET, sys.argv[2], int(sys.argv[3])
s = socket.socket(fam); s.connect((host, 3128))
data = os.urandom(n)
def send():
    s.sendall(data); s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
got = bytearray()
while True:
    b = s.recv(1 << 20)
    if not b: break
    got += b
t.join()
sent = hashlib.sha256(data).hexdigest()
echo_ok = hashlib.sha256(got[:n]).hexdigest() == sent
print(sent, len(got), echo_ok, bytes(got[n:]).decode())
`;

test('relay: preamble, 50 MB both ways intact, client half-close still gets the reply', async () => {
  const { dir, cleanup } = tempDir();
  let received = 0;
  let receivedHash = '';
  const proxy = await hostProxy(dir, (sock, rd) => new Promise((resolve) => {
    const h = createHash('sha256');
    const { early, ended } = rd.detach();
    const finish = () => { receivedHash = h.digest('hex'); sock.end(receivedHash); resolve(); };
    const onData = (d) => {
      received += d.length;
      h.update(d);
      if (!sock.write(d)) { sock.pause(); sock.once('drain', () => sock.resume()); }
    };
    if (early.length) onData(early);
    if (ended) return finish();
    sock.on('data', onData);
    sock.on('end', finish);
  }));
  try {
    const n = 50 * 1024 * 1024;
    const r = await run(LAUNCHER, relayArgs(proxy.path, 'tok-3f9a', [3128], ['--', PY, '-c', BULK, '4', '127.0.0.1', String(n)]));
    assert.equal(r.code, 0, r.stderr);
    const [sent, len, echoOk, trailer] = r.stdout.trim().split(' ');
    assert.deepEqual(proxy.errors, []);
    assert.deepEqual(proxy.preambles, ['CORDON1 tok-3f9a 3128']);
    assert.equal(received, n, 'host got every byte');
    assert.equal(receivedHash, sent, 'host got the bytes unchanged');
    assert.equal(Number(len), n + 64, 'sandbox got the echo and the trailer');
    assert.equal(echoOk, 'True', 'echo unchanged');
    assert.equal(trailer, sent, 'reply after the half-close arrived');
  } finally {
    await proxy.close();
    cleanup();
  }
});

// Connects to each HOST PORT given, half-closes, prints what came back.
const PROBE = `
import socket, sys
for host, port in zip(sys.argv[1::2], sys.argv[2::2]):
    s = socket.create_connection((host, int(port)))
    s.shutdown(socket.SHUT_WR)
    got = b''
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            got += b
    except ConnectionResetError:
        got += b'<reset>'
    print(host, port, got.decode() or '<closed>')
`;

test('relay: ::1 and 127.0.0.1, several ports, no token, ready before the command runs', async () => {
  const { dir, cleanup } = tempDir();
  // The host answers with the preamble it got, after the client's end.
  const proxy = await hostProxy(dir, async (sock, rd, pre) => {
    await rd.rest();
    sock.end(pre);
  });
  try {
    // Three fresh sandboxes: each connects in its first instruction.
    for (let i = 0; i < 3; i++) {
      const r = await run(LAUNCHER, relayArgs(proxy.path, null, [3128, 1080], ['--', PY, '-c', PROBE, '::1', '3128', '127.0.0.1', '1080', 'localhost', '3128']));
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[0], '::1 3128 CORDON1 - 3128');
      assert.equal(lines[1], '127.0.0.1 1080 CORDON1 - 1080');
      assert.equal(lines[2], 'localhost 3128 CORDON1 - 3128');
    }
    assert.deepEqual(proxy.errors, []);
  } finally {
    await proxy.close();
    cleanup();
  }
});

test('relay: an absent host proxy closes the client, the command carries on', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = await run(LAUNCHER, relayArgs(join(dir, 'nobody.sock'), 't', [3128], ['--', PY, '-c', PROBE, '127.0.0.1', '3128']));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^127\.0\.0\.1 3128 (<closed>|<reset>)$/);
  } finally {
    cleanup();
  }
});

test('relay: --publish makes a server inside reachable through the host socket (0600)', async () => {
  const { dir, cleanup } = tempDir();
  const hostSock = join(dir, 'pub.sock');
  const server = `
import socket
l = socket.socket(); l.bind(('127.0.0.1', 8080)); l.listen(4)
print('ready', flush=True)
for _ in range(2):
    c, _ = l.accept(); data = b''
    while True:
        b = c.recv(65536)
        if not b: break
        data += b
    c.sendall(b'pong:' + data); c.close()
`;
  const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--publish', hostSock, '8080', '--', PY, '-c', server], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.on('close', (code) => r(code)));
  try {
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
      child.on('close', () => reject(new Error(`sandbox ended early: ${stderr}`)));
    });
    const st = statSync(hostSock);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    const ask = (msg) => new Promise((resolve, reject) => {
      const c = connect(hostSock);
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('end', () => resolve(got));
      c.on('error', reject);
      c.end(msg);
    });
    assert.equal(await ask('ping'), 'pong:ping');
    assert.equal(await ask('x'.repeat(300000)), 'pong:' + 'x'.repeat(300000));
    assert.equal(await exited, 0, stderr);
  } finally {
    child.kill('SIGKILL');
    cleanup();
  }
});

test('relay: --publish delivers a reply still in flight when the server inside exits', async () => {
  const { dir, cleanup } = tempDir();
  const hostSock = join(dir, 'pub.sock');
  // The server fills every buffer between itself and the host client (which
  // does not read yet), says how much it sent, closes and exits: the rest of
  // the reply is then only inside the relay, which must still deliver it.
  const server = `
import socket, sys
l = socket.socket(); l.bind(('127.0.0.1', 8080)); l.listen(1)
print('ready', flush=True)
c, _ = l.accept()
while c.recv(65536): pass
c.setblocking(False)
sent = 0
chunk = b'y' * 65536
while True:
    try:
        sent += c.send(chunk)
    except BlockingIOError:
        break
c.setblocking(True); c.close()
print('sent', sent, flush=True)
`;
  const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--publish', hostSock, '8080', '--', PY, '-c', server], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.on('close', (code) => r(code)));
  // One reader of stdout: a listener per wait would append every chunk once
  // per listener and garble the text the later waits match against.
  const checks = new Set();
  child.stdout.on('data', (d) => { stdout += d; for (const c of checks) c(); });
  const saw = (re) => new Promise((resolve, reject) => {
    const check = () => { const m = stdout.match(re); if (m) { checks.delete(check); resolve(m); } };
    checks.add(check);
    child.on('close', () => reject(new Error(`sandbox ended early: ${stdout} ${stderr}`)));
    check();
  });
  try {
    await saw(/ready/);
    const c = connect(hostSock);
    c.pause();
    let got = 0;
    const ended = new Promise((resolve, reject) => {
      c.on('data', (d) => (got += d.length));
      c.on('end', resolve);
      c.on('error', reject);
    });
    c.end('go');
    const sent = Number((await saw(/sent (\d+)\n/))[1]);
    assert.ok(sent > 0);
    c.resume();
    await ended;
    assert.equal(got, sent);
    assert.equal(await exited, 0, stderr);
  } finally {
    child.kill('SIGKILL');
    cleanup();
  }
});

/** A SOCKS5 server behind the relay socket: allows everything but denied.test. */
async function socksProxy(dir, seen) {
  return hostProxy(dir, async (sock, rd) => {
    assert.deepEqual([...await rd.take(3)], [5, 1, 0]);
    sock.write(Buffer.from([5, 0]));
    const head = await rd.take(4);
    let host;
    if (head[3] === 3) host = (await rd.take((await rd.take(1))[0])).toString();
    else if (head[3] === 1) host = [...await rd.take(4)].join('.');
    else host = `[${(await rd.take(16)).toString('hex')}]`;
    const port = (await rd.take(2)).readUInt16BE(0);
    seen.push(`${host}:${port}`);
    if (host === 'denied.test') return void sock.end(Buffer.from([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]));
    sock.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 22]));
    sock.write(`hello ${host}:${port}\n`);
    // Answers only after the client's end: connect must half-close, not close.
    const rest = await rd.rest();
    sock.end(rest.toString().toUpperCase());
  });
}

test('connect: SOCKS5 through the relay, allowed and blocked', async () => {
  const { dir, cleanup } = tempDir();
  const seen = [];
  const proxy = await socksProxy(dir, seen);
  const connectIn = (host) => run(LAUNCHER, relayArgs(proxy.path, 'tk', [1080], ['--ro-bind', LAUNCHER, INNER_LAUNCHER, '--', INNER_LAUNCHER, 'connect', host, '22']), { input: 'ping\nsecond line\n' });
  try {
    const ok = await connectIn('allowed.test');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'hello allowed.test:22\nPING\nSECOND LINE\n');
    assert.equal(ok.stderr, '');
    const ip = await connectIn('10.9.8.7');
    assert.equal(ip.stdout, 'hello 10.9.8.7:22\nPING\nSECOND LINE\n');
    const no = await connectIn('denied.test');
    assert.equal(no.code, 1);
    assert.equal(no.stdout, '');
    assert.equal(no.stderr, 'cordon-launcher: connect: denied.test:22: blocked by the sandbox network policy\n');
    assert.deepEqual(seen, ['allowed.test:22', '10.9.8.7:22', 'denied.test:22']);
    assert.ok(proxy.preambles.every((p) => p === 'CORDON1 tk 1080'), proxy.preambles.join());
    assert.deepEqual(proxy.errors, []);
  } finally {
    await proxy.close();
    cleanup();
  }
});

// K connections open at once, each sending random bytes while reading its
// echo. Unprivileged, this also outruns the user's pipe budget, so the
// relay's copy fallback carries part of the load.
const MANY = `
import socket, sys, threading, os
K, SZ = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(('127.0.0.1', 3128)) for _ in range(K)]
ok = [False] * K
def one(i):
    s = socks[i]; data = os.urandom(SZ)
    def w(): s.sendall(data); s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=w); t.start()
    got = bytearray()
    while True:
        b = s.recv(65536)
        if not b: break
        got += b
    t.join(); ok[i] = bytes(got) == data
ts = [threading.Thread(target=one, args=(i,)) for i in range(K)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(ok), 'of', K)
`;

test('relay: 200 concurrent connections, each echoed intact', async () => {
  const { dir, cleanup } = tempDir();
  const proxy = await hostProxy(dir, (sock, rd) => {
    const { early, ended } = rd.detach();
    if (early.length) sock.write(early);
    if (ended) return void sock.end();
    sock.pipe(sock);
  });
  try {
    const r = await run(LAUNCHER, relayArgs(proxy.path, 't', [3128], ['--', PY, '-c', MANY, '200', '100000']));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '200 of 200');
    assert.equal(proxy.preambles.length, 200);
    assert.deepEqual(proxy.errors, []);
  } finally {
    await proxy.close();
    cleanup();
  }
});

test('relay: a listener that cannot be set up stops the run before the command (exit 125, one line)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const taken = join(dir, 'taken');
    writeFileSync(taken, '');
    const r = await run(LAUNCHER, ['run', ...BASE_MOUNTS, '--publish', taken, '8080', '--', '/bin/echo', 'command ran']);
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^cordon-launcher: relay: --publish .*taken: .+\n$/);
    const t = await run(LAUNCHER, relayArgs(join(dir, 's'), 'two words', [3128], ['--', '/bin/echo', 'command ran']));
    assert.equal(t.code, 125);
    assert.equal(t.stdout, '');
    assert.match(t.stderr, /^cordon-launcher: relay: --relay-token: .+\n$/);
  } finally {
    cleanup();
  }
});

test('connect: a real ssh client uses it as ProxyCommand and reaches the server through the relay', async (t) => {
  if (!have('ssh')) return t.skip('ssh client not installed');
  const { dir, cleanup } = tempDir();
  const seen = [];
  let clientBanner = '';
  // SOCKS5 for allowed.test:22, then the server side of the SSH banner exchange.
  const proxy = await hostProxy(dir, async (sock, rd) => {
    await rd.take(3);
    sock.write(Buffer.from([5, 0]));
    const head = await rd.take(5);
    seen.push(`${(await rd.take(head[4])).toString()}:${(await rd.take(2)).readUInt16BE(0)}`);
    sock.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 22]));
    sock.write('SSH-2.0-cordonfake\r\n');
    clientBanner = (await rd.line()).trim();
    sock.end();
  });
  try {
    const r = await run(LAUNCHER, relayArgs(proxy.path, 'tk', [1080], [
      '--ro-bind', LAUNCHER, INNER_LAUNCHER, '--',
      'ssh', '-v', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', `ProxyCommand=${INNER_LAUNCHER} connect %h %p`, 'git@allowed.test', 'true']));
    assert.deepEqual(seen, ['allowed.test:22']);
    assert.match(r.stderr, /remote software version cordonfake/);
    assert.match(clientBanner, /^SSH-2\.0-OpenSSH/);
    assert.deepEqual(proxy.preambles, ['CORDON1 tk 1080']);
  } finally {
    await proxy.close();
    cleanup();
  }
});
