// Catalog F1-F6 and H1 as real runs through the cordon CLI: the attack runs
// inside the sandbox, and the host is checked afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdirSync, symlinkSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { CLI, WHO, have, run } from '../helpers.mjs';
import { project, makeRepo, names, assertRan } from './fs-util.mjs';

test(`F1: writes outside the writable roots fail (${WHO})`, () => {
  const p = project();
  const tag = `cordon-f1-${randomBytes(4).toString('hex')}`;
  const targets = [`/etc/${tag}`, join(p.home, tag), `/usr/${tag}`];
  // Inside, this lands in the private /tmp (allowed); it must not reach the host.
  const viaTmp = join(p.root, tag);
  try {
    const script = `echo x > '${viaTmp}'; ` + targets.map((t) => `echo x > '${t}' 2>/dev/null && echo "WROTE ${t}"`).join('; ') + `; touch '${p.W}/inside' && echo CORDON-RAN`;
    const r = p.sh(script);
    assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /WROTE/);
    for (const t of [...targets, viaTmp]) assert.ok(!existsSync(t), `${t} exists on the host`);
    assert.ok(existsSync(join(p.W, 'inside')), 'the writable root is writable');
  } finally {
    for (const t of targets) rmSync(t, { force: true });
    p.cleanup();
  }
});

test(`F2: protected paths under a writable root stay read-only (${WHO})`, () => {
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
        'echo CORDON-RAN',
      ].join('; '),
    );
    assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /WROTE/);
    assert.equal(readFileSync(join(p.W, '.git', 'config'), 'utf8'), 'orig\n');
    assert.equal(readFileSync(join(p.W, '.bashrc'), 'utf8'), 'orig\n');
    assert.deepEqual(readdirSync(join(p.W, '.git', 'hooks')), []);
  } finally {
    p.cleanup();
  }
});

test(`F3: protected mount points cannot be linked, renamed or removed (${WHO})`, () => {
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
    assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /LINKED|MOVED|REMOVED/);
    assert.equal(readFileSync(join(p.W, '.git', 'config'), 'utf8'), 'orig\n');
    assert.ok(existsSync(join(p.W, '.git', 'hooks')));
    // `mv .git/hooks h2` may leave a copy (mv falls back to copying across
    // mounts); what matters is that the protected originals stayed.
    assert.ok(!existsSync(join(p.W, 'g2')));
  } finally {
    p.cleanup();
  }
});

test(`F4: a symlink planted at a protected path is not followed (${WHO})`, () => {
  const p = project();
  try {
    mkdirSync(join(p.W, 'decoy'));
    symlinkSync('decoy', join(p.W, '.vscode'));
    const r = p.sh('echo x > .vscode/tasks.json 2>/dev/null && echo WROTE; echo CORDON-RAN');
    // Refusing to start is also a safe outcome, but then nothing may be written.
    if (r.code === 0) assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /WROTE/);
    assert.deepEqual(readdirSync(join(p.W, 'decoy')), []);
  } finally {
    p.cleanup();
  }
});

test(`F5: protected paths that do not exist yet cannot be created, and leave nothing behind (${WHO})`, () => {
  const p = project();
  try {
    writeFileSync(join(p.W, 'keep.txt'), 'k');
    const before = names(p.W);
    const steps = [
      'mkdir .git 2>/dev/null && echo MADE-git',
      "printf 'gitdir: /tmp/evil\\n' > .git 2>/dev/null && echo MADE-gitfile",
      'mkdir .vscode 2>/dev/null && echo MADE-vscode',
      'mkdir -p .claude/commands 2>/dev/null && echo MADE-claude',
      'echo x > .mcp.json 2>/dev/null && echo MADE-mcp',
      'echo x > .bashrc 2>/dev/null && echo MADE-bashrc',
    ];
    if (have('git')) steps.push('git init -q . 2>/dev/null && echo MADE-gitinit');
    const r = p.sh([...steps, 'echo CORDON-RAN'].join('; '));
    assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /MADE/);
    assert.deepEqual(names(p.W), before, 'no placeholder or planted file remains on the host');
  } finally {
    p.cleanup();
  }
});

test(`F6 (static variant): .git as a symlink to / at launch never makes / writable (${WHO})`, () => {
  const p = project();
  const tag = `cordon-f6-${randomBytes(4).toString('hex')}`;
  try {
    symlinkSync('/', join(p.W, '.git'));
    const r = p.sh(`echo x > .git/etc/${tag} 2>/dev/null && echo WROTE; echo x > .git/${tag} 2>/dev/null && echo WROTE; echo CORDON-RAN`);
    if (r.code === 0) assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /WROTE/);
    assert.ok(!existsSync(`/etc/${tag}`) && !existsSync(`/${tag}`));
  } finally {
    rmSync(`/etc/${tag}`, { force: true });
    rmSync(`/${tag}`, { force: true });
    p.cleanup();
  }
});

test(`H1: files the host later executes cannot be planted (${WHO})`, () => {
  const p = project();
  try {
    makeRepo(p.W);
    const haveGit = have('git');
    const r = p.sh(
      [
        "printf '#!/bin/sh\\nevil\\n' > .git/hooks/pre-commit 2>/dev/null && echo PLANTED-hook",
        haveGit ? "git config core.hooksPath /tmp/h 2>/dev/null && echo PLANTED-hookspath" : 'true',
        haveGit ? "git config core.fsmonitor 'sh -c evil' 2>/dev/null && echo PLANTED-fsmonitor" : 'true',
        "mkdir -p .vscode 2>/dev/null && echo '{}' > .vscode/tasks.json 2>/dev/null && echo PLANTED-vscode",
        'echo "alias ls=evil" >> ~/.bashrc 2>/dev/null && echo PLANTED-homerc',
        'echo "alias ls=evil" >> .bashrc 2>/dev/null && echo PLANTED-rc',
        // Residual risk by design: ordinary files in W stay writable.
        "echo 'curl evil' > .envrc && echo WROTE-envrc",
        'echo CORDON-RAN',
      ].join('; '),
    );
    assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /PLANTED/);
    assert.match(r.stdout, /WROTE-envrc/);
    assert.equal(readFileSync(join(p.W, '.git', 'config'), 'utf8'), 'orig\n');
    assert.ok(!existsSync(join(p.W, '.vscode')) && !existsSync(join(p.home, '.bashrc')) && !existsSync(join(p.W, '.bashrc')));
  } finally {
    p.cleanup();
  }
});

test(`F6: .git swapped for a symlink while cordon starts never yields a writable outside dir (${WHO})`, async () => {
  const p = project();
  const outside = join(p.root, 'outside');
  mkdirSync(outside);
  makeRepo(p.W);
  // The racer flips $W/.git between the real directory and a symlink to a
  // directory outside every writable root, as fast as it can.
  const racer = spawn('/bin/sh', ['-c', `cd '${p.W}' && while :; do mv .git .real 2>/dev/null; ln -s '${outside}' .git 2>/dev/null; rm -f .git; mv .real .git 2>/dev/null; done`], {
    stdio: 'ignore',
  });
  try {
    let ran = 0;
    for (let i = 0; i < 15; i++) {
      const r = await run(process.execPath, [CLI, '--', '/bin/sh', '-c', `echo x > .git/pwned-${i} 2>/dev/null; mkdir .git/hooks/pwned 2>/dev/null; echo CORDON-RAN`], {
        cwd: p.W,
        env: p.env,
      });
      if (r.code === 0 && r.stdout.includes('CORDON-RAN')) ran++;
      else assert.equal(r.code, 125, `neither ran nor refused: ${r.code} ${r.stderr}`);
    }
    assert.ok(ran > 0, 'no run got through at all');
    assert.deepEqual(readdirSync(outside), [], 'something was written through the swapped symlink');
  } finally {
    racer.kill('SIGKILL');
    await new Promise((r) => racer.once('close', r));
    p.cleanup();
  }
});
