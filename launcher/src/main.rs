//! cordon-launcher: builds the sandbox and runs one command in it.
//! See launcher/FLAGS.md for the flags and ../docs for the contracts.

mod args;
mod hygiene;
mod info;
mod init;
mod janitor;
mod mounts;
mod run;
mod sys;

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
pub fn security_landlock(_cfg: &args::RunConfig) -> Option<u32> {
    None
}

/// The command's seccomp filter, installed last before exec.
pub fn security_seccomp(_cfg: &args::RunConfig) {}

/// Seccomp for the launcher's helper processes (janitor, relay).
pub fn security_helper_filter() {}

/// Forks the relay process when the plan asks for relays or published
/// ports; returns its pid once every listener is bound.
pub fn start_relay(cfg: &args::RunConfig, _janitor_fd: Option<i32>) -> Result<Option<i32>, SetupError> {
    if cfg.relay_ports.is_empty() && cfg.publish.is_empty() {
        return Ok(None);
    }
    Err(SetupError::new("relay", "not available in this build".to_string()))
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args::parse(argv) {
        Ok(args::Command::Version) => println!("cordon-launcher {}", env!("CARGO_PKG_VERSION")),
        Ok(args::Command::Help) => print!("{}", args::HELP),
        Ok(args::Command::Run(cfg)) => match run::run(cfg) {
            Ok(code) => exit(code),
            Err(e) => {
                report(&e.step, &e.reason);
                exit(125);
            }
        },
        Ok(_) => {
            report("sub-command", "not built yet");
            exit(125);
        }
        Err(e) => {
            eprintln!("cordon-launcher: {}\n{}", e.0, args::USAGE);
            exit(125);
        }
    }
}
