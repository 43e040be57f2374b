// `cordon-launcher probe`: one JSON object of real probes for `cordon doctor`,
// checked against what really happens on this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { LAUNCHER, WHO, have } from '../helpers.mjs';

const ROWS = ['user_namespaces', 'mount_namespaces', 'pid_namespaces', 'net_namespaces', 'proc_mount', 'seccomp',
  'seccomp_user_notif', 'landlock', 'io_uring', 'legacy_tiocsti', 'apparmor_userns', 'container', 'max_user_namespaces'];

test('probe prints every row as {ok, error} JSON', () => {
  const r = spawnSync(LAUNCHER, ['probe'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.uid, process.getuid());
  for (const k of ROWS) {
    assert.equal(typeof j[k]?.ok, 'boolean', `${k} missing`);
    assert.ok(j[k].ok ? j[k].error === null : typeof j[k].error === 'string' && typeof j[k].remedy === 'string', `${k}: ${JSON.stringify(j[k])}`);
  }
  assert.equal(typeof j.landlock.abi, 'number');
  // the machine-level verdict for `cordon doctor`'s exit status
  assert.equal(j.sandbox_ok, j.mount_namespaces.ok && j.pid_namespaces.ok && j.net_namespaces.ok && j.seccomp.ok && (j.uid === 0 || j.user_namespaces.ok));
});

test('probe agrees with reality: user namespaces and Landlock', (t) => {
  const j = JSON.parse(spawnSync(LAUNCHER, ['probe'], { encoding: 'utf8' }).stdout);
  if (!have('unshare')) return t.skip('no unshare(1) to compare with');
  const u = spawnSync('unshare', ['-U', '-r', 'true']);
  assert.equal(j.user_namespaces.ok, u.status === 0, `as ${WHO}: probe says ${j.user_namespaces.ok}, unshare -Ur exit ${u.status}`);
  const lsm = spawnSync('cat', ['/sys/kernel/security/lsm'], { encoding: 'utf8' });
  if (lsm.status === 0) assert.equal(j.landlock.ok, /landlock/.test(lsm.stdout));
  const sysctl = spawnSync('cat', ['/proc/sys/kernel/io_uring_disabled'], { encoding: 'utf8' });
  if (sysctl.status === 0) assert.equal(j.io_uring.io_uring_disabled, sysctl.stdout.trim());
});

test('probe refuses arguments with one line', () => {
  const r = spawnSync(LAUNCHER, ['probe', 'x'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^cordon-launcher: probe: takes no arguments/);
});
