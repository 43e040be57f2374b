// Landlock, the second wall for writes: a writable bind that is not among
// the --landlock-write paths stays unwritable (EACCES), and the host sees
// nothing. Also the signal scope (P6 backed by Landlock ABI >= 6).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, chmodSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launcher, BASE_MOUNTS, LAUNCHER, WHO } from '../helpers.mjs';
import { buildAttack } from './attacks/build.mjs';

let t, abi;
before(() => {
  // Not under /tmp: the sandbox's /tmp is a tmpfs that is writable by
  // design, and a bind beneath it would inherit that rule.
  const dir = mkdtempSync('/var/tmp/cordon-ll-');
  chmodSync(dir, 0o755);
  t = { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  mkdirSync(join(t.dir, 'ok'), { mode: 0o777 });
  mkdirSync(join(t.dir, 'no'), { mode: 0o777 });
  const p = spawnSync(LAUNCHER, ['probe'], { encoding: 'utf8' });
  abi = JSON.parse(p.stdout).landlock?.abi ?? 0;
});
after(() => t?.cleanup());

const WRITE = (path) => `/usr/bin/python3 -c "
import sys
try:
  open('${path}','w').write('x'); print('written')
except OSError as e: print('errno', e.errno)"`;

function sh(script, extra) {
  return launcher(['run', ...BASE_MOUNTS, '--bind', t.dir, t.dir, ...extra, '--', '/bin/sh', '-c', script]);
}

test('writes outside --landlock-write are EACCES even under a writable bind', (tt) => {
  if (!abi) return tt.skip('Landlock is not available on this kernel');
  const ll = ['--landlock', 'required', '--landlock-write', join(t.dir, 'ok')];
  const bad = sh(WRITE(join(t.dir, 'no', 'f')), ll);
  assert.equal(bad.code, 0, bad.stderr);
  assert.equal(bad.stdout.trim(), 'errno 13', `as ${WHO}`);
  assert.equal(existsSync(join(t.dir, 'no', 'f')), false, 'nothing was written on the host');
  const good = sh(WRITE(join(t.dir, 'ok', 'f')), ll);
  assert.equal(good.stdout.trim(), 'written', good.stderr);
  assert.equal(readFileSync(join(t.dir, 'ok', 'f'), 'utf8'), 'x');
  // the sandbox's own /tmp tmpfs and /dev stay writable without being listed
  const tmp = sh('echo hi > /tmp/x && cat /tmp/x && echo y > /dev/null && echo done', ll);
  assert.equal(tmp.stdout, 'hi\ndone\n', tmp.stderr);
  // rename and unlink are writes too
  const mv = sh(`mv ${join(t.dir, 'ok', 'f')} ${join(t.dir, 'no', 'g')} 2>&1; echo rc=$?`, ll);
  assert.match(mv.stdout, /rc=1/);
  assert.equal(existsSync(join(t.dir, 'ok', 'f')), true);
});

test('S4: every alternate way to write is refused outside --landlock-write (create, mkdir, link, symlink, rename, truncate, openat2)', (tt) => {
  if (!abi) return tt.skip('Landlock is not available on this kernel');
  const no = join(t.dir, 'no');
  const ok = join(t.dir, 'ok');
  spawnSync('sh', ['-c', `echo keep > ${no}/existing && echo src > ${ok}/src && chmod 666 ${no}/existing ${ok}/src`]);
  const py = `import os, ctypes, errno
no, ok = ${JSON.stringify(no)}, ${JSON.stringify(ok)}
libc = ctypes.CDLL(None, use_errno=True)
def t(name, f):
  try:
    f(); print(name, 0)
  except OSError as e: print(name, e.errno)
t('creat', lambda: os.close(os.open(no + '/c', os.O_CREAT | os.O_WRONLY, 0o644)))
t('mkdir', lambda: os.mkdir(no + '/d'))
t('symlink', lambda: os.symlink('/etc/passwd', no + '/s'))
t('link', lambda: os.link(ok + '/src', no + '/l'))
t('rename', lambda: os.rename(ok + '/src', no + '/r'))
t('truncate', lambda: os.truncate(no + '/existing', 0))
t('write_existing', lambda: open(no + '/existing', 'a').write('x'))
t('unlink', lambda: os.unlink(no + '/existing'))
t('mkfifo', lambda: os.mkfifo(no + '/f'))
how = (ctypes.c_uint64 * 3)(os.O_CREAT | os.O_WRONLY, 0o644, 0)
r = libc.syscall(437, -100, (no + '/o2').encode(), ctypes.byref(how), 24)
print('openat2', 0 if r >= 0 else ctypes.get_errno())`;
  const r = sh(`/usr/bin/python3 -c '${py.replace(/'/g, `'"'"'`)}'`, ['--landlock', 'required', '--landlock-write', ok]);
  assert.equal(r.code, 0, r.stderr);
  const got = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
  for (const k of ['creat', 'mkdir', 'symlink', 'truncate', 'write_existing', 'unlink', 'mkfifo', 'openat2']) assert.equal(got[k], 13, `${k} as ${WHO}: ${r.stdout}`);
  // Cross-directory link/rename: Landlock answers EXDEV (refer) or EACCES.
  for (const k of ['link', 'rename']) assert.ok(got[k] === 13 || got[k] === 18, `${k}: ${got[k]}`);
  assert.equal(readFileSync(join(no, 'existing'), 'utf8'), 'keep\n', 'the host file is unchanged');
  assert.equal(existsSync(join(ok, 'src')), true);
});

test('--landlock off leaves the writable bind writable (the check above is not vacuous)', () => {
  const r = sh(WRITE(join(t.dir, 'no', 'off')), ['--landlock', 'off']);
  assert.equal(r.stdout.trim(), 'written', r.stderr);
});

test('--landlock required runs when the kernel has Landlock', (tt) => {
  if (!abi) return tt.skip('Landlock is not available on this kernel');
  const r = sh('echo fine', ['--landlock', 'required']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'fine\n');
});

test('without Landlock: --landlock required refuses with one line, best-effort runs (kernel simulated by a seccomp ENOSYS)', () => {
  const a = buildAttack();
  try {
    const base = ['run', ...BASE_MOUNTS];
    const req = spawnSync(a.bin, ['nolandlock', LAUNCHER, ...base, '--landlock', 'required', '--', '/bin/echo', 'ran'], { encoding: 'utf8' });
    assert.equal(req.status, 125, req.stderr);
    assert.equal(req.stdout, '', 'the command must not run');
    assert.equal(req.stderr, 'cordon-launcher: landlock: Landlock is required by the policy but this kernel does not support it (not built into this kernel)\n');
    const be = spawnSync(a.bin, ['nolandlock', LAUNCHER, ...base, '--info-fd', '3', '--', '/bin/echo', 'ran'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    assert.equal(be.status, 0, be.stderr);
    assert.equal(be.stdout, 'ran\n');
    assert.match(be.output[3], /"landlock":null/);
    const probe = JSON.parse(spawnSync(a.bin, ['nolandlock', LAUNCHER, 'probe'], { encoding: 'utf8' }).stdout);
    assert.equal(probe.landlock.ok, false);
    assert.equal(probe.sandbox_ok, true, 'Landlock is not needed for the default policy');
  } finally {
    a.cleanup();
  }
});

test('ABI >= 6: the command cannot signal processes outside its Landlock domain (pid 1)', (tt) => {
  if (abi < 6) return tt.skip(`Landlock ABI ${abi} has no signal scoping (needs 6)`);
  const r = sh(`/usr/bin/python3 -c "
import os
try:
  os.kill(1, 0); print('signalled')
except OSError as e: print('errno', e.errno)"`, ['--landlock', 'required']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'errno 1');
});
