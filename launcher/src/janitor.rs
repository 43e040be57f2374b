//! The janitor: a tiny process forked before any namespace exists, outside
//! the sandbox, not tied to the caller's life (no PDEATHSIG, own session).
//! PID 1 tells it about every placeholder it creates or adopts on a host
//! filesystem (parent directory descriptor + name + dev/ino, and for mount
//! points a descriptor holding the name's in-use marker, see
//! `mounts::in_use`). When the last holder of the other end of its socket
//! is gone (launcher and PID 1 ended, however: exit, crash, kill -9), it
//! removes exactly those placeholders that are still the same inode, still
//! empty and not in use by a concurrent sandbox, newest first. That is what
//! keeps `--mask` of a missing path from leaving ghost files on the host.

use crate::mounts::{lock_bounded, marker_offset, parse_records, Kind, MSG_MAX};
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

struct Record {
    parent: Rc<OwnedFd>,
    /// (dev, ino) of the parent directory: with it, (dev, ino, name) says
    /// which directory entry this is.
    pdev: u64,
    pino: u64,
    kind: Kind,
    dev: u64,
    ino: u64,
    name: CString,
}

pub fn main(sock: OwnedFd) -> ! {
    // Terminal signals go to the foreground group; the janitor must outlive
    // a Ctrl-C long enough to clean up, so it leaves the session and ignores them.
    let _ = sys::new_session();
    for s in sys::FORWARDED {
        sys::ignore_signal(s);
    }
    sys::ignore_signal(sys::SIGPIPE);
    let _ = sys::set_dumpable(false);
    // Hold none of the caller's descriptors (its pipes would otherwise stay
    // open until the janitor ends).
    if let Ok(null) = sys::open_at(sys::AT_FDCWD, c"/dev/null", sys::O_RDWR, 0) {
        for fd in 0..3 {
            let _ = sys::dup_to(null.as_raw_fd(), fd);
        }
    }
    let _ = sys::close_fds_except(3, &[sock.as_raw_fd()]);
    crate::security_helper_filter();

    let mut recs: Vec<Record> = Vec::new();
    // Descriptors holding our in-use markers, by inode. All are kept while
    // PID 1 lives (each holds the markers of the names it was sent with).
    let mut held: Vec<(u64, u64, OwnedFd)> = Vec::new();
    let mut pid1: Option<OwnedFd> = None;
    let mut buf = [0u8; MSG_MAX + 104];
    loop {
        match sys::recv_msg(&sock, &mut buf, false) {
            Ok(r) if r.len == 0 && r.fds.is_empty() => break, // EOF: every sender is gone
            Ok(r) if &buf[..r.len] == b"p" => pid1 = r.fds.into_iter().next(),
            Ok(r) => {
                let mut fds = r.fds.into_iter();
                let (Some(parent), Some(list)) = (fds.next(), parse_records(&buf[..r.len])) else { continue };
                if let Some(fd) = fds.next() {
                    held.push((list[0].1, list[0].2, fd));
                }
                let Ok(pst) = sys::stat_fd(&parent) else { continue };
                let parent = Rc::new(parent);
                for (kind, dev, ino, name) in list {
                    if !recs.iter().any(|x| x.dev == dev && x.ino == ino && x.pdev == pst.dev && x.pino == pst.ino && x.name == name) {
                        recs.push(Record { parent: parent.clone(), pdev: pst.dev, pino: pst.ino, kind, dev, ino, name });
                    }
                }
            }
            Err(_) => break,
        }
    }
    // EOF came when PID 1 closed its descriptors, which is before the rest
    // of its pid namespace (and so the mount namespace) is torn down. Its
    // pidfd is readable only once all of that is done.
    if let Some(p) = &pid1 {
        let mut pf = [sys::PollFd { fd: p.as_raw_fd(), events: sys::POLLIN, revents: 0 }];
        while matches!(sys::poll_fds(&mut pf, -1), Ok(0)) {}
    }
    // Nothing of ours is mounted any more. One descriptor per inode stays
    // as the probe: a lock test ignores the tester's own locks, so with the
    // others closed, any marker it sees is a concurrent sandbox's.
    let mut probes: Vec<(u64, u64, OwnedFd)> = Vec::new();
    for (dev, ino, fd) in held {
        if !probes.iter().any(|p| p.0 == dev && p.1 == ino) {
            probes.push((dev, ino, fd));
        }
    }
    // For all contended names together (the launcher's caller waits).
    let patience = Instant::now() + Duration::from_millis(500);
    // The probe we hold LOCK_EX on: kept across consecutive records of one
    // inode, released before waiting for another, so we never wait while
    // holding one.
    let mut held_ex: Option<usize> = None;
    for r in recs.iter().rev() {
        let p = probes.iter().position(|p| p.0 == r.dev && p.1 == r.ino);
        if let Some(h) = held_ex.filter(|&h| Some(h) != p) {
            let _ = sys::lock_fd(&probes[h].2, sys::LOCK_UN);
            held_ex = None;
        }
        let Some(p) = p else {
            remove(r);
            continue;
        };
        let probe = &probes[p].2;
        if held_ex.is_none() {
            // Sandboxes take their marker under LOCK_SH and then check
            // that the name is still there: testing and unlinking under
            // LOCK_EX means no one adopts the name in between. Those
            // holders never block while holding it, so the wait is
            // short; a longer one is someone holding it on purpose (the
            // launcher waits for us): then the name stays.
            if lock_bounded(probe, sys::LOCK_EX, patience.saturating_duration_since(Instant::now())).is_err() {
                continue;
            }
            held_ex = Some(p);
        }
        // In use by a concurrent sandbox: it registered the name too, its
        // janitor removes it later.
        if matches!(sys::ofd_locked_by_other(probe, marker_offset(r.name.to_bytes())), Ok(false)) {
            remove(r);
        }
    }
    sys::exit_now(0)
}

/// Removes the record's object if it is still the same inode and empty.
fn remove(r: &Record) {
    let Ok(st) = sys::stat_at(r.parent.as_raw_fd(), &r.name) else { return };
    if st.dev != r.dev || st.ino != r.ino {
        return; // replaced by someone else: not ours any more
    }
    let _ = match r.kind {
        Kind::File if st.is_reg() && st.size == 0 => sys::unlink_at(r.parent.as_raw_fd(), &r.name, false),
        Kind::Link if st.is_symlink() => sys::unlink_at(r.parent.as_raw_fd(), &r.name, false),
        Kind::Dir if st.is_dir() => sys::unlink_at(r.parent.as_raw_fd(), &r.name, true), // fails if not empty
        _ => Ok(()),
    };
}
