// The cordon command line: every user-mistake path (one line, exit 2, no
// stack trace), explain, and exit-status fidelity of real runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cordon, tempDir, WHO } from '../helpers.mjs';

function userError(args, re, opts = {}) {
  const r = cordon(args, opts);
  assert.equal(r.code, 2, `exit status for ${JSON.stringify(args)}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  assert.match(lines[0], /^cordon: /);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'stack trace printed');
  assert.equal(r.stdout, '');
}

test('usage errors: unknown option, missing command, missing values, bad port, stray -c args', () => {
  userError(['--bogus', '--', 'true'], /unknown option --bogus/);
  userError([], /missing command/);
  userError(['--debug'], /missing command/);
  userError(['--'], /missing command/);
  userError(['--allow-write'], /--allow-write needs a value/);
  userError(['-p', '70000', '--', 'true'], /invalid port '70000'/);
  userError(['--publish=abc', '--', 'true'], /invalid port 'abc'/);
  userError(['-c', 'true', 'extra'], /-c takes one shell string/);
  userError(['--json', '--', 'true'], /--json is an option of/);
  userError(['explain'], /missing command/);
  userError(['doctor', '--nope'], /doctor: unknown option --nope/);
});

test('settings errors name the file and the key path', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 's.json');
    userError(['--settings', join(dir, 'missing.json'), '--', 'true'], /missing\.json: settings file does not exist/);
    writeFileSync(f, '{"filesystem": {"allowWrite": [".", 3]}}');
    userError(['--settings', f, '--', 'true'], new RegExp(`${f.replace(/[.]/g, '\\.')}: filesystem\\.allowWrite\\[1\\]`));
    writeFileSync(f, '{"network": {"allowedDomains": ["*.com"]}}');
    userError(['--settings', f, '--', 'true'], /network\.allowedDomains\[0\]/);
    writeFileSync(f, '{"filesystem": {"denyread": []}}');
    userError(['--settings', f, '--', 'true'], /filesystem: unknown key "denyread"/);
    writeFileSync(f, '{oops');
    userError(['--settings', f, '--', 'true'], /not valid JSON/);
    userError(['--allow-net', '*', '--', 'true'], /allowedDomains/);
    // Invalid files found by lookup are errors too (never a silent fallback).
    const home = join(dir, 'home');
    mkdirSync(home);
    writeFileSync(join(home, '.srt-settings.json'), '{"nope": 1}');
    userError(['--', 'true'], /\.srt-settings\.json: \(root\): unknown key "nope"/, { env: { PATH: process.env.PATH, HOME: home }, cwd: dir });
  } finally {
    cleanup();
  }
});

test('--version and --help exit 0 on stdout', () => {
  const v = cordon(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^cordon \d+\.\d+\.\d+/);
  const h = cordon(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /usage: cordon/);
});

test('explain prints the plan and the launcher command line without running anything', () => {
  const { dir, cleanup } = tempDir();
  try {
    const marker = join(dir, 'ran');
    const r = cordon(['explain', '--deny-read', '/opt', '--', 'touch', marker], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(marker), 'explain ran the command');
    for (const s of ['filesystem, in order', 'read-only   /', `writable    ${dir}`, 'environment:', 'CORDON_SANDBOX=1', 'network:', 'layers:', 'cordon-launcher run'])
      assert.ok(r.stdout.includes(s), `missing "${s}" in:\n${r.stdout}`);
    const j = cordon(['explain', '--json', '--allow-net', 'example.com', '--', 'true'], { cwd: dir });
    assert.equal(j.code, 0, j.stderr);
    const plan = JSON.parse(j.stdout);
    assert.equal(plan.network.mode, 'proxy');
    assert.deepEqual(plan.argv, ['true']);
    assert.equal(plan.env.HTTPS_PROXY, 'http://localhost:3128');
  } finally {
    cleanup();
  }
});

test(`exit status is the command's, or 128+N for signal N (${WHO})`, () => {
  const { dir, cleanup } = tempDir();
  try {
    const o = { cwd: dir };
    assert.equal(cordon(['--', '/bin/true'], o).code, 0);
    assert.equal(cordon(['--', '/bin/sh', '-c', 'exit 7'], o).code, 7);
    assert.equal(cordon(['-c', 'exit 200'], o).code, 200);
    assert.equal(cordon(['-c', 'kill -TERM $$'], o).code, 143);
    assert.equal(cordon(['-c', 'kill -KILL $$'], o).code, 137);
    const out = cordon(['--', '/bin/echo', '--debug', '-c', 'x'], o);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, '--debug -c x\n', 'options after the command belong to it');
    const nf = cordon(['--', '/nonexistent/cmd'], o);
    assert.equal(nf.code, 127, nf.stderr);
  } finally {
    cleanup();
  }
});

test(`doctor renders the launcher probe; --json passes it through (${WHO})`, () => {
  const j = cordon(['doctor', '--json']);
  const report = JSON.parse(j.stdout);
  assert.match(report.launcherVersion, /^cordon-launcher /);
  const rows = Object.entries(report).filter(([, v]) => v && typeof v === 'object' && 'ok' in v);
  assert.ok(rows.length >= 5, j.stdout);
  for (const [name, row] of rows) assert.equal(typeof row.ok, 'boolean', name);
  // Exit 0 means a real default sandbox ran, not that every optional layer works.
  assert.equal(report.sandbox_run.ok, true, JSON.stringify(report.sandbox_run));
  assert.equal(j.code, report.sandbox_ok && report.sandbox_run.ok ? 0 : 1);
  assert.equal(j.code, 0, 'this machine runs sandboxes (the rest of the suite depends on it)');
  assert.equal(report.uid, process.getuid());
  const t = cordon(['doctor']);
  assert.equal(t.code, j.code);
  assert.match(t.stdout, /^launcher: /);
  for (const [name] of rows) assert.ok(t.stdout.includes(name), name);
});

test(`--debug prints the plan on stderr and still runs the command (${WHO})`, () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = cordon(['--debug', '--', '/bin/echo', 'hello'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello\n');
    assert.match(r.stderr, /filesystem, in order/);
    assert.match(r.stderr, /cordon-launcher run/);
  } finally {
    cleanup();
  }
});

test('unreadable settings and an empty command name are user errors', () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'adir'));
    userError(['--settings', join(dir, 'adir'), '--', 'true'], /adir: cannot read settings \(EISDIR\)/);
    userError(['--', ''], /empty command name/);
  } finally {
    cleanup();
  }
});

test(`a sandbox that cannot be set up exits 125 with one launcher line (${WHO})`, () => {
  const { dir, cleanup } = tempDir();
  try {
    const s = join(dir, 's.json');
    // The working directory hidden and not writable: the launcher cannot chdir.
    writeFileSync(s, JSON.stringify({ filesystem: { allowWrite: [], denyRead: [dir] } }));
    const r = cordon(['--settings', s, '--', '/bin/true'], { cwd: dir });
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr.trim(), /^cordon-launcher: chdir /);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  } finally {
    cleanup();
  }
});
