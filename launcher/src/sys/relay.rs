//! Raw calls used by the network relay and the `connect` sub-command
//! (relay.rs, connect.rs). Every function here is a safe wrapper: callers
//! never touch raw descriptors or FFI.

use std::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};

extern "C" {
    fn splice(fd_in: c_int, off_in: *mut i64, fd_out: c_int, off_out: *mut i64, len: usize, flags: c_uint) -> isize;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn prctl(option: c_int, arg2: c_ulong, arg3: c_ulong, arg4: c_ulong, arg5: c_ulong) -> c_int;
    fn umask(mask: c_uint) -> c_uint;
    fn getrlimit(resource: c_int, rlim: *mut RLimit) -> c_int;
    fn setrlimit(resource: c_int, rlim: *const RLimit) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn eventfd(initval: c_uint, flags: c_int) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
    fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize;
    fn setns(fd: c_int, nstype: c_int) -> c_int;
}

#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}

const O_CLOEXEC: c_int = 0o2000000;
const F_SETPIPE_SZ: c_int = 1031;
const PR_SET_DUMPABLE: c_int = 4;
const RLIMIT_NOFILE: c_int = 7;
const SIGPIPE: c_int = 13;
const SIG_IGN: usize = 1;
/// Move pages instead of copying when the kernel can.
pub const SPLICE_F_MOVE: c_uint = 1;

fn check(r: c_long) -> io::Result<c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Makes this process non-dumpable: no core dumps, and processes of the same
/// uid (the sandboxed command, if it ever shared our user namespace) cannot
/// ptrace it or open its /proc/PID/fd.
pub fn set_non_dumpable() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes only integer arguments and
    // touches no memory of ours.
    let r = unsafe { prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) };
    check(r as c_long).map(|_| ())
}

/// Sets the process umask and returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask(2) takes an integer and cannot fail.
    unsafe { umask(mask) }
}

/// Writing to a peer that has gone away must be an EPIPE error, not a
/// process-killing signal (the relay serves many connections at once).
pub fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN involves no handler code of ours; the
    // previous disposition (returned) is not needed.
    unsafe {
        signal(SIGPIPE, SIG_IGN);
    }
}

/// Raises the soft descriptor limit to the hard limit: each relayed
/// connection holds two sockets and two pipes, and the default soft limit
/// (1024) would cap a busy relay at ~250 connections.
pub fn raise_nofile_limit() {
    let mut lim = RLimit { cur: 0, max: 0 };
    // SAFETY: `lim` is a valid, writable RLimit with the kernel's layout.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut lim) } == 0 && lim.cur < lim.max {
        lim.cur = lim.max;
        // SAFETY: `lim` is a valid RLimit; a failure leaves the limit as it was.
        unsafe {
            setrlimit(RLIMIT_NOFILE, &lim);
        }
    }
}

/// A pipe used as the in-kernel buffer between two sockets for splice(2).
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

impl Pipe {
    /// A close-on-exec pipe of `size` bytes, or the largest power-of-two
    /// fraction of it down to `min` that the kernel grants (pipe-max-size
    /// and the per-user pipe budget may refuse). Below `min` it fails: once
    /// a user's budget is spent, new pipes get two pages, and splicing
    /// through those is slower than a plain copy.
    pub fn new(size: usize, min: usize) -> io::Result<Pipe> {
        let mut fds = [-1 as c_int; 2];
        // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
        check(unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } as c_long)?;
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by
        // nobody else; each is wrapped exactly once.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut want = size;
        let mut err = io::Error::from(io::ErrorKind::InvalidInput);
        while want >= min {
            // SAFETY: F_SETPIPE_SZ takes an int argument; the fd is ours and open.
            if unsafe { fcntl(write.as_raw_fd(), F_SETPIPE_SZ, want as c_int) } >= 0 {
                return Ok(Pipe { read, write });
            }
            err = io::Error::last_os_error();
            want /= 2;
        }
        Err(err)
    }
}

/// splice(2) without offsets: moves up to `len` bytes from `from` to `to`,
/// one of which must be a pipe. Blocks as the descriptors do. Returns 0 at
/// end of input.
pub fn splice_fds(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize, flags: c_uint) -> io::Result<usize> {
    loop {
        // SAFETY: both descriptors are borrowed, hence open for the call;
        // null offsets mean "use the file position", which sockets and pipes
        // require.
        let r = unsafe {
            splice(from.as_raw_fd(), std::ptr::null_mut(), to.as_raw_fd(), std::ptr::null_mut(), len, flags)
        };
        match check(r as c_long) {
            Ok(n) => return Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

const EFD_CLOEXEC: c_int = 0o2000000;
const EFD_NONBLOCK: c_int = 0o4000;
const MSG_DONTWAIT: c_int = 0x40;

/// An eventfd used to wake a thread blocked in poll(2) (the relay's
/// negotiation loop waits on the client socket and on this).
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes only integer arguments.
        let fd = check(unsafe { eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) } as c_long)?;
        // SAFETY: eventfd succeeded, so the descriptor is open and ours alone.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd as c_int) }))
    }

    /// Makes the descriptor readable until `clear`.
    pub fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our own descriptor;
        // a full counter (EAGAIN) still leaves it readable, which is all we need.
        unsafe {
            write(self.0.as_raw_fd(), one.as_ptr() as *const c_void, one.len());
        }
    }

    pub fn clear(&self) {
        let mut b = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live 8-byte buffer; non-blocking.
        unsafe {
            read(self.0.as_raw_fd(), b.as_mut_ptr() as *mut c_void, b.len());
        }
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// recv(2) with MSG_DONTWAIT: Ok(0) is end of input, WouldBlock means
/// nothing is queued right now. The descriptor itself stays blocking, so
/// other threads may still write to it normally.
pub fn recv_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a live, writable buffer of buf.len() bytes; the
        // descriptor is borrowed, hence open.
        let r = unsafe { recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut c_void, buf.len(), MSG_DONTWAIT) };
        match check(r as c_long) {
            Ok(n) => return Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

static TAKEN_STDIO: AtomicU8 = AtomicU8::new(0);

/// Takes ownership of standard descriptor `fd` (0, 1 or 2) so that dropping
/// the result really closes it (needed to pass an end-of-file on stdout to
/// the reader: a dup would keep it open). Returns None if `fd` is not a
/// standard descriptor, is not open, or was already taken.
pub fn take_stdio(fd: RawFd) -> Option<OwnedFd> {
    if !(0..=2).contains(&fd) {
        return None;
    }
    let bit = 1u8 << fd;
    if TAKEN_STDIO.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
        return None;
    }
    // SAFETY: F_GETFD only queries whether the descriptor is open.
    if unsafe { fcntl(fd, 1 /* F_GETFD */) } < 0 {
        return None;
    }
    // SAFETY: the descriptor is open, and the atomic bit above guarantees
    // this is the only OwnedFd ever made for it. std's Stdin/Stdout handles
    // tolerate a closed descriptor (they report EBADF, they never close it).
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves the calling process into the network namespace `ns` refers to (an
/// nsfs descriptor); CLONE_NEWNET makes the kernel refuse any other kind.
pub fn join_netns(ns: BorrowedFd<'_>) -> io::Result<()> {
    join_ns(ns, super::CLONE_NEWNET)
}

/// Moves the calling process into the namespace `ns` refers to; `nstype`
/// (a CLONE_NEW* flag) makes the kernel refuse a namespace of another kind.
pub fn join_ns(ns: BorrowedFd<'_>, nstype: c_int) -> io::Result<()> {
    // SAFETY: plain integer arguments; the descriptor is live for the call.
    check(unsafe { setns(ns.as_raw_fd(), nstype) } as c_long).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn splice_moves_bytes_through_a_grown_pipe() {
        let pipe = Pipe::new(1 << 20, 128 * 1024).unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        let (c, mut d) = UnixStream::pair().unwrap();
        a.write_all(b"through the pipe").unwrap();
        drop(a);
        let n = splice_fds(b.as_fd(), pipe.write.as_fd(), 1 << 20, SPLICE_F_MOVE).unwrap();
        assert_eq!(n, 16);
        assert_eq!(splice_fds(pipe.read.as_fd(), c.as_fd(), n, SPLICE_F_MOVE).unwrap(), 16);
        assert_eq!(splice_fds(b.as_fd(), pipe.write.as_fd(), 1 << 20, SPLICE_F_MOVE).unwrap(), 0, "end of input");
        drop(c);
        let mut got = String::new();
        d.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the pipe");
        assert!(Pipe::new(1 << 20, 4 << 20).is_err(), "a minimum above the request cannot be met");
    }

    #[test]
    fn take_stdio_only_standard_descriptors() {
        assert!(take_stdio(3).is_none());
        assert!(take_stdio(-1).is_none());
    }
}
