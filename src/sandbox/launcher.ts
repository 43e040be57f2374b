// The one code path that starts cordon-launcher. The CLI, Sandbox and
// SandboxManager all come through here, so the launcher's contract (exit
// status = the command's, 125 = setup failure, --info-fd JSON lines) is read
// in one place.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as osConstants } from 'node:os';
import { UnsupportedError } from './errors.js';

/** The descriptor number the launcher reports on (`--info-fd`). It is the
 *  fourth stdio slot of the spawned launcher, so it is always 3. */
export const INFO_FD = 3;

let cachedPath: string | undefined;

/** Where cordon-launcher is: $CORDON_LAUNCHER, else next to the compiled
 *  files (dist/cordon-launcher, for dist/sandbox/*.js and a bundled dist/*.js). */
export function launcherPath(): string {
  const env = process.env.CORDON_LAUNCHER;
  if (env) return env;
  if (cachedPath) return cachedPath;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', 'cordon-launcher'), join(here, 'cordon-launcher')];
  cachedPath = candidates.find((p) => existsSync(p)) ?? candidates[0]!;
  return cachedPath;
}

const probed = new Map<string, string>();

/** Checks once per path that the launcher exists and runs; returns its
 *  version line. Throws UnsupportedError with what to do otherwise. */
export function probeLauncher(path = launcherPath()): string {
  const known = probed.get(path);
  if (known) return known;
  if (process.platform !== 'linux') {
    throw new UnsupportedError(`cordon runs on Linux only (this is ${process.platform})`);
  }
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new UnsupportedError(
      `cordon-launcher not found or not executable at ${path}: run \`npm run build\` or set CORDON_LAUNCHER`,
    );
  }
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000, env: {} });
  const line = (r.stdout ?? '').trim();
  if (r.error || r.status !== 0 || !line.startsWith('cordon-launcher')) {
    const why = r.error ? r.error.message : (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n')[0];
    throw new UnsupportedError(`cordon-launcher at ${path} does not run: ${why}`);
  }
  probed.set(path, line);
  return line;
}

/** What the launcher said on --info-fd. */
export interface LaunchInfo {
  /** Host pid of the command (once it started). */
  childPid?: number;
  /** The command's exit code, when it exited normally. */
  exitCode?: number;
  /** The signal that killed the command, if one did. */
  signal?: NodeJS.Signals;
  /** Every JSON object the launcher wrote, in order (notes such as a /proc fallback). */
  records: Record<string, unknown>[];
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(osConstants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
);

export function signalName(n: number): NodeJS.Signals | undefined {
  return SIGNAL_NAMES.get(n);
}

function readInfoRecord(info: LaunchInfo, rec: Record<string, unknown>): void {
  info.records.push(rec);
  // Accept bubblewrap's spelling (child-pid, exit-code) and camel/snake case.
  const num = (...keys: string[]) => {
    for (const k of keys) if (typeof rec[k] === 'number') return rec[k] as number;
    return undefined;
  };
  const pid = num('child-pid', 'childPid', 'pid', 'child_pid');
  if (pid !== undefined) info.childPid = pid;
  const code = num('exit-code', 'exitCode', 'exit_code', 'code');
  if (code !== undefined) info.exitCode = code;
  const sig = rec['signal'] ?? rec['exit-signal'] ?? rec['exitSignal'] ?? rec['term-signal'];
  if (typeof sig === 'number') info.signal = signalName(sig);
  else if (typeof sig === 'string' && /^SIG[A-Z0-9]+$/.test(sig)) info.signal = sig as NodeJS.Signals;
}

/** How a launcher ended: its exit code, or the signal that killed it. */
export interface LaunchResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  info: LaunchInfo;
}

/** Reads one --info-fd line into `info`; returns the record (undefined for
 *  a blank or non-JSON line: the launcher only writes JSON there, anything
 *  else is ignored, not fatal). */
function readInfoLine(info: LaunchInfo, line: string): Record<string, unknown> | undefined {
  const t = line.trim();
  if (!t) return undefined;
  try {
    const rec = JSON.parse(t) as unknown;
    if (!rec || typeof rec !== 'object') return undefined;
    readInfoRecord(info, rec as Record<string, unknown>);
    return rec as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Reads --info-fd text as it arrives, a line at a time, into `info`;
 *  `onRecord` sees every record. `end()` takes an unterminated last line. */
export function infoReader(info: LaunchInfo, onRecord?: (rec: Record<string, unknown>) => void): { push(chunk: string): void; end(): void } {
  let buf = '';
  const line = (l: string) => {
    const rec = readInfoLine(info, l);
    if (rec) onRecord?.(rec);
  };
  return {
    push(chunk) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    },
    end() {
      line(buf);
      buf = '';
    },
  };
}

export interface LaunchedProcess {
  child: ChildProcess;
  info: LaunchInfo;
  /** Resolves when the launcher has exited and its info pipe is drained. */
  done: Promise<LaunchResult>;
}

/** Spawns `cordon-launcher ARGS` with the caller's stdio for 0-2 and the
 *  info pipe on fd 3. The launcher clears its environment (the Plan's env
 *  comes as --setenv), so it is started with an empty one. */
export function startLauncher(
  args: string[],
  stdio: readonly ('pipe' | 'inherit' | 'ignore' | number | NodeJS.ReadableStream | NodeJS.WritableStream | null | undefined)[] = ['pipe', 'pipe', 'pipe'],
  path = launcherPath(),
  /** false when the args carry no --info-fd: no pipe nobody writes to. */
  withInfo = true,
): LaunchedProcess {
  const slots = (withInfo ? [stdio[0] ?? 'pipe', stdio[1] ?? 'pipe', stdio[2] ?? 'pipe', 'pipe'] : [stdio[0] ?? 'pipe', stdio[1] ?? 'pipe', stdio[2] ?? 'pipe']) as StdioOptions;
  const child = spawn(path, args, { stdio: slots, env: {}, windowsHide: true });
  const info: LaunchInfo = { records: [] };
  const infoStream = child.stdio[INFO_FD] as NodeJS.ReadableStream | null | undefined;
  const reader = infoReader(info);
  const infoDone = new Promise<void>((resolve) => {
    if (!infoStream) return resolve();
    infoStream.setEncoding?.('utf8');
    infoStream.on('data', (d: string) => reader.push(d));
    infoStream.on('end', () => resolve());
    infoStream.on('close', () => resolve());
    infoStream.on('error', () => resolve());
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const done = exited.then(async (r) => {
    // A descriptor leaked to a process that outlives the launcher would keep
    // the pipe open forever; what the launcher wrote is in the pipe already.
    const guard = setTimeout(() => (infoStream as unknown as { destroy?: () => void })?.destroy?.(), 1000);
    await infoDone;
    clearTimeout(guard);
    reader.end();
    return { ...r, info };
  });
  // 'error' is delivered to `done`; keep an unhandled one from crashing the host.
  done.catch(() => {});
  return { child, info, done };
}
