// The facts the compiler reads about the machine, injected so that the
// compiler stays a pure function: unit tests pass a fake filesystem, the CLI
// and the library pass realFacts().
import { lstatSync, readdirSync, realpathSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';

export interface StatFact {
  kind: 'dir' | 'file' | 'symlink' | 'other';
  mtimeMs: number;
}

export interface FsFacts {
  /** lstat (does not follow a final symlink); undefined when absent or unreachable. */
  lstat(path: string): StatFact | undefined;
  /** realpath; undefined when the path does not exist. */
  realpath(path: string): string | undefined;
  /** Entry names of a directory; undefined when it cannot be read. */
  readdir(path: string): string[] | undefined;
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
  fs: FsFacts;
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
      return { kind: kindOf(st), mtimeMs: st.mtimeMs };
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
    now: () => performance.now(),
    ...over,
  };
}
