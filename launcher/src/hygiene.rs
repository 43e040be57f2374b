//! The command's own process, between fork and exec: session, descriptors,
//! privileges and the seccomp filter (`command_prepare`, which needs nothing
//! of the sandbox's file tree, so PID 1 may run it while it builds the
//! root), then Landlock, working directory and exec (`command_exec`).

use crate::args::{EnvOp, RunConfig};
use crate::sys;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

pub struct CmdCtx<'a> {
    pub cfg: &'a RunConfig,
    /// Channel to the launcher: the start report travels on it.
    pub status: &'a OwnedFd,
    pub proc_mode: Option<&'static str>,
    pub userns: bool,
    /// The caller's working directory (used when --chdir is absent).
    pub cwd: Option<OsString>,
}

/// Applies --clearenv/--setenv/--unsetenv in order to `base`.
pub fn build_env(base: Vec<(OsString, OsString)>, ops: &[EnvOp]) -> Vec<(OsString, OsString)> {
    let mut env = base;
    for op in ops {
        match op {
            EnvOp::Clear => env.clear(),
            EnvOp::Unset(k) => env.retain(|(ek, _)| ek != k),
            EnvOp::Set(k, v) => {
                env.retain(|(ek, _)| ek != k);
                env.push((k.clone(), v.clone()));
            }
        }
    }
    env
}

/// The candidates execvpe would try for `cmd` given the sandbox's PATH.
pub fn candidates(cmd: &OsStr, path: Option<&OsStr>) -> Vec<Vec<u8>> {
    let c = cmd.as_bytes();
    if c.contains(&b'/') {
        return vec![c.to_vec()];
    }
    let path = path.map(|p| p.as_bytes()).unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    path.split(|&b| b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut v = dir.to_vec();
            v.push(b'/');
            v.extend_from_slice(c);
            v
        })
        .collect()
}

fn die(step: &str, e: &io::Error) -> ! {
    crate::report(step, &sys::errno_text(e));
    sys::exit_now(125)
}

pub fn command_main(ctx: &CmdCtx) -> ! {
    command_prepare(ctx.cfg, ctx.status, ctx.userns, None);
    command_exec(ctx)
}

/// Session, descriptors (all above 2 closed but the status channel, the
/// `--keep-fd`s and `extra`), privileges, then the seccomp filter: after it
/// the process can only finish its way to exec.
pub fn command_prepare(cfg: &RunConfig, status: &OwnedFd, userns: bool, extra: Option<i32>) {
    let _ = sys::unblock_all_signals();
    // Rust's runtime ignores SIGPIPE at start-up and an ignored signal
    // survives exec: `yes | head` inside would print EPIPE errors.
    sys::default_signal(sys::SIGPIPE);
    // A new session: no controlling terminal, so TIOCSTI cannot inject into
    // the caller's (T1); terminal signals reach the launcher, which forwards.
    if let Err(e) = sys::new_session() {
        die("setsid", &e);
    }
    let mut keep = cfg.keep_fds.clone();
    keep.push(status.as_raw_fd()); // close-on-exec: gone at exec
    keep.extend(extra);
    if let Err(e) = sys::close_fds_except(3, &keep) {
        die("close descriptors", &e);
    }
    if let Err(e) = sys::set_no_new_privs() {
        die("no_new_privs", &e);
    }
    if let Err(e) = sys::drop_cap_bounding() {
        die("drop capabilities", &e);
    }
    if !userns && (cfg.uid.is_some() || cfg.gid.is_some()) {
        let ids = sys::ids();
        if let Err(e) = sys::switch_ids(cfg.uid.unwrap_or(ids.uid), cfg.gid.unwrap_or(ids.gid)) {
            die("switch uid/gid", &e);
        }
    }
    if let Err(e) = sys::clear_caps() {
        die("drop capabilities", &e);
    }
    // Landlock comes after it (its calls are allowed): it needs the files
    // of the finished tree.
    crate::security_seccomp(cfg);
}

/// Landlock (in the finished tree), the start report, working directory,
/// exec with a PATH search.
pub fn command_exec(ctx: &CmdCtx) -> ! {
    let cfg = ctx.cfg;
    let landlock_abi = crate::security_landlock(cfg);
    // Report the start with our own pid: SCM_CREDENTIALS lets the kernel
    // translate it into the launcher's pid namespace.
    let mut msg = vec![b'S'];
    msg.extend_from_slice(&landlock_abi.map(|a| a as i32).unwrap_or(-1).to_ne_bytes());
    msg.push(match ctx.proc_mode {
        Some("fresh") => 1,
        Some(_) => 2,
        None => 0,
    });
    msg.push(cfg.seccomp as u8);
    let _ = sys::send_msg(ctx.status, &msg, None, Some(sys::pid()));

    let env = build_env(std::env::vars_os().collect(), &cfg.env);
    let mut env = env;
    let dir = cfg.chdir.clone().or_else(|| ctx.cwd.clone());
    let mut pwd = None;
    if let Some(d) = dir {
        let c = sys::cstr(&d).unwrap_or_default();
        match sys::change_dir(&c) {
            Ok(()) => pwd = Some(d),
            Err(e) if cfg.chdir.is_some() => die(&format!("chdir {}", d.to_string_lossy()), &e),
            Err(_) => {
                let _ = sys::change_dir(c"/");
                pwd = Some(OsString::from("/"));
            }
        }
    }
    if let Some(p) = pwd {
        env.retain(|(k, _)| k != "PWD");
        env.push((OsString::from("PWD"), p));
    }
    let envp: Vec<CString> = env
        .iter()
        .filter_map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()).ok())
        .collect();
    let argv: Vec<CString> = match cfg.argv.iter().map(|a| sys::cstr(a)).collect::<Result<_, _>>() {
        Ok(v) => v,
        Err(e) => die("exec", &e),
    };
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str());
    let cmd = cfg.argv[0].to_string_lossy().into_owned();
    let mut seen_eacces = None;
    let mut last = io::Error::from_raw_os_error(2);
    for cand in candidates(&cfg.argv[0], path) {
        let Ok(p) = CString::new(cand) else { continue };
        let e = sys::exec(&p, &argv, &envp);
        match e.raw_os_error() {
            Some(2) | Some(20) => {} // ENOENT, ENOTDIR: try the next directory
            // EACCES from an unsearchable PATH directory is not "found".
            Some(13) if std::fs::symlink_metadata(OsStr::from_bytes(p.as_bytes())).is_ok() => seen_eacces = Some(e),
            Some(13) => {}
            _ => {
                last = e;
                break;
            }
        }
    }
    let e = seen_eacces.unwrap_or(last);
    let code = if e.raw_os_error() == Some(2) || e.raw_os_error() == Some(20) { 127 } else { 126 };
    crate::report(&format!("exec {cmd}"), &sys::errno_text(&e));
    sys::exit_now(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_ops_apply_in_order() {
        let base = vec![("A".into(), "1".into()), ("B".into(), "2".into())];
        let ops = vec![EnvOp::Unset("A".into()), EnvOp::Set("C".into(), "3".into()), EnvOp::Set("B".into(), "x".into())];
        let e = build_env(base.clone(), &ops);
        assert_eq!(e, vec![("C".into(), "3".into()), ("B".into(), "x".into())]);
        let e = build_env(base, &[EnvOp::Clear, EnvOp::Set("Z".into(), "z".into())]);
        assert_eq!(e, vec![(OsString::from("Z"), OsString::from("z"))]);
    }

    #[test]
    fn path_candidates() {
        assert_eq!(candidates(OsStr::new("./x"), None), vec![b"./x".to_vec()]);
        assert_eq!(candidates(OsStr::new("ls"), Some(OsStr::new("/a::/b"))), vec![b"/a/ls".to_vec(), b"./ls".to_vec(), b"/b/ls".to_vec()]);
    }
}
