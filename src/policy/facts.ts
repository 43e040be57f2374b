// The facts the compiler reads about the machine, injected so that the
// compiler stays a pure function: unit tests pass a fake filesystem, the CLI
// and the library pass realFacts().
import { lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StatFact {
  kind: 'dir' | 'file' | 'symlink' | 'other';
  mtimeMs: number;
  size?: number;
}

export interface FsFacts {
  /** lstat (does not follow a final symlink); undefined when absent or unreachable. */
  lstat(path: string): StatFact | undefined;
  /** realpath; undefined when the path does not exist. */
  realpath(path: string): string | undefined;
  /** Entry names of a directory; undefined when it cannot be read. */
  readdir(path: string): string[] | undefined;
  /** Entries with their kind (no symlink followed), when the fs can tell
   *  cheaply (readdir d_type); saves an lstat per entry in directory walks. */
  readdirKinds?(path: string): Array<{ name: string; kind: StatFact['kind'] }> | undefined;
  /** A small text file's content (git config); undefined when unreadable. */
  readFile?(path: string): string | undefined;
  /** Identity for caches kept across compiles (directory scans): the same
   *  for every per-compile view of one long-lived filesystem. */
  cacheKey?: object;
}

export interface MountFact {
  /** major:minor of the filesystem. */
  dev: string;
  /** The directory of that filesystem shown at mountPoint. */
  root: string;
  mountPoint: string;
}

/** Parses /proc/self/mountinfo (octal escapes such as \040 decoded). */
export function parseMountinfo(text: string): MountFact[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountFact[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5 || !f[2] || !f[3] || !f[4]) continue;
    out.push({ dev: f[2], root: unescape(f[3]), mountPoint: unescape(f[4]) });
  }
  return out;
}

export interface Facts {
  cwd: string;
  home: string;
  uid: number;
  gid: number;
  env: Record<string, string | undefined>;
  /** Host temp dir (informational; the sandbox always gets a private /tmp). */
  tmpdir?: string;
  /** Host path of cordon-launcher, bound read-only into the sandbox. */
  launcherPath?: string;
  /** Settings files in use: protected from writes like the mandatory denies. */
  settingsFiles?: string[];
  /** cordon's own code and the node binary running it: a command must not
   *  be able to replace what the next (unsandboxed) cordon start executes. */
  selfPaths?: string[];
  fs: FsFacts;
  /** The host's mounts (from /proc/self/mountinfo), used to find other
   *  spellings of a hidden path (a second bind of the same filesystem). */
  mounts?: MountFact[];
  /** Monotonic-ish clock for walk budgets (ms); defaults to no time budget. */
  now?: () => number;
}

function kindOf(st: { isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }): StatFact['kind'] {
  return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
}

export const realFs: FsFacts = {
  lstat(p) {
    try {
      // Most paths a compile asks about do not exist (credential stores,
      // settings candidates): no exception for those, which costs more than
      // the syscall itself.
      const st = lstatSync(p, { throwIfNoEntry: false });
      return st ? { kind: kindOf(st), mtimeMs: st.mtimeMs, size: st.size } : undefined;
    } catch {
      return undefined;
    }
  },
  realpath(p) {
    // A path whose lstat says ENOENT has a missing component, so realpath
    // fails too: answered without the throw. The rest goes to the C
    // realpath, one call instead of node's lstat per component.
    try {
      if (lstatSync(p, { throwIfNoEntry: false }) === undefined) return undefined;
      return realpathSync.native(p);
    } catch {
      return undefined;
    }
  },
  readdir(p) {
    try {
      return readdirSync(p);
    } catch {
      return undefined;
    }
  },
  readFile(p) {
    try {
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st?.isFile() || st.size > 1 << 20) return undefined;
      return readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  },
  readdirKinds(p) {
    try {
      return readdirSync(p, { withFileTypes: true }).map((d) => ({ name: d.name, kind: kindOf(d) }));
    } catch {
      return undefined;
    }
  },
};

/** One compile looks at the same few paths many times (each rule's
 *  ancestors, every home's credential stores: ~370 questions, ~145
 *  distinct): answers are kept for the length of one compile only, so
 *  nothing stale reaches the next command. */
export function memoFs(base: FsFacts): FsFacts {
  const cache = new Map<string, unknown>();
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(base)) {
    if (typeof fn !== 'function') continue;
    out[name] = (p: string) => {
      const key = `${name}\0${p}`;
      if (cache.has(key)) return cache.get(key);
      const v = (fn as (p: string) => unknown).call(base, p);
      cache.set(key, v);
      return v;
    };
  }
  return out as unknown as FsFacts;
}

/** A directory's identity and last change (device, inode, mtime, ctime in
 *  ns), 'absent' when it cannot be reached (ENOENT, EACCES), null when it is
 *  not a plain directory (a symlink's target is not covered by its stamp). */
export type DirStamp = string | null;

export function realDirStamp(dir: string): DirStamp {
  try {
    // Float ms keep sub-microsecond digits of the ns timestamps, and cost
    // less than a bigint stat.
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (!st) return 'absent';
    if (!st.isDirectory()) return null;
    return `${st.dev}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EACCES' ? 'absent' : null;
  }
}

/**
 * "Does not exist" answers kept across compiles of a long-lived Sandbox.
 * Most of what a compile asks about is absent (every home's credential
 * stores, settings candidates, protected names); such an answer stays true
 * exactly as long as the directories leading to the first missing component
 * keep their entries, which their stamps (inode, mtime, ctime) show. So a
 * compile re-checks one stamp per distinct directory instead of asking again
 * per path, and anything created, removed, renamed, re-permissioned or
 * mounted on the way is noticed. Likewise "p is its own realpath" (no
 * symlink on the way). lstat of present paths, directory listings and file
 * contents are never kept. A path with a symlink on the way is not kept (the
 * link's stamp does not cover its target).
 */
export class AbsenceCache {
  private readonly absent = new Map<string, Array<[string, string]>>();
  /** Paths that were their own realpath, with the stamps above them. */
  private readonly real = new Map<string, Array<[string, string]>>();
  private static readonly MAX = 4096;

  constructor(
    private readonly base: FsFacts,
    private readonly stamp: (dir: string) => DirStamp = realDirStamp,
  ) {}

  /** The facts for one compile: cached absences re-validated once per
   *  directory, everything else asked of the base fs and memoized for this
   *  compile only. */
  session(): FsFacts {
    const memo = memoFs(this.base);
    const stamps = new Map<string, DirStamp>();
    const stampOf = (d: string): DirStamp => {
      let s = stamps.get(d);
      if (s === undefined) stamps.set(d, (s = this.stamp(d)));
      return s;
    };
    const depsOf = (p: string): Array<[string, string]> | undefined => {
      if (!p.startsWith('/') || p === '/' || /\/\/|\/\.\.?(\/|$)/.test(p)) return undefined;
      const deps: Array<[string, string]> = [];
      // Top-down: every directory that exists on the way, up to the first
      // component that does not.
      for (let i = p.indexOf('/', 1), a = '/'; ; i = p.indexOf('/', i + 1)) {
        const s = stampOf(a);
        if (s === null) return undefined;
        if (s === 'absent') return deps.length ? deps : undefined;
        deps.push([a, s]);
        if (i === -1) return deps;
        a = p.slice(0, i);
      }
    };
    const valid = (deps: Array<[string, string]>) => deps.every(([d, s]) => stampOf(d) === s);
    const lstat = (p: string): StatFact | undefined => {
      const deps = this.absent.get(p);
      if (deps) {
        if (valid(deps)) return undefined;
        this.absent.delete(p);
      }
      // Stamps first, then the answer: a change in between shows as a new
      // stamp at the next check instead of hiding behind it.
      const d = this.absent.size < AbsenceCache.MAX ? depsOf(p) : undefined;
      const v = memo.lstat(p);
      if (v === undefined && d) this.absent.set(p, d);
      return v;
    };
    const realpath = (p: string): string | undefined => {
      const deps = this.real.get(p);
      if (deps) {
        if (valid(deps)) return p;
        this.real.delete(p);
      }
      const d = this.real.size < AbsenceCache.MAX ? depsOf(p) : undefined;
      // Absent by lstat means a missing component, so realpath fails too; a
      // dangling symlink (present to lstat) still goes to the base.
      const r = lstat(p) === undefined ? undefined : memo.realpath(p);
      // A path that is its own realpath has no symlink on the way: it stays
      // so while no directory above it changes its entries.
      if (r === p && d) this.real.set(p, d);
      return r;
    };
    const out: FsFacts = {
      lstat,
      realpath,
      readdir: (p) => memo.readdir(p),
    };
    if (memo.readdirKinds) out.readdirKinds = (p) => memo.readdirKinds!(p);
    if (memo.readFile) out.readFile = (p) => memo.readFile!(p);
    out.cacheKey = this;
    return out;
  }
}

export function realFacts(over: Partial<Facts> = {}): Facts {
  return {
    cwd: process.cwd(),
    home: process.env.HOME || homedir(),
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    env: process.env,
    tmpdir: tmpdir(),
    fs: realFs,
    mounts: readMounts(),
    selfPaths: selfPaths(),
    now: () => performance.now(),
    ...over,
  };
}

function readMounts(): MountFact[] | undefined {
  try {
    return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return undefined;
  }
}

/** The node binary, cordon's dist/ and the packages it imports at run time
 *  (found as node would find them: node_modules/<name> in dist/ or above). */
function selfPaths(): string[] {
  const dist = dirname(dirname(fileURLToPath(import.meta.url)));
  const out = [process.execPath, dist];
  let deps: string[] = [];
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(dist), 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    deps = Object.keys(pkg.dependencies ?? {});
  } catch {
    /* no package.json next to dist: nothing more to find */
  }
  for (const name of deps) {
    for (let d = dist; ; d = dirname(d)) {
      const candidate = join(d, 'node_modules', name);
      try {
        if (lstatSync(candidate).isDirectory()) {
          out.push(candidate);
          break;
        }
      } catch {
        /* keep looking upwards */
      }
      if (dirname(d) === d) break;
    }
  }
  return out;
}
