//! Command-line parsing for `cordon-launcher`. Pure: turns argv into a
//! `RunConfig`; it opens nothing and decides nothing about policy. The flags
//! are bubblewrap-like so a Plan printed by `cordon explain` can be run by hand.
//! Filesystem operations keep their order, because later mounts cover earlier ones.

use std::ffi::OsString;

/// One step of the mount plan, executed in order inside the new root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// Bind SRC (host path) at DST (sandbox path). `try_` skips a missing source.
    Bind { src: OsString, dst: OsString, kind: BindKind, try_: bool },
    /// A fresh, private tmpfs at DST.
    Tmpfs { dst: OsString },
    /// A minimal /dev at DST: null zero full random urandom tty, devpts+ptmx, shm.
    Dev { dst: OsString },
    /// A fresh proc at DST (with a restricted read-only bind fallback).
    Proc { dst: OsString },
    /// Hide PATH, whatever it is: an empty read-only dir or file in its place.
    /// A missing PATH under a writable mount gets a placeholder that is
    /// removed from the host when the sandbox ends (no ghost files).
    Mask { path: OsString },
    /// Bind PATH onto itself (keeping its writability) so it becomes a mount
    /// point: it can then not be renamed or removed from inside.
    Pin { path: OsString },
    /// Create a directory at DST inside the sandbox.
    Dir { dst: OsString },
    /// Create a symlink DST -> TARGET inside the sandbox.
    Symlink { target: OsString, dst: OsString },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    ReadOnly,
    ReadWrite,
    /// Read-write and device nodes keep working (no nodev).
    Dev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockMode {
    Off,
    BestEffort,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnixSockets {
    /// socket(AF_UNIX) refused (socketpair still works).
    Deny,
    /// Every host Unix socket reachable (srt `allowAllUnixSockets`).
    All,
    /// Only these absolute socket paths can be connected to; the launcher's
    /// supervisor performs the connect itself (seccomp user notification).
    Only(Vec<OsString>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvOp {
    Set(OsString, OsString),
    Unset(OsString),
    Clear,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    pub mounts: Vec<MountOp>,
    pub env: Vec<EnvOp>,
    pub chdir: Option<OsString>,
    pub hostname: Option<OsString>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Create a user namespace even when invoked as real root.
    pub unshare_user: bool,
    pub share_net: bool,
    pub info_fd: Option<i32>,
    pub keep_fds: Vec<i32>,
    /// Kill the whole sandbox after this many milliseconds (0 = no limit).
    pub timeout_ms: u64,
    pub seccomp: bool,
    pub unix_sockets: UnixSockets,
    pub allow_userns: bool,
    pub landlock: LandlockMode,
    /// Paths beneath which Landlock allows writes (plus /tmp and /dev nodes
    /// that the plan creates).
    pub landlock_write: Vec<OsString>,
    /// Ports on 127.0.0.1 (and ::1) inside the sandbox netns that relay to
    /// the host proxy socket.
    pub relay_ports: Vec<u16>,
    pub relay_socket: Option<OsString>,
    pub relay_token: Option<OsString>,
    /// (host Unix socket path to create, port inside the sandbox): inbound.
    pub publish: Vec<(OsString, u16)>,
    pub argv: Vec<OsString>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            mounts: Vec::new(),
            env: Vec::new(),
            chdir: None,
            hostname: None,
            uid: None,
            gid: None,
            unshare_user: false,
            share_net: false,
            info_fd: None,
            keep_fds: Vec::new(),
            timeout_ms: 0,
            seccomp: true,
            unix_sockets: UnixSockets::Deny,
            allow_userns: false,
            landlock: LandlockMode::BestEffort,
            landlock_write: Vec::new(),
            relay_ports: Vec::new(),
            relay_socket: None,
            relay_token: None,
            publish: Vec::new(),
            argv: Vec::new(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(RunConfig),
    /// `connect HOST PORT`: stdio <-> SOCKS5 CONNECT through 127.0.0.1:1080
    /// (ssh ProxyCommand inside the sandbox).
    Connect { host: String, port: u16, proxy_port: u16 },
    /// `probe`: JSON report of which kernel features work (for `cordon doctor`).
    Probe,
    /// `serve SOCKET`: the spawn server of a long-lived host process (see
    /// serve.rs); descriptor 3 is its control channel.
    Serve { socket: OsString },
    Version,
    Help,
}

pub const USAGE: &str = "usage: cordon-launcher run [FLAGS] -- CMD [ARGS...] | connect HOST PORT | probe | serve SOCKET | --version | --help";

pub const HELP: &str = "\
cordon-launcher: builds a sandbox and runs one command in it.

  cordon-launcher run [FLAGS] -- CMD [ARGS...]
  cordon-launcher connect HOST PORT [--proxy-port N]   stdio over SOCKS5 (ssh ProxyCommand)
  cordon-launcher probe                                 kernel features, as JSON
  cordon-launcher serve SOCKET                          spawn server for a library host (fd 3: control)
  cordon-launcher --version | --help

Filesystem, applied in order:
  --ro-bind SRC DST    --bind SRC DST    --dev-bind SRC DST   (and -try variants)
  --tmpfs DST          --dev DST         --proc DST
  --mask PATH          hide PATH (empty read-only dir or file; placeholder if missing)
  --pin PATH           bind PATH onto itself so it cannot be moved or removed
  --dir DST            --symlink TARGET DST
Process:
  --chdir DIR  --setenv VAR VALUE  --unsetenv VAR  --clearenv  --hostname NAME
  --uid N  --gid N  --unshare-user  --unshare-net (default)  --share-net
  --info-fd FD  --keep-fd FD  --timeout-ms N
Security layers (all on by default):
  --no-seccomp  --allow-unix-sockets  --allow-unix-socket PATH  --allow-userns
  --landlock required|best-effort|off  --landlock-write PATH
Network:
  --relay-socket PATH  --relay-token TOKEN  --relay PORT  --publish HOST_SOCKET PORT
";

#[derive(Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

struct Cursor {
    args: Vec<OsString>,
    pos: usize,
}

impl Cursor {
    fn next_operand(&mut self, flag: &str) -> Result<OsString, ArgError> {
        let v = self
            .args
            .get(self.pos)
            .cloned()
            .ok_or_else(|| ArgError(format!("{flag}: missing operand")))?;
        self.pos += 1;
        Ok(v)
    }
    fn next_str(&mut self, flag: &str) -> Result<String, ArgError> {
        self.next_operand(flag)?
            .into_string()
            .map_err(|_| ArgError(format!("{flag}: operand is not UTF-8")))
    }
    fn next_num<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, ArgError> {
        let s = self.next_str(flag)?;
        s.parse::<T>().map_err(|_| ArgError(format!("{flag}: invalid number '{s}'")))
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<OsString>) -> Result<Command, ArgError> {
    let mut c = Cursor { args, pos: 0 };
    let sub = match c.args.first() {
        None => return Err(ArgError("missing sub-command".into())),
        Some(s) => s.to_string_lossy().into_owned(),
    };
    c.pos = 1;
    match sub.as_str() {
        "--version" | "-V" => Ok(Command::Version),
        "--help" | "-h" => Ok(Command::Help),
        "probe" => {
            if c.args.len() > 1 {
                return Err(ArgError("probe: takes no arguments".into()));
            }
            Ok(Command::Probe)
        }
        "connect" => parse_connect(&mut c),
        "serve" => {
            if c.args.len() != 2 {
                return Err(ArgError("serve: expects exactly one SOCKET path".into()));
            }
            Ok(Command::Serve { socket: c.args[1].clone() })
        }
        "run" => parse_run(&mut c).map(Command::Run),
        other => Err(ArgError(format!("unknown sub-command '{other}'"))),
    }
}

fn parse_connect(c: &mut Cursor) -> Result<Command, ArgError> {
    let host = c.next_str("connect")?;
    let port = c.next_num::<u16>("connect")?;
    let mut proxy_port = 1080;
    while c.pos < c.args.len() {
        let flag = c.next_str("connect")?;
        match flag.as_str() {
            "--proxy-port" => proxy_port = c.next_num("--proxy-port")?,
            _ => return Err(ArgError(format!("connect: unknown flag '{flag}'"))),
        }
    }
    if host.is_empty() || host.len() > 255 {
        return Err(ArgError("connect: invalid host".into()));
    }
    Ok(Command::Connect { host, port, proxy_port })
}

fn parse_fd(c: &mut Cursor, flag: &str) -> Result<i32, ArgError> {
    let fd: i32 = c.next_num(flag)?;
    if fd < 0 {
        return Err(ArgError(format!("{flag}: invalid descriptor {fd}")));
    }
    Ok(fd)
}

fn parse_run(c: &mut Cursor) -> Result<RunConfig, ArgError> {
    let mut cfg = RunConfig::default();
    loop {
        let Some(raw) = c.args.get(c.pos).cloned() else {
            return Err(ArgError("run: missing '--' and command".into()));
        };
        c.pos += 1;
        let flag = raw.to_string_lossy().into_owned();
        let bind = |kind, try_: bool, c: &mut Cursor, cfg: &mut RunConfig| -> Result<(), ArgError> {
            let src = c.next_operand(&flag)?;
            let dst = c.next_operand(&flag)?;
            cfg.mounts.push(MountOp::Bind { src, dst, kind, try_ });
            Ok(())
        };
        match flag.as_str() {
            "--" => break,
            "--ro-bind" => bind(BindKind::ReadOnly, false, c, &mut cfg)?,
            "--ro-bind-try" => bind(BindKind::ReadOnly, true, c, &mut cfg)?,
            "--bind" => bind(BindKind::ReadWrite, false, c, &mut cfg)?,
            "--bind-try" => bind(BindKind::ReadWrite, true, c, &mut cfg)?,
            "--dev-bind" => bind(BindKind::Dev, false, c, &mut cfg)?,
            "--dev-bind-try" => bind(BindKind::Dev, true, c, &mut cfg)?,
            "--tmpfs" => cfg.mounts.push(MountOp::Tmpfs { dst: c.next_operand(&flag)? }),
            "--dev" => cfg.mounts.push(MountOp::Dev { dst: c.next_operand(&flag)? }),
            "--proc" => cfg.mounts.push(MountOp::Proc { dst: c.next_operand(&flag)? }),
            "--mask" => cfg.mounts.push(MountOp::Mask { path: c.next_operand(&flag)? }),
            "--pin" => cfg.mounts.push(MountOp::Pin { path: c.next_operand(&flag)? }),
            "--dir" => cfg.mounts.push(MountOp::Dir { dst: c.next_operand(&flag)? }),
            "--symlink" => {
                let target = c.next_operand(&flag)?;
                let dst = c.next_operand(&flag)?;
                cfg.mounts.push(MountOp::Symlink { target, dst });
            }
            "--chdir" => cfg.chdir = Some(c.next_operand(&flag)?),
            "--setenv" => {
                let k = c.next_operand(&flag)?;
                let v = c.next_operand(&flag)?;
                check_env_name(&k, &flag)?;
                cfg.env.push(EnvOp::Set(k, v));
            }
            "--unsetenv" => {
                let k = c.next_operand(&flag)?;
                check_env_name(&k, &flag)?;
                cfg.env.push(EnvOp::Unset(k));
            }
            "--clearenv" => cfg.env.push(EnvOp::Clear),
            "--hostname" => cfg.hostname = Some(c.next_operand(&flag)?),
            "--uid" => cfg.uid = Some(c.next_num(&flag)?),
            "--gid" => cfg.gid = Some(c.next_num(&flag)?),
            "--unshare-user" => cfg.unshare_user = true,
            "--unshare-net" => cfg.share_net = false,
            "--share-net" => cfg.share_net = true,
            "--info-fd" => cfg.info_fd = Some(parse_fd(c, &flag)?),
            "--keep-fd" => {
                let fd = parse_fd(c, &flag)?;
                cfg.keep_fds.push(fd);
            }
            "--timeout-ms" => cfg.timeout_ms = c.next_num(&flag)?,
            "--no-seccomp" => cfg.seccomp = false,
            "--allow-unix-sockets" => cfg.unix_sockets = UnixSockets::All,
            "--allow-unix-socket" => {
                let p = c.next_operand(&flag)?;
                if !p.to_string_lossy().starts_with('/') {
                    return Err(ArgError(format!("{flag}: path must be absolute")));
                }
                match &mut cfg.unix_sockets {
                    UnixSockets::All => {}
                    UnixSockets::Only(v) => v.push(p),
                    UnixSockets::Deny => cfg.unix_sockets = UnixSockets::Only(vec![p]),
                }
            }
            "--allow-userns" => cfg.allow_userns = true,
            "--landlock" => {
                cfg.landlock = match c.next_str(&flag)?.as_str() {
                    "required" => LandlockMode::Required,
                    "best-effort" => LandlockMode::BestEffort,
                    "off" => LandlockMode::Off,
                    other => return Err(ArgError(format!("--landlock: unknown mode '{other}'"))),
                }
            }
            "--landlock-write" => cfg.landlock_write.push(c.next_operand(&flag)?),
            "--relay-socket" => cfg.relay_socket = Some(c.next_operand(&flag)?),
            "--relay-token" => cfg.relay_token = Some(c.next_operand(&flag)?),
            "--relay" => {
                let port: u16 = c.next_num(&flag)?;
                if port == 0 {
                    return Err(ArgError("--relay: port 0".into()));
                }
                cfg.relay_ports.push(port);
            }
            "--publish" => {
                let sock = c.next_operand(&flag)?;
                let port: u16 = c.next_num(&flag)?;
                if port == 0 {
                    return Err(ArgError("--publish: port 0".into()));
                }
                cfg.publish.push((sock, port));
            }
            _ => return Err(ArgError(format!("unknown flag '{flag}'"))),
        }
    }
    cfg.argv = c.args[c.pos..].to_vec();
    if cfg.argv.is_empty() {
        return Err(ArgError("run: missing command after '--'".into()));
    }
    if !cfg.relay_ports.is_empty() && cfg.relay_socket.is_none() {
        return Err(ArgError("--relay needs --relay-socket".into()));
    }
    if cfg.share_net && (!cfg.relay_ports.is_empty() || !cfg.publish.is_empty()) {
        return Err(ArgError("--relay/--publish need the sandbox's own network (not --share-net)".into()));
    }
    Ok(cfg)
}

fn check_env_name(k: &OsString, flag: &str) -> Result<(), ArgError> {
    let s = k.to_string_lossy();
    if s.is_empty() || s.contains('=') || s.contains('\0') {
        return Err(ArgError(format!("{flag}: invalid variable name '{s}'")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Command, ArgError> {
        parse(v.iter().map(OsString::from).collect())
    }

    #[test]
    fn run_keeps_mount_order_and_command() {
        let Command::Run(cfg) = p(&["run", "--ro-bind", "/", "/", "--tmpfs", "/tmp", "--mask", "/x", "--", "echo", "--ro-bind"]).unwrap() else {
            panic!()
        };
        assert_eq!(cfg.mounts.len(), 3);
        assert!(matches!(cfg.mounts[1], MountOp::Tmpfs { .. }));
        assert_eq!(cfg.argv, vec![OsString::from("echo"), OsString::from("--ro-bind")]);
        assert!(cfg.seccomp);
        assert_eq!(cfg.landlock, LandlockMode::BestEffort);
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(p(&["run", "--bogus"]).unwrap_err().0, "unknown flag '--bogus'");
        assert_eq!(p(&["run", "--bind", "/a"]).unwrap_err().0, "--bind: missing operand");
        assert_eq!(p(&["run", "--"]).unwrap_err().0, "run: missing command after '--'");
        assert_eq!(p(&["run", "echo"]).unwrap_err().0, "unknown flag 'echo'");
        assert!(p(&["run", "--uid", "x", "--", "a"]).is_err());
        assert!(p(&["run", "--relay", "3128", "--", "a"]).is_err());
        assert!(p(&["run", "--setenv", "A=B", "v", "--", "a"]).is_err());
        assert!(p(&[]).is_err());
    }

    #[test]
    fn unix_socket_modes() {
        let Command::Run(cfg) = p(&["run", "--allow-unix-socket", "/a.sock", "--allow-unix-socket", "/b.sock", "--", "x"]).unwrap() else {
            panic!()
        };
        assert_eq!(cfg.unix_sockets, UnixSockets::Only(vec!["/a.sock".into(), "/b.sock".into()]));
        assert!(p(&["run", "--allow-unix-socket", "rel.sock", "--", "x"]).is_err());
    }

    #[test]
    fn connect_parses() {
        assert_eq!(
            p(&["connect", "example.com", "22"]).unwrap(),
            Command::Connect { host: "example.com".into(), port: 22, proxy_port: 1080 }
        );
        assert!(p(&["connect", "h", "70000"]).is_err());
    }
}
