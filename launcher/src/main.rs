//! cordon-launcher: builds the sandbox and runs one command in it.
//! See launcher/FLAGS.md for the flags and ../docs for the contracts.

mod args;
mod bpf;
mod connect;
mod egress;
mod hygiene;
mod info;
mod init;
mod janitor;
mod landlock;
mod mounts;
mod netslot;
mod probe;
mod relay;
mod run;
mod seccomp;
mod serve;
mod sys;
mod unixsock;

use std::process::exit;

/// A failed setup step: printed as `cordon-launcher: <step>: <reason>`, exit 125.
#[derive(Debug)]
pub struct SetupError {
    pub step: String,
    pub reason: String,
}

impl SetupError {
    pub fn new(step: impl Into<String>, reason: String) -> Self {
        SetupError { step: step.into(), reason }
    }
}

/// One line on stderr, the launcher's only error format.
pub fn report(step: &str, reason: &str) {
    let line = format!("cordon-launcher: {step}: {reason}\n");
    let _ = sys::write_all_fd(2, line.as_bytes());
}

/// Landlock in the command's process; returns the ABI applied (None: off or
/// unsupported in best-effort mode). Exits 125 when it is required and fails.
pub fn security_landlock(cfg: &args::RunConfig) -> Option<u32> {
    match landlock::apply(cfg) {
        Ok(abi) => abi,
        Err(e) => {
            report("landlock", &e);
            sys::exit_now(125)
        }
    }
}

/// The channel to the Unix-socket supervisor (--allow-unix-socket), set in
/// `main` before the sandbox is built; the command process sends its seccomp
/// listener on it. -1: no supervisor.
static SUPERVISOR_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The command's seccomp filter, installed last before exec.
pub fn security_seccomp(cfg: &args::RunConfig) {
    match seccomp::install_command_filter(cfg) {
        Ok(None) => {}
        Ok(Some(listener)) => {
            use std::os::fd::AsRawFd;
            let chan = SUPERVISOR_FD.load(std::sync::atomic::Ordering::Relaxed);
            // The listener is close-on-exec, so the command never holds it
            // (it could otherwise answer its own connect() notifications).
            if chan < 0 || sys::filter::send_fd(chan, listener.as_raw_fd()).is_err() {
                report("seccomp", "cannot reach the unix socket supervisor");
                sys::exit_now(125)
            }
        }
        Err(e) => {
            report("seccomp", &e);
            sys::exit_now(125)
        }
    }
}

/// Seccomp for the launcher's helper processes (janitor, relay).
pub fn security_helper_filter() {
    if let Err(e) = seccomp::install_helper_filter() {
        report("seccomp", &e);
        sys::exit_now(125)
    }
}

/// --allow-unix-socket: fork the supervisor now, while this process is still
/// in the host's namespaces (it resolves allowed paths on the host and, as
/// the owner of the sandbox's user namespace, may pidfd_getfd from it). The
/// command's end of the channel is close-on-exec and kept through the fd
/// cleanup via keep_fds.
fn start_unix_supervisor(cfg: &mut args::RunConfig) -> Result<(), SetupError> {
    use std::os::fd::{AsRawFd, IntoRawFd};
    if !matches!(cfg.unix_sockets, args::UnixSockets::Only(_)) || !cfg.seccomp {
        return Ok(());
    }
    let (sup_end, cmd_end) = sys::seqpacket_pair().map_err(|e| SetupError::new("unix socket supervisor", sys::errno_text(&e)))?;
    let snapshot = cfg.clone();
    let sup_raw = sup_end.as_raw_fd();
    let pid = sys::filter::fork_spawn(move || {
        // Only the channel survives (this also closes the command's end).
        let _ = sys::new_session();
        let _ = sys::close_fds_except(3, &[sup_raw]);
        // Hardened and pinned before the sandbox exists; the ready byte
        // lets the launcher go on only then.
        if let Err(e) = unixsock::harden() {
            report("unix socket supervisor", &e);
            return 125;
        }
        let pinned = unixsock::pin_all(&snapshot);
        if sys::write_all_fd(sup_raw, b"R").is_err() {
            return 125;
        }
        match sys::filter::recv_fd(sup_raw) {
            Ok(listener) => unixsock::serve(listener, pinned),
            // The command never started (setup failed): nothing to serve.
            Err(_) => 0,
        }
    })
    .map_err(|e| SetupError::new("fork unix socket supervisor", sys::errno_text(&e)))?;
    drop(sup_end);
    let mut ready = [0u8; 1];
    if !matches!(sys::read_fd(cmd_end.as_raw_fd(), &mut ready), Ok(1)) || ready[0] != b'R' {
        let _ = sys::wait_pid(pid, false);
        return Err(SetupError::new("unix socket supervisor", "did not start".to_string()));
    }
    let fd = cmd_end.into_raw_fd();
    SUPERVISOR_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
    cfg.keep_fds.push(fd);
    Ok(())
}

/// Forks the egress helper (protocol v2) while the launcher is still in
/// the host's network namespace; returns its pid and the relay's end of the
/// channel. Only when there are outbound relays.
pub fn start_egress(cfg: &args::RunConfig) -> Result<Option<(i32, std::os::fd::OwnedFd)>, SetupError> {
    use std::os::fd::AsRawFd;
    if cfg.relay_ports.is_empty() || cfg.share_net {
        return Ok(None);
    }
    let err = |step: &str, e: std::io::Error| SetupError::new(step, sys::errno_text(&e));
    let (relay_end, egress_end) = sys::seqpacket_pair().map_err(|e| err("egress", e))?;
    let me = sys::pid();
    match sys::fork_process().map_err(|e| err("fork egress", e))? {
        0 => {
            drop(relay_end);
            run::helper_child(me, &[egress_end.as_raw_fd()]);
            egress::main(egress_end)
        }
        pid => Ok(Some((pid, relay_end))),
    }
}

/// `run`: builds the sandbox and runs the command; the exit code to leave
/// with. Also the entry of a launcher forked by the spawn server.
pub fn run_main(cfg: args::RunConfig) -> i32 {
    run_main_lent(cfg, None)
}

/// `run_main` with a network namespace lent by the spawn server.
pub fn run_main_lent(mut cfg: args::RunConfig, lent: Option<netslot::Lent>) -> i32 {
    match run::preflight().and_then(|()| start_unix_supervisor(&mut cfg)).and_then(|()| run::run(cfg, lent)) {
        Ok(code) => code,
        Err(e) => {
            report(&e.step, &e.reason);
            125
        }
    }
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args::parse(argv) {
        Ok(args::Command::Version) => println!("cordon-launcher {}", env!("CARGO_PKG_VERSION")),
        Ok(args::Command::Help) => print!("{}", args::HELP),
        Ok(args::Command::Probe) => exit(probe::main()),
        Ok(args::Command::Serve { socket }) => exit(serve::main(&socket)),
        Ok(args::Command::Connect { host, port, proxy_port }) => exit(connect::connect_main(&host, port, proxy_port)),
        Ok(args::Command::Run(cfg)) => exit(run_main(cfg)),
        Err(e) => {
            eprintln!("cordon-launcher: {}\n{}", e.0, args::USAGE);
            exit(125);
        }
    }
}
