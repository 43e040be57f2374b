// The facts the compiler reads about the machine, injected so that the
// compiler stays a pure function: unit tests pass a fake filesystem, the CLI
// and the library pass realFacts().
import { lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StatFact {
  kind: 'dir' | 'file' | 'symlink' | 'other';
  /** Not read by the compiler (its plans are cached by what it reads). */
  mtimeMs?: number;
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

/** What the fact cache knows of one path from one lstat: its kind, its
 *  size, and a stamp (mode, device, inode, mtime, ctime, size) that changes
 *  whenever the answers derived from it could ('' when it cannot be trusted). */
export interface StatNode {
  kind: StatFact['kind'];
  size: number;
  stamp: string;
}

/** A change within one tick of the kernel's coarse file clock can keep
 *  mtime and ctime as they were ("racy git"): a stamp younger than this is
 *  never trusted, so what depends on it is asked again. */
const RACY_MS = 25;

/** Conditions that hold until something on the way changes (and so its
 *  stamp); any other failure (EMFILE, EIO, ENOMEM) is not an answer. */
const STABLE_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'ELOOP', 'ENAMETOOLONG']);

/** undefined: the path cannot be reached (absent, not searchable); null:
 *  the stat failed for another reason, so nothing is known. */
export function realStat(p: string): StatNode | undefined | null {
  try {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return undefined;
    const young = Date.now() - RACY_MS;
    const racy = st.ctimeMs > young || st.mtimeMs > young;
    // Float ms keep sub-microsecond digits of the ns timestamps, and cost
    // less than a bigint stat.
    return { kind: kindOf(st), size: st.size, stamp: racy ? '' : `${st.mode}:${st.dev}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}:${st.size}` };
  } catch (e) {
    return STABLE_ERRORS.has((e as NodeJS.ErrnoException).code ?? '') ? undefined : null;
  }
}

export type FactOp = 'lstat' | 'realpath' | 'readdir' | 'readdirKinds' | 'readFile';

/** One question a compile asked, with the answer it got. */
export interface FactQuestion {
  op: FactOp;
  path: string;
  answer: unknown;
  /** op and path as the cache's key. */
  key: string;
}

interface Known {
  answer: unknown;
  /** [path, stamp, path, stamp, ...]: the answer holds while every stamp
   *  does; null: asked again every time (a symlink on the way). */
  deps: string[] | null;
}

/** Equal answers (the shapes FsFacts returns). */
export function sameAnswer(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameAnswer(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => sameAnswer((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const UNNORMAL = /\/\/|\/\.\.?(\/|$)/;

/** A name whose absence from a listing means an lstat would not find it,
 *  on every filesystem the listing could come from: case-insensitive ones
 *  (vfat, ntfs3, CIFS, casefold ext4/tmpfs) match other spellings, which
 *  the lower-cased listing catches; vfat drops trailing dots; 8.3 aliases
 *  (never listed) carry a '~'. Anything else is stat'ed. */
const PLAIN_NAME = /^[A-Za-z0-9_.-]*[A-Za-z0-9_-]$/;
/** Any character outside printable ASCII: such a listing may hold a name
 *  that folds or normalizes to a plain one (U+212A KELVIN SIGN is 'k'). */
const NOT_PLAIN = /[^\x20-\x7e]/;

/** The lower-cased names of a listing (readdir or readdirKinds), or null
 *  when it cannot speak for absent names; built once per listing object
 *  (an unchanged listing keeps its identity across sessions). */
const nameSets = new WeakMap<object, ReadonlySet<string> | null>();
function namesOf(listing: ReadonlyArray<string | { name: string }>): ReadonlySet<string> | null {
  let set = nameSets.get(listing);
  if (set === undefined) {
    const names = listing.map((e) => (typeof e === 'string' ? e : e.name));
    set = names.some((n) => NOT_PLAIN.test(n)) ? null : new Set(names.map((n) => n.toLowerCase()));
    nameSets.set(listing, set);
  }
  return set;
}

/**
 * Answers to the compiler's filesystem questions kept across the compiles
 * of a long-lived Sandbox, each with the stamps it depends on:
 * - absent (or under a non-directory): the deepest existing ancestor (its
 *   entries, permissions and identity);
 * - lstat of a present path: that path's own stamp;
 * - "p is its own realpath": every directory above p (no entry on the way
 *   replaced by a symlink, renamed or re-mounted);
 * - a listing or a file's content: that directory's or file's stamp.
 * A session checks each stamp once (one lstat per distinct path); when a
 * stamp changed, only the answers depending on it are asked again, and an
 * equal answer keeps its identity (so listings scanned once stay scanned).
 * A path reached through a symlink is asked again every time. Only the
 * stamp-derived answers are handed out (kind, and size of a file: no
 * times), so an answer changes exactly when what the compiler sees does.
 */
export class FactCache {
  readonly known = new Map<string, Known>();
  static readonly MAX = 8192;

  constructor(
    readonly base: FsFacts = realFs,
    readonly stat: (p: string) => StatNode | undefined | null = realStat,
  ) {}

  session(): FactSession {
    return new FactSession(this);
  }
}

/** The facts for one compile (or one plan check): stats and answers are
 *  memoized for its length, so it sees one consistent picture. */
export class FactSession implements FsFacts {
  private readonly stats = new Map<string, StatNode | undefined | null>();
  private readonly answers = new Map<string, unknown>();
  private log: Map<string, FactQuestion> | undefined;
  /** Directories whose listing holds in this session, by path: a plain
   *  name not in it, in any case, is absent without an lstat (null: the
   *  listing has a name that is not plain ASCII, so it never speaks). The
   *  launcher's placeholders change the cwd at every run, so each of its
   *  absent protected names (a dozen mandatory denies) would otherwise be
   *  stat'ed again per command. */
  private listed: Map<string, ReadonlySet<string> | null> | undefined;
  readonly cacheKey: object;

  constructor(private readonly cache: FactCache) {
    this.cacheKey = cache;
    if (cache.base.readdirKinds) this.readdirKinds = (p) => this.ask('readdirKinds', p) as Array<{ name: string; kind: StatFact['kind'] }> | undefined;
  }

  lstat(p: string): StatFact | undefined {
    return this.ask('lstat', p) as StatFact | undefined;
  }
  realpath(p: string): string | undefined {
    return this.ask('realpath', p) as string | undefined;
  }
  readdir(p: string): string[] | undefined {
    return this.ask('readdir', p) as string[] | undefined;
  }
  readonly readdirKinds?: (p: string) => Array<{ name: string; kind: StatFact['kind'] }> | undefined;
  readFile(p: string): string | undefined {
    return this.ask('readFile', p) as string | undefined;
  }

  /** From now on, every distinct question and its answer (including ones
   *  already answered in this session) goes into the returned list. */
  record(): Map<string, FactQuestion> {
    this.log = new Map();
    return this.log;
  }

  /** Whether every question still has its recorded answer. */
  unchanged(questions: readonly FactQuestion[]): boolean {
    for (const q of questions) {
      const a = this.ask(q.op, q.path, q.key);
      if (a !== q.answer && !sameAnswer(a, q.answer)) return false;
    }
    return true;
  }

  private statOf(p: string): StatNode | undefined | null {
    let n = this.stats.get(p);
    if (n === undefined && !this.stats.has(p)) this.stats.set(p, (n = this.cache.stat(p)));
    return n;
  }

  /** statOf(child of dir), answered "absent" from dir's listing when there
   *  is one. The listing was read after dir's stamp was taken (or is still
   *  valid under it), as an lstat now would be: the answer is kept under
   *  that same stamp, so a name created since shows at the next check, and
   *  within one compile a listing is no older a picture than the lstats. */
  private childStatOf(dir: string, child: string): StatNode | undefined | null {
    const names = this.listed?.get(dir);
    if (names && !this.stats.has(child)) {
      const name = child.slice(dir === '/' ? 1 : dir.length + 1);
      if (PLAIN_NAME.test(name) && !names.has(name.toLowerCase())) {
        this.stats.set(child, undefined);
        return undefined;
      }
    }
    return this.statOf(child);
  }

  private valid(deps: string[]): boolean {
    for (let i = 0; i < deps.length; i += 2) {
      const s = deps[i + 1]!;
      if (s === '' || this.statOf(deps[i]!)?.stamp !== s) return false;
    }
    return true;
  }

  private ask(op: FactOp, p: string, key = `${op}\0${p}`): unknown {
    let answer: unknown;
    if (this.answers.has(key)) answer = this.answers.get(key);
    else {
      const known = this.cache.known;
      const k = known.get(key);
      if (k && k.deps && this.valid(k.deps)) answer = k.answer;
      else {
        const fresh = this.compute(op, p);
        // The compiler must never change a shared answer (a sort in place
        // would corrupt every later compile): make it throw instead.
        if (typeof fresh.answer === 'object' && fresh.answer !== null) Object.freeze(fresh.answer);
        // An equal answer keeps its identity: a listing scanned before
        // stays scanned, a recorded answer compares by identity.
        if (k && sameAnswer(k.answer, fresh.answer)) fresh.answer = k.answer;
        if (!k && known.size >= FactCache.MAX) known.clear();
        known.set(key, fresh);
        answer = fresh.answer;
      }
      this.answers.set(key, answer);
      // Only a listing kept under the directory's own stamp (none read
      // through a symlink, none that failed) speaks for its absent names.
      if ((op === 'readdirKinds' || op === 'readdir') && Array.isArray(answer) && known.get(key)?.deps) (this.listed ??= new Map()).set(p, namesOf(answer));
    }
    if (this.log && !this.log.has(key)) this.log.set(key, { op, path: p, answer, key });
    return answer;
  }

  private compute(op: FactOp, p: string): Known {
    const base = this.cache.base;
    const direct = (): Known => ({ answer: (base[op] as ((p: string) => unknown) | undefined)?.call(base, p), deps: null });
    if (p.charCodeAt(0) !== 47 || (p.length > 1 && p.endsWith('/')) || UNNORMAL.test(p)) return direct();
    // Top-down: each stamp is taken before anything that depends on it is
    // read, so a change in between shows as a new stamp at the next check.
    let node = this.statOf('/');
    if (!node) return direct();
    let n: StatNode | undefined | null;
    const deps: string[] = [];
    let prefix = '/';
    for (let i = 1; p !== '/'; ) {
      if (node.kind !== 'dir') {
        // Under a symlink: its target's stamps are not known here.
        if (node.kind === 'symlink') return direct();
        // Under a file: ENOTDIR for as long as it stays that file.
        return { answer: undefined, deps: [prefix, node.stamp] };
      }
      deps.push(prefix, node.stamp);
      const j = p.indexOf('/', i);
      const next = j === -1 ? p : p.slice(0, j);
      n = this.childStatOf(prefix, next);
      if (n === null) return direct();
      // Missing (or not searchable): so it stays while the parent's entries
      // and permissions do.
      if (!n) return { answer: undefined, deps: [prefix, node.stamp] };
      prefix = next;
      node = n;
      if (j === -1) break;
      i = j + 1;
    }
    const own = [p, node.stamp];
    let answer: unknown;
    switch (op) {
      case 'lstat':
        return { answer: node.kind === 'file' ? { kind: 'file', size: node.size } : { kind: node.kind }, deps: own };
      case 'realpath':
        if (node.kind === 'symlink') return direct();
        return { answer: p, deps };
      case 'readdir':
      case 'readdirKinds':
        if (node.kind === 'symlink') return direct();
        answer = (base[op] as ((p: string) => unknown) | undefined)?.call(base, p);
        // A directory that could not be listed (EMFILE, EIO, no read
        // permission) is asked again next time, never kept as "no entries".
        return { answer, deps: answer === undefined && node.kind === 'dir' ? null : own };
      case 'readFile':
        answer = base.readFile?.(p);
        return { answer, deps: answer === undefined && node.kind === 'file' ? null : own };
    }
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
