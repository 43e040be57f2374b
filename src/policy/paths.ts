// Path spelling as srt reads it (`~`, `~/x`, relative to the cwd, trailing
// slashes), symlink resolution through the injected facts, and glob
// expansion by a bounded walk.
import { posix } from 'node:path';
import type { FsFacts } from './facts.js';

const GLOB_CHARS = /[*?[]/;

export function isGlob(p: string): boolean {
  return GLOB_CHARS.test(p);
}

/** `~` and `~/x` against home, relative against cwd, `//` and `/./` folded,
 *  trailing `/` removed. `~user` is a relative name, as in srt. */
export function absolutize(p: string, cwd: string, home: string): string {
  let out = p;
  if (out === '~') out = home;
  else if (out.startsWith('~/')) out = home + out.slice(1);
  if (!out.startsWith('/')) out = posix.join(cwd, out);
  out = out.replace(/\/{2,}/g, '/').replace(/\/\.(?=\/|$)/g, '');
  if (!isGlob(out)) out = posix.normalize(out);
  if (out.length > 1) out = out.replace(/\/+$/, '');
  return out || '/';
}

/** The real location of `p`: realpath when it exists; otherwise the realpath
 *  of its deepest existing ancestor with the missing rest appended, so a rule
 *  about a not-yet-existing path still lands where the kernel would put it. */
export function resolveReal(p: string, fs: FsFacts): { path: string; exists: boolean } {
  const direct = fs.realpath(p);
  if (direct !== undefined) return { path: direct, exists: true };
  const rest: string[] = [];
  let cur = p;
  while (cur !== '/') {
    rest.unshift(posix.basename(cur));
    cur = posix.dirname(cur);
    const r = fs.realpath(cur);
    if (r !== undefined) {
      // A dangling symlink in the missing part would be followed by the
      // kernel too; we keep the spelling, which is the conservative place.
      return { path: posix.join(r, ...rest), exists: false };
    }
  }
  return { path: p, exists: false };
}

export function isUnder(p: string, dir: string): boolean {
  return dir === '/' ? p.startsWith('/') : p === dir || p.startsWith(dir + '/');
}

export function depth(p: string): number {
  // Called from sort comparators on every compile: count without allocating.
  if (p === '/') return 0;
  let n = 0;
  for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) n++;
  return n;
}

/** Glob -> RegExp for one whole path. `**` spans directories, `*` and `?`
 *  stay within one component, `[...]` is a character class. */
export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more directories; a trailing `**` anything.
        if (glob[i + 2] === '/') {
          re += '(?:[^/]*/)*';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) re += '\\[';
      else {
        let cls = glob.slice(i + 1, end);
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        re += '[' + cls.replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

export interface GlobBudget {
  maxEntries: number;
  maxMs: number;
  now?: () => number;
}

export interface GlobResult {
  matches: string[];
  /** Why the walk stopped early, when it did. */
  truncated?: string;
  /** It stopped on the time budget: another walk may get further. */
  timed?: boolean;
}

/**
 * Expands an absolute glob by walking from its static prefix. Symlinks are
 * not followed (a link loop or a link to / cannot make it hang), and the walk
 * stops at the entry or time budget, saying so; a large home directory costs
 * at most the budget (fence #27, #86).
 */
export function expandGlob(glob: string, fs: FsFacts, budget: GlobBudget): GlobResult {
  const firstGlob = glob.search(GLOB_CHARS);
  const base = posix.dirname(glob.slice(0, firstGlob + 1)) || '/';
  const re = globToRegExp(glob);
  const recursive = glob.includes('**');
  const maxDepth = recursive ? Infinity : depth(glob) - depth(base);
  const matches: string[] = [];
  const start = budget.now?.() ?? 0;
  let seen = 0;
  const stack: Array<[string, number]> = [[base, 0]];
  while (stack.length) {
    const [dir, d] = stack.pop()!;
    const names = fs.readdir(dir);
    if (!names) continue;
    // A copy: the listing may be a cached answer shared with later compiles.
    for (const name of [...names].sort()) {
      if (++seen > budget.maxEntries)
        return { matches, truncated: `stopped after ${budget.maxEntries} entries under ${base}` };
      const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
      if (re.test(p)) matches.push(p);
      if (d + 1 < maxDepth) {
        const st = fs.lstat(p);
        if (st?.kind === 'dir') stack.push([p, d + 1]);
      }
    }
    if (budget.now && budget.now() - start > budget.maxMs)
      return { matches, truncated: `stopped after ${budget.maxMs} ms under ${base}`, timed: true };
  }
  return { matches };
}
