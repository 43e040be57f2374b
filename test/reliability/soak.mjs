#!/usr/bin/env node
// Soak: many commands through one Sandbox (sequential, then concurrent) and
// many `cordon` CLI runs, a share of them with traffic through the proxies to
// an allowed local origin. After each phase: no launcher process left, no
// child left, descriptors / sockets / mounts of this process back where they
// were, RSS within a bound, nothing left in the session temp dir or the
// working directory (and, in the long run, nothing new under /tmp).
//
//   node test/reliability/soak.mjs            full: 10 000 + 100 + 1 000
//   node test/reliability/soak.mjs --short    a few hundred (npm test)
//   --json FILE                               write the figures as JSON
//
// Exit status 0 when every check holds, 1 otherwise (the failures are printed).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { privateLauncher, sandboxProcesses, isSpawnServer, orphanLaunchers, childrenOf, fdCount, socketFds, mounts, listing, until, rssMiB } from './observe.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const SHORT = args.includes('--short');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const N = SHORT ? { seq: 200, conc: 40, cli: 24 } : { seq: 10_000, conc: 100, cli: 1_000 };
const NET_EVERY = 5; // one command in five talks through the proxies
// Bounds, stated once: after a phase (and a GC) the host process may hold a
// few more descriptors than at the start only if they are not sockets of
// finished commands; RSS may grow by the V8 heap settling, not per command.
const FD_SLACK = 4;
const RSS_BOUND_MIB = SHORT ? 64 : 96;

const failures = [];
const check = (ok, msg) => {
  if (!ok) failures.push(msg);
};
const gc = () => globalThis.gc?.();

// Private temp dir for session dirs (os.tmpdir() reads TMPDIR on each call)
// and a private launcher copy: everything this run leaves is attributable.
const base = mkdtempSync(join(tmpdir(), 'cordon-soak-'));
chmodSync(base, 0o755);
const priv = join(base, 'tmp');
const work = join(base, 'work');
mkdirSync(priv, { mode: 0o755 });
mkdirSync(work, { mode: 0o755 });
const bin = privateLauncher(join(ROOT, 'dist', 'cordon-launcher'));
process.env.CORDON_LAUNCHER = bin.path;
const hostTmp = tmpdir();
const hostTmpBefore = SHORT ? [] : readdirSync(hostTmp);
process.env.TMPDIR = priv;

const { Sandbox } = await import(join(ROOT, 'dist', 'index.js'));

let hits = 0;
const origin = http.createServer((req, res) => {
  hits++;
  res.end(`ok${req.url}`);
});
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const P = origin.address().port;

// Four ways out: the forwarded loopback port, HTTP proxy (absolute form),
// HTTP CONNECT, SOCKS5. Each prints ok/<tag>.
const NET_CMDS = [
  (i) => `curl -sS --max-time 10 http://127.0.0.1:${P}/d${i}`,
  (i) => `curl -sS --max-time 10 --noproxy '' -x http://127.0.0.1:3128 http://127.0.0.1:${P}/h${i}`,
  (i) => `curl -sS --max-time 10 --noproxy '' -p -x http://127.0.0.1:3128 http://127.0.0.1:${P}/c${i}`,
  (i) => `curl -sS --max-time 10 --noproxy '' -x socks5h://127.0.0.1:1080 http://127.0.0.1:${P}/s${i}`,
];
const TAGS = ['d', 'h', 'c', 's'];
function command(i) {
  if (i % NET_EVERY === 0) {
    const k = (i / NET_EVERY) % NET_CMDS.length;
    return { cmd: NET_CMDS[k](i), want: `ok/${TAGS[k]}${i}` };
  }
  return { cmd: `echo r$((${i}+0))`, want: `r${i}` };
}

const figures = { mode: SHORT ? 'short' : 'full', bounds: { fdSlack: FD_SLACK, rssMiB: RSS_BOUND_MIB }, phases: [] };

function snapshot() {
  gc();
  return { fds: fdCount(), sockets: socketFds(), rss: rssMiB(), heap: Math.round(process.memoryUsage().heapUsed / 1048576) };
}
const mountsBefore = mounts();
const workBefore = listing(work);

/** Our children, but for the sandbox's spawn server (it lives until close). */
const commandChildren = () => childrenOf(process.pid).filter((pid) => !isSpawnServer(pid));

async function phase(name, count, body) {
  const start = snapshot();
  const peak = { fds: start.fds, rss: start.rss, launchers: 0 };
  const sample = () => {
    peak.fds = Math.max(peak.fds, fdCount());
    peak.rss = Math.max(peak.rss, rssMiB());
    peak.launchers = Math.max(peak.launchers, sandboxProcesses(bin.path).length);
  };
  const t0 = Date.now();
  const errors = await body(sample);
  const ms = Date.now() - t0;
  // Nothing of any sandbox may remain. The launcher reaps everything before
  // it exits, so this holds at once; the wait only covers our own reaping.
  // As a non-root user the helpers' exe links are unreadable (non-dumpable),
  // so orphaned launchers (parent 1) of this uid are checked too (full run
  // only: under npm test other files' sandboxes run at the same time).
  const left = await until(() => sandboxProcesses(bin.path).length === 0 && commandChildren().length === 0 && (SHORT || orphanLaunchers().length === 0), 3000);
  const end = snapshot();
  const rec = { name, count, ms, perCommandMs: Math.round((ms / count) * 10) / 10, errors: errors.length, start, end, peak, netHits: hits };
  figures.phases.push(rec);
  console.log(`${name}: ${count} commands in ${(ms / 1000).toFixed(1)} s (${rec.perCommandMs} ms each), errors ${errors.length}; ` +
    `fds ${start.fds} -> ${end.fds} (peak ${peak.fds}), sockets ${start.sockets} -> ${end.sockets}, ` +
    `RSS ${start.rss} -> ${end.rss} MiB (peak ${peak.rss}), launchers peak ${peak.launchers}`);
  for (const e of errors.slice(0, 5)) console.log(`  error: ${e}`);
  check(errors.length === 0, `${name}: ${errors.length} commands failed (first: ${errors[0]})`);
  check(left, `${name}: processes left: launchers ${JSON.stringify(sandboxProcesses(bin.path))}, orphans ${JSON.stringify(orphanLaunchers())}, children ${commandChildren()}`);
  check(end.fds <= start.fds + FD_SLACK, `${name}: descriptors grew ${start.fds} -> ${end.fds}`);
  check(end.sockets <= start.sockets + 1, `${name}: sockets grew ${start.sockets} -> ${end.sockets}`);
  check(end.rss - start.rss <= RSS_BOUND_MIB, `${name}: RSS grew ${start.rss} -> ${end.rss} MiB`);
  check(JSON.stringify(mounts()) === JSON.stringify(mountsBefore), `${name}: host mounts changed`);
  const w = listing(work);
  check(JSON.stringify(w) === JSON.stringify(workBefore), `${name}: working dir changed: ${w.join(', ')}`);
}

const sb = await Sandbox.create({ network: { allowedDomains: [`127.0.0.1:${P}`] } }, { cwd: work });
await sb.run(['true']); // starts the spawn server: its socket dir belongs to the session
const sessionEntries = listing(priv); // the running session's dirs and sockets

await phase('sequential', N.seq, async (sample) => {
  const errors = [];
  for (let i = 0; i < N.seq; i++) {
    const { cmd, want } = command(i);
    const r = await sb.run(cmd, { timeout: 30_000 });
    if (r.code !== 0 || r.stdout.trim() !== want) errors.push(`#${i} ${cmd}: code ${r.code} out ${JSON.stringify(r.stdout)} err ${r.stderr.slice(0, 200)}`);
    if (i % 50 === 0) sample();
  }
  return errors;
});

await phase('concurrent', N.conc, async (sample) => {
  const timer = setInterval(sample, 50);
  const rs = await Promise.all(
    Array.from({ length: N.conc }, async (_, i) => {
      const { cmd, want } = command(i);
      const r = await sb.run(`sleep 0.$((${i} % 5)); ${cmd}`, { timeout: 60_000 });
      return r.code !== 0 || r.stdout.trim() !== want ? `#${i}: code ${r.code} out ${JSON.stringify(r.stdout)} err ${r.stderr.slice(0, 200)}` : undefined;
    }),
  );
  clearInterval(timer);
  return rs.filter(Boolean);
});

const sessionDuring = listing(priv);
check(JSON.stringify(sessionDuring) === JSON.stringify(sessionEntries), `session dir grew while running: ${sessionDuring.join(', ')}`);
await sb.close();
check(listing(priv).length === 0, `after close the temp dir still holds: ${listing(priv).join(', ')}`);

// The CLI: one node process per command, two at a time (as a shell loop of
// an agent would); the host process here only spawns.
const settings = join(base, 'settings.json');
writeFileSync(settings, JSON.stringify({ network: { allowedDomains: [`127.0.0.1:${P}`] } }));
function cli(i) {
  const { cmd, want } = command(i);
  return new Promise((res) => {
    const c = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), '--settings', settings, '-c', cmd], {
      cwd: work,
      env: { ...process.env, TMPDIR: priv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => res(code !== 0 || out.trim() !== want ? `cli #${i}: code ${code} out ${JSON.stringify(out)} err ${err.slice(0, 200)}` : undefined));
  });
}
await phase('cli', N.cli, async (sample) => {
  const errors = [];
  let next = 0;
  const worker = async () => {
    while (next < N.cli) {
      const i = next++;
      const e = await cli(i);
      if (e) errors.push(e);
      if (i % 20 === 0) sample();
    }
  };
  await Promise.all([worker(), worker()]);
  return errors;
});
check(listing(priv).length === 0, `after the CLI runs the temp dir holds: ${listing(priv).join(', ')}`);

const expectedHits = figures.phases.reduce((n, p) => n + Math.ceil(p.count / NET_EVERY), 0);
check(hits === expectedHits, `origin saw ${hits} requests, expected ${expectedHits}`);
figures.netRequests = hits;

await new Promise((r) => origin.close(r));
if (!SHORT) {
  const now = readdirSync(hostTmp).filter((n) => !hostTmpBefore.includes(n) && n.startsWith('cordon') && !base.endsWith(n) && !bin.dir.endsWith(n));
  check(now.length === 0, `new cordon entries in ${hostTmp}: ${now.join(', ')}`);
}
figures.failures = failures;
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(figures, null, 2));
rmSync(base, { recursive: true, force: true });
rmSync(bin.dir, { recursive: true, force: true });
if (failures.length) {
  for (const f of failures) console.log(`FAIL ${f}`);
  process.exit(1);
}
console.log(`soak ${figures.mode}: all checks hold (${hits} requests through the network layer)`);
