// No ghost files: placeholders made for --mask of missing paths (and
// mount points created on host directories) vanish from the host however
// the sandbox ends, including kill -9 of the launcher or of its caller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, existsSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LAUNCHER, BASE_MOUNTS, tempDir, launcher as launcherSync } from '../helpers.mjs';

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

test('concurrent sandboxes sharing a directory: masks hold in each, no ghosts, no setup failures', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    writeFileSync(join(w, 'kept'), 'k');
    const flagsFor = () => ['--bind', w, w, '--mask', `${w}/.git`, '--mask', `${w}/sub/deep/.env`, '--ro-bind', `${w}/kept`, `${w}/kept`];
    const probe = `echo x > ${w}/.git 2>/dev/null && echo LEAK-git; mkdir ${w}/.git 2>/dev/null && echo LEAK-gitdir; echo y > ${w}/sub/deep/.env 2>/dev/null && echo LEAK-env; echo checked`;
    // One long sandbox checks again after many short ones came and went.
    const long = startLong(flagsFor(), probe);
    await long.ready;
    const short = [];
    for (let i = 0; i < 12; i++) {
      short.push(runLauncher(['run', ...BASE_MOUNTS, ...flagsFor(), '--', '/bin/sh', '-c', `sleep 0.0${i % 5}; ${probe}`]));
    }
    const results = await Promise.all(short);
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'checked\n');
    }
    long.child.stdin.end('go\n');
    const lr = await long.done;
    assert.equal(lr.code, 0, lr.stderr);
    assert.equal(lr.stdout, 'ready\nchecked\n');
    assert.deepEqual(readdirSync(w).sort(), ['kept']);
  } finally {
    cleanup();
  }
});

function runLauncher(args) {
  return new Promise((res) => {
    const c = spawn(LAUNCHER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => res({ code, stdout, stderr }));
  });
}

/** A sandbox that prints "ready", waits for a line on stdin, then runs PROBE. */
function startLong(flags, probe) {
  const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, ...flags, '--', '/bin/sh', '-c', `echo ready; read x; ${probe}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  const ready = new Promise((res) => child.stdout.on('data', (d) => { stdout += d; if (stdout.includes('ready')) res(); }));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  return { child, ready, done };
}

test('a placeholder created by one sandbox and reused by another stays masked after the first ends', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const flags = ['--bind', w, w, '--mask', `${w}/.git`, '--mask', `${w}/a/b/.env`];
    const probe = `echo x > ${w}/.git 2>/dev/null && echo LEAK-git; mkdir ${w}/.git 2>/dev/null && echo LEAK-gitdir; echo y > ${w}/a/b/.env 2>/dev/null && echo LEAK-env; echo checked`;
    const first = startLong(flags, probe); // creates the placeholders
    await first.ready;
    const second = startLong(flags, probe); // finds and shares them
    await second.ready;
    first.child.stdin.end('go\n');
    const r1 = await first.done;
    assert.equal(r1.stdout, 'ready\nchecked\n', r1.stderr);
    // The first sandbox's janitor has run: the second must still be masked.
    second.child.stdin.end('go\n');
    const r2 = await second.done;
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stdout, 'ready\nchecked\n');
    assert.deepEqual(readdirSync(w), []);
  } finally {
    cleanup();
  }
});

test('--ro-bind P P of a path that vanished since planning protects it like --mask', () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const r = launcherSync(['run', ...BASE_MOUNTS, '--bind', w, w, '--ro-bind', `${w}/.bashrc`, `${w}/.bashrc`, '--', '/bin/sh', '-c', `echo x > ${w}/.bashrc 2>/dev/null || echo protected`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'protected\n');
    assert.deepEqual(readdirSync(w), []);
  } finally {
    cleanup();
  }
});

// The janitor removes placeholders through a detached copy of their
// directory's mount, which does not show PID 1's masks, so it may start
// while PID 1 is still exiting. A mount with locked submounts (the host's
// mounts below "/" in a user namespace) cannot be copied that way: then the
// janitor must wait until the sandbox's mount namespace is gone, or it would
// see the mask instead of the placeholder and leave the placeholder behind.
test('a placeholder in a directory whose mount has locked submounts is removed too', (t) => {
  if (process.getuid() !== 0) return t.skip('only root can make a writable directory that holds host mount points (/)');
  const name = `/.cordon-ghost-${process.pid}-${Date.now()}`;
  try {
    for (let i = 0; i < 20; i++) {
      const r = launcherSync(['run', '--unshare-user', '--bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--mask', name, '--', '/bin/sh', '-c', `test -e ${name} && ! echo x > ${name}`]);
      assert.equal(r.code, 0, `run ${i}: the placeholder is there and read-only inside: ${r.stderr}`);
      assert.equal(existsSync(name), false, `run ${i}: no ghost ${name} on the host`);
    }
  } finally {
    rmSync(name, { force: true });
  }
});
