//! `cordon-launcher run`: the launcher process (L0). It stays in the host's
//! mount and pid namespaces, creates the other namespaces, forks the
//! janitor (before anything), the relay (in the new netns) and PID 1 (in the
//! new pid namespace), then forwards signals to PID 1, enforces the timeout,
//! writes --info-fd and exits with the command's status.

use crate::args::{MountOp, RunConfig};
use crate::info::{self, End, Start};
use crate::init::{self, Pid1Ctx};
use crate::netslot::Lent;
use crate::sys;
use crate::SetupError;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Set when a subreaper above us (the spawn server) reaps what we leave:
/// then the launcher ends as soon as PID 1 has reported the command's end
/// (every other process of the sandbox is reaped by then) and does not wait
/// for PID 1's own exit, which tears down the mount namespace (an unmount of
/// every mount, a few tenths of a millisecond). PID 1 only exits from there.
/// Nor does it wait for the exits of the janitor (once it has said it is
/// done) and of the egress helper it killed.
pub static REAPED_ABOVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn setup(step: &str, e: std::io::Error) -> SetupError {
    SetupError::new(step, sys::errno_text(&e))
}

/// Whether any mount op may create something on a host filesystem (then a
/// janitor is needed to remove it after the run). A destination that already
/// exists at the same host path needs no creation under a host bind, and
/// anything created on the launcher's own tmpfs vanishes by itself.
pub fn needs_janitor(cfg: &RunConfig) -> bool {
    let on_host = |p: &std::ffi::OsStr| std::fs::symlink_metadata(p).is_ok();
    cfg.mounts.iter().any(|m| match m {
        MountOp::Mask { .. } | MountOp::Dir { .. } | MountOp::Symlink { .. } => true,
        MountOp::Bind { src, dst, .. } => src != dst || !on_host(dst),
        MountOp::Tmpfs { dst } | MountOp::Dev { dst } | MountOp::Proc { dst } => !on_host(dst),
        MountOp::Pin { .. } => false,
    })
}

/// Checks that come before anything is forked (also the Unix-socket
/// supervisor): never run setuid or setgid.
pub fn preflight() -> Result<(), SetupError> {
    let ids = sys::ids();
    if ids.uid != ids.euid || ids.gid != ids.egid {
        return Err(SetupError::new("setuid", "refusing to run setuid or setgid".to_string()));
    }
    Ok(())
}

/// Runs the sandbox. `lent`: what the spawn server gives this run (see
/// `netslot`): maybe a network namespace (and its user namespace), else
/// both are made here, and the channel for telling the server the end.
pub fn run(cfg: RunConfig, lent: Option<Lent>) -> Result<i32, SetupError> {
    preflight()?;
    let ids = sys::ids();
    let parent = sys::ppid();
    arm_pdeathsig(parent)?;
    for fd in cfg.info_fd.iter().chain(cfg.keep_fds.iter()) {
        if !sys::fd_is_open(*fd) {
            return Err(SetupError::new(format!("descriptor {fd}"), "Bad file descriptor".to_string()));
        }
    }
    let cwd = std::env::current_dir().ok().map(|p| p.into_os_string());
    let userns = ids.uid != 0 || cfg.unshare_user;
    let mut flags = sys::CLONE_NEWIPC | sys::CLONE_NEWUTS | sys::CLONE_NEWCGROUP;
    if userns {
        flags |= sys::CLONE_NEWUSER;
    }
    if !cfg.share_net {
        flags |= sys::CLONE_NEWNET;
    }
    let ns_names: Vec<(&str, i32)> = [("user", sys::CLONE_NEWUSER), ("net", sys::CLONE_NEWNET), ("ipc", sys::CLONE_NEWIPC), ("uts", sys::CLONE_NEWUTS), ("cgroup", sys::CLONE_NEWCGROUP)]
        .into_iter()
        .filter(|(_, f)| flags & f != 0)
        .collect();
    let before: Vec<Option<u64>> = ns_names.iter().map(|(n, _)| sys::ns_ino(n).ok()).collect();
    let host_mnt_ns = sys::ns_ino("mnt").ok();
    let host_net_ns = sys::ns_ino("net").ok();

    // The janitor first: it must live in the host's namespaces with the
    // caller's credentials, to remove placeholders after everything else.
    let janitor = if needs_janitor(&cfg) {
        let (ours, theirs) = sys::seqpacket_pair().map_err(|e| setup("janitor", e))?;
        let (done_r, done_w) = sys::pipe_cloexec().map_err(|e| setup("janitor", e))?;
        match sys::fork_process().map_err(|e| setup("fork janitor", e))? {
            0 => {
                drop((ours, done_r));
                crate::janitor::main(theirs, done_w)
            }
            pid => Some((ours, pid, done_r)),
        }
    } else {
        None
    };

    // The launcher itself never enters the new network namespace: the relay
    // (or a short-lived helper) creates it, so that creating it, bringing up
    // lo and binding the relay's listeners overlap with PID 1 building the
    // root; PID 1 joins it before the command starts.
    let (notice, ns) = match lent {
        Some(l) => (Some(l.notice), l.ns),
        None => (None, None),
    };
    let (lent_user, lent) = match ns {
        Some(ns) => (ns.user, Some((ns.net, ns.relay))),
        None => (None, None),
    };
    if lent.is_some() && lent_user.is_some() != userns {
        return Err(SetupError::new("network slot", "lent for another kind of run".to_string()));
    }
    match &lent_user {
        // The lent user namespace has our maps already; the namespaces
        // created next belong to it, as they would to our own.
        Some(user) => {
            sys::join_ns(user, sys::CLONE_NEWUSER).map_err(|e| setup("join user namespace", e))?;
            sys::unshare_ns(flags & !(sys::CLONE_NEWNET | sys::CLONE_NEWUSER)).map_err(|e| setup("unshare namespaces", e))?;
        }
        None => {
            sys::unshare_ns(flags & !sys::CLONE_NEWNET).map_err(|e| setup("unshare namespaces", e))?;
            if userns {
                crate::netslot::write_id_maps(cfg.uid.unwrap_or(ids.euid), cfg.gid.unwrap_or(ids.egid), &ids).map_err(|e| setup("id maps", e))?;
            }
        }
    }
    drop(lent_user);
    if userns {
        // A new user namespace changes our credentials, which clears
        // PDEATHSIG: arm it again.
        arm_pdeathsig(parent)?;
    }
    // Fail closed (N6): every namespace we asked for must really be new (the
    // network namespace is checked where it is joined, in PID 1).
    for ((name, _), b) in ns_names.iter().zip(before) {
        if *name == "net" {
            continue;
        }
        if let (Some(b), Ok(a)) = (b, sys::ns_ino(name)) {
            if a == b {
                return Err(SetupError::new(format!("{name} namespace"), "not isolated from the host".to_string()));
            }
        }
    }
    sys::set_dumpable(false).map_err(|e| setup("dumpable", e))?;
    if let Some(h) = &cfg.hostname {
        use std::os::unix::ffi::OsStrExt;
        sys::set_hostname(h.as_bytes()).map_err(|e| setup("hostname", e))?;
    }

    let sigs: Vec<i32> = sys::FORWARDED.iter().copied().chain([sys::SIGCHLD]).collect();
    let set = sys::sigset(&sigs);
    sys::block_signals(&set).map_err(|e| setup("block signals", e))?;

    // PID 1's end and the network helper's end of the ready channel.
    let net_chan = match cfg.share_net {
        true => None,
        false => Some(sys::seqpacket_pair().map_err(|e| setup("network", e))?),
    };

    let (status, status_child) = sys::seqpacket_pair().map_err(|e| setup("status channel", e))?;
    sys::set_passcred(&status).map_err(|e| setup("status channel", e))?;
    let janitor_fd = janitor.as_ref().map(|j| j.0.try_clone());
    // PID 1 first: building the root is the longest step of a run, so it
    // starts before the network helper is forked (which then works beside it).
    let pid1 = match sys::fork_new_pidns().map_err(|e| setup("fork", e))? {
        0 => {
            drop(status);
            let jfd = match janitor_fd {
                Some(Ok(fd)) => Some(fd),
                Some(Err(e)) => {
                    crate::report("janitor", &sys::errno_text(&e));
                    sys::exit_now(125)
                }
                None => None,
            };
            // Only the helper may hold the other end: if it dies before its
            // ready message, PID 1 must see EOF.
            let net = net_chan.map(|(pid1_end, helper_end)| {
                drop(helper_end);
                pid1_end
            });
            let lent_net = lent.map(|(net, _relay)| net);
            init::main(Pid1Ctx { cfg: &cfg, status: status_child, janitor: jfd, userns, cwd, host_mnt_ns, net, host_net_ns, lent_net })
        }
        pid => pid,
    };
    drop(status_child);
    drop(janitor_fd);
    // The egress helper serves only the relay, forked next.
    let (egress_pid, egress_fd) = match crate::start_egress(&cfg)? {
        Some((pid, fd)) => (Some(pid), Some(fd)),
        None => (None, None),
    };
    // Only PID 1 may hear from the network helper: with our copy closed, a
    // helper that dies before its ready message means EOF there, and PID 1
    // then refuses to start the command. If the helper cannot be started,
    // PID 1 sees that EOF too and ends silently; we say why.
    let (lent_net, kept_relay) = match lent {
        Some((net, relay)) => (Some(net), relay),
        None => (None, None),
    };
    let lent_ns = lent_net.is_some();
    let net = match net_chan {
        Some((pid1_end, helper_end)) => {
            drop(pid1_end);
            start_net(&cfg, egress_fd, helper_end, lent_net, kept_relay)?
        }
        None => None,
    };
    let (net, relay_done, kept_relay) = match net {
        Some(Net::Forked { pid, relay, done }) => (Some((pid, relay)), done, None),
        Some(Net::Kept(ctl)) => (None, None, Some(ctl)),
        None => (None, None, None),
    };

    let (janitor_sock, janitor) = match janitor {
        Some((sock, pid, done)) => (Some(sock), Some((pid, done))),
        None => (None, None),
    };
    let mut ending = Ending { janitor: janitor_sock, relay: net.filter(|n| n.1).map(|n| n.0), relay_pidfd: None, kept_relay, kept_told: false, begun: false };
    let out = monitor(&cfg, pid1, &status, &set, &mut ending);
    ending.begin();
    let kept_done = ending.kept_relay.as_ref().map(|ctl| ending.kept_told && finish_kept_relay(ctl));
    match net {
        Some((pid, true)) => finish_relay(pid, ending.relay_pidfd.take(), relay_done),
        // The helper that only made the namespace has exited (or dies now:
        // PID 1 is gone, nobody needs the namespace any more).
        Some((pid, false)) => {
            let _ = sys::send_signal(pid, sys::SIGKILL);
        }
        None => {}
    }
    if let Some(e) = egress_pid {
        let _ = sys::send_signal(e, sys::SIGKILL);
    }
    // Let the janitor finish before we return, so the caller never sees a
    // placeholder that is about to disappear; the helpers end meanwhile. It
    // says so before its exit, which (releasing the mount copies it worked
    // through) takes a few tenths of a millisecond more.
    let reaped_above = REAPED_ABOVE.load(std::sync::atomic::Ordering::Relaxed);
    if let Some((pid, done)) = janitor {
        // A byte, or EOF if it died: either way it does nothing more.
        let mut pf = [sys::PollFd { fd: done.as_raw_fd(), events: sys::POLLIN, revents: 0 }];
        while matches!(sys::poll_fds(&mut pf, -1), Ok(0) | Err(_)) {}
        if !reaped_above {
            let _ = sys::wait_pid(pid, false);
        }
    }
    // The relay or network helper we forked holds the network namespace:
    // its end is waited for. The egress helper is only killed.
    for pid in net.map(|n| n.0).into_iter().chain(egress_pid.filter(|_| !reaped_above)) {
        let _ = sys::wait_pid(pid, false);
    }
    // Every process of the sandbox has been reaped (by PID 1, or PID 1
    // itself: `monitor` returns only then) and so has the relay with its
    // listeners: the network namespace holds nothing of this run any more.
    if let (Some(n), true, None | Some(true)) = (&notice, lent_ns, kept_done) {
        crate::netslot::give_back(n);
    }
    if let Some(n) = &notice {
        // Nothing of the run is left but our own exit: the server can
        // report the status now, and the command's streams must not wait
        // for our exit to close.
        if let Ok(null) = sys::open_at(sys::AT_FDCWD, c"/dev/null", sys::O_RDWR, 0) {
            for fd in [0, 1, 2].into_iter().chain(cfg.info_fd) {
                let _ = sys::dup_to(null.as_raw_fd(), fd);
            }
            crate::netslot::say_done(n, out);
        }
    }
    Ok(out)
}

/// Who readies the sandbox's network namespace.
enum Net {
    /// The process we forked: it owns the namespace until PID 1 has joined.
    Forked {
        pid: i32,
        /// Whether it is the relay (it keeps running) or only made the namespace.
        relay: bool,
        /// The relay's drained pipe (see `finish_relay`).
        done: Option<OwnedFd>,
    },
    /// The relay of a lent namespace (`relay::serve_slot`): its control socket.
    Kept(OwnedFd),
}

/// Forks the process that creates the sandbox's network namespace: the relay
/// when the plan asks for relays or published ports, else a helper that
/// exits once it has handed the namespace over. It lives in the host's
/// mount and pid namespaces (only PID 1 was forked into the new pid
/// namespace) and in the new user namespace, so the new netns is owned by
/// the sandbox's user namespace. The launcher does not wait for it: PID 1
/// does, while it builds the root in parallel. `ours` is the helper's end
/// of PID 1's ready channel: one message `[1]` carrying the namespace (an
/// nsfs descriptor) once lo is up and, for the relay, every listener is
/// bound and the v2 control connection is open. With a `lent` namespace
/// the relay joins it instead, and without a relay the launcher sends the
/// message itself (None: no process to wait for). A lent namespace with a
/// relay of its own (`kept`): that relay is told the command's token and
/// given its egress helper, and the launcher sends the message.
fn start_net(cfg: &RunConfig, egress: Option<OwnedFd>, ours: OwnedFd, lent: Option<OwnedFd>, kept: Option<OwnedFd>) -> Result<Option<Net>, SetupError> {
    let relay = !(cfg.relay_ports.is_empty() && cfg.publish.is_empty());
    if let (Some(ctl), Some(ns)) = (&kept, &lent) {
        let token = cfg.relay_token.as_ref().map(|t| t.as_encoded_bytes()).unwrap_or(b"-");
        let begin = [b"B".as_slice(), token].concat();
        sys::send_msg(ctl, &begin, egress.as_ref().map(|e| e.as_raw_fd()), None).map_err(|e| setup("relay", e))?;
        // Connections the command makes wait in the relay's backlogs until
        // it has taken the token: it polls them only after that.
        let _ = sys::send_msg(&ours, &[1], Some(ns.as_raw_fd()), None);
        return Ok(kept.map(Net::Kept));
    }
    if let (false, Some(ns)) = (relay, &lent) {
        // PID 1 sees EOF (and refuses to start the command) if this fails.
        let _ = sys::send_msg(&ours, &[1], Some(ns.as_raw_fd()), None);
        return Ok(None);
    }
    let (done_r, done_w) = match relay {
        true => sys::pipe_cloexec().map(|(r, w)| (Some(r), Some(w))).map_err(|e| setup("relay", e))?,
        false => (None, None),
    };
    let me = sys::pid();
    match sys::fork_process().map_err(|e| setup(if relay { "fork relay" } else { "fork network helper" }, e))? {
        0 => {
            drop(done_r);
            let keep: Vec<i32> = [ours.as_raw_fd()]
                .into_iter()
                .chain(egress.as_ref().map(|e| e.as_raw_fd()))
                .chain(done_w.as_ref().map(|d| d.as_raw_fd()))
                .chain(lent.as_ref().map(|n| n.as_raw_fd()))
                .collect();
            helper_child(me, &keep);
            let fail = |step: &str, e: std::io::Error| -> ! {
                crate::report(step, &sys::errno_text(&e));
                sys::exit_now(125)
            };
            let ns = match lent {
                Some(ns) => match sys::join_ns(&ns, sys::CLONE_NEWNET) {
                    Ok(()) => ns,
                    Err(e) => fail("join network namespace", e),
                },
                None => {
                    if let Err(e) = sys::unshare_ns(sys::CLONE_NEWNET) {
                        fail("unshare network namespace", e);
                    }
                    if let Err(e) = sys::loopback_up() {
                        fail("loopback", e);
                    }
                    match sys::open_at(sys::AT_FDCWD, c"/proc/self/ns/net", sys::O_RDONLY, 0) {
                        Ok(fd) => fd,
                        Err(e) => fail("network namespace", e),
                    }
                }
            };
            if let Some(done) = done_w {
                crate::relay::serve(cfg, ours, egress, ns, done)
            }
            // Like every helper, held by seccomp even for its last breath.
            crate::security_helper_filter();
            // PID 1 refuses to start the command without this message.
            let code = if sys::send_msg(&ours, &[1], Some(ns.as_raw_fd()), None).is_ok() { 0 } else { 125 };
            sys::exit_now(code)
        }
        pid => Ok(Some(Net::Forked { pid, relay, done: done_r })),
    }
}

/// How long the relay may take to finish its connections once the command
/// has ended.
const RELAY_DRAIN: Duration = Duration::from_secs(2);

/// What the launcher does once the command's life is over: as soon as PID 1
/// reports the command's end (it has then killed and reaped every other
/// process of the sandbox, so no new connection can start), or at the
/// latest once PID 1 is gone. Starting then lets the relay drain and the
/// janitor work while PID 1's namespaces are torn down.
struct Ending {
    /// Our end of the janitor's socket: closing it (with PID 1's end gone)
    /// lets the janitor clean up; it waits for PID 1's namespaces itself.
    janitor: Option<OwnedFd>,
    relay: Option<i32>,
    relay_pidfd: Option<OwnedFd>,
    /// The control socket of a lent namespace's relay, and whether it was
    /// told that the command ended.
    kept_relay: Option<OwnedFd>,
    kept_told: bool,
    begun: bool,
}

impl Ending {
    fn begin(&mut self) {
        if std::mem::replace(&mut self.begun, true) {
            return;
        }
        drop(self.janitor.take());
        if let Some(ctl) = &self.kept_relay {
            self.kept_told = sys::send_msg(ctl, b"E", None, None).is_ok();
        }
        if let Some(pid) = self.relay {
            // The relay is our unreaped child, so its pid cannot be reused
            // yet. It finishes the connections in flight (a server inside
            // may have sent its last reply just before it exited, and that
            // reply may not have reached the host client yet), then exits.
            self.relay_pidfd = sys::filter::pidfd_open(pid).ok();
            if self.relay_pidfd.is_some() && sys::send_signal(pid, sys::SIGTERM).is_err() {
                self.relay_pidfd = None;
            }
        }
    }
}

/// Waits until the relay told to finish by `Ending::begin` (`pidfd`: None
/// if it could not be told) has finished its connections: it writes a byte
/// on `done` then, and is gone (exiting) when its pidfd turns readable. One
/// poll with a deadline, no sleeps. After the deadline it is killed. The
/// caller reaps it.
fn finish_relay(pid: i32, pidfd: Option<OwnedFd>, done: Option<OwnedFd>) {
    if let Some(fd) = &pidfd {
        let mut pf = vec![sys::PollFd { fd: fd.as_raw_fd(), events: sys::POLLIN, revents: 0 }];
        if let Some(d) = &done {
            pf.push(sys::PollFd { fd: d.as_raw_fd(), events: sys::POLLIN, revents: 0 });
        }
        let deadline = Instant::now() + RELAY_DRAIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match sys::poll_fds(&mut pf, left.as_millis().max(1) as i32) {
                // Drained or exited; a relay that died early closed `done`
                // (POLLHUP), which also ends its connections.
                Ok(n) if n > 0 => return,
                Ok(_) => continue, // EINTR or the deadline: re-checked above
                Err(_) => break,
            }
        }
    }
    let _ = sys::send_signal(pid, sys::SIGKILL);
}

/// Waits until the relay of a lent namespace, told by `Ending::begin`, has
/// finished the command's connections (it answers `D`); false when it did
/// not within the drain time: then the namespace is not given back, and
/// the server ends that relay.
fn finish_kept_relay(ctl: &OwnedFd) -> bool {
    let deadline = Instant::now() + RELAY_DRAIN;
    let mut b = [0u8; 2];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut pf = [sys::PollFd { fd: ctl.as_raw_fd(), events: sys::POLLIN, revents: 0 }];
        match sys::poll_fds(&mut pf, left.as_millis().max(1) as i32) {
            Ok(n) if n > 0 => return matches!(sys::recv_msg(ctl, &mut b, true), Ok(m) if m.len == 1 && b[0] == b'D'),
            Ok(_) => continue, // EINTR or the deadline: re-checked above
            Err(_) => return false,
        }
    }
}

/// The start of a helper the launcher forks (egress, relay, network
/// helper): it dies with the launcher (and leaves at once if the launcher is
/// already gone), takes no forwarded signal blocked from it, leaves terminal
/// signals to the launcher (own process group) and holds only `keep` above
/// the standard descriptors.
pub fn helper_child(launcher: i32, keep: &[i32]) {
    let _ = sys::set_pdeathsig(sys::SIGKILL);
    if sys::ppid() != launcher {
        sys::exit_now(125);
    }
    let _ = sys::unblock_all_signals();
    let _ = sys::own_process_group();
    let _ = sys::close_fds_except(3, keep);
}

fn arm_pdeathsig(parent: i32) -> Result<(), SetupError> {
    sys::set_pdeathsig(sys::SIGKILL).map_err(|e| setup("pdeathsig", e))?;
    if sys::ppid() != parent {
        // The caller is already gone: nobody wants this sandbox any more.
        sys::exit_now(125);
    }
    Ok(())
}

/// Waits for PID 1, forwarding signals and enforcing the timeout; returns
/// the launcher's exit code.
fn monitor(cfg: &RunConfig, pid1: i32, status: &OwnedFd, set: &sys::SigSet, ending: &mut Ending) -> i32 {
    let sfd = match sys::signal_fd(set) {
        Ok(fd) => fd,
        Err(e) => {
            crate::report("signalfd", &sys::errno_text(&e));
            let _ = sys::send_signal(pid1, sys::SIGKILL);
            let _ = sys::wait_pid(pid1, false);
            return 125;
        }
    };
    let deadline = (cfg.timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(cfg.timeout_ms));
    let mut timed_out = false;
    let mut status_open = true;
    let mut end: Option<End> = None;
    let mut started = false;
    let mut pid1_status: Option<sys::WaitStatus> = None;
    let mut buf = [0u8; 64];

    let handle_msg = |len: usize, cred: Option<sys::UCred>, buf: &[u8], end: &mut Option<End>, started: &mut bool| {
        if len == 0 {
            return;
        }
        match buf[0] {
            b'S' if len >= 7 => {
                let ll = i32::from_ne_bytes(buf[1..5].try_into().unwrap());
                let start = Start {
                    child_pid: cred.map(|c| c.pid).filter(|&p| p > 0).unwrap_or(pid1),
                    proc_mode: match buf[5] {
                        1 => Some("fresh"),
                        2 => Some("host-bind"),
                        _ => None,
                    },
                    landlock: (ll >= 0).then_some(ll as u32),
                    seccomp: buf[6] != 0,
                };
                *started = true;
                info::write(cfg.info_fd, &info::start_line(&start));
            }
            b'E' if len >= 5 => *end = Some(End::Code(i32::from_ne_bytes(buf[1..5].try_into().unwrap()))),
            b'K' if len >= 5 => *end = Some(End::Signal(i32::from_ne_bytes(buf[1..5].try_into().unwrap()))),
            _ => {}
        }
    };

    let leave_pid1 = REAPED_ABOVE.load(std::sync::atomic::Ordering::Relaxed);
    while pid1_status.is_none() && !(leave_pid1 && end.is_some()) {
        let timeout = match deadline {
            Some(d) if !timed_out => {
                let left = d.saturating_duration_since(Instant::now());
                left.as_millis().min(i32::MAX as u128) as i32
            }
            _ => -1,
        };
        let mut fds = vec![sys::PollFd { fd: sfd.as_raw_fd(), events: sys::POLLIN, revents: 0 }];
        if status_open {
            fds.push(sys::PollFd { fd: status.as_raw_fd(), events: sys::POLLIN, revents: 0 });
        }
        let n = sys::poll_fds(&mut fds, timeout).unwrap_or(0);
        if n == 0 && timeout >= 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            // The whole sandbox goes: killing PID 1 ends its pid namespace.
            timed_out = true;
            let _ = sys::send_signal(pid1, sys::SIGKILL);
        }
        while let Ok(Some(sig)) = sys::read_signal_fd(&sfd) {
            if sig == sys::SIGCHLD {
                if let Ok(Some((_, st))) = sys::wait_pid(pid1, true) {
                    pid1_status = Some(st);
                }
            } else {
                let _ = sys::send_signal(pid1, sig);
            }
        }
        if status_open && fds.len() > 1 && fds[1].revents != 0 {
            match sys::recv_msg(status, &mut buf, true) {
                Ok(r) if r.len == 0 => status_open = false,
                Ok(r) => {
                    handle_msg(r.len, r.cred, &buf, &mut end, &mut started);
                    if end.is_some() {
                        ending.begin();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => status_open = false,
            }
        }
    }
    // Messages sent just before PID 1 ended.
    while let Ok(r) = sys::recv_msg(status, &mut buf, true) {
        if r.len == 0 {
            break;
        }
        handle_msg(r.len, r.cred, &buf, &mut end, &mut started);
    }
    if timed_out {
        info::write(cfg.info_fd, &info::end_line(&End::Code(124), true));
        crate::report("timeout", &format!("killed the sandbox after {} ms", cfg.timeout_ms));
        return 124;
    }
    match (end, pid1_status) {
        (Some(End::Code(c)), _) => {
            info::write(cfg.info_fd, &info::end_line(&End::Code(c), false));
            c
        }
        (Some(End::Signal(s)), _) => {
            info::write(cfg.info_fd, &info::end_line(&End::Signal(s), false));
            128 + s
        }
        // PID 1 failed during setup (it printed why) or was killed.
        (None, Some(sys::WaitStatus::Exited(c))) => {
            if started {
                info::write(cfg.info_fd, &info::end_line(&End::Code(c), false));
            }
            c
        }
        (None, Some(sys::WaitStatus::Signaled(s))) => {
            if started {
                info::write(cfg.info_fd, &info::end_line(&End::Signal(s), false));
            }
            128 + s
        }
        (None, None) => 125,
    }
}
