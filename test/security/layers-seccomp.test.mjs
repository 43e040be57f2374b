// Seccomp layer: real attacks (C, compiled at test time) inside a real
// sandbox, each with the exact errno the filter must produce. Catalog groups
// S1-S8, N1-N5, P1-P3, T2/T3, U3/U6, F9-F11, F13.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { WHO, inSandbox } from '../helpers.mjs';
import { buildAttack, parseResults, attackInSandbox, ERRNO } from './attacks/build.mjs';

const { EPERM, ENOSYS } = ERRNO;
let a;
before(() => {
  a = buildAttack();
});
after(() => a?.cleanup());

function runInside(args, extra = []) {
  const r = attackInSandbox(a, args, extra);
  assert.equal(r.code, 0, `sandbox failed (${WHO}): ${r.stderr}`);
  return parseResults(r.stdout);
}

function expectAll(got, want) {
  const bad = [];
  for (const [name, errno] of Object.entries(want)) {
    if (got.get(name) !== errno) bad.push(`${name}: want ${errno}, got ${got.get(name)}`);
  }
  assert.deepEqual(bad, [], `as ${WHO}`);
}

// The same calls with harmless invalid arguments outside and inside
// (bubblewrap's try-syscall): outside they fail with EFAULT/EBADF/EINVAL or
// succeed; inside the filter must answer first.
const DIFF_INSIDE = {
  chroot: EPERM, clone3: ENOSYS, ioctl_tiocsti_hi: EPERM, ioctl_tioclinux: EPERM,
  io_uring_setup: EPERM, keyctl: EPERM, add_key: EPERM, request_key: EPERM,
  mount: EPERM, umount2: EPERM, pivot_root: EPERM, open_tree: EPERM, move_mount: EPERM,
  fsopen: EPERM, fsconfig: EPERM, fsmount: EPERM, fspick: EPERM, mount_setattr: EPERM,
  perf_event_open: EPERM, bpf: EPERM, userfaultfd: EPERM, pidfd_getfd: EPERM,
  process_vm_readv: EPERM, process_vm_writev: EPERM, ptrace: EPERM, setns: EPERM,
  open_by_handle_at: EPERM, init_module: EPERM, kexec_load: EPERM,
  personality_read_implies_exec: EPERM, socket_vsock: EPERM, socket_netlink_audit: EPERM,
  socket_unix: EPERM,
};
if (process.arch === 'x64') Object.assign(DIFF_INSIDE, { x32_socket: EPERM, int80_socket: EPERM, int80_socketcall: EPERM });

test('errno differential: the same syscalls outside and inside the sandbox', () => {
  const out = spawnSync(a.bin, ['diff'], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const outside = parseResults(out.stdout);
  const inside = runInside(['diff']);
  expectAll(inside, DIFF_INSIDE);
  // The differential itself: most calls must change errno, proving the
  // filter (not the kernel's own argument checks) produced the answer.
  const changed = Object.keys(DIFF_INSIDE).filter((k) => outside.get(k) !== inside.get(k));
  assert.ok(changed.length >= 15, `only ${changed.length} calls changed errno: ${changed.join(' ')}`);
  // S2: on this kernel int 0x80 works outside (a real fd), so the arch check is what blocks it.
  if (process.arch === 'x64') {
    assert.equal(outside.get('int80_socket'), 0, 'int 0x80 should work outside on this kernel');
    assert.equal(outside.get('int80_socketcall'), ERRNO.EFAULT);
  }
});

test('real attacks are refused with the exact errno (N1 N3 N4 F9 F11 F13 S1 S6 S7 S8 P1-P3 T2 T3 U3 U6)', () => {
  const got = runInside(['real']);
  expectAll(got, {
    clone3_newuser: ENOSYS, clone_newuser: EPERM, unshare_newuser: EPERM, unshare_newnet: EPERM, unshare_newns: EPERM,
    io_uring_setup: EPERM, fsopen_tmpfs: EPERM, open_tree: EPERM, mount_tmpfs: EPERM, mount_remount_rw: EPERM,
    umount_proc: EPERM, chroot_dot: EPERM,
    ptrace_attach_1: EPERM, process_vm_readv_1: EPERM,
    personality_0x0400000: EPERM, personality_addr_no_randomize: EPERM, personality_query: 0,
    keyctl_get_session: EPERM, add_key_user: EPERM, request_key_user: EPERM,
    perf_event_open: EPERM, userfaultfd: EPERM, bpf_prog_load: EPERM,
    ioctl_tiocsti: EPERM, ioctl_tiocsti_hi: EPERM, ioctl_tioclinux: EPERM,
    socket_vsock: EPERM, socket_packet: EPERM, socket_alg: EPERM, socket_ipx: EPERM, socket_can: EPERM, socket_xdp: EPERM,
    socket_netlink_audit: EPERM, socket_netlink_route: 0, socket_inet: 0, socket_inet6: 0,
    socket_unix: EPERM, socketpair_stream: 0, socketpair_dgram: EPERM,
    open_by_handle_at: EPERM,
  });
  // P3: pidfd_open itself is harmless and allowed; stealing fds is not.
  assert.equal(got.get('pidfd_open_1'), 0);
  assert.equal(got.get('pidfd_getfd_1'), EPERM);
});

test('threads and fork still work (clone3 ENOSYS falls back to clone)', () => {
  const got = runInside(['threads']);
  expectAll(got, { pthread_create: 0, thread_ran: 0, fork: 0 });
  const py = inSandbox(`/usr/bin/python3 -c "import threading; t=threading.Thread(target=print, args=('thread-ok',)); t.start(); t.join()"`);
  assert.equal(py.code, 0, py.stderr);
  assert.match(py.stdout, /thread-ok/);
});

test('getaddrinfo("localhost") and NETLINK_ROUTE still work', () => {
  const py = inSandbox(
    `/usr/bin/python3 -c "import socket; print(sorted({a[4][0] for a in socket.getaddrinfo('localhost', 80)})); s=socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0); s.bind((0,0)); print('netlink-ok')"`,
  );
  assert.equal(py.code, 0, py.stderr);
  assert.match(py.stdout, /127\.0\.0\.1|::1/);
  assert.match(py.stdout, /netlink-ok/);
});

test('--allow-userns lifts only the namespace rules', () => {
  const got = runInside(['real'], ['--allow-userns']);
  assert.notEqual(got.get('unshare_newuser'), EPERM, 'a nested user namespace is allowed');
  assert.notEqual(got.get('clone3_newuser'), ENOSYS);
  expectAll(got, { mount_tmpfs: EPERM, ptrace_attach_1: EPERM, io_uring_setup: EPERM, socket_vsock: EPERM });
});

test('--no-seccomp really removes the filter (the differential is not vacuous)', () => {
  const r = attackInSandbox(a, ['diff'], ['--no-seccomp']);
  assert.equal(r.code, 0, r.stderr);
  const got = parseResults(r.stdout);
  assert.equal(got.get('socket_unix'), 0);
  assert.equal(got.get('clone3'), ERRNO.EFAULT);
});
