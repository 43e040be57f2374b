//! Landlock: the second wall for writes. The mount layer already makes the
//! host read-only except the writable binds; Landlock repeats that decision in
//! the LSM, so a mistake in the mount plan (or a writable bind the plan did
//! not mean) still cannot be written through. On ABI >= 6 it also scopes
//! signals and abstract Unix sockets to the sandbox.

// The full access-right table documents the ABI even where a right is only
// used through a range (handled_fs).
#![allow(dead_code)]

use crate::args::{LandlockMode, MountOp, RunConfig, UnixSockets};
use crate::sys::filter as sys;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

pub const ACCESS_FS_EXECUTE: u64 = 1 << 0;
pub const ACCESS_FS_WRITE_FILE: u64 = 1 << 1;
pub const ACCESS_FS_READ_FILE: u64 = 1 << 2;
pub const ACCESS_FS_READ_DIR: u64 = 1 << 3;
pub const ACCESS_FS_REMOVE_DIR: u64 = 1 << 4;
pub const ACCESS_FS_REMOVE_FILE: u64 = 1 << 5;
pub const ACCESS_FS_MAKE_CHAR: u64 = 1 << 6;
pub const ACCESS_FS_MAKE_DIR: u64 = 1 << 7;
pub const ACCESS_FS_MAKE_REG: u64 = 1 << 8;
pub const ACCESS_FS_MAKE_SOCK: u64 = 1 << 9;
pub const ACCESS_FS_MAKE_FIFO: u64 = 1 << 10;
pub const ACCESS_FS_MAKE_BLOCK: u64 = 1 << 11;
pub const ACCESS_FS_MAKE_SYM: u64 = 1 << 12;
pub const ACCESS_FS_REFER: u64 = 1 << 13;
pub const ACCESS_FS_TRUNCATE: u64 = 1 << 14;

pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
pub const SCOPE_SIGNAL: u64 = 1 << 1;

/// Rights that make sense on a non-directory (Landlock rejects the others
/// on a file rule with EINVAL).
const FILE_RIGHTS: u64 = ACCESS_FS_EXECUTE | ACCESS_FS_WRITE_FILE | ACCESS_FS_READ_FILE | ACCESS_FS_TRUNCATE;
const READ_RIGHTS: u64 = ACCESS_FS_EXECUTE | ACCESS_FS_READ_FILE | ACCESS_FS_READ_DIR;

/// Every filesystem right this ABI can restrict. IOCTL_DEV (v5) is left
/// unhandled on purpose: terminals opened inside need their ioctls, and
/// seccomp already refuses the dangerous ones (TIOCSTI, TIOCLINUX).
pub fn handled_fs(abi: u32) -> u64 {
    let mut a = (1u64 << 13) - 1;
    if abi >= 2 {
        a |= ACCESS_FS_REFER;
    }
    if abi >= 3 {
        a |= ACCESS_FS_TRUNCATE;
    }
    a
}

/// Bytes of `struct landlock_ruleset_attr` the kernel of this ABI knows.
fn attr_size(abi: u32) -> usize {
    match abi {
        0..=3 => 8,
        4..=5 => 16,
        _ => 24,
    }
}

fn unavailable(mode: LandlockMode, why: String) -> Result<Option<u32>, String> {
    match mode {
        LandlockMode::Required => Err(format!("Landlock is required by the policy but this kernel does not support it ({why})")),
        _ => Ok(None),
    }
}

/// Applies Landlock to the calling process (the command, after no_new_privs
/// and the capability drop, before seccomp). Returns the ABI applied, or None
/// when it is off or unavailable and the policy allows that.
pub fn apply(cfg: &RunConfig) -> Result<Option<u32>, String> {
    if cfg.landlock == LandlockMode::Off {
        return Ok(None);
    }
    let abi = match sys::landlock_abi() {
        Ok(v) if v >= 1 => v,
        Ok(v) => return unavailable(cfg.landlock, format!("ABI {v}")),
        Err(e) => {
            let why = match e.raw_os_error() {
                Some(38) => "not built into this kernel".to_string(),
                Some(95) => "disabled at boot: add landlock to the lsm= kernel parameter".to_string(),
                _ => e.to_string(),
            };
            return unavailable(cfg.landlock, why);
        }
    };
    let handled = handled_fs(abi);
    let mut attr = sys::LandlockRulesetAttr { handled_access_fs: handled, handled_access_net: 0, scoped: 0 };
    if abi >= 6 {
        attr.scoped = SCOPE_SIGNAL;
        // With allowAllUnixSockets the user asked for host sockets, and with a
        // shared netns the abstract ones are host sockets too.
        if cfg.unix_sockets != UnixSockets::All {
            attr.scoped |= SCOPE_ABSTRACT_UNIX_SOCKET;
        }
    }
    let ruleset = sys::landlock_create_ruleset(&attr, attr_size(abi)).map_err(|e| format!("landlock: create ruleset: {e}"))?;

    add_rule(ruleset.as_raw_fd(), b"/", READ_RIGHTS & handled, true)?;
    for p in &cfg.landlock_write {
        add_rule(ruleset.as_raw_fd(), p.as_bytes(), handled, false)?;
    }
    // The sandbox's own filesystems (a private tmpfs, the minimal /dev) hold
    // nothing of the host, so they stay writable without being listed.
    for m in &cfg.mounts {
        if let MountOp::Tmpfs { dst } | MountOp::Dev { dst } = m {
            add_rule(ruleset.as_raw_fd(), dst.as_bytes(), handled, false)?;
        }
    }
    sys::landlock_restrict_self(ruleset.as_raw_fd()).map_err(|e| format!("landlock: restrict self: {e}"))?;
    Ok(Some(abi))
}

/// A rule for PATH. A writable path that does not exist in the sandbox is
/// skipped (nothing can be written there through a missing path); the root
/// must exist.
fn add_rule(ruleset: i32, path: &[u8], rights: u64, must_exist: bool) -> Result<(), String> {
    let shown = String::from_utf8_lossy(path).into_owned();
    let c = CString::new(path).map_err(|_| format!("landlock: path contains NUL: {shown}"))?;
    let fd = match sys::open_path(&c) {
        Ok(fd) => fd,
        Err(e) if !must_exist && matches!(e.raw_os_error(), Some(2) | Some(20)) => return Ok(()),
        Err(e) => return Err(format!("landlock: open {shown}: {e}")),
    };
    // statx of the descriptor itself: what it refers to, no path walk.
    let is_dir = crate::sys::stat_fd(&fd).map(|st| st.is_dir()).map_err(|e| format!("landlock: stat {shown}: {e}"))?;
    let rights = if is_dir { rights } else { rights & FILE_RIGHTS };
    sys::landlock_add_path_rule(ruleset, fd.as_raw_fd(), rights).map_err(|e| format!("landlock: rule for {shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_by_abi() {
        assert_eq!(handled_fs(1), 0x1fff);
        assert_eq!(handled_fs(2), 0x3fff);
        assert_eq!(handled_fs(7), 0x7fff);
        assert_eq!(attr_size(3), 8);
        assert_eq!(attr_size(6), 24);
    }

    #[test]
    fn required_without_landlock_is_an_error() {
        assert!(unavailable(LandlockMode::Required, "x".into()).unwrap_err().starts_with("Landlock is required"));
        assert_eq!(unavailable(LandlockMode::BestEffort, "x".into()).unwrap(), None);
    }

    /// A real ruleset in a child: writes beneath the allowed dir work, others fail with EACCES.
    #[test]
    fn restricts_writes_in_a_child() {
        if sys::landlock_abi().is_err() {
            eprintln!("skipped: Landlock not available");
            return;
        }
        let base = std::env::temp_dir().join(format!("cordon-ll-{}", std::process::id()));
        let ok = base.join("ok");
        let no = base.join("no");
        std::fs::create_dir_all(&ok).unwrap();
        std::fs::create_dir_all(&no).unwrap();
        let cfg = RunConfig { landlock: LandlockMode::Required, landlock_write: vec![ok.clone().into_os_string()], ..Default::default() };
        let okf = ok.join("f");
        let nof = no.join("f");
        let code = sys::fork_run(|| {
            if sys::set_no_new_privs().is_err() {
                return 10;
            }
            match apply(&cfg) {
                Ok(Some(_)) => {}
                _ => return 11,
            }
            if std::fs::write(&okf, b"x").is_err() {
                return 12;
            }
            match std::fs::write(&nof, b"x") {
                Err(e) if e.raw_os_error() == Some(13) => 0,
                _ => 13,
            }
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(code, 0);
    }
}
