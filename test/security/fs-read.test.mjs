// Catalog F7, F8 and E1 as real runs through the cordon CLI: secrets planted
// by the harness never show up in what the sandboxed command can print.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { WHO } from '../helpers.mjs';
import { project, assertRan } from './fs-util.mjs';

const canary = () => `CANARY-${randomBytes(8).toString('hex')}`;

test(`F7: credential stores, denyRead paths and /etc/shadow are unreadable (${WHO})`, () => {
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
    assertRan(assert, r);
    assert.ok(!r.stdout.includes(c) && !r.stderr.includes(c), `canary leaked:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /^root:/m, '/etc/shadow readable');
  } finally {
    p.cleanup();
  }
});

test(`F7: allowRead re-opens a credential store on purpose (${WHO})`, () => {
  const p = project();
  const c = canary();
  try {
    mkdirSync(join(p.home, '.aws'));
    writeFileSync(join(p.home, '.aws', 'config'), c);
    const r = p.sh('cat ~/.aws/config; echo; echo CORDON-RAN', ['--allow-read', '~/.aws']);
    assertRan(assert, r);
    assert.ok(r.stdout.includes(c), 'allowRead should re-open ~/.aws');
  } finally {
    p.cleanup();
  }
});

test(`F8: a hidden path stays hidden through aliases (symlink, /proc/*/root, /proc/*/cwd) (${WHO})`, () => {
  const p = project();
  const c = canary();
  try {
    const real = join(p.root, 'real');
    mkdirSync(real);
    writeFileSync(join(real, 'secret.txt'), c);
    symlinkSync(real, join(p.root, 'alias'));
    const r = p.sh(
      [
        `cat ${p.root}/alias/secret.txt 2>&1`,
        `cat /proc/1/root${real}/secret.txt 2>&1`,
        `cat /proc/self/root${p.root}/alias/secret.txt 2>&1`,
        `cat /proc/$$/root${real}/secret.txt 2>&1`,
        'ls /proc/*/cwd/ >/dev/null 2>&1',
        `(cd / && cat .${real}/secret.txt 2>&1)`,
        'echo CORDON-RAN',
      ].join('; '),
      // Denied through the alias spelling: the rule must land on the real path.
      ['--deny-read', join(p.root, 'alias')],
    );
    assertRan(assert, r);
    assert.ok(!r.stdout.includes(c), `canary leaked:\n${r.stdout}`);
  } finally {
    p.cleanup();
  }
});

test(`E1: credential variables do not reach the command (${WHO})`, () => {
  const p = project();
  const c = canary();
  try {
    const secrets = {
      GH_TOKEN: c,
      GITHUB_TOKEN: c,
      AWS_SECRET_ACCESS_KEY: c,
      AWS_SESSION_TOKEN: c,
      ANTHROPIC_API_KEY: c,
      OPENAI_API_KEY: c,
      NPM_TOKEN: c,
      DB_PASSWORD: c,
      MY_SERVICE_SECRET: c,
      SSH_AUTH_SOCK: `/tmp/${c}`,
    };
    const r = p.sh("env; tr '\\0' '\\n' < /proc/self/environ; echo CORDON-RAN", [], { ...secrets, HARMLESS: 'visible' });
    assertRan(assert, r);
    assert.ok(!r.stdout.includes(c), `a credential variable leaked:\n${r.stdout}`);
    assert.match(r.stdout, /^HARMLESS=visible$/m);
    assert.match(r.stdout, /^CORDON_SANDBOX=1$/m);
    assert.match(r.stdout, /^SANDBOX_RUNTIME=1$/m);
    assert.match(r.stdout, /^TMPDIR=\/tmp$/m);
  } finally {
    p.cleanup();
  }
});

test(`deny-by-default reads: only system dirs, writable and allowRead paths exist (${WHO})`, () => {
  const p = project();
  const c = canary();
  try {
    writeFileSync(join(p.home, 'notes.txt'), c);
    mkdirSync(join(p.home, 'docs'));
    writeFileSync(join(p.home, 'docs', 'ok.txt'), 'shared-doc');
    mkdirSync(join(p.root, 'other'));
    writeFileSync(join(p.root, 'other', 'x.txt'), c);
    const r = p.sh(
      [
        'cat ~/notes.txt 2>&1',
        `cat ${p.root}/other/x.txt 2>&1`,
        'cat ~/docs/ok.txt; echo',
        'echo w > written && cat written',
        'echo x > /new-root-file 2>/dev/null && echo ROOT-WRITABLE',
        'ls / | tr "\\n" " "; echo',
        'echo CORDON-RAN',
      ].join('; '),
      ['--deny-read-by-default', '--allow-read', '~/docs'],
    );
    assertRan(assert, r);
    assert.ok(!r.stdout.includes(c), `canary leaked:\n${r.stdout}`);
    assert.match(r.stdout, /shared-doc/);
    assert.match(r.stdout, /^w$/m);
    assert.doesNotMatch(r.stdout, /ROOT-WRITABLE/);
    assert.doesNotMatch(r.stdout, /\bhome\b.*\bmnt\b|\bsrv\b/);
  } finally {
    p.cleanup();
  }
});
