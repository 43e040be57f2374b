//! PID 1 of the sandbox: builds the root, starts the command, forwards
//! signals to it, reaps every child, and when the command ends kills what
//! is left in the namespace and reports the command's status.

use crate::hygiene::{self, CmdCtx};
use crate::sys;
use crate::args::RunConfig;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

pub struct Pid1Ctx<'a> {
    pub cfg: &'a RunConfig,
    pub status: OwnedFd,
    pub janitor: Option<OwnedFd>,
    pub userns: bool,
    pub cwd: Option<OsString>,
    pub host_mnt_ns: Option<u64>,
    /// The ready channel of the process that makes the network namespace
    /// (None: --share-net).
    pub net: Option<OwnedFd>,
    pub host_net_ns: Option<u64>,
    /// The network namespace the spawn server lent this run: known from
    /// the start, so the command's process can start early (see `main`).
    pub lent_net: Option<OwnedFd>,
}

fn die(step: &str, reason: &str) -> ! {
    crate::report(step, reason);
    sys::exit_now(125)
}

/// The ready message of the relay (or the namespace helper): its network
/// namespace, or None when it ended without one (it printed why).
fn network_message(chan: &OwnedFd) -> std::io::Result<Option<OwnedFd>> {
    let mut buf = [0u8; 8];
    let msg = sys::recv_msg(chan, &mut buf, false)?;
    Ok(match (msg.len, buf[0], msg.fds.len()) {
        (1, 1, 1) => msg.fds.into_iter().next(),
        _ => None,
    })
}

/// Waits for the relay (or the namespace helper) to be ready and joins the
/// network namespace it made. Exits 125 when it never got ready (it printed
/// why) or the namespace is not a new one (N6).
fn join_network(chan: OwnedFd, host: Option<u64>) {
    let ns = match network_message(&chan) {
        Ok(Some(ns)) => ns,
        Ok(None) => sys::exit_now(125),
        Err(e) => die("network", &sys::errno_text(&e)),
    };
    join_checked(&ns, host);
}

/// Joins `ns` unless it is the host's network namespace (N6).
fn join_checked(ns: &OwnedFd, host: Option<u64>) {
    match sys::stat_fd(ns) {
        Ok(st) if Some(st.ino) == host => die("net namespace", "not isolated from the host"),
        Ok(_) => {}
        Err(e) => die("net namespace", &sys::errno_text(&e)),
    }
    if let Err(e) = sys::relay::join_netns(ns.as_fd()) {
        die("join network namespace", &sys::errno_text(&e));
    }
}

/// How /proc was set up, as one byte for the early command process.
const PROC_MODES: [(u8, Option<&str>); 3] = [(0, None), (1, Some("fresh")), (2, Some("host-bind"))];

pub fn main(mut ctx: Pid1Ctx) -> ! {
    let cfg = ctx.cfg;
    if let Err(e) = sys::set_pdeathsig(sys::SIGKILL) {
        die("pdeathsig", &sys::errno_text(&e));
    }
    // The launcher may have died before PDEATHSIG was armed: its end of
    // the status channel would then be closed.
    let mut pf = [sys::PollFd { fd: ctx.status.as_raw_fd(), events: sys::POLLIN, revents: 0 }];
    if sys::poll_fds(&mut pf, 0).is_ok() && pf[0].revents & sys::POLLHUP != 0 {
        sys::exit_now(125);
    }
    // Everything in the sandbox can read /proc/1/cmdline: it must not show
    // the launcher's flags (--relay-token is a secret).
    if let Err(e) = sys::wipe_cmdline() {
        die("hide arguments", &sys::errno_text(&e));
    }
    // Terminal signals are for the launcher (it forwards them); not twice.
    let _ = sys::own_process_group();
    if sys::pid() != 1 {
        die("pid namespace", "not pid 1 in the new namespace");
    }
    if let Err(e) = sys::unshare_ns(sys::CLONE_NEWNS) {
        die("unshare mount namespace", &sys::errno_text(&e));
    }
    if let (Some(host), Ok(now)) = (ctx.host_mnt_ns, sys::ns_ino("mnt")) {
        if host == now {
            die("mount namespace", "not isolated from the host");
        }
    }
    // The janitor must not clean up before this mount namespace is gone
    // (unlinking a placeholder from outside would lazily unmount the mask
    // inside). Our pidfd turns readable only after every process of the
    // pid namespace was reaped, hence after they all dropped the namespace.
    if let Some(j) = &ctx.janitor {
        let sent = sys::pidfd_self().and_then(|p| sys::send_msg(j, b"p", Some(p.as_raw_fd()), None));
        if let Err(e) = sent {
            die("janitor", &sys::errno_text(&e));
        }
    }
    // With the network namespace at hand (lent by the spawn server, or the
    // host's with --share-net) the command's process starts now: closing
    // descriptors, dropping privileges and compiling its seccomp filter need
    // nothing of the sandbox's file tree, so they overlap with the root's
    // construction. It then waits for our word (the proc mode: one byte)
    // before Landlock and exec; our death is EOF there.
    let early = match (ctx.lent_net.take(), cfg.share_net) {
        (None, false) => None,
        (lent, _) => {
            if let Some(ns) = lent {
                join_checked(&ns, ctx.host_net_ns);
            }
            let (go_r, go_w) = match sys::pipe_cloexec() {
                Ok(p) => p,
                Err(e) => die("command channel", &sys::errno_text(&e)),
            };
            match sys::fork_process() {
                Ok(0) => {
                    drop((go_w, ctx.janitor.take(), ctx.net.take()));
                    hygiene::command_prepare(cfg, &ctx.status, ctx.userns, Some(go_r.as_raw_fd()));
                    let mut b = [0u8; 1];
                    let proc_mode = match sys::read_fd(go_r.as_raw_fd(), &mut b) {
                        Ok(1) => PROC_MODES.iter().find(|(c, _)| *c == b[0]).and_then(|(_, m)| *m),
                        _ => sys::exit_now(125),
                    };
                    drop(go_r);
                    hygiene::command_exec(&CmdCtx { cfg, status: &ctx.status, proc_mode, userns: ctx.userns, cwd: ctx.cwd.clone() })
                }
                Ok(pid) => Some((pid, go_w)),
                Err(e) => die("fork command", &sys::errno_text(&e)),
            }
        }
    };
    let built = match crate::mounts::build(cfg, ctx.janitor.as_ref()) {
        Ok(b) => b,
        Err(e) => {
            // The relay sets up at the same time; if it failed too, it has
            // printed its line already, and a failed run prints one line.
            if let Some(chan) = ctx.net.take() {
                if matches!(network_message(&chan), Ok(None)) {
                    sys::exit_now(125);
                }
            }
            die(&e.step, &e.reason)
        }
    };

    // The relay made its namespace and bound its listeners while we built
    // the root; the command starts only inside that namespace, once every
    // relay is ready.
    if let Some(chan) = ctx.net.take() {
        join_network(chan, ctx.host_net_ns);
    }

    let sigs: Vec<i32> = sys::FORWARDED.iter().copied().chain([sys::SIGCHLD]).collect();
    let set = sys::sigset(&sigs);
    let cmd = match early {
        Some((pid, go_w)) => {
            let code = PROC_MODES.iter().find(|(_, m)| *m == built.proc_mode).map_or(0, |(c, _)| *c);
            // If it died meanwhile, its end is reaped below like any end.
            let _ = sys::write_all_fd(go_w.as_raw_fd(), &[code]);
            pid
        }
        None => match sys::fork_process() {
            Ok(0) => {
                drop(ctx.janitor);
                hygiene::command_main(&CmdCtx { cfg, status: &ctx.status, proc_mode: built.proc_mode, userns: ctx.userns, cwd: ctx.cwd.clone() })
            }
            Ok(pid) => pid,
            Err(e) => die("fork command", &sys::errno_text(&e)),
        },
    };
    let mut result: Option<sys::WaitStatus> = None;
    while result.is_none() {
        let sig = match sys::wait_signal(&set) {
            Ok(s) => s,
            Err(e) => die("sigwaitinfo", &sys::errno_text(&e)),
        };
        if sig != sys::SIGCHLD {
            let _ = sys::send_signal(cmd, sig);
            continue;
        }
        // Reap everything that ended (orphans are re-parented to us).
        while let Ok(Some((pid, st))) = sys::wait_pid(-1, true) {
            if pid == cmd {
                result = Some(st);
            }
        }
    }
    // The command is done: nothing else of the sandbox may outlive it.
    let _ = sys::send_signal(-1, sys::SIGKILL);
    while let Ok(Some(_)) = sys::wait_pid(-1, false) {}
    // Every other process of the namespace is reaped (orphans come to us),
    // so nothing can use a mask any more: the janitor may start now rather
    // than after our namespaces are torn down.
    if let Some(j) = &ctx.janitor {
        let _ = sys::send_msg(j, b"d", None, None);
    }
    let (msg, code) = match result.unwrap() {
        sys::WaitStatus::Exited(c) => (b'E', c),
        sys::WaitStatus::Signaled(s) => (b'K', s),
    };
    let mut m = vec![msg];
    m.extend_from_slice(&code.to_ne_bytes());
    let _ = sys::send_msg(&ctx.status, &m, None, None);
    drop(ctx.janitor);
    sys::exit_now(if msg == b'E' { code } else { 128 + code })
}
