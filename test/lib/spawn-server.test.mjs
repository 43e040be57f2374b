// The spawn server (cordon-launcher serve): Sandbox.run() asks it to fork
// launchers instead of forking the Node process. Checked here: commands
// really go through it, only its host may use it (a stranger's request
// starts nothing), data and exit status cross it intact, and it dies and
// cleans up with its sandbox or host, even when killed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { Sandbox, CordonError } from '../../dist/index.js';
import { tempDir, WHO, ROOT, have, alive, LAUNCHER, until, spawnServers } from '../helpers.mjs';

let work, priv, sb;
before(async () => {
  work = tempDir('cordon-spawn-test-');
  // The server's socket dir goes to os.tmpdir(), which reads TMPDIR on each
  // call: a private one makes "which dirs exist" exact.
  priv = mkdtempSync(join(tmpdir(), 'cordon-spawn-priv-'));
  chmodSync(priv, 0o755);
  process.env.TMPDIR = priv;
  sb = await Sandbox.create({ filesystem: { allowWrite: [work.dir] } }, { cwd: work.dir });
});
after(async () => {
  await sb?.close();
  work?.cleanup();
  rmSync(priv, { recursive: true, force: true });
});

function ppidOf(pid) {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
}
function stateOf(pid) {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2).split(' ')[0];
}
function commOf(pid) {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}
function argvOf(pid) {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
}
const servers = spawnServers;
const spawnDirs = () => readdirSync(priv).filter((n) => n.startsWith('cordon-spawn-'));

test(`run() goes through one spawn server per sandbox; the launcher is its child (${WHO})`, async () => {
  const first = await sb.run(['echo', 'one']);
  assert.equal(first.stdout, 'one\n');
  const [srv, ...more] = servers();
  assert.ok(srv, 'a spawn server runs after the first run()');
  assert.deepEqual(more, [], 'exactly one');
  assert.equal(spawnDirs().length, 1, 'its socket dir');
  // A long command: its launcher's parent is the server, not this process.
  const running = sb.run(['sleep', '30'], { timeout: 10_000 });
  let launcherPid;
  assert.ok(
    await until(() => {
      launcherPid = readdirSync('/proc')
        .filter((n) => /^\d+$/.test(n))
        .map(Number)
        .find((pid) => {
          try {
            // A launcher runs the server's own image (its argv); the PID 1
            // of the previous run may still be exiting under the server.
            return ppidOf(pid) === srv && argvOf(pid)[1] === 'serve' && stateOf(pid) !== 'Z';
          } catch {
            return false;
          }
        });
      return launcherPid !== undefined;
    }),
    'the server forked a launcher',
  );
  process.kill(launcherPid, 'SIGTERM');
  const r = await running;
  assert.equal(r.signal, 'SIGTERM', `the command saw the forwarded signal: ${JSON.stringify(r)}`);
  assert.equal(r.code, 128 + 15);
  // Still the same server for the next command.
  assert.equal((await sb.run(['true'])).code, 0);
  assert.deepEqual(servers(), [srv]);
});

test(`every sandbox's PID 1 is reaped, also those whose launcher ended before them (${WHO})`, async () => {
  // A served launcher leaves once PID 1 reported the command's end; PID 1's
  // own exit (the mount namespace's teardown) finishes under the server,
  // which must reap it: nothing may pile up as zombies.
  for (let i = 0; i < 10; i++) assert.equal((await sb.run(['true'])).code, 0);
  const [srv] = servers();
  assert.ok(srv, 'a spawn server runs');
  const zombies = () =>
    readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .filter((pid) => {
        try {
          return [srv, 1].includes(ppidOf(pid)) && stateOf(pid) === 'Z' && commOf(pid) === basename(LAUNCHER).slice(0, 15);
        } catch {
          return false;
        }
      });
  assert.ok(await until(() => zombies().length === 0), `zombie launchers or PID 1s: ${zombies()}`);
});

test(`the server reports a run's end only once its placeholders are gone from the host (${WHO})`, async () => {
  // The launcher tells the server it is done before its own exit, so the
  // result can come first; that must still be after the janitor removed
  // everything the run created in the project (here: a placeholder for
  // each protected name that does not exist).
  // Many of them, so that removing them takes longer than the host needs
  // to see a result.
  const names = Array.from({ length: 400 }, (_, i) => `protected-${i}`);
  const many = await Sandbox.create({ filesystem: { allowWrite: [work.dir], denyWrite: names.map((n) => join(work.dir, n)) } }, { cwd: work.dir });
  try {
    for (let i = 0; i < 10; i++) {
      const r = await many.run(['sh', '-c', 'test -e .bashrc && test -e protected-399 && echo masked'], { cwd: work.dir });
      assert.equal(r.stdout, 'masked\n', `run ${i}: the placeholders were there inside: ${r.stderr}`);
      assert.deepEqual(readdirSync(work.dir), [], `run ${i}: left on the host when run() resolved`);
    }
  } finally {
    await many.close();
  }
});

test(`stdin, stdout, stderr, exit codes and signals cross the server intact (${WHO})`, async () => {
  const big = 'x'.repeat(3 * 1024 * 1024 + 7);
  const a = await sb.run(['sh', '-c', 'wc -c; echo to-err >&2; exit 7'], { input: big });
  assert.equal(a.stdout.trim(), String(big.length), 'every input byte reached the command (none eaten by the server)');
  assert.equal(a.stderr, 'to-err\n');
  assert.equal(a.code, 7);
  const out = await sb.run(['sh', '-c', 'head -c 2000000 /dev/zero | tr "\\0" y']);
  assert.equal(out.stdout.length, 2_000_000);
  const k = await sb.run(['sh', '-c', 'kill -KILL $$']);
  assert.equal(k.code, 128 + 9);
  assert.equal(k.signal, 'SIGKILL');
  const t = await sb.run(['sleep', '30'], { timeout: 300 });
  assert.equal(t.timedOut, true);
  assert.equal(t.code, null);
  // Without input the command reads an empty stdin, never the host's.
  const e = await sb.run(['sh', '-c', 'cat; echo done']);
  assert.equal(e.stdout, 'done\n');
  // 20 at once: each gets its own streams.
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => sb.run(['sh', '-c', `echo out${i}; echo err${i} >&2`], { input: `in${i}` })));
  many.forEach((r, i) => {
    assert.equal(r.stdout, `out${i}\n`);
    assert.equal(r.stderr, `err${i}\n`);
  });
});

test(`a process other than the host cannot make the server start anything (${WHO})`, async (t) => {
  if (!have('python3')) return t.skip('python3 is not installed');
  await sb.run(['true']);
  const [dir] = spawnDirs();
  const sock = join(priv, dir, 'spawn.sock');
  const marker = join(work.dir, 'stranger-was-here');
  // A complete, valid request for an unsandboxed-network launcher that
  // writes a file: sent by another process of the same user.
  const py = `
import socket, struct, sys
args = [b'run', b'--ro-bind', b'/', b'/', b'--bind', sys.argv[2].encode(), sys.argv[2].encode(), b'--share-net', b'--', b'/bin/sh', b'-c', b'echo x > ' + sys.argv[3].encode()]
body = bytes([0]) + struct.pack('<I', len(args)) + b''.join(struct.pack('<I', len(a)) + a for a in args)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
try:
    s.sendall(b'CDS1R' + struct.pack('<I', 7) + struct.pack('<I', len(body)) + body)
    s.settimeout(3)
    data = s.recv(100)
    print('closed' if data == b'' else 'answered:' + data.decode(errors='replace'))
except (ConnectionResetError, BrokenPipeError):
    print('closed')
`;
  const r = spawnSync('python3', ['-c', py, sock, work.dir, marker], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.stdout.trim(), 'closed', `the server dropped the stranger: ${r.stdout} ${r.stderr}`);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(existsSync(marker), false, 'nothing ran for the stranger');
  // The host itself still works.
  assert.equal((await sb.run(['echo', 'ok'])).stdout, 'ok\n');
});

test(`kill -9 of the server: the running command fails with a clear error and dies, the next run gets a new server (${WHO})`, async () => {
  await sb.run(['true']);
  const [srv] = servers();
  const running = sb.run(['sh', '-c', 'echo started; sleep 30']);
  let launcherPid;
  assert.ok(await until(() => (launcherPid = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).find((p) => { try { return ppidOf(p) === srv; } catch { return false; } })) !== undefined));
  process.kill(srv, 'SIGKILL');
  await assert.rejects(running, (e) => e instanceof CordonError && /spawn server ended/.test(e.message));
  assert.ok(await until(() => !alive(launcherPid)), 'the launcher died with its server (PDEATHSIG)');
  const next = await sb.run(['echo', 'again']);
  assert.equal(next.stdout, 'again\n');
  const now = servers();
  assert.equal(now.length, 1);
  assert.notEqual(now[0], srv, 'a new server');
});

test(`close() stops the server and removes its dir; spawnServer: false never starts one (${WHO})`, async () => {
  const own = await Sandbox.create({}, { cwd: work.dir });
  const before = new Set(servers());
  await own.run(['true']);
  const mine = servers().filter((p) => !before.has(p));
  assert.equal(mine.length, 1);
  const dirsBefore = spawnDirs().length;
  await own.close();
  assert.ok(await until(() => !alive(mine[0])), 'the server is gone after close()');
  assert.equal(spawnDirs().length, dirsBefore - 1, 'its dir is removed');

  const direct = await Sandbox.create({}, { cwd: work.dir, spawnServer: false });
  const n = servers().length;
  assert.equal((await direct.run(['echo', 'x'])).stdout, 'x\n');
  assert.equal(servers().length, n, 'no server for spawnServer: false');
  await direct.close();
});

test(`the host killed with SIGKILL takes its server and the running command with it (${WHO})`, async () => {
  const script = `
    const { Sandbox } = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
    const sb = await Sandbox.create({}, { cwd: ${JSON.stringify(work.dir)} });
    await sb.run(['true']);
    sb.run(['sleep', '60']).catch(() => {});
    setTimeout(() => console.log('ready'), 300);
    setInterval(() => {}, 1000);
  `;
  const host = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TMPDIR: priv } });
  await new Promise((res) => host.stdout.once('data', res));
  const kids = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((p) => { try { return ppidOf(p) === host.pid; } catch { return false; } });
  const srv = kids.find((p) => argvOf(p)[1] === 'serve');
  assert.ok(srv, 'the host has a spawn server');
  const launchers = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((p) => { try { return ppidOf(p) === srv; } catch { return false; } });
  assert.equal(launchers.length, 1, 'running the sleep');
  host.kill('SIGKILL');
  await new Promise((res) => host.once('close', res));
  assert.ok(await until(() => !alive(srv) && !alive(launchers[0])), 'server and launcher died with the host');
});
