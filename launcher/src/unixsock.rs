//! The supervisor for `--allow-unix-socket PATH`: the command's connect()
//! calls arrive here as seccomp user notifications, and the supervisor
//! performs each connect itself on a duplicate of the caller's socket.
//!
//! Why not check and then let the kernel continue the call: the sockaddr lives
//! in the target's memory, and another thread of the target can rewrite it
//! between our check and the kernel's copy (TOCTOU). So the address is read
//! once, judged, and the copy is what gets connected. The duplicate (from
//! pidfd_getfd) shares the open file description with the caller's fd, so
//! the caller's socket ends up connected, and O_NONBLOCK/EINPROGRESS behave
//! as if the caller had connected itself.
//!
//! This process lives outside the sandbox's mount namespace, so an allowed
//! path is resolved on the host, never through the sandbox's view. Each
//! allowed socket is pinned (O_PATH, final component not a symlink, must be
//! a socket) before the command starts, and connects go to that inode via
//! /proc/self/fd: a sandbox that can write near the allowed path cannot swap
//! in a symlink to another socket (docker.sock) during the run.

use crate::args::{RunConfig, UnixSockets};
use crate::sys::filter as sys;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

const AF_UNSPEC: u16 = 0;
const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const AF_NETLINK: u16 = 16;
const SOCKADDR_STORAGE: usize = 128;
const SUN_PATH_MAX: usize = 108;

const EPERM: i32 = 1;
const EACCES: i32 = 13;
const EFAULT: i32 = 14;
const EINVAL: i32 = 22;
const EAFNOSUPPORT: i32 = 97;

/// What to do with one connect() address, decided on our private copy.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// connect the duplicate to these sockaddr bytes
    Connect(Vec<u8>),
    /// connect the duplicate to allowed socket number i (its pinned inode)
    Unix(usize),
    /// fail the call with this errno
    Fail(i32),
}

/// Judges a sockaddr copied from the target (exactly `addrlen` bytes).
#[cfg(test)]
pub fn judge(addr: &[u8], allowed: &[Vec<u8>]) -> Verdict {
    let refs: Vec<&[u8]> = allowed.iter().map(|a| a.as_slice()).collect();
    judge_refs(addr, &refs)
}

/// Judges a sockaddr copied from the target against the allowed paths.
fn judge_refs(addr: &[u8], allowed: &[&[u8]]) -> Verdict {
    if addr.len() < 2 {
        return Verdict::Fail(EINVAL);
    }
    if addr.len() > SOCKADDR_STORAGE {
        return Verdict::Fail(EINVAL);
    }
    let family = u16::from_ne_bytes([addr[0], addr[1]]);
    match family {
        AF_UNIX => {
            let raw = &addr[2..];
            // Unnamed (no path) and abstract (leading NUL) sockets are never
            // host files an allowlist can name.
            if raw.is_empty() || raw[0] == 0 {
                return Verdict::Fail(EACCES);
            }
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            let path = &raw[..end];
            if path.len() >= SUN_PATH_MAX {
                return Verdict::Fail(EACCES);
            }
            match allowed.iter().position(|a| *a == path) {
                Some(i) => Verdict::Unix(i),
                None => Verdict::Fail(EACCES),
            }
        }
        // The netns decides where these go; the kernel checks that the
        // family matches the socket. AF_UNSPEC dissolves an association.
        AF_INET | AF_INET6 | AF_UNSPEC | AF_NETLINK => Verdict::Connect(addr.to_vec()),
        _ => Verdict::Fail(EAFNOSUPPORT),
    }
}

fn reply(listener: RawFd, id: u64, err: i32) {
    let resp = sys::SeccompNotifResp { id, val: 0, error: if err == 0 { 0 } else { -err }, flags: 0 };
    // ENOENT: the caller was interrupted or died meanwhile; nothing to tell.
    let _ = sys::notif_send(listener, &resp);
}

/// Handles one notification: copy the address once, duplicate the socket,
/// connect the duplicate, answer with the result.
/// An allowed socket as pinned at start: its descriptor, or the errno a
/// client should see (ENOENT: it did not exist; EACCES: not a socket, or a
/// symlink in the last component).
pub struct Pinned {
    pub path: Vec<u8>,
    pub fd: Result<OwnedFd, i32>,
}

pub fn pin(path: &[u8]) -> Pinned {
    use std::os::unix::fs::FileTypeExt;
    let fd = (|| {
        let c = std::ffi::CString::new(path).map_err(|_| EINVAL)?;
        let fd = sys::open_path_nofollow(&c).map_err(|e| e.raw_os_error().unwrap_or(EACCES))?;
        let f = std::fs::File::from(fd);
        match f.metadata() {
            Ok(m) if m.file_type().is_socket() => Ok(OwnedFd::from(f)),
            _ => Err(EACCES),
        }
    })();
    Pinned { path: path.to_vec(), fd }
}

/// sockaddr_un for "/proc/self/fd/N": connect() follows the magic link to
/// exactly the pinned socket inode.
fn pinned_addr(fd: RawFd) -> Vec<u8> {
    let mut out = AF_UNIX.to_ne_bytes().to_vec();
    out.extend_from_slice(format!("/proc/self/fd/{fd}").as_bytes());
    out.push(0);
    out
}

fn handle(listener: RawFd, n: sys::SeccompNotif, allowed: &[Pinned]) {
    if n.data.nr as u32 != crate::seccomp::nr::CONNECT {
        return reply(listener, n.id, EPERM);
    }
    let pid = n.pid as i32;
    let target_fd = n.data.args[0] as i32;
    let addr_ptr = n.data.args[1];
    let addr_len = (n.data.args[2] as u32) as usize;
    if !(2..=SOCKADDR_STORAGE).contains(&addr_len) {
        return reply(listener, n.id, EINVAL);
    }
    // Open the pidfd before validating the id: if the id is still valid
    // afterwards, the pid had not been reused when the pidfd was taken.
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(_) => return reply(listener, n.id, EPERM),
    };
    let mut buf = vec![0u8; addr_len];
    let read = sys::process_vm_read(pid, addr_ptr, &mut buf);
    if !sys::notif_id_valid(listener, n.id) {
        return;
    }
    match read {
        Ok(k) if k == addr_len => {}
        _ => return reply(listener, n.id, EFAULT),
    }
    let paths: Vec<&[u8]> = allowed.iter().map(|p| p.path.as_slice()).collect();
    let to = match judge_refs(&buf, &paths) {
        Verdict::Fail(e) => return reply(listener, n.id, e),
        Verdict::Connect(a) => a,
        Verdict::Unix(i) => match &allowed[i].fd {
            Ok(fd) => pinned_addr(fd.as_raw_fd()),
            Err(e) => return reply(listener, n.id, *e),
        },
    };
    let dup: OwnedFd = match sys::pidfd_getfd(pidfd.as_raw_fd(), target_fd) {
        Ok(fd) => fd,
        Err(e) => return reply(listener, n.id, e.raw_os_error().unwrap_or(9)),
    };
    let err = sys::connect_raw(dup.as_raw_fd(), &to);
    drop(dup);
    reply(listener, n.id, err);
}

/// Serves connect() notifications until every process of the sandbox is
/// gone (the listener hangs up), then exits. Never returns.
#[allow(dead_code)] // the contract's entry point; the launcher pins earlier via pin_all + serve
pub fn supervise(listener: OwnedFd, cfg: &RunConfig) -> ! {
    if let Err(e) = harden() {
        eprintln!("cordon-launcher: unix socket supervisor: {e}");
        std::process::exit(125);
    }
    serve(listener, pin_all(cfg))
}

/// Non-dumpable (the sandbox cannot ptrace or read our memory even if it
/// found our pid) and under the supervisor's seccomp filter. The launcher
/// calls this first thing in the forked supervisor, before the sandbox exists.
pub fn harden() -> Result<(), String> {
    sys::set_dumpable(false).map_err(|e| format!("dumpable: {e}"))?;
    crate::seccomp::install_supervisor_filter()
}

/// Pins every allowed socket. The launcher calls this before the sandbox
/// exists, so nothing the command does can influence what gets pinned.
pub fn pin_all(cfg: &RunConfig) -> Vec<Pinned> {
    match &cfg.unix_sockets {
        UnixSockets::Only(v) => v.iter().map(|p| pin(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))).collect(),
        _ => Vec::new(),
    }
}

/// `supervise` after `harden`, with sockets pinned earlier by `pin_all`.
pub fn serve(listener: OwnedFd, allowed: Vec<Pinned>) -> ! {
    let allowed = Arc::new(allowed);
    let fd = listener.as_raw_fd();
    loop {
        match sys::wait_readable(fd) {
            Ok(true) => {}
            Ok(false) => std::process::exit(0),
            Err(e) => {
                eprintln!("cordon-launcher: unix socket supervisor: poll: {e}");
                std::process::exit(125);
            }
        }
        let n = match sys::notif_recv(fd) {
            Ok(n) => n,
            // EINTR, or ENOENT: the caller went away before we received it.
            Err(e) if matches!(e.raw_os_error(), Some(4) | Some(2)) => continue,
            Err(e) => {
                eprintln!("cordon-launcher: unix socket supervisor: receive: {e}");
                std::process::exit(125);
            }
        };
        // One thread per call: a connect can block (full backlog, slow
        // handshake) and must not hold up the other threads of the sandbox.
        let allowed = Arc::clone(&allowed);
        let spawned = std::thread::Builder::new().stack_size(128 * 1024).spawn(move || handle(fd, n, &allowed));
        if spawned.is_err() {
            reply(fd, n.id, 11); // EAGAIN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(path: &[u8]) -> Vec<u8> {
        let mut v = AF_UNIX.to_ne_bytes().to_vec();
        v.extend_from_slice(path);
        v
    }

    #[test]
    fn judges_unix_paths_exactly() {
        let allowed = vec![b"/run/a.sock".to_vec()];
        assert_eq!(judge(&un(b"/run/a.sock\0"), &allowed), Verdict::Unix(0));
        assert_eq!(judge(&un(b"/run/a.sock"), &allowed), Verdict::Unix(0), "no NUL within addrlen");
        assert_eq!(judge(&un(b"/run/a.sock\0garbage"), &allowed), Verdict::Unix(0));
        assert_eq!(judge(&un(b"/run/b.sock\0"), &allowed), Verdict::Fail(EACCES));
        assert_eq!(judge(&un(b"/run//a.sock\0"), &allowed), Verdict::Fail(EACCES));
        assert_eq!(judge(&un(b"run/a.sock\0"), &allowed), Verdict::Fail(EACCES));
        assert_eq!(judge(&un(b"\0/run/a.sock"), &allowed), Verdict::Fail(EACCES), "abstract");
        assert_eq!(judge(&un(b""), &allowed), Verdict::Fail(EACCES));
        assert_eq!(judge(&[1], &allowed), Verdict::Fail(EINVAL));
        assert_eq!(judge(&[0u8; 200], &allowed), Verdict::Fail(EINVAL));
    }

    #[test]
    fn notif_structs_match_the_kernel() {
        let (notif, resp, data) = sys::seccomp_notif_sizes().unwrap();
        assert_eq!(notif as usize, std::mem::size_of::<sys::SeccompNotif>());
        assert_eq!(resp as usize, std::mem::size_of::<sys::SeccompNotifResp>());
        assert_eq!(data as usize, std::mem::size_of::<sys::SeccompData>());
    }

    #[test]
    fn inet_passes_other_families_fail() {
        let mut v4 = AF_INET.to_ne_bytes().to_vec();
        v4.extend_from_slice(&[0x0c, 0x38, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(judge(&v4, &[]), Verdict::Connect(v4.clone()));
        let mut vs = 40u16.to_ne_bytes().to_vec();
        vs.extend_from_slice(&[0; 14]);
        assert_eq!(judge(&vs, &[]), Verdict::Fail(EAFNOSUPPORT));
    }
}

#[cfg(test)]
mod live {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    /// End to end with the real kernel: a filtered child connects to an
    /// allowed and a refused host socket; a forked supervisor answers.
    #[test]
    fn supervisor_connects_only_allowed_paths() {
        let dir = std::env::temp_dir().join(format!("cordon-us-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.sock");
        let b = dir.join("b.sock");
        let la = UnixListener::bind(&a).unwrap();
        let _lb = UnixListener::bind(&b).unwrap();
        // An allowed path that is a symlink to another socket is refused.
        let lnk = dir.join("link.sock");
        std::os::unix::fs::symlink(&b, &lnk).unwrap();
        let cfg = RunConfig { unix_sockets: UnixSockets::Only(vec![a.clone().into_os_string(), lnk.clone().into_os_string()]), ..Default::default() };
        let (p0, p1) = UnixStream::pair().unwrap();
        let sup = sys::fork_spawn(|| {
            let l = match sys::recv_fd(p1.as_raw_fd()) {
                Ok(l) => l,
                Err(_) => return 20,
            };
            supervise(l, &cfg)
        })
        .unwrap();
        let cfg2 = cfg.clone();
        let child = sys::fork_run(|| {
            let l = match crate::seccomp::install_command_filter(&cfg2) {
                Ok(Some(l)) => l,
                _ => return 10,
            };
            if sys::send_fd(p0.as_raw_fd(), l.as_raw_fd()).is_err() {
                return 11;
            }
            drop(l);
            if UnixStream::connect(&a).is_err() {
                return 12;
            }
            match UnixStream::connect(&b) {
                Err(e) if e.raw_os_error() == Some(EACCES) => {}
                _ => return 13,
            }
            match UnixStream::connect(&lnk) {
                Err(e) if e.raw_os_error() == Some(EACCES) => {}
                _ => return 15,
            }
            match std::net::TcpStream::connect("127.0.0.1:1") {
                Err(e) if e.raw_os_error() == Some(111) => 0,
                _ => 14,
            }
        })
        .unwrap();
        let accepted = { la.set_nonblocking(true).unwrap(); la.accept().is_ok() };
        drop((p0, p1));
        let sup_code = sys::wait_pid(sup).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(child, 0);
        assert!(accepted, "the allowed socket saw the connection");
        assert_eq!(sup_code, 0, "supervisor exits when the filter has no users");
    }
}
