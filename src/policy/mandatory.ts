// srt's mandatory write denies: files and directories that a host program
// (a shell, git, an editor, an agent) later executes or trusts, so a command
// must never plant or change them even inside a writable directory. Found by
// a bounded walk of our own (no ripgrep); a walked directory's listing is
// scanned once for as long as the fact cache hands out the same listing.
import type { FsFacts, StatFact } from './facts.js';

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
];
/** Beyond srt's list: the other files a login or interactive shell runs.
 *  Shells read them only from $HOME, so they are protected in a writable
 *  home (every home when cordon runs as root), not in every writable
 *  directory: a project cwd gets five placeholders fewer per command. */
export const HOME_SHELL_FILES = ['.bash_login', '.bash_logout', '.zshenv', '.zlogin', '.zlogout'];
/** What zsh reads from $ZDOTDIR instead of $HOME when it is set. */
export const ZDOTDIR_FILES = ['.zshenv', '.zprofile', '.zshrc', '.zlogin', '.zlogout'];
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

/** What the walk needs of one directory: its subdirectory candidates and
 *  the protected names in it. Kept per listing (the array a FactCache hands
 *  out again for as long as the directory's entries are unchanged), so an
 *  unchanged directory is neither listed nor filtered again: the cost of a
 *  command no longer grows with the number of files in the tree, only with
 *  the number of directories. */
interface DirScan {
  subdirs: Array<{ name: string; kind: StatFact['kind'] | undefined }>;
  hits: string[];
}
/** Weak: a listing replaced in the cache takes its scan with it. */
let scans = new WeakMap<object, DirScan>();
const FILE_SET = new Set(DANGEROUS_FILES);

function scanDir(dir: string, fs: FsFacts): DirScan | undefined {
  const listing: ReadonlyArray<{ name: string; kind?: StatFact['kind'] }> | readonly string[] | undefined = fs.readdirKinds ? fs.readdirKinds(dir) : fs.readdir(dir);
  if (!listing) return undefined;
  const hit = scans.get(listing);
  if (hit) return hit;
  const subdirs: DirScan['subdirs'] = [];
  const hits: string[] = [];
  for (const raw of listing) {
    const e = typeof raw === 'string' ? { name: raw, kind: undefined } : raw;
    const low = e.name.toLowerCase();
    if (FILE_SET.has(low) || low === '.vscode' || low === '.idea' || e.name === '.claude' || e.name === '.git') hits.push(e.name);
    if (e.name === 'node_modules' || e.name === '.git') continue;
    if (e.kind !== undefined && e.kind !== 'dir') continue;
    subdirs.push({ name: e.name, kind: e.kind });
  }
  const scan = { subdirs, hits };
  scans.set(listing, scan);
  return scan;
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
): { found: string[]; truncated: boolean } {
  const found: string[] = [];
  let walked = 0;
  let truncated = false;
  const rootSt = fs.lstat(root);
  if (rootSt?.kind !== 'dir') return { found, truncated };
  // BFS over subdirectories; level 1 = direct children of root.
  let level: string[] = [root];
  for (let d = 1; d < maxDepth && level.length; d++) {
    const next: string[] = [];
    for (const dir of level) {
      for (const { name, kind } of scanDir(dir, fs)?.subdirs ?? []) {
        const p = `${dir}/${name}`;
        // The listing's d_type already says "directory" (no symlink followed).
        if (kind !== 'dir' && fs.lstat(p)?.kind !== 'dir') continue;
        if (++walked >= MAX_WALK_DIRS) {
          truncated = true;
          break;
        }
        next.push(p);
      }
    }
    for (const sub of next) {
      const names = scanDir(sub, fs)?.hits ?? [];
      let vscode = false;
      let idea = false;
      for (const n of names) {
        const low = n.toLowerCase();
        if (FILE_SET.has(low)) found.push(`${sub}/${n}`);
        else if (low === '.vscode' && !vscode) {
          vscode = true;
          found.push(`${sub}/${n}`);
        } else if (low === '.idea' && !idea) {
          idea = true;
          found.push(`${sub}/${n}`);
        }
      }
      if (names.includes('.claude')) {
        const inner = fs.readdir(`${sub}/.claude`) ?? [];
        for (const n of ['commands', 'agents']) if (inner.includes(n)) found.push(`${sub}/.claude/${n}`);
      }
      if (names.includes('.git')) {
        const gst = fs.lstat(`${sub}/.git`);
        if (gst?.kind === 'dir') {
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
  return { found, truncated };
}

/** For tests: forget cached scans. */
export function clearMandatoryCache(): void {
  scans = new WeakMap();
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
