#!/usr/bin/env node
// `cordon`: argument parsing and sub-commands only. Everything that decides
// lives in config/ and policy/; everything that runs lives in sandbox/.
// Imports are dynamic so that `cordon -- cmd` loads only what the run needs.

import { constants } from 'node:os';

const VERSION = '0.1.0';
const osSignals = constants.signals as Record<string, number>;

const USAGE = `usage: cordon [options] -- COMMAND [ARGS...]
       cordon [options] -c 'shell command'
       cordon explain [options] [--json] -- COMMAND [ARGS...]
       cordon doctor [--json]

Runs COMMAND in a sandbox: the working directory and a private /tmp writable,
everything else read-only, credential stores hidden, no network unless allowed.

options (repeatable ones add to the settings file's lists):
  --settings FILE          settings file (default: $XDG_CONFIG_HOME/cordon/settings.json,
                           then ~/.srt-settings.json, then the built-in default)
  --allow-net HOST         allow a domain pattern (example.com, *.example.com, host:port)
  --deny-net HOST          deny a domain pattern
  --allow-write PATH       --deny-write PATH   --allow-read PATH   --deny-read PATH
  --deny-read-by-default   build the root from system dirs + allowed paths only
  -p, --publish PORT       make sandbox port PORT reachable on host 127.0.0.1:PORT
  -c STRING                run STRING with /bin/sh -c
  --debug                  print the plan and proxy decisions on stderr
  --version, --help
Exit status: the command's (128+N if it died of signal N); 2 for usage or
settings errors; 125 when the sandbox could not be set up.`;

class UsageError extends Error {}

interface Parsed {
  sub: 'run' | 'explain' | 'doctor' | 'help' | 'version';
  settings?: string;
  allowNet: string[];
  denyNet: string[];
  allowWrite: string[];
  denyWrite: string[];
  denyRead: string[];
  allowRead: string[];
  denyReadByDefault: boolean;
  publish: number[];
  debug: boolean;
  json: boolean;
  command: string[];
}

const LIST_FLAGS: Record<string, keyof Parsed> = {
  '--allow-net': 'allowNet',
  '--deny-net': 'denyNet',
  '--allow-write': 'allowWrite',
  '--deny-write': 'denyWrite',
  '--deny-read': 'denyRead',
  '--allow-read': 'allowRead',
};

export function parseArgs(argv: string[]): Parsed {
  const p: Parsed = {
    sub: 'run',
    allowNet: [],
    denyNet: [],
    allowWrite: [],
    denyWrite: [],
    denyRead: [],
    allowRead: [],
    denyReadByDefault: false,
    publish: [],
    debug: false,
    json: false,
    command: [],
  };
  let i = 0;
  if (argv[0] === 'explain' || argv[0] === 'doctor') {
    p.sub = argv[0];
    i = 1;
  }
  let shell: string | undefined;
  for (; i < argv.length; i++) {
    let a = argv[i]!;
    let inline: string | undefined;
    if (a.startsWith('--') && a.includes('=')) {
      inline = a.slice(a.indexOf('=') + 1);
      a = a.slice(0, a.indexOf('='));
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--') {
      p.command = argv.slice(i + 1);
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      // The first word that is not an option starts the command; what follows
      // belongs to it.
      p.command = argv.slice(i);
      break;
    }
    if (p.sub === 'doctor' && a !== '--json' && a !== '--help' && a !== '-h') throw new UsageError(`doctor: unknown option ${a}`);
    const list = LIST_FLAGS[a];
    if (list) {
      const v = value();
      if (v === '') throw new UsageError(`${a} needs a non-empty value`);
      (p[list] as string[]).push(v);
      continue;
    }
    switch (a) {
      case '--settings':
      case '-s':
        p.settings = value();
        break;
      case '--deny-read-by-default':
        p.denyReadByDefault = true;
        break;
      case '-p':
      case '--publish': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new UsageError(`${a}: invalid port '${v}' (1-65535)`);
        p.publish.push(n);
        break;
      }
      case '-c':
        shell = value();
        break;
      case '--debug':
      case '-d':
        p.debug = true;
        break;
      case '--json':
        if (p.sub === 'run') throw new UsageError('--json is an option of `cordon explain` and `cordon doctor`');
        p.json = true;
        break;
      case '--version':
      case '-V':
        return { ...p, sub: 'version' };
      case '--help':
      case '-h':
        return { ...p, sub: 'help' };
      default:
        throw new UsageError(`unknown option ${a}`);
    }
    if (shell !== undefined) {
      if (i + 1 < argv.length) throw new UsageError(`-c takes one shell string; unexpected '${argv[i + 1]}' after it`);
      p.command = ['/bin/sh', '-c', shell];
      break;
    }
  }
  if ((p.sub === 'run' || p.sub === 'explain') && p.command.length === 0) throw new UsageError('missing command (cordon [options] -- COMMAND [ARGS...])');
  if (p.command[0] === '') throw new UsageError('empty command name');
  return p;
}

function fail(msg: string, status = 2): never {
  process.stderr.write(`cordon: ${msg}\n`);
  process.exit(status);
}

async function loadConfig(p: Parsed) {
  const [{ settingsCandidates, defaultSettings, mergeOverrides, SettingsError }, { statSync }, os] = await Promise.all([
    import('./config/locate.js'),
    import('node:fs'),
    import('node:os'),
  ]);
  const home = process.env.HOME || os.homedir();
  const present = (f: string) => {
    try {
      statSync(f);
      return true;
    } catch (e) {
      // Anything but "not there" goes the full way, which reports it.
      return (e as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  };
  if (p.settings === undefined && !settingsCandidates(process.env, home).some((c) => present(c.path))) {
    // No file to validate: skip loading the schema (zod costs tens of ms of
    // start-up). Flag values are checked with the same pattern parser.
    const { patternError } = p.allowNet.length || p.denyNet.length ? await import('./net/patterns.js') : { patternError: () => undefined };
    for (const [list, key, kind] of [
      [p.allowNet, 'allowedDomains', 'allowed'],
      [p.denyNet, 'deniedDomains', 'denied'],
    ] as const) {
      list.forEach((e, i) => {
        const err = patternError(e, kind);
        if (err) throw new SettingsError(`command line: network.${key}[${i}]: ${err}`, undefined, `network.${key}[${i}]`);
      });
    }
    return { config: mergeOverrides(defaultSettings(), p), source: { kind: 'default' as const }, settingsFiles: [] as string[], home };
  }
  const { loadSettings, applyOverrides } = await import('./config/load.js');
  const { config: loaded, source } = loadSettings({ settingsPath: p.settings, env: process.env, home });
  const config = applyOverrides(loaded, p);
  const settingsFiles = source.kind === 'default' ? [] : [source.path];
  return { config, source, settingsFiles, home };
}

async function explain(p: Parsed): Promise<number> {
  const [{ config, source, settingsFiles, home }, { compile }, { realFacts, memoFs, realFs }, { launcherPath }, { renderExplain }] = await Promise.all([
    loadConfig(p),
    import('./policy/compile.js'),
    import('./policy/facts.js'),
    import('./sandbox/launcher.js'),
    import('./explain.js'),
  ]);
  const launcher = launcherPath();
  // As the run does: the launcher is bound inside only when there is a proxy
  // (for `cordon-launcher connect`, ssh's ProxyCommand).
  const proxy = config.network.allowedDomains.length > 0;
  const plan = compile(config, realFacts({ home, settingsFiles, fs: memoFs(realFs), ...(proxy ? { launcherPath: launcher } : {}) }), p.command, { publish: p.publish });
  process.stdout.write(p.json ? JSON.stringify(plan, null, 2) + '\n' : renderExplain(plan, source, launcher));
  return 0;
}

async function run(p: Parsed): Promise<number> {
  const [{ config, source, settingsFiles, home }, { compile }, { realFacts, memoFs, realFs }] = await Promise.all([
    loadConfig(p),
    import('./policy/compile.js'),
    import('./policy/facts.js'),
  ]);
  // The compiler's network mode, decided before compiling: the Sandbox
  // compiles for itself, so a plan made here would be thrown away.
  if (config.network.allowedDomains.length > 0 || p.publish.length > 0) return runWithSandbox(p, config, source, settingsFiles);
  const plan = compile(config, realFacts({ home, settingsFiles, fs: memoFs(realFs) }), p.command, { publish: p.publish });
  if (plan.network.mode !== 'none' || plan.network.publish.length) return runWithSandbox(p, config, source, settingsFiles);
  // No host-side network to run: start the launcher directly (the same
  // startLauncher the library uses), which keeps the schema, the proxies and
  // a launcher probe out of the start-up of the common case.
  const [{ launcherArgs }, { startLauncher, launcherPath }] = await Promise.all([import('./sandbox/launcher-args.js'), import('./sandbox/launcher.js')]);
  const launcher = launcherPath();
  if (p.debug) {
    const { renderExplain } = await import('./explain.js');
    process.stderr.write(renderExplain(plan, source, launcher));
  }
  const launched = startLauncher(launcherArgs(plan), ['inherit', 'inherit', 'inherit'], launcher, false);
  forwardSignals(launched.child);
  let r: { code: number | null; signal: NodeJS.Signals | null };
  try {
    r = await launched.done;
  } catch (e) {
    fail(`cannot start cordon-launcher at ${launcher}: ${(e as Error).message} (run \`npm run build\` or set CORDON_LAUNCHER)`, 125);
  }
  return statusOf(r.code, r.signal);
}

/** The launcher's PID 1 passes these on to the command; cordon exits when
 *  the command does, with its status (srt exits 0 on SIGTERM). */
function forwardSignals(child: import('node:child_process').ChildProcess): void {
  const forward = (sig: NodeJS.Signals) => {
    try {
      child.kill(sig);
    } catch {
      /* already gone */
    }
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, forward);
}

async function runWithSandbox(
  p: Parsed,
  config: import('./config/schema.js').SandboxRuntimeConfig,
  source: import('./config/locate.js').SettingsSource,
  settingsFiles: string[],
): Promise<number> {
  const [{ Sandbox }, { SandboxViolationStore }] = await Promise.all([import('./sandbox/sandbox.js'), import('./net/violations.js')]);
  const sb = await Sandbox.createWith(config, { settingsFiles, publish: p.publish, debug: p.debug }, new SandboxViolationStore(), true);
  // Only called with a network: its modules load while the command's plan
  // is compiled (spawnAsync awaits the same start; it reports any failure).
  sb.startNetwork().catch(() => {});
  try {
    if (p.debug) {
      const [{ renderExplain }, { launcherPath }] = await Promise.all([import('./explain.js'), import('./sandbox/launcher.js')]);
      process.stderr.write(renderExplain(sb.plan(p.command), source, launcherPath()));
    }
    const child = await sb.spawnAsync(p.command, { stdio: 'inherit' });
    forwardSignals(child);
    let r: Awaited<typeof child.result>;
    try {
      r = await child.result;
    } catch (e) {
      // No probe ran (createWith oneShot): a launcher that cannot be
      // executed shows up here, as in the no-network path.
      const err = e as NodeJS.ErrnoException;
      if (typeof err.syscall === 'string' && err.syscall.startsWith('spawn')) {
        const { launcherPath } = await import('./sandbox/launcher.js');
        await sb.close();
        fail(`cannot start cordon-launcher at ${launcherPath()}: ${err.message} (run \`npm run build\` or set CORDON_LAUNCHER)`, 125);
      }
      throw e;
    }
    return statusOf(r.code, r.signal);
  } finally {
    await sb.close();
  }
}

function statusOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + (osSignals[signal] ?? 0);
  return 1;
}

async function doctor(p: Parsed): Promise<number> {
  const { runDoctor } = await import('./doctor.js');
  return runDoctor({ json: p.json });
}

export async function main(argv: string[]): Promise<number> {
  let p: Parsed;
  try {
    p = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) fail(`${e.message} (see cordon --help)`);
    throw e;
  }
  if (p.sub === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (p.sub === 'version') {
    process.stdout.write(`cordon ${VERSION}\n`);
    return 0;
  }
  try {
    if (p.sub === 'explain') return await explain(p);
    if (p.sub === 'doctor') return await doctor(p);
    return await run(p);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.name === 'SettingsError' || err.name === 'PolicyError') fail(err.message);
    if (err.name === 'UnsupportedError') fail(err.message, 125);
    if (typeof err.code === 'string' && err.name?.endsWith('Error') && err.constructor?.name !== 'Error' && err.code.startsWith('E') && err.message)
      fail(err.message, 125);
    fail(`internal error: ${err.message ?? String(e)}${process.env.CORDON_DEBUG ? `\n${err.stack}` : ''}`, 125);
  }
}

// `cordon explain | head`: a reader that went away is not an error of ours.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then(
  (status) => {
    // Let stdout drain before exiting with the command's status.
    process.exitCode = status;
    if (process.stdout.writableLength === 0 && process.stderr.writableLength === 0) process.exit(status);
  },
  (e) => fail(`internal error: ${(e as Error).message}`, 125),
);
