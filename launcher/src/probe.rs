//! `cordon-launcher probe`: which kernel features really work here, as one
//! JSON object for `cordon doctor`. Every namespace/seccomp row is a real
//! attempt in a forked child (never a guess from version numbers); sysctls
//! are read as they are. Each row: {"ok": bool, "error": string|null, ...}.
//! "ok" means "fine for cordon": for risky kernel features (io_uring, legacy
//! TIOCSTI) it is true when cordon's filter neutralises them.

use crate::sys::filter as sys;
use std::ffi::CString;

const CLONE_NEWNS: i32 = 0x0002_0000;
const CLONE_NEWUSER: i32 = 0x1000_0000;
const CLONE_NEWPID: i32 = 0x2000_0000;
const CLONE_NEWNET: i32 = 0x4000_0000;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_REC: u64 = 0x4000;
const MS_PRIVATE: u64 = 1 << 18;

struct Row {
    name: &'static str,
    ok: bool,
    error: Option<String>,
    extra: Vec<(&'static str, String)>,
}

fn errno_text(code: i32) -> String {
    std::io::Error::from_raw_os_error(code).to_string()
}

/// Child exit codes: 0 ok, 1..=200 an errno, 201+ a step that failed
/// without errno.
fn child_result(r: std::io::Result<i32>) -> Result<(), String> {
    match r {
        Ok(0) => Ok(()),
        Ok(c) if c < 128 => Err(errno_text(c)),
        Ok(c) if c > 128 && c < 160 => Err(format!("probe child killed by signal {}", c - 128)),
        Ok(c) => Err(format!("probe child failed ({c})")),
        Err(e) => Err(format!("fork: {e}")),
    }
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(120).clamp(1, 127)
}

/// In a child: enter a new user namespace with a one-line id map (like the
/// launcher does). Returns 0 or an errno.
fn enter_userns(uid: u32, gid: u32) -> i32 {
    if let Err(e) = sys::sys_unshare(CLONE_NEWUSER) {
        return errno_of(&e);
    }
    let w = |p: &str, s: String| std::fs::write(p, s).map_err(|e| errno_of(&e));
    if let Err(e) = w("/proc/self/setgroups", "deny".into()) {
        return e;
    }
    if let Err(e) = w("/proc/self/uid_map", format!("{uid} {uid} 1\n")) {
        return e;
    }
    if let Err(e) = w("/proc/self/gid_map", format!("{gid} {gid} 1\n")) {
        return e;
    }
    0
}

/// Real root may not need a user namespace; everyone else does. Mirrors the
/// launcher: use a userns when one can be made.
fn enter_userns_if_possible(uid: u32, gid: u32) -> i32 {
    let r = enter_userns(uid, gid);
    if r != 0 && uid == 0 {
        0
    } else {
        r
    }
}

fn probe_ns(uid: u32, gid: u32, flag: i32) -> Result<(), String> {
    child_result(sys::fork_run(|| {
        let r = enter_userns_if_possible(uid, gid);
        if r != 0 {
            return r;
        }
        match sys::sys_unshare(flag) {
            Ok(()) => 0,
            Err(e) => errno_of(&e),
        }
    }))
}

/// A new pid + mount namespace and a fresh proc mounted in it: what the
/// sandbox's PID 1 does.
fn probe_proc(uid: u32, gid: u32) -> Result<(), String> {
    child_result(sys::fork_run(|| {
        let r = enter_userns_if_possible(uid, gid);
        if r != 0 {
            return r;
        }
        if let Err(e) = sys::sys_unshare(CLONE_NEWNS | CLONE_NEWPID) {
            return errno_of(&e);
        }
        let inner = sys::fork_run(|| {
            let none = CString::new("none").unwrap();
            let root = CString::new("/").unwrap();
            let proc_ = CString::new("proc").unwrap();
            let dst = CString::new("/proc").unwrap();
            if let Err(e) = sys::sys_mount(&none, &root, &none, MS_REC | MS_PRIVATE) {
                return errno_of(&e);
            }
            match sys::sys_mount(&proc_, &dst, &proc_, MS_NOSUID | MS_NODEV | MS_NOEXEC) {
                Ok(()) => 0,
                Err(e) => errno_of(&e),
            }
        });
        inner.unwrap_or(201)
    }))
}

fn probe_seccomp(listener: bool) -> Result<(), String> {
    child_result(sys::fork_run(|| {
        // allow-everything program: the probe is whether the kernel accepts a filter
        let prog = [sys::SockFilter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 }];
        if let Err(e) = sys::set_no_new_privs() {
            return errno_of(&e);
        }
        let flags = if listener { sys::SECCOMP_FILTER_FLAG_NEW_LISTENER } else { 0 };
        match sys::seccomp_set_filter(&prog, flags) {
            Ok(_) => 0,
            Err(e) => errno_of(&e),
        }
    }))
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn row(name: &'static str, r: Result<(), String>) -> Row {
    let mut row = Row { name, ok: r.is_ok(), error: r.err(), extra: Vec::new() };
    if !row.ok {
        if let Some(fix) = remedy(name) {
            row.extra.push(("remedy", json_str(fix)));
        }
    }
    row
}

/// One line a user can act on, per failing row.
fn remedy(name: &str) -> Option<&'static str> {
    Some(match name {
        "user_namespaces" => "enable unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1 (Debian) or user.max_user_namespaces>0; in a container, run it with --security-opt seccomp=unconfined or privileged",
        "mount_namespaces" | "pid_namespaces" | "net_namespaces" => "the kernel or the container runtime refuses this namespace; run on the host or allow unshare in the container's seccomp profile",
        "proc_mount" => "/proc is partly covered (typical in containers); run the container with an unmasked /proc (e.g. --security-opt systempaths=unconfined)",
        "seccomp" | "seccomp_user_notif" => "build the kernel with CONFIG_SECCOMP_FILTER (user notification needs Linux >= 5.0, pidfd_getfd >= 5.6)",
        "landlock" => "boot with landlock in lsm= (e.g. lsm=landlock,lockdown,yama,apparmor,bpf); cordon still runs with --landlock best-effort",
        "io_uring" | "legacy_tiocsti" => "sysctl kernel.io_uring_disabled=2 / dev.tty.legacy_tiocsti=0, or enable seccomp",
        "apparmor_userns" => "sysctl kernel.apparmor_restrict_unprivileged_userns=0, or add an AppArmor profile that grants userns to cordon-launcher",
        "max_user_namespaces" => "sysctl user.max_user_namespaces=15000",
        _ => return None,
    })
}

/// Runs every probe; returns the rows in display order.
fn collect() -> Vec<Row> {
    let (uid, gid) = sys::ids();
    let mut rows = Vec::new();

    let userns = child_result(sys::fork_run(|| enter_userns(uid, gid)));
    let userns_ok = userns.is_ok();
    rows.push(row("user_namespaces", userns));
    rows.push(row("mount_namespaces", probe_ns(uid, gid, CLONE_NEWNS)));
    rows.push(row("pid_namespaces", probe_ns(uid, gid, CLONE_NEWPID)));
    rows.push(row("net_namespaces", probe_ns(uid, gid, CLONE_NEWNET)));
    rows.push(row("proc_mount", probe_proc(uid, gid)));
    let seccomp = probe_seccomp(false);
    let seccomp_ok = seccomp.is_ok();
    rows.push(row("seccomp", seccomp));
    rows.push(row("seccomp_user_notif", probe_seccomp(true)));

    let mut ll = match sys::landlock_abi() {
        Ok(abi) => {
            let mut r = row("landlock", Ok(()));
            r.extra.push(("abi", abi.to_string()));
            r
        }
        Err(e) => {
            let why = match e.raw_os_error() {
                Some(38) => "not built into this kernel (ENOSYS)".to_string(),
                Some(95) => "disabled: landlock is not in the lsm= boot parameter (EOPNOTSUPP)".to_string(),
                _ => e.to_string(),
            };
            let mut r = row("landlock", Err(why));
            r.extra.push(("abi", "0".into()));
            r
        }
    };
    ll.extra.push(("required_abi", "1".into()));
    rows.push(ll);

    // io_uring: 0 enabled, 1 restricted to a group, 2 disabled. The command
    // filter refuses it anyway, so it is only a problem without seccomp.
    let iou = read_trim("/proc/sys/kernel/io_uring_disabled");
    let mut r = row("io_uring", if seccomp_ok || iou.as_deref() == Some("2") { Ok(()) } else { Err("io_uring is enabled and seccomp is unavailable to block it".into()) });
    r.extra.push(("io_uring_disabled", iou.map(|v| json_str(&v)).unwrap_or_else(|| "null".into())));
    rows.push(r);

    let tio = read_trim("/proc/sys/dev/tty/legacy_tiocsti");
    let mut r = row("legacy_tiocsti", if seccomp_ok || tio.as_deref() != Some("1") { Ok(()) } else { Err("TIOCSTI injection is enabled and seccomp is unavailable to block it".into()) });
    r.extra.push(("legacy_tiocsti", tio.map(|v| json_str(&v)).unwrap_or_else(|| "null".into())));
    rows.push(r);

    let aa = read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let aa_on = aa.as_deref() == Some("1");
    let mut r = row(
        "apparmor_userns",
        if aa_on && !userns_ok { Err("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)".into()) } else { Ok(()) },
    );
    r.extra.push(("restrict_unprivileged_userns", aa.map(|v| json_str(&v)).unwrap_or_else(|| "null".into())));
    rows.push(r);

    let mut hints = Vec::new();
    if std::path::Path::new("/.dockerenv").exists() {
        hints.push("/.dockerenv");
    }
    if std::path::Path::new("/run/.containerenv").exists() {
        hints.push("/run/.containerenv");
    }
    if let Some(cg) = read_trim("/proc/1/cgroup") {
        for k in ["docker", "kubepods", "containerd", "libpod", "lxc"] {
            if cg.contains(k) {
                hints.push(k);
            }
        }
    }
    let mut r = row("container", Ok(()));
    r.extra.push(("detected", (!hints.is_empty()).to_string()));
    r.extra.push(("hints", format!("[{}]", hints.iter().map(|h| json_str(h)).collect::<Vec<_>>().join(","))));
    rows.push(r);

    let mun = read_trim("/proc/sys/user/max_user_namespaces");
    let mut r = row(
        "max_user_namespaces",
        match mun.as_deref().map(str::parse::<u64>) {
            Some(Ok(0)) => Err("user.max_user_namespaces is 0".into()),
            _ => Ok(()),
        },
    );
    r.extra.push(("value", mun.map(|v| json_str(&v)).unwrap_or_else(|| "null".into())));
    rows.push(r);
    rows
}

fn render(rows: &[Row]) -> String {
    let (uid, _) = sys::ids();
    let arch = if cfg!(target_arch = "x86_64") { "x86_64" } else { "aarch64" };
    let kernel = read_trim("/proc/sys/kernel/osrelease").unwrap_or_default();
    let ok = |n: &str| rows.iter().any(|r| r.name == n && r.ok);
    // What the default policy cannot do without: the namespaces and seccomp.
    // /proc has a fallback, Landlock is best-effort, user notification only
    // serves --allow-unix-socket.
    let sandbox_ok = (uid == 0 || ok("user_namespaces")) && ok("mount_namespaces") && ok("pid_namespaces") && ok("net_namespaces") && ok("seccomp");
    let mut o = format!("{{\"version\":1,\"uid\":{uid},\"arch\":{},\"kernel\":{},\"sandbox_ok\":{sandbox_ok}", json_str(arch), json_str(&kernel));
    for r in rows {
        o.push_str(&format!(",{}:{{\"ok\":{},\"error\":{}", json_str(r.name), r.ok, r.error.as_deref().map(json_str).unwrap_or_else(|| "null".into())));
        for (k, v) in &r.extra {
            o.push_str(&format!(",{}:{}", json_str(k), v));
        }
        o.push('}');
    }
    o.push('}');
    o
}

/// Prints the JSON report. Exit status 0 whenever the report was produced;
/// deciding whether the machine is usable is `cordon doctor`'s job.
pub fn main() -> i32 {
    println!("{}", render(&collect()));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn report_has_every_row() {
        let out = render(&collect());
        for k in ["user_namespaces", "mount_namespaces", "pid_namespaces", "net_namespaces", "proc_mount", "seccomp", "seccomp_user_notif", "landlock", "io_uring", "legacy_tiocsti", "apparmor_userns", "container", "max_user_namespaces"] {
            assert!(out.contains(&format!("\"{k}\":{{\"ok\":")), "{k} missing in {out}");
        }
        assert!(out.contains("\"seccomp\":{\"ok\":true"), "{out}");
        assert!(out.contains("\"sandbox_ok\":true"), "{out}");
    }
}
