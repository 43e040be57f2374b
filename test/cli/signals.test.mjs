// Signals sent to cordon reach the command, cordon exits with the command's
// status, and kill -9 of cordon leaves no placeholder files on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, tempDir, WHO } from '../helpers.mjs';

/** Starts cordon running `script`; resolves once the command printed READY. */
function startReady(script, cwd) {
  const child = spawn(process.execPath, [CLI, '--', '/bin/sh', '-c', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const closed = new Promise((res) => child.on('close', (code, signal) => res({ code, signal, out, err })));
  const ready = new Promise((res, rej) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('READY')) res();
    });
    closed.then((r) => rej(new Error(`cordon ended before READY: ${JSON.stringify(r)}`)));
  });
  return { child, ready, closed };
}

for (const [sig, code] of [
  ['SIGTERM', 42],
  ['SIGINT', 43],
  ['SIGHUP', 44],
]) {
  test(`${sig} to cordon is forwarded; cordon exits with the command's status (${WHO})`, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const trapName = sig.slice(3);
      const s = startReady(`trap 'echo GOT-${trapName}; exit ${code}' ${trapName}; echo READY; while :; do sleep 0.05; done`, dir);
      await s.ready;
      s.child.kill(sig);
      const r = await s.closed;
      assert.equal(r.code, code, `stderr: ${r.err}`);
      assert.match(r.out, new RegExp(`GOT-${trapName}`));
    } finally {
      cleanup();
    }
  });
}

test(`SIGTERM to a command that does not trap it: exit 143 (${WHO})`, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const s = startReady('echo READY; exec sleep 30', dir);
    await s.ready;
    s.child.kill('SIGTERM');
    const r = await s.closed;
    assert.equal(r.code, 143, `stderr: ${r.err}`);
  } finally {
    cleanup();
  }
});

test(`kill -9 of cordon mid-run leaves no ghost files on the host (${WHO})`, async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'keep.txt'), 'k');
    const before = readdirSync(dir).sort();
    const s = startReady('echo READY; sleep 30', dir);
    await s.ready;
    s.child.kill('SIGKILL');
    await s.closed;
    // The launcher notices its parent's death and removes its placeholders;
    // wait for that (bounded), then require the directory to be as before.
    const ghosts = ['.bashrc', '.bash_profile', '.zshrc', '.profile', '.mcp.json', '.gitconfig', '.vscode', '.idea', '.claude', '.git'];
    let now = before;
    for (let i = 0; i < 100; i++) {
      now = readdirSync(dir).sort();
      if (!now.some((n) => ghosts.includes(n))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(now, before, 'placeholders left on the host after kill -9');
  } finally {
    cleanup();
  }
});
