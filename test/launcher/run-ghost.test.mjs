// No ghost files: placeholders made for --mask of missing paths (and
// mount points created on host directories) vanish from the host however
// the sandbox ends, including kill -9 of the launcher or of its caller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, existsSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { LAUNCHER, BASE_MOUNTS, tempDir } from '../helpers.mjs';

function flags(w, data) {
  return [
    '--bind', w, w,
    '--mask', `${w}/.git`, '--mask', `${w}/a/b/.git`, '--mask', `${w}/.env`,
    '--ro-bind', data, `${w}/mnt/data`,
  ];
}

/** Waits (bounded) for DIR to list exactly WANT. */
async function settle(dir, want, ms = 10_000) {
  const end = Date.now() + ms;
  let got = readdirSync(dir).sort();
  while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    got = readdirSync(dir).sort();
  }
  return got;
}

async function scenario(kill) {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    const data = join(dir, 'data');
    mkdirSync(w);
    mkdirSync(data);
    writeFileSync(join(w, 'kept'), 'k');
    const script = `test -f ${w}/.git && test -f ${w}/a/b/.git && echo ready; exec sleep 60`;
    const argv = ['run', ...BASE_MOUNTS, ...flags(w, data), '--', '/bin/sh', '-c', script];
    // The caller: a shell that runs the launcher (so it can be killed alone).
    const quoted = [LAUNCHER, ...argv].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const caller = spawn('/bin/sh', ['-c', `${quoted} & echo $! ; wait`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    await new Promise((res, rej) => {
      caller.stdout.on('data', (d) => {
        out += d;
        if (out.includes('ready')) res();
      });
      caller.on('close', () => rej(new Error(`ended early: ${out}`)));
    });
    const launcherPid = Number(out.split('\n')[0]);
    // While it runs, the placeholders exist on the host (that is the point).
    assert.ok(existsSync(join(w, '.git')));
    if (kill === 'caller') caller.kill('SIGKILL');
    else if (kill === 'launcher') process.kill(launcherPid, 'SIGKILL');
    else process.kill(launcherPid, 'SIGTERM');
    assert.deepEqual(await settle(w, ['kept']), ['kept']);
    caller.kill('SIGKILL');
  } finally {
    cleanup();
  }
}

test('no ghost after a normal end (SIGTERM)', () => scenario('term'));
test('no ghost after kill -9 of the launcher', () => scenario('launcher'));
test('no ghost after kill -9 of the launcher\'s caller', () => scenario('caller'));

test('a placeholder replaced by the host during the run is left alone', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--bind', w, w, '--mask', `${w}/.git`, '--', '/bin/sh', '-c', 'echo ready; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((res) => child.stdout.on('data', (d) => String(d).includes('ready') && res()));
    // The host writes into the placeholder: it is no longer empty, so not ours to delete.
    chmodSync(join(w, '.git'), 0o644);
    writeFileSync(join(w, '.git'), 'host data');
    child.kill('SIGTERM');
    await new Promise((res) => child.on('close', res));
    assert.deepEqual(readdirSync(w), ['.git']);
  } finally {
    cleanup();
  }
});
