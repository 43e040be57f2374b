//! Builds the sandbox's root (runs in PID 1, in its fresh mount namespace).
//!
//! Layout during the build: a private "base" tmpfs becomes "/" (first
//! pivot_root), the host tree sits at /oldroot, and the new root is a tmpfs at
//! /newroot. Every source is resolved once, inside /oldroot (RESOLVE_IN_ROOT,
//! so absolute symlinks mean what they mean on the host) and cloned from that
//! descriptor (open_tree), so a symlink swapped in later cannot redirect it
//! (F6). Every destination is resolved inside the new root (RESOLVE_IN_ROOT:
//! usr-merge symlinks like /lib -> usr/lib work, nothing escapes the root).
//! Attributes are set with mount_setattr on the detached copy: flags are only
//! added, never cleared, so locked nosuid/nodev/noexec stay and no EPERM
//! arises from MNT_LOCK_* (what bubblewrap has to tolerate by hand).
//! Finally the host tree is detached and /newroot becomes "/".

use crate::args::{BindKind, MountOp, RunConfig};
use crate::sys::{self, Stat};
use crate::SetupError;
use std::cell::RefCell;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

const ENOENT: i32 = 2;
const EAGAIN: i32 = 11;
const EACCES: i32 = 13;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EPERM: i32 = 1;
const EROFS: i32 = 30;
const ELOOP: i32 = 40;

const RO_ALL: u64 = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC;
const PROC_COVERS: [&CStr; 4] = [c"sys", c"sysrq-trigger", c"irq", c"bus"];
const DEV_NODES: [&CStr; 6] = [c"null", c"zero", c"full", c"random", c"urandom", c"tty"];

/// Splits an absolute sandbox path into normal components; `..` is applied
/// lexically and never climbs above the root.
pub fn components(p: &OsStr) -> Result<Vec<OsString>, String> {
    let b = p.as_bytes();
    if b.first() != Some(&b'/') {
        return Err(format!("path must be absolute: '{}'", p.to_string_lossy()));
    }
    if b.contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    let mut out: Vec<OsString> = Vec::new();
    for c in b.split(|&x| x == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            _ => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

/// Joins components into a relative path for *at() calls ("." for none).
pub fn rel(comps: &[OsString]) -> CString {
    if comps.is_empty() {
        return c".".to_owned();
    }
    let mut v = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c.as_bytes());
    }
    CString::new(v).expect("components have no NUL")
}

fn name_c(c: &OsStr) -> CString {
    CString::new(c.as_bytes()).expect("components have no NUL")
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Which kind of object a placeholder is (the janitor removes each kind
/// differently).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    File = b'f' as isize,
    Dir = b'd' as isize,
    Link = b'l' as isize,
}

/// The extended attribute that marks a placeholder, so concurrent sandboxes
/// sharing a directory can tell it from the user's own files.
const MARK: &CStr = c"user.cordon.placeholder";

enum Step {
    Ok(OwnedFd),
    /// The filesystem refuses (read-only, permissions): nothing to do.
    Refused,
    /// Something changed under us (a concurrent janitor): start over.
    Retry,
}

pub struct Built {
    /// "fresh" or "host-bind" (or None: no --proc).
    pub proc_mode: Option<&'static str>,
}

struct Builder<'a> {
    old: OwnedFd,
    janitor: Option<&'a OwnedFd>,
    /// st_dev of the tmpfs mounts made here: creations on them need no
    /// cleanup on the host.
    own_devs: Vec<u64>,
    proc_mode: Option<&'static str>,
    /// The top-most mount at the new root, as opened after the last mount
    /// this builder attached (any attach may cover "/", so each one drops
    /// it). Saves re-opening /newroot for every path resolved in between.
    root_cache: RefCell<Option<OwnedFd>>,
    /// Directories we made a placeholder in, with their placeholder
    /// ancestors registered (`adopt_ancestors`) once.
    adopted: RefCell<Vec<Vec<OsString>>>,
    /// The janitor's view of each directory holding a record (dev, ino):
    /// see `janitor_view`.
    views: RefCell<Vec<((u64, u64), Option<OwnedFd>)>>,
}

fn fail(step: impl Into<String>, e: io::Error) -> SetupError {
    SetupError::new(step, sys::errno_text(&e))
}

fn dname(p: &OsStr) -> String {
    p.to_string_lossy().into_owned()
}

/// Executes the mount plan and switches to the new root (the command's
/// process restores the working directory later, after the security layers).
pub fn build(cfg: &RunConfig, janitor: Option<&OwnedFd>) -> Result<Built, SetupError> {
    sys::make_rslave_root().map_err(|e| fail("make mounts private", e))?;
    let base = sys::new_fs(c"tmpfs", &[(c"mode", Some(c"0755"))], sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV)
        .map_err(|e| fail("mount tmpfs", e))?;
    // Any existing directory of the (private copy of the) host tree can carry
    // the base tmpfs until the first pivot_root moves it to "/".
    let mut spot = None;
    for cand in [c"/tmp", c"/mnt", c"/dev", c"/run", c"/var/tmp", c"/home"] {
        if let Ok(fd) = sys::open_at(sys::AT_FDCWD, cand, sys::O_PATH | sys::O_DIRECTORY, 0) {
            spot = Some((cand, fd));
            break;
        }
    }
    let (spot, at) = spot.ok_or_else(|| SetupError::new("base tmpfs", "no directory to mount it on (/tmp, /mnt, /dev, ...)".to_string()))?;
    sys::attach_mount(&base, at.as_raw_fd()).map_err(|e| fail("mount base tmpfs", e))?;
    drop(at);
    let base_dir = sys::open_at(sys::AT_FDCWD, spot, sys::O_PATH | sys::O_DIRECTORY, 0).map_err(|e| fail("open base", e))?;
    let b = base_dir.as_raw_fd();
    for (n, m) in [(c"newroot", 0o755), (c"oldroot", 0o755), (c"mdir", 0o555)] {
        sys::mkdir_at(b, n, m).map_err(|e| fail("base directories", e))?;
    }
    drop(sys::open_at(b, c"mfile", sys::O_CREAT | sys::O_EXCL | sys::O_WRONLY, 0o444).map_err(|e| fail("base files", e))?);
    sys::change_dir_fd(&base_dir).map_err(|e| fail("chdir base", e))?;
    sys::pivot_root(c".", c"oldroot").map_err(|e| fail("pivot_root", e))?;
    sys::change_dir(c"/").map_err(|e| fail("chdir /", e))?;
    let root_fs = sys::new_fs(c"tmpfs", &[(c"mode", Some(c"0755"))], sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV)
        .map_err(|e| fail("mount root tmpfs", e))?;
    let own_root = sys::stat_fd(&root_fs).map_err(|e| fail("stat root tmpfs", e))?.dev;
    let nr = sys::open_at(sys::AT_FDCWD, c"/newroot", sys::O_PATH | sys::O_DIRECTORY, 0).map_err(|e| fail("open newroot", e))?;
    sys::attach_mount(&root_fs, nr.as_raw_fd()).map_err(|e| fail("mount root tmpfs", e))?;
    let old = sys::open_at(sys::AT_FDCWD, c"/oldroot", sys::O_PATH | sys::O_DIRECTORY, 0).map_err(|e| fail("open oldroot", e))?;

    // Every mask clones one of these; making them read-only mounts once
    // here means the clones carry the flags and need no mount_setattr each.
    for p in [c"/mdir", c"/mfile"] {
        let f = |e| fail("base mask sources", e);
        let tree = sys::clone_tree(sys::AT_FDCWD, p, false).map_err(f)?;
        sys::set_mount_attrs(&tree, RO_ALL, false).map_err(f)?;
        let at = sys::open_at(sys::AT_FDCWD, p, sys::O_PATH | sys::O_NOFOLLOW, 0).map_err(f)?;
        sys::attach_mount(&tree, at.as_raw_fd()).map_err(f)?;
    }
    let mut bld = Builder { old, janitor, own_devs: vec![own_root], proc_mode: None, root_cache: RefCell::new(None), adopted: RefCell::new(Vec::new()), views: RefCell::new(Vec::new()) };
    for op in &cfg.mounts {
        bld.apply(op)?;
    }
    let proc_mode = bld.proc_mode;
    drop(bld);

    // The old root goes with the base it is mounted on, in one detach: each
    // unmount waits for an RCU grace period (~0.1 ms), one is enough.
    sys::change_dir(c"/newroot").map_err(|e| fail("chdir newroot", e))?;
    sys::pivot_root(c".", c".").map_err(|e| fail("pivot_root", e))?;
    sys::detach_mount(c".").map_err(|e| fail("detach base and old root", e))?;
    sys::change_dir(c"/").map_err(|e| fail("chdir /", e))?;
    Ok(Built { proc_mode })
}

impl Builder<'_> {
    /// The top-most mount at the new root (re-opened: a mount placed on "/"
    /// covers the descriptor we had).
    fn root(&self) -> io::Result<OwnedFd> {
        sys::open_at(sys::AT_FDCWD, c"/newroot", sys::O_PATH | sys::O_DIRECTORY, 0)
    }

    /// The cached root descriptor (see `root_cache`).
    fn root_fd(&self) -> io::Result<RawFd> {
        let mut c = self.root_cache.borrow_mut();
        if c.is_none() {
            *c = Some(self.root()?);
        }
        Ok(c.as_ref().expect("just set").as_raw_fd())
    }

    /// Every mount this builder places goes through here, so that the root
    /// cache never outlives a mount that could cover it.
    fn attach(&self, tree: &OwnedFd, at: RawFd) -> io::Result<()> {
        self.root_cache.borrow_mut().take();
        sys::attach_mount(tree, at)
    }

    fn resolve(&self, comps: &[OsString], flags: i32) -> io::Result<OwnedFd> {
        if comps.is_empty() {
            return self.root();
        }
        sys::open_at2(self.root_fd()?, &rel(comps), sys::O_PATH | flags, sys::RESOLVE_IN_ROOT)
    }

    fn source(&self, src: &OsStr) -> Result<io::Result<OwnedFd>, SetupError> {
        let comps = components(src).map_err(|m| SetupError::new(format!("bind {}", dname(src)), m))?;
        if comps.is_empty() {
            return Ok(sys::open_at(self.old.as_raw_fd(), c".", sys::O_PATH | sys::O_DIRECTORY, 0));
        }
        Ok(sys::open_at2(self.old.as_raw_fd(), &rel(&comps), sys::O_PATH, sys::RESOLVE_IN_ROOT))
    }

    /// Tells the janitor about a placeholder on a filesystem that is not one
    /// of our private tmpfs mounts, so it disappears after the run. `lock` is
    /// an open descriptor of a mount point, flock()ed shared: the janitor
    /// keeps it (and so the lock) until the end, and removes the object only
    /// if it can then lock it exclusively, i.e. no concurrent sandbox still
    /// has something mounted on it. The janitor gets its own copy of `lock`
    /// (same open file, so the same lock): the caller may keep using it.
    fn register(&self, parent: &OwnedFd, name: &CStr, kind: Kind, lock: Option<(&OwnedFd, &Stat)>) -> Result<(), SetupError> {
        let Some(j) = self.janitor else { return Ok(()) };
        // The locked descriptor is the object itself (its stat is the
        // caller's, taken after the lock): no lookup by name.
        let st = match lock {
            Some((_, st)) => *st,
            None => sys::stat_at(parent.as_raw_fd(), name).map_err(|e| fail("stat placeholder", e))?,
        };
        // The object lives on its parent's filesystem: ours vanishes by itself.
        if self.own_devs.contains(&st.dev) {
            return Ok(());
        }
        let mut msg = vec![kind as u8];
        msg.extend_from_slice(&st.dev.to_ne_bytes());
        msg.extend_from_slice(&st.ino.to_ne_bytes());
        msg.extend_from_slice(name.to_bytes());
        let view = self.janitor_view(parent, j)?;
        let mut fds = vec![view.unwrap_or(parent.as_raw_fd())];
        if let Some((l, _)) = lock {
            fds.push(l.as_raw_fd());
        }
        sys::send_fds(j, &msg, &fds).map_err(|e| fail("janitor", e))
    }

    /// The directory the janitor gets for a record. Ours is on this
    /// namespace's mount, where the janitor would see our masks on the
    /// names (not the placeholders) until the namespace is gone; a detached
    /// copy of just that mount (no submounts) shows the placeholders
    /// themselves, so the janitor can check and remove them as soon as PID 1
    /// reports the sandbox empty ("d"), while PID 1 is still exiting. One
    /// copy per directory. None: no copy possible (a mount with locked
    /// submounts); the janitor is then told to wait for the teardown ("w").
    fn janitor_view(&self, parent: &OwnedFd, j: &OwnedFd) -> Result<Option<RawFd>, SetupError> {
        let st = sys::stat_fd(parent).map_err(|e| fail("stat placeholder parent", e))?;
        let mut views = self.views.borrow_mut();
        if let Some((_, v)) = views.iter().find(|(k, _)| *k == (st.dev, st.ino)) {
            return Ok(v.as_ref().map(|v| v.as_raw_fd()));
        }
        let view = sys::clone_tree(parent.as_raw_fd(), c"", false).ok();
        if view.is_none() {
            sys::send_msg(j, b"w", None, None).map_err(|e| fail("janitor", e))?;
        }
        let raw = view.as_ref().map(|v| v.as_raw_fd());
        views.push(((st.dev, st.ino), view));
        Ok(raw)
    }

    /// If `parent`/`name` is a placeholder (ours or a concurrent sandbox's:
    /// marked with the xattr), an open descriptor of it.
    fn marked(&self, parent: &OwnedFd, name: &CStr) -> Option<(OwnedFd, Kind)> {
        self.janitor?;
        let st = sys::stat_at(parent.as_raw_fd(), name).ok()?;
        let (kind, flag) = if st.is_dir() {
            (Kind::Dir, sys::O_DIRECTORY)
        } else if st.is_reg() && st.size == 0 {
            // A file with data is never a placeholder (nor would a janitor
            // remove it): no need to open it and read the mark.
            (Kind::File, 0)
        } else {
            return None;
        };
        let fd = sys::open_at(parent.as_raw_fd(), name, sys::O_RDONLY | sys::O_NOFOLLOW | sys::O_NONBLOCK | flag, 0).ok()?;
        sys::get_xattr(&fd, MARK).ok().filter(|v| v == b"1")?;
        Some((fd, kind))
    }

    /// Marks a new placeholder (best effort: a filesystem without user
    /// xattrs only loses the sharing between concurrent sandboxes).
    fn mark(fd: &OwnedFd) {
        let _ = sys::set_xattr(fd, MARK, b"1");
    }

    /// The parent directory of a mount point or placeholder, creating
    /// missing components (0755, marked, registered). Marked ancestors
    /// created by a concurrent sandbox are registered too, outermost first,
    /// so whichever sandbox ends last removes them.
    fn parents(&self, comps: &[OsString], soft: bool) -> Result<Step, SetupError> {
        let step = || format!("create /{}", dname(OsStr::from_bytes(rel(comps).as_bytes())));
        match self.resolve(comps, sys::O_DIRECTORY) {
            Ok(fd) => return Ok(Step::Ok(fd)),
            Err(e) if errno(&e) == ENOENT => {}
            Err(e) if errno(&e) == ENOTDIR && soft => return Ok(Step::Refused),
            Err(e) => return Err(fail(step(), e)),
        }
        let mut i = comps.len();
        let mut cur = loop {
            i -= 1;
            match self.resolve(&comps[..i], sys::O_DIRECTORY) {
                Ok(fd) => break fd,
                Err(e) if errno(&e) == ENOENT && i > 0 => continue,
                Err(e) if errno(&e) == ENOTDIR && soft => return Ok(Step::Refused),
                Err(e) => return Err(fail(step(), e)),
            }
        };
        self.adopt_ancestors(&comps[..i])?;
        for j in i..comps.len() {
            let name = name_c(&comps[j]);
            match sys::mkdir_at(cur.as_raw_fd(), &name, 0o755) {
                Ok(()) => {
                    if let Ok(d) = sys::open_at(cur.as_raw_fd(), &name, sys::O_RDONLY | sys::O_DIRECTORY | sys::O_NOFOLLOW, 0) {
                        Self::mark(&d);
                    }
                    self.register(&cur, &name, Kind::Dir, None)?;
                }
                Err(e) if errno(&e) == EEXIST => {
                    if self.marked(&cur, &name).is_some() {
                        self.register(&cur, &name, Kind::Dir, None)?;
                    }
                }
                Err(e) if errno(&e) == ENOENT => return Ok(Step::Retry), // removed under us
                Err(e) if soft && matches!(errno(&e), EROFS | EACCES | EPERM) => return Ok(Step::Refused),
                Err(e) => return Err(fail(format!("mkdir /{}", dname(OsStr::from_bytes(rel(&comps[..=j]).as_bytes()))), e)),
            }
            cur = match self.resolve(&comps[..=j], sys::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(e) if errno(&e) == ENOENT => return Ok(Step::Retry),
                Err(e) => return Err(fail(step(), e)),
            };
        }
        Ok(Step::Ok(cur))
    }

    /// Registers the existing directory `comps` and its ancestors, as far up
    /// as they are placeholders (a concurrent sandbox's), outermost first:
    /// whichever sandbox ends last removes them, once empty.
    fn adopt_ancestors(&self, comps: &[OsString]) -> Result<(), SetupError> {
        if self.janitor.is_none() {
            return Ok(());
        }
        let mut adopted = Vec::new();
        let mut k = comps.len();
        while k > 0 {
            let Ok(p) = self.resolve(&comps[..k - 1], sys::O_DIRECTORY) else { break };
            let name = name_c(&comps[k - 1]);
            if self.marked(&p, &name).is_none() {
                break;
            }
            adopted.push((p, name));
            k -= 1;
        }
        for (p, name) in adopted.iter().rev() {
            self.register(p, name, Kind::Dir, None)?;
        }
        Ok(())
    }

    /// Resolves `comps` (following symlinks inside the root) as something to
    /// mount on, creating it when missing: a directory (`dir`) or an empty
    /// file. Placeholders (ours, or a concurrent sandbox's) are locked shared
    /// and registered, so no janitor removes them while our mount sits on
    /// them (removing a mount point from outside would silently unmount it
    /// here). `soft`: Ok(None) when the filesystem refuses the creation.
    /// `missing`: the caller just saw `comps` missing (saves one lookup).
    fn mount_point(&self, comps: &[OsString], dir: bool, soft: bool, missing: bool) -> Result<Option<OwnedFd>, SetupError> {
        let step = || format!("create /{}", dname(OsStr::from_bytes(rel(comps).as_bytes())));
        if comps.is_empty() {
            return self.root().map(Some).map_err(|e| fail("open root", e));
        }
        let last = name_c(&comps[comps.len() - 1]);
        let mut skip_lookup = missing;
        for _ in 0..64 {
            match if std::mem::take(&mut skip_lookup) { Err(io::Error::from_raw_os_error(ENOENT)) } else { self.resolve(comps, 0) } {
                Ok(fd) => {
                    let Ok(parent) = self.resolve(&comps[..comps.len() - 1], sys::O_DIRECTORY) else { continue };
                    let Some((lock, kind)) = self.marked(&parent, &last) else {
                        // Not a placeholder, or one whose janitor removed it
                        // since we looked it up: `fd` then names an unlinked
                        // object, which nothing can be mounted on. Look again.
                        match sys::stat_fd(&fd) {
                            Ok(st) if st.nlink == 0 => continue,
                            _ => return Ok(Some(fd)),
                        }
                    };
                    // Janitors hold LOCK_EX only while removing; anything
                    // longer is a process (maybe inside some sandbox) holding
                    // it on purpose: fail closed rather than hang.
                    lock_bounded(&lock, sys::LOCK_SH, ADOPT_WAIT).map_err(|e| match errno(&e) {
                        EAGAIN => SetupError::new(step(), "placeholder kept locked by another process".to_string()),
                        _ => fail(step(), e),
                    })?;
                    let Ok(lst) = sys::stat_fd(&lock) else { continue };
                    if lst.nlink == 0 {
                        continue; // its janitor removed it meanwhile
                    }
                    self.adopt_ancestors(&comps[..comps.len() - 1])?;
                    let same = sys::stat_fd(&fd).ok().map(|s| (s.dev, s.ino)) == Some((lst.dev, lst.ino));
                    self.register(&parent, &last, kind, Some((&lock, &lst)))?;
                    if same {
                        return Ok(Some(fd));
                    }
                    continue;
                }
                Err(e) if errno(&e) == ENOENT => {}
                Err(e) if errno(&e) == ENOTDIR && soft => return Ok(None),
                Err(e) => return Err(fail(step(), e)),
            }
            let parent = match self.parents(&comps[..comps.len() - 1], soft)? {
                Step::Ok(p) => p,
                Step::Refused => return Ok(None),
                Step::Retry => continue,
            };
            // A name made here is reached through this directory: if it is a
            // concurrent sandbox's placeholder, it must stay registered with
            // us until our name in it is gone (else it outlives both runs).
            let pcomps = &comps[..comps.len() - 1];
            if !self.adopted.borrow().iter().any(|a| a[..] == *pcomps) {
                self.adopt_ancestors(pcomps)?;
                self.adopted.borrow_mut().push(pcomps.to_vec());
            }
            let made = if dir {
                sys::mkdir_at(parent.as_raw_fd(), &last, 0o755).map(|()| None)
            } else {
                sys::open_at(parent.as_raw_fd(), &last, sys::O_CREAT | sys::O_EXCL | sys::O_WRONLY | sys::O_NOFOLLOW, 0o600).map(Some)
            };
            match made {
                Ok(created) => {
                    let kind = if dir { Kind::Dir } else { Kind::File };
                    // A new file's own descriptor carries the lock (flock
                    // works on any open file); a directory needs opening.
                    let lock = match created {
                        Some(c) => {
                            Self::mark(&c);
                            let _ = sys::chmod_fd(&c, 0o444);
                            c
                        }
                        None => match sys::open_at(parent.as_raw_fd(), &last, sys::O_RDONLY | sys::O_NOFOLLOW | sys::O_DIRECTORY, 0) {
                            Ok(l) => {
                                Self::mark(&l);
                                l
                            }
                            // Removed, or replaced by a concurrent sandbox's file.
                            Err(e) if matches!(errno(&e), ENOENT | ENOTDIR) => continue,
                            Err(e) => return Err(fail(step(), e)),
                        },
                    };
                    sys::lock_fd(&lock, sys::LOCK_SH).map_err(|e| fail(step(), e))?;
                    let lst = sys::stat_fd(&lock).map_err(|e| fail(step(), e))?;
                    if lst.nlink == 0 {
                        continue;
                    }
                    self.register(&parent, &last, kind, Some((&lock, &lst)))?;
                    // The locked descriptor is the new object: the mount target.
                    return Ok(Some(lock));
                }
                Err(e) if matches!(errno(&e), EEXIST | ENOENT) => continue, // raced: look again
                Err(e) if soft && matches!(errno(&e), EROFS | EACCES | EPERM) => return Ok(None),
                Err(e) => return Err(fail(step(), e)),
            }
        }
        Err(SetupError::new(step(), "changed concurrently too often".to_string()))
    }

    fn ensure_dir(&self, comps: &[OsString]) -> Result<OwnedFd, SetupError> {
        Ok(self.mount_point(comps, true, false, false)?.expect("not soft"))
    }

    fn attach_tmpfs(&mut self, at: &OwnedFd, mode: &CStr, step: &str) -> Result<(), SetupError> {
        let fs = sys::new_fs(c"tmpfs", &[(c"mode", Some(mode))], sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV)
            .map_err(|e| fail(step.to_string(), e))?;
        self.own_devs.push(sys::stat_fd(&fs).map_err(|e| fail(step.to_string(), e))?.dev);
        self.attach(&fs, at.as_raw_fd()).map_err(|e| fail(step.to_string(), e))
    }

    fn apply(&mut self, op: &MountOp) -> Result<(), SetupError> {
        match op {
            MountOp::Bind { src, dst, kind, try_ } => self.bind(src, dst, *kind, *try_),
            MountOp::Tmpfs { dst } => {
                let step = format!("tmpfs {}", dname(dst));
                let comps = components(dst).map_err(|m| SetupError::new(step.clone(), m))?;
                let at = self.ensure_dir(&comps)?;
                self.attach_tmpfs(&at, c"0755", &step)
            }
            MountOp::Dev { dst } => self.dev(dst),
            MountOp::Proc { dst } => self.proc(dst),
            MountOp::Mask { path } => self.mask(path),
            MountOp::Pin { path } => self.pin(path),
            MountOp::Dir { dst } => {
                let comps = components(dst).map_err(|m| SetupError::new(format!("dir {}", dname(dst)), m))?;
                match self.parents(&comps, false)? {
                    Step::Ok(_) => Ok(()),
                    _ => Err(SetupError::new(format!("dir {}", dname(dst)), "changed concurrently".to_string())),
                }
            }
            MountOp::Symlink { target, dst } => self.symlink(target, dst),
        }
    }

    fn bind(&mut self, src: &OsStr, dst: &OsStr, kind: BindKind, try_: bool) -> Result<(), SetupError> {
        let step = format!("bind {} {}", dname(src), dname(dst));
        let comps = components(dst).map_err(|m| SetupError::new(step.clone(), m))?;
        let mut attrs = sys::MOUNT_ATTR_NOSUID;
        if kind == BindKind::ReadOnly {
            attrs |= sys::MOUNT_ATTR_RDONLY;
        }
        if kind != BindKind::Dev {
            attrs |= sys::MOUNT_ATTR_NODEV;
        }
        // Retried when a concurrent sandbox's janitor removes a placeholder
        // between our steps (ENOENT on an object we just had).
        for _ in 0..16 {
            let sfd = match self.source(src)? {
                Ok(fd) => fd,
                Err(e) if try_ && matches!(errno(&e), ENOENT | ENOTDIR | ELOOP) => return Ok(()),
                // `--ro-bind P P` protects P in place. If P vanished since
                // the plan was made (a concurrent sandbox's placeholder,
                // removed), the same protection for a missing path is a mask.
                Err(e) if matches!(errno(&e), ENOENT | ENOTDIR) && kind == BindKind::ReadOnly && src == dst => return self.mask(dst),
                Err(e) => return Err(fail(step, e)),
            };
            let sst = sys::stat_fd(&sfd).map_err(|e| fail(step.clone(), e))?;
            let at = self.mount_point(&comps, sst.is_dir(), false, false)?.expect("not soft");
            // A path bound onto itself on the same filesystem must be the
            // very object we hold; otherwise it was replaced in between.
            if src == dst {
                if let Ok(t) = sys::stat_fd(&at) {
                    if t.dev == sst.dev && t.ino != sst.ino {
                        continue;
                    }
                }
            }
            let tree = match sys::clone_tree(sfd.as_raw_fd(), c"", true) {
                Ok(t) => t,
                Err(e) if errno(&e) == ENOENT => continue,
                Err(e) => return Err(fail(step, e)),
            };
            sys::set_mount_attrs(&tree, attrs, true).map_err(|e| fail(step.clone(), e))?;
            match self.attach(&tree, at.as_raw_fd()) {
                Ok(()) => return Ok(()),
                Err(e) if errno(&e) == ENOENT => continue,
                Err(e) => return Err(fail(step, e)),
            }
        }
        Err(SetupError::new(step, "changed concurrently too often".to_string()))
    }

    fn dev(&mut self, dst: &OsStr) -> Result<(), SetupError> {
        let step = format!("dev {}", dname(dst));
        let comps = components(dst).map_err(|m| SetupError::new(step.clone(), m))?;
        let at = self.ensure_dir(&comps)?;
        self.attach_tmpfs(&at, c"0755", &step)?;
        let d = self.resolve(&comps, sys::O_DIRECTORY).map_err(|e| fail(step.clone(), e))?;
        let dfd = d.as_raw_fd();
        for node in DEV_NODES {
            let host = CString::new([b"dev/".as_slice(), node.to_bytes()].concat()).unwrap();
            let src = match sys::open_at2(self.old.as_raw_fd(), &host, sys::O_PATH, sys::RESOLVE_IN_ROOT) {
                Ok(fd) => fd,
                Err(e) if errno(&e) == ENOENT => continue, // e.g. no /dev/tty in some containers
                Err(e) => return Err(fail(format!("{step}: {}", node.to_string_lossy()), e)),
            };
            let f = |e| fail(format!("{step}: {}", node.to_string_lossy()), e);
            // The new file's own descriptor is the mount target (a file is
            // never the root: the root cache stays valid).
            let target = sys::open_at(dfd, node, sys::O_CREAT | sys::O_EXCL | sys::O_WRONLY, 0o666).map_err(f)?;
            let tree = sys::clone_tree(src.as_raw_fd(), c"", false).map_err(f)?;
            sys::set_mount_attrs(&tree, sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC, false).map_err(f)?;
            sys::attach_mount(&tree, target.as_raw_fd()).map_err(f)?;
        }
        let f = |what: &str| {
            let s = format!("{step}: {what}");
            move |e| fail(s, e)
        };
        sys::mkdir_at(dfd, c"pts", 0o755).map_err(f("pts"))?;
        sys::mkdir_at(dfd, c"shm", 0o1777).map_err(f("shm"))?;
        let pts = sys::new_fs(
            c"devpts",
            &[(c"newinstance", None), (c"ptmxmode", Some(c"0666")), (c"mode", Some(c"620"))],
            sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC,
        )
        .map_err(f("devpts"))?;
        let at = sys::open_at(dfd, c"pts", sys::O_PATH | sys::O_DIRECTORY, 0).map_err(f("pts"))?;
        self.attach(&pts, at.as_raw_fd()).map_err(f("devpts"))?;
        let shm = sys::open_at(dfd, c"shm", sys::O_PATH | sys::O_DIRECTORY, 0).map_err(f("shm"))?;
        self.attach_tmpfs(&shm, c"1777", &format!("{step}: shm"))?;
        for (target, name) in [
            (c"pts/ptmx", c"ptmx"),
            (c"/proc/self/fd", c"fd"),
            (c"/proc/self/fd/0", c"stdin"),
            (c"/proc/self/fd/1", c"stdout"),
            (c"/proc/self/fd/2", c"stderr"),
        ] {
            sys::symlink_at(target, dfd, name).map_err(f("symlinks"))?;
        }
        Ok(())
    }

    fn proc(&mut self, dst: &OsStr) -> Result<(), SetupError> {
        let step = format!("proc {}", dname(dst));
        let comps = components(dst).map_err(|m| SetupError::new(step.clone(), m))?;
        let at = self.ensure_dir(&comps)?;
        match sys::new_fs(c"proc", &[], sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC) {
            Ok(fs) => {
                self.attach(&fs, at.as_raw_fd()).map_err(|e| fail(step.clone(), e))?;
                let p = self.resolve(&comps, sys::O_DIRECTORY).map_err(|e| fail(step.clone(), e))?;
                for name in PROC_COVERS {
                    let f = |e| fail(format!("{step}: cover {}", name.to_string_lossy()), e);
                    let t = match sys::open_at(p.as_raw_fd(), name, sys::O_PATH | sys::O_NOFOLLOW, 0) {
                        Ok(t) => t,
                        Err(e) if errno(&e) == ENOENT => continue,
                        Err(e) => return Err(f(e)),
                    };
                    let tree = sys::clone_tree(t.as_raw_fd(), c"", true).map_err(f)?;
                    sys::set_mount_attrs(&tree, RO_ALL, true).map_err(f)?;
                    self.attach(&tree, t.as_raw_fd()).map_err(f)?;
                }
                self.proc_mode = Some("fresh");
            }
            Err(_) => {
                // Some containers forbid a new proc (covered host proc). A
                // read-only bind of the host's /proc is the restricted
                // fallback; it is reported in --info-fd, never silent.
                let src = sys::open_at2(self.old.as_raw_fd(), c"proc", sys::O_PATH | sys::O_DIRECTORY, sys::RESOLVE_IN_ROOT)
                    .map_err(|e| fail(step.clone(), e))?;
                let tree = sys::clone_tree(src.as_raw_fd(), c"", true).map_err(|e| fail(step.clone(), e))?;
                sys::set_mount_attrs(&tree, RO_ALL, true).map_err(|e| fail(step.clone(), e))?;
                self.attach(&tree, at.as_raw_fd()).map_err(|e| fail(step, e))?;
                self.proc_mode = Some("host-bind");
            }
        }
        Ok(())
    }

    /// Covers `target` with the empty read-only directory or file.
    fn cover(&self, target: &OwnedFd, dir: bool) -> io::Result<()> {
        // Already read-only (made so once in `build`): clones keep the flags.
        let tree = sys::clone_tree(sys::AT_FDCWD, if dir { c"/mdir" } else { c"/mfile" }, false)?;
        if dir {
            return self.attach(&tree, target.as_raw_fd());
        }
        // A file is never the root: the cached root stays valid.
        sys::attach_mount(&tree, target.as_raw_fd())
    }

    fn mask(&mut self, path: &OsStr) -> Result<(), SetupError> {
        let step = format!("mask {}", dname(path));
        let comps = components(path).map_err(|m| SetupError::new(step.clone(), m))?;
        if comps.is_empty() {
            return Err(SetupError::new(step, "cannot mask the root".to_string()));
        }
        match self.resolve(&comps, sys::O_NOFOLLOW) {
            Ok(fd) => {
                let st: Stat = sys::stat_fd(&fd).map_err(|e| fail(step.clone(), e))?;
                if st.is_symlink() {
                    // Protect what the link points to (inside the sandbox),
                    // and the link itself so it cannot be followed at all.
                    // Neither may abort the run (srt #221, #314).
                    // A link to "/" or to one of its own parent directories
                    // (`ln -s . .ssh`) only gets the link covered: hiding the
                    // root or the working tree would break the run and hides
                    // nothing that the policy did not already show.
                    if let Ok(t) = self.resolve(&comps, 0) {
                        if let Ok(tst) = sys::stat_fd(&t) {
                            let is_ancestor = (0..comps.len()).any(|k| {
                                self.resolve(&comps[..k], sys::O_DIRECTORY)
                                    .and_then(|a| sys::stat_fd(&a))
                                    .is_ok_and(|a| a.dev == tst.dev && a.ino == tst.ino)
                            });
                            if !is_ancestor {
                                self.cover(&t, tst.is_dir()).map_err(|e| fail(step.clone(), e))?;
                            }
                        }
                    }
                    let link = self.resolve(&comps, sys::O_NOFOLLOW).map_err(|e| fail(step.clone(), e))?;
                    let _ = self.cover(&link, false);
                    Ok(())
                } else if st.is_reg() && st.size > 0 {
                    // A file with data is nobody's placeholder: nothing to adopt.
                    self.cover(&fd, false).map_err(|e| fail(step, e))
                } else {
                    // Possibly a concurrent sandbox's placeholder: adopt it.
                    let t = self.mount_point(&comps, st.is_dir(), true, false)?.unwrap_or(fd);
                    let dir = sys::stat_fd(&t).map(|s| s.is_dir()).unwrap_or(false);
                    self.cover(&t, dir).map_err(|e| fail(step, e))
                }
            }
            Err(e) if errno(&e) == ENOTDIR => Ok(()), // a parent is a file: the path cannot exist
            Err(e) if errno(&e) == ENOENT => {
                // Missing: if the sandbox could create it, an empty read-only
                // placeholder goes there (removed from the host afterwards).
                match self.mount_point(&comps, false, true, true)? {
                    None => Ok(()), // read-only or not writable: cannot be created inside either
                    Some(t) => {
                        let dir = sys::stat_fd(&t).map(|s| s.is_dir()).unwrap_or(false);
                        self.cover(&t, dir).map_err(|e| fail(step, e))
                    }
                }
            }
            Err(e) => Err(fail(step, e)),
        }
    }

    fn pin(&mut self, path: &OsStr) -> Result<(), SetupError> {
        let step = format!("pin {}", dname(path));
        let comps = components(path).map_err(|m| SetupError::new(step.clone(), m))?;
        if comps.is_empty() {
            return Ok(());
        }
        let fd = match self.resolve(&comps, 0) {
            Ok(fd) => fd,
            Err(e) if matches!(errno(&e), ENOENT | ENOTDIR) => return Ok(()),
            Err(e) => return Err(fail(step, e)),
        };
        let tree = sys::clone_tree(fd.as_raw_fd(), c"", true).map_err(|e| fail(step.clone(), e))?;
        self.attach(&tree, fd.as_raw_fd()).map_err(|e| fail(step, e))
    }

    fn symlink(&mut self, target: &OsStr, dst: &OsStr) -> Result<(), SetupError> {
        let step = format!("symlink {} {}", dname(target), dname(dst));
        let comps = components(dst).map_err(|m| SetupError::new(step.clone(), m))?;
        if comps.is_empty() {
            return Err(SetupError::new(step, "destination is the root".to_string()));
        }
        let parent = match self.parents(&comps[..comps.len() - 1], false)? {
            Step::Ok(p) => p,
            _ => return Err(SetupError::new(step, "changed concurrently".to_string())),
        };
        let name = name_c(&comps[comps.len() - 1]);
        let t = sys::cstr(target).map_err(|e| fail(step.clone(), e))?;
        match sys::symlink_at(&t, parent.as_raw_fd(), &name) {
            Ok(()) => self.register(&parent, &name, Kind::Link, None),
            Err(e) if errno(&e) == EEXIST => match sys::readlink_at(parent.as_raw_fd(), &name) {
                Ok(v) if v == t.as_bytes() => Ok(()),
                _ => Err(fail(step, e)),
            },
            Err(e) => Err(fail(step, e)),
        }
    }
}

/// How long setup waits for a placeholder that someone else keeps locked
/// exclusively (janitors do so for a few syscalls).
const ADOPT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// flock with a deadline: any process that can open a placeholder can
/// flock it, so blocking without limit would let it hang us.
fn lock_bounded(fd: &OwnedFd, op: i32, limit: std::time::Duration) -> io::Result<()> {
    let end = std::time::Instant::now() + limit;
    loop {
        match sys::lock_fd(fd, op | sys::LOCK_NB) {
            Err(e) if errno(&e) == EAGAIN && std::time::Instant::now() < end => std::thread::sleep(std::time::Duration::from_millis(1)),
            r => return r,
        }
    }
}

/// Parses a janitor record (kind, dev, ino, name).
pub fn parse_record(msg: &[u8]) -> Option<(Kind, u64, u64, CString)> {
    if msg.len() < 18 {
        return None;
    }
    let kind = match msg[0] {
        b'f' => Kind::File,
        b'd' => Kind::Dir,
        b'l' => Kind::Link,
        _ => return None,
    };
    let dev = u64::from_ne_bytes(msg[1..9].try_into().ok()?);
    let ino = u64::from_ne_bytes(msg[9..17].try_into().ok()?);
    let name = &msg[17..];
    if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
        return None;
    }
    Some((kind, dev, ino, CString::new(name).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str) -> Vec<String> {
        components(OsStr::new(p)).unwrap().into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn components_normalize() {
        assert_eq!(c("/"), Vec::<String>::new());
        assert_eq!(c("/a//b/./c/"), vec!["a", "b", "c"]);
        assert_eq!(c("/a/../../b"), vec!["b"]);
        assert!(components(OsStr::new("rel/x")).is_err());
        assert_eq!(rel(&[]), c".".to_owned());
        assert_eq!(rel(&components(OsStr::new("/usr/lib")).unwrap()), c"usr/lib".to_owned());
    }

    #[test]
    fn records_roundtrip_and_reject_paths() {
        let mut m = vec![b'f'];
        m.extend_from_slice(&7u64.to_ne_bytes());
        m.extend_from_slice(&9u64.to_ne_bytes());
        m.extend_from_slice(b".git");
        let (k, d, i, n) = parse_record(&m).unwrap();
        assert_eq!((k, d, i, n.as_bytes()), (Kind::File, 7, 9, b".git".as_slice()));
        let mut bad = m[..17].to_vec();
        bad.extend_from_slice(b"a/b");
        assert!(parse_record(&bad).is_none());
        let mut dots = m[..17].to_vec();
        dots.extend_from_slice(b"..");
        assert!(parse_record(&dots).is_none());
        assert!(parse_record(b"x").is_none());
    }
}
