// The modern library API (Sandbox) end to end: real sandboxes, real
// commands, results checked on the host. No network here (see network.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, PolicyError, SandboxClosedError, AbortError, CordonError } from '../../dist/index.js';
import { tempDir, WHO, alive } from '../helpers.mjs';

let work, sb;
before(async () => {
  work = tempDir('cordon-lib-');
  sb = await Sandbox.create({ filesystem: { allowWrite: [work.dir] } }, { cwd: work.dir });
});
after(async () => {
  await sb?.close();
  work?.cleanup();
});

test(`echo round trip, argv and shell string (${WHO})`, async () => {
  const a = await sb.run(['echo', 'hello', 'wor ld', "it's"]);
  assert.equal(a.code, 0);
  assert.equal(a.signal, null);
  assert.equal(a.stdout, "hello wor ld it's\n");
  assert.equal(a.stderr, '');
  assert.deepEqual(a.violations, []);
  const b = await sb.run('printf "%s|" "$0" a!b; echo out; echo err >&2');
  assert.equal(b.stdout, '/bin/sh|a!b|out\n');
  assert.equal(b.stderr, 'err\n');
  assert.match(b.commandId, /\S/);
});

test('exit codes and signals are the command\'s', async () => {
  for (const n of [0, 1, 42, 255]) {
    const r = await sb.run(`exit ${n}`);
    assert.equal(r.code, n, `exit ${n}`);
    assert.equal(r.signal, null);
  }
  const k = await sb.run('kill -9 $$');
  assert.equal(k.code, 137);
  assert.equal(k.signal, 'SIGKILL');
  const t = await sb.run('kill -TERM $$');
  assert.equal(t.code, 143);
  assert.equal(t.signal, 'SIGTERM');
  // An exit code above 128 is not mistaken for a signal.
  const h = await sb.run('exit 130');
  assert.equal(h.code, 130);
  assert.equal(h.signal, null);
  const nf = await sb.run(['/nonexistent/program']);
  assert.equal(nf.code, 127);
  assert.match(nf.stderr, /nonexistent/);
});

test('stdin: input is delivered and closed; no input means EOF', async () => {
  const r = await sb.run(['sh', '-c', 'cat; echo "<eof>"'], { input: 'line1\nline2\n' });
  assert.equal(r.stdout, 'line1\nline2\n<eof>\n');
  const big = 'x'.repeat(1 << 20);
  const b = await sb.run(['wc', '-c'], { input: big });
  assert.equal(b.stdout.trim(), String(big.length));
  const e = await sb.run(['cat']);
  assert.equal(e.code, 0);
  assert.equal(e.stdout, '');
  // The command exits without reading: no EPIPE surfaces.
  const n = await sb.run(['true'], { input: big });
  assert.equal(n.code, 0);
});

test('environment and working directory', async () => {
  const r = await sb.run('echo "$FOO|$CORDON_SANDBOX|$(pwd)"', { env: { PATH: process.env.PATH, FOO: 'bar' } });
  assert.equal(r.stdout, `bar|1|${work.dir}\n`);
  const c = await sb.run(['pwd'], { cwd: '/' });
  assert.equal(c.stdout, '/\n');
});

test('abort signal kills the sandbox and rejects with AbortError', async () => {
  const ac = new AbortController();
  const child = await sb.spawnAsync(['sleep', '1000'], { signal: ac.signal });
  // Wait until the command really runs, then abort.
  await waitFor(() => child.launchInfo.childPid !== undefined);
  const pid = child.launchInfo.childPid;
  ac.abort();
  await assert.rejects(child.result, (e) => e instanceof AbortError && e.result?.signal === 'SIGKILL');
  await waitFor(() => !alive(pid));
  assert.equal(alive(pid), false);
  // Already aborted: nothing is started.
  await assert.rejects(sb.run(['true'], { signal: ac.signal }), AbortError);
});

test('timeout kills the sandbox and reports timedOut', async () => {
  const child = await sb.spawnAsync(['sh', '-c', 'sleep 1000 & sleep 1000'], { timeout: 300 });
  const r = await child.result;
  assert.equal(r.timedOut, true);
  assert.equal(r.code, null);
  assert.equal(r.signal, 'SIGKILL');
  // On a slow machine the timer may fire before the command started at all.
  const pid = child.launchInfo.childPid;
  if (pid !== undefined) await waitFor(() => !alive(pid));
  const fast = await sb.run(['true'], { timeout: 60_000 });
  assert.equal(fast.timedOut, false);
  assert.equal(fast.code, 0);
});

test('20 concurrent commands: no cross-talk of stdout, stderr or status', async () => {
  // Nothing writable shared between them: concurrent placeholders for
  // protected paths in a shared writable dir are concurrency.test.mjs's subject.
  const ro = await Sandbox.create({}, { cwd: work.dir });
  const runs = Array.from({ length: 20 }, (_, i) =>
    ro.run(['sh', '-c', `i=0; while [ $i -lt 200 ]; do echo "cmd${i}-$i"; i=$((i+1)); done; echo "e${i}" >&2; exit ${i}`]),
  );
  const results = await Promise.all(runs).finally(() => ro.close());
  const ids = new Set();
  results.forEach((r, i) => {
    const want = Array.from({ length: 200 }, (_, j) => `cmd${i}-${j}`).join('\n') + '\n';
    assert.equal(r.stdout, want, `stdout of command ${i}`);
    assert.equal(r.stderr, `e${i}\n`);
    assert.equal(r.code, i);
    ids.add(r.commandId);
  });
  assert.equal(ids.size, 20);
});

test('writes outside allowWrite are denied and leave nothing on the host', async () => {
  const outside = tempDir('cordon-lib-ro-');
  try {
    const target = join(outside.dir, 'x');
    const r = await sb.run(['sh', '-c', `echo data > ${target}; echo rc=$?`]);
    assert.match(r.stdout, /rc=[1-9]/);
    assert.equal(existsSync(target), false);
    // Inside allowWrite: written.
    const ok = await sb.run(['sh', '-c', `echo data > ${join(work.dir, 'ok')}`]);
    assert.equal(ok.code, 0);
    assert.equal(readFileSync(join(work.dir, 'ok'), 'utf8'), 'data\n');
    // A per-command policy widens for that command only...
    const w = await sb.run(['sh', '-c', `echo more > ${target}`], { policy: { filesystem: { allowWrite: [outside.dir] } } });
    assert.equal(w.code, 0, w.stderr);
    assert.equal(readFileSync(target, 'utf8'), 'more\n');
    const again = await sb.run(['sh', '-c', `echo again > ${target}`]);
    assert.notEqual(again.code, 0);
    assert.equal(readFileSync(target, 'utf8'), 'more\n');
    // ...and narrows for that command only.
    writeFileSync(join(work.dir, 'keep'), 'orig');
    const n = await sb.run(['sh', '-c', `echo changed > ${join(work.dir, 'keep')}`], { policy: { filesystem: { denyWrite: [join(work.dir, 'keep')] } } });
    assert.notEqual(n.code, 0);
    assert.equal(readFileSync(join(work.dir, 'keep'), 'utf8'), 'orig');
  } finally {
    outside.cleanup();
  }
});

test('spawn: streams, kill and exit with the command\'s status', async () => {
  const child = await sb.spawnAsync(['sh', '-c', 'read line; echo "got $line"; exec sleep 1000']);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stdin.write('ping\n');
  await waitFor(() => out === 'got ping\n');
  const exit = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  child.kill('SIGTERM');
  const e = await exit;
  // The launcher forwards SIGTERM to the command and exits 128+15.
  assert.deepEqual(e, { code: 143, signal: null });
  const r = await child.result;
  assert.equal(r.signal, 'SIGTERM');
  assert.throws(() => sb.spawn(['true'], { stdio: ['pipe', 'pipe', 'pipe', 'ipc'] }), PolicyError);
});

test('typed errors: invalid policy, empty command, closed sandbox', async () => {
  await assert.rejects(Sandbox.create({ filesystem: { allowWrite: 'nope' } }), (e) => e instanceof PolicyError && /filesystem\.allowWrite/.test(e.message));
  await assert.rejects(Sandbox.create({ network: { allowedDomains: ['*'] } }), PolicyError);
  await assert.rejects(Sandbox.create({ bogus: 1 }), (e) => e instanceof PolicyError && /bogus/.test(e.message));
  await assert.rejects(sb.run([]), PolicyError);
  await assert.rejects(sb.run(''), PolicyError);
  await assert.rejects(sb.run(['true'], { policy: { network: { allowedDomains: ['bad host'] } } }), PolicyError);
  const other = await Sandbox.create({});
  await other.close();
  await assert.rejects(other.run(['true']), SandboxClosedError);
  assert.ok(new SandboxClosedError() instanceof CordonError);
});

test('close() kills running commands and leaves no process', async () => {
  const s2 = await Sandbox.create({}, { cwd: work.dir });
  const kids = await Promise.all([1, 2, 3].map(() => s2.spawnAsync(['sh', '-c', '(setsid sleep 1000 &); sleep 1000'])));
  await waitFor(() => kids.every((k) => k.launchInfo.childPid !== undefined));
  const pids = kids.map((k) => k.launchInfo.childPid).concat(kids.map((k) => k.pid));
  await s2.close();
  await s2.close(); // idempotent
  for (const k of kids) await k.result.catch(() => {});
  await waitFor(() => pids.every((p) => !alive(p)));
  for (const p of pids) assert.equal(alive(p), false, `pid ${p} survived close()`);
});

async function waitFor(cond, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the host process killed with SIGKILL takes its sandboxes with it', async () => {
  const script = `import { Sandbox } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
const sb = await Sandbox.create({});
const c = await sb.spawnAsync(['sleep', '1000'], { stdio: 'ignore' });
const t = setInterval(() => { if (c.launchInfo.childPid) { console.log(c.launchInfo.childPid); clearInterval(t); } }, 5);`;
  const { spawn } = await import('node:child_process');
  const host = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  host.stdout.on('data', (d) => (out += d));
  await waitFor(() => /\d+\n/.test(out));
  const pid = Number(out.trim());
  assert.equal(alive(pid), true);
  host.kill('SIGKILL');
  await waitFor(() => !alive(pid));
  assert.equal(alive(pid), false);
});
