// Faults: kill -9 of each part of a running sandbox (the launcher, PID 1
// inside, each helper process: relay / egress) and of the cordon CLI, at
// random moments while the command moves traffic through the proxies. The
// run ends, nothing of the sandbox survives (no process of our private
// launcher copy), no file is left on the host, and the next sandbox works.
// Plus the resource story: a process storm inside ends with the timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync, writeFileSync, mkdirSync, utimesSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, WHO, tempDir, have, LAUNCHER, spawnServers } from '../helpers.mjs';
import { privateLauncher, sandboxProcesses, isSpawnServer, isKeptRelay, childrenOf, launcherProcesses, until, listing, tree, survivors } from './observe.mjs';

let tmp, bin, origin, P, priv, work, Sandbox, sb;
const ourNet = readlinkSync('/proc/self/ns/net');
// Seeded from the clock; printed so a failure can be replayed by reading it.
let seed = (Date.now() % 100000) + 1;
const rand = (n) => ((seed = (seed * 48271) % 2147483647), seed % n);

before(async () => {
  tmp = tempDir('cordon-faults-');
  bin = privateLauncher(LAUNCHER);
  process.env.CORDON_LAUNCHER = bin.path;
  priv = join(tmp.dir, 'tmp');
  work = join(tmp.dir, 'work');
  mkdirSync(priv, { mode: 0o755 });
  mkdirSync(work, { mode: 0o755 });
  // Session dirs of this file go to a private temp dir (os.tmpdir() reads
  // TMPDIR on every call), so "no file left" is checked exactly.
  process.env.TMPDIR = priv;
  origin = http.createServer((req, res) => {
    res.write('x'.repeat(4096));
    setTimeout(() => res.end('end'), 5);
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  P = origin.address().port;
  ({ Sandbox } = await import(join(ROOT, 'dist', 'index.js')));
  sb = await Sandbox.create({ network: { allowedDomains: [`127.0.0.1:${P}`] } }, { cwd: work });
});
after(async () => {
  await sb?.close();
  origin?.closeAllConnections?.();
  origin?.close();
  tmp?.cleanup();
  if (bin) rmSync(bin.dir, { recursive: true, force: true });
});

// Traffic in a loop: forwarded port, HTTP CONNECT, SOCKS5, absolute-form
// HTTP. Each curl has its own time bound, so a connection that hangs after
// a kill shows up as a run that does not end before the test's timeout.
const C = 'curl -s -o /dev/null --max-time 5';
const loop = (n) =>
  `i=0; while [ $i -lt ${n} ]; do ` +
  `${C} http://127.0.0.1:${P}/a; ` +
  `${C} --noproxy '' -p -x http://127.0.0.1:3128 http://127.0.0.1:${P}/b; ` +
  `${C} --noproxy '' -x socks5h://127.0.0.1:1080 http://127.0.0.1:${P}/c; ` +
  `${C} --noproxy '' -x http://127.0.0.1:3128 http://127.0.0.1:${P}/d; ` +
  `i=$((i+1)); done; echo finished`;

const status = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8');
/** The parts of one running sandbox, by role (from /proc/PID/stat and
 *  status, readable by any user: the helpers are non-dumpable). */
function parts(launcherPid) {
  const all = tree(launcherPid);
  const out = { launcher: launcherPid, pid1: undefined, helpers: [], all };
  for (const p of all) {
    if (p.ppid !== launcherPid) continue;
    try {
      if (/NSpid:\s+\d+\s+1\s*$/m.test(status(p.pid))) out.pid1 = p.pid;
      else {
        let net = 'unknown'; // readable as root only (non-dumpable)
        try {
          net = readlinkSync(`/proc/${p.pid}/ns/net`) === ourNet ? 'host' : 'sandbox';
        } catch {}
        out.helpers.push({ pid: p.pid, net });
      }
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

async function nextWorks() {
  const r = await sb.run(`curl -sS http://127.0.0.1:${P}/ok | tail -c 3`, { timeout: 20_000 });
  assert.equal(r.stdout, 'end', `the next sandbox works: ${r.code} ${r.stderr}`);
}

async function noLeftovers(what, procs = []) {
  // Our own tree only: orphaned launchers of other test files running in
  // parallel (same uid) must not fail this one.
  const gone = await until(() => sandboxProcesses(bin.path).length === 0 && survivors(procs).length === 0, 5000);
  assert.ok(gone, `${what}: processes left: ${JSON.stringify([sandboxProcesses(bin.path), survivors(procs)])}`);
  // Only the live session's own dir and socket.
  const left = listing(priv).filter((p) => !/^cordon-(net|spawn)-[A-Za-z0-9]{6}(\/(relay|spawn)\.sock)?$/.test(p));
  assert.deepEqual(left, [], `${what}: files left in the temp dir`);
  assert.equal(listing(priv).filter((p) => p.endsWith('relay.sock')).length, 1, `${what}: exactly the live session's socket`);
  assert.deepEqual(listing(work), [], `${what}: files left in the working dir`);
}

for (const [role, rounds] of [['launcher', 2], ['pid1', 2], ['helper', 4]]) {
  test(`kill -9 of the ${role} at a random moment during traffic: the run ends, nothing survives, next works (${WHO})`, async (t) => {
    if (!have('curl')) return t.skip('curl is not installed');
    const killed = [];
    for (let round = 0; round < rounds; round++) {
      const child = await sb.spawnAsync(loop(30), { timeout: 25_000 });
      child.stdout.resume();
      child.stderr.resume();
      const delay = 150 + rand(400);
      await new Promise((r) => setTimeout(r, delay));
      const p = parts(child.pid);
      let victim;
      if (role === 'launcher') victim = p.launcher;
      else if (role === 'pid1') victim = p.pid1;
      else if (p.helpers.length) {
        // Rounds cycle through the helpers (relay, egress, ...).
        const h = p.helpers[round % p.helpers.length];
        victim = h.pid;
        killed.push(h.net);
      }
      assert.ok(victim, `seed ${seed}: no ${role} found among ${JSON.stringify(p)}`);
      process.kill(victim, 'SIGKILL');
      const r = await child.result;
      assert.ok(!r.timedOut, `seed ${seed}: the run ended by itself (${role} killed after ${delay} ms)`);
      await noLeftovers(`${role} round ${round}`, p.all);
    }
    if (killed.length) t.diagnostic(`helpers killed (netns): ${killed.join(' ')}`);
    await nextWorks();
  });
}

test(`kill -9 of the kept relays during traffic: the run ends, their namespaces are not lent again, next works (${WHO})`, async (t) => {
  if (!have('curl')) return t.skip('curl is not installed');
  // sb.run goes through the spawn server, which lends a namespace with a
  // relay of its own (launcher/src/netslot.rs).
  await sb.run('true');
  const [server] = spawnServers();
  assert.ok(server, 'the sandbox has a spawn server');
  for (let round = 0; round < 2; round++) {
    const running = sb.run(`readlink /proc/self/ns/net; ${loop(30)}`, { timeout: 25_000 });
    const delay = 150 + rand(400);
    await new Promise((r) => setTimeout(r, delay));
    const relays = childrenOf(server).filter(isKeptRelay);
    assert.ok(relays.length > 0, `seed ${seed}: no kept relay`);
    for (const pid of relays) process.kill(pid, 'SIGKILL');
    const r = await running;
    assert.ok(!r.timedOut, `seed ${seed}: the run ended by itself (relays killed after ${delay} ms)`);
    const used = r.stdout.split('\n')[0];
    await noLeftovers(`kept relay round ${round}`);
    const next = await sb.run('readlink /proc/self/ns/net');
    assert.notEqual(next.stdout.trim(), used, 'a namespace whose relay died is dropped');
  }
  await nextWorks();
});

test(`kill -9 of the cordon CLI: the sandbox dies with it; its stale session dir is swept by the next session (${WHO})`, async (t) => {
  if (!have('curl')) return t.skip('curl is not installed');
  const settings = join(tmp.dir, 'settings.json');
  writeFileSync(settings, JSON.stringify({ network: { allowedDomains: [`127.0.0.1:${P}`] } }));
  const before = new Set(readdirSync(priv));
  const c = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), '--settings', settings, '-c', loop(100)], {
    cwd: work,
    env: { ...process.env, TMPDIR: priv, CORDON_LAUNCHER: bin.path },
    stdio: 'ignore',
  });
  const started = await until(() => tree(c.pid).length >= 4, 10_000);
  assert.ok(started, 'the CLI started a sandbox');
  await new Promise((r) => setTimeout(r, 100 + rand(300)));
  const procs = tree(c.pid).filter((p) => p.pid !== c.pid);
  c.kill('SIGKILL');
  await new Promise((r) => c.on('close', r));
  assert.ok(await until(() => survivors(procs).length === 0, 5000), `processes left: ${JSON.stringify(survivors(procs))}`);
  // A SIGKILLed process cannot clean up: its 0700 session dir and dead
  // relay socket stay until the next session sweeps stale ones (older than
  // a grace period; age it instead of waiting).
  const stale = readdirSync(priv).filter((n) => !before.has(n));
  assert.equal(stale.length, 1, `the CLI's session dir: ${stale}`);
  const old = new Date(Date.now() - 120_000);
  utimesSync(join(priv, stale[0]), old, old);
  const sb2 = await Sandbox.create({ network: { allowedDomains: [`127.0.0.1:${P}`] } }, { cwd: work });
  try {
    assert.ok(await until(() => !readdirSync(priv).includes(stale[0]), 5000), 'stale session dir swept');
    // The live sessions (ours and sb2) keep theirs: a listening socket is never stale.
    const r = await sb2.run(`curl -sS http://127.0.0.1:${P}/x | tail -c 3`);
    assert.equal(r.stdout, 'end');
  } finally {
    await sb2.close();
  }
  await noLeftovers('after the CLI kill');
  await nextWorks();
});

test(`a process storm inside ends with the timeout: every process of the sandbox is gone, the host is unaffected (${WHO})`, async () => {
  // 300 sleepers and a busy loop: bounded on purpose (cordon sets no pids
  // limit, see docs/reliability.md; a real fork bomb would hit the host's
  // pid_max, shared with every other process).
  const child = await sb.spawnAsync('for i in $(seq 300); do sleep 60 & done; while :; do :; done', { timeout: 3000 });
  child.stdout.resume();
  child.stderr.resume();
  let procs = [];
  const many = await until(() => (procs = tree(child.pid)).length >= 200, 2500, 100);
  const r = await child.result;
  assert.ok(r.timedOut, 'the timeout ended it');
  assert.ok(many, 'the storm really ran (>= 200 processes in the sandbox pid namespace)');
  await noLeftovers('after the storm', procs);
});
