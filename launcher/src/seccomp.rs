//! The seccomp filters: one for the sandboxed command (installed last, right
//! before execve) and a tighter one for the launcher's own helpers.
//!
//! Default-allow with a deny list, because the command is arbitrary software;
//! the list covers every alternate entry point we know of (new mount API,
//! clone3, io_uring, i386 and x32 ABIs) so that nothing reaches the kernel
//! through a door the list forgot. See docs in DESIGN.md §5.

use crate::args::{RunConfig, UnixSockets};
use crate::bpf::{self, arg_lo, assemble, errno, ArgRule, Cond, SyscallRule, RET_ALLOW, RET_USER_NOTIF};
use crate::sys::filter as sys;
use std::os::fd::OwnedFd;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH_NATIVE: u32 = 0xc000_00b7;

/// x32 syscalls are x86_64 numbers with this bit set; they pass an arch check.
#[cfg(target_arch = "x86_64")]
const NR_LIMIT: Option<u32> = Some(0x4000_0000);
#[cfg(target_arch = "aarch64")]
const NR_LIMIT: Option<u32> = None;

/// Syscall numbers of the native ABI.
#[allow(dead_code)]
pub mod nr {
    #[cfg(target_arch = "x86_64")]
    mod arch {
        pub const IOCTL: u32 = 16;
        pub const SOCKET: u32 = 41;
        pub const CONNECT: u32 = 42;
        pub const SENDTO: u32 = 44;
        pub const SENDMSG: u32 = 46;
        pub const BIND: u32 = 49;
        pub const LISTEN: u32 = 50;
        pub const SOCKETPAIR: u32 = 53;
        pub const CLONE: u32 = 56;
        pub const FORK: u32 = 57;
        pub const VFORK: u32 = 58;
        pub const EXECVE: u32 = 59;
        pub const PTRACE: u32 = 101;
        pub const PERSONALITY: u32 = 135;
        pub const PIVOT_ROOT: u32 = 155;
        pub const CHROOT: u32 = 161;
        pub const MOUNT: u32 = 165;
        pub const UMOUNT2: u32 = 166;
        pub const INIT_MODULE: u32 = 175;
        pub const DELETE_MODULE: u32 = 176;
        pub const KEXEC_LOAD: u32 = 246;
        pub const ADD_KEY: u32 = 248;
        pub const REQUEST_KEY: u32 = 249;
        pub const KEYCTL: u32 = 250;
        pub const UNSHARE: u32 = 272;
        pub const PERF_EVENT_OPEN: u32 = 298;
        pub const NAME_TO_HANDLE_AT: u32 = 303;
        pub const OPEN_BY_HANDLE_AT: u32 = 304;
        pub const SETNS: u32 = 308;
        pub const PROCESS_VM_READV: u32 = 310;
        pub const PROCESS_VM_WRITEV: u32 = 311;
        pub const FINIT_MODULE: u32 = 313;
        pub const KEXEC_FILE_LOAD: u32 = 320;
        pub const BPF: u32 = 321;
        pub const EXECVEAT: u32 = 322;
        pub const USERFAULTFD: u32 = 323;
    }
    #[cfg(target_arch = "aarch64")]
    mod arch {
        pub const IOCTL: u32 = 29;
        pub const SOCKET: u32 = 198;
        pub const CONNECT: u32 = 203;
        pub const SENDTO: u32 = 206;
        pub const SENDMSG: u32 = 211;
        pub const BIND: u32 = 200;
        pub const LISTEN: u32 = 201;
        pub const SOCKETPAIR: u32 = 199;
        pub const CLONE: u32 = 220;
        pub const EXECVE: u32 = 221;
        pub const PTRACE: u32 = 117;
        pub const PERSONALITY: u32 = 92;
        pub const PIVOT_ROOT: u32 = 41;
        pub const CHROOT: u32 = 51;
        pub const MOUNT: u32 = 40;
        pub const UMOUNT2: u32 = 39;
        pub const INIT_MODULE: u32 = 105;
        pub const DELETE_MODULE: u32 = 106;
        pub const KEXEC_LOAD: u32 = 104;
        pub const ADD_KEY: u32 = 217;
        pub const REQUEST_KEY: u32 = 218;
        pub const KEYCTL: u32 = 219;
        pub const UNSHARE: u32 = 97;
        pub const PERF_EVENT_OPEN: u32 = 241;
        pub const NAME_TO_HANDLE_AT: u32 = 264;
        pub const OPEN_BY_HANDLE_AT: u32 = 265;
        pub const SETNS: u32 = 268;
        pub const PROCESS_VM_READV: u32 = 270;
        pub const PROCESS_VM_WRITEV: u32 = 271;
        pub const FINIT_MODULE: u32 = 273;
        pub const KEXEC_FILE_LOAD: u32 = 294;
        pub const BPF: u32 = 280;
        pub const EXECVEAT: u32 = 281;
        pub const USERFAULTFD: u32 = 282;
    }
    pub use arch::*;
    // The unified numbers (same on every architecture since 5.1).
    pub const IO_URING_SETUP: u32 = 425;
    pub const IO_URING_ENTER: u32 = 426;
    pub const IO_URING_REGISTER: u32 = 427;
    pub const OPEN_TREE: u32 = 428;
    pub const MOVE_MOUNT: u32 = 429;
    pub const FSOPEN: u32 = 430;
    pub const FSCONFIG: u32 = 431;
    pub const FSMOUNT: u32 = 432;
    pub const FSPICK: u32 = 433;
    pub const PIDFD_OPEN: u32 = 434;
    pub const CLONE3: u32 = 435;
    pub const PIDFD_GETFD: u32 = 438;
    pub const MOUNT_SETATTR: u32 = 442;
    pub const OPEN_TREE_ATTR: u32 = 467;
}

const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_NETLINK: u32 = 16;
const NETLINK_ROUTE: u32 = 0;
const SOCK_TYPE_MASK: u32 = 0xf;
const SOCK_STREAM: u32 = 1;
const SOCK_SEQPACKET: u32 = 5;

const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541c;

const CLONE_NEWTIME: u32 = 0x0000_0080;
const CLONE_NEWNS: u32 = 0x0002_0000;
const CLONE_NEWCGROUP: u32 = 0x0200_0000;
const CLONE_NEWUTS: u32 = 0x0400_0000;
const CLONE_NEWIPC: u32 = 0x0800_0000;
const CLONE_NEWUSER: u32 = 0x1000_0000;
const CLONE_NEWPID: u32 = 0x2000_0000;
const CLONE_NEWNET: u32 = 0x4000_0000;
/// In clone(2) the low byte is the exit signal, so CLONE_NEWTIME (0x80) is
/// not a flag there (the kernel only accepts it from unshare and clone3).
const NS_FLAGS_CLONE: u32 = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
const NS_FLAGS_UNSHARE: u32 = NS_FLAGS_CLONE | CLONE_NEWTIME;

/// personality(2) values that only query or set the harmless defaults
/// (Docker's list): PER_LINUX, UNAME26, PER_LINUX32, their combination, query.
const PERSONALITY_OK: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

fn deny(nr: u32) -> SyscallRule {
    SyscallRule::always(nr, errno(EPERM))
}

/// "argument `i` (low 32 bits) satisfies `cond`" -> `action`.
fn arg(i: u32, cond: Cond, action: u32) -> ArgRule {
    ArgRule { conds: vec![(arg_lo(i), cond)], action }
}

/// Syscalls that no sandboxed program needs and that reach kernel attack
/// surface, other processes or the mount table.
fn always_denied() -> Vec<u32> {
    use nr::*;
    vec![
        MOUNT, UMOUNT2, PIVOT_ROOT, CHROOT, OPEN_TREE, MOVE_MOUNT, FSOPEN, FSCONFIG, FSMOUNT, FSPICK, MOUNT_SETATTR, OPEN_TREE_ATTR,
        PTRACE, PROCESS_VM_READV, PROCESS_VM_WRITEV, PIDFD_GETFD,
        IO_URING_SETUP, IO_URING_ENTER, IO_URING_REGISTER,
        BPF, PERF_EVENT_OPEN, USERFAULTFD,
        KEYCTL, ADD_KEY, REQUEST_KEY,
        KEXEC_LOAD, KEXEC_FILE_LOAD, INIT_MODULE, FINIT_MODULE, DELETE_MODULE,
        OPEN_BY_HANDLE_AT,
    ]
}

fn tty_ioctl_rule() -> SyscallRule {
    // CVE-2019-10063: the tty layer truncates cmd to 32 bits, so compare only
    // the low word (the high word is garbage an attacker controls).
    SyscallRule {
        nr: nr::IOCTL,
        args: vec![arg(1, Cond::Eq(TIOCSTI), errno(EPERM)), arg(1, Cond::Eq(TIOCLINUX), errno(EPERM))],
        default: RET_ALLOW,
    }
}

/// The rules of the command filter, for a given policy.
pub fn command_rules(unix: &UnixSockets, allow_userns: bool) -> Vec<SyscallRule> {
    use nr::*;
    let mut rules: Vec<SyscallRule> = always_denied().into_iter().map(deny).collect();

    if !allow_userns {
        rules.push(SyscallRule { nr: CLONE, args: vec![arg(0, Cond::AnyBit(NS_FLAGS_CLONE), errno(EPERM))], default: RET_ALLOW });
        rules.push(SyscallRule { nr: UNSHARE, args: vec![arg(0, Cond::AnyBit(NS_FLAGS_UNSHARE), errno(EPERM))], default: RET_ALLOW });
        // setns with nstype 0 joins whatever the fd is, so no flag test can
        // make it safe; the sandbox never needs it.
        rules.push(deny(SETNS));
        // clone3 passes its flags in memory a filter cannot read. ENOSYS
        // (not EPERM) makes glibc and others fall back to clone(2).
        rules.push(SyscallRule::always(CLONE3, errno(ENOSYS)));
    }

    rules.push(tty_ioctl_rule());
    rules.push(SyscallRule {
        nr: PERSONALITY,
        args: PERSONALITY_OK.iter().map(|&k| arg(0, Cond::Eq(k), RET_ALLOW)).collect(),
        default: errno(EPERM),
    });

    // socket(): the network namespace decides where INET goes; netlink only
    // for routing (getaddrinfo, `ip addr`); AF_UNIX per policy; every other
    // family (vsock, packet, alg, ...) refused.
    let mut sock = vec![
        arg(0, Cond::Eq(AF_INET), RET_ALLOW),
        arg(0, Cond::Eq(AF_INET6), RET_ALLOW),
        ArgRule { conds: vec![(arg_lo(0), Cond::Eq(AF_NETLINK)), (arg_lo(2), Cond::Eq(NETLINK_ROUTE))], action: RET_ALLOW },
    ];
    match unix {
        UnixSockets::All => sock.push(arg(0, Cond::Eq(AF_UNIX), RET_ALLOW)),
        // Stream only: the supervisor mediates connect(), and a stream socket
        // ignores or refuses sendto/sendmsg addresses, so datagrams to host
        // sockets (journald, syslog) cannot go around it.
        UnixSockets::Only(_) => sock.push(ArgRule {
            conds: vec![(arg_lo(0), Cond::Eq(AF_UNIX)), (arg_lo(1), Cond::MaskedEq(SOCK_TYPE_MASK, SOCK_STREAM))],
            action: RET_ALLOW,
        }),
        UnixSockets::Deny => {}
    }
    rules.push(SyscallRule { nr: SOCKET, args: sock, default: errno(EPERM) });

    // socketpair(AF_UNIX) stays allowed (libuv, Python, shells use it), but
    // only stream/seqpacket: a datagram socket from a pair can sendto() or
    // re-connect() to any host datagram socket by path.
    if !matches!(unix, UnixSockets::All) {
        let pair = |ty| ArgRule { conds: vec![(arg_lo(0), Cond::Eq(AF_UNIX)), (arg_lo(1), Cond::MaskedEq(SOCK_TYPE_MASK, ty))], action: RET_ALLOW };
        rules.push(SyscallRule { nr: SOCKETPAIR, args: vec![pair(SOCK_STREAM), pair(SOCK_SEQPACKET)], default: errno(EPERM) });
    }

    if let UnixSockets::Only(_) = unix {
        // Every connect() goes to the supervisor, which performs it on a
        // duplicate of the caller's socket from an address it copied once.
        rules.push(SyscallRule::always(CONNECT, RET_USER_NOTIF));
    }
    rules
}

/// Assembles the command filter program.
pub fn command_program(unix: &UnixSockets, allow_userns: bool) -> Result<Vec<sys::SockFilter>, String> {
    assemble(AUDIT_ARCH_NATIVE, NR_LIMIT, errno(EPERM), &command_rules(unix, allow_userns), RET_ALLOW)
}

/// Installs the command filter. Must be the last step before execve: after
/// it, the launcher cannot mount, ptrace or create namespaces either.
pub fn install_command_filter(cfg: &RunConfig) -> Result<Option<OwnedFd>, String> {
    if !cfg.seccomp {
        return Ok(None);
    }
    let prog = command_program(&cfg.unix_sockets, cfg.allow_userns)?;
    sys::set_no_new_privs().map_err(|e| format!("seccomp: no_new_privs: {e}"))?;
    let mut flags = 0;
    if let UnixSockets::Only(_) = cfg.unix_sockets {
        flags = sys::SECCOMP_FILTER_FLAG_NEW_LISTENER | sys::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    match sys::seccomp_set_filter(&prog, flags) {
        Ok(l) => Ok(l),
        // WAIT_KILLABLE_RECV is 5.19+; without it a signal can interrupt a
        // mediated connect, which only costs the caller a retry.
        Err(e) if e.raw_os_error() == Some(22) && flags & sys::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 => {
            sys::seccomp_set_filter(&prog, sys::SECCOMP_FILTER_FLAG_NEW_LISTENER).map_err(|e| format!("seccomp: install filter: {e}"))
        }
        Err(e) => Err(format!("seccomp: install filter: {e}")),
    }
}

pub fn helper_rules() -> Vec<SyscallRule> {
    use nr::*;
    let mut rules: Vec<SyscallRule> = always_denied().into_iter().map(deny).collect();
    for n in [EXECVE, EXECVEAT, UNSHARE, SETNS, PERSONALITY] {
        rules.push(deny(n));
    }
    rules.push(SyscallRule::always(CLONE3, errno(ENOSYS)));
    rules.push(SyscallRule { nr: CLONE, args: vec![arg(0, Cond::AnyBit(NS_FLAGS_CLONE), errno(EPERM))], default: RET_ALLOW });
    rules.push(tty_ioctl_rule());
    rules.push(SyscallRule {
        nr: SOCKET,
        args: vec![arg(0, Cond::Eq(AF_INET), RET_ALLOW), arg(0, Cond::Eq(AF_INET6), RET_ALLOW), arg(0, Cond::Eq(AF_UNIX), RET_ALLOW)],
        default: errno(EPERM),
    });
    rules
}

/// The launcher's helpers (relays, supervisor, janitor) after their setup:
/// they never exec, mount, trace or create namespaces.
pub fn install_helper_filter() -> Result<(), String> {
    let prog = assemble(AUDIT_ARCH_NATIVE, NR_LIMIT, bpf::RET_KILL_PROCESS, &helper_rules(), RET_ALLOW)?;
    sys::set_no_new_privs().map_err(|e| format!("seccomp: no_new_privs: {e}"))?;
    sys::seccomp_set_filter(&prog, 0).map_err(|e| format!("seccomp: install helper filter: {e}"))?;
    Ok(())
}


/// The supervisor of mediated Unix sockets reads the target's memory and
/// duplicates its socket, so it keeps process_vm_readv and pidfd_getfd;
/// otherwise it is held like every other helper.
pub fn install_supervisor_filter() -> Result<(), String> {
    let mut rules = helper_rules();
    for r in rules.iter_mut() {
        if r.nr == nr::PROCESS_VM_READV || r.nr == nr::PIDFD_GETFD {
            *r = SyscallRule::always(r.nr, RET_ALLOW);
        }
    }
    let prog = assemble(AUDIT_ARCH_NATIVE, NR_LIMIT, bpf::RET_KILL_PROCESS, &rules, RET_ALLOW)?;
    sys::set_no_new_privs().map_err(|e| format!("seccomp: no_new_privs: {e}"))?;
    sys::seccomp_set_filter(&prog, 0).map_err(|e| format!("seccomp: install supervisor filter: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{interpret, RET_KILL_PROCESS};

    const A: u32 = AUDIT_ARCH_NATIVE;

    fn judge(p: &[sys::SockFilter], n: u32, args: [u64; 6]) -> u32 {
        interpret(p, n, A, args)
    }

    #[test]
    fn searched_programs_answer_as_the_chains_do() {
        for unix in [UnixSockets::Deny, UnixSockets::All, UnixSockets::Only(vec!["/x".into()])] {
            for userns in [false, true] {
                crate::bpf::tests::assert_same_as_chain(A, NR_LIMIT, errno(EPERM), &command_rules(&unix, userns), RET_ALLOW);
            }
        }
        crate::bpf::tests::assert_same_as_chain(A, NR_LIMIT, RET_KILL_PROCESS, &helper_rules(), RET_ALLOW);
    }

    #[test]
    fn foreign_arch_and_x32_refused() {
        let p = command_program(&UnixSockets::Deny, false).unwrap();
        // i386 int 0x80 socket (359) and socketcall (102)
        assert_eq!(interpret(&p, 359, 0x4000_0003, [2, 1, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(interpret(&p, 102, 0x4000_0003, [1, 0, 0, 0, 0, 0]), errno(EPERM));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(judge(&p, 0x4000_0000 | 41, [2, 1, 0, 0, 0, 0]), errno(EPERM));
            assert_eq!(judge(&p, 0x4000_0000 | 39, [0; 6]), errno(EPERM));
        }
        let h = assemble(A, NR_LIMIT, RET_KILL_PROCESS, &helper_rules(), RET_ALLOW).unwrap();
        assert_eq!(interpret(&h, 359, 0x4000_0003, [0; 6]), RET_KILL_PROCESS);
    }

    #[test]
    fn namespaces_and_clone3() {
        let p = command_program(&UnixSockets::Deny, false).unwrap();
        assert_eq!(judge(&p, nr::CLONE, [0x003d_0f00, 0, 0, 0, 0, 0]), RET_ALLOW, "pthread_create flags");
        assert_eq!(judge(&p, nr::CLONE, [0x0120_0011, 0, 0, 0, 0, 0]), RET_ALLOW, "fork flags");
        assert_eq!(judge(&p, nr::CLONE, [(CLONE_NEWUSER | 0x11) as u64, 0, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(judge(&p, nr::UNSHARE, [CLONE_NEWNET as u64, 0, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(judge(&p, nr::UNSHARE, [CLONE_NEWTIME as u64, 0, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(judge(&p, nr::UNSHARE, [0x400, 0, 0, 0, 0, 0]), RET_ALLOW, "CLONE_FILES");
        assert_eq!(judge(&p, nr::SETNS, [3, 0, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(judge(&p, nr::CLONE3, [0; 6]), errno(ENOSYS));
        let q = command_program(&UnixSockets::Deny, true).unwrap();
        assert_eq!(judge(&q, nr::UNSHARE, [CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(judge(&q, nr::CLONE3, [0; 6]), RET_ALLOW);
        assert_eq!(judge(&q, nr::MOUNT, [0; 6]), errno(EPERM), "allow_userns lifts only namespaces");
    }

    #[test]
    fn deny_list_covers_alternates() {
        let p = command_program(&UnixSockets::Deny, false).unwrap();
        for n in always_denied() {
            assert_eq!(judge(&p, n, [0; 6]), errno(EPERM), "syscall {n}");
        }
        assert_eq!(judge(&p, nr::OPEN_BY_HANDLE_AT, [0; 6]), errno(EPERM));
        assert_eq!(judge(&p, nr::FSOPEN, [0; 6]), errno(EPERM));
        assert_eq!(judge(&p, nr::EXECVE, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn tty_ioctls_on_low_word() {
        let p = command_program(&UnixSockets::Deny, false).unwrap();
        assert_eq!(judge(&p, nr::IOCTL, [0, TIOCSTI as u64, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(judge(&p, nr::IOCTL, [0, (0x123u64 << 32) | TIOCSTI as u64, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(judge(&p, nr::IOCTL, [0, (0xffff_ffffu64 << 32) | TIOCLINUX as u64, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(judge(&p, nr::IOCTL, [0, 0x5401, 0, 0, 0, 0]), RET_ALLOW, "TCGETS");
    }

    #[test]
    fn personality_allowlist() {
        let p = command_program(&UnixSockets::Deny, false).unwrap();
        for k in PERSONALITY_OK {
            assert_eq!(judge(&p, nr::PERSONALITY, [k as u64, 0, 0, 0, 0, 0]), RET_ALLOW);
        }
        assert_eq!(judge(&p, nr::PERSONALITY, [0x0040_0000, 0, 0, 0, 0, 0]), errno(EPERM), "READ_IMPLIES_EXEC");
        assert_eq!(judge(&p, nr::PERSONALITY, [0x0004_0000, 0, 0, 0, 0, 0]), errno(EPERM), "ADDR_NO_RANDOMIZE");
    }

    #[test]
    fn socket_families_per_mode() {
        let deny = command_program(&UnixSockets::Deny, false).unwrap();
        let all = command_program(&UnixSockets::All, false).unwrap();
        let only = command_program(&UnixSockets::Only(vec!["/x".into()]), false).unwrap();
        let s = |p: &[sys::SockFilter], fam: u64, ty: u64, proto: u64| judge(p, nr::SOCKET, [fam, ty, proto, 0, 0, 0]);
        for p in [&deny, &all, &only] {
            assert_eq!(s(p, 2, 1, 0), RET_ALLOW);
            assert_eq!(s(p, 10, 0x80802, 0), RET_ALLOW);
            assert_eq!(s(p, 16, 3, 0), RET_ALLOW, "NETLINK_ROUTE");
            assert_eq!(s(p, 16, 3, 9), errno(EPERM), "NETLINK_AUDIT");
            for fam in [17u64, 40, 38, 4, 29, 44] {
                assert_eq!(s(p, fam, 1, 0), errno(EPERM), "family {fam}");
            }
        }
        assert_eq!(s(&deny, 1, 1, 0), errno(EPERM));
        assert_eq!(s(&all, 1, 2, 0), RET_ALLOW);
        assert_eq!(s(&only, 1, 1 | 0x80000, 0), RET_ALLOW, "stream + cloexec");
        assert_eq!(s(&only, 1, 2, 0), errno(EPERM), "dgram");
        assert_eq!(s(&only, 1, 5, 0), errno(EPERM), "seqpacket");
        let sp = |p: &[sys::SockFilter], ty: u64| judge(p, nr::SOCKETPAIR, [1, ty, 0, 0, 0, 0]);
        assert_eq!(sp(&deny, 1), RET_ALLOW);
        assert_eq!(sp(&deny, 5 | 0x800), RET_ALLOW);
        assert_eq!(sp(&deny, 2), errno(EPERM));
        assert_eq!(sp(&all, 2), RET_ALLOW);
        assert_eq!(judge(&deny, nr::CONNECT, [3, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(judge(&only, nr::CONNECT, [3, 0, 0, 0, 0, 0]), RET_USER_NOTIF);
    }

    #[test]
    fn helper_filter_is_tighter() {
        let h = assemble(A, NR_LIMIT, RET_KILL_PROCESS, &helper_rules(), RET_ALLOW).unwrap();
        assert_eq!(judge(&h, nr::EXECVE, [0; 6]), errno(EPERM));
        assert_eq!(judge(&h, nr::PTRACE, [0; 6]), errno(EPERM));
        assert_eq!(judge(&h, nr::SOCKET, [1, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(judge(&h, nr::SOCKET, [40, 1, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(judge(&h, nr::CLONE, [0x003d_0f00, 0, 0, 0, 0, 0]), RET_ALLOW);
    }

    /// The helper filter in a real child: no exec, no namespaces, threads work.
    #[test]
    fn helper_filter_enforced() {
        let code = sys::fork_run(|| {
            if install_helper_filter().is_err() {
                return 10;
            }
            if sys::raw_syscall6(nr::EXECVE as i64, [0; 6]) != Err(1) {
                return 11;
            }
            if sys::raw_syscall6(nr::UNSHARE as i64, [CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]) != Err(1) {
                return 12;
            }
            if sys::raw_syscall6(nr::SOCKET as i64, [40, 1, 0, 0, 0, 0]) != Err(1) {
                return 13;
            }
            match std::thread::spawn(|| 7).join() {
                Ok(7) => 0,
                _ => 14,
            }
        })
        .unwrap();
        assert_eq!(code, 0);
    }

    /// The real kernel accepts the program and enforces it (in a child).
    #[test]
    fn installs_and_enforces() {
        let p = command_program(&UnixSockets::Deny, false).unwrap();
        let code = sys::fork_run(|| {
            if sys::set_no_new_privs().is_err() || sys::seccomp_set_filter(&p, 0).is_err() {
                return 10;
            }
            if sys::raw_syscall6(nr::CLONE3 as i64, [0; 6]) != Err(38) {
                return 11;
            }
            if sys::raw_syscall6(nr::SOCKET as i64, [40, 1, 0, 0, 0, 0]) != Err(1) {
                return 12;
            }
            if sys::raw_syscall6(nr::IOCTL as i64, [0, (0x123u64 << 32) | TIOCSTI as u64, 0, 0, 0, 0]) != Err(1) {
                return 13;
            }
            if sys::raw_syscall6(nr::IO_URING_SETUP as i64, [4, 0, 0, 0, 0, 0]) != Err(1) {
                return 14;
            }
            match sys::raw_syscall6(nr::SOCKET as i64, [2, 1, 0, 0, 0, 0]) {
                Ok(_) => 0,
                Err(_) => 15,
            }
        })
        .unwrap();
        assert_eq!(code, 0);
    }
}
