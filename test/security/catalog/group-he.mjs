// Catalog groups H (persistence and host-side execution) and E (environment)
// through the cordon CLI with the default policy.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdirSync, writeFileSync, rmSync, chmodSync, cpSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { have, cordon, ROOT } from '../../helpers.mjs';
import { entry, project, ran } from './harness.mjs';
import { SandboxManager } from '../../../dist/index.js';
import { makeRepo } from '../fs-util.mjs';

entry('H1', 'Plant files the host will later execute', (ctx) => {
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
        "echo 'all:; curl evil' > Makefile && echo WROTE-makefile",
        'echo CORDON-RAN',
      ].join('; '),
    );
    ran(assert, r);
    assert.doesNotMatch(r.stdout, /PLANTED/);
    assert.match(r.stdout, /WROTE-envrc/);
    assert.equal(readFileSync(join(p.W, '.git', 'config'), 'utf8'), 'orig\n');
    assert.ok(!existsSync(join(p.W, '.vscode')) && !existsSync(join(p.home, '.bashrc')) && !existsSync(join(p.W, '.bashrc')));
    assert.ok(!existsSync(join(p.W, '.git', 'hooks', 'pre-commit')));
    // A weaker policy or agent settings planted for the next run: with the
    // project as HOME, every settings lookup location stays read-only.
    const hs = p.sh(
      [
        'echo "{}" > ~/.srt-settings.json 2>/dev/null && echo PLANTED-srt-settings',
        'mkdir -p ~/.config/cordon 2>/dev/null && echo "{}" > ~/.config/cordon/settings.json 2>/dev/null && echo PLANTED-cordon-settings',
        'mkdir -p .claude 2>/dev/null; echo "{}" > .claude/settings.json 2>/dev/null && echo PLANTED-claude-settings',
        'echo "{}" > .claude/settings.local.json 2>/dev/null && echo PLANTED-claude-local',
        'echo CORDON-RAN',
      ].join('; '),
      [],
      { HOME: p.W },
    );
    ran(assert, hs);
    assert.doesNotMatch(hs.stdout, /PLANTED/);
    // With HOME as the writable root, login/PATH files outside the protected
    // lists stay writable (reported, not asserted: see the threat model).
    const homeFiles = ['.local/bin/ls', '.pam_environment', '.xprofile', '.cargo/config.toml', '.config/autostart/x.desktop', '.config/fish/config.fish'];
    const hw = p.sh(homeFiles.map((f) => `mkdir -p ${dirname(f)} 2>/dev/null; echo x > ${f} 2>/dev/null && echo "WRITABLE ${f}"`).join('; ') + '; echo CORDON-RAN', [], { HOME: p.W });
    ran(assert, hw);
    const writableHome = [...hw.stdout.matchAll(/^WRITABLE (\S+)$/gm)].map((m) => `~/${m[1]}`);
    assert.ok(!existsSync(join(p.W, '.srt-settings.json')) && !existsSync(join(p.W, '.config', 'cordon', 'settings.json')));
    if (haveGit) hooksPathStaysProtected(p);
    const git = haveGit ? gitRelocation(p) : 'git not installed';
    ctx.residual(`.git/config, hooks, agent and shell rc files protected; .envrc/Makefile writable by design; ${git}${writableHome.length ? `; HOME as writable root: ${writableHome.join(' ')} writable` : ''}`);
  } finally {
    p.cleanup();
  }
});

/** Repositories that move their hooks (husky: core.hooksPath=.husky) keep
 *  them in the project: that directory is the hooks directory the host's
 *  git runs, so it must be as read-only as .git/hooks. */
function hooksPathStaysProtected(p) {
  const W = join(p.root, 'w-husky');
  mkdirSync(join(W, '.husky'), { recursive: true });
  const g = spawnSync('/bin/sh', ['-c', 'git init -q . && git config core.hooksPath .husky && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m init'], { cwd: W, env: { PATH: '/usr/bin:/bin', HOME: p.home } });
  assert.equal(g.status, 0, String(g.stderr));
  const marker = join(p.root, 'PWNED-husky');
  const r = cordon(['--', '/bin/sh', '-c', `printf '#!/bin/sh\ntouch ${marker}\n' > .husky/pre-commit 2>/dev/null && chmod +x .husky/pre-commit && echo PLANTED-hookspath-hook; echo CORDON-RAN`], { cwd: W, env: p.env });
  ran(assert, r);
  spawnSync('git', ['-c', 'user.email=a@b', '-c', 'user.name=a', 'commit', '-q', '--allow-empty', '-m', 'host'], { cwd: W, env: { PATH: '/usr/bin:/bin', HOME: p.home }, stdio: 'ignore' });
  assert.ok(!existsSync(marker), "the host's git commit ran a hook planted in core.hooksPath (.husky)");
  assert.doesNotMatch(r.stdout, /PLANTED/);
}

/** git reads config (core.fsmonitor runs a command) from places other than
 *  .git/config: a `commondir` file in the git dir, and every populated
 *  submodule named by a gitlink in the index. Both live in the writable
 *  part of .git or of W. With .git write-denied (the catalog's safe outcome,
 *  `--deny-write .git`) neither can be planted and the host's `git status`
 *  runs nothing; with the default policy (srt's: only config and hooks) the
 *  result is reported, as docs/threat-model.md describes. */
function gitRelocation(p) {
  const plant = (marker) => [
    'export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@b GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@b',
    `mkdir -p evil && cp -r .git/objects .git/refs .git/HEAD evil/ 2>/dev/null; printf '[core]\n\trepositoryformatversion = 0\n\tfsmonitor = "touch ${marker}-commondir; false"\n' > evil/config`,
    'echo ../evil > .git/commondir 2>/dev/null && echo PLANTED-commondir',
    `mkdir -p sub && (cd sub && git init -q . && git commit -q --allow-empty -m x && git config core.fsmonitor "touch ${marker}-submodule; false") && git update-index --add --cacheinfo 160000,$(git -C sub rev-parse HEAD),sub 2>/dev/null && echo PLANTED-gitlink`,
    'echo CORDON-RAN',
  ].join('; ');
  const hostGit = (W) => spawnSync('git', ['status'], { cwd: W, env: { PATH: '/usr/bin:/bin', HOME: p.home, GIT_CONFIG_NOSYSTEM: '1' }, stdio: 'ignore' });
  const fresh = (name) => {
    const W = join(p.root, name);
    mkdirSync(W);
    const g = spawnSync('/bin/sh', ['-c', 'git init -q . && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m init'], { cwd: W, env: { PATH: '/usr/bin:/bin', HOME: p.home } });
    assert.equal(g.status, 0, String(g.stderr));
    return W;
  };
  // The safe outcome, with the policy the entry names.
  const W1 = fresh('w-denied');
  const m1 = join(p.root, 'PWNED-denied');
  const r1 = cordon(['--deny-write', '.git', '--', '/bin/sh', '-c', plant(m1)], { cwd: W1, env: p.env });
  ran(assert, r1);
  assert.doesNotMatch(r1.stdout, /PLANTED/);
  hostGit(W1);
  assert.ok(!existsSync(`${m1}-commondir`) && !existsSync(`${m1}-submodule`), 'the host git ran planted code');
  // The default policy.
  const W2 = fresh('w-default');
  const m2 = join(p.root, 'PWNED-default');
  const r2 = cordon(['--', '/bin/sh', '-c', plant(m2)], { cwd: W2, env: p.env });
  ran(assert, r2);
  hostGit(W2);
  const ran2 = ['commondir', 'submodule'].filter((k) => existsSync(`${m2}-${k}`));
  return ran2.length ? `default policy: host git ran code planted via ${ran2.join(' and ')} (--deny-write .git stops it)` : 'git relocation blocked';
}

entry('H2', "Hijack the launcher's helper lookup", () => {
  const p = project();
  const tag = `cordon-h2-${randomBytes(4).toString('hex')}`;
  try {
    const bin = join(p.W, 'bin');
    mkdirSync(bin);
    for (const name of ['cordon-launcher', 'bwrap', 'socat', 'rg', 'node']) {
      writeFileSync(join(bin, name), `#!/bin/sh\ntouch '${p.root}/pwned-${name}'\nexec "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    }
    writeFileSync(join(p.W, 'cordon-launcher'), `#!/bin/sh\ntouch '${p.root}/pwned-cwd'\n`);
    chmodSync(join(p.W, 'cordon-launcher'), 0o755);
    const r = p.sh(`echo x > /etc/${tag} 2>/dev/null && echo UNSANDBOXED; echo "sandbox=$CORDON_SANDBOX"; echo CORDON-RAN`, ['--allow-net', 'localhost:1'], {
      PATH: `${bin}:.:/usr/local/bin:/usr/bin:/bin`,
    });
    ran(assert, r);
    assert.match(r.stdout, /sandbox=1/);
    assert.doesNotMatch(r.stdout, /UNSANDBOXED/);
    for (const f of ['cordon-launcher', 'bwrap', 'socat', 'rg', 'node', 'cwd']) assert.ok(!existsSync(join(p.root, `pwned-${f}`)), `planted ${f} ran`);
    installedCopyStaysProtected(p);
  } finally {
    rmSync(`/etc/${tag}`, { force: true });
    p.cleanup();
  }
});

/** cordon installed inside the project (npm i, or its own checkout): the
 *  command must not replace what the next host-side run loads: dist/, the
 *  launcher, and the dependencies dist/ imports (zod, loaded with a settings
 *  file). A modified node_modules/zod would run on the host, unsandboxed. */
function installedCopyStaysProtected(p) {
  const proj = join(p.root, 'proj');
  mkdirSync(join(proj, 'node_modules'), { recursive: true });
  cpSync(join(ROOT, 'dist'), join(proj, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(proj, 'package.json'));
  cpSync(join(ROOT, 'node_modules', 'zod'), join(proj, 'node_modules', 'zod'), { recursive: true });
  const zodMain = join(proj, 'node_modules', 'zod', JSON.parse(readFileSync(join(proj, 'node_modules', 'zod', 'package.json'), 'utf8')).main ?? 'index.js');
  const before = readFileSync(zodMain, 'utf8');
  const r = spawnSync(process.execPath, [join(proj, 'dist', 'cli.js'), '--', '/bin/sh', '-c', [
    `echo '//x' >> ${zodMain} 2>/dev/null && echo WROTE-zod`,
    'echo "//x" >> node_modules/zod/package.json 2>/dev/null && echo WROTE-zod-pkg',
    'echo x >> dist/cli.js 2>/dev/null && echo WROTE-cli',
    'echo x > dist/config/schema.js 2>/dev/null && echo WROTE-schema',
    'mv node_modules/zod node_modules/zod2 2>/dev/null && echo MOVED-zod',
    'echo CORDON-RAN'].join('; ')], { cwd: proj, env: p.env, encoding: 'utf8' });
  ran(assert, r);
  assert.doesNotMatch(r.stdout, /WROTE|MOVED/, "cordon's own code or its dependencies were replaceable from inside");
  assert.equal(readFileSync(zodMain, 'utf8'), before);
}

entry('E1', 'Secrets in the environment', async (ctx) => {
  const p = project();
  const c = `CANARY-${randomBytes(8).toString('hex')}`;
  try {
    const secrets = {
      GH_TOKEN: c, GITHUB_TOKEN: c, AWS_SECRET_ACCESS_KEY: c, AWS_SESSION_TOKEN: c, ANTHROPIC_API_KEY: c,
      OPENAI_API_KEY: c, NPM_TOKEN: c, DB_PASSWORD: c, MY_SERVICE_SECRET: c, SSH_AUTH_SOCK: `/tmp/${c}`,
    };
    const r = p.sh("env; tr '\\0' '\\n' < /proc/self/environ; echo CORDON-RAN", ['--allow-net', 'allowed.test'], { ...secrets, HARMLESS: 'visible' });
    ran(assert, r);
    assert.ok(!r.stdout.includes(c), `a credential variable leaked:\n${r.stdout}`);
    assert.match(r.stdout, /^HARMLESS=visible$/m);
    assert.match(r.stdout, /^CORDON_SANDBOX=1$/m);
    // The proxy settings carry no token or credential (identity comes from the relay).
    for (const m of r.stdout.matchAll(/^(?:HTTPS?_PROXY|ALL_PROXY)=(.*)$/gim)) assert.doesNotMatch(m[1], /@/, m[0]);
    // The srt-compatible SandboxManager: the caller spawns the wrapped string
    // with its own environment. Credential variables of the process at wrap
    // time are removed inside too.
    const saved = { ...process.env };
    Object.assign(process.env, secrets);
    try {
      await SandboxManager.initialize({ filesystem: { denyRead: [], allowWrite: [p.W], denyWrite: [] } });
      const wrapped = await SandboxManager.wrapWithSandbox("env; tr '\\0' '\\n' < /proc/self/environ; echo CORDON-RAN");
      const m = spawnSync(wrapped, { shell: true, encoding: 'utf8', cwd: p.W, env: process.env });
      ran(assert, m);
      assert.ok(!m.stdout.includes(c), `a credential variable leaked through SandboxManager:\n${m.stdout}`);
    } finally {
      for (const k of Object.keys(secrets)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      await SandboxManager.reset();
    }
    // Variables added only in the spawn's env are not known at wrap time and
    // pass through (docs/srt-differences.md).
    ctx.residual("SandboxManager: variables set only in the spawn's env pass unfiltered");
  } finally {
    p.cleanup();
  }
});
