// Catalog group F (filesystem and mounts), through the cordon CLI with the
// default policy: the attack runs inside, the host is checked afterwards.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdirSync, symlinkSync, writeFileSync, rmSync, readdirSync, statSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { have } from '../../helpers.mjs';
import { ERRNO } from '../attacks/build.mjs';
import { entry, project, ran, attacks, pyScript, cordonAsync } from './harness.mjs';
import { makeRepo } from '../fs-util.mjs';

const { EPERM, EACCES } = ERRNO;
const EROFS = 30;
const canary = () => `CANARY-${randomBytes(8).toString('hex')}`;

const names = (dir) => readdirSync(dir).sort();

entry('F1', 'Write outside writable roots', () => {
  const p = project();
  const tag = `cordon-f1-${randomBytes(4).toString('hex')}`;
  const targets = [`/etc/${tag}`, join(p.home, tag), `/usr/${tag}`];
  // Inside, this lands in the private /tmp (allowed); it must not reach the host.
  const viaTmp = join(p.root, tag);
  try {
    const r = p.sh(
      `echo x > '${viaTmp}'; ` +
        targets.map((t) => `(echo x > '${t}') 2>&1 | grep -q 'Read-only file system' && echo EROFS-${t} || echo OTHER-${t}`).join('; ') +
        // HOME lives under the host /tmp here, which the private /tmp hides.
        `; [ -e '${p.home}' ] && echo SAW-home` +
        `; touch '${p.W}/inside' && echo CORDON-RAN`,
    );
    ran(assert, r);
    // The right reason: the host root is a read-only bind (EROFS), not a
    // missing directory or a permission the unprivileged pass lacks anyway.
    assert.doesNotMatch(r.stdout, /SAW-home/);
    for (const t of [targets[0], targets[2]]) assert.match(r.stdout, new RegExp(`EROFS-${t}`), r.stdout);
    for (const t of [...targets, viaTmp]) assert.ok(!existsSync(t), `${t} exists on the host`);
    assert.ok(existsSync(join(p.W, 'inside')), 'the writable root is writable');
    // A symlink planted in W by an earlier run turns a later allowWrite of
    // W/out into a host dir outside every writable root: never followed.
    const outside = mkdtempSync('/var/tmp/cordon-f1-');
    try {
      symlinkSync(outside, join(p.W, 'out'));
      const s = p.sh(`echo x > out/pwn 2>/dev/null && echo WROTE; echo x > ${outside}/pwn2 2>/dev/null && echo WROTE; echo CORDON-RAN`, ['--allow-write', join(p.W, 'out')]);
      ran(assert, s);
      assert.doesNotMatch(s.stdout, /WROTE/);
      assert.deepEqual(readdirSync(outside), []);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  } finally {
    for (const t of targets) rmSync(t, { force: true });
    p.cleanup();
  }
});

entry('F2', 'Write a protected path under a writable root', () => {
  const p = project();
  try {
    makeRepo(p.W);
    writeFileSync(join(p.W, '.bashrc'), 'orig\n');
    const r = p.sh(
      [
        'echo x > .git/config 2>/dev/null && echo WROTE-config',
        'mkdir .git/hooks/x 2>/dev/null && echo WROTE-hooks',
        'echo x > .git/hooks/pre-commit 2>/dev/null && echo WROTE-hook',
        'echo x >> .bashrc 2>/dev/null && echo WROTE-bashrc',
        'mkdir -p .claude 2>/dev/null && echo x > .claude/settings.json 2>/dev/null && echo WROTE-claude',
        'echo CORDON-RAN',
      ].join('; '),
    );
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /WROTE/);
    assert.equal(readFileSync(join(p.W, '.git', 'config'), 'utf8'), 'orig\n');
    assert.equal(readFileSync(join(p.W, '.bashrc'), 'utf8'), 'orig\n');
    assert.deepEqual(readdirSync(join(p.W, '.git', 'hooks')), []);
    assert.ok(!existsSync(join(p.W, '.claude')));
  } finally {
    p.cleanup();
  }
});

entry('F3', 'Hard-link, rename or unlink a protected mount point', () => {
  const p = project();
  try {
    makeRepo(p.W);
    const r = p.sh(
      [
        'ln .git/config gc 2>/dev/null && echo LINKED',
        'mv .git g2 2>/dev/null && echo MOVED',
        'mv .git/hooks h2 2>/dev/null && echo MOVED-hooks',
        'rm -rf .git 2>/dev/null; [ -f .git/config ] || echo REMOVED',
        'echo CORDON-RAN',
      ].join('; '),
    );
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /LINKED|MOVED|REMOVED/);
    assert.equal(readFileSync(join(p.W, '.git', 'config'), 'utf8'), 'orig\n');
    assert.ok(existsSync(join(p.W, '.git', 'hooks')));
    assert.ok(!existsSync(join(p.W, 'g2')) && !existsSync(join(p.W, 'gc')));
  } finally {
    p.cleanup();
  }
});

entry('F4', 'Pre-planted symlink at a protected path', () => {
  const p = project();
  try {
    mkdirSync(join(p.W, 'decoy'));
    symlinkSync('decoy', join(p.W, '.vscode'));
    mkdirSync(join(p.W, 'decoy2'));
    symlinkSync('decoy2', join(p.W, '.claude'));
    const r = p.sh('echo x > .vscode/tasks.json 2>/dev/null && echo WROTE; echo x > .claude/settings.json 2>/dev/null && echo WROTE; echo CORDON-RAN');
    // Refusing to start is also a safe outcome, but then nothing may be written.
    if (r.code === 0) ran(assert, r);
    else assert.equal(r.code, 125, r.stderr);
    assert.doesNotMatch(r.stdout, /WROTE/);
    assert.deepEqual(readdirSync(join(p.W, 'decoy')), []);
    assert.deepEqual(readdirSync(join(p.W, 'decoy2')), []);
  } finally {
    p.cleanup();
  }
});

entry('F5', 'Create a protected path that does not exist yet', () => {
  const p = project();
  try {
    writeFileSync(join(p.W, 'keep.txt'), 'k');
    mkdirSync(join(p.W, 'sub'));
    const before = names(p.W);
    const steps = [
      'mkdir .git 2>/dev/null && echo MADE-git',
      "printf 'gitdir: /tmp/evil\\n' > .git 2>/dev/null && echo MADE-gitfile",
      "printf 'gitdir: /tmp/evil\\n' > sub/.git 2>/dev/null && echo MADE-subgitfile",
      'mkdir .vscode 2>/dev/null && echo MADE-vscode',
      'mkdir -p .claude/commands 2>/dev/null && echo MADE-claude',
      'echo x > .mcp.json 2>/dev/null && echo MADE-mcp',
      'echo x > .bashrc 2>/dev/null && echo MADE-bashrc',
    ];
    if (have('git')) steps.push('git init -q . 2>/dev/null && echo MADE-gitinit');
    const r = p.sh([...steps, 'echo CORDON-RAN'].join('; '));
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /MADE-(git|gitfile|vscode|claude|mcp|bashrc|gitinit)\b/);
    assert.deepEqual(names(p.W), before, 'no placeholder or planted file remains on the host');
    // sub/.git is not protected by the default policy (only the top level
    // of a writable root is); whatever was written there must be a plain file.
    if (existsSync(join(p.W, 'sub', '.git'))) assert.ok(statSync(join(p.W, 'sub', '.git')).isFile());
  } finally {
    p.cleanup();
  }
});

entry('F6', 'TOCTOU symlink exchange on a bind source at launch', async () => {
  const p = project();
  const tag = `cordon-f6-${randomBytes(4).toString('hex')}`;
  try {
    makeRepo(p.W);
    // The attacker is a second sandbox sharing W: it loops the exchange
    // (.git -> symlink to /) while victim sandboxes launch in the same W.
    const loop = `i=0; while [ $i -lt 400 ]; do mv .git .gx 2>/dev/null && echo MOVED; ln -sfn / .git 2>/dev/null && echo LINKED; mv .gx .git 2>/dev/null; i=$((i+1)); done; echo CORDON-RAN`;
    const attacker = cordonAsync(['--', '/bin/sh', '-c', loop], { cwd: p.W, env: p.env });
    // (.git itself stays writable by design, as in srt: config and hooks are
    // what the default policy protects.)
    const victim = `echo x > .git/etc/${tag} 2>/dev/null && echo WROTE; echo x > .git/config 2>/dev/null && echo WROTE-config; echo x > .git/hooks/pre-commit 2>/dev/null && echo WROTE-hook; echo CORDON-RAN`;
    const outs = [];
    for (let i = 0; i < 8 && outs.filter((r) => r.code === 0).length < 3; i++) outs.push(await cordonAsync(['--', '/bin/sh', '-c', victim], { cwd: p.W, env: p.env }));
    const a = await attacker;
    if (a.code === 0) ran(assert, a);
    assert.doesNotMatch(a.stdout, /MOVED|LINKED/, 'the attacker sandbox could exchange .git');
    for (const r of outs) {
      // A launch that loses a race with the other sandbox's placeholders
      // aborts (125, fail closed); every launch that runs stays confined.
      if (r.code === 0) ran(assert, r);
      else assert.equal(r.code, 125, r.stderr);
      assert.doesNotMatch(r.stdout, /WROTE/);
    }
    assert.ok(outs.some((r) => r.code === 0), 'no victim launch ran at all');
    // A host-side racer (moved from fs-write.test.mjs): .git flips between
    // the real dir and a symlink to a dir outside every writable root while
    // cordon starts; nothing may ever be written through the symlink.
    const outside = join(p.root, 'outside');
    mkdirSync(outside);
    const racer = spawn('/bin/sh', ['-c', `while :; do mv .git .real 2>/dev/null; ln -s '${outside}' .git 2>/dev/null; rm -f .git; mv .real .git 2>/dev/null; done`], { cwd: p.W, stdio: 'ignore', detached: true });
    try {
      let got = 0;
      for (let i = 0; i < 4; i++) {
        const r = await cordonAsync(['--', '/bin/sh', '-c', `echo x > .git/pwned-${i} 2>/dev/null; mkdir .git/hooks/pwned 2>/dev/null; echo CORDON-RAN`], { cwd: p.W, env: p.env });
        if (r.code === 0 && r.stdout.includes('CORDON-RAN')) got++;
        else assert.equal(r.code, 125, `neither ran nor refused: ${r.code} ${r.stderr}`);
      }
      assert.ok(got > 0, 'no run got through at all');
      assert.deepEqual(readdirSync(outside), [], 'something was written through the swapped symlink');
    } finally {
      // The whole group: a running mv/ln of the loop must not outlive it.
      process.kill(-racer.pid, 'SIGKILL');
      await new Promise((res) => racer.once('close', res));
    }
    // A prior run sharing W: sandbox A ends while victim B still runs. A's
    // clean-up of its placeholders for missing protected paths must not take
    // away B's masks over the same names (B sees A's placeholders as files).
    const fresh = join(p.root, 'fresh');
    mkdirSync(fresh);
    const first = cordonAsync(['--', '/bin/sh', '-c', 'while [ ! -e go ]; do sleep 0.02; done'], { cwd: fresh, env: p.env });
    let firstDone = false;
    first.then(() => (firstDone = true));
    while (!existsSync(join(fresh, '.bashrc')) && !firstDone) await new Promise((res) => setTimeout(res, 20));
    const second = cordonAsync(['--', '/bin/sh', '-c', [
      'touch b-ready; while [ ! -e go2 ]; do sleep 0.02; done',
      'echo evil >> .bashrc 2>/dev/null && echo WROTE-bashrc',
      'mkdir -p .vscode 2>/dev/null && echo x > .vscode/tasks.json 2>/dev/null && echo WROTE-vscode',
      'mkdir -p .git/hooks 2>/dev/null && echo x > .git/hooks/pre-commit 2>/dev/null && echo WROTE-hook',
      'echo CORDON-RAN'].join('; ')], { cwd: fresh, env: p.env });
    // Once B's command runs (its masks are in place), end A.
    let secondDone = false;
    second.then(() => (secondDone = true));
    while (!existsSync(join(fresh, 'b-ready')) && !secondDone) await new Promise((res) => setTimeout(res, 20));
    writeFileSync(join(fresh, 'go'), '');
    const ra = await first;
    assert.equal(ra.code, 0, ra.stderr);
    writeFileSync(join(fresh, 'go2'), '');
    const rb = await second;
    if (rb.code !== 125) ran(assert, rb);
    assert.doesNotMatch(rb.stdout, /WROTE/, 'a concurrent sandbox ending lifted the masks of the one still running');
    for (const f of ['.vscode/tasks.json', '.git/hooks/pre-commit']) assert.ok(!existsSync(join(fresh, f)), `${f} planted on the host`);
    // And once both have ended, no placeholder of either is left behind.
    assert.deepEqual(names(fresh), ['b-ready', 'go', 'go2'], 'placeholders left on the host after two concurrent runs');
    // The static variant: .git already a symlink to / when the victim starts.
    rmSync(join(p.W, '.git'), { recursive: true, force: true });
    symlinkSync('/', join(p.W, '.git'));
    const s = p.sh(victim);
    if (s.code !== 0) assert.equal(s.code, 125, s.stderr);
    else ran(assert, s);
    assert.doesNotMatch(s.stdout, /WROTE/);
    assert.ok(!existsSync(`/etc/${tag}`), '/ became writable');
  } finally {
    rmSync(`/etc/${tag}`, { force: true });
    rmSync(`/${tag}`, { force: true });
    p.cleanup();
  }
});

entry('F7', 'Read a read-denied secret', () => {
  const p = project();
  const c = canary();
  try {
    mkdirSync(join(p.home, '.ssh'));
    writeFileSync(join(p.home, '.ssh', 'id_ed25519'), c);
    mkdirSync(join(p.home, '.aws'));
    writeFileSync(join(p.home, '.aws', 'credentials'), c);
    writeFileSync(join(p.home, '.netrc'), c);
    mkdirSync(join(p.home, '.docker'));
    writeFileSync(join(p.home, '.docker', 'config.json'), c);
    mkdirSync(join(p.root, 'secrets'));
    writeFileSync(join(p.root, 'secrets', 'key.txt'), c);
    writeFileSync(join(p.W, 'app.pem'), c);
    const r = p.sh(
      [
        'cat ~/.ssh/id_ed25519 ~/.aws/credentials ~/.netrc ~/.docker/config.json 2>&1',
        `cat ${p.root}/secrets/key.txt 2>&1`,
        'cat app.pem 2>&1',
        'cat /etc/shadow 2>/dev/null | head -c 200',
        'ls -la ~/.ssh ~/.aws 2>&1',
        'echo CORDON-RAN',
      ].join('; '),
      ['--deny-read', join(p.root, 'secrets'), '--deny-read', '*.pem'],
    );
    ran(assert, r);
    assert.ok(!r.stdout.includes(c) && !r.stderr.includes(c), `canary leaked:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /^root:/m, '/etc/shadow readable');
  } finally {
    p.cleanup();
  }
});

entry('F8', 'Reach a hidden path through an alias', () => {
  const p = project();
  const c = canary();
  try {
    const real = join(p.root, 'real');
    mkdirSync(real);
    writeFileSync(join(real, 'secret.txt'), c);
    symlinkSync(real, join(p.root, 'alias'));
    mkdirSync(join(p.home, '.ssh'));
    writeFileSync(join(p.home, '.ssh', 'id_ed25519'), c);
    symlinkSync(p.home, join(p.root, 'varhome'));
    const r = p.sh(
      [
        `cat ${p.root}/alias/secret.txt 2>&1`,
        `cat /proc/1/root${real}/secret.txt 2>&1`,
        `cat /proc/self/root${p.root}/alias/secret.txt 2>&1`,
        `cat /proc/$$/root${real}/secret.txt 2>&1`,
        `cat ${p.root}/varhome/.ssh/id_ed25519 2>&1`,
        `cat /proc/1/root${p.home}/.ssh/id_ed25519 2>&1`,
        'for d in /proc/*/cwd/; do cat $d/../secret.txt $d/../real/secret.txt 2>/dev/null; done',
        `(cd / && cat .${real}/secret.txt 2>&1)`,
        // A file made after start under the denied dir is denied too.
        `echo new > ${real}/later.txt 2>/dev/null; cat ${real}/later.txt 2>/dev/null && echo SAW-later`,
        'echo CORDON-RAN',
      ].join('; '),
      // Denied through the alias spelling: the rule must land on the real path.
      ['--deny-read', join(p.root, 'alias')],
    );
    ran(assert, r);
    assert.ok(!r.stdout.includes(c), `canary leaked:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /SAW-later/);
  } finally {
    p.cleanup();
  }
});

entry('F9', 'Remount read-write or clear nosuid/nodev', () => {
  const a = attacks();
  assert.equal(a.attack('real').get('mount_remount_rw'), EPERM);
  const r = a.p.sh(
    [
      'mount -o remount,rw / 2>/dev/null; echo "mount=$?"',
      'mount -o remount,bind,rw /usr 2>/dev/null; echo "mount=$?"',
      `mount -o remount,suid ${a.p.W} 2>/dev/null; echo "mount=$?"`,
      'touch /usr/cordon-f9 2>/dev/null && echo WROTE',
      'grep -E " / | /usr " /proc/self/mountinfo | grep -c "[ ,]ro[ ,]"',
      'echo CORDON-RAN',
    ].join('; '),
  );
  ran(assert, r);
  assert.doesNotMatch(r.stdout, /WROTE/);
  assert.ok(!existsSync('/usr/cordon-f9'));
  assert.equal((r.stdout.match(/^mount=[1-9]/gm) ?? []).length, 3, r.stdout);
});

entry('F10', 'Nested userns, then undo ro binds', () => {
  const a = attacks();
  const p = project();
  try {
    makeRepo(p.W);
    const r = p.sh(`unshare -rm sh -c 'mount -o remount,bind,rw .git; umount -l .git; echo x > .git/config' 2>&1; echo "unshare=$?"; echo CORDON-RAN`);
    ran(assert, r);
    assert.match(r.stdout, /unshare failed: Operation not permitted/);
    assert.doesNotMatch(r.stdout, /unshare=0/);
    assert.equal(readFileSync(join(p.W, '.git', 'config'), 'utf8'), 'orig\n');
    const got = a.attack('real');
    assert.equal(got.get('unshare_newuser'), EPERM);
    assert.equal(got.get('umount_proc'), EPERM);
  } finally {
    p.cleanup();
  }
});

entry('F11', 'Mount a fresh proc, sysfs or tmpfs in a nested namespace', () => {
  const a = attacks();
  const got = a.attack('real');
  assert.equal(got.get('mount_tmpfs'), EPERM);
  assert.equal(got.get('fsopen_tmpfs'), EPERM);
  const r = a.p.sh(`unshare -rmpf --mount-proc true 2>&1; echo "unshare=$?"; mount -t sysfs s /tmp 2>&1; mount -t proc p /tmp 2>&1; ls /tmp | grep -c -E 'kernel|sys' ; echo CORDON-RAN`);
  ran(assert, r);
  assert.match(r.stdout, /unshare failed: Operation not permitted/);
  assert.match(r.stdout, /^0$/m, 'sysfs or proc got mounted on /tmp');
});

entry('F12', 'Write /proc control files', () => {
  const p = project();
  try {
    const r = p.sh(
      pyScript(`
for f in ('/proc/sysrq-trigger', '/proc/sys/kernel/sysrq', '/proc/sys/user/max_user_namespaces', '/proc/sys/kernel/hostname'):
  try:
    open(f, 'w').write('1'); print(f, 'written')
  except OSError as e: print(f, 'errno', e.errno)`) + '; echo CORDON-RAN',
    );
    ran(assert, r);
    const lines = r.stdout.trim().split('\n').slice(0, 4);
    // Read-only proc covers (EROFS), permission (EACCES/EPERM), or hidden (ENOENT).
    for (const l of lines) assert.match(l, new RegExp(` errno (${EROFS}|${EACCES}|${EPERM}|2)$`), l);
  } finally {
    p.cleanup();
  }
});

entry('F13', 'open_by_handle_at ("shocker")', () => {
  const got = attacks().attack('real');
  assert.equal(got.get('open_by_handle_at'), EPERM);
  assert.equal(attacks().attack('diff').get('open_by_handle_at'), EPERM);
});

entry('F14', 'Shared /tmp with the host', () => {
  const p = project();
  const tag = `cordon-f14-${randomBytes(4).toString('hex')}`;
  const hostCanary = join(tmpdir(), `${tag}-canary`);
  const planted = join('/tmp', `${tag}-planted`);
  try {
    writeFileSync(hostCanary, 'host');
    const r = p.sh(
      [
        'ls -a /tmp',
        `cat ${hostCanary} 2>/dev/null && echo SAW-canary`,
        `ln -s ~/.bashrc ${planted} && echo > ${planted}-file && echo PLANTED-inside`,
        'ls -a /tmp/.X11-unix 2>/dev/null && echo SAW-x11',
        'echo CORDON-RAN',
      ].join('; '),
    );
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /SAW-/);
    assert.ok(!r.stdout.includes(`${tag}-canary`), 'host /tmp entry listed inside');
    assert.match(r.stdout, /PLANTED-inside/, 'the private /tmp is writable');
    assert.ok(!existsSync(planted) && !existsSync(`${planted}-file`), 'planted file reached the host /tmp');
  } finally {
    rmSync(hostCanary, { force: true });
    rmSync(planted, { force: true });
    rmSync(`${planted}-file`, { force: true });
    p.cleanup();
  }
});

entry('F15', 'Device nodes', () => {
  const p = project();
  try {
    const r = p.sh(
      [
        'ls /dev; echo END-LS',
        'mknod /tmp/m c 1 1 2>/dev/null && echo MADE-node',
        'head -c 1 /dev/mem >/dev/null 2>&1 && echo READ-mem',
        'head -c 1 /dev/kmsg >/dev/null 2>&1 && echo READ-kmsg',
        'for d in /dev/sda /dev/vda /dev/nvme0n1 /dev/loop0 /dev/vsock /dev/kvm; do head -c 1 $d >/dev/null 2>&1 && echo READ-$d; done',
        'echo x > /dev/null && head -c 4 /dev/zero | wc -c',
        'echo CORDON-RAN',
      ].join('; '),
    );
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /MADE-|READ-/);
    const listed = r.stdout.split('END-LS')[0].split('\n');
    for (const bad of ['mem', 'kmsg', 'sda', 'vda', 'loop0', 'vsock', 'kvm']) assert.ok(!listed.includes(bad), `/dev/${bad} present inside`);
    for (const good of ['null', 'zero', 'urandom']) assert.ok(listed.includes(good), `/dev/${good} missing inside`);
  } finally {
    p.cleanup();
  }
});

entry('F16', 'setuid or file-capability binaries', () => {
  const p = project();
  try {
    const r = p.sh(
      [
        'grep -E "^(NoNewPrivs|CapEff|CapPrm)" /proc/self/status',
        'echo "uid-before=$(id -u)"',
        `[ -u /usr/bin/su ] && echo SU-IS-SETUID`,
        `su -c 'id -u > ${p.W}/su-ran' root </dev/null >/dev/null 2>&1; echo "su=$?"`,
        'echo CORDON-RAN',
      ].join('; '),
    );
    ran(assert, r);
    assert.match(r.stdout, /^NoNewPrivs:\s+1$/m);
    assert.match(r.stdout, /^CapEff:\s+0+$/m);
    assert.match(r.stdout, /^CapPrm:\s+0+$/m);
    assert.doesNotMatch(r.stdout, /^su=0$/m, 'su succeeded inside');
    assert.ok(!existsSync(join(p.W, 'su-ran')), 'su ran a command');
  } finally {
    p.cleanup();
  }
});

entry('F17', 'Escape the new root', () => {
  const p = project();
  const tag = `cordon-f17-${randomBytes(4).toString('hex')}`;
  const hostCanary = join(tmpdir(), tag);
  try {
    writeFileSync(hostCanary, 'host');
    const r = p.sh(
      [
        `ls /proc/1/root/tmp/ 2>/dev/null | grep -q ${tag} && echo SAW-host-tmp`,
        'for d in /oldroot /newroot /tmp/oldroot /.oldroot; do [ -e $d ] && echo SAW-$d; done',
        pyScript(`
import os
try:
  os.chroot('.'); print('CHROOTED')
except OSError as e: print('chroot errno', e.errno)`),
        'echo CORDON-RAN',
      ].join('; '),
    );
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /SAW-|CHROOTED/);
    assert.match(r.stdout, new RegExp(`chroot errno ${EPERM}`));
  } finally {
    rmSync(hostCanary, { force: true });
    p.cleanup();
  }
});
