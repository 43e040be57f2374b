// The srt-compatible SandboxManager: wrapWithSandbox strings spawned with
// { shell: true } exactly as srt's README shows, as root and unprivileged.
// Network behaviour is in network.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxManager, SandboxViolationStore, SandboxRuntimeConfigSchema, PolicyError, NotInitializedError } from '../../dist/index.js';
import { tempDir, WHO, LAUNCHER } from '../helpers.mjs';

function sh(wrapped, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(wrapped, { shell: true, stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

let work;
before(() => {
  work = tempDir('cordon-mgr-');
});
after(async () => {
  await SandboxManager.reset();
  work?.cleanup();
});

test(`before initialize: not enabled, wrap refuses, defaults answer (${WHO})`, async () => {
  assert.equal(SandboxManager.isSupportedPlatform(), true);
  assert.equal(SandboxManager.isSandboxingEnabled(), false);
  assert.equal(SandboxManager.getConfig(), undefined);
  assert.deepEqual(SandboxManager.getNetworkRestrictionConfig(), {});
  assert.deepEqual(SandboxManager.getFsReadConfig(), { denyOnly: [], allowWithinDeny: [] });
  assert.ok(SandboxManager.getFsWriteConfig().allowOnly.includes('/tmp'));
  await assert.rejects(SandboxManager.wrapWithSandbox('true'), NotInitializedError);
  const deps = SandboxManager.checkDependencies();
  assert.deepEqual(deps.errors, []);
  assert.equal(SandboxManager.askCallbackDenyReason, true);
  assert.equal(typeof SandboxRuntimeConfigSchema.parse, 'function');
  await assert.rejects(SandboxManager.initialize({ filesystem: { allowWrite: 7 } }), PolicyError);
  assert.equal(SandboxManager.isSandboxingEnabled(), false);
});

test('initialize, wrap, spawn with shell:true: echo, exit codes, signals, stdin', async () => {
  await SandboxManager.initialize({ filesystem: { denyRead: [], allowWrite: [work.dir], denyWrite: [] } });
  assert.equal(SandboxManager.isSandboxingEnabled(), true);
  const wrapped = await SandboxManager.wrapWithSandbox('echo "hi $CORDON_SANDBOX" && echo oops >&2');
  assert.ok(wrapped.startsWith('exec ' + (LAUNCHER.includes("'") ? "'" : LAUNCHER)), wrapped.slice(0, 80));
  assert.doesNotMatch(wrapped, /bwrap|socat/);
  // stdin from a file, not a socket: bash, srt's default shell, runs the
  // user's ~/.bashrc when its stdin is a socket (its rshd/sshd heuristic; a
  // Node 'pipe' is a socketpair), and whatever that prints (pyenv's rehash
  // warning on this machine) is not the command's stderr.
  const r = await sh(wrapped, { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hi 1\n');
  assert.equal(r.stderr, 'oops\n');

  for (const n of [1, 42]) assert.equal((await sh(await SandboxManager.wrapWithSandbox(`exit ${n}`))).code, n);
  // srt exits 0 when the command dies of a signal; cordon reports 128+N.
  assert.equal((await sh(await SandboxManager.wrapWithSandbox('kill -9 $$'))).code, 137);

  const q = await sh(await SandboxManager.wrapWithSandbox(`printf '%s\\n' 'a!b' "\\$HOME" '"q"'; cat`), { input: 'from stdin' });
  assert.equal(q.stdout, 'a!b\n$HOME\n"q"\nfrom stdin');

  // The caller's spawn environment reaches the command (as with srt).
  const e = await sh(await SandboxManager.wrapWithSandbox('echo "$MY_VAR"'), { env: { ...process.env, MY_VAR: 'passed' } });
  assert.equal(e.stdout, 'passed\n');
  // The command starts where the caller spawns it (srt: bwrap keeps the cwd).
  const w = await sh(await SandboxManager.wrapWithSandbox('pwd'), { cwd: '/usr' });
  assert.equal(w.stdout, '/usr\n');
  // binShell
  const b = await sh(await SandboxManager.wrapWithSandbox('echo "$0"', 'sh'));
  assert.match(b.stdout, /\/sh\n$/);
  await assert.rejects(SandboxManager.wrapWithSandbox('true', 'no-such-shell-xyz'), /no-such-shell-xyz/);
});

test('writes: allowWrite allowed, elsewhere denied, customConfig replaces for one wrap', async () => {
  const outside = tempDir('cordon-mgr-ro-');
  try {
    const inside = join(work.dir, 'f');
    const target = join(outside.dir, 'g');
    assert.equal((await sh(await SandboxManager.wrapWithSandbox(`echo ok > ${inside}`))).code, 0);
    assert.equal(readFileSync(inside, 'utf8'), 'ok\n');
    const d = await sh(await SandboxManager.wrapWithSandbox(`echo no > ${target}`));
    assert.notEqual(d.code, 0);
    assert.equal(existsSync(target), false);
    const w = await sh(await SandboxManager.wrapWithSandbox(`echo yes > ${target}`, undefined, { filesystem: { allowWrite: [outside.dir], denyWrite: [], denyRead: [] } }));
    assert.equal(w.code, 0, w.stderr);
    assert.equal(readFileSync(target, 'utf8'), 'yes\n');
    // The replacement held for that wrap only.
    const again = await sh(await SandboxManager.wrapWithSandbox(`echo again > ${target}`));
    assert.notEqual(again.code, 0);
    // And it replaced: the session's allowWrite did not apply to that wrap.
    const repl = await sh(await SandboxManager.wrapWithSandbox(`echo x > ${inside}2`, undefined, { filesystem: { allowWrite: [outside.dir] } }));
    assert.notEqual(repl.code, 0);
    assert.equal(existsSync(`${inside}2`), false);
  } finally {
    outside.cleanup();
  }
});

test('wrapWithSandboxArgv spawns without a host shell; abortSignal', async () => {
  const { argv, env } = await SandboxManager.wrapWithSandboxArgv('echo "$1-argv"', undefined, undefined, undefined, work.dir);
  const r = await new Promise((resolve) => {
    const c = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(r.code, 0);
  assert.equal(r.out, '-argv\n');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(SandboxManager.wrapWithSandbox('true', undefined, undefined, ac.signal), (e) => e.name === 'AbortError');
});

test('20 concurrent wrapped commands: no cross-talk', async () => {
  const rs = await Promise.all(
    // No shared writable dir (see concurrency.test.mjs for that case).
    Array.from({ length: 20 }, async (_, i) =>
      sh(await SandboxManager.wrapWithSandbox(`for j in 1 2 3 4 5; do echo c${i}-$j; done; exit ${i}`, undefined, { filesystem: { allowWrite: [] } }, undefined, { commandId: `id-${i}` })),
    ),
  );
  rs.forEach((r, i) => {
    assert.equal(r.stdout, [1, 2, 3, 4, 5].map((j) => `c${i}-${j}`).join("\n") + "\n", `command ${i}: code ${r.code} stderr ${r.stderr}`);
    assert.equal(r.code, i);
  });
});

test('config getters and updateConfig', async () => {
  const cfg = SandboxManager.getConfig();
  assert.deepEqual(cfg.filesystem.allowWrite, [work.dir]);
  assert.deepEqual(SandboxManager.getFsWriteConfig().denyWithinAllow, []);
  assert.ok(SandboxManager.getFsWriteConfig().allowOnly.includes(work.dir));
  SandboxManager.updateConfig({ filesystem: { allowWrite: [], denyRead: [join(work.dir, 'secret')] } });
  assert.deepEqual(SandboxManager.getFsReadConfig().denyOnly, [join(work.dir, 'secret')]);
  // Filesystem changes apply to the next wrap (srt needs reset+initialize).
  const d = await sh(await SandboxManager.wrapWithSandbox(`echo z > ${join(work.dir, 'z')}`));
  assert.notEqual(d.code, 0);
  assert.equal(existsSync(join(work.dir, 'z')), false);
  assert.throws(() => SandboxManager.updateConfig({ network: { allowedDomains: ['bad host'] } }), PolicyError);
  SandboxManager.updateConfig({ filesystem: { allowWrite: [work.dir] } });
});

test('violation store and annotateStderrWithSandboxFailures use srt\'s format', () => {
  const store = SandboxManager.getSandboxViolationStore();
  assert.ok(store instanceof SandboxViolationStore);
  const before = store.getTotalCount();
  store.addViolation({ line: 'deny network-outbound evil.test:443 (host is not on the allow list)', commandId: 'cmd-A', timestamp: new Date() });
  assert.equal(store.getTotalCount(), before + 1);
  const annotated = SandboxManager.annotateStderrWithSandboxFailures('cmd-A', 'curl: (56) CONNECT tunnel failed');
  assert.equal(annotated, 'curl: (56) CONNECT tunnel failed\n<sandbox_violations>\ndeny network-outbound evil.test:443 (host is not on the allow list)\n</sandbox_violations>');
  assert.equal(SandboxManager.annotateStderrWithSandboxFailures('cmd-B', 'x'), 'x');
});

test('registerCommandNetworkLists validates like srt', () => {
  assert.throws(() => SandboxManager.registerCommandNetworkLists('short', { allowedDomains: [] }), /22/);
  assert.throws(() => SandboxManager.registerCommandNetworkLists('a'.repeat(22), { allowedDomains: ['bad host'] }), PolicyError);
  SandboxManager.registerCommandNetworkLists('b'.repeat(22), { allowedDomains: ['example.com'] });
  SandboxManager.unregisterCommandNetworkLists('b'.repeat(22));
  SandboxManager.unregisterCommandNetworkLists('never-registered');
});

test('reset(): running sandboxes die with their caller, manager is uninitialized', async () => {
  const child = spawn(await SandboxManager.wrapWithSandbox('sleep 1000'), { shell: true, stdio: 'ignore' });
  await SandboxManager.reset();
  assert.equal(SandboxManager.isSandboxingEnabled(), false);
  await assert.rejects(SandboxManager.wrapWithSandbox('true'), NotInitializedError);
  // A wrapped command belongs to whoever spawned it (as with srt): killing
  // that process tree ends the sandbox.
  child.kill('SIGKILL');
  await new Promise((r) => child.once('close', r));
  // Re-initialize works after reset.
  await SandboxManager.initialize({ filesystem: { allowWrite: [work.dir] } });
  assert.equal((await sh(await SandboxManager.wrapWithSandbox('echo again'))).stdout, 'again\n');
  await SandboxManager.reset();
});

test('reset() while initialize() runs: that initialize does not install itself', async () => {
  const pending = SandboxManager.initialize({ filesystem: { allowWrite: [work.dir] } });
  const outcome = pending.then(() => 'installed', (e) => e.message);
  await SandboxManager.reset();
  assert.match(await outcome, /cancelled by reset/);
  assert.equal(SandboxManager.isSandboxingEnabled(), false);
  await SandboxManager.initialize({ filesystem: { allowWrite: [work.dir] } });
  assert.equal(SandboxManager.isSandboxingEnabled(), true);
  await SandboxManager.reset();
});
