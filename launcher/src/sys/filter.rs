//! Raw syscalls for the security layers: seccomp (filters and user
//! notification), Landlock, pidfds, cross-process memory reads, and the few
//! libc calls the probes need. This is the only place of the security layers
//! with `unsafe`; every other module (bpf, seccomp, landlock, unixsock, probe)
//! is safe Rust on top of these wrappers.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

extern "C" {
    fn syscall(n: c_long, ...) -> c_long;
    fn prctl(option: c_int, a2: c_ulong, a3: c_ulong, a4: c_ulong, a5: c_ulong) -> c_int;
    fn ioctl(fd: c_int, req: c_ulong, ...) -> c_int;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(code: c_int) -> !;
    fn unshare(flags: c_int) -> c_int;
    fn mount(src: *const c_char, dst: *const c_char, fstype: *const c_char, flags: c_ulong, data: *const c_void) -> c_int;
    fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const c_void, len: u32) -> c_int;
    fn getuid() -> c_uint;
    fn getgid() -> c_uint;
    fn poll(fds: *mut PollFd, n: c_ulong, timeout: c_int) -> c_int;
}

// The parent module's kernel structs and sendmsg/recvmsg: one definition.
use super::{recvmsg, sendmsg, IoVec, MsgHdr, PollFd};

const POLLIN: i16 = 1;
const POLLERR: i16 = 8;
const POLLHUP: i16 = 0x10;
const SOL_SOCKET: c_int = 1;
const SCM_RIGHTS: c_int = 1;
const MSG_CMSG_CLOEXEC: c_int = 0x4000_0000;
const MSG_NOSIGNAL: c_int = 0x4000;

/// Waits until FD is readable. Returns false when it hung up without data
/// (for a seccomp listener: every task using the filter is gone).
pub fn wait_readable(fd: RawFd) -> io::Result<bool> {
    loop {
        let mut p = PollFd { fd, events: POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { poll(&mut p, 1, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(4) {
                continue;
            }
            return Err(e);
        }
        if p.revents & POLLIN != 0 {
            return Ok(true);
        }
        if p.revents & (POLLHUP | POLLERR) != 0 {
            return Ok(false);
        }
    }
}

/// Control buffer for exactly one descriptor: cmsghdr (16 bytes) + int,
/// padded to 8 (CMSG_SPACE(sizeof(int)) == 24 on 64-bit Linux).
#[repr(C, align(8))]
struct OneFdCmsg {
    len: usize,
    level: c_int,
    ty: c_int,
    fd: c_int,
    _pad: c_int,
}

/// Passes FD over the Unix socket SOCK (SCM_RIGHTS), with one marker byte.
/// The launcher uses it to hand the seccomp listener from the command
/// process to the supervisor.
pub fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    let mut byte = [b'L'];
    let mut iov = IoVec { base: byte.as_mut_ptr() as *mut c_void, len: 1 };
    let mut cm = OneFdCmsg { len: 20, level: SOL_SOCKET, ty: SCM_RIGHTS, fd, _pad: 0 };
    let msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: &mut cm as *mut OneFdCmsg as *mut c_void,
        controllen: std::mem::size_of::<OneFdCmsg>(),
        flags: 0,
    };
    // SAFETY: msg points at live, correctly laid out iovec and cmsg buffers.
    let r = unsafe { sendmsg(sock, &msg, MSG_NOSIGNAL) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one descriptor sent by `send_fd` (close-on-exec).
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8];
    let mut iov = IoVec { base: byte.as_mut_ptr() as *mut c_void, len: 1 };
    let mut cm = OneFdCmsg { len: 0, level: 0, ty: 0, fd: -1, _pad: 0 };
    let mut msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: &mut cm as *mut OneFdCmsg as *mut c_void,
        controllen: std::mem::size_of::<OneFdCmsg>(),
        flags: 0,
    };
    // SAFETY: msg points at live buffers we own; the kernel fills them.
    let r = unsafe { recvmsg(sock, &mut msg, MSG_CMSG_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 || cm.level != SOL_SOCKET || cm.ty != SCM_RIGHTS || cm.len < 20 || cm.fd < 0 {
        return Err(io::Error::from_raw_os_error(71)); // EPROTO
    }
    // SAFETY: the kernel installed this descriptor for us (SCM_RIGHTS).
    Ok(unsafe { OwnedFd::from_raw_fd(cm.fd) })
}

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const SECCOMP: i64 = 317;
    pub const PROCESS_VM_READV: i64 = 310;
}
#[cfg(target_arch = "aarch64")]
mod nr {
    pub const SECCOMP: i64 = 277;
    pub const PROCESS_VM_READV: i64 = 270;
}
const NR_LANDLOCK_CREATE_RULESET: i64 = 444;
const NR_LANDLOCK_ADD_RULE: i64 = 445;
const NR_LANDLOCK_RESTRICT_SELF: i64 = 446;
const NR_PIDFD_OPEN: i64 = 434;
const NR_PIDFD_GETFD: i64 = 438;
const NR_PIDFD_SEND_SIGNAL: i64 = 424;

pub const PR_SET_NO_NEW_PRIVS: c_int = 38;
pub const PR_SET_DUMPABLE: c_int = 4;
const SECCOMP_SET_MODE_FILTER: c_ulong = 1;
const SECCOMP_GET_NOTIF_SIZES: c_ulong = 3;
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: c_ulong = 1 << 3;
pub const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: c_ulong = 1 << 5;

const SECCOMP_IOCTL_NOTIF_RECV: c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: c_ulong = 0xc018_2101;
const SECCOMP_IOCTL_NOTIF_ID_VALID: c_ulong = 0x4008_2102;

const O_PATH: c_int = 0o10000000;
const O_CLOEXEC: c_int = 0o2000000;
const O_NOFOLLOW: c_int = 0o400000;

// The parent module's result helpers: one definition of "negative means errno".
use super::{cvt_l as cvt, fd_from as cvt_fd};

/// One classic-BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    cvt(unsafe { prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as c_long).map(|_| ())
}

pub fn set_dumpable(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { prctl(PR_SET_DUMPABLE, on as c_ulong, 0, 0, 0) } as c_long).map(|_| ())
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). With NEW_LISTENER the
/// kernel returns the notification descriptor.
pub fn seccomp_set_filter(prog: &[SockFilter], flags: c_ulong) -> io::Result<Option<OwnedFd>> {
    if prog.is_empty() || prog.len() > 4096 {
        return Err(io::Error::from_raw_os_error(22));
    }
    let fprog = SockFprog { len: prog.len() as u16, filter: prog.as_ptr() };
    // SAFETY: fprog points at `prog`, which outlives the call; the kernel copies it.
    let r = cvt(unsafe { syscall(nr::SECCOMP, SECCOMP_SET_MODE_FILTER, flags, &fprog as *const SockFprog) })?;
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the return value is a fresh descriptor we own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(r as RawFd) }))
    } else {
        Ok(None)
    }
}

/// Sizes of (seccomp_notif, seccomp_notif_resp, seccomp_data) on this kernel.
pub fn seccomp_notif_sizes() -> io::Result<(u16, u16, u16)> {
    let mut s = [0u16; 3];
    // SAFETY: the kernel writes exactly three u16 into `s`.
    cvt(unsafe { syscall(nr::SECCOMP, SECCOMP_GET_NOTIF_SIZES, 0 as c_ulong, s.as_mut_ptr()) })?;
    Ok((s[0], s[1], s[2]))
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompNotif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompNotifResp {
    pub id: u64,
    pub val: i64,
    pub error: i32,
    pub flags: u32,
}

/// Blocks until the next notification. The buffer must be zeroed (the kernel
/// checks), which `Default` guarantees.
pub fn notif_recv(listener: RawFd) -> io::Result<SeccompNotif> {
    let mut n = SeccompNotif::default();
    // SAFETY: `n` is a zeroed, correctly sized struct seccomp_notif (80 bytes, checked in tests).
    cvt(unsafe { ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &mut n as *mut SeccompNotif) } as c_long)?;
    Ok(n)
}

pub fn notif_send(listener: RawFd, resp: &SeccompNotifResp) -> io::Result<()> {
    // SAFETY: `resp` is a valid struct seccomp_notif_resp the kernel only reads.
    cvt(unsafe { ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp as *const SeccompNotifResp) } as c_long).map(|_| ())
}

/// Whether notification `id` is still pending (the target is alive and still
/// in that syscall), which rules out pid reuse after we looked at its memory.
pub fn notif_id_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: the kernel reads one u64 from `id`.
    unsafe { ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id as *const u64) == 0 }
}

pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    cvt_fd(unsafe { syscall(NR_PIDFD_OPEN, pid as c_long, 0 as c_long) })
}

/// Sends `sig` to the process behind `pidfd` (never to a later process
/// that got its pid).
pub fn pidfd_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: integer arguments and a null siginfo, which the kernel allows.
    cvt(unsafe { syscall(NR_PIDFD_SEND_SIGNAL, pidfd.as_raw_fd() as c_long, sig as c_long, std::ptr::null::<c_void>(), 0 as c_long) }).map(drop)
}

pub fn pidfd_getfd(pidfd: RawFd, target_fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the result is a new descriptor we own.
    cvt_fd(unsafe { syscall(NR_PIDFD_GETFD, pidfd as c_long, target_fd as c_long, 0 as c_long) })
}

/// Copies `buf.len()` bytes from address `addr` of process `pid` (one read:
/// the caller decides on this copy only, never on the target's memory again).
pub fn process_vm_read(pid: i32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = IoVec { base: buf.as_mut_ptr() as *mut c_void, len: buf.len() };
    let remote = IoVec { base: addr as *mut c_void, len: buf.len() };
    // SAFETY: `local` describes our own writable buffer; `remote` is only
    // interpreted by the kernel in the target's address space.
    let r = cvt(unsafe {
        syscall(nr::PROCESS_VM_READV, pid as c_long, &local as *const IoVec, 1 as c_ulong, &remote as *const IoVec, 1 as c_ulong, 0 as c_ulong)
    })?;
    Ok(r as usize)
}

/// connect(2) with a raw sockaddr; returns 0 or the errno.
pub fn connect_raw(fd: RawFd, addr: &[u8]) -> i32 {
    // SAFETY: `addr` is a readable buffer of the given length.
    let r = unsafe { connect(fd, addr.as_ptr() as *const c_void, addr.len() as u32) };
    if r == 0 {
        0
    } else {
        io::Error::last_os_error().raw_os_error().unwrap_or(5)
    }
}

// ---- Landlock ----

pub const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const LANDLOCK_RULE_PATH_BENEATH: c_int = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LandlockRulesetAttr {
    pub handled_access_fs: u64,
    pub handled_access_net: u64,
    pub scoped: u64,
}

#[repr(C, packed)]
struct LandlockPathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version, or the errno (ENOSYS: not built; EOPNOTSUPP: disabled).
pub fn landlock_abi() -> io::Result<u32> {
    // SAFETY: NULL attr with size 0 and the VERSION flag is the documented query.
    cvt(unsafe { syscall(NR_LANDLOCK_CREATE_RULESET, std::ptr::null::<c_void>(), 0 as usize, LANDLOCK_CREATE_RULESET_VERSION) })
        .map(|v| v as u32)
}

/// Creates a ruleset; `size` is how many bytes of `attr` this ABI knows.
pub fn landlock_create_ruleset(attr: &LandlockRulesetAttr, size: usize) -> io::Result<OwnedFd> {
    let size = size.min(std::mem::size_of::<LandlockRulesetAttr>());
    // SAFETY: attr is valid for `size` bytes (clamped to its real size).
    cvt_fd(unsafe { syscall(NR_LANDLOCK_CREATE_RULESET, attr as *const LandlockRulesetAttr, size, 0 as c_uint) })
}

pub fn landlock_add_path_rule(ruleset: RawFd, parent: RawFd, allowed: u64) -> io::Result<()> {
    let a = LandlockPathBeneathAttr { allowed_access: allowed, parent_fd: parent };
    // SAFETY: `a` is a valid packed landlock_path_beneath_attr read by the kernel.
    cvt(unsafe { syscall(NR_LANDLOCK_ADD_RULE, ruleset as c_long, LANDLOCK_RULE_PATH_BENEATH, &a as *const LandlockPathBeneathAttr, 0 as c_uint) })
        .map(|_| ())
}

pub fn landlock_restrict_self(ruleset: RawFd) -> io::Result<()> {
    // SAFETY: integer arguments only.
    cvt(unsafe { syscall(NR_LANDLOCK_RESTRICT_SELF, ruleset as c_long, 0 as c_uint) }).map(|_| ())
}

/// open(path, O_PATH|O_CLOEXEC): a handle for Landlock rules.
pub fn open_path(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated.
    cvt_fd(unsafe { open(path.as_ptr(), O_PATH | O_CLOEXEC) } as c_long)
}

/// open(path, O_PATH|O_NOFOLLOW|O_CLOEXEC): pins the inode at PATH without
/// following a symlink in the last component.
pub fn open_path_nofollow(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated.
    cvt_fd(unsafe { open(path.as_ptr(), O_PATH | O_CLOEXEC | O_NOFOLLOW) } as c_long)
}

// ---- process helpers for the probes ----

/// Runs `f` in a forked child and returns its exit status (or 128+signal).
/// The child never returns into the caller's code: it `_exit`s with `f`'s
/// result. Only for single-threaded callers (the probe sub-command).
pub fn fork_run(f: impl FnOnce() -> i32) -> io::Result<i32> {
    // SAFETY: the probe process is single-threaded, so the child may run
    // ordinary Rust code; it leaves through _exit and never unwinds back.
    let pid = unsafe { fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let code = f();
        // SAFETY: terminating the child without running the parent's atexit handlers.
        unsafe { _exit(code) }
    }
    wait_pid(pid)
}

/// Like `fork_run` but returns the child's pid at once.
pub fn fork_spawn(f: impl FnOnce() -> i32) -> io::Result<i32> {
    // SAFETY: as in fork_run; the child leaves through _exit.
    let pid = unsafe { fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let code = f();
        // SAFETY: terminating the child without returning into the caller.
        unsafe { _exit(code) }
    }
    Ok(pid)
}

pub fn wait_pid(pid: i32) -> io::Result<i32> {
    let mut st: c_int = 0;
    loop {
        // SAFETY: `st` is a valid out-pointer.
        let r = unsafe { waitpid(pid, &mut st, 0) };
        if r >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(4) {
            return Err(e);
        }
    }
    if st & 0x7f == 0 {
        Ok((st >> 8) & 0xff)
    } else {
        Ok(128 + (st & 0x7f))
    }
}

pub fn sys_unshare(flags: i32) -> io::Result<()> {
    // SAFETY: integer argument only.
    cvt(unsafe { unshare(flags) } as c_long).map(|_| ())
}

pub fn sys_mount(src: &CStr, dst: &CStr, fstype: &CStr, flags: u64) -> io::Result<()> {
    // SAFETY: all strings are NUL-terminated; no data argument.
    cvt(unsafe { mount(src.as_ptr(), dst.as_ptr(), fstype.as_ptr(), flags as c_ulong, std::ptr::null()) } as c_long).map(|_| ())
}

pub fn sys_socket(domain: i32, ty: i32, proto: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    cvt_fd(unsafe { socket(domain, ty, proto) } as c_long)
}

pub fn ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { (getuid(), getgid()) }
}

/// A raw syscall with integer arguments, returning the result or errno. Used
/// by the probes and the unit tests to issue the exact call a filter judges.
pub fn raw_syscall6(n: i64, a: [u64; 6]) -> Result<i64, i32> {
    // SAFETY: callers pass only integer arguments or pointers to memory they
    // own (the tests); the kernel validates everything else.
    let r = unsafe { syscall(n as c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as i64)
    }
}
