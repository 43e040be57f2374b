// cordon-launcher run: PID 1, descriptors, --info-fd, --keep-fd, timeout,
// and that nothing of a sandbox outlives it or its caller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import { LAUNCHER, BASE_MOUNTS, launcher, inSandbox, tempDir } from '../helpers.mjs';

/** Host pids whose command line contains MARK. */
function pidsWith(mark) {
  const out = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(mark)) out.push(Number(p));
    } catch {}
  }
  return out;
}

/** Waits (bounded) until no process carries MARK; returns the survivors. */
async function gone(mark, ms = 10_000) {
  const end = Date.now() + ms;
  let left = pidsWith(mark);
  while (left.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    left = pidsWith(mark);
  }
  return left;
}

const unique = () => `${Math.floor(Math.random() * 1e9) + 1000}`;

test('descriptors 3-9 opened by the caller are closed inside', () => {
  const fds = [];
  for (let i = 0; i < 7; i++) fds.push(openSync('/dev/null', 'r'));
  try {
    const stdio = ['ignore', 'pipe', 'pipe', ...fds];
    const r = spawnSync(LAUNCHER, ['run', ...BASE_MOUNTS, '--', '/bin/sh', '-c', 'ls /proc/self/fd'], { encoding: 'utf8', stdio });
    assert.equal(r.status, 0, r.stderr);
    // 0 1 2 plus the descriptor ls itself opened for the directory.
    const open = r.stdout.trim().split('\n').map(Number).filter((n) => n > 2);
    assert.ok(open.length <= 1, `leaked: ${r.stdout}`);
    assert.ok(open.every((n) => n > 9 || n === 3), r.stdout);
  } finally {
    fds.forEach(closeSync);
  }
});

test('--keep-fd passes one descriptor through, the others stay closed', () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = spawnSync(
      LAUNCHER,
      ['run', ...BASE_MOUNTS, '--keep-fd', '5', '--', '/bin/sh', '-c', 'echo kept >&5; echo other >&4 2>/dev/null || echo closed4'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'pipe', 'pipe'] },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.output[5], 'kept\n');
    assert.equal(r.output[4], '');
    assert.equal(r.stdout, 'closed4\n');
  } finally {
    cleanup();
  }
});

test('--info-fd: start line with the command pid, end line with its status', () => {
  const r = spawnSync(LAUNCHER, ['run', ...BASE_MOUNTS, '--info-fd', '3', '--', '/bin/sh', '-c', 'echo $$; exit 3'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  assert.equal(r.status, 3, r.stderr);
  const lines = r.output[3].trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2, r.output[3]);
  assert.equal(typeof lines[0]['child-pid'], 'number');
  assert.ok(lines[0]['child-pid'] > 1);
  assert.equal(lines[0].proc, 'fresh');
  assert.ok('landlock' in lines[0]);
  assert.deepEqual(lines[1], { 'exit-code': 3 });
  // Inside, the command is a small pid of its own namespace.
  assert.ok(Number(r.stdout.trim()) < 10);
  const k = spawnSync(LAUNCHER, ['run', ...BASE_MOUNTS, '--info-fd', '3', '--', '/bin/sh', '-c', 'kill -TERM $$'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  assert.equal(k.status, 143);
  assert.deepEqual(JSON.parse(k.output[3].trim().split('\n')[1]), { 'exit-signal': 15 });
});

test('--info-fd child-pid is the command\'s host pid', async () => {
  const mark = unique();
  const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--info-fd', '3', '--', '/bin/sleep', mark], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  const line = await new Promise((res) => child.stdio[3].once('data', (d) => res(JSON.parse(String(d).split('\n')[0]))));
  const closed = new Promise((res) => child.on('close', res));
  try {
    const hostPid = line['child-pid'];
    // The host pid names the command's process: pid 2 in the sandbox (after PID 1).
    const nspid = readFileSync(`/proc/${hostPid}/status`, 'utf8').match(/^NSpid:\s+(.*)$/m)[1].split(/\s+/).map(Number);
    assert.deepEqual(nspid, [hostPid, 2]);
  } finally {
    child.kill('SIGTERM');
    await closed;
  }
});

test('/proc shows only the sandbox\'s processes', () => {
  const r = inSandbox('ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "');
  assert.equal(r.code, 0, r.stderr);
  const pids = r.stdout.trim().split(' ').map(Number);
  assert.equal(pids[0], 1);
  assert.ok(pids.length <= 8, r.stdout);
  assert.ok(pids.every((p) => p < 20), r.stdout);
});

test('a detached daemon ((setsid sleep &)) does not outlive the command', async () => {
  const mark = unique();
  const r = inSandbox(`(setsid sleep ${mark} </dev/null >/dev/null 2>&1 &); sleep 0.1; exit 0`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await gone(`sleep\0${mark}`), []);
});

/** Waits (bounded) until some process carries MARK. */
async function appears(mark, ms = 10_000) {
  const end = Date.now() + ms;
  while (!pidsWith(mark).length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return pidsWith(mark).length > 0;
}

test('the caller SIGKILLed: nothing of the sandbox survives', async () => {
  const mark = unique();
  // The caller is a shell that started the launcher; it is killed -9.
  const caller = spawn('/bin/sh', ['-c', `"${LAUNCHER}" run ${BASE_MOUNTS.join(' ')} -- /bin/sh -c 'exec sleep ${mark}'; echo after`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    assert.ok(await appears(`sleep\0${mark}`), 'the sandboxed sleep never started');
  } finally {
    caller.kill('SIGKILL');
  }
  assert.deepEqual(await gone(`sleep\0${mark}`), []);
  assert.deepEqual(await gone(mark), []);
});

test('the launcher SIGKILLed: nothing of the sandbox survives', async () => {
  const mark = unique();
  const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--', '/bin/sh', '-c', `(setsid sleep ${mark} &); exec sleep ${mark}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    assert.ok(await appears(`sleep\0${mark}`), 'the sandboxed sleep never started');
  } finally {
    child.kill('SIGKILL');
  }
  assert.deepEqual(await gone(mark), []);
});

test('--timeout-ms kills the whole sandbox: exit 124, reported', () => {
  const mark = unique();
  const r = spawnSync(LAUNCHER, ['run', ...BASE_MOUNTS, '--timeout-ms', '300', '--info-fd', '3', '--', '/bin/sh', '-c', `(setsid sleep ${mark} &); sleep ${mark}`], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    timeout: 20_000,
  });
  assert.equal(r.status, 124, r.stderr);
  assert.match(r.stderr, /^cordon-launcher: timeout: killed the sandbox after 300 ms\n$/);
  const lines = r.output[3].trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.at(-1), { 'exit-code': 124, timeout: true });
  assert.deepEqual(pidsWith(`sleep\0${mark}`), []);
});

test('stdin passes through', () => {
  const r = launcher(['run', ...BASE_MOUNTS, '--', '/bin/cat'], { input: 'through stdin\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'through stdin\n');
});

test('the command runs in a new session (no controlling terminal)', () => {
  const r = inSandbox('ps -o pid=,sid= -p $$');
  const [pid, sid] = r.stdout.trim().split(/\s+/).map(Number);
  assert.equal(pid, sid);
});

test('a pseudo-terminal works inside (interactive programs)', { skip: spawnSync('/bin/sh', ['-c', 'command -v script']).status !== 0 && 'script(1) not installed' }, () => {
  // script(1) runs the launcher on a pty: the command sees a terminal on stdin.
  const cmd = `${LAUNCHER} run ${BASE_MOUNTS.join(' ')} -- /bin/sh -c 'test -t 0 && echo is-a-tty; tty >/dev/null && echo has-name'`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 20_000 });
  assert.match(r.stdout, /is-a-tty/);
});

test('PID 1 does not show the launcher\'s arguments (secrets like --relay-token) in /proc/1/cmdline', () => {
  const r = launcher(['run', ...BASE_MOUNTS, '--setenv', 'X', 'secret-in-argv-cordon', '--', '/bin/sh', '-c', 'tr "\\0" "\\n" < /proc/1/cmdline | grep -v "^$"']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'cordon-launcher\n');
});

// Some container seccomp profiles answer ENOSYS to every clone3 (so that libc
// falls back to clone): PID 1 must still get its own pid namespace there.
// The filter is installed by python3 (ctypes prctl) before it execs the launcher.
const CLONE3_ENOSYS = `
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
# ld [nr]; jeq 435 ? ret ERRNO(ENOSYS) : ret ALLOW
prog = [(0x20, 0, 0, 0), (0x15, 0, 1, 435), (0x06, 0, 0, 0x00050000 | 38), (0x06, 0, 0, 0x7fff0000)]
buf = ctypes.create_string_buffer(b''.join(struct.pack('HBBI', *i) for i in prog))
class Fprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
fp = Fprog(len(prog), ctypes.addressof(buf))
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, ctypes.byref(fp), 0, 0) == 0, ctypes.get_errno()  # PR_SET_SECCOMP, FILTER
os.execv(sys.argv[1], sys.argv[1:])
`;

test('clone3 refused with ENOSYS (as some container profiles do): PID 1 still gets a new pid namespace', (t) => {
  if (process.arch !== 'x64') return t.skip('the filter checks the x86_64 syscall number');
  const py = spawnSync('python3', ['-c', 'pass']);
  if (py.error || py.status !== 0) return t.skip('python3 is not installed');
  const script = 'echo "pid=$$"; ls /proc | grep -c "^[0-9]"';
  const r = spawnSync('python3', ['-c', CLONE3_ENOSYS, LAUNCHER, 'run', ...BASE_MOUNTS, '--', '/bin/sh', '-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [pid, procs] = r.stdout.trim().split('\n');
  assert.equal(pid, 'pid=2', 'the command is the second process of a new pid namespace');
  // PID 1, sh, ls, grep.
  assert.ok(Number(procs) <= 4, `only the sandbox's processes are visible: ${procs}`);
});
