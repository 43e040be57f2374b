//! A tiny classic-BPF assembler for seccomp filters (no libseccomp).
//!
//! Programs are built from self-contained blocks: each block tests one syscall
//! number and, when it matches, runs its argument checks and always ends in a
//! `ret`. A non-matching block jumps over its own body to the next block, so
//! every jump is short and forward, and a block can never fall into another
//! block's body. The assembler refuses a body longer than a conditional jump
//! can skip (255) instead of emitting a wrong offset.

use crate::sys::filter::SockFilter;

// Instruction classes and fields (linux/filter.h, linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

pub const fn errno(e: u32) -> u32 {
    RET_ERRNO | (e & 0xffff)
}

// struct seccomp_data offsets.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
/// Offset of the low 32 bits of argument `i` (little-endian targets only).
pub const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

/// A condition on one argument word, checked in order inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// word == k
    Eq(u32),
    /// (word & mask) == k
    MaskedEq(u32, u32),
    /// word & mask != 0
    AnyBit(u32),
}

/// One check inside a syscall's block: if every condition holds (each on
/// the 32-bit argument word at its offset), return `action`; otherwise try
/// the next check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgRule {
    pub conds: Vec<(u32, Cond)>,
    pub action: u32,
}

/// What happens to one syscall number: its argument rules in order, then
/// `default` when none matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallRule {
    pub nr: u32,
    pub args: Vec<ArgRule>,
    pub default: u32,
}

impl SyscallRule {
    pub fn always(nr: u32, action: u32) -> Self {
        SyscallRule { nr, args: Vec::new(), default: action }
    }
}

pub fn ld(off: u32) -> SockFilter {
    SockFilter { code: BPF_LD | BPF_W | BPF_ABS, jt: 0, jf: 0, k: off }
}
pub fn ret(k: u32) -> SockFilter {
    SockFilter { code: BPF_RET | BPF_K, jt: 0, jf: 0, k }
}
pub fn jeq(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code: BPF_JMP | BPF_JEQ | BPF_K, jt, jf, k }
}
pub fn jge(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code: BPF_JMP | BPF_JGE | BPF_K, jt, jf, k }
}
pub fn jset(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code: BPF_JMP | BPF_JSET | BPF_K, jt, jf, k }
}
pub fn and(k: u32) -> SockFilter {
    SockFilter { code: BPF_ALU | BPF_AND | BPF_K, jt: 0, jf: 0, k }
}

/// The body of one syscall block (everything after its `jeq nr`). Each
/// condition reloads its word, so no check depends on what A held before.
fn block_body(rule: &SyscallRule) -> Result<Vec<SockFilter>, String> {
    let mut out = Vec::new();
    for a in &rule.args {
        // Emit the rule with placeholder "false" offsets, then patch each
        // to land just after this rule's ret.
        let mut seg: Vec<SockFilter> = Vec::new();
        let mut jumps = Vec::new();
        for &(off, cond) in &a.conds {
            seg.push(ld(off));
            match cond {
                Cond::Eq(k) => seg.push(jeq(k, 0, 0)),
                Cond::MaskedEq(mask, k) => {
                    seg.push(and(mask));
                    seg.push(jeq(k, 0, 0));
                }
                Cond::AnyBit(mask) => seg.push(jset(mask, 0, 0)),
            }
            jumps.push(seg.len() - 1);
        }
        seg.push(ret(a.action));
        for j in jumps {
            let skip = seg.len() - j - 1;
            seg[j].jf = u8::try_from(skip).map_err(|_| "seccomp: argument rule too long".to_string())?;
        }
        out.extend(seg);
    }
    out.push(ret(rule.default));
    Ok(out)
}

/// Assembles a complete filter:
/// 1. arch != `arch` -> `bad_arch`;
/// 2. nr >= `nr_limit` (x32 bit on x86_64) -> `bad_arch`;
/// 3. one block per rule, found through a binary search on nr;
/// 4. `default` for every other syscall.
pub fn assemble(arch: u32, nr_limit: Option<u32>, bad_arch: u32, rules: &[SyscallRule], default: u32) -> Result<Vec<SockFilter>, String> {
    let mut p = vec![ld(OFF_ARCH), jeq(arch, 1, 0), ret(bad_arch), ld(OFF_NR)];
    if let Some(limit) = nr_limit {
        p.push(jge(limit, 0, 1));
        p.push(ret(bad_arch));
    }
    let mut blocks = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        if !seen.insert(r.nr) {
            return Err(format!("seccomp: syscall {} listed twice", r.nr));
        }
        let body = block_body(r)?;
        if body.len() > 255 {
            return Err(format!("seccomp: rule for syscall {} is too long", r.nr));
        }
        blocks.push((r.nr, body));
    }
    blocks.sort_by_key(|b| b.0);
    // The search costs a few jumps per syscall instead of one per rule: the
    // kernel runs the program for every syscall number when it installs it
    // (to cache the always-allowed ones), and for each uncached syscall.
    // A search too wide for 8-bit jump offsets falls back to the chain.
    p.extend(search(&blocks, default).unwrap_or_else(|| chain(&blocks, default)));
    if p.len() > 4096 {
        return Err("seccomp: filter longer than 4096 instructions".into());
    }
    Ok(p)
}

/// Blocks one after another, then `default`. A holds nr at every `jeq nr`:
/// a non-matching block skips its whole body (the only code that changes A),
/// and bodies always end in ret.
fn chain(blocks: &[(u32, Vec<SockFilter>)], default: u32) -> Vec<SockFilter> {
    let mut out = Vec::new();
    for (nr, body) in blocks {
        out.push(jeq(*nr, 0, body.len() as u8));
        out.extend_from_slice(body);
    }
    out.push(ret(default));
    out
}

/// Up to this many blocks are chained rather than split further.
const CHAIN_MAX: usize = 4;

/// Blocks sorted by nr, as a binary search: `jge pivot` jumps over the
/// lower half to the upper one. Every half ends in its own `ret default`, so
/// no path falls out of its half; jge leaves A (nr) as it is. None when a
/// lower half is too long for a jump offset.
fn search(blocks: &[(u32, Vec<SockFilter>)], default: u32) -> Option<Vec<SockFilter>> {
    if blocks.len() <= CHAIN_MAX {
        return Some(chain(blocks, default));
    }
    let mid = blocks.len() / 2;
    let lower = search(&blocks[..mid], default)?;
    let upper = search(&blocks[mid..], default)?;
    let mut out = vec![jge(blocks[mid].0, u8::try_from(lower.len()).ok()?, 0)];
    out.extend(lower);
    out.extend(upper);
    Some(out)
}

#[cfg(test)]
/// A reference interpreter for the subset of classic BPF that `assemble`
/// emits. Tests use it to check every rule without installing anything.
pub fn interpret(prog: &[SockFilter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            o if (16..64).contains(&o) => {
                let i = ((o - 16) / 8) as usize;
                if (o - 16) % 8 == 0 {
                    args[i] as u32
                } else {
                    (args[i] >> 32) as u32
                }
            }
            _ => 0,
        }
    };
    let mut a: u32 = 0;
    let mut pc = 0usize;
    while pc < prog.len() {
        let ins = prog[pc];
        pc += 1;
        match ins.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => a = word(ins.k),
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= ins.k,
            c if c == BPF_RET | BPF_K => return ins.k,
            c if c & 0x07 == BPF_JMP => {
                let taken = match c & 0xf0 {
                    BPF_JEQ => a == ins.k,
                    BPF_JGE => a >= ins.k,
                    BPF_JSET => a & ins.k != 0,
                    _ => panic!("unsupported jump {c:#x}"),
                };
                pc += if taken { ins.jt as usize } else { ins.jf as usize };
            }
            c => panic!("unsupported instruction {c:#x}"),
        }
    }
    panic!("program fell off the end")
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The program as a plain chain (the layout before the search), as the
    /// reference the searched layout must agree with.
    pub fn assemble_chain(arch: u32, nr_limit: Option<u32>, bad_arch: u32, rules: &[SyscallRule], default: u32) -> Vec<SockFilter> {
        let mut p = vec![ld(OFF_ARCH), jeq(arch, 1, 0), ret(bad_arch), ld(OFF_NR)];
        if let Some(limit) = nr_limit {
            p.push(jge(limit, 0, 1));
            p.push(ret(bad_arch));
        }
        let blocks: Vec<(u32, Vec<SockFilter>)> = rules.iter().map(|r| (r.nr, block_body(r).unwrap())).collect();
        p.extend(chain(&blocks, default));
        p
    }

    /// Every syscall number (and the x32 range, and another arch) with
    /// argument words made from every constant the rules mention: the
    /// searched program answers exactly as the chain does.
    pub fn assert_same_as_chain(arch: u32, nr_limit: Option<u32>, bad_arch: u32, rules: &[SyscallRule], default: u32) {
        let tree = assemble(arch, nr_limit, bad_arch, rules, default).unwrap();
        let flat = assemble_chain(arch, nr_limit, bad_arch, rules, default);
        assert!(tree.iter().any(|i| i.code == BPF_JMP | BPF_JGE | BPF_K && i.jt > 0), "a search was emitted");
        let mut words: Vec<u64> = vec![0, 1, u64::MAX, 0xffff_ffff, 1 << 32];
        for r in rules {
            for a in &r.args {
                for &(_, c) in &a.conds {
                    let (m, k) = match c {
                        Cond::Eq(k) => (u32::MAX, k),
                        Cond::MaskedEq(m, k) => (m, k),
                        Cond::AnyBit(m) => (m, m),
                    };
                    for w in [k, k | !m, k ^ 1, m, !m, m & m.wrapping_neg()] {
                        words.push(w as u64);
                        words.push(w as u64 | 0xdead_0000_0000_0000);
                    }
                }
            }
        }
        words.sort();
        words.dedup();
        let nrs: Vec<u32> = (0..1100).chain(0x4000_0000..0x4000_0200).chain([u32::MAX, 0x8000_0000]).collect();
        for &a in &[arch, arch ^ 1] {
            for &nr in &nrs {
                for (i, &w) in words.iter().enumerate() {
                    let args = [w, words[(i + 1) % words.len()], w, words[(i + 3) % words.len()], w, w];
                    assert_eq!(interpret(&tree, nr, a, args), interpret(&flat, nr, a, args), "nr {nr} arch {a:#x} args {args:x?}");
                }
            }
        }
    }

    #[test]
    fn arch_and_limit_checked_first() {
        let rules = vec![SyscallRule::always(7, errno(1))];
        let p = assemble(0xc000003e, Some(0x4000_0000), RET_KILL_PROCESS, &rules, RET_ALLOW).unwrap();
        assert_eq!(interpret(&p, 7, 0x4000_0003, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(interpret(&p, 0x4000_0029, 0xc000003e, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(interpret(&p, 7, 0xc000003e, [0; 6]), errno(1));
        assert_eq!(interpret(&p, 8, 0xc000003e, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn arg_rules_in_order_and_blocks_independent() {
        let rules = vec![
            SyscallRule {
                nr: 41,
                args: vec![
                    ArgRule { conds: vec![(arg_lo(0), Cond::Eq(2))], action: RET_ALLOW },
                    ArgRule { conds: vec![(arg_lo(1), Cond::MaskedEq(0xf, 1))], action: errno(13) },
                    ArgRule { conds: vec![(arg_lo(0), Cond::Eq(16)), (arg_lo(2), Cond::Eq(0))], action: errno(22) },
                ],
                default: errno(1),
            },
            SyscallRule {
                nr: 56,
                args: vec![ArgRule { conds: vec![(arg_lo(0), Cond::AnyBit(0x1000_0000))], action: errno(1) }],
                default: RET_ALLOW,
            },
            SyscallRule::always(99, errno(38)),
        ];
        let p = assemble(1, None, RET_KILL_PROCESS, &rules, RET_ALLOW).unwrap();
        assert_eq!(interpret(&p, 41, 1, [2, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(interpret(&p, 41, 1, [1, 0x801, 0, 0, 0, 0]), errno(13));
        assert_eq!(interpret(&p, 41, 1, [1, 2, 0, 0, 0, 0]), errno(1));
        assert_eq!(interpret(&p, 41, 1, [16, 2, 0, 0, 0, 0]), errno(22));
        assert_eq!(interpret(&p, 41, 1, [16, 2, 9, 0, 0, 0]), errno(1));
        assert_eq!(interpret(&p, 56, 1, [0x1001_0011, 0, 0, 0, 0, 0]), errno(1));
        assert_eq!(interpret(&p, 56, 1, [0x11, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(interpret(&p, 99, 1, [0; 6]), errno(38));
        assert_eq!(interpret(&p, 100, 1, [0; 6]), RET_ALLOW);
        // the high word of an argument is not what arg_lo compares
        assert_eq!(interpret(&p, 41, 1, [(7u64 << 32) | 2, 0, 0, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn duplicate_rules_refused() {
        let rules = vec![SyscallRule::always(1, RET_ALLOW), SyscallRule::always(1, errno(1))];
        assert!(assemble(1, None, RET_KILL_PROCESS, &rules, RET_ALLOW).is_err());
    }
}
