// Process hygiene as seen from inside (catalog P4, P5, P10, F16, S5, T1):
// no inherited descriptors, no capabilities, no_new_privs, seccomp active
// from the first instruction, setuid binaries inert, TIOCSTI on a real pty
// refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, constants } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { LAUNCHER, BASE_MOUNTS, inSandbox, tempDir, WHO } from '../helpers.mjs';
import { buildAttack, parseResults, ERRNO } from './attacks/build.mjs';

test('P10/S5: no capabilities, NoNewPrivs 1, Seccomp 2 in the command itself', () => {
  const r = inSandbox('grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status');
  assert.equal(r.code, 0, r.stderr);
  const f = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s+/)));
  for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) assert.equal(f[k], '0000000000000000', `${k} as ${WHO}`);
  assert.equal(f.CapBnd, '0000000000000000');
  assert.equal(f.NoNewPrivs, '1');
  assert.equal(f.Seccomp, '2');
  assert.ok(Number(f.Seccomp_filters) >= 1);
});

test('F16: setuid binaries do not raise privileges', () => {
  const r = inSandbox('/bin/mount -t tmpfs none /tmp 2>&1; echo rc=$?; id -u');
  assert.match(r.stdout, /rc=(1|32)\b/, r.stdout);
  const uid = r.stdout.trim().split('\n').at(-1);
  assert.equal(uid, String(process.getuid()));
});

test('P4: a directory and a file descriptor of the caller are not inherited', () => {
  const t = tempDir();
  const dfd = openSync(t.dir, constants.O_RDONLY | constants.O_DIRECTORY);
  const ffd = openSync(tmpdir(), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const stdio = ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', dfd, 'ignore', ffd];
    const r = spawnSync(LAUNCHER, ['run', ...BASE_MOUNTS, '--', '/bin/sh', '-c', 'ls /proc/self/fd; (cd /proc/self/fd/7 && echo ESCAPED) 2>/dev/null; true'], { stdio, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const fds = r.stdout.trim().split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
    assert.doesNotMatch(r.stdout, /ESCAPED/);
    assert.ok(!fds.includes(7) && !fds.includes(9), `inherited fds visible: ${fds}`);
  } finally {
    closeSync(dfd);
    closeSync(ffd);
    t.cleanup();
  }
});

test('P5: an inherited connected socket is not usable inside', async () => {
  let got = '';
  const server = net.createServer((c) => c.on('data', (d) => (got += d)));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const sock = net.connect(server.address().port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  try {
    const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--share-net', '--', '/usr/bin/python3', '-c',
      "import socket\ntry:\n  s=socket.socket(fileno=5); s.send(b'LEAK'); print('sent')\nexcept OSError as e: print('errno', e.errno)"],
    { stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', sock] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 0);
    assert.equal(out.trim(), `errno ${ERRNO.EBADF}`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got, '', 'the host server received data through the inherited socket');
  } finally {
    sock.destroy();
    server.close();
  }
});

test('T1/T2: TIOCSTI on a real controlling pty is refused (plain and with high bits)', (tt) => {
  // python's pty module gives the launcher a pty as stdin and controlling tty.
  const a = buildAttack();
  try {
    const inner = [LAUNCHER, 'run', ...BASE_MOUNTS, '--ro-bind', a.dir, a.dir, '--', a.bin, 'tty'];
    const outside = spawnSync('/usr/bin/python3', ['-c', `import pty,sys; pty.spawn(${JSON.stringify([a.bin, 'tty'])})`], { encoding: 'utf8', timeout: 20_000 });
    const o = parseResults(outside.stdout);
    if (o.get('ioctl_tiocsti') !== 0) return tt.skip(`TIOCSTI does not inject on this kernel even outside (errno ${o.get('ioctl_tiocsti')})`);
    const r = spawnSync('/usr/bin/python3', ['-c', `import pty,sys; pty.spawn(${JSON.stringify(inner)})`], { encoding: 'utf8', timeout: 20_000 });
    const got = parseResults(r.stdout);
    assert.equal(got.get('ioctl_tiocsti'), ERRNO.EPERM, r.stdout);
    assert.equal(got.get('ioctl_tiocsti_hi'), ERRNO.EPERM);
    assert.equal(got.get('ioctl_tioclinux'), ERRNO.EPERM);
  } finally {
    a.cleanup();
  }
});

test('F12/N2: /proc control files and max_user_namespaces cannot be written', () => {
  const r = inSandbox(`/usr/bin/python3 -c "
for p in ('/proc/sysrq-trigger', '/proc/sys/kernel/sysrq', '/proc/sys/user/max_user_namespaces'):
  try:
    open(p, 'w').write('100'); print(p, 'written')
  except OSError as e: print(p, 'errno', e.errno)"`);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3, r.stdout);
  for (const l of lines) assert.match(l, / errno (13|30|1|2)$/, `as ${WHO}: ${l}`);
});

test('N5: only sandbox processes are visible, so no host namespace can be joined', () => {
  const r = inSandbox('ls /proc | grep -E "^[0-9]+$"');
  assert.equal(r.code, 0, r.stderr);
  const pids = r.stdout.trim().split('\n').map(Number);
  assert.ok(!pids.includes(process.pid), 'the test runner is visible inside');
  assert.ok(pids.length <= 4, `unexpected processes: ${pids}`);
});

test('U4: host SysV shared memory and /dev/shm files are not visible', () => {
  const key = 0x5b00 + (process.pid % 0xff);
  const shm = `/dev/shm/cordon-canary-${process.pid}`;
  // The harness: a SysV segment (removed at the end) and a POSIX shm file.
  const mk = spawnSync('/usr/bin/python3', ['-c', `import ctypes,sys
l=ctypes.CDLL(None, use_errno=True)
i=l.shmget(${key}, 4096, 0o1600)
print(i if i >= 0 else -ctypes.get_errno())
open('${shm}','w').write('x')`], { encoding: 'utf8' });
  const id = Number(mk.stdout.trim());
  assert.ok(id >= 0, `shmget outside failed: ${mk.stdout} ${mk.stderr}`);
  try {
    const r = inSandbox(`/usr/bin/python3 -c "import ctypes
l=ctypes.CDLL(None, use_errno=True)
print('shmget', 0 if l.shmget(${key}, 0, 0) >= 0 else ctypes.get_errno())"; ls -A /dev/shm | grep -c cordon-canary`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], `shmget ${ERRNO.ENOENT}`, r.stdout + r.stderr);
    assert.equal(lines[1], '0', 'the host /dev/shm file is visible inside');
  } finally {
    spawnSync('/usr/bin/python3', ['-c', `import ctypes; ctypes.CDLL(None).shmctl(${id}, 0, None)`]);
    spawnSync('rm', ['-f', shm]);
  }
});

test('P2: the memory of PID 1 (launcher code) cannot be opened or written', () => {
  const r = inSandbox(`/usr/bin/python3 -c "
for p in ('/proc/1/mem', '/proc/1/environ'):
  try:
    open(p, 'r+b' if p.endswith('mem') else 'rb').read(1); print(p, 'opened')
  except OSError as e: print(p, 'errno', e.errno)"`);
  assert.equal(r.code, 0, r.stderr);
  for (const l of r.stdout.trim().split('\n')) assert.match(l, / errno (1|13)$/, `as ${WHO}: ${l}`);
});
