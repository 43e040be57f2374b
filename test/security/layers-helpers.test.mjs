// The launcher's own helpers (relay, janitor, unix-socket supervisor) run
// outside the sandbox but are reachable data paths, so each must be under
// its own seccomp filter with no_new_privs (catalog P2, P3, S5); the
// sandbox cannot see them at all (they are outside its pid namespace).
// Observed from the host while a sandbox is running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { LAUNCHER, BASE_MOUNTS, tempDir, WHO } from '../helpers.mjs';

function status(pid) {
  try {
    return Object.fromEntries(readFileSync(`/proc/${pid}/status`, 'utf8').trim().split('\n').map((l) => l.split(/:\s*/)));
  } catch {
    return null;
  }
}

/** Every descendant pid of ROOT (via /proc/<pid>/task/<tid>/children). */
function descendants(root) {
  const out = [];
  const walk = (p) => {
    let kids = [];
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) kids.push(...readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {}
    for (const k of kids) { out.push(k); walk(k); }
  };
  walk(root);
  return out;
}

test('relay and unix-socket supervisor run under their own seccomp filter with NoNewPrivs', async () => {
  const t = tempDir();
  const sockPath = join(t.dir, 'proxy.sock');
  const server = createServer((c) => c.destroy());
  await new Promise((r) => server.listen(sockPath, r));
  const allowed = join(t.dir, 'allowed.sock');
  const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--relay-socket', sockPath, '--relay', '3128', '--allow-unix-socket', allowed,
    '--', '/bin/sh', '-c', 'echo ready; read x'], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => /ready/.test(String(d)) && resolve());
      child.on('exit', (c) => reject(new Error(`launcher exited ${c}`)));
    });
    const helpers = descendants(child.pid)
      .map((pid) => ({ pid, st: status(pid) }))
      // helpers are not in the sandbox's pid namespace: one NSpid entry
      .filter(({ st }) => st && String(st.NSpid).split(/\s+/).length === 1);
    assert.ok(helpers.length >= 2, `expected relay and supervisor, found ${helpers.map((h) => h.pid)}`);
    for (const { pid } of helpers) {
      // A helper may still be between fork and its filter while the command
      // already runs (it serves nothing before the filter is on), so wait
      // for the state instead of sampling one instant.
      let st = status(pid);
      for (let i = 0; i < 100 && st && st.Seccomp !== '2'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        st = status(pid);
      }
      if (!st) continue; // ended meanwhile
      assert.equal(st.Seccomp, '2', `helper ${pid} unfiltered (${WHO}, launcher ${child.pid}): ${st.Name} ppid ${st.PPid}`);
      assert.equal(st.NoNewPrivs, '1', `helper ${pid}`);
    }
  } finally {
    child.stdin.end('\n');
    await new Promise((r) => child.on('close', r));
    server.close();
    t.cleanup();
  }
});
