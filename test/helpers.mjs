// Shared helpers for the node:test suites. Tests run twice under `npm test`:
// as the invoking user and (when that is root) as uid 65534 from a
// world-readable copy of the tree, so nothing here may assume root.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const LAUNCHER = process.env.CORDON_LAUNCHER ?? join(ROOT, 'dist', 'cordon-launcher');
export const CLI = join(ROOT, 'dist', 'cli.js');
export const IS_ROOT = process.getuid?.() === 0;
export const WHO = IS_ROOT ? 'root' : `uid ${process.getuid?.()}`;

/** A private temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'cordon-test-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The flags that give a usable sandbox: read-only host root, fresh /dev,
 *  /proc and /tmp. Tests add what they exercise. */
export const BASE_MOUNTS = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'];

/** Runs `cordon-launcher ARGS` synchronously. */
export function launcher(args, opts = {}) {
  const r = spawnSync(LAUNCHER, args, { encoding: 'utf8', timeout: 30_000, ...opts });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Runs a shell snippet in a default launcher sandbox (plus EXTRA flags). */
export function inSandbox(script, extra = [], opts = {}) {
  return launcher(['run', ...BASE_MOUNTS, ...extra, '--', '/bin/sh', '-c', script], opts);
}

/** Runs the cordon CLI synchronously. */
export function cordon(args, opts = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, ...opts });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Spawns asynchronously; resolves with code/signal/stdout/stderr. */
export function run(cmd, args, opts = {}) {
  return new Promise((resolveP, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    let stdout = '', stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolveP({ code, signal, stdout, stderr, pid: child.pid }));
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin?.end();
  });
}

/** Whether process `pid` exists (EPERM: it does, but is not ours). */
export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** Whether a program exists on this machine (for clients like curl, gcc). */
export function have(cmd) {
  return spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Waits (polling) until fn() is truthy or ms pass; returns the last value. */
export async function until(fn, ms = 5000, step = 20) {
  const end = Date.now() + ms;
  let v = fn();
  while (!v && Date.now() < end) {
    await new Promise((r) => setTimeout(r, step));
    v = fn();
  }
  return v;
}

/** This process's `cordon-launcher serve` children (the library's spawn servers). */
export function spawnServers() {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === 'serve';
      } catch {
        return false;
      }
    });
}
