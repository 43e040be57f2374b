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
      const st = lstatSync(p);
      return { kind: kindOf(st), mtimeMs: st.mtimeMs, size: st.size };
    } catch {
      return undefined;
    }
  },
  realpath(p) {
    try {
      return realpathSync(p);
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
      const st = lstatSync(p);
      if (!st.isFile() || st.size > 1 << 20) return undefined;
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
