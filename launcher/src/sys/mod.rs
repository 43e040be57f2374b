//! The only place with raw syscalls and FFI. Every wrapper turns the C error
//! convention into `io::Result`, so the rest of the launcher is safe Rust.
//! Submodules belong to other parts of the launcher (security layers, relay);
//! this file holds what the core (namespaces, mounts, PID 1, hygiene) needs.

#![allow(dead_code)]

pub mod filter;
pub mod relay;
pub mod serve;

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::{c_char, c_int, c_long, c_uint, c_ulong, c_void};
use std::os::unix::ffi::OsStrExt;

extern "C" {
    fn syscall(n: c_long, ...) -> c_long;
    fn prctl(option: c_int, a2: c_ulong, a3: c_ulong, a4: c_ulong, a5: c_ulong) -> c_int;
    fn ioctl(fd: c_int, req: c_ulong, ...) -> c_int;
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(code: c_int) -> !;
    fn unshare(flags: c_int) -> c_int;
    fn mount(src: *const c_char, dst: *const c_char, fstype: *const c_char, flags: c_ulong, data: *const c_void) -> c_int;
    fn umount2(target: *const c_char, flags: c_int) -> c_int;
    fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    fn socketpair(domain: c_int, ty: c_int, proto: c_int, sv: *mut c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: u32) -> c_int;
    fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize;
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
    fn getuid() -> c_uint;
    fn geteuid() -> c_uint;
    fn getgid() -> c_uint;
    fn getegid() -> c_uint;
    fn getpid() -> c_int;
    fn getppid() -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn setsid() -> c_int;
    fn setpgid(pid: c_int, pgid: c_int) -> c_int;
    fn sethostname(name: *const c_char, len: usize) -> c_int;
    fn setresuid(r: c_uint, e: c_uint, s: c_uint) -> c_int;
    fn setresgid(r: c_uint, e: c_uint, s: c_uint) -> c_int;
    fn setgroups(n: usize, list: *const c_uint) -> c_int;
    fn chdir(path: *const c_char) -> c_int;
    fn fchdir(fd: c_int) -> c_int;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn openat(dirfd: c_int, path: *const c_char, flags: c_int, ...) -> c_int;
    fn mkdirat(dirfd: c_int, path: *const c_char, mode: c_uint) -> c_int;
    fn symlinkat(target: *const c_char, dirfd: c_int, path: *const c_char) -> c_int;
    fn readlinkat(dirfd: c_int, path: *const c_char, buf: *mut c_char, len: usize) -> isize;
    fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn poll(fds: *mut PollFd, n: c_ulong, timeout: c_int) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, sig: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut SigInfo) -> c_int;
    fn signalfd(fd: c_int, set: *const SigSet, flags: c_int) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
    fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    fn strerror_r(errnum: c_int, buf: *mut c_char, n: usize) -> *mut c_char;
}

mod nr {
    // The mount API, openat2 and close_range use the generic numbers on
    // every architecture.
    pub const OPEN_TREE: i64 = 428;
    pub const MOVE_MOUNT: i64 = 429;
    pub const FSOPEN: i64 = 430;
    pub const FSCONFIG: i64 = 431;
    pub const FSMOUNT: i64 = 432;
    pub const CLONE3: i64 = 435;
    #[cfg(target_arch = "x86_64")]
    pub const CLONE: i64 = 56;
    #[cfg(target_arch = "aarch64")]
    pub const CLONE: i64 = 220;
    pub const CLOSE_RANGE: i64 = 436;
    pub const OPENAT2: i64 = 437;
    pub const MOUNT_SETATTR: i64 = 442;
    #[cfg(target_arch = "x86_64")]
    pub const PIVOT_ROOT: i64 = 155;
    #[cfg(target_arch = "aarch64")]
    pub const PIVOT_ROOT: i64 = 41;
    #[cfg(target_arch = "x86_64")]
    pub const CAPSET: i64 = 126;
    #[cfg(target_arch = "aarch64")]
    pub const CAPSET: i64 = 91;
}

// ---- constants -----------------------------------------------------------

pub const CLONE_NEWNS: i32 = 0x0002_0000;
pub const CLONE_NEWCGROUP: i32 = 0x0200_0000;
pub const CLONE_NEWUTS: i32 = 0x0400_0000;
pub const CLONE_NEWIPC: i32 = 0x0800_0000;
pub const CLONE_NEWUSER: i32 = 0x1000_0000;
pub const CLONE_NEWPID: i32 = 0x2000_0000;
pub const CLONE_NEWNET: i32 = 0x4000_0000;

pub const O_RDONLY: i32 = 0;
pub const O_WRONLY: i32 = 1;
pub const O_RDWR: i32 = 2;
pub const O_CREAT: i32 = 0o100;
pub const O_EXCL: i32 = 0o200;
pub const O_NOCTTY: i32 = 0o400;
pub const O_NONBLOCK: i32 = 0o4000;
#[cfg(target_arch = "x86_64")]
pub const O_DIRECTORY: i32 = 0o200000;
#[cfg(target_arch = "x86_64")]
pub const O_NOFOLLOW: i32 = 0o400000;
#[cfg(target_arch = "aarch64")]
pub const O_DIRECTORY: i32 = 0o40000;
#[cfg(target_arch = "aarch64")]
pub const O_NOFOLLOW: i32 = 0o100000;
pub const O_CLOEXEC: i32 = 0o2000000;
pub const O_PATH: i32 = 0o10000000;
pub const AT_FDCWD: i32 = -100;
pub const AT_REMOVEDIR: i32 = 0x200;
pub const AT_EMPTY_PATH: u32 = 0x1000;
pub const AT_RECURSIVE: u32 = 0x8000;

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = O_CLOEXEC as u32;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

const MS_REC: c_ulong = 16384;
const MS_SLAVE: c_ulong = 1 << 19;
const MNT_DETACH: c_int = 2;

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGUSR2: i32 = 12;
pub const SIGPIPE: i32 = 13;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGWINCH: i32 = 28;
/// The signals PID 1 and the launcher pass on to the command.
pub const FORWARDED: [i32; 7] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];

const PR_SET_PDEATHSIG: c_int = 1;
const PR_SET_DUMPABLE: c_int = 4;
const PR_SET_NAME: c_int = 15;
const PR_CAPBSET_DROP: c_int = 24;
const PR_SET_CHILD_SUBREAPER: c_int = 36;
const PR_SET_NO_NEW_PRIVS: c_int = 38;
const PR_CAP_AMBIENT: c_int = 47;
const PR_CAP_AMBIENT_CLEAR_ALL: c_ulong = 4;

const WNOHANG: c_int = 1;
const SIG_BLOCK: c_int = 0;
const SIG_SETMASK: c_int = 2;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
const SFD_CLOEXEC: c_int = O_CLOEXEC;

const AF_UNIX: c_int = 1;
const AF_INET: c_int = 2;
const SOCK_DGRAM: c_int = 2;
const SOCK_SEQPACKET: c_int = 5;
const SOCK_CLOEXEC: c_int = O_CLOEXEC;
const SOL_SOCKET: c_int = 1;
const SO_PASSCRED: c_int = 16;
const SCM_RIGHTS: c_int = 1;
const SCM_CREDENTIALS: c_int = 2;
const MSG_DONTWAIT: c_int = 0x40;
const MSG_NOSIGNAL: c_int = 0x4000;
const MSG_CMSG_CLOEXEC: c_int = 0x4000_0000;

const SIOCGIFFLAGS: c_ulong = 0x8913;
const SIOCSIFFLAGS: c_ulong = 0x8914;
const IFF_UP: i16 = 0x1;

const F_GETFD: c_int = 1;

pub const POLLIN: i16 = 0x1;
pub const POLLHUP: i16 = 0x10;

// ---- small helpers -------------------------------------------------------

fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_l(r: c_long) -> io::Result<c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: c_long) -> io::Result<OwnedFd> {
    let fd = cvt_l(r)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(22))
}

/// The kernel's text for an errno ("No such file or directory"), without the
/// "(os error N)" suffix that `io::Error`'s Display adds.
pub fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let mut buf = [0 as c_char; 128];
            // SAFETY: buf is writable for its whole length; glibc's GNU
            // strerror_r returns a pointer to a NUL-terminated string (either
            // into buf or a static table), valid until the next call.
            let p = unsafe { strerror_r(n, buf.as_mut_ptr(), buf.len()) };
            if p.is_null() {
                return format!("errno {n}");
            }
            // SAFETY: see above: p points to a NUL-terminated string.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
        None => e.to_string(),
    }
}

// ---- identity and process control ---------------------------------------

pub struct Ids {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

pub fn ids() -> Ids {
    // SAFETY: these calls take no arguments and cannot fail.
    unsafe { Ids { uid: getuid(), euid: geteuid(), gid: getgid(), egid: getegid() } }
}

pub fn pid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { getpid() }
}

pub fn ppid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { getppid() }
}

pub fn set_pdeathsig(sig: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    cvt(unsafe { prctl(PR_SET_PDEATHSIG, sig as c_ulong, 0, 0, 0) }).map(drop)
}

/// Orphaned descendants are re-parented to us (and must be reaped by us).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

pub fn set_dumpable(on: bool) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    cvt(unsafe { prctl(PR_SET_DUMPABLE, on as c_ulong, 0, 0, 0) }).map(drop)
}

/// Sets the name `ps` and /proc/PID/comm show (at most 15 bytes are kept).
pub fn set_name(name: &CStr) -> io::Result<()> {
    // SAFETY: a NUL-terminated string that outlives the call.
    cvt(unsafe { prctl(PR_SET_NAME, name.as_ptr() as c_ulong, 0, 0, 0) }).map(drop)
}

pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    cvt(unsafe { prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

/// Empties the bounding and ambient capability sets (needs CAP_SETPCAP, so
/// it comes before any uid change).
pub fn drop_cap_bounding() -> io::Result<()> {
    for cap in 0..64u64 {
        // SAFETY: plain integer arguments.
        let r = unsafe { prctl(PR_CAPBSET_DROP, cap as c_ulong, 0, 0, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(22) {
                break; // past the kernel's last capability
            }
            return Err(e);
        }
    }
    // SAFETY: plain integer arguments. EINVAL means no ambient support: nothing to clear.
    let r = unsafe { prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    if r < 0 && io::Error::last_os_error().raw_os_error() != Some(22) {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clears the effective, permitted and inheritable capability sets.
pub fn clear_caps() -> io::Result<()> {
    #[repr(C)]
    struct Hdr {
        version: u32,
        pid: i32,
    }
    let hdr = Hdr { version: 0x2008_0522, pid: 0 };
    let data = [0u32; 6];
    // SAFETY: header and two zeroed _LINUX_CAPABILITY_VERSION_3 data structs
    // (3 u32 each) live for the duration of the call.
    cvt_l(unsafe { syscall(nr::CAPSET, &hdr as *const Hdr, data.as_ptr()) }).map(drop)
}

/// fork(2). Returns 0 in the child, the child's pid in the parent.
/// The launcher is single-threaded, so the child may run arbitrary code.
pub fn fork_process() -> io::Result<i32> {
    // SAFETY: the launcher never starts threads, so the child inherits a
    // consistent address space (no lock held by a vanished thread).
    cvt(unsafe { fork() })
}

/// fork(2) into a new pid namespace (clone3 with CLONE_NEWPID): the child
/// is its PID 1, while our later children stay in our pid namespace (an
/// unshare(CLONE_NEWPID) would send them all into the new one).
pub fn fork_new_pidns() -> io::Result<i32> {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let args = CloneArgs { flags: CLONE_NEWPID as u64, pidfd: 0, child_tid: 0, parent_tid: 0, exit_signal: SIGCHLD as u64, stack: 0, stack_size: 0, tls: 0 };
    // SAFETY: as fork() (see fork_process): no stack given, so the child
    // continues on a copy of ours; the launcher never starts threads. glibc's
    // fork handlers do not run, which nothing here relies on (bubblewrap
    // starts its PID 1 the same way); the struct is the clone3 v0 layout
    // and its size is passed with it.
    match cvt_l(unsafe { syscall(nr::CLONE3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) }) {
        // Some container seccomp profiles answer ENOSYS to every clone3 so
        // that libc falls back to clone: so do we.
        Err(e) if e.raw_os_error() == Some(38) => {
            // SAFETY: as above; clone with no stack and every pointer
            // argument zero (their order differs between architectures).
            cvt_l(unsafe { syscall(nr::CLONE, (CLONE_NEWPID as c_long) | SIGCHLD as c_long, 0 as c_long, 0 as c_long, 0 as c_long, 0 as c_long) }).map(|r| r as i32)
        }
        r => r.map(|r| r as i32),
    }
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { _exit(code) }
}

pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

fn decode_status(st: c_int) -> WaitStatus {
    if st & 0x7f == 0 {
        WaitStatus::Exited((st >> 8) & 0xff)
    } else {
        WaitStatus::Signaled(st & 0x7f)
    }
}

/// waitpid; `Ok(None)` when `nohang` and nothing changed. EINTR is retried.
pub fn wait_pid(pid: i32, nohang: bool) -> io::Result<Option<(i32, WaitStatus)>> {
    loop {
        let mut st: c_int = 0;
        // SAFETY: st is a valid out pointer.
        let r = unsafe { waitpid(pid, &mut st, if nohang { WNOHANG } else { 0 }) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        return Ok(Some((r, decode_status(st))));
    }
}

pub fn send_signal(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    cvt(unsafe { kill(pid, sig) }).map(drop)
}

pub fn new_session() -> io::Result<()> {
    // SAFETY: no arguments.
    cvt(unsafe { setsid() }).map(drop)
}

pub fn own_process_group() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    cvt(unsafe { setpgid(0, 0) }).map(drop)
}

/// Joins the namespace of kind `nstype` (a CLONE_NEW* flag) behind `ns`.
pub fn join_ns(ns: &OwnedFd, nstype: i32) -> io::Result<()> {
    relay::join_ns(ns.as_fd(), nstype)
}

pub fn unshare_ns(flags: i32) -> io::Result<()> {
    // SAFETY: plain integer argument.
    cvt(unsafe { unshare(flags) }).map(drop)
}

pub fn set_hostname(name: &[u8]) -> io::Result<()> {
    // SAFETY: pointer and length describe a live slice.
    cvt(unsafe { sethostname(name.as_ptr() as *const c_char, name.len()) }).map(drop)
}

pub fn switch_ids(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: an empty group list (null pointer, length 0) and plain integers.
    cvt(unsafe { setgroups(0, std::ptr::null()) })?;
    // SAFETY: plain integer arguments.
    cvt(unsafe { setresgid(gid, gid, gid) })?;
    // SAFETY: plain integer arguments.
    cvt(unsafe { setresuid(uid, uid, uid) }).map(drop)
}

pub fn change_dir(path: &CStr) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    cvt(unsafe { chdir(path.as_ptr()) }).map(drop)
}

pub fn change_dir_fd(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fd is a live descriptor.
    cvt(unsafe { fchdir(fd.as_raw_fd()) }).map(drop)
}

/// execve; only returns on failure.
pub fn exec(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: all strings are NUL-terminated and outlive the call; both
    // arrays are NULL-terminated.
    unsafe { execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

/// Closes every descriptor >= `from` except those in `keep` (sorted or not).
pub fn close_fds_except(from: i32, keep: &[i32]) -> io::Result<()> {
    let mut keep: Vec<i32> = keep.iter().copied().filter(|&k| k >= from).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = from as u32;
    for k in keep {
        let k = k as u32;
        if k > lo {
            close_range(lo, k - 1)?;
        }
        lo = k + 1;
    }
    close_range(lo, u32::MAX)
}

fn close_range(lo: u32, hi: u32) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; the caller no longer uses them.
    cvt_l(unsafe { syscall(nr::CLOSE_RANGE, lo as c_uint, hi as c_uint, 0 as c_uint) }).map(drop)
}

pub fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags.
    unsafe { fcntl(fd, F_GETFD) >= 0 }
}

pub fn clear_cloexec(fd: i32) -> io::Result<()> {
    // SAFETY: F_SETFD (2) with 0 clears FD_CLOEXEC on a descriptor we own.
    cvt(unsafe { fcntl(fd, 2, 0 as c_int) }).map(drop)
}

pub fn dup_to(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptors owned by this process.
    cvt(unsafe { dup2(old, new) }).map(drop)
}

pub fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for two descriptors.
    cvt(unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) })?;
    // SAFETY: the kernel just created both descriptors for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a live slice.
        let r = unsafe { write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(r as usize);
    }
}

pub fn write_all_fd(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write_fd(fd, buf)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(5));
        }
        buf = &buf[n..];
    }
    Ok(())
}

pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a live, writable slice.
        let r = unsafe { read(fd, buf.as_mut_ptr() as *mut c_void, buf.len()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(r as usize);
    }
}

// ---- signals -------------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy)]
pub struct SigSet([u64; 16]);

#[repr(C)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    _rest: [u8; 116],
}

pub fn sigset(sigs: &[i32]) -> SigSet {
    let mut s = SigSet([0; 16]);
    // SAFETY: s is a valid sigset_t-sized buffer (glibc's is 128 bytes).
    unsafe { sigemptyset(&mut s) };
    for &sig in sigs {
        // SAFETY: as above; sig is a valid signal number.
        unsafe { sigaddset(&mut s, sig) };
    }
    s
}

pub fn block_signals(set: &SigSet) -> io::Result<()> {
    // SAFETY: set is a valid sigset; old set not requested.
    cvt(unsafe { sigprocmask(SIG_BLOCK, set, std::ptr::null_mut()) }).map(drop)
}

pub fn unblock_all_signals() -> io::Result<()> {
    let empty = sigset(&[]);
    // SAFETY: empty is a valid sigset.
    cvt(unsafe { sigprocmask(SIG_SETMASK, &empty, std::ptr::null_mut()) }).map(drop)
}

/// Waits for one signal of `set` (which must be blocked). EINTR retried.
pub fn wait_signal(set: &SigSet) -> io::Result<i32> {
    loop {
        // SAFETY: SigInfo is at least as large as the kernel's siginfo_t (128 bytes).
        let mut info: SigInfo = unsafe { std::mem::zeroed() };
        // SAFETY: set and info are valid for the call.
        let r = unsafe { sigwaitinfo(set, &mut info) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(r);
    }
}

pub fn signal_fd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: set is valid; -1 asks for a new descriptor.
    fd_from(unsafe { signalfd(-1, set, SFD_CLOEXEC | O_NONBLOCK) } as c_long)
}

/// Reads one signal number from a signalfd, `None` when none is pending.
pub fn read_signal_fd(fd: &OwnedFd) -> io::Result<Option<i32>> {
    let mut buf = [0u8; 128];
    match read_fd(fd.as_raw_fd(), &mut buf) {
        Ok(128) => Ok(Some(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as i32)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn ignore_signal(sig: i32) {
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { signal(sig, SIG_IGN) };
}

pub fn default_signal(sig: i32) {
    // SAFETY: SIG_DFL installs no handler code.
    unsafe { signal(sig, SIG_DFL) };
}

#[repr(C)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

/// poll(2); timeout in ms, -1 for none. EINTR reported as Ok(0).
pub fn poll_fds(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a live array of pollfd structs.
    let r = unsafe { poll(fds.as_mut_ptr(), fds.len() as c_ulong, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

// ---- sockets with ancillary data ----------------------------------------

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    namelen: u32,
    iov: *mut IoVec,
    iovlen: usize,
    control: *mut c_void,
    controllen: usize,
    flags: c_int,
}

#[repr(C)]
struct CmsgHdr {
    len: usize,
    level: c_int,
    ty: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct UCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

const CMSG_HDR: usize = std::mem::size_of::<CmsgHdr>();

/// A SOCK_SEQPACKET pair: message boundaries kept, EOF when the peer is gone.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut sv = [0 as c_int; 2];
    // SAFETY: sv has room for two descriptors.
    cvt(unsafe { socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv.as_mut_ptr()) })?;
    // SAFETY: the kernel just created both descriptors for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) })
}

pub fn set_passcred(fd: &OwnedFd) -> io::Result<()> {
    let one: c_int = 1;
    // SAFETY: option value points to a live c_int of the given size.
    cvt(unsafe { setsockopt(fd.as_raw_fd(), SOL_SOCKET, SO_PASSCRED, &one as *const c_int as *const c_void, 4) }).map(drop)
}

/// Sends one message, optionally with one descriptor (SCM_RIGHTS) or with
/// credentials naming `cred_pid` (SCM_CREDENTIALS: the kernel translates the
/// pid into the receiver's pid namespace).
pub fn send_msg(sock: &OwnedFd, data: &[u8], fd: Option<RawFd>, cred_pid: Option<i32>) -> io::Result<()> {
    let mut iov = IoVec { base: data.as_ptr() as *mut c_void, len: data.len() };
    let mut ctrl = [0u64; 8]; // 64 bytes, 8-aligned: room for one cmsg
    let mut msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: std::ptr::null_mut(),
        controllen: 0,
        flags: 0,
    };
    let payload: Vec<u8> = if let Some(fd) = fd {
        fd.to_ne_bytes().to_vec()
    } else if let Some(p) = cred_pid {
        let ids = ids();
        let c = UCred { pid: p, uid: ids.euid, gid: ids.egid };
        let mut v = Vec::new();
        v.extend_from_slice(&c.pid.to_ne_bytes());
        v.extend_from_slice(&c.uid.to_ne_bytes());
        v.extend_from_slice(&c.gid.to_ne_bytes());
        v
    } else {
        Vec::new()
    };
    if !payload.is_empty() {
        let ty = if fd.is_some() { SCM_RIGHTS } else { SCM_CREDENTIALS };
        let len = CMSG_HDR + payload.len();
        let bytes = ctrl.as_mut_ptr() as *mut u8;
        let hdr = CmsgHdr { len, level: SOL_SOCKET, ty };
        // SAFETY: ctrl is 64 bytes, 8-aligned; header (16) + payload (<= 12) fit.
        unsafe {
            std::ptr::write(bytes as *mut CmsgHdr, hdr);
            std::ptr::copy_nonoverlapping(payload.as_ptr(), bytes.add(CMSG_HDR), payload.len());
        }
        msg.control = bytes as *mut c_void;
        msg.controllen = (len + 7) & !7;
    }
    loop {
        // SAFETY: msg points to live iovec and control buffers for the call.
        let r = unsafe { sendmsg(sock.as_raw_fd(), &msg, MSG_NOSIGNAL) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(());
    }
}

pub struct Received {
    pub len: usize,
    /// Every descriptor that came with the message (SCM_RIGHTS), in order.
    pub fds: Vec<OwnedFd>,
    pub cred: Option<UCred>,
}

/// Receives one message; `len == 0` with no ancillary data means EOF.
pub fn recv_msg(sock: &OwnedFd, buf: &mut [u8], nonblock: bool) -> io::Result<Received> {
    let mut iov = IoVec { base: buf.as_mut_ptr() as *mut c_void, len: buf.len() };
    let mut ctrl = [0u64; 16];
    let mut msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: ctrl.as_mut_ptr() as *mut c_void,
        controllen: std::mem::size_of_val(&ctrl),
        flags: 0,
    };
    let flags = MSG_CMSG_CLOEXEC | if nonblock { MSG_DONTWAIT } else { 0 };
    let n = loop {
        // SAFETY: msg points to live buffers for the call.
        let r = unsafe { recvmsg(sock.as_raw_fd(), &mut msg, flags) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        break r as usize;
    };
    let mut out = Received { len: n, fds: Vec::new(), cred: None };
    let bytes = ctrl.as_ptr() as *const u8;
    let mut off = 0usize;
    while off + CMSG_HDR <= msg.controllen {
        // SAFETY: off + header lies within the control buffer the kernel filled.
        let h: CmsgHdr = unsafe { std::ptr::read(bytes.add(off) as *const CmsgHdr) };
        if h.len < CMSG_HDR || off + h.len > msg.controllen {
            break;
        }
        // SAFETY: the payload [off+16, off+h.len) lies within the filled buffer.
        let data = unsafe { std::slice::from_raw_parts(bytes.add(off + CMSG_HDR), h.len - CMSG_HDR) };
        if h.level == SOL_SOCKET && h.ty == SCM_RIGHTS {
            for chunk in data.chunks_exact(4) {
                let fd = i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                // SAFETY: the kernel installed this descriptor for us.
                out.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        } else if h.level == SOL_SOCKET && h.ty == SCM_CREDENTIALS && data.len() >= 12 {
            let g = |i: usize| [data[i], data[i + 1], data[i + 2], data[i + 3]];
            out.cred = Some(UCred { pid: i32::from_ne_bytes(g(0)), uid: u32::from_ne_bytes(g(4)), gid: u32::from_ne_bytes(g(8)) });
        }
        off += (h.len + 7) & !7;
    }
    Ok(out)
}

// ---- network -------------------------------------------------------------

/// Sets IFF_UP on `lo` in the current network namespace.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    let s = fd_from(unsafe { socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) } as c_long)?;
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: i16,
        _pad: [u8; 22],
    }
    let mut req = IfReq { name: [0; 16], flags: 0, _pad: [0; 22] };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: req is a 40-byte struct ifreq, valid for the call.
    cvt(unsafe { ioctl(s.as_raw_fd(), SIOCGIFFLAGS, &mut req as *mut IfReq) })?;
    req.flags |= IFF_UP;
    // SAFETY: as above.
    cvt(unsafe { ioctl(s.as_raw_fd(), SIOCSIFFLAGS, &mut req as *mut IfReq) }).map(drop)
}

// ---- files ---------------------------------------------------------------

pub fn open_at(dir: RawFd, path: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: path is NUL-terminated; mode is only read with O_CREAT.
    fd_from(unsafe { openat(dir, path.as_ptr(), flags | O_CLOEXEC, mode as c_uint) } as c_long)
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) with RESOLVE_* flags.
pub fn open_at2(dir: RawFd, path: &CStr, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow { flags: (flags | O_CLOEXEC) as u32 as u64, mode: 0, resolve };
    loop {
        // SAFETY: path is NUL-terminated; how is a live open_how of the size passed.
        let r = unsafe { syscall(nr::OPENAT2, dir, path.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>()) };
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(11) {
            continue; // EAGAIN: a concurrent rename raced the lookup; retry
        }
        return fd_from(r);
    }
}

pub fn mkdir_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: name is NUL-terminated.
    cvt(unsafe { mkdirat(dir, name.as_ptr(), mode) }).map(drop)
}

pub fn symlink_at(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated.
    cvt(unsafe { symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

pub fn readlink_at(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: buf is writable for its length.
    let n = unsafe { readlinkat(dir, name.as_ptr(), buf.as_mut_ptr() as *mut c_char, buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn unlink_at(dir: RawFd, name: &CStr, is_dir: bool) -> io::Result<()> {
    // SAFETY: name is NUL-terminated.
    cvt(unsafe { unlinkat(dir, name.as_ptr(), if is_dir { AT_REMOVEDIR } else { 0 }) }).map(drop)
}

// ---- mounts --------------------------------------------------------------

/// Makes every mount in this (new) namespace a slave, so nothing we mount
/// propagates back to the host.
pub fn make_rslave_root() -> io::Result<()> {
    let root = c"/";
    // SAFETY: NUL-terminated strings or null pointers as mount(2) allows.
    cvt(unsafe { mount(std::ptr::null(), root.as_ptr(), std::ptr::null(), MS_REC | MS_SLAVE, std::ptr::null()) }).map(drop)
}

/// open_tree(OPEN_TREE_CLONE|AT_RECURSIVE): a detached copy of the mount
/// tree at `dir`/`path` (empty path: `dir` itself).
pub fn clone_tree(dir: RawFd, path: &CStr, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    if path.is_empty() {
        flags |= AT_EMPTY_PATH;
    }
    // SAFETY: path is NUL-terminated.
    fd_from(unsafe { syscall(nr::OPEN_TREE, dir, path.as_ptr(), flags as c_uint) })
}

/// mount_setattr: sets `attrs` on the mount (tree) `fd`, clearing nothing,
/// so flags the kernel locked stay as they are.
pub fn set_mount_attrs(fd: &OwnedFd, attrs: u64, recursive: bool) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        set: u64,
        clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let a = MountAttr { set: attrs, clr: 0, propagation: 0, userns_fd: 0 };
    let mut flags = AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: empty NUL-terminated path; a is a live mount_attr of the size passed.
    cvt_l(unsafe { syscall(nr::MOUNT_SETATTR, fd.as_raw_fd(), c"".as_ptr(), flags as c_uint, &a as *const MountAttr, std::mem::size_of::<MountAttr>()) })
        .map(drop)
}

/// move_mount: attaches the detached mount `from` on top of the object `to`.
pub fn attach_mount(from: &OwnedFd, to: RawFd) -> io::Result<()> {
    // SAFETY: both paths are empty NUL-terminated strings; fds are live.
    cvt_l(unsafe { syscall(nr::MOVE_MOUNT, from.as_raw_fd(), c"".as_ptr(), to, c"".as_ptr(), (MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) as c_uint) })
        .map(drop)
}

/// Creates a detached filesystem mount: fsopen + fsconfig + fsmount.
/// `opts` are (key, value) strings; a `None` value sets a flag option.
pub fn new_fs(fstype: &CStr, opts: &[(&CStr, Option<&CStr>)], attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: fstype is NUL-terminated.
    let fsfd = fd_from(unsafe { syscall(nr::FSOPEN, fstype.as_ptr(), FSOPEN_CLOEXEC as c_uint) })?;
    for (k, v) in opts {
        let r = match v {
            // SAFETY: key and value are NUL-terminated.
            Some(v) => unsafe { syscall(nr::FSCONFIG, fsfd.as_raw_fd(), FSCONFIG_SET_STRING as c_uint, k.as_ptr(), v.as_ptr(), 0 as c_int) },
            // SAFETY: key is NUL-terminated; value must be null for a flag.
            None => unsafe { syscall(nr::FSCONFIG, fsfd.as_raw_fd(), FSCONFIG_SET_FLAG as c_uint, k.as_ptr(), std::ptr::null::<c_char>(), 0 as c_int) },
        };
        cvt_l(r)?;
    }
    // SAFETY: null key/value for a command, as fsconfig(2) requires.
    cvt_l(unsafe { syscall(nr::FSCONFIG, fsfd.as_raw_fd(), FSCONFIG_CMD_CREATE as c_uint, std::ptr::null::<c_char>(), std::ptr::null::<c_char>(), 0 as c_int) })?;
    // SAFETY: integer arguments on a live fs context descriptor.
    fd_from(unsafe { syscall(nr::FSMOUNT, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC as c_uint, attrs as c_uint) })
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: both paths are NUL-terminated.
    cvt_l(unsafe { syscall(nr::PIVOT_ROOT, new_root.as_ptr(), put_old.as_ptr()) }).map(drop)
}

pub fn detach_mount(path: &CStr) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    cvt(unsafe { umount2(path.as_ptr(), MNT_DETACH) }).map(drop)
}

// ---- stat ----------------------------------------------------------------

extern "C" {
    fn statx(dirfd: c_int, path: *const c_char, flags: c_int, mask: c_uint, buf: *mut u8) -> c_int;
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub nlink: u32,
    pub ino: u64,
    pub size: u64,
    pub dev: u64,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
    pub fn is_reg(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
}

/// statx of `dir`/`name` without following a final symlink (empty name:
/// `dir` itself).
pub fn stat_at(dir: RawFd, name: &CStr) -> io::Result<Stat> {
    let mut buf = [0u8; 256];
    let mut flags: c_int = 0x100; // AT_SYMLINK_NOFOLLOW
    if name.is_empty() {
        flags |= AT_EMPTY_PATH as c_int;
    }
    // SAFETY: buf is a 256-byte struct statx buffer; name is NUL-terminated.
    cvt(unsafe { statx(dir, name.as_ptr(), flags, 0x7ff, buf.as_mut_ptr()) })?;
    let u16_at = |o: usize| u16::from_ne_bytes([buf[o], buf[o + 1]]);
    let u32_at = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_ne_bytes(buf[o..o + 8].try_into().unwrap());
    let (maj, min) = (u32_at(136) as u64, u32_at(140) as u64);
    Ok(Stat { mode: u16_at(28) as u32, nlink: u32_at(16), ino: u64_at(32), size: u64_at(40), dev: (maj << 32) | min })
}

pub fn stat_fd(fd: &OwnedFd) -> io::Result<Stat> {
    stat_at(fd.as_raw_fd(), c"")
}

/// The inode number of /proc/self/ns/NAME: two equal numbers mean the same
/// namespace.
pub fn ns_ino(name: &str) -> io::Result<u64> {
    let p = CString::new(format!("/proc/self/ns/{name}")).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: as in stat_at; following the nsfs magic link is the point.
    cvt(unsafe { statx(AT_FDCWD, p.as_ptr(), 0, 0x7ff, buf.as_mut_ptr()) })?;
    Ok(u64::from_ne_bytes(buf[32..40].try_into().unwrap()))
}

/// A pidfd for this very process (pidfd_open(getpid())): pollable from any
/// pid namespace, readable once the process has fully exited.
pub fn pidfd_self() -> io::Result<OwnedFd> {
    // SAFETY: integer arguments; the kernel returns a new descriptor.
    fd_from(unsafe { syscall(434, getpid() as c_long, 0 as c_uint) })
}

/// Sends one message with up to four descriptors (SCM_RIGHTS).
pub fn send_fds(sock: &OwnedFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > 4 {
        return Err(io::Error::from_raw_os_error(22));
    }
    let mut iov = IoVec { base: data.as_ptr() as *mut c_void, len: data.len() };
    let mut ctrl = [0u64; 8];
    let len = CMSG_HDR + 4 * fds.len();
    let bytes = ctrl.as_mut_ptr() as *mut u8;
    let hdr = CmsgHdr { len, level: SOL_SOCKET, ty: SCM_RIGHTS };
    // SAFETY: ctrl is 64 bytes, 8-aligned; header (16) + at most 16 bytes of fds fit.
    unsafe {
        std::ptr::write(bytes as *mut CmsgHdr, hdr);
        for (i, fd) in fds.iter().enumerate() {
            std::ptr::copy_nonoverlapping(fd.to_ne_bytes().as_ptr(), bytes.add(CMSG_HDR + 4 * i), 4);
        }
    }
    let msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: bytes as *mut c_void,
        controllen: (len + 7) & !7,
        flags: 0,
    };
    loop {
        // SAFETY: msg points to live iovec and control buffers for the call.
        let r = unsafe { sendmsg(sock.as_raw_fd(), &msg, MSG_NOSIGNAL) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(());
    }
}

extern "C" {
    fn flock(fd: c_int, op: c_int) -> c_int;
    fn fsetxattr(fd: c_int, name: *const c_char, value: *const c_void, size: usize, flags: c_int) -> c_int;
    fn fgetxattr(fd: c_int, name: *const c_char, value: *mut c_void, size: usize) -> isize;
    fn fchmod(fd: c_int, mode: c_uint) -> c_int;
}

pub const LOCK_SH: i32 = 1;
pub const LOCK_EX: i32 = 2;
pub const LOCK_NB: i32 = 4;

/// flock(2); EINTR retried.
pub fn lock_fd(fd: &OwnedFd, op: i32) -> io::Result<()> {
    loop {
        // SAFETY: integer arguments on a live descriptor.
        let r = unsafe { flock(fd.as_raw_fd(), op) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(());
    }
}

pub fn set_xattr(fd: &OwnedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; value is a live slice.
    cvt(unsafe { fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr() as *const c_void, value.len(), 0) }).map(drop)
}

/// The value of extended attribute `name` (at most 64 bytes).
pub fn get_xattr(fd: &OwnedFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 64];
    // SAFETY: buf is writable for its length; name is NUL-terminated.
    let n = unsafe { fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr() as *mut c_void, buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buf[..n as usize].to_vec())
}

pub fn chmod_fd(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    // SAFETY: integer arguments on a live descriptor.
    cvt(unsafe { fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// Zeroes this process's argument strings in memory: /proc/PID/cmdline is
/// readable by anyone who can see the pid (no ptrace check), and the
/// launcher's argv carries secrets such as --relay-token. Call only after
/// the arguments were parsed (std reads them from that memory).
pub fn wipe_cmdline() -> io::Result<()> {
    let bad = || io::Error::from_raw_os_error(22);
    let stat = std::fs::read("/proc/self/stat")?;
    let close = stat.iter().rposition(|&b| b == b')').ok_or_else(bad)?;
    let rest = std::str::from_utf8(stat.get(close + 2..).ok_or_else(bad)?).map_err(|_| bad())?;
    let f: Vec<&str> = rest.split(' ').collect();
    // Fields 48 and 49 of stat(5) (arg_start, arg_end); field 3 is f[0].
    let start: usize = f.get(45).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let end: usize = f.get(46).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    if start == 0 || end <= start || end - start > (1 << 21) {
        return Err(bad());
    }
    // SAFETY: [arg_start, arg_end) is this process's own argument area on
    // its initial stack, mapped writable; no Rust reference points into it
    // (std keeps raw pointers and the arguments were already copied out).
    unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
    // A name for ps inside the sandbox (the area is at least this long: it
    // held "cordon-launcher run ...").
    let name = b"cordon-launcher";
    if end - start > name.len() {
        // SAFETY: the same area, name.len() < its length.
        unsafe { std::ptr::copy_nonoverlapping(name.as_ptr(), start as *mut u8, name.len()) };
    }
    Ok(())
}
