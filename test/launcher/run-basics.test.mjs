// cordon-launcher run: exit codes, errors, signals, environment, working
// directory, identities, hostname. Every case runs a real sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, mkdirSync, chmodSync, readlinkSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { createServer } from 'node:net';
import { LAUNCHER, BASE_MOUNTS, launcher, inSandbox, tempDir, IS_ROOT, have, run } from '../helpers.mjs';

// Asynchronous, so this process's own servers keep answering meanwhile.
const runAsync = (args) => run(LAUNCHER, args);

/** Starts a sandbox running SCRIPT; resolves once it printed "ready". */
export function startSandbox(script, extra = []) {
  const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, ...extra, '--', '/bin/sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  const done = new Promise((res) => child.on('close', (code, signal) => res({ code, signal, stdout: out, stderr: err })));
  const ready = new Promise((res, rej) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready')) res();
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('close', () => rej(new Error(`sandbox ended before ready: ${err}`)));
  });
  return { child, ready, done };
}

test('--version and --help', () => {
  const v = launcher(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^cordon-launcher \d+\.\d+\.\d+/);
  const h = launcher(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--ro-bind/);
});

test('unknown flag and missing operand: usage line, exit 125', () => {
  for (const args of [['run', '--bogus', '--', 'true'], ['run', '--bind', '/'], ['run', '--'], []]) {
    const r = launcher(args);
    assert.equal(r.code, 125, JSON.stringify(args));
    assert.match(r.stderr, /^cordon-launcher: .+\nusage: cordon-launcher run/);
  }
});

test('exit codes 0, 1, 42 pass through', () => {
  for (const c of [0, 1, 42]) {
    const r = inSandbox(`exit ${c}`);
    assert.equal(r.code, c, r.stderr);
  }
});

test('killed by a signal inside: 128+N (SIGKILL -> 137, SIGSEGV -> 139)', () => {
  assert.equal(inSandbox('kill -9 $$').code, 137);
  assert.equal(inSandbox('kill -SEGV $$').code, 139);
});

test('SIGTERM to the launcher reaches the command: 143', async () => {
  const s = startSandbox('echo ready; exec sleep 60');
  await s.ready;
  s.child.kill('SIGTERM');
  const r = await s.done;
  assert.equal(r.code, 143, r.stderr);
});

test('forwarded signals reach the command: USR1, USR2, INT, QUIT, WINCH, then HUP', async () => {
  const names = ['USR1', 'USR2', 'INT', 'QUIT', 'WINCH'];
  const traps = names.map((n) => `trap 'echo got-${n}' ${n};`).join(' ');
  const s = startSandbox(`${traps} trap 'echo got-HUP; exit 7' HUP; echo ready; while :; do sleep 0.05; done`);
  await s.ready;
  let seen = '';
  s.child.stdout.on('data', (d) => (seen += d));
  for (const n of names) {
    const want = `got-${n}`;
    s.child.kill(`SIG${n}`);
    const end = Date.now() + 10_000;
    await new Promise((res, rej) => {
      const check = () => (seen.includes(want) ? res() : Date.now() > end ? rej(new Error(`${want} never printed`)) : setTimeout(check, 10));
      check();
    });
  }
  s.child.kill('SIGHUP');
  const r = await s.done;
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout, /got-USR1[\s\S]*got-USR2[\s\S]*got-INT[\s\S]*got-QUIT[\s\S]*got-WINCH[\s\S]*got-HUP/);
});

test('exec failures: 127 not found, 126 not executable, one clear line', () => {
  let r = launcher(['run', ...BASE_MOUNTS, '--', '/nonexistent/cmd']);
  assert.equal(r.code, 127);
  assert.equal(r.stderr, 'cordon-launcher: exec /nonexistent/cmd: No such file or directory\n');
  r = launcher(['run', ...BASE_MOUNTS, '--', 'no-such-command-cordon']);
  assert.equal(r.code, 127);
  r = launcher(['run', ...BASE_MOUNTS, '--', '/etc/passwd']);
  assert.equal(r.code, 126);
  assert.equal(r.stderr, 'cordon-launcher: exec /etc/passwd: Permission denied\n');
});

test('setup failure: one line "cordon-launcher: <step>: <reason>", exit 125', () => {
  const r = launcher(['run', ...BASE_MOUNTS, '--ro-bind', '/nonexistent-src-cordon', '/mnt/x', '--', '/bin/true']);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /^cordon-launcher: bind \/nonexistent-src-cordon \/mnt\/x: No such file or directory\n$/);
  const bad = launcher(['run', ...BASE_MOUNTS, '--info-fd', '57', '--', '/bin/true']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /^cordon-launcher: descriptor 57: Bad file descriptor\n$/);
  // The relay sets up while PID 1 builds the root: when both fail (a port
  // published twice, a missing bind source), still one line, the relay's.
  const t = tempDir('cordon-twofail-');
  try {
    const sock = join(t.dir, 'p');
    const both = launcher(['run', '--publish', sock, '3128', ...BASE_MOUNTS, '--publish', sock, '3128', '--ro-bind', '/nonexistent-src-cordon', '/mnt/x', '--', '/bin/true']);
    assert.equal(both.code, 125);
    assert.match(both.stderr, /^cordon-launcher: relay: --publish [^\n]*: Address already in use\n$/);
  } finally {
    t.cleanup();
  }
});

test('PATH lookup uses the sandbox environment', () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'hello-cordon'), '#!/bin/sh\necho hello-from-path\n');
    chmodSync(join(dir, 'bin', 'hello-cordon'), 0o755);
    const r = launcher(['run', ...BASE_MOUNTS, '--ro-bind', dir, dir, '--setenv', 'PATH', `/nonexistent:${dir}/bin:/usr/bin:/bin`, '--', 'hello-cordon']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello-from-path\n');
  } finally {
    cleanup();
  }
});

test('--clearenv, --setenv, --unsetenv apply in order', () => {
  const r = launcher(
    ['run', ...BASE_MOUNTS, '--setenv', 'KEEPME', '1', '--clearenv', '--setenv', 'A', 'x y', '--setenv', 'B', '2', '--unsetenv', 'B', '--', '/usr/bin/env'],
    { env: { ...process.env, SECRET_CORDON: 'leak' }, cwd: '/usr' },
  );
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').sort();
  assert.deepEqual(lines, ['A=x y', 'PWD=/usr']);
});

test('the environment passes through unless changed', () => {
  const r = inSandbox('echo "$CORDON_PASS"', [], { env: { ...process.env, CORDON_PASS: 'through' } });
  assert.equal(r.stdout, 'through\n');
});

test('--chdir sets the directory and $PWD; a missing --chdir fails with 125', () => {
  const r = inSandbox('pwd; echo $PWD', ['--chdir', '/usr']);
  assert.equal(r.stdout, '/usr\n/usr\n');
  const m = inSandbox('pwd', ['--chdir', '/nonexistent-dir-cordon']);
  assert.equal(m.code, 125);
  assert.match(m.stderr, /^cordon-launcher: chdir \/nonexistent-dir-cordon: No such file or directory\n$/);
});

test('without --chdir the caller\'s directory is kept', () => {
  const r = inSandbox('pwd', [], { cwd: '/usr/share' });
  assert.equal(r.stdout, '/usr/share\n');
});

test('--hostname applies inside only', () => {
  const r = inSandbox('hostname', ['--hostname', 'cordon-box']);
  assert.equal(r.stdout, 'cordon-box\n');
  assert.notEqual(hostname(), 'cordon-box');
});

test('identity: the same ids by default, --uid/--gid map them', () => {
  const me = process.getuid();
  const r = inSandbox('id -u; id -g');
  assert.equal(r.stdout, `${me}\n${process.getgid()}\n`);
  const m = inSandbox('id -u; id -g', ['--uid', '1234', '--gid', '4321']);
  assert.equal(m.code, 0, m.stderr);
  assert.equal(m.stdout, '1234\n4321\n');
});

test('--unshare-user as root gives a user namespace', { skip: !IS_ROOT && 'only meaningful as root' }, () => {
  const host = inSandbox('readlink /proc/self/ns/user');
  const inner = inSandbox('readlink /proc/self/ns/user', ['--unshare-user']);
  assert.equal(inner.code, 0, inner.stderr);
  assert.notEqual(host.stdout, inner.stdout);
});

test('no capabilities, no_new_privs, non-zero namespaces differ from the host', () => {
  const r = inSandbox('grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):" /proc/self/status; for n in net ipc uts pid mnt cgroup; do readlink /proc/self/ns/$n; done');
  assert.equal(r.code, 0, r.stderr);
  for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(r.stdout, new RegExp(`${cap}:\\s+0000000000000000`));
  assert.match(r.stdout, /NoNewPrivs:\s+1/);
  for (const n of ['net', 'ipc', 'uts', 'pid', 'mnt', 'cgroup']) {
    assert.ok(!r.stdout.includes(readlinkSync(`/proc/self/ns/${n}`)), `${n} namespace is the host's`);
  }
});

test('own network namespace: lo is up inside, host loopback unreachable; --share-net reaches it', { skip: !have('python3') && 'python3 not installed' }, async () => {
  const server = createServer((s) => s.end('host-listener\n'));
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const port = server.address().port;
  const py = (p) =>
    `import socket\ns=socket.socket()\ntry:\n  s.connect(("127.0.0.1",${p})); print(s.recv(100).decode().strip())\nexcept OSError as e:\n  print("refused" if e.errno==111 else e)\n`;
  const selfTest = 'import socket\nl=socket.socket(); l.bind(("127.0.0.1",0)); l.listen(1)\nc=socket.create_connection(l.getsockname()); a,_=l.accept(); a.sendall(b"lo-ok"); print(c.recv(10).decode())\n';
  try {
    const own = await runAsync(['run', ...BASE_MOUNTS, '--', '/usr/bin/python3', '-c', selfTest + py(port)]);
    assert.equal(own.code, 0, own.stderr);
    assert.equal(own.stdout, 'lo-ok\nrefused\n');
    const shared = await runAsync(['run', ...BASE_MOUNTS, '--share-net', '--', '/usr/bin/python3', '-c', py(port)]);
    assert.equal(shared.code, 0, shared.stderr);
    assert.equal(shared.stdout, 'host-listener\n');
  } finally {
    server.close();
  }
});

test('the command starts with default signal dispositions (SIGPIPE not ignored)', () => {
  const r = inSandbox('yes | head -n1; grep SigIgn /proc/self/status');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'y\nSigIgn:\t0000000000000000\n');
});

test('refuses to run setuid', { skip: !IS_ROOT && 'needs root to make a setuid copy' }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const copy = join(dir, 'cordon-launcher');
    copyFileSync(LAUNCHER, copy);
    chmodSync(copy, 0o4755);
    const r = spawnSync(copy, ['run', ...BASE_MOUNTS, '--', '/bin/true'], { encoding: 'utf8', uid: 65534, gid: 65534 });
    assert.equal(r.status, 125);
    assert.equal(r.stderr, 'cordon-launcher: setuid: refusing to run setuid or setgid\n');
  } finally {
    cleanup();
  }
});
