// SandboxManager: the srt-compatible singleton (same method names, same
// semantics on Linux) on top of one Sandbox. wrapWithSandbox returns a shell
// string that runs cordon-launcher directly (no bwrap, no socat, no helper
// shell script); the differences from srt are listed in docs/srt-differences.md.
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir, EOL } from 'node:os';
import { delimiter, join } from 'node:path';
import type { SandboxRuntimeConfig } from '../config/schema.js';
import { SandboxViolationStore, type SandboxViolationEvent } from '../net/violations.js';
import type { PerCommandLists } from '../net/policy.js';
import { patternError } from '../net/patterns.js';
import { absolutize } from '../policy/paths.js';
import { HTTP_PROXY_PORT, SOCKS_PROXY_PORT } from '../policy/compile.js';
import { Sandbox, FilteringViolationStore } from './sandbox.js';
import { parsePolicy } from './parse-policy.js';
import { launcherPath, probeLauncher } from './launcher.js';
import { spawnSync } from 'node:child_process';
import { quote } from './shell-quote.js';
import { NotInitializedError, PolicyError, UnsupportedError } from './errors.js';

/** srt's ask callback: only `true` allows; `{ allow: false, reason }` denies with a reason. */
export type SandboxAskCallback = (params: { host: string; port: number | undefined }) => Promise<boolean | { allow: false; reason: string }>;

export interface WrapWithSandboxOptions {
  /** Attribution key for violations (default: the command text). */
  commandId?: string;
  /** The command this invocation represents, reported as the violation's `command`. */
  commandText?: string;
}

export interface SandboxDependencyCheck {
  errors: string[];
  warnings: string[];
}

export interface FsReadRestrictionConfig {
  denyOnly: string[];
  allowWithinDeny?: string[];
}
export interface FsWriteRestrictionConfig {
  allowOnly: string[];
  denyWithinAllow: string[];
}
export interface NetworkRestrictionConfig {
  allowedHosts?: string[];
  deniedHosts?: string[];
}

/** Every token a wrap minted stays valid until unregistered, reset(), or
 *  until this many newer wraps exist (a long-lived embedder that never
 *  unregisters must not grow without bound). */
const MAX_LIVE_WRAPS = 4096;
/** srt: an id that a network allow list is registered under carries 128 bits. */
const MIN_LISTS_ID_LENGTH = 22;

let sandbox: Sandbox | undefined;
let config: SandboxRuntimeConfig | undefined;
let initializing: Promise<void> | undefined;
const store: SandboxViolationStore = new FilteringViolationStore(() => config?.ignoreViolations);
/** attribution key -> tokens of its wraps (insertion order = age). */
const wrapTokens = new Map<string, Set<string>>();
const tokenKey = new Map<string, string>();
/** attribution key -> registerCommandNetworkLists / customConfig lists. */
const registeredLists = new Map<string, PerCommandLists>();
const wrapLists = new Map<string, PerCommandLists | undefined>();
const shellCache = new Map<string, string>();

function requireSandbox(method: string): Sandbox {
  if (!sandbox || !config) throw new NotInitializedError(method);
  return sandbox;
}

function whichSync(name: string): string | undefined {
  if (name.includes('/')) {
    try {
      accessSync(name, constants.X_OK);
      return name;
    } catch {
      return undefined;
    }
  }
  const hit = shellCache.get(name);
  if (hit) return hit;
  for (const dir of (process.env.PATH || '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      shellCache.set(name, p);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** srt starts its proxies whenever the config names an allow list (even an
 *  empty one: updateConfig can then open hosts for running commands). */
function srtWantsProxy(raw: unknown, ask: unknown): boolean {
  const net = (raw as { network?: { allowedDomains?: unknown } } | undefined)?.network;
  return ask !== undefined || (net !== undefined && net.allowedDomains !== undefined);
}

let wantsProxy = false;
/** Bumped by reset(), so an initialize() it overtook does not install itself. */
let generation = 0;

async function initialize(runtimeConfig: unknown, sandboxAskCallback?: SandboxAskCallback, _enableLogMonitor = false): Promise<void> {
  // As srt: a second initialize() while one is running or done keeps the
  // first configuration (use updateConfig, or reset() then initialize()).
  if (initializing) return initializing;
  const parsed = parsePolicy(runtimeConfig, 'config');
  wantsProxy = srtWantsProxy(runtimeConfig, sandboxAskCallback);
  const gen = generation;
  const run = (async () => {
    const sb = await Sandbox.createWith(
      parsed,
      {
        alwaysProxy: wantsProxy,
        ...(sandboxAskCallback ? { ask: async ({ host, port }) => sandboxAskCallback({ host, port }) } : {}),
        ...(process.env.SRT_DEBUG || process.env.CORDON_DEBUG ? { debug: true } : {}),
      },
      store,
    );
    if (gen !== generation) {
      await sb.close();
      throw new Error('initialize() was cancelled by reset()');
    }
    sandbox = sb;
    config = parsed;
  })();
  initializing = run;
  try {
    await run;
  } catch (e) {
    if (initializing === run) initializing = undefined;
    throw e;
  }
}

function isSupportedPlatform(): boolean {
  if (process.platform !== 'linux') return false;
  // WSL1 has no namespaces.
  try {
    const v = readFileSync('/proc/version', 'utf8');
    if (/microsoft/i.test(v) && !/WSL2/i.test(v)) return false;
  } catch {
    /* no /proc/version: assume a plain Linux */
  }
  return true;
}

function isSandboxingEnabled(): boolean {
  return config !== undefined;
}

/** Kernel features without which no sandbox can be built (the rest degrade). */
const ESSENTIAL = new Set(['user_namespaces', 'mount_namespaces', 'pid_namespaces', 'net_namespaces', 'seccomp']);
let probeCache: SandboxDependencyCheck | undefined;

function checkDependencies(): SandboxDependencyCheck {
  if (!isSupportedPlatform()) return { errors: ['Unsupported platform'], warnings: [] };
  if (probeCache) return { errors: [...probeCache.errors], warnings: [...probeCache.warnings] };
  const errors: string[] = [];
  const warnings: string[] = [];
  try {
    probeLauncher();
  } catch (e) {
    return { errors: [(e as Error).message], warnings };
  }
  // The launcher's own attempts (what `cordon doctor` shows), once per process.
  const r = spawnSync(launcherPath(), ['probe'], { encoding: 'utf8', timeout: 30_000, env: {} });
  let report: Record<string, unknown> | undefined;
  try {
    report = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    errors.push(`cordon-launcher probe failed: ${(r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n')[0]}`);
  }
  for (const [name, row] of Object.entries(report ?? {})) {
    if (typeof row !== 'object' || row === null || !('ok' in row) || (row as { ok: unknown }).ok) continue;
    const why = (row as { error?: unknown }).error;
    const line = `${name.replace(/_/g, ' ')}: ${typeof why === 'string' && why ? why : 'not available'} (see \`cordon doctor\`)`;
    (ESSENTIAL.has(name) ? errors : warnings).push(line);
  }
  probeCache = { errors, warnings };
  return { errors: [...errors], warnings: [...warnings] };
}

function key(command: string, options?: WrapWithSandboxOptions): string {
  return options?.commandId ? options.commandId : command;
}

/** A wrap's effective per-command lists: customConfig.network plus what
 *  registerCommandNetworkLists put under its key. */
function listsFor(k: string, custom: PerCommandLists | undefined): PerCommandLists | undefined {
  const reg = registeredLists.get(k);
  if (!reg && !custom) return undefined;
  return {
    allowedDomains: [...(custom?.allowedDomains ?? []), ...(reg?.allowedDomains ?? [])],
    deniedDomains: [...(custom?.deniedDomains ?? [])],
  };
}

function customLists(customConfig: Partial<SandboxRuntimeConfig> | undefined): PerCommandLists | undefined {
  const n = customConfig?.network as { allowedDomains?: unknown; deniedDomains?: unknown } | undefined;
  if (!n) return undefined;
  const out: PerCommandLists = {};
  for (const [list, kind] of [
    ['allowedDomains', 'allowed'],
    ['deniedDomains', 'denied'],
  ] as const) {
    const v = n[list];
    if (v === undefined) continue;
    if (!Array.isArray(v)) throw new PolicyError('must be an array of strings', `customConfig.network.${list}`);
    v.forEach((e, i) => {
      const err = typeof e === 'string' ? patternError(e, kind) : 'must be a string';
      if (err) throw new PolicyError(err, `customConfig.network.${list}[${i}]`);
    });
    out[list] = [...(v as string[])];
  }
  return out;
}

/** srt's per-wrap override: a key given in customConfig.filesystem replaces
 *  the session's; so do the top-level switches. */
function mergedConfig(base: SandboxRuntimeConfig, customConfig: Partial<SandboxRuntimeConfig> | undefined): SandboxRuntimeConfig {
  if (!customConfig) return base;
  const raw = {
    ...base,
    ...(customConfig.allowNestedUserNamespaces !== undefined ? { allowNestedUserNamespaces: customConfig.allowNestedUserNamespaces } : {}),
    filesystem: { ...base.filesystem, ...(customConfig.filesystem ?? {}) },
    // The network lists of a wrap are enforced per command by the proxy
    // (customLists), not by changing the session's lists.
    network: base.network,
  };
  return parsePolicy(raw, 'customConfig');
}

function remember(k: string, token: string): void {
  let set = wrapTokens.get(k);
  if (!set) wrapTokens.set(k, (set = new Set()));
  set.add(token);
  tokenKey.set(token, k);
  while (tokenKey.size > MAX_LIVE_WRAPS) {
    const oldest = tokenKey.keys().next().value as string;
    forgetToken(oldest);
  }
}

function forgetToken(token: string): void {
  const k = tokenKey.get(token);
  tokenKey.delete(token);
  wrapLists.delete(token);
  if (k !== undefined) {
    const set = wrapTokens.get(k);
    set?.delete(token);
    if (set && set.size === 0) wrapTokens.delete(k);
  }
  sandbox?.releaseToken(token);
}

async function wrapArgvCommon(
  command: string,
  binShell: string | undefined,
  customConfig: Partial<SandboxRuntimeConfig> | undefined,
  abortSignal: AbortSignal | undefined,
  cwd: string | undefined,
  options: WrapWithSandboxOptions | undefined,
): Promise<string[]> {
  const sb = requireSandbox('wrapWithSandbox');
  abortSignal?.throwIfAborted();
  if (typeof command !== 'string') throw new PolicyError('must be a string', 'command');
  const shellName = binShell || 'bash';
  const shell = whichSync(shellName) ?? (binShell ? undefined : whichSync('sh'));
  if (!shell) throw new UnsupportedError(`Shell '${shellName}' not found in PATH`);
  const k = key(command, options);
  const custom = customLists(customConfig);
  const merged = mergedConfig(config!, customConfig);
  const { argv, token } = await sb.wrapArgv([shell, '-c', command], {
    config: merged,
    commandId: k,
    // Without an explicit cwd the policy is compiled for process.cwd() (as
    // srt does) and the command starts wherever the caller spawns it.
    ...(cwd !== undefined ? { cwd } : { cwd: process.cwd(), inheritCwd: true }),
    envBase: process.env,
    lists: listsFor(k, custom),
    commandText: options?.commandText ?? command,
    ...(abortSignal ? { signal: abortSignal } : {}),
  });
  if (token !== undefined) {
    wrapLists.set(token, custom);
    remember(k, token);
  }
  return argv;
}

async function wrapWithSandbox(
  command: string,
  binShell?: string,
  customConfig?: Partial<SandboxRuntimeConfig>,
  abortSignal?: AbortSignal,
  options?: WrapWithSandboxOptions,
): Promise<string> {
  // `exec`: the shell that runs this string becomes the launcher, so the
  // launcher's parent is whoever spawned the string. Without it, a caller
  // that kills the shell right after spawning it can orphan a launcher that
  // had not yet armed PR_SET_PDEATHSIG against the shell.
  return 'exec ' + quote(await wrapArgvCommon(command, binShell, customConfig, abortSignal, undefined, options));
}

/** Unlike srt (which returns [shell, '-c', wrappedString]), the argv is the
 *  launcher itself: spawn(argv[0], argv.slice(1), { shell: false, env }). */
async function wrapWithSandboxArgv(
  command: string,
  binShell?: string,
  customConfig?: Partial<SandboxRuntimeConfig>,
  abortSignal?: AbortSignal,
  cwd?: string,
  options?: WrapWithSandboxOptions,
): Promise<{ argv: string[]; env: NodeJS.ProcessEnv }> {
  const argv = await wrapArgvCommon(command, binShell, customConfig, abortSignal, cwd, options);
  return { argv, env: process.env };
}

function registerCommandNetworkLists(commandId: string, lists: { allowedDomains?: string[] }): void {
  if (typeof commandId !== 'string' || commandId.replace(/\ufffd/g, '').length < MIN_LISTS_ID_LENGTH) {
    throw new PolicyError(
      `commandId must be a string of at least ${MIN_LISTS_ID_LENGTH} characters (16 random bytes as base64url), never derived from the command, a counter or the time`,
      'registerCommandNetworkLists',
    );
  }
  const allowed = lists?.allowedDomains ?? [];
  if (!Array.isArray(allowed)) throw new PolicyError('must be an array of strings', 'registerCommandNetworkLists.allowedDomains');
  allowed.forEach((e, i) => {
    const err = typeof e === 'string' ? patternError(e, 'allowed') : 'must be a string';
    if (err) throw new PolicyError(`${err} (${JSON.stringify(e)})`, `registerCommandNetworkLists.allowedDomains[${i}]`);
  });
  registeredLists.set(commandId, { allowedDomains: [...allowed] });
  applyLists(commandId);
}

function unregisterCommandNetworkLists(commandId: string): void {
  if (typeof commandId !== 'string') return;
  if (!registeredLists.delete(commandId)) return;
  applyLists(commandId);
}

/** Pushes a key's lists to the tokens of its wraps (next connection). */
function applyLists(k: string): void {
  const net = sandbox?.networkSession();
  const tokens = wrapTokens.get(k);
  if (!net?.setCommandLists || !tokens) return;
  for (const t of tokens) net.setCommandLists(t, listsFor(k, wrapLists.get(t)));
}

function cleanupAfterCommand(): void {
  // Nothing to clean: the launcher removes its own placeholders for missing
  // protected paths when the sandbox ends, however it ends (no ghost files).
}

async function reset(): Promise<void> {
  const sb = sandbox;
  const pending = initializing;
  sandbox = undefined;
  config = undefined;
  initializing = undefined;
  wantsProxy = false;
  wrapTokens.clear();
  tokenKey.clear();
  wrapLists.clear();
  registeredLists.clear();
  generation++;
  // An initialize() still running closes what it made when it sees the new generation.
  if (pending) await pending.catch(() => {});
  await sb?.close();
}

function getConfig(): SandboxRuntimeConfig | undefined {
  return config;
}

function updateConfig(newConfig: unknown): void {
  const parsed = parsePolicy(newConfig, 'config');
  config = parsed;
  sandbox?.setConfig(parsed);
}

function getSandboxViolationStore(): SandboxViolationStore {
  return store;
}

function annotateStderrWithSandboxFailures(command: string, stderr: string): string {
  if (!config) return stderr;
  const violations = store.getViolationsForCommand(command);
  if (violations.length === 0) return stderr;
  let out = stderr + EOL + '<sandbox_violations>' + EOL;
  for (const v of violations) out += v.line + EOL;
  return out + '</sandbox_violations>';
}

function home(): string {
  return process.env.HOME || homedir();
}

function getFsReadConfig(): FsReadRestrictionConfig {
  if (!config || config.filesystem.disabled) return { denyOnly: [], allowWithinDeny: [] };
  const abs = (p: string) => absolutize(p, process.cwd(), home());
  return {
    denyOnly: config.filesystem.denyRead.map(abs),
    allowWithinDeny: (config.filesystem.allowRead ?? []).map(abs),
  };
}

/** Writable in every cordon sandbox regardless of policy. */
const DEFAULT_WRITE_PATHS = ['/dev/stdout', '/dev/stderr', '/dev/null', '/dev/tty', '/tmp'];

function getFsWriteConfig(): FsWriteRestrictionConfig {
  if (!config) return { allowOnly: [...DEFAULT_WRITE_PATHS], denyWithinAllow: [] };
  if (config.filesystem.disabled) return { allowOnly: ['/'], denyWithinAllow: [] };
  const abs = (p: string) => absolutize(p, process.cwd(), home());
  return {
    allowOnly: [...DEFAULT_WRITE_PATHS, ...config.filesystem.allowWrite.map(abs)],
    denyWithinAllow: config.filesystem.denyWrite.map(abs),
  };
}

function getNetworkRestrictionConfig(): NetworkRestrictionConfig {
  if (!config) return {};
  const denied = config.network.deniedDomains;
  return { allowedHosts: [...config.network.allowedDomains], ...(denied.length > 0 ? { deniedHosts: [...denied] } : {}) };
}

/** The port commands reach the HTTP proxy at, inside the sandbox (the host
 *  side listens on a private Unix socket, not on a TCP port). */
function getProxyPort(): number | undefined {
  return sandbox?.networkSession() ? HTTP_PROXY_PORT : undefined;
}

function getSocksProxyPort(): number | undefined {
  return sandbox?.networkSession() ? SOCKS_PROXY_PORT : undefined;
}

async function waitForNetworkInitialization(): Promise<boolean> {
  if (!sandbox || !wantsProxy) return false;
  try {
    await sandbox.startNetwork();
    return true;
  } catch {
    return false;
  }
}

export interface ISandboxManager {
  initialize(runtimeConfig: unknown, sandboxAskCallback?: SandboxAskCallback, enableLogMonitor?: boolean): Promise<void>;
  isSupportedPlatform(): boolean;
  isSandboxingEnabled(): boolean;
  checkDependencies(ripgrepConfig?: unknown): SandboxDependencyCheck;
  checkDependenciesAsync(ripgrepConfig?: unknown): Promise<SandboxDependencyCheck>;
  getFsReadConfig(): FsReadRestrictionConfig;
  getFsWriteConfig(): FsWriteRestrictionConfig;
  getNetworkRestrictionConfig(): NetworkRestrictionConfig;
  getAllowUnixSockets(): string[] | undefined;
  getAllowLocalBinding(): boolean | undefined;
  getIgnoreViolations(): Record<string, string[]> | undefined;
  getEnableWeakerNestedSandbox(): boolean | undefined;
  getProxyPort(): number | undefined;
  getSocksProxyPort(): number | undefined;
  /** Always undefined: cordon's proxies need no client credential (the relay adds the token). */
  getProxyAuthToken(): string | undefined;
  getLinuxHttpSocketPath(): string | undefined;
  getLinuxSocksSocketPath(): string | undefined;
  waitForNetworkInitialization(): Promise<boolean>;
  wrapWithSandbox(command: string, binShell?: string, customConfig?: Partial<SandboxRuntimeConfig>, abortSignal?: AbortSignal, options?: WrapWithSandboxOptions): Promise<string>;
  wrapWithSandboxArgv(
    command: string,
    binShell?: string,
    customConfig?: Partial<SandboxRuntimeConfig>,
    abortSignal?: AbortSignal,
    cwd?: string,
    options?: WrapWithSandboxOptions,
  ): Promise<{ argv: string[]; env: NodeJS.ProcessEnv }>;
  registerCommandNetworkLists(commandId: string, lists: { allowedDomains?: string[] }): void;
  unregisterCommandNetworkLists(commandId: string): void;
  readonly askCallbackDenyReason: true;
  getSandboxViolationStore(): SandboxViolationStore;
  annotateStderrWithSandboxFailures(command: string, stderr: string): string;
  getLinuxGlobPatternWarnings(): string[];
  getConfig(): SandboxRuntimeConfig | undefined;
  updateConfig(newConfig: unknown): void;
  cleanupAfterCommand(): void;
  reset(): Promise<void>;
  /** cordon: the Sandbox behind the manager (undefined before initialize). */
  getSandbox(): Sandbox | undefined;
}

export const SandboxManager: ISandboxManager = {
  initialize,
  isSupportedPlatform,
  isSandboxingEnabled,
  checkDependencies,
  checkDependenciesAsync: async () => checkDependencies(),
  getFsReadConfig,
  getFsWriteConfig,
  getNetworkRestrictionConfig,
  getAllowUnixSockets: () => config?.network.allowUnixSockets,
  getAllowLocalBinding: () => config?.network.allowLocalBinding,
  getIgnoreViolations: () => config?.ignoreViolations,
  getEnableWeakerNestedSandbox: () => config?.enableWeakerNestedSandbox,
  getProxyPort,
  getSocksProxyPort,
  getProxyAuthToken: () => undefined,
  getLinuxHttpSocketPath: () => undefined,
  getLinuxSocksSocketPath: () => undefined,
  waitForNetworkInitialization,
  wrapWithSandbox,
  wrapWithSandboxArgv,
  registerCommandNetworkLists,
  unregisterCommandNetworkLists,
  askCallbackDenyReason: true,
  getSandboxViolationStore,
  annotateStderrWithSandboxFailures,
  getLinuxGlobPatternWarnings: () => [],
  getConfig,
  updateConfig,
  cleanupAfterCommand,
  reset,
  getSandbox: () => sandbox,
};

export type { SandboxViolationEvent };
