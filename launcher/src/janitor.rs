//! The janitor: a tiny process forked before any namespace exists, outside
//! the sandbox, not tied to the caller's life (no PDEATHSIG, own session).
//! PID 1 tells it about every placeholder it creates on a host filesystem
//! (parent directory descriptor + name + dev/ino, and for mount points a
//! shared flock on it). When PID 1 reports that it has reaped every other
//! process of the sandbox, or else when the last holder of the other end of
//! its socket is gone (launcher and PID 1 ended, however: exit, crash,
//! kill -9), it removes exactly those placeholders that are
//! still the same inode and still empty, newest first. That is what keeps
//! `--mask` of a missing path from leaving ghost files on the host.

use crate::mounts::{parse_record, Kind};
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

struct Record {
    parent: OwnedFd,
    /// For mount points: an open descriptor holding a shared flock, taken
    /// before anything was mounted on it.
    lock: Option<OwnedFd>,
    kind: Kind,
    dev: u64,
    ino: u64,
    name: CString,
}

/// `done`: one byte goes there once everything is removed (the launcher
/// waits for that, not for our exit).
pub fn main(sock: OwnedFd, done: OwnedFd) -> ! {
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
    let _ = sys::close_fds_except(3, &[sock.as_raw_fd(), done.as_raw_fd()]);
    crate::security_helper_filter();

    let mut recs: Vec<Record> = Vec::new();
    let mut pid1: Option<OwnedFd> = None;
    let mut emptied = false;
    // Some record's directory is a descriptor on the sandbox's own mount
    // (see mounts::janitor_view): our lookups would meet its masks until
    // the mount namespace is gone.
    let mut must_wait = false;
    let mut buf = [0u8; 4200];
    loop {
        match sys::recv_msg(&sock, &mut buf, false) {
            Ok(r) if r.len == 0 && r.fds.is_empty() => break, // EOF: every sender is gone
            Ok(r) if &buf[..r.len] == b"p" => pid1 = r.fds.into_iter().next(),
            Ok(r) if &buf[..r.len] == b"w" => must_wait = true,
            // PID 1 registers nothing after this (and the launcher never
            // does): no need to wait for their ends to close.
            Ok(r) if &buf[..r.len] == b"d" && !must_wait => {
                emptied = true;
                break;
            }
            Ok(r) => {
                let mut fds = r.fds.into_iter();
                if let (Some(parent), Some((kind, dev, ino, name))) = (fds.next(), parse_record(&buf[..r.len])) {
                    // Once per object: two locks of ours on one file would
                    // block our own exclusive lock later. But a lock that
                    // comes later (a directory first made as a parent, then
                    // used as a mount point) must be kept: it is what keeps
                    // other janitors off while we have a mount on it.
                    match recs.iter_mut().find(|x| x.dev == dev && x.ino == ino) {
                        Some(x) => {
                            if x.lock.is_none() {
                                x.lock = fds.next();
                            }
                        }
                        None => recs.push(Record { parent, lock: fds.next(), kind, dev, ino, name }),
                    }
                }
            }
            Err(_) => break,
        }
    }
    // EOF came when PID 1 closed its descriptors, which is before the rest
    // of its pid namespace (and so the mount namespace) is torn down. Its
    // pidfd is readable only once all of that is done. Unless PID 1 said it
    // has reaped every other process of the sandbox ("d"): then nothing is
    // left to run in that mount namespace but PID 1's own exit, our record
    // directories are detached copies that do not show its masks, and our
    // work overlaps its teardown.
    if let Some(p) = pid1.as_ref().filter(|_| !emptied) {
        let mut pf = [sys::PollFd { fd: p.as_raw_fd(), events: sys::POLLIN, revents: 0 }];
        while matches!(sys::poll_fds(&mut pf, -1), Ok(0)) {}
    }
    for r in recs.iter().rev() {
        // A concurrent sandbox that still has something mounted on it holds
        // a shared lock: it is that sandbox's janitor's turn later. That
        // holds for directories we only made or passed through as parents
        // too (no lock of ours): another sandbox may mount on one.
        let opened;
        let lock = match &r.lock {
            Some(l) => Some(l),
            None if r.kind == Kind::Dir => {
                let Ok(d) = sys::open_at(r.parent.as_raw_fd(), &r.name, sys::O_RDONLY | sys::O_DIRECTORY | sys::O_NOFOLLOW, 0) else { continue };
                opened = d;
                Some(&opened)
            }
            None => None,
        };
        if let Some(l) = lock {
            if sys::lock_fd(l, sys::LOCK_EX | sys::LOCK_NB).is_err() {
                continue;
            }
        }
        let Ok(st) = sys::stat_at(r.parent.as_raw_fd(), &r.name) else { continue };
        if st.dev != r.dev || st.ino != r.ino {
            continue; // replaced by someone else: not ours any more
        }
        let _ = match r.kind {
            Kind::File if st.is_reg() && st.size == 0 => sys::unlink_at(r.parent.as_raw_fd(), &r.name, false),
            Kind::Link if st.is_symlink() => sys::unlink_at(r.parent.as_raw_fd(), &r.name, false),
            Kind::Dir if st.is_dir() => sys::unlink_at(r.parent.as_raw_fd(), &r.name, true), // fails if not empty
            _ => Ok(()),
        };
    }
    let _ = sys::write_all_fd(done.as_raw_fd(), b"1");
    sys::exit_now(0)
}
