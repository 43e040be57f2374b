//! `cordon-launcher serve SOCKET`: the spawn server of a long-lived host
//! process (the library's `Sandbox`). Starting a process from Node forks the
//! whole Node process, which costs milliseconds and grows with the host's
//! memory; this small static process forks in a fraction of that. It only
//! ever starts `cordon-launcher run` (itself) with the arguments its parent
//! sends: the launcher decides nothing about policy and neither does this.
//!
//! Protocol (all integers little-endian), over stream connections to SOCKET
//! accepted only from the parent process (SO_PEERCRED pid and uid):
//! * every connection starts with 9 bytes: `CDS1`, a kind byte, a u32 id;
//!   kind `I`, `O`, `E`: this connection becomes the command's stdin,
//!   stdout or stderr (the server reads exactly the 9 bytes, so input sent
//!   right behind them stays queued for the command);
//! * kind `R` (the request) goes on with a u32 length and that many bytes: a
//!   mask byte (bit 0/1/2: an `I`/`O`/`E` connection of the same id comes;
//!   a missing one is /dev/null), a u32 argc and argc × (u32 length, bytes):
//!   the arguments after `cordon-launcher`.
//! Once the request and its streams are in, the server forks a launcher:
//! the streams on 0-2, the request connection on 3 (its `--info-fd`), and
//! the same code as `cordon-launcher run ARGS` (no exec: this process is
//! small and single-threaded, and exec'ing a fresh copy of ourselves would
//! only add its cost; the arguments must parse as a `run`). Each later byte the parent sends on the request connection
//! is a signal number for the launcher. When the launcher says it is done
//! (see `netslot::Lent`: it then holds none of the command's streams), or
//! else when it has been reaped, the server writes `{"launcher-status":N}`
//! or `{"launcher-signal":N}` on it and closes it. Descriptor 3 of the server is its control channel: the
//! server writes `ready\n` once it listens, and exits (killing its
//! launchers) when the parent closes it; PDEATHSIG covers a parent crash.
//!
//! The server also keeps the network namespaces (and relays) of finished
//! runs and lends one to each run that can use it (`netslot`); it reads the
//! run's arguments only to pick one, never to decide anything else.

use crate::netslot::{self, Kept, Key, Lent};
use crate::sys;
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixListener;

const MAGIC: &[u8; 4] = b"CDS1";
const HELLO: usize = 9;
/// A request is a launcher argv: a big environment is a few hundred KiB.
const MAX_BODY: usize = 16 << 20;
const MAX_ARGS: usize = 1 << 20;
/// Connections that have not finished their hello or request.
const MAX_CONNS: usize = 4096;
const CTL: i32 = 3;

enum Stage {
    Hello,
    Len,
    Body,
}

struct Conn {
    fd: OwnedFd,
    buf: Vec<u8>,
    want: usize,
    stage: Stage,
    kind: u8,
    id: u32,
}

struct Request {
    mask: u8,
    args: Vec<CString>,
    info: OwnedFd,
}

#[derive(Default)]
struct Pending {
    streams: [Option<OwnedFd>; 3],
    req: Option<Request>,
}

struct Running {
    info: OwnedFd,
    /// false once the parent shut its side: nothing more to read.
    reading: bool,
    /// The network namespace lent to it, until it comes back or is dropped.
    lent: Option<(Key, Kept)>,
    /// Our end of its notice channel (None once it has closed).
    notice: Option<OwnedFd>,
    /// It said its namespace may be lent again.
    clean: bool,
    /// Its status has been written (it said it was done).
    reported: bool,
}

/// Network namespaces no launcher has borrowed (see `netslot`). A burst of
/// concurrent runs makes more; beyond this many, returned ones are dropped.
const MAX_FREE: usize = 8;

#[derive(Default)]
struct Pool {
    free: Vec<(Key, Kept)>,
}

impl Pool {
    fn take(&mut self, key: &Key) -> Option<Kept> {
        match self.free.iter().rposition(|(k, _)| k == key) {
            Some(i) => Some(self.free.swap_remove(i).1),
            // On failure the launcher makes its own namespaces, and reports
            // why if it cannot either.
            None => netslot::make(key).ok(),
        }
    }

    fn give_back(&mut self, key: Key, slot: Kept) {
        if self.free.len() < MAX_FREE {
            self.free.push((key, slot));
        } else {
            slot.discard();
        }
    }
}

enum Step {
    /// Needs more bytes.
    More,
    /// Finished: a stream or a request to file under its id.
    Done,
    /// Broken or refused: drop it.
    Drop,
}

fn fail(what: &str, e: &std::io::Error) -> i32 {
    crate::report(&format!("serve: {what}"), &sys::errno_text(e));
    125
}

pub fn main(socket: &OsStr) -> i32 {
    // Like `run`: never setuid or setgid (the launchers inherit our ids).
    if let Err(e) = crate::run::preflight() {
        crate::report(&e.step, &e.reason);
        return 125;
    }
    let parent = sys::ppid();
    if let Err(e) = sys::set_pdeathsig(sys::SIGKILL) {
        return fail("pdeathsig", &e);
    }
    if sys::ppid() != parent {
        return 125;
    }
    if !sys::fd_is_open(CTL) {
        crate::report("serve", "descriptor 3 (the control channel) is not open");
        return 125;
    }
    // The launchers we start dup 0-2 and 3 from their streams; keeping the
    // low numbers taken means no accepted socket ever lands on them.
    for fd in 0..3 {
        if !sys::fd_is_open(fd) {
            match sys::open_at(sys::AT_FDCWD, c"/dev/null", sys::O_RDWR, 0) {
                Ok(n) if n.as_raw_fd() == fd => std::mem::forget(n),
                Ok(_) | Err(_) => {
                    crate::report("serve", "cannot open /dev/null");
                    return 125;
                }
            }
        }
    }
    // A launcher may end before its PID 1, janitor and egress helper have
    // finished exiting (see `run::REAPED_ABOVE`): they come to us, and
    // `reap` takes them.
    let subreaper = sys::set_child_subreaper().is_ok();
    let _ = sys::set_dumpable(false);
    sys::ignore_signal(sys::SIGPIPE);
    // Ctrl-C reaches the launchers directly (same process group); the server
    // must outlive it like any other part of its host.
    sys::ignore_signal(sys::SIGINT);
    sys::ignore_signal(sys::SIGQUIT);
    let me = sys::ids();
    let set = sys::sigset(&[sys::SIGCHLD]);
    if let Err(e) = sys::block_signals(&set) {
        return fail("block signals", &e);
    }
    let sfd = match sys::signal_fd(&set) {
        Ok(fd) => fd,
        Err(e) => return fail("signalfd", &e),
    };
    let listener = match UnixListener::bind(socket) {
        Ok(l) => l,
        Err(e) => return fail("listen", &e),
    };
    if let Err(e) = listener.set_nonblocking(true) {
        return fail("listen", &e);
    }
    if let Err(e) = sys::write_all_fd(CTL, b"ready\n") {
        return fail("control channel", &e);
    }

    let mut conns: Vec<Conn> = Vec::new();
    let mut pending: HashMap<u32, Pending> = HashMap::new();
    let mut running: HashMap<i32, Running> = HashMap::new();
    let mut pool = Pool::default();
    loop {
        let mut fds = vec![
            sys::PollFd { fd: CTL, events: sys::POLLIN, revents: 0 },
            sys::PollFd { fd: listener.as_raw_fd(), events: sys::POLLIN, revents: 0 },
            sys::PollFd { fd: sfd.as_raw_fd(), events: sys::POLLIN, revents: 0 },
        ];
        fds.extend(conns.iter().map(|c| sys::PollFd { fd: c.fd.as_raw_fd(), events: sys::POLLIN, revents: 0 }));
        let run_pids: Vec<i32> = running.iter().filter(|(_, r)| r.reading).map(|(p, _)| *p).collect();
        fds.extend(run_pids.iter().map(|p| sys::PollFd { fd: running[p].info.as_raw_fd(), events: sys::POLLIN, revents: 0 }));
        let notice_pids: Vec<i32> = running.iter().filter(|(_, r)| r.notice.is_some()).map(|(p, _)| *p).collect();
        fds.extend(notice_pids.iter().filter_map(|p| running[p].notice.as_ref()).map(|n| sys::PollFd { fd: n.as_raw_fd(), events: sys::POLLIN, revents: 0 }));
        if sys::poll_fds(&mut fds, -1).is_err() {
            break;
        }
        if fds[0].revents != 0 {
            let mut b = [0u8; 64];
            if !matches!(sys::read_fd(CTL, &mut b), Ok(n) if n > 0) {
                break; // the parent is done with us
            }
        }
        // Connections first (their slots in `fds` are the ones polled), then
        // new ones: accepting changes `conns`.
        let polled = conns.len();
        let ready: Vec<usize> = (0..polled).filter(|&i| fds[3 + i].revents != 0).collect();
        for &i in ready.iter().rev() {
            match advance(&mut conns[i]) {
                Step::More => {}
                Step::Drop => {
                    conns.swap_remove(i);
                }
                Step::Done => {
                    let c = conns.swap_remove(i);
                    file(c, &mut pending);
                }
            }
        }
        for (k, pid) in run_pids.iter().enumerate() {
            if fds[3 + polled + k].revents != 0 {
                if let Some(r) = running.get_mut(pid) {
                    signal_requests(*pid, r);
                }
            }
        }
        for (k, pid) in notice_pids.iter().enumerate() {
            if fds[3 + polled + run_pids.len() + k].revents != 0 {
                if let Some(r) = running.get_mut(pid) {
                    take_notices(r, &mut pool);
                }
            }
        }
        if fds[1].revents != 0 {
            accept_all(&listener, parent, me.euid, &mut conns);
        }
        if fds[2].revents != 0 {
            while let Ok(Some(_)) = sys::read_signal_fd(&sfd) {}
            reap(&mut running, &mut pool);
        }
        let ids: Vec<u32> = pending.iter().filter(|(_, p)| complete(p)).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some(p) = pending.remove(&id) {
                launch(p, &mut running, &mut pool, subreaper);
            }
        }
    }
    for pid in running.keys() {
        let _ = sys::send_signal(*pid, sys::SIGKILL);
    }
    0
}

fn accept_all(listener: &UnixListener, parent: i32, uid: u32, conns: &mut Vec<Conn>) {
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                let fd: OwnedFd = s.into();
                // Only the host process that started us may ask for a
                // launcher: a sandboxed command that reached the socket
                // some way has another pid.
                match sys::serve::peer_cred(fd.as_fd()) {
                    Ok((pid, u)) if pid == parent && u == uid && conns.len() < MAX_CONNS => {
                        conns.push(Conn { fd, buf: Vec::with_capacity(HELLO), want: HELLO, stage: Stage::Hello, kind: 0, id: 0 })
                    }
                    _ => drop(fd),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return, // WouldBlock: all taken
        }
    }
}

/// Reads what `c` still needs, never more (bytes behind a stream's hello
/// are the command's input).
fn advance(c: &mut Conn) -> Step {
    let have = c.buf.len();
    c.buf.resize(c.want, 0);
    let n = match sys::relay::recv_nowait(c.fd.as_fd(), &mut c.buf[have..]) {
        Ok(0) => return Step::Drop,
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(_) => return Step::Drop,
    };
    c.buf.truncate(have + n);
    if c.buf.len() < c.want {
        return Step::More;
    }
    match c.stage {
        Stage::Hello => {
            if &c.buf[..4] != MAGIC || !b"IOER".contains(&c.buf[4]) {
                return Step::Drop;
            }
            c.kind = c.buf[4];
            c.id = u32::from_le_bytes(c.buf[5..9].try_into().expect("4 bytes"));
            if c.kind != b'R' {
                return Step::Done;
            }
            c.stage = Stage::Len;
            c.buf.clear();
            c.want = 4;
            Step::More
        }
        Stage::Len => {
            let len = u32::from_le_bytes(c.buf[..4].try_into().expect("4 bytes")) as usize;
            if len < 5 || len > MAX_BODY {
                return Step::Drop;
            }
            c.stage = Stage::Body;
            c.buf.clear();
            c.want = len;
            Step::More
        }
        Stage::Body => Step::Done,
    }
}

fn parse_args(body: &[u8]) -> Option<(u8, Vec<CString>)> {
    let mask = *body.first()?;
    let argc = u32::from_le_bytes(body.get(1..5)?.try_into().ok()?) as usize;
    if argc == 0 || argc > MAX_ARGS {
        return None;
    }
    let mut at = 5;
    let mut args = Vec::with_capacity(argc);
    for _ in 0..argc {
        let len = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        let a = body.get(at..at.checked_add(len)?)?;
        at += len;
        args.push(CString::new(a).ok()?);
    }
    (at == body.len() && mask < 8).then_some((mask, args))
}

fn file(c: Conn, pending: &mut HashMap<u32, Pending>) {
    let slot = match c.kind {
        b'I' => Some(0),
        b'O' => Some(1),
        b'E' => Some(2),
        b'R' => None,
        _ => return,
    };
    match slot {
        Some(i) => {
            let p = pending.entry(c.id).or_default();
            if p.streams[i].is_none() {
                p.streams[i] = Some(c.fd);
            }
        }
        None => {
            let Some((mask, args)) = parse_args(&c.buf) else { return };
            let p = pending.entry(c.id).or_default();
            if p.req.is_none() {
                p.req = Some(Request { mask, args, info: c.fd });
            }
        }
    }
}

fn complete(p: &Pending) -> bool {
    let Some(r) = &p.req else { return false };
    (0..3).all(|i| r.mask & (1 << i) == 0 || p.streams[i].is_some())
}

fn status_line(info: &OwnedFd, line: &str) {
    let _ = sys::serve::send_nowait(info.as_fd(), line.as_bytes());
}

fn launch(p: Pending, running: &mut HashMap<i32, Running>, pool: &mut Pool, subreaper: bool) {
    let Pending { streams, req } = p;
    let Some(req) = req else { return };
    let args: Vec<OsString> = req.args.into_iter().map(|a| OsString::from_vec(a.into_bytes())).collect();
    let cfg = match crate::args::parse(args) {
        Ok(crate::args::Command::Run(cfg)) => Some(cfg),
        _ => None,
    };
    let key = cfg.as_ref().and_then(Key::of);
    // Every run gets a notice channel; a broken one only costs the early
    // status and the namespace.
    let notice = match cfg.is_some() {
        true => sys::seqpacket_pair().ok(),
        false => None,
    };
    let lent = match (key, &notice) {
        (Some(k), Some(_)) => pool.take(&k).map(|slot| (k, slot)),
        _ => None,
    };
    match sys::fork_process() {
        Ok(0) => {
            // As a fresh exec would: dumpable again (an unprivileged launcher
            // writes its own /proc/self/uid_map, which a non-dumpable
            // process cannot), default signal handling, nothing blocked.
            if sys::set_dumpable(true).is_err() {
                sys::exit_now(125);
            }
            let _ = sys::unblock_all_signals();
            for s in [sys::SIGPIPE, sys::SIGINT, sys::SIGQUIT] {
                sys::default_signal(s);
            }
            let null = sys::open_at(sys::AT_FDCWD, c"/dev/null", sys::O_RDWR, 0).ok();
            for (i, s) in streams.iter().enumerate() {
                let src = s.as_ref().or(null.as_ref()).map(|f| f.as_raw_fd());
                if src.and_then(|f| sys::dup_to(f, i as i32).ok()).is_none() {
                    sys::exit_now(125);
                }
            }
            let lent = notice.map(|(ours, theirs)| {
                std::mem::forget(ours);
                let ns = lent.map(|(_, slot)| {
                    std::mem::forget(slot.relay_pid);
                    slot.ns
                });
                Lent { ns, notice: theirs }
            });
            let keep = lent.as_ref().map(|l| l.raw_fds()).unwrap_or_default();
            if sys::dup_to(req.info.as_raw_fd(), 3).is_err() || sys::close_fds_except(4, &keep).is_err() {
                sys::exit_now(125);
            }
            // The server's descriptors above 3 are closed now. The OwnedFds
            // of its state that this copy still holds name closed numbers
            // that the launcher will reuse: none may ever be dropped, so
            // the ones in scope are forgotten and the process leaves only
            // through exit(), never returning to the server's loop.
            std::mem::forget(streams);
            std::mem::forget(null);
            std::mem::forget(req.info);
            match cfg {
                Some(cfg) => {
                    if subreaper {
                        crate::run::REAPED_ABOVE.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    std::process::exit(crate::run_main_lent(cfg, lent))
                }
                None => {
                    crate::report("serve", "the request is not a valid `run`");
                    sys::exit_now(125)
                }
            }
        }
        Ok(pid) => {
            let notice = notice.map(|(ours, _theirs)| ours);
            running.insert(pid, Running { info: req.info, reading: true, lent, notice, clean: false, reported: false });
        }
        Err(e) => {
            if let Some((_, slot)) = lent {
                slot.discard();
            }
            crate::report("serve: fork", &sys::errno_text(&e));
            status_line(&req.info, "{\"launcher-status\":125}\n");
        }
    }
}

fn reap(running: &mut HashMap<i32, Running>, pool: &mut Pool) {
    while let Ok(Some((pid, st))) = sys::wait_pid(-1, true) {
        if let Some(mut r) = running.remove(&pid) {
            take_notices(&mut r, pool);
            if let Some((key, slot)) = r.lent.take() {
                // Without the launcher's word the namespace is dropped: a
                // process of its run may still be in it.
                match r.clean {
                    true => pool.give_back(key, slot),
                    false => slot.discard(),
                }
            }
            if r.reported {
                continue;
            }
            let line = match st {
                sys::WaitStatus::Exited(c) => format!("{{\"launcher-status\":{c}}}\n"),
                sys::WaitStatus::Signaled(s) => format!("{{\"launcher-signal\":{s}}}\n"),
            };
            status_line(&r.info, &line);
        }
    }
}

/// Reads what a launcher said on its notice channel. Once it is done (it
/// holds none of the command's streams and its namespace is back), its
/// status goes to the parent at once: its exit (tearing down its copy of
/// our memory) and our reaping need not delay the result.
fn take_notices(r: &mut Running, pool: &mut Pool) {
    let Some(n) = &r.notice else { return };
    loop {
        match netslot::read_notice(n) {
            Some(netslot::Notice::Clean) => r.clean = true,
            Some(netslot::Notice::Done(code)) if !r.reported => {
                if let (true, Some((key, slot))) = (r.clean, r.lent.take()) {
                    pool.give_back(key, slot);
                }
                status_line(&r.info, &format!("{{\"launcher-status\":{code}}}\n"));
                if let Ok(s) = r.info.try_clone() {
                    let _ = std::os::unix::net::UnixStream::from(s).shutdown(std::net::Shutdown::Write);
                }
                r.reported = true;
            }
            Some(netslot::Notice::Done(_)) | Some(netslot::Notice::Other) => {}
            Some(netslot::Notice::Closed) => {
                r.notice = None;
                return;
            }
            None => return,
        }
    }
}

/// Each byte from the parent on a running launcher's request connection is
/// a signal for it. The launcher is our unreaped child: its pid is not
/// reused before `reap` forgets it.
fn signal_requests(pid: i32, r: &mut Running) {
    let mut b = [0u8; 64];
    match sys::relay::recv_nowait(r.info.as_fd(), &mut b) {
        Ok(0) => r.reading = false,
        Ok(n) => {
            for &sig in &b[..n] {
                if (1..=64).contains(&sig) {
                    let _ = sys::send_signal(pid, sig as i32);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => r.reading = false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(mask: u8, args: &[&[u8]]) -> Vec<u8> {
        let mut b = vec![mask];
        b.extend_from_slice(&(args.len() as u32).to_le_bytes());
        for a in args {
            b.extend_from_slice(&(a.len() as u32).to_le_bytes());
            b.extend_from_slice(a);
        }
        b
    }

    #[test]
    fn request_bodies_parse_exactly() {
        let (mask, args) = parse_args(&body(6, &[b"run", b"--", b"true"])).unwrap();
        assert_eq!(mask, 6);
        assert_eq!(args, vec![CString::new("run").unwrap(), CString::new("--").unwrap(), CString::new("true").unwrap()]);
        // Trailing bytes, a short argument, a NUL inside one, no arguments, a bad mask.
        let mut extra = body(0, &[b"run"]);
        extra.push(0);
        assert!(parse_args(&extra).is_none());
        let mut short = body(0, &[b"run"]);
        short.pop();
        assert!(parse_args(&short).is_none());
        assert!(parse_args(&body(0, &[b"r\0n"])).is_none());
        assert!(parse_args(&body(0, &[])).is_none());
        assert!(parse_args(&body(8, &[b"run"])).is_none());
    }
}
