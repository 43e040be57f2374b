//! Raw calls of the spawn server (serve.rs): who is on the other end of an
//! accepted socket, and a send that never blocks the server's loop.

use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

extern "C" {
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut u32) -> c_int;
    fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
}

const SOL_SOCKET: c_int = 1;
const SO_PEERCRED: c_int = 17;
const MSG_DONTWAIT: c_int = 0x40;
const MSG_NOSIGNAL: c_int = 0x4000;

#[repr(C)]
#[derive(Default)]
struct UCred {
    pid: i32,
    uid: u32,
    gid: u32,
}

/// The pid and uid of the process that connected a Unix stream socket,
/// recorded by the kernel at connect() time (a peer cannot choose them).
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<(i32, u32)> {
    let mut c = UCred::default();
    let mut len = std::mem::size_of::<UCred>() as u32;
    // SAFETY: c is a live ucred-sized buffer and len holds its size; the
    // descriptor is borrowed, hence open.
    let r = unsafe { getsockopt(fd.as_raw_fd(), SOL_SOCKET, SO_PEERCRED, &mut c as *mut UCred as *mut c_void, &mut len) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((c.pid, c.uid))
}

/// send(2) that neither blocks nor raises SIGPIPE; a short or refused send
/// is the caller's to judge.
pub fn send_nowait(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a live buffer of buf.len() bytes; the descriptor is
        // borrowed, hence open.
        let r = unsafe { send(fd.as_raw_fd(), buf.as_ptr() as *const c_void, buf.len(), MSG_DONTWAIT | MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
