// Shared set-up for the filesystem security tests: a writable project dir W
// and a private HOME, both in a temp dir, and `sh` run through the real CLI.
import { mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cordon, tempDir } from '../helpers.mjs';

/** { root, W, home, cleanup, sh(script, flags?, env?) } */
export function project(prefix = 'cordon-fs-') {
  const t = tempDir(prefix);
  const W = join(t.dir, 'w');
  const home = join(t.dir, 'home');
  mkdirSync(W, { recursive: true });
  mkdirSync(home, { recursive: true });
  const baseEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
  const sh = (script, flags = [], env = {}) =>
    cordon([...flags, '--', '/bin/sh', '-c', script], { cwd: W, env: { ...baseEnv, ...env } });
  return { root: t.dir, W, home, cleanup: t.cleanup, sh, env: baseEnv };
}

/** A git-like protected layout in W: .git/config reading "orig", .git/hooks. */
export function makeRepo(W) {
  mkdirSync(join(W, '.git', 'hooks'), { recursive: true });
  writeFileSync(join(W, '.git', 'config'), 'orig\n');
  writeFileSync(join(W, '.git', 'HEAD'), 'ref: refs/heads/main\n');
}

/** Names in W (for no-ghost checks). */
export function names(dir) {
  return readdirSync(dir).sort();
}

/** Fails with the whole output when the sandbox could not be set up, so a
 *  broken launcher is never mistaken for "the attack was stopped". */
export function assertRan(assert, r, marker = 'CORDON-RAN') {
  assert.ok(r.stdout.includes(marker), `sandboxed command did not run to the end (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}
