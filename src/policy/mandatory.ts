// srt's mandatory write denies: files and directories that a host program
// (a shell, git, an editor, an agent) later executes or trusts, so a command
// must never plant or change them even inside a writable directory. Found by
// a bounded walk of our own (no ripgrep), cached by the mtimes of the walked
// directories so that repeated compiles do not rescan an unchanged tree.
import type { FsFacts } from './facts.js';

export const DANGEROUS_FILES = [
  '.gitconfig',
  '.gitmodules',
  '.bashrc',
  '.bash_profile',
  '.zshrc',
  '.zprofile',
  '.profile',
  '.ripgreprc',
  '.mcp.json',
  // Beyond srt's list: the other files a login or interactive shell runs.
  '.bash_login',
  '.bash_logout',
  '.zshenv',
  '.zlogin',
  '.zlogout',
];
export const DANGEROUS_DIRS = ['.vscode', '.idea', '.claude/commands', '.claude/agents'];

export const DEFAULT_SEARCH_DEPTH = 3;
const MAX_WALK_DIRS = 5000;

/** The protected names relative to a writable root, at its top level
 *  (they are protected whether or not they exist yet). */
export function topLevelProtected(allowGitConfig: boolean, dotGitKind: 'dir' | 'file' | 'absent' | 'other'): string[] {
  const out = [...DANGEROUS_FILES, ...DANGEROUS_DIRS];
  if (dotGitKind === 'file' || dotGitKind === 'other') out.push('.git');
  else {
    out.push('.git/hooks');
    if (!allowGitConfig) out.push('.git/config');
  }
  return out;
}

interface CacheEntry {
  dirs: Map<string, number>;
  found: string[];
  truncated: boolean;
}
const cache = new Map<string, CacheEntry>();

function stillValid(e: CacheEntry, fs: FsFacts): boolean {
  for (const [dir, mtime] of e.dirs) {
    const st = fs.lstat(dir);
    if (!st || st.kind !== 'dir' || st.mtimeMs !== mtime) return false;
  }
  return true;
}

/**
 * Existing protected paths below `root` (not at its top level), down to
 * `maxDepth` directory levels, as absolute paths. node_modules is skipped as
 * srt does; symlinks are not followed.
 */
export function findNested(
  root: string,
  maxDepth: number,
  allowGitConfig: boolean,
  fs: FsFacts,
): { found: string[]; truncated: boolean; cached: boolean } {
  const key = `${root}\0${maxDepth}\0${allowGitConfig}`;
  const hit = cache.get(key);
  if (hit && stillValid(hit, fs)) return { found: hit.found, truncated: hit.truncated, cached: true };

  const dirs = new Map<string, number>();
  const found: string[] = [];
  let truncated = false;
  const rootSt = fs.lstat(root);
  if (rootSt?.kind !== 'dir') return { found, truncated, cached: false };
  dirs.set(root, rootSt.mtimeMs);
  const fileSet = new Set(DANGEROUS_FILES);
  // BFS over subdirectories; level 1 = direct children of root.
  let level: string[] = [root];
  for (let d = 1; d < maxDepth && level.length; d++) {
    const next: string[] = [];
    for (const dir of level) {
      const entries = fs.readdirKinds ? fs.readdirKinds(dir) : fs.readdir(dir)?.map((name) => ({ name, kind: undefined }));
      for (const { name, kind } of entries ?? []) {
        if (name === 'node_modules' || name === '.git') continue;
        if (kind !== undefined && kind !== 'dir') continue;
        const p = `${dir}/${name}`;
        const st = fs.lstat(p);
        if (!st || st.kind !== 'dir') continue;
        if (dirs.size >= MAX_WALK_DIRS) {
          truncated = true;
          break;
        }
        dirs.set(p, st.mtimeMs);
        next.push(p);
      }
    }
    for (const sub of next) {
      const names = fs.readdir(sub) ?? [];
      const lower = new Set(names.map((n) => n.toLowerCase()));
      for (const n of names) if (fileSet.has(n.toLowerCase())) found.push(`${sub}/${n}`);
      if (lower.has('.vscode')) found.push(`${sub}/${names.find((n) => n.toLowerCase() === '.vscode')}`);
      if (lower.has('.idea')) found.push(`${sub}/${names.find((n) => n.toLowerCase() === '.idea')}`);
      if (names.includes('.claude')) {
        const cst = fs.lstat(`${sub}/.claude`);
        if (cst?.kind === 'dir') dirs.set(`${sub}/.claude`, cst.mtimeMs);
        const inner = fs.readdir(`${sub}/.claude`) ?? [];
        for (const n of ['commands', 'agents']) if (inner.includes(n)) found.push(`${sub}/.claude/${n}`);
      }
      if (names.includes('.git')) {
        const gst = fs.lstat(`${sub}/.git`);
        if (gst?.kind === 'dir') {
          dirs.set(`${sub}/.git`, gst.mtimeMs);
          // A repository is protected before it has hooks (srt keys on HEAD).
          found.push(`${sub}/.git/hooks`);
          if (fs.lstat(`${sub}/.git/commondir`)) found.push(`${sub}/.git/commondir`);
          if (!allowGitConfig && fs.lstat(`${sub}/.git/config`)) found.push(`${sub}/.git/config`);
        }
        // A nested .git *file* is git's own to rewrite (submodules), as in srt.
      }
    }
    level = next;
    if (truncated) break;
  }
  const entry = { dirs, found, truncated };
  cache.set(key, entry);
  return { found, truncated, cached: false };
}

/** For tests: forget cached scans. */
export function clearMandatoryCache(): void {
  cache.clear();
}

/** core.hooksPath from a git config file's text (last one wins), or
 *  undefined. Only what git itself reads from that file: includes are not
 *  followed. */
export function gitHooksPath(configText: string): string | undefined {
  let section = '';
  let found: string | undefined;
  for (const raw of configText.split('\n')) {
    const line = raw.trim();
    const sec = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"[^"]*")?\s*\]/.exec(line);
    if (sec) {
      section = sec[1]!.toLowerCase();
      continue;
    }
    if (section !== 'core') continue;
    const kv = /^hookspath\s*=\s*(.*)$/i.exec(line);
    if (!kv) continue;
    let v = kv[1]!;
    if (v.startsWith('"')) {
      const end = v.indexOf('"', 1);
      v = end > 0 ? v.slice(1, end) : v.slice(1);
    } else v = v.replace(/\s*[#;].*$/, '').trim();
    found = v;
  }
  return found || undefined;
}
