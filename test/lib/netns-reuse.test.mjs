// The spawn server lends each launcher a network namespace it keeps between
// commands (launcher/src/netslot.rs). Attacked here: a command leaves a
// listener behind for the next command of the same sandbox; a command still
// running shares its namespace with another; a namespace whose launcher was
// killed mid-run is lent again while the old command may still be in it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox } from '../../dist/index.js';
import { tempDir, WHO, have, until } from '../helpers.mjs';

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
