// The filesystem policy compiler: (settings, facts about this machine,
// command) -> Plan. Pure: everything it knows about the disk comes through
// facts.fs, so it is unit-tested with a fake filesystem.
//
// Model: every rule lands on a real (symlink-resolved) path. Whether a path
// is visible and whether it is writable is decided by the nearest rule at or
// above it (for reads, allowRead/allowWrite beat denyRead at the same path;
// for writes, denyWrite beats allowWrite). Mounts are emitted shallow-first,
// one wherever that state changes from the parent's, so a deeper rule always
// lands after (over) a shallower one: "a more specific rule wins".
// Mandatory denies (srt's dangerous files, .git/hooks, ...) come last.
import { posix } from 'node:path';
import type { SandboxRuntimeConfig } from '../config/schema.js';
import { ignoredKeys, settingsCandidates } from '../config/locate.js';
import type { Mount, Plan, NetworkPlan, UnixSocketPolicy } from './plan.js';
import type { Facts, MountFact } from './facts.js';
import { absolutize, depth, expandGlob, isGlob, isUnder, resolveReal } from './paths.js';
import { DEFAULT_SEARCH_DEPTH, HOME_SHELL_FILES, ZDOTDIR_FILES, findNested, gitHooksPath, topLevelProtected } from './mandatory.js';
import {
  ENV_DENY_PATTERNS,
  HOME_CREDENTIAL_STORES,
  HOME_HOST_EXECUTED,
  HOST_PROXY_VARS,
  SYSTEM_READ_ALLOWLIST,
  SYSTEM_SECRETS,
  hostSocketPaths,
} from './defaults.js';
import { LAUNCHER_IN_SANDBOX, HTTP_PROXY_PORT, SOCKS_PROXY_PORT, proxyEnv } from './proxy-env.js';

const HOST_RUN = 'run by the host';

export { LAUNCHER_IN_SANDBOX, HTTP_PROXY_PORT, SOCKS_PROXY_PORT, proxyEnv };
const GLOB_BUDGET = { maxEntries: 20_000, maxMs: 500 };

export interface CompileOptions {
  /** Inbound ports (`cordon -p`). */
  publish?: number[];
  /** Force the network mode (the library uses 'proxy' when it has an ask
   *  callback even without allowedDomains). */
  networkMode?: NetworkPlan['mode'];
  /** Told when the plan depends on the clock (a glob walk stopped on its
   *  time budget), so it must not be reused. */
  onTimeBudget?: () => void;
}

type Kind = 'allowWrite' | 'denyWrite' | 'denyRead' | 'allowRead';

interface State {
  visible: boolean;
  writable: boolean;
  /** What decided visibility: a rule path, or '' for the root default. */
  readFrom: string;
}

const TMP = '/tmp';

export function compile(config: SandboxRuntimeConfig, facts: Facts, command: string[], opts: CompileOptions = {}): Plan {
  const fsx = facts.fs;
  const notes: string[] = ignoredKeys(config);
  const fsCfg = config.filesystem;
  const rules = new Map<string, Set<Kind>>();
  const defaultDenyRead = fsCfg.defaultDenyRead === true;
  const budget = { ...GLOB_BUDGET, now: facts.now };

  const add = (kind: Kind, p: string) => {
    let s = rules.get(p);
    if (!s) rules.set(p, (s = new Set()));
    s.add(kind);
  };

  /** Protected paths (existing or not) to be made unwritable at the end. */
  const protect: Protect[] = [];

  const spelled = (entry: string): string[] => {
    const abs = absolutize(entry, facts.cwd, facts.home);
    if (!isGlob(abs)) return [abs];
    const r = expandGlob(abs, fsx, budget);
    if (r.truncated) notes.push(`glob ${entry}: ${r.truncated}; later matches are not covered`);
    if (r.timed) opts.onTimeBudget?.();
    if (r.matches.length === 0) notes.push(`glob ${entry} matched nothing (files created later are not covered)`);
    return r.matches;
  };

  // Directories the command can write, as spelled by the policy: a symlink in
  // one of them may have been planted by an earlier run (`ln -s ~ out`), so
  // a widening rule that reaches through it must not land outside it (srt
  // skips such write paths too).
  const plantable = fsCfg.allowWrite
    .map((e) => absolutize(e, facts.cwd, facts.home))
    .filter((a) => !isGlob(a))
    .map((a) => fsx.realpath(a))
    .filter((a): a is string => a !== undefined);
  const escapesThroughLink = (p: string, real: string): string | undefined => {
    let cur = '/';
    for (const comp of p.split('/').filter(Boolean)) {
      const next = posix.join(cur, comp);
      const st = fsx.lstat(next);
      if (!st) return undefined;
      if (st.kind === 'symlink') {
        const parent = fsx.realpath(cur) ?? cur;
        const holders = plantable.filter((w) => isUnder(parent, w));
        if (holders.length && !holders.some((w) => isUnder(real, w))) return next;
        const r = fsx.realpath(next);
        if (r === undefined) return undefined;
        cur = r;
      } else cur = next;
    }
    return undefined;
  };

  const addEntries = (kind: Kind, entries: readonly string[], origin: string, quietMissing = false) => {
    for (const entry of entries) {
      for (const p of spelled(entry)) {
        const r = resolveReal(p, fsx);
        if ((kind === 'allowWrite' || kind === 'allowRead') && r.exists && plantable.length) {
          const link = escapesThroughLink(p, r.path);
          if (link) {
            notes.push(`${origin} ${entry}: reaches ${r.path} through the symlink ${link} in a writable directory; skipped`);
            continue;
          }
        }
        if (r.path.startsWith('/dev/') || r.path === '/dev' || r.path === '/proc' || r.path.startsWith('/proc/')) {
          notes.push(`${origin} ${entry}: ${r.path} is provided by the sandbox itself; skipped`);
          continue;
        }
        if ((kind === 'allowWrite' || kind === 'allowRead') && r.path === TMP) {
          notes.push(`${origin} ${entry}: the sandbox always has its own private /tmp; the host's is not shared`);
          continue;
        }
        if (r.path === '/' && kind === 'allowWrite') {
          // `.` run from / (or a link to /) would quietly make the host writable.
          if (entry !== '/') {
            notes.push(`${origin} ${entry}: resolves to /; not made writable (write "/" to mean it)`);
            continue;
          }
          notes.push(`${origin} ${entry}: the whole filesystem writable`);
        }
        if (!r.exists) {
          if (kind === 'denyWrite') protect.push({ path: r.path, why: `${origin} ${entry}` });
          else if (!quietMissing) notes.push(`${origin} ${entry}: ${r.path} does not exist; skipped`);
          continue;
        }
        add(kind, r.path);
      }
    }
  };

  // ---- rules --------------------------------------------------------------
  const disabled = fsCfg.disabled === true;
  if (disabled) notes.push('filesystem.disabled: no filesystem policy (host root writable, host /tmp shared)');
  if (!disabled) {
    addEntries('allowWrite', fsCfg.allowWrite, 'allowWrite');
    addEntries('denyWrite', fsCfg.denyWrite, 'denyWrite');
    addEntries('denyRead', fsCfg.denyRead, 'denyRead');
    addEntries('allowRead', fsCfg.allowRead ?? [], 'allowRead');
    const credFiles = (config.credentials?.files ?? []).filter((f) => f.mode === 'deny').map((f) => String(f.path));
    addEntries('denyRead', credFiles, 'credentials.files');
    // Root inside the sandbox can read every user's files: hide every home's
    // credential stores then, not only the caller's.
    const homes = new Set([facts.home]);
    if (facts.uid === 0) {
      homes.add('/root');
      for (const n of fsx.readdir('/home') ?? []) homes.add(`/home/${n}`);
    }
    const shellDirs: Array<[string, readonly string[]]> = [];
    for (const h of homes) {
      const stores = HOME_CREDENTIAL_STORES.map((p) => posix.join(h, p));
      addEntries('denyRead', stores, 'credential store', true);
      // A missing store in a writable home must not be created either: a
      // planted ~/.ssh/config, ~/.aws/config (credential_process) or
      // ~/.docker/config.json (credHelpers) runs code on the host later.
      // Only where the parent exists: masking a missing ~/.cargo or ~/.local
      // for the sake of ~/.cargo/credentials would break installers.
      for (const st of stores) {
        const r = resolveReal(st, fsx);
        if (!r.exists && fsx.lstat(posix.dirname(r.path))?.kind === 'dir') protect.push({ path: r.path, why: 'credential store' });
      }
      // The same rule for what the host runs from a home (only paths under a
      // writable root turn into mounts).
      for (const rel of HOME_HOST_EXECUTED) {
        const r = resolveReal(posix.join(h, rel), fsx);
        if (r.exists || fsx.lstat(posix.dirname(r.path))?.kind === 'dir') protect.push({ path: r.path, why: HOST_RUN });
      }
      // Shell start-up files that shells read only from a home (srt's nine
      // are protected in every writable root anyway): the name itself, so a
      // dotfile symlink is masked, not followed, as at a writable root.
      shellDirs.push([h, HOME_SHELL_FILES]);
    }
    const zdot = facts.env.ZDOTDIR;
    if (zdot?.startsWith('/')) shellDirs.push([zdot, ZDOTDIR_FILES]);
    for (const [d, names] of shellDirs) {
      const real = fsx.realpath(d);
      if (real === undefined || fsx.lstat(real)?.kind !== 'dir') continue;
      for (const n of names) protect.push({ path: posix.join(real, n), why: 'mandatory' });
    }
    addEntries('denyRead', SYSTEM_SECRETS, 'system secret', true);
    if (!config.network.allowAllUnixSockets)
      addEntries('denyRead', hostSocketPaths(facts.uid, facts.env), 'host sockets', true);
    if (defaultDenyRead) addEntries('allowRead', SYSTEM_READ_ALLOWLIST.filter((p) => fsx.lstat(p)?.kind === 'dir'), 'system', true);
  }

  // F8: a denied path may be reachable under another spelling, a second
  // mount of the same filesystem (a bind of /home at /mnt/home). Deny every
  // such alias too.
  if (!disabled && facts.mounts?.length) {
    for (const a of mountAliases([...rules].filter(([, k]) => k.has('denyRead')).map(([p]) => p), facts.mounts)) {
      if (!rules.has(a.alias) && fsx.lstat(a.alias)) {
        add('denyRead', a.alias);
        notes.push(`denyRead ${a.of}: also hidden at ${a.alias} (another mount of the same filesystem)`);
      }
    }
  }

  const stateAt = (p: string): State => {
    let read: { visible: boolean; from: string } | undefined;
    let writable: boolean | undefined;
    let writeFromTmp = false;
    for (let a = p; ; a = posix.dirname(a)) {
      const s = a === TMP ? undefined : rules.get(a);
      if (s) {
        if (!read) {
          if (s.has('allowRead') || s.has('allowWrite')) read = { visible: true, from: a };
          else if (s.has('denyRead')) read = { visible: false, from: a };
        }
        if (writable === undefined) {
          if (s.has('denyWrite')) writable = false;
          else if (s.has('allowWrite')) writable = true;
        }
      }
      if (a === TMP) {
        // The private tmpfs: the host's content is not there, and it is writable.
        read ??= { visible: false, from: TMP };
        if (writable === undefined) {
          writable = true;
          writeFromTmp = true;
        }
      }
      if ((read && writable !== undefined) || a === '/') break;
    }
    read ??= { visible: !defaultDenyRead, from: '' };
    // The tmpfs is writable, a host path re-bound under it is not (unless a
    // rule of its own says so).
    if (writeFromTmp && read.from !== TMP) writable = false;
    return { visible: read.visible, writable: writable ?? false, readFrom: read.from };
  };

  // The command runs in its cwd: keep it visible (read-only) when only the
  // private /tmp or a deny-by-default root would hide it.
  if (!disabled) {
    const c = stateAt(facts.cwd);
    if (facts.cwd === TMP) notes.push('the working directory is /tmp: the command starts in the private, empty /tmp');
    else if (!c.visible && (c.readFrom === '' || c.readFrom === TMP)) add('allowRead', facts.cwd);
    else if (!c.visible) notes.push(`the working directory ${facts.cwd} is hidden by denyRead ${c.readFrom}`);
  }

  // ---- mounts -------------------------------------------------------------
  const mounts: Mount[] = [];
  if (disabled) mounts.push({ op: 'bind', src: '/', dst: '/' }, { op: 'dev', dst: '/dev' }, { op: 'proc', dst: '/proc' });
  else {
    if (!defaultDenyRead) mounts.push({ op: 'ro-bind', src: '/', dst: '/' });
    mounts.push({ op: 'dev', dst: '/dev' }, { op: 'proc', dst: '/proc' }, { op: 'tmpfs', dst: TMP });
    if (defaultDenyRead) {
      for (const p of SYSTEM_READ_ALLOWLIST) {
        if (depth(p) !== 1) continue;
        const st = fsx.lstat(p);
        const target = st?.kind === 'symlink' ? fsx.realpath(p) : undefined;
        if (target) mounts.push({ op: 'symlink', target: target.replace(/^\//, ''), dst: p });
      }
    }
  }

  const writableRoots: string[] = [];
  if (!disabled) {
    const paths = [...rules.keys()].sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : 1));
    for (const p of paths) {
      if (p === '/') continue;
      const s = stateAt(p);
      const ps = stateAt(posix.dirname(p));
      if (s.visible) {
        if (!ps.visible || s.writable !== ps.writable) mounts.push({ op: s.writable ? 'bind' : 'ro-bind', src: p, dst: p });
        if (s.writable && rules.get(p)!.has('allowWrite')) writableRoots.push(p);
      } else if (ps.visible) {
        mounts.push({ op: 'mask', path: p });
      }
    }
    // The root itself made writable by allowWrite "/".
    if (rules.get('/')?.has('allowWrite') && !rules.get('/')?.has('denyWrite')) {
      mounts[0] = { op: 'bind', src: '/', dst: '/' };
      writableRoots.unshift('/');
    }
  }

  if (facts.launcherPath) mounts.push({ op: 'ro-bind', src: facts.launcherPath, dst: LAUNCHER_IN_SANDBOX });

  // ---- mandatory denies ---------------------------------------------------
  if (!disabled) {
    const maxDepth = config.mandatoryDenySearchDepth ?? DEFAULT_SEARCH_DEPTH;
    const allowGitConfig = fsCfg.allowGitConfig === true;
    for (const root of writableRoots) {
      if (fsx.lstat(root)?.kind !== 'dir') continue;
      const git = fsx.lstat(posix.join(root, '.git'));
      const gitKind = git === undefined ? 'absent' : git.kind === 'dir' ? 'dir' : git.kind === 'file' ? 'file' : 'other';
      for (const rel of topLevelProtected(allowGitConfig, gitKind))
        protect.push({ path: posix.join(root, rel), root, why: 'mandatory' });
      // commondir relocates where git reads config (core.fsmonitor runs a
      // command). Protected when present only: a placeholder of any kind
      // would make every git command in the repository fail meanwhile.
      if (gitKind === 'dir' && fsx.lstat(posix.join(root, '.git', 'commondir'))) protect.push({ path: posix.join(root, '.git', 'commondir'), root, why: 'mandatory' });
      const nested = findNested(root, maxDepth, allowGitConfig, fsx);
      if (nested.truncated) notes.push(`mandatory deny scan of ${root} stopped early (too many directories); deeper ones are not protected`);
      for (const p of nested.found) protect.push({ path: p, root, why: 'mandatory' });
      // A repository whose hooks live in the project (husky: core.hooksPath
      // = .husky): that directory is what the host's git runs, so it is
      // protected like .git/hooks.
      const repos = [...(gitKind === 'dir' ? [root] : []), ...nested.found.filter((p) => p.endsWith('/.git/hooks')).map((p) => posix.dirname(posix.dirname(p)))];
      for (const repo of repos) {
        const text = fsx.readFile?.(posix.join(repo, '.git', 'config'));
        const hp = text === undefined ? undefined : gitHooksPath(text);
        if (!hp) continue;
        const abs = resolveReal(absolutize(hp, repo, facts.home), fsx).path;
        protect.push({ path: abs, why: `core.hooksPath of ${repo}` });
      }
    }
    // The settings files in use, and every place a settings file would be
    // looked for: a command must not plant a weaker policy for the next run.
    const settingsPaths = [...(facts.settingsFiles ?? []), ...settingsCandidates(facts.env, facts.home).map((c) => c.path)];
    for (const f of settingsPaths) protect.push({ path: resolveReal(absolutize(f, facts.cwd, facts.home), fsx).path, why: 'settings file' });
    for (const f of [...(facts.selfPaths ?? []), ...(facts.launcherPath ? [facts.launcherPath] : [])]) {
      const r = resolveReal(f, fsx);
      if (r.exists) protect.push({ path: r.path, why: "cordon's own files" });
    }
    // An allowWrite naming one of the host-run paths (or a path inside it)
    // re-opens it, as naming a credential store does; an ancestor such as ~
    // does not.
    const reopened = (item: Protect) => item.why === HOST_RUN && writableRoots.some((r) => isUnder(r, item.path));
    mounts.push(...protectMounts(protect.filter((item) => !reopened(item)), writableRoots, stateAt, fsx, notes));
  }

  // ---- environment, network, layers ---------------------------------------
  const network = networkPlan(config, opts);
  const env = buildEnv(config, facts, network);
  const unixSockets: UnixSocketPolicy = config.network.allowAllUnixSockets
    ? { mode: 'all' }
    : config.network.allowUnixSockets?.length
      ? { mode: 'only', paths: config.network.allowUnixSockets.map((p) => absolutize(p, facts.cwd, facts.home)) }
      : { mode: 'deny' };
  if (config.enableWeakerNestedSandbox) notes.push('enableWeakerNestedSandbox: not needed by cordon (the launcher falls back by itself); ignored');
  if (config.network.httpProxyPort || config.network.socksProxyPort)
    notes.push('network.httpProxyPort/socksProxyPort: cordon always uses its own proxies; ignored');

  const landlockWritable = disabled ? ['/'] : [...new Set([...writableRoots, TMP, '/dev'])];
  return {
    argv: command,
    cwd: facts.cwd,
    env,
    mounts,
    hostname: 'cordon',
    network,
    seccomp: { enabled: true, unixSockets, allowNestedUserns: config.allowNestedUserNamespaces === true },
    landlock: { mode: disabled ? 'off' : (config.landlock ?? 'best-effort'), writable: landlockWritable },
    timeoutMs: config.timeoutMs ?? 0,
    notes,
  };
}

/** A path to make unwritable at the end (existing or not). */
interface Protect {
  path: string;
  root?: string;
  why: string;
}

function protectMounts(
  protect: Protect[],
  writableRoots: string[],
  stateAt: (p: string) => State,
  fsx: Facts['fs'],
  notes: string[],
): Mount[] {
  const pins = new Set<string>();
  const done: string[] = [];
  const out: Mount[] = [];
  const writableHere = (p: string) => {
    const s = stateAt(p);
    return s.visible && s.writable;
  };
  const underDone = (p: string) => done.some((d) => isUnder(p, d));
  const insideRepo = (dir: string): boolean => {
    for (let a = posix.dirname(dir); ; a = posix.dirname(a)) {
      if (fsx.lstat(posix.join(a, '.git'))) return true;
      if (a === '/') return false;
    }
  };
  const rootOf = (p: string) =>
    writableRoots.filter((r) => isUnder(p, r) && r !== p).sort((a, b) => depth(b) - depth(a))[0];

  const sorted = [...protect].sort((a, b) => depth(a.path) - depth(b.path) || (a.path < b.path ? -1 : 1));
  for (const item of sorted) {
    const root = item.root ?? rootOf(item.path);
    if (!root || underDone(item.path)) continue;
    // Walk down from the root: the first component that is a symlink or is
    // missing is where the protection goes (F4: a planted symlink is masked,
    // never followed; F5: a missing path is blocked at its first missing
    // component, so nothing can be created beneath it).
    const rel = posix.relative(root, item.path).split('/');
    let cur = root;
    let target: { path: string; op: 'ro-bind' | 'mask'; dir?: boolean } | undefined;
    for (let i = 0; i < rel.length; i++) {
      cur = posix.join(cur, rel[i]!);
      const st = fsx.lstat(cur);
      if (!st || st.kind === 'symlink') {
        // A missing .git inside a repository gets an empty *directory* as its
        // placeholder: git skips it and keeps finding the repository above
        // (an empty file named .git is "invalid gitfile format", in here and
        // for the host's git meanwhile). Everything else gets the launcher's
        // file placeholder, which concurrent sandboxes share safely.
        target = { path: cur, op: 'mask', dir: !st && posix.basename(cur) === '.git' && insideRepo(posix.dirname(cur)) };
        if (st) notes.push(`${cur} is a symlink at a protected path; masked, not followed`);
        break;
      }
      if (i < rel.length - 1 && st.kind === 'file' && st.size === 0) {
        // Nothing can exist beneath a file, but an empty one may be a
        // concurrent sandbox's placeholder (it masked the missing path
        // higher up), and its janitor removes it when that run ends: then
        // the protected path could be made here. Masking it adopts it, so it
        // stays (and read-only) for as long as we run.
        target = { path: cur, op: 'mask' };
        break;
      }
      if (i === rel.length - 1) {
        // An empty file or directory may be a placeholder of a concurrent
        // sandbox in the same directory: `mask` (not a bind) lets the
        // launcher adopt it, so its owner's clean-up cannot lift our cover.
        // For a genuinely empty one the two are the same: empty, read-only.
        const empty = (st.kind === 'file' && st.size === 0) || (st.kind === 'dir' && (fsx.readdir(cur)?.length ?? 1) === 0);
        target = { path: cur, op: empty ? 'mask' : 'ro-bind' };
      }
    }
    if (!target || underDone(target.path)) continue;
    if (!writableHere(posix.dirname(target.path)) && !writableHere(target.path)) continue;
    if (target.op === 'ro-bind' && !writableHere(target.path)) continue;
    for (let a = posix.dirname(target.path); a !== root && isUnder(a, root); a = posix.dirname(a)) pins.add(a);
    done.push(target.path);
    // `dir` first makes the placeholder an empty directory (the launcher
    // removes it afterwards like any placeholder); mask then covers it.
    if (target.op === 'mask' && target.dir) out.push({ op: 'dir', dst: target.path });
    out.push(target.op === 'mask' ? { op: 'mask', path: target.path } : { op: 'ro-bind', src: target.path, dst: target.path });
  }
  const pinMounts: Mount[] = [...pins]
    .filter((p) => !underDone(p))
    .sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : 1))
    .map((p) => ({ op: 'pin', path: p }));
  return [...pinMounts, ...out];
}

function networkPlan(config: SandboxRuntimeConfig, opts: CompileOptions): NetworkPlan {
  const allowed = config.network.allowedDomains;
  const mode = opts.networkMode ?? (allowed.length > 0 ? 'proxy' : 'none');
  const relayPorts = mode === 'proxy' ? [HTTP_PROXY_PORT, SOCKS_PROXY_PORT] : [];
  if (mode === 'proxy') {
    // An allowed host loopback port (`localhost:5432`) is reached at the same
    // port inside: relayed to the host proxy, which dials it.
    for (const e of allowed) {
      const m = /^(?:localhost|127\.0\.0\.1|\[::1\]):(\d+)$/.exec(e);
      if (m) {
        const port = Number(m[1]);
        if (!relayPorts.includes(port)) relayPorts.push(port);
      }
    }
  }
  return {
    mode,
    relayPorts,
    httpProxyPort: HTTP_PROXY_PORT,
    socksProxyPort: SOCKS_PROXY_PORT,
    publish: [...new Set(opts.publish ?? [])],
  };
}

function envNameMatches(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

function buildEnv(config: SandboxRuntimeConfig, facts: Facts, network: NetworkPlan): Record<string, string> {
  const allow = config.env?.allow ?? [];
  const deny = [
    ...(config.env?.deny ?? []),
    ...(config.credentials?.envVars ?? []).filter((v) => v.mode === 'deny').map((v) => String(v.name)),
  ];
  const proxyNames = new Set([...HOST_PROXY_VARS, ...HOST_PROXY_VARS.map((v) => v.toLowerCase())]);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(facts.env)) {
    if (v === undefined) continue;
    if (envNameMatches(k, deny)) continue;
    if (proxyNames.has(k)) continue;
    const upper = k.toUpperCase();
    if (!envNameMatches(k, allow) && ENV_DENY_PATTERNS.some((re) => re.test(upper))) continue;
    env[k] = v;
  }
  if (network.mode === 'proxy') Object.assign(env, proxyEnv(network.httpProxyPort, network.socksProxyPort));
  env.TMPDIR = '/tmp';
  env.CORDON_SANDBOX = '1';
  env.SANDBOX_RUNTIME = '1';
  return env;
}

/** Other paths under which the content of each path in `paths` is mounted. */
export function mountAliases(paths: string[], mounts: MountFact[]): Array<{ of: string; alias: string }> {
  const out: Array<{ of: string; alias: string }> = [];
  const skip = (mp: string) => isUnder(mp, '/proc') || isUnder(mp, '/sys') || isUnder(mp, '/dev');
  for (const p of paths) {
    // The mount p is on: the deepest mount point above it (the last one
    // listed wins for stacked mounts).
    let on: MountFact | undefined;
    for (const m of mounts) if (isUnder(p, m.mountPoint) && (!on || depth(m.mountPoint) >= depth(on.mountPoint))) on = m;
    if (!on || on.root.startsWith('/') === false) continue;
    const inFs = posix.join(on.root, posix.relative(on.mountPoint, p));
    for (const m of mounts) {
      if (m === on || m.dev !== on.dev || skip(m.mountPoint)) continue;
      let alias: string | undefined;
      if (isUnder(inFs, m.root)) alias = posix.join(m.mountPoint, posix.relative(m.root, inFs));
      else if (isUnder(m.root, inFs)) alias = m.mountPoint; // part of p mounted elsewhere
      if (alias && alias !== p && !isUnder(alias, p)) out.push({ of: p, alias });
    }
  }
  return out;
}
