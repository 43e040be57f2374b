// Compiles the C attack programs into a private temp dir at test time (never
// into the checkout, which is read-only for the unprivileged pass).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, BASE_MOUNTS, launcher } from '../../helpers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Builds attack.c; returns { dir, bin, cleanup }. Throws with gcc's output. */
export function buildAttack() {
  const t = tempDir('cordon-attack-');
  const bin = join(t.dir, 'attack');
  const r = spawnSync('gcc', ['-O1', '-pthread', '-o', bin, join(HERE, 'attack.c')], { encoding: 'utf8' });
  if (r.status !== 0) {
    t.cleanup();
    throw new Error(`gcc failed (${r.error?.message ?? r.status}): ${r.stderr}`);
  }
  return { dir: t.dir, bin, cleanup: t.cleanup };
}

/** "name errno" lines -> Map(name -> errno number). */
export function parseResults(stdout) {
  const m = new Map();
  for (const line of stdout.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) m.set(k, Number(v));
  }
  return m;
}

/** Runs the attack binary in a default sandbox; the binary's dir is bound
 *  read-only at the same path (after the /tmp tmpfs, so it stays visible). */
export function attackInSandbox(a, args, extra = [], opts = {}) {
  return launcher(['run', ...BASE_MOUNTS, '--ro-bind', a.dir, a.dir, ...extra, '--', a.bin, ...args], opts);
}

export const ERRNO = { EPERM: 1, ENOENT: 2, EBADF: 9, EACCES: 13, EFAULT: 14, EINVAL: 22, ENOSYS: 38, ECONNREFUSED: 111 };
