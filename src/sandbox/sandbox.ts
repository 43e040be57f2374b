// The modern library API: a Sandbox is created once (policy validated, the
// launcher probed, the proxies started if the policy needs a network) and
// then runs many commands, each costing one compile from cached facts and one
// launcher spawn. The CLI and SandboxManager run commands through here too.
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import { rmSync } from 'node:fs';
import type { SandboxRuntimeConfig, SandboxRuntimeConfigInput } from '../config/schema.js';
import { compile } from '../policy/compile.js';
import { memoFs, realFacts, realFs, type Facts } from '../policy/facts.js';
import { PlanCache } from '../policy/plan-cache.js';
import type { Plan } from '../policy/plan.js';
import { SandboxViolationStore, type SandboxViolationEvent } from '../net/violations.js';
import type { AskCallback, PerCommandLists } from '../net/policy.js';
import { patternError } from '../net/patterns.js';
import { launcherArgs, type LaunchRuntime } from './launcher-args.js';
import { launcherPath, probeLauncher, startLauncher, signalName, type LaunchInfo, type LaunchResult } from './launcher.js';
import { SpawnServer } from './spawn-server.js';
import { AbortError, PolicyError, SandboxClosedError, SandboxSetupError, CordonError } from './errors.js';
import { ensureNetwork, type NetworkSessionLike } from './network.js';

export type SandboxPolicy = SandboxRuntimeConfigInput;
export type { SandboxViolationEvent };

/** Per-command changes to the sandbox's policy. Lists are added to the
 *  sandbox's: `allowWrite` and `allowedDomains` widen, `denyWrite`,
 *  `denyRead` and `deniedDomains` narrow. They hold for this command only,
 *  and the proxies enforce the network lists for this command's connections
 *  only (each command has its own relay token). */
export interface CommandPolicy {
  network?: { allowedDomains?: string[]; deniedDomains?: string[] };
  filesystem?: { allowWrite?: string[]; denyWrite?: string[]; denyRead?: string[]; allowRead?: string[] };
}

export interface SandboxOptions {
  /** Called for every violation (network denial) as it happens. */
  onViolation?: (v: SandboxViolationEvent) => void;
  /** Asked about a host no rule decides; only `true` allows. */
  ask?: AskCallback;
  /** true: proxy decisions and plans on stderr; a function receives the lines instead. */
  debug?: boolean | ((line: string) => void);
  /** Default working directory of commands (default: process.cwd() at create). */
  cwd?: string;
  /** Default environment of commands (default: process.env at create). */
  env?: Record<string, string | undefined>;
  /** Settings files in use: the compiler protects them from writes. */
  settingsFiles?: string[];
  /** Host ports to publish (a server inside reachable at host 127.0.0.1:PORT). */
  publish?: number[];
  /** Route every command through the proxies, even with an empty allow
   *  list, so a later updateNetwork() can open hosts for running commands
   *  and every attempt is recorded as a violation (srt's behaviour whenever
   *  `network.allowedDomains` is given). */
  alwaysProxy?: boolean;
  /** run() asks a small helper process started once per sandbox to fork
   *  its launchers (default true): forking the Node process itself costs
   *  milliseconds per command. false: run() spawns each launcher directly. */
  spawnServer?: boolean;
}

type StdioSlot = 'pipe' | 'inherit' | 'ignore' | number | NodeJS.ReadableStream | NodeJS.WritableStream | null | undefined;

export interface SpawnOptions {
  cwd?: string;
  /** The command's environment before the policy filters it (default: the sandbox's). */
  env?: Record<string, string | undefined>;
  policy?: CommandPolicy;
  /** 'pipe' (default), 'inherit', 'ignore', or three slots. 'ipc' is refused. */
  stdio?: 'pipe' | 'inherit' | 'ignore' | readonly StdioSlot[];
  /** Attribution key for violations (default: a random id). */
  commandId?: string;
  /** The command as violations report it (default: the argv, space-joined). */
  commandText?: string;
  /** Kill the sandbox after this many ms. */
  timeout?: number;
  signal?: AbortSignal;
}

export interface RunOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Written to the command's stdin, which is then closed. */
  input?: string | Uint8Array;
}

export interface CommandResult {
  /** Exit status as a shell reports it: the command's code, or 128+N when
   *  signal N killed it. null only when the sandbox itself was killed
   *  (timeout, abort, close). */
  code: number | null;
  /** The signal that killed the command (or the sandbox), if any. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  violations: SandboxViolationEvent[];
  commandId: string;
  timedOut: boolean;
}

/** A started command: a real ChildProcess (of the launcher, whose exit status
 *  is the command's), plus the command's id and its result. */
export type SandboxChild = ChildProcess & {
  commandId: string;
  /** What the launcher reported on its info descriptor (command pid, status). */
  launchInfo: LaunchInfo;
  /** Violations attributed to this command so far. */
  violations(): SandboxViolationEvent[];
  /** Settles once the command ended and its violations are final.
   *  stdout/stderr are '' here (read the streams). */
  result: Promise<CommandResult>;
};

interface Live {
  kill(): void;
  done: Promise<unknown>;
}

function debugSink(debug: SandboxOptions['debug']): ((line: string) => void) | undefined {
  if (typeof debug === 'function') return debug;
  if (debug) return (line) => process.stderr.write(`cordon: ${line}\n`);
  return undefined;
}

function checkCommandPolicy(p: CommandPolicy | undefined): void {
  if (!p) return;
  for (const [list, kind] of [
    ['allowedDomains', 'allowed'],
    ['deniedDomains', 'denied'],
  ] as const) {
    const entries = p.network?.[list];
    if (entries === undefined) continue;
    if (!Array.isArray(entries)) throw new PolicyError('must be an array of strings', `policy.network.${list}`);
    entries.forEach((e, i) => {
      const err = typeof e === 'string' ? patternError(e, kind) : 'must be a string';
      if (err) throw new PolicyError(err, `policy.network.${list}[${i}]`);
    });
  }
  for (const list of ['allowWrite', 'denyWrite', 'denyRead', 'allowRead'] as const) {
    const entries = p.filesystem?.[list];
    if (entries === undefined) continue;
    if (!Array.isArray(entries) || entries.some((e) => typeof e !== 'string' || e === ''))
      throw new PolicyError('must be an array of non-empty paths', `policy.filesystem.${list}`);
  }
}

/** The sandbox's config with a command's additions. */
function withCommandPolicy(base: SandboxRuntimeConfig, p: CommandPolicy | undefined): SandboxRuntimeConfig {
  if (!p?.filesystem && !p?.network?.allowedDomains?.length) return base;
  const f = p.filesystem ?? {};
  return {
    ...base,
    // Only the compiler sees this merged list (relay ports for allowed host
    // loopback ports); the proxy gets the command's lists through its token.
    network: { ...base.network, allowedDomains: [...base.network.allowedDomains, ...(p.network?.allowedDomains ?? [])] },
    filesystem: {
      ...base.filesystem,
      allowWrite: [...base.filesystem.allowWrite, ...(f.allowWrite ?? [])],
      denyWrite: [...base.filesystem.denyWrite, ...(f.denyWrite ?? [])],
      denyRead: [...base.filesystem.denyRead, ...(f.denyRead ?? [])],
      allowRead: f.allowRead ? [...(base.filesystem.allowRead ?? []), ...f.allowRead] : base.filesystem.allowRead,
    },
  };
}

function normalizeStdio(stdio: SpawnOptions['stdio']): StdioSlot[] {
  if (stdio === undefined) return ['pipe', 'pipe', 'pipe'];
  if (typeof stdio === 'string') {
    if (stdio !== 'pipe' && stdio !== 'inherit' && stdio !== 'ignore') throw new PolicyError(`unsupported stdio "${String(stdio)}"`, 'stdio');
    return [stdio, stdio, stdio];
  }
  if (!Array.isArray(stdio)) throw new PolicyError('must be "pipe", "inherit", "ignore" or an array', 'stdio');
  if (stdio.length > 3) throw new PolicyError('only stdin, stdout and stderr can be passed into the sandbox', 'stdio');
  const out: StdioSlot[] = [];
  for (let i = 0; i < 3; i++) {
    const s = stdio[i];
    if ((s as unknown) === 'ipc' || (s as unknown) === 'overlapped') throw new PolicyError(`"${String(s)}" cannot cross into the sandbox`, `stdio[${i}]`);
    out.push(s ?? 'pipe');
  }
  return out;
}

/** srt's `ignoreViolations`: `'*'` patterns apply to every command, other
 *  keys to commands whose text contains the key; a pattern matches a
 *  substring of the violation line. */
export function ignoredViolation(v: SandboxViolationEvent, ignore: Record<string, string[]> | undefined): boolean {
  if (!ignore) return false;
  const line = v.line ?? '';
  if ((ignore['*'] ?? []).some((p) => line.includes(p))) return true;
  const command = v.command;
  if (command === undefined) return false;
  for (const [key, patterns] of Object.entries(ignore)) {
    if (key !== '*' && command.includes(key) && patterns.some((p) => line.includes(p))) return true;
  }
  return false;
}

/** A violation store that leaves out what the current policy's
 *  `ignoreViolations` says to ignore (srt's behaviour). */
export class FilteringViolationStore extends SandboxViolationStore {
  constructor(private readonly ignore: () => Record<string, string[]> | undefined) {
    super();
  }
  override addViolation(v: SandboxViolationEvent): void {
    if (ignoredViolation(v, this.ignore())) return;
    super.addViolation(v);
  }
}

/** Session directories of sandboxes not closed yet: removed if the host
 *  process exits without close() (sockets must not outlive their server). */
const exitCleanup = new Set<string>();
let exitHook = false;
function watchExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const d of exitCleanup) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        /* best effort at exit */
      }
    }
  });
}

/** A timeout/abort kills the launcher; PR_SET_PDEATHSIG and the pid
 *  namespace take the whole sandbox with it. */
const KILL: NodeJS.Signals = 'SIGKILL';

export class Sandbox {
  config: SandboxRuntimeConfig;
  readonly violations: SandboxViolationStore;
  private readonly opts: SandboxOptions;
  private readonly debug: ((line: string) => void) | undefined;
  private readonly baseFacts: Facts;
  /** Plans of earlier commands, reused while every filesystem answer they
   *  were compiled from still holds (re-checked by stamps at each use). */
  private readonly plans = new PlanCache();
  private readonly launcher: string;
  private network: NetworkSessionLike | undefined;
  private networkStarting: Promise<NetworkSessionLike> | undefined;
  /** Violations of running commands, by id (a caller may reuse an id for
   *  commands that run at the same time: each gets every event of the id). */
  private readonly perCommand = new Map<string, Set<SandboxViolationEvent[]>>();
  private readonly live = new Set<Live>();
  private closed = false;
  private closing: Promise<void> | undefined;
  private server: Promise<SpawnServer | undefined> | undefined;
  /** The spawn server could not start: run() spawns directly from then on. */
  private serverOff = false;

  private constructor(config: SandboxRuntimeConfig, opts: SandboxOptions, store: SandboxViolationStore) {
    this.config = config;
    this.opts = opts;
    this.violations = store;
    this.debug = debugSink(opts.debug);
    this.launcher = launcherPath();
    this.baseFacts = realFacts({
      ...(opts.cwd !== undefined ? { cwd: resolve(opts.cwd) } : {}),
      ...(opts.env !== undefined ? { env: { ...opts.env } } : { env: { ...process.env } }),
      ...(opts.settingsFiles ? { settingsFiles: opts.settingsFiles } : {}),
    });
  }

  /** Validates the policy, probes the launcher and, when the policy has a
   *  network, starts the proxies (once, shared by every command). */
  static async create(policy: SandboxPolicy | SandboxRuntimeConfig = {}, opts: SandboxOptions = {}): Promise<Sandbox> {
    let sb: Sandbox | undefined;
    const { parsePolicy } = await import('./parse-policy.js');
    const config = parsePolicy(policy);
    sb = await Sandbox.createWith(config, opts, new FilteringViolationStore(() => (sb?.config ?? config).ignoreViolations));
    return sb;
  }

  /** For SandboxManager and the CLI: an already-validated config and a given store. */
  static async createWith(
    config: SandboxRuntimeConfig,
    opts: SandboxOptions,
    store: SandboxViolationStore,
    /** The CLI runs exactly one command right away: its compile reports the
     *  same problems and its spawn the same missing launcher, so neither the
     *  probe process nor a throwaway compile is worth their start-up time. */
    oneShot = false,
  ): Promise<Sandbox> {
    if (!oneShot) probeLauncher();
    const sb = new Sandbox(config, opts, store);
    if (oneShot) return sb;
    // Compiling once up front reports policy problems at create, not at the first command.
    const plan = sb.compilePlan(config, sb.baseFacts, ['true']);
    for (const n of plan.notes) sb.debug?.(`note: ${n}`);
    if (plan.network.mode === 'proxy') await sb.ensureNetwork();
    return sb;
  }

  /** Whether commands get the proxies (rather than no network at all). */
  private wantsProxy(config: SandboxRuntimeConfig, p?: CommandPolicy): boolean {
    // Published ports are served by the host session too.
    return this.opts.alwaysProxy === true || (this.opts.publish?.length ?? 0) > 0 || config.network.allowedDomains.length > 0 || this.opts.ask !== undefined || (p?.network?.allowedDomains?.length ?? 0) > 0;
  }

  private compilePlan(config: SandboxRuntimeConfig, facts: Facts, argv: string[], p?: CommandPolicy): Plan {
    const proxy = this.wantsProxy(config, p);
    // The launcher is bound inside only for `cordon-launcher connect` (ssh
    // through the proxy): without a network it would be a mount for nothing.
    const f: Facts = { ...facts, ...(proxy ? { launcherPath: this.launcher } : {}) };
    const opts = {
      ...(proxy ? { networkMode: 'proxy' as const } : {}),
      ...(this.opts.publish?.length ? { publish: this.opts.publish } : {}),
    };
    try {
      if (facts.fs === realFs) return this.plans.compile(config, f, argv, opts);
      return compile(config, { ...f, fs: memoFs(facts.fs) }, argv, opts);
    } catch (e) {
      if (e instanceof CordonError) throw e;
      throw new PolicyError((e as Error).message, undefined, { cause: e });
    }
  }

  private async ensureNetwork(): Promise<NetworkSessionLike> {
    if (this.network) return this.network;
    this.networkStarting ??= ensureNetwork({
      network: this.config.network,
      ask: this.opts.ask,
      debug: this.debug,
      violations: this.violations,
      onViolation: (v) => this.routeViolation(v),
      ...(this.opts.publish?.length ? { publish: this.opts.publish } : {}),
    }).then((s) => {
      this.network = s;
      if (s.dir) {
        watchExit();
        exitCleanup.add(s.dir);
      }
      return s;
    });
    return this.networkStarting;
  }

  private routeViolation(v: SandboxViolationEvent): void {
    if (ignoredViolation(v, this.config.ignoreViolations)) return;
    if (v.commandId !== undefined) for (const list of this.perCommand.get(v.commandId) ?? []) list.push(v);
    try {
      this.opts.onViolation?.(v);
    } catch {
      /* the embedder's callback must not break the proxy */
    }
  }

  /** The Plan a command would run with (what `cordon explain` prints). */
  plan(cmd: string[] | string, opts: Pick<SpawnOptions, 'cwd' | 'env' | 'policy'> = {}): Plan {
    checkCommandPolicy(opts.policy);
    return this.compilePlan(withCommandPolicy(this.config, opts.policy), this.factsFor(opts), toArgv(cmd), opts.policy);
  }

  private factsFor(opts: Pick<SpawnOptions, 'cwd' | 'env'>): Facts {
    if (opts.cwd === undefined && opts.env === undefined) return this.baseFacts;
    return {
      ...this.baseFacts,
      ...(opts.cwd !== undefined ? { cwd: isAbsolute(opts.cwd) ? resolve(opts.cwd) : resolve(this.baseFacts.cwd, opts.cwd) } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    };
  }

  /** Starts a command and returns its process at once. Network start-up (only
   *  the first command of a sandbox that gained a network through a
   *  per-command policy) is the one case that needs awaiting: use spawnAsync. */
  spawn(cmd: string[] | string, opts: SpawnOptions = {}): SandboxChild {
    if (this.closed) throw new SandboxClosedError();
    const { plan, commandId } = this.prepare(cmd, opts);
    if (plan.network.mode === 'proxy' && !this.network) {
      throw new CordonError('ENETSTART', 'the network of this sandbox is not started yet: use await sb.spawnAsync() or sb.run()');
    }
    return this.launch(plan, commandId, opts);
  }

  /** spawn(), after starting the proxies if this command needs them. */
  async spawnAsync(cmd: string[] | string, opts: SpawnOptions = {}): Promise<SandboxChild> {
    if (this.closed) throw new SandboxClosedError();
    const { plan, commandId } = this.prepare(cmd, opts);
    if (plan.network.mode === 'proxy') await this.ensureNetwork();
    if (this.closed) throw new SandboxClosedError();
    return this.launch(plan, commandId, opts);
  }

  private prepare(cmd: string[] | string, opts: SpawnOptions): { plan: Plan; commandId: string } {
    if (opts.signal?.aborted) throw new AbortError(opts.signal.reason);
    checkCommandPolicy(opts.policy);
    const argv = toArgv(cmd);
    const config = withCommandPolicy(this.config, opts.policy);
    const plan = this.compilePlan(config, this.factsFor(opts), argv, opts.policy);
    const commandId = opts.commandId ?? randomUUID();
    return { plan, commandId };
  }

  /** Registers a command (relay token, violation list, timeout, abort),
   *  starts its launcher with `start`, and settles its result. spawn() starts
   *  a real ChildProcess, run() goes through the spawn server. */
  private track<P extends { kill(signal: NodeJS.Signals): unknown }>(
    plan: Plan,
    commandId: string,
    opts: SpawnOptions,
    start: (args: string[]) => { proc: P; info: LaunchInfo; done: Promise<LaunchResult> },
  ): { proc: P; info: LaunchInfo; mine: SandboxViolationEvent[]; result: Promise<CommandResult> } {
    const rt: LaunchRuntime = { infoFd: 3 };
    let token: string | undefined;
    const net = this.network;
    if (plan.network.mode === 'proxy' && net) {
      const lists = commandLists(opts.policy);
      token = net.registerCommand(commandId, lists, { command: opts.commandText ?? displayCommand(plan.argv) });
      rt.relaySocket = net.relaySocket;
      rt.relayToken = token;
      if (plan.network.publish.length) rt.publishSockets = net.publishSockets?.(plan.network.publish);
    }
    this.debug?.(`run ${commandId}: ${JSON.stringify(plan.argv)} in ${plan.cwd} (network ${plan.network.mode})`);
    const mine: SandboxViolationEvent[] = [];
    let lists = this.perCommand.get(commandId);
    if (!lists) this.perCommand.set(commandId, (lists = new Set()));
    lists.add(mine);
    const forget = () => {
      lists!.delete(mine);
      if (lists!.size === 0 && this.perCommand.get(commandId) === lists) this.perCommand.delete(commandId);
    };

    let started: ReturnType<typeof start>;
    try {
      started = start(launcherArgs(plan, rt));
    } catch (e) {
      if (token !== undefined) net?.unregisterCommand(token);
      forget();
      throw e;
    }
    const { proc } = started;
    let timedOut = false;
    let aborted = false;
    const timer =
      opts.timeout && opts.timeout > 0
        ? setTimeout(() => {
            timedOut = true;
            proc.kill(KILL);
          }, opts.timeout)
        : undefined;
    timer?.unref?.();
    const onAbort = () => {
      aborted = true;
      proc.kill(KILL);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const entry: Live = { kill: () => proc.kill(KILL), done: started.done };
    this.live.add(entry);
    const settle = () => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      this.live.delete(entry);
      if (token !== undefined) net?.unregisterCommand(token);
      forget();
    };
    const result = started.done.then(
      ({ code, signal, info }) => {
        settle();
        const r = commandResult(code, signal, info, mine, commandId, timedOut);
        if (aborted) throw Object.assign(new AbortError(opts.signal?.reason), { result: r });
        return r;
      },
      (err: unknown) => {
        settle();
        throw err;
      },
    );
    result.catch(() => {});
    return { proc, info: started.info, mine, result };
  }

  private launch(plan: Plan, commandId: string, opts: SpawnOptions): SandboxChild {
    const stdio = normalizeStdio(opts.stdio);
    const t = this.track(plan, commandId, opts, (args) => {
      const l = startLauncher(args, stdio, this.launcher);
      return { proc: l.child, info: l.info, done: l.done };
    });
    return Object.assign(t.proc, { commandId, launchInfo: t.info, violations: () => [...t.mine], result: t.result });
  }

  /** The spawn server, started at the first run() (undefined when it is
   *  turned off or cannot start: run() then spawns the launcher itself). */
  private async spawnServer(): Promise<SpawnServer | undefined> {
    if (this.opts.spawnServer === false || this.serverOff) return undefined;
    const start = () =>
      SpawnServer.start(this.launcher).then(
        (srv) => {
          watchExit();
          exitCleanup.add(srv.directory);
          return srv;
        },
        (e: Error) => {
          this.debug?.(`${e.message}; commands are spawned directly`);
          this.serverOff = true;
          return undefined;
        },
      );
    const pending = (this.server ??= start());
    let srv = await pending;
    if (srv && !srv.alive) {
      // It died (killed from outside): the next command gets a new one.
      if (this.server === pending) this.server = start();
      srv = await this.server;
    }
    if (this.closed) return undefined;
    return srv;
  }

  /** Runs a command to completion and collects its output. A string is run
   *  with /bin/sh -c. Rejects with SandboxSetupError when the sandbox could
   *  not be built, AbortError when `signal` fired. */
  async run(cmd: string[] | string, opts: RunOptions = {}): Promise<CommandResult> {
    if (this.closed) throw new SandboxClosedError();
    const srv = await this.spawnServer();
    if (!srv) return this.runSpawned(cmd, opts);
    const { plan, commandId } = this.prepare(cmd, opts);
    if (plan.network.mode === 'proxy') await this.ensureNetwork();
    if (this.closed) throw new SandboxClosedError();
    const withInput = opts.input !== undefined;
    const t = this.track(plan, commandId, opts, (args) => {
      const served = srv.launch(args, { stdin: withInput, stdout: true, stderr: true });
      return { proc: served, info: served.info, done: served.done };
    });
    const l = t.proc;
    // The command may exit without reading its input: the stream's EPIPE is
    // swallowed by the spawn server client.
    if (withInput) l.stdin!.end(opts.input!);
    return this.collect(t.result, l.stdout!, l.stderr!, t.info);
  }

  /** run() without the spawn server: the launcher is this process's child. */
  private async runSpawned(cmd: string[] | string, opts: RunOptions): Promise<CommandResult> {
    // Without input the command reads /dev/null: the same EOF, one pipe fewer.
    const child = await this.spawnAsync(cmd, { ...opts, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
    return this.collect(child.result, child.stdout!, child.stderr!, child.launchInfo);
  }

  /** Gathers a command's output and its result, once both streams closed. */
  private async collect(result: Promise<CommandResult>, stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream, info: LaunchInfo): Promise<CommandResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (d: Buffer) => out.push(d));
    stderr.on('data', (d: Buffer) => err.push(d));
    const closed = Promise.all([stdout, stderr].map((s) => new Promise<void>((res) => s.once('close', () => res()))));
    let r: CommandResult;
    try {
      r = await result;
    } catch (e) {
      await closed;
      const partial = (e as { result?: CommandResult }).result;
      if (partial) {
        partial.stdout = Buffer.concat(out).toString('utf8');
        partial.stderr = Buffer.concat(err).toString('utf8');
      }
      throw e;
    }
    await closed;
    r.stdout = Buffer.concat(out).toString('utf8');
    r.stderr = Buffer.concat(err).toString('utf8');
    const setup = setupFailure(r, info);
    if (setup) throw new SandboxSetupError(setup, r.stderr);
    return r;
  }

  /** Narrows or widens the network lists for the next connection of every
   *  command (srt's updateConfig semantics). */
  updateNetwork(network: SandboxRuntimeConfig['network']): void {
    this.setConfig({ ...this.config, network });
  }

  /** Replaces the whole policy: network lists apply to the next connection
   *  (running commands included), filesystem rules to the next command. */
  setConfig(config: SandboxRuntimeConfig): void {
    this.config = config;
    this.network?.updateConfig(config.network);
  }

  /** @internal SandboxManager.wrapWithSandbox: the launcher command line of
   *  a command that the caller spawns itself. Its token stays registered
   *  until `releaseToken`. The environment is passed as differences from
   *  `envBase` (what the caller will spawn the launcher with). */
  async wrapArgv(
    argv: string[],
    o: {
      config: SandboxRuntimeConfig;
      commandId: string;
      cwd?: string;
      envBase?: Record<string, string | undefined>;
      lists?: PerCommandLists;
      signal?: AbortSignal;
      /** Reported as the violations' `command`. */
      commandText?: string;
      /** Start in the directory the caller spawns in (no --chdir). */
      inheritCwd?: boolean;
    },
  ): Promise<{ argv: string[]; token?: string; plan: Plan }> {
    if (this.closed) throw new SandboxClosedError();
    const facts = this.factsFor({ cwd: o.cwd, env: o.envBase });
    const extra: CommandPolicy | undefined = o.lists?.allowedDomains?.length ? { network: { allowedDomains: o.lists.allowedDomains } } : undefined;
    const plan = this.compilePlan(withCommandPolicy(o.config, extra), facts, argv, extra);
    const rt: LaunchRuntime = { envBase: facts.env, ...(o.inheritCwd ? { inheritCwd: true } : {}) };
    let token: string | undefined;
    if (plan.network.mode === 'proxy') {
      const net = await this.ensureNetwork();
      o.signal?.throwIfAborted();
      if (this.closed) throw new SandboxClosedError();
      token = net.registerCommand(o.commandId, o.lists, o.commandText !== undefined ? { command: o.commandText } : undefined);
      rt.relaySocket = net.relaySocket;
      rt.relayToken = token;
      if (plan.network.publish.length) rt.publishSockets = net.publishSockets?.(plan.network.publish);
    }
    return { argv: [this.launcher, ...launcherArgs(plan, rt)], token, plan };
  }

  /** @internal Forgets a wrapped command's token (its connections are refused after). */
  releaseToken(token: string): void {
    this.network?.unregisterCommand(token);
  }

  /** The relay socket etc. (for SandboxManager). */
  networkSession(): NetworkSessionLike | undefined {
    return this.network;
  }

  /** For SandboxManager: start the proxies now (they are needed by a wrap). */
  startNetwork(): Promise<NetworkSessionLike> {
    if (this.closed) return Promise.reject(new SandboxClosedError());
    return this.ensureNetwork();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Kills every running command, stops the proxies and removes their
   *  sockets and temp files. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      const waits: Promise<unknown>[] = [];
      for (const l of this.live) {
        l.kill();
        waits.push(l.done.catch(() => {}));
      }
      await Promise.all(waits);
      const srv = await this.server;
      this.server = undefined;
      if (srv) {
        srv.close();
        exitCleanup.delete(srv.directory);
      }
      if (this.networkStarting) {
        const net = await this.networkStarting.catch(() => undefined);
        await net?.close();
        if (net?.dir) exitCleanup.delete(net.dir);
      }
      this.network = undefined;
    })();
    return this.closing;
  }
}

function displayCommand(argv: string[]): string {
  // sh -c 'script' is reported as the script, as srt reports a wrapped command.
  if (argv.length === 3 && argv[0] === '/bin/sh' && argv[1] === '-c') return argv[2]!;
  return argv.join(' ');
}

export function toArgv(cmd: string[] | string): string[] {
  if (typeof cmd === 'string') {
    if (cmd.trim() === '') throw new PolicyError('the command is empty', 'command');
    return ['/bin/sh', '-c', cmd];
  }
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((a) => typeof a !== 'string'))
    throw new PolicyError('expected a non-empty array of strings or a shell string', 'command');
  if (cmd[0] === '') throw new PolicyError('the program name is empty', 'command[0]');
  if (cmd.some((a) => a.includes('\0'))) throw new PolicyError('arguments cannot contain NUL bytes', 'command');
  return [...cmd];
}

function commandLists(p: CommandPolicy | undefined): PerCommandLists | undefined {
  const n = p?.network;
  if (!n || (!n.allowedDomains?.length && !n.deniedDomains?.length)) return undefined;
  return { allowedDomains: [...(n.allowedDomains ?? [])], deniedDomains: [...(n.deniedDomains ?? [])] };
}

function commandResult(
  code: number | null,
  signal: NodeJS.Signals | null,
  info: LaunchInfo,
  violations: SandboxViolationEvent[],
  commandId: string,
  timedOut: boolean,
): CommandResult {
  let sig: NodeJS.Signals | null = signal;
  if (code !== null && sig === null) {
    // The launcher exits 128+N for signal N; --info-fd says whether that was
    // a signal or a plain exit code that happens to be above 128.
    if (info.signal) sig = info.signal;
    else if (info.exitCode === undefined && code > 128 && code < 128 + 65 && info.childPid !== undefined) sig = signalName(code - 128) ?? null;
  }
  return { code, signal: sig, stdout: '', stderr: '', violations: [...violations], commandId, timedOut };
}

/** The launcher's one-line reason when it failed before the command ran. */
function setupFailure(r: CommandResult, info: LaunchInfo): string | undefined {
  // A command that started and exited 125 is the command's business.
  if (r.code !== 125 || r.timedOut || info.childPid !== undefined) return undefined;
  const line = r.stderr.split('\n').find((l) => l.startsWith('cordon-launcher: '));
  return line ? line : undefined;
}
