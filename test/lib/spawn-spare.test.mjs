// The spawn server client opens the next run's connections ahead of time
// (stdout, stderr and request, hellos sent). Checked here: such a set never
// keeps the host alive, close() leaves none open, a server that died with a
// set open fails the next run cleanly (never hangs, never reaches anything
// but the dead server) and the run after gets a new server, and back-to-back
// and overlapping runs each get their own streams.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, CordonError } from '../../dist/index.js';
import { tempDir, WHO, ROOT, until, spawnServers } from '../helpers.mjs';

const work = tempDir('cordon-spare-test-');
after(() => work.cleanup());

const socketFds = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;


const servers = spawnServers;

test(`close() leaves none of the spare connections open (${WHO})`, async () => {
  const before = socketFds();
  const sb = await Sandbox.create({ filesystem: { allowWrite: [work.dir] } }, { cwd: work.dir });
  for (let i = 0; i < 3; i++) assert.equal((await sb.run(['echo', String(i)])).stdout, `${i}\n`);
  // Let the next run's set connect.
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(socketFds() >= before + 3, 'a spare set is open between runs');
  await sb.close();
  assert.ok(await until(() => socketFds() === before), `socket descriptors back to ${before} after close (now ${socketFds()})`);
});

test(`an unused spare set does not keep the host process alive (${WHO})`, async () => {
  const script = `
    const { Sandbox } = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
    const sb = await Sandbox.create({}, { cwd: ${JSON.stringify(work.dir)} });
    const r = await sb.run(['echo', 'ran']);
    process.stdout.write(r.stdout);
    // No close(): the host must still end on its own.
  `;
  const host = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  host.stdout.on('data', (d) => (out += d));
  const timer = setTimeout(() => host.kill('SIGKILL'), 10_000);
  const [code, signal] = await new Promise((res) => host.once('close', (c, s) => res([c, s])));
  clearTimeout(timer);
  assert.equal(out, 'ran\n');
  assert.deepEqual([code, signal], [0, null], 'the host exited by itself');
});

test(`a server killed while idle: the next run fails cleanly or gets a new server, never hangs; the run after works (${WHO})`, async () => {
  const sb = await Sandbox.create({ filesystem: { allowWrite: [work.dir] } }, { cwd: work.dir });
  try {
    for (let round = 0; round < 3; round++) {
      await sb.run(['true']);
      await new Promise((r) => setTimeout(r, 30)); // the spare set is connected
      const mine = servers();
      assert.equal(mine.length, 1, 'one server');
      process.kill(mine[0], 'SIGKILL');
      // Right away: the host may not have seen the death yet.
      const first = await Promise.race([
        sb.run(['echo', 'x']).then(
          (r) => r,
          (e) => e,
        ),
        new Promise((r) => setTimeout(() => r('hung'), 10_000)),
      ]);
      assert.notEqual(first, 'hung', 'the run settled');
      if (first instanceof Error) assert.ok(first instanceof CordonError && /spawn server ended/.test(first.message), `a clear error: ${first.message}`);
      else assert.equal(first.stdout, 'x\n', 'or it ran on a new server');
      const next = await sb.run(['echo', 'again']);
      assert.equal(next.stdout, 'again\n');
      const now = servers();
      assert.equal(now.length, 1);
      assert.notEqual(now[0], mine[0], 'a new server');
    }
  } finally {
    await sb.close();
  }
});

test(`back-to-back and overlapping runs each get their own streams (${WHO})`, async () => {
  const sb = await Sandbox.create({ filesystem: { allowWrite: [work.dir] } }, { cwd: work.dir });
  try {
    for (let i = 0; i < 30; i++) {
      const r = await sb.run(['sh', '-c', `echo out${i}; echo err${i} >&2; exit ${i % 4}`], i % 3 === 0 ? { input: `in${i}` } : {});
      assert.deepEqual([r.stdout, r.stderr, r.code], [`out${i}\n`, `err${i}\n`, i % 4]);
    }
    // Started in one tick: only the first can have the spare set.
    const many = await Promise.all(Array.from({ length: 12 }, (_, i) => sb.run(['sh', '-c', `cat; echo err${i} >&2`], i % 2 ? { input: `in${i}\n` } : {})));
    many.forEach((r, i) => assert.deepEqual([r.stdout, r.stderr, r.code], [i % 2 ? `in${i}\n` : '', `err${i}\n`, 0]));
  } finally {
    await sb.close();
  }
});

test(`the request carries any argument intact: ASCII, non-ASCII, lone surrogates, lengths past one and two bytes; a NUL byte is refused (${WHO})`, async () => {
  const sb = await Sandbox.create({ filesystem: { allowWrite: [work.dir] } }, { cwd: work.dir });
  try {
    const long = 'a'.repeat(70_000);
    const mid = 'b'.repeat(300);
    // printf %s with each argument on its own line: what the command got.
    const show = ['sh', '-c', 'for a in "$@"; do printf "%s\\n" "$a"; done; printf "%s\\n" "$X"', 'sh'];
    const ascii = await sb.run([...show, 'plain', mid, long, ''], { env: { X: 'ascii-env', PATH: '/usr/bin:/bin' } });
    assert.equal(ascii.stdout, `plain\n${mid}\n${long}\n\nascii-env\n`);
    const wide = await sb.run([...show, 'grüße', '日本語', mid, long], { env: { X: 'é\u{1F600}', PATH: '/usr/bin:/bin' } });
    assert.equal(wide.stdout, `grüße\n日本語\n${mid}\n${long}\né\u{1F600}\n`);
    // A lone surrogate has no UTF-8 form: it becomes U+FFFD, as child_process.spawn makes it.
    const lone = await sb.run([...show, 'x\ud800y'], { env: { X: '', PATH: '/usr/bin:/bin' } });
    assert.equal(lone.stdout, 'x\ufffdy\n\n');
    await assert.rejects(sb.run(['true'], { env: { X: 'a\0b' } }), (e) => e instanceof CordonError && /NUL/.test(e.message));
    // The refused request used no spare set: the next run works.
    assert.equal((await sb.run(['echo', 'ok'])).stdout, 'ok\n');
  } finally {
    await sb.close();
  }
});
