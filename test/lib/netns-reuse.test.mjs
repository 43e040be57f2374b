// The spawn server lends each launcher a network namespace it keeps between
// commands (launcher/src/netslot.rs). Attacked here: a command leaves a
// listener behind for the next command of the same sandbox; a command still
// running shares its namespace with another; a namespace whose launcher was
// killed mid-run is lent again while the old command may still be in it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox } from '../../dist/index.js';
import { tempDir, WHO, have, until, spawnServers } from '../helpers.mjs';

let work, sb;
before(async () => {
  work = tempDir('cordon-netns-test-');
  sb = await Sandbox.create({ network: { allowedDomains: ['example.com'] }, filesystem: { allowWrite: [work.dir] } }, { cwd: work.dir });
});
after(async () => {
  await sb?.close();
  work?.cleanup();
});

const netnsOf = async (opts) => {
  const r = await sb.run(['readlink', '/proc/self/ns/net'], opts);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
};

// A listener on 127.0.0.1, kept open by a background child after the
// command's main process exits (the end of the run kills it).
const LEAVE_LISTENER = `
import os, socket, sys
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()
print(s.getsockname()[1], os.readlink('/proc/self/ns/net'), flush=True)
if os.fork() == 0:
    os.setsid(); os.close(1); os.close(2)
    while True: os.pause()
`;
const CONNECT = `
import os, socket, sys
ns = os.readlink('/proc/self/ns/net')
try:
    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5); print('connected', ns)
except OSError as e:
    print(type(e).__name__, ns)
`;

test(`a command's listener is gone for the next command in the same namespace (${WHO})`, { skip: !have('python3') && 'python3 not installed', timeout: 60_000 }, async () => {
  const first = await sb.run(['python3', '-c', LEAVE_LISTENER]);
  assert.equal(first.code, 0, first.stderr);
  const [port, ns1] = first.stdout.trim().split(' ');
  const second = await sb.run(['python3', '-c', CONNECT, port]);
  assert.equal(second.code, 0, second.stderr);
  const [outcome, ns2] = second.stdout.trim().split(' ');
  // The same namespace, so this is where a leftover would show.
  assert.equal(ns2, ns1, 'the second command ran in the namespace the first one used');
  assert.equal(outcome, 'ConnectionRefusedError', 'nothing listens any more');
});

test(`a command still running never shares its namespace with another (${WHO})`, { timeout: 60_000 }, async () => {
  await netnsOf(); // at least one namespace is free to be lent again
  // Each run writes its namespace, then waits until all four have: all four
  // are running at that moment.
  const dir = join(work.dir, 'barrier');
  mkdirSync(dir);
  const wait = `readlink /proc/self/ns/net > "$0"; until [ "$(ls ${dir} | wc -l)" -ge 4 ]; do sleep 0.01; done`;
  const runs = await Promise.all([1, 2, 3, 4].map((i) => sb.run(['sh', '-c', wait, join(dir, String(i))], { timeout: 20_000 })));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const seen = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8').trim());
  assert.equal(new Set(seen).size, 4, `four running commands, four namespaces: ${seen}`);
});

test(`a namespace whose launcher was killed mid-run is not lent again (${WHO})`, { timeout: 60_000 }, async () => {
  const running = sb.run(['sh', '-c', 'readlink /proc/self/ns/net; exec sleep 30'], { timeout: 20_000 });
  // Find the command on the host by its namespace, then its launcher: the
  // parent of its PID 1.
  let launcher = 0;
  const ppid = (pid) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
  const comm = (pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  let ns = '';
  assert.ok(
    await until(() => {
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        try {
          if (comm(p) !== 'sleep' || readFileSync(`/proc/${p}/cmdline`, 'utf8') !== 'sleep\x0030\x00') continue;
          ns = readlinkSync(`/proc/${p}/ns/net`);
          launcher = ppid(ppid(Number(p)));
          return true;
        } catch {
          /* gone or not ours */
        }
      }
      return false;
    }),
    'the command is running',
  );
  process.kill(launcher, 'SIGKILL');
  const r = await running;
  assert.notEqual(r.code, 0, 'the run did not end normally');
  for (let i = 0; i < 5; i++) assert.notEqual(await netnsOf(), ns, 'a dropped namespace is never lent again');
});

// A command opens connections to the proxy port, writes a request on each
// and exits without waiting. The kept relay must carry each under that
// command's token (its denials are its own), never under the next
// command's. In the second round the relay is stopped while the command
// connects, so every connection still waits in its backlog when the
// command's end is announced.
const FIRE = (n, go) => `
import os, socket, time
print(os.readlink('/proc/self/ns/net'), flush=True)
while ${go ? `not os.path.exists(${JSON.stringify(go)})` : 'False'}: time.sleep(0.005)
keep = []
for i in range(${n}):
    s = socket.create_connection(('127.0.0.1', 3128))
    s.sendall(b'GET http://left-behind.invalid/%d HTTP/1.1\\r\\nHost: left-behind.invalid\\r\\n\\r\\n' % i)
    keep.append(s)
`;

// /proc/PID/stat fields after the command name.
const statOf = (pid) => {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2).split(' ');
};
const pids = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);
const childrenOf = (ppid) => pids().filter((p) => { try { return Number(statOf(p)[1]) === ppid; } catch { return false; } });
const cmdline = (pid) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; } };

test(`a command's connections are never carried under the next command's token (${WHO})`, { skip: !have('python3') && 'python3 not installed', timeout: 60_000 }, async () => {
  const n = 20;
  for (const stopRelay of [false, true]) {
    const go = stopRelay ? join(work.dir, 'go') : null;
    const pending = sb.run(['python3', '-c', FIRE(n, go)], { timeout: 30_000 });
    let stopped = [];
    if (stopRelay) {
      let fire = 0;
      assert.ok(await until(() => (fire = pids().find((p) => cmdline(p).includes('left-behind')) ?? 0)), 'the command runs');
      // The server's children that have none of their own are the kept
      // relays (a launcher has its PID 1); stop them all, the one serving
      // this command among them.
      const [server] = spawnServers();
      stopped = childrenOf(server).filter((p) => childrenOf(p).length === 0);
      assert.ok(stopped.length > 0, 'a kept relay runs');
      for (const p of stopped) process.kill(p, 'SIGSTOP');
      writeFileSync(go, '');
      assert.ok(await until(() => !cmdline(fire)), 'the command has ended');
      for (const p of stopped) process.kill(p, 'SIGCONT');
    }
    const a = await pending;
    assert.equal(a.code, 0, a.stderr);
    // Another per-command policy, the same relay ports: the same kept relay.
    const b = await sb.run(['readlink', '/proc/self/ns/net'], { policy: { network: { deniedDomains: ['other.invalid'] } } });
    assert.equal(b.stdout.trim(), a.stdout.trim(), 'the second command used the namespace (and relay) of the first');
    assert.deepEqual(b.violations, [], 'nothing of the first command is accounted to the second');
    assert.equal(a.violations.filter((v) => /left-behind\.invalid/.test(v.line)).length, n, 'every request of the first command is its own denial');
  }
});
