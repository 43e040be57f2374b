// cordon-launcher run: the mount plan. Binds (ro, rw, dev, -try), tmpfs,
// dev, proc, dir, symlink, mask, pin; symlinked destinations; flags kept on
// read-only remounts; nothing leaks to the host's mount table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync, mkdirSync, symlinkSync, existsSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { LAUNCHER, BASE_MOUNTS, inSandbox, tempDir } from '../helpers.mjs';

function withDir(fn) {
  const { dir, cleanup } = tempDir();
  try {
    return fn(dir);
  } finally {
    cleanup();
  }
}

/** mount point -> options (per-mount and super block) from mountinfo text. */
function mountOpts(text) {
  const m = new Map();
  for (const line of text.trim().split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    m.set(f[4].replace(/\\040/g, ' '), new Set(f[5].split(',')));
    void sep;
  }
  return m;
}

test('--ro-bind / /: every mount read-only, host flags (nosuid, nodev, noexec) kept', () => {
  const r = inSandbox('cat /proc/self/mountinfo; echo x > /etc/cordon-x 2>&1 || echo EROFS-ok');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /EROFS-ok/);
  assert.ok(!existsSync('/etc/cordon-x'));
  const inside = mountOpts(r.stdout.split('\n').filter((l) => / - /.test(l)).join('\n'));
  const host = mountOpts(readFileSync('/proc/self/mountinfo', 'utf8'));
  let checked = 0;
  for (const [p, opts] of host) {
    if (/^\/(proc|dev|tmp)(\/|$)/.test(p) || !inside.has(p)) continue;
    const io = inside.get(p);
    assert.ok(io.has('ro'), `${p} is not read-only inside: ${[...io]}`);
    for (const f of ['nosuid', 'nodev', 'noexec']) if (opts.has(f)) assert.ok(io.has(f), `${p} lost ${f}`);
    checked++;
  }
  assert.ok(checked >= 1);
});

test('--bind is writable and reaches the host; --ro-bind is not', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'rw'));
    mkdirSync(join(dir, 'ro'));
    const r = inSandbox(`echo w > ${dir}/rw/f && echo x > ${dir}/ro/f 2>/dev/null; echo $?`, ['--bind', `${dir}/rw`, `${dir}/rw`, '--ro-bind', `${dir}/ro`, `${dir}/ro`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '2\n');
    assert.equal(readFileSync(join(dir, 'rw', 'f'), 'utf8'), 'w\n');
    assert.ok(!existsSync(join(dir, 'ro', 'f')));
  }));

test('binds are nodev; --dev-bind keeps devices working', () =>
  withDir((dir) => {
    const r = inSandbox(`echo x > ${dir}/null1 && echo dev-ok; echo x > ${dir}/null2 2>/dev/null || echo nodev-ok`, [
      '--tmpfs', dir, '--dev-bind', '/dev/null', `${dir}/null1`, '--bind', '/dev/null', `${dir}/null2`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'dev-ok\nnodev-ok\n');
  }));

test('a missing source: error 125 without -try, skipped with -try', () => {
  const bad = inSandbox('true', ['--bind', '/nonexistent-cordon', '/mnt/y']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /^cordon-launcher: bind \/nonexistent-cordon \/mnt\/y: No such file or directory\n$/);
  const ok = inSandbox('test -e /mnt/y || echo skipped', ['--ro-bind-try', '/nonexistent-cordon', '/mnt/y', '--bind-try', '/nonexistent-cordon', '/mnt/z', '--dev-bind-try', '/nonexistent-cordon', '/mnt/w']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'skipped\n');
});

test('--tmpfs: empty, writable, private', () =>
  withDir((dir) => {
    writeFileSync(join(dir, 'host-file'), 'h');
    const r = inSandbox(`ls -A ${dir}; echo in > ${dir}/new && cat ${dir}/new`, ['--tmpfs', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'in\n');
    assert.deepEqual(readdirSync(dir), ['host-file']);
  }));

test('--dev: only the minimal nodes, devpts and shm; mknod refused', () => {
  const r = inSandbox('ls /dev | tr "\\n" " "; echo; echo x > /dev/null && head -c1 /dev/zero | od -An -tx1; test -d /dev/pts && test -c /dev/pts/ptmx && echo pts; touch /dev/shm/x && echo shm; mknod /tmp/m c 1 1 2>/dev/null || echo no-mknod');
  assert.equal(r.code, 0, r.stderr);
  const [names] = r.stdout.split('\n');
  assert.deepEqual(names.trim().split(' ').sort(), ['fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero']);
  assert.match(r.stdout, / 00\npts\nshm\nno-mknod\n$/);
});

test('--proc: a fresh proc with read-only covers on /proc/sys and friends', () => {
  const r = inSandbox('grep -c . /proc/self/status >/dev/null && echo readable; echo x > /proc/sys/kernel/hostname 2>/dev/null || echo sys-ro; grep " /proc/sys " /proc/self/mountinfo | grep -c " ro,"');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'readable\nsys-ro\n1\n');
});

test('--dir and --symlink create inside the sandbox only', () =>
  withDir((dir) => {
    const r = inSandbox(`test -d ${dir}/a/b && readlink ${dir}/a/l && cat ${dir}/a/l/x 2>/dev/null; ls ${dir}/a/l/`, [
      '--tmpfs', dir, '--dir', `${dir}/a/b`, '--symlink', 'b', `${dir}/a/l`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'b\n');
    assert.deepEqual(readdirSync(dir), []);
  }));

test('bind destinations under symlinked parents resolve inside the new root (usr-merge)', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'f'), 'payload');
    // r/lib -> /<dir>/r/usr/lib (absolute: must resolve in the sandbox root)
    const r = inSandbox(`cat ${dir}/r/usr/lib/data/f; echo; cat ${dir}/r/lib/data/f`, [
      '--tmpfs', `${dir}/r`, '--dir', `${dir}/r/usr/lib`, '--symlink', `${dir}/r/usr/lib`, `${dir}/r/lib`,
      '--ro-bind', `${dir}/data`, `${dir}/r/lib/data`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'payload\npayload');
  }));

test('a relative symlinked parent on a host dir: bind lands behind it, nothing left afterwards', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'w', 'usr', 'lib'), { recursive: true });
    symlinkSync('usr/lib', join(dir, 'w', 'lib'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'f'), 'p2');
    const r = inSandbox(`cat ${dir}/w/usr/lib/x/f`, ['--bind', `${dir}/w`, `${dir}/w`, '--ro-bind', `${dir}/data`, `${dir}/w/lib/x`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'p2');
    assert.deepEqual(readdirSync(join(dir, 'w', 'usr', 'lib')), []);
  }));

test('--mask hides a directory (empty, read-only) and a file (empty, read-only)', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'key'), 'SECRET-DIR');
    writeFileSync(join(dir, 'token'), 'SECRET-FILE');
    const r = inSandbox(
      `ls -A ${dir}/secrets; cat ${dir}/token; test -f ${dir}/token && echo is-file; echo x > ${dir}/token 2>/dev/null || echo file-ro; touch ${dir}/secrets/n 2>/dev/null || echo dir-ro`,
      ['--bind', dir, dir, '--mask', `${dir}/secrets`, '--mask', `${dir}/token`],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /SECRET/);
    assert.equal(r.stdout, 'is-file\nfile-ro\ndir-ro\n');
    assert.equal(readFileSync(join(dir, 'token'), 'utf8'), 'SECRET-FILE');
  }));

test('--mask of a symlink protects its target and the link; a dangling link never aborts', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'w'));
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real', 'cfg'), 'SECRET-LINKED');
    symlinkSync('../real', join(dir, 'w', '.aws'));
    symlinkSync('decoy', join(dir, 'w', '.codex'));
    const r = inSandbox(
      `cat ${dir}/w/.aws/cfg 2>/dev/null; cat ${dir}/real/cfg 2>/dev/null; echo x > ${dir}/w/.codex 2>/dev/null || echo link-ro; mkdir -p ${dir}/w/.codex/d 2>/dev/null || echo no-dir; echo done`,
      ['--bind', `${dir}/w`, `${dir}/w`, '--ro-bind', `${dir}/real`, `${dir}/real`, '--mask', `${dir}/w/.aws`, '--mask', `${dir}/w/.codex`],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /SECRET/);
    assert.equal(r.stdout, 'link-ro\nno-dir\ndone\n');
    assert.ok(!existsSync(join(dir, 'w', 'decoy')));
    assert.ok(lstatSync(join(dir, 'w', '.codex')).isSymbolicLink());
  }));

test('--mask of a missing path: cannot be created inside, no ghost on the host', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'w'));
    const r = inSandbox(
      `cd ${dir}/w; echo x > .git 2>/dev/null || echo no-file; mkdir .git 2>/dev/null || echo no-dir; mkdir -p sub/deeper/.git/x 2>/dev/null || echo no-deep; echo y > .env 2>/dev/null || echo no-env`,
      ['--bind', `${dir}/w`, `${dir}/w`, '--mask', `${dir}/w/.git`, '--mask', `${dir}/w/sub/deeper/.git`, '--mask', `${dir}/w/.env`],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'no-file\nno-dir\nno-deep\nno-env\n');
    assert.deepEqual(readdirSync(join(dir, 'w')), []);
  }));

test('--mask of a missing path keeps what the command created next to it', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'w'));
    const r = inSandbox(`echo keep > ${dir}/w/sub/file`, ['--bind', `${dir}/w`, `${dir}/w`, '--mask', `${dir}/w/sub/.git`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(dir, 'w', 'sub')), ['file']);
  }));

test('--mask of a missing path on a read-only parent: nothing to do, no error', () =>
  withDir((dir) => {
    const r = inSandbox(`test -e ${dir}/nothing || echo absent`, ['--ro-bind', dir, dir, '--mask', `${dir}/nothing`, '--mask', `${dir}/a/b/c`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'absent\n');
    assert.deepEqual(readdirSync(dir), []);
  }));

test('--pin: the pinned path cannot be renamed or removed (EBUSY), its content stays writable', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'w', '.git'), { recursive: true });
    const r = inSandbox(
      `cd ${dir}/w; mv .git g2 2>&1 | grep -c busy; rmdir .git 2>&1 | grep -c busy; echo x > .git/f && echo writable`,
      ['--bind', `${dir}/w`, `${dir}/w`, '--pin', `${dir}/w/.git`, '--pin', `${dir}/w/missing-is-fine`],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1\n1\nwritable\n');
    assert.ok(existsSync(join(dir, 'w', '.git', 'f')));
  }));

test('sandbox mounts never appear in the host mount table', async () =>
  withDir(async (dir) => {
    const child = spawn(LAUNCHER, ['run', ...BASE_MOUNTS, '--tmpfs', dir, '--', '/bin/sh', '-c', 'echo ready; exec sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((res) => child.stdout.on('data', (d) => String(d).includes('ready') && res()));
    const table = readFileSync('/proc/self/mountinfo', 'utf8');
    child.kill('SIGTERM');
    await new Promise((res) => child.on('close', res));
    assert.ok(!table.includes(dir), 'the sandbox tmpfs leaked into the host mount table');
  }));

test('when a fresh proc cannot be mounted (nested sandbox), the read-only host-bind fallback is used and reported', () => {
  // The outer sandbox's proc has read-only covers, so the kernel refuses a
  // fresh proc to the inner one: the situation of restricted containers.
  const outer = [
    'run', ...BASE_MOUNTS, '--unshare-user', '--uid', '1000', '--gid', '1000', '--no-seccomp', '--allow-userns', '--landlock', 'off',
    '--keep-fd', '3', '--ro-bind', LAUNCHER, '/tmp/cordon-launcher',
    '--', '/tmp/cordon-launcher', 'run', ...BASE_MOUNTS, '--info-fd', '3', '--', '/bin/sh', '-c', 'ls /proc/self/status >/dev/null && echo has-proc; touch /proc/x 2>/dev/null || echo proc-ro',
  ];
  const r = spawnSync(LAUNCHER, outer, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'has-proc\nproc-ro\n');
  const start = JSON.parse(r.output[3].split('\n')[0]);
  assert.equal(start.proc, 'host-bind');
});

test('--mask of a symlink to "/" or to its own directory covers only the link', () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'w'));
    writeFileSync(join(dir, 'w', 'f'), 'visible');
    symlinkSync('/', join(dir, 'w', '.ssh'));
    symlinkSync('.', join(dir, 'w', '.aws'));
    const r = inSandbox(`cat ${dir}/w/f; ls /usr >/dev/null && echo root-ok; ls ${dir}/w/.ssh/ 2>/dev/null | wc -l; ls ${dir}/w/.aws/ 2>/dev/null | wc -l`, [
      '--bind', `${dir}/w`, `${dir}/w`, '--mask', `${dir}/w/.ssh`, '--mask', `${dir}/w/.aws`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'visibleroot-ok\n0\n0\n');
  }));
