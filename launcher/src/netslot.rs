//! Network namespaces that the spawn server keeps for the commands of one
//! `Sandbox`, lent to one launcher at a time.
//!
//! Creating a network namespace and tearing it down costs about 1.5 ms of
//! CPU (`copy_net_ns`, then `cleanup_net` in a kworker): a fifth of a whole
//! run. A namespace with only `lo` up holds nothing of a command once every
//! process of that command is gone, so the server keeps a few and lends one
//! to each launcher. What makes that safe:
//! * The namespace belongs to a user namespace U made with exactly the ids
//!   the launcher would map (the key). The launcher joins U instead of
//!   creating its own, then creates its ipc, uts, cgroup, mount and pid
//!   namespaces inside U as before; the command drops every capability in
//!   U, so it can change nothing of the namespace (no address, route,
//!   sysctl or filter) that the next command would find. As real root
//!   without `--unshare-user` there is no U, as before.
//! * A namespace is lent to one launcher at a time, and comes back only
//!   when that launcher says (`C`, once everything else of its run is
//!   over) that the run ended cleanly: PID 1 had killed and reaped every
//!   process of the sandbox (or was reaped itself) and the relay, whose
//!   listeners live in the namespace, had finished (reaped, or a kept
//!   relay's `D`). A launcher that dies any other way never says so, and
//!   its namespace is dropped: a process of the old command might still be
//!   there.
//! * A slot for runs with relays (and no published ports) has its own
//!   relay too, bound once: the launcher starts and ends each command there
//!   (`relay::serve_slot`), and the relay finishes every connection of a
//!   command, also those still in a backlog, before it says the command is
//!   done; it polls no listener between commands. A connection is thus
//!   never carried under another command's token. The key includes the
//!   relay's ports and host socket, so a run never meets listeners it did
//!   not ask for.

use crate::args::RunConfig;
use crate::sys;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};

/// Which user namespace (if any) and which relay a run needs; runs with the
/// same key can share a network namespace.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Key {
    /// `Some((uid, gid))` inside a user namespace mapping them to our ids.
    pub userns: Option<(u32, u32)>,
    /// The relay's host socket and ports, when the slot keeps a relay.
    pub relay: Option<(OsString, Vec<u16>)>,
}

impl Key {
    /// None when the run keeps the host's network or passes descriptors
    /// through (a lent descriptor must never be one of them).
    pub fn of(cfg: &RunConfig) -> Option<Key> {
        if cfg.share_net || !cfg.keep_fds.is_empty() {
            return None;
        }
        let ids = sys::ids();
        let userns = (ids.uid != 0 || cfg.unshare_user).then(|| (cfg.uid.unwrap_or(ids.euid), cfg.gid.unwrap_or(ids.egid)));
        // Published ports are per command (their host socket paths are): such
        // a run brings its own relay into the lent namespace.
        let relay = (!cfg.relay_ports.is_empty() && cfg.publish.is_empty()).then(|| (cfg.relay_socket.clone().unwrap_or_default(), cfg.relay_ports.clone()));
        Some(Key { userns, relay })
    }
}

/// The namespaces of one slot: U (None as real root without a user
/// namespace) and the network namespace, as nsfs descriptors; and the
/// control socket of its relay, if it keeps one.
pub struct Ns {
    pub user: Option<OwnedFd>,
    pub net: OwnedFd,
    pub relay: Option<OwnedFd>,
}

/// A slot as the server holds it: also a pidfd of its relay, to end a relay
/// that could be stuck in a connection when the slot is dropped.
pub struct Kept {
    pub ns: Ns,
    pub relay_pid: Option<OwnedFd>,
}

impl Kept {
    pub fn discard(self) {
        if let Some(p) = &self.relay_pid {
            let _ = sys::filter::pidfd_signal(p, sys::SIGKILL);
        }
    }
}

/// What a launcher started by the spawn server gets: the namespaces lent
/// to it (if any) and its end of the notice channel (SOCK_SEQPACKET) to
/// the server, which carries `C` when the namespaces may be lent again
/// (see the module comment) and, as the launcher's last act, `X` with its
/// exit status once it holds none of the command's streams any more.
pub struct Lent {
    pub ns: Option<Ns>,
    pub notice: OwnedFd,
}

impl Lent {
    pub fn raw_fds(&self) -> Vec<i32> {
        let ns = self.ns.iter().flat_map(|n| n.user.iter().chain([&n.net]).chain(n.relay.iter()));
        ns.chain([&self.notice]).map(|f| f.as_raw_fd()).collect()
    }
}

/// The run ended cleanly: its namespaces may be lent again.
pub fn give_back(notice: &OwnedFd) {
    let _ = sys::send_msg(notice, b"C", None, None);
}

/// The launcher is done (its exit status follows).
pub fn say_done(notice: &OwnedFd, code: i32) {
    let _ = sys::send_msg(notice, &[[b'X'].as_slice(), &code.to_ne_bytes()].concat(), None, None);
}

/// What the server read on a notice channel.
pub enum Notice {
    Clean,
    Done(i32),
    /// Something it does not know (ignored).
    Other,
    /// Every copy of the launcher's end is closed (or the channel broke).
    Closed,
}

/// The next notice; None when nothing is queued (never blocks).
pub fn read_notice(notice: &OwnedFd) -> Option<Notice> {
    let mut b = [0u8; 8];
    match sys::recv_msg(notice, &mut b, true) {
        Ok(m) if m.len == 1 && b[0] == b'C' => Some(Notice::Clean),
        Ok(m) if m.len == 5 && b[0] == b'X' => Some(Notice::Done(i32::from_ne_bytes(b[1..5].try_into().expect("4 bytes")))),
        Ok(m) if m.len == 0 => Some(Notice::Closed),
        Ok(_) => Some(Notice::Other),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(_) => Some(Notice::Closed),
    }
}

/// Writes the id maps of a user namespace the caller has just created:
/// `uid`/`gid` inside are `outer`'s effective ids (read before the
/// unshare: inside, unmapped, they read as the overflow ids).
pub fn write_id_maps(uid: u32, gid: u32, outer: &sys::Ids) -> std::io::Result<()> {
    write_file(c"/proc/self/setgroups", "deny")?;
    write_file(c"/proc/self/uid_map", &format!("{uid} {} 1\n", outer.euid))?;
    write_file(c"/proc/self/gid_map", &format!("{gid} {} 1\n", outer.egid))
}

fn write_file(path: &std::ffi::CStr, data: &str) -> std::io::Result<()> {
    let fd = sys::open_at(sys::AT_FDCWD, path, sys::O_WRONLY, 0)?;
    sys::write_all_fd(fd.as_raw_fd(), data.as_bytes())
}

/// Makes a slot's namespaces in a child (the server itself must keep its
/// own), which then exits or, for a slot with a relay, becomes that relay
/// (a child of the server: it dies with it). Errors come back as text for
/// the caller to drop: a run without a slot makes its namespaces itself and
/// reports any failure.
pub fn make(key: &Key) -> Result<Kept, String> {
    let (ours, theirs) = sys::seqpacket_pair().map_err(|e| sys::errno_text(&e))?;
    let me = sys::pid();
    let pid = match sys::fork_process().map_err(|e| sys::errno_text(&e))? {
        0 => {
            let _ = sys::set_pdeathsig(sys::SIGKILL);
            if sys::ppid() != me {
                sys::exit_now(1);
            }
            let _ = sys::close_fds_except(3, &[theirs.as_raw_fd()]);
            if make_here(key, &theirs).is_err() {
                sys::exit_now(1);
            }
            match &key.relay {
                Some((socket, ports)) => crate::relay::serve_slot(socket.into(), ports, theirs),
                None => sys::exit_now(0),
            }
        }
        pid => pid,
    };
    drop(theirs);
    // Its pid stays ours until we reap it, so this pidfd names it.
    let relay_pid = match key.relay {
        Some(_) => Some(sys::filter::pidfd_open(pid).map_err(|e| sys::errno_text(&e))?),
        None => None,
    };
    let got = receive(&ours, key);
    if key.relay.is_none() || got.is_err() {
        if let Some(p) = &relay_pid {
            let _ = sys::filter::pidfd_signal(p, sys::SIGKILL);
        }
        let _ = sys::wait_pid(pid, false);
    }
    let (user, net) = got?;
    Ok(Kept { ns: Ns { user, net, relay: key.relay.as_ref().map(|_| ours) }, relay_pid })
}

/// The maker's messages: `U` (with a user namespace), `N`, then `R` when
/// its relay listens.
fn receive(from: &OwnedFd, key: &Key) -> Result<(Option<OwnedFd>, OwnedFd), String> {
    let mut buf = [0u8; 4];
    let mut next = || match sys::recv_msg(from, &mut buf, false) {
        Ok(m) if m.len == 1 => Ok((buf[0], m.fds.into_iter().next())),
        Ok(_) => Err("could not make the namespaces".to_string()),
        Err(e) => Err(sys::errno_text(&e)),
    };
    let user = match key.userns {
        Some(_) => match next()? {
            (b'U', Some(fd)) => Some(fd),
            _ => return Err("unexpected message".into()),
        },
        None => None,
    };
    let net = match next()? {
        (b'N', Some(fd)) => fd,
        _ => return Err("unexpected message".into()),
    };
    if key.relay.is_some() && !matches!(next()?, (b'R', None)) {
        return Err("unexpected message".into());
    }
    Ok((user, net))
}

fn make_here(key: &Key, to: &OwnedFd) -> std::io::Result<()> {
    if let Some((uid, gid)) = key.userns {
        // Writing our own id maps needs a dumpable process (the server is not).
        sys::set_dumpable(true)?;
        let outer = sys::ids();
        sys::unshare_ns(sys::CLONE_NEWUSER)?;
        write_id_maps(uid, gid, &outer)?;
        let user = sys::open_at(sys::AT_FDCWD, c"/proc/self/ns/user", sys::O_RDONLY, 0)?;
        sys::send_msg(to, b"U", Some(user.as_raw_fd()), None)?;
    }
    sys::unshare_ns(sys::CLONE_NEWNET)?;
    sys::loopback_up()?;
    let net = sys::open_at(sys::AT_FDCWD, c"/proc/self/ns/net", sys::O_RDONLY, 0)?;
    sys::send_msg(to, b"N", Some(net.as_raw_fd()), None)
}
