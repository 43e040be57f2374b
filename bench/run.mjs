#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --only=cold,percmd,...] [-- --root-only]`
//
// Measures cordon side by side with the tools people run today (bubblewrap,
// Anthropic's sandbox-runtime "srt") in the same run, interleaved, and writes
// bench/results.json + bench/results.md. Every piece that is missing or
// broken is reported as "skipped: <why>", never given a number. When run as
// root, the whole set is measured again as uid 65534 from a world-readable
// copy, because unprivileged user namespaces are the common deployment.
// Peers come from scripts/bench-peers.sh; cordon itself never calls them.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import {
  existsSync, mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, statSync, chmodSync, chownSync, cpSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { interleave, summarize, ratio, fmt, firstLine, median } from './stats.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LAUNCHER = join(ROOT, 'dist', 'cordon-launcher');
const CLI = join(ROOT, 'dist', 'cli.js');
const LIB = join(ROOT, 'dist', 'index.js');
const SRT_PKG = join(ROOT, 'bench', '.peers', 'node_modules', '@anthropic-ai', 'sandbox-runtime');
const SRT_CLI = join(SRT_PKG, 'dist', 'cli.js');
const SRT_LIB = join(SRT_PKG, 'dist', 'index.js');
const NODE = process.execPath;
const BASE = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'];
const BWRAP = ['--unshare-all', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc'];
const INSTALL_HINT = 'run: sh scripts/bench-peers.sh';

// ---------------------------------------------------------------- arguments
const argv = process.argv.slice(2);
const opt = { quick: false, only: null, rootOnly: false, unpriv: false, child: null, out: null };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--quick') opt.quick = true;
  else if (a === '--root-only' || a === '--no-unprivileged') opt.rootOnly = true;
  else if (a === '--unprivileged') opt.unpriv = true;
  else if (a === '--no-renice') {}
  else if (a.startsWith('--only=')) opt.only = new Set(a.slice(7).split(','));
  else if (a === '--child') opt.child = argv[++i];
  else if (a === '--out') opt.out = resolve(argv[++i] ?? '.');
  else if (a === '--help' || a === '-h') {
    console.log('usage: npm run bench -- [--quick] [--only=cold,percmd,throughput,latency,memory,scaling] [--root-only|--unprivileged] [--out DIR]\n' +
      'Writes DIR/results.json and results.md (default: bench/, or a temp dir with --only).');
    process.exit(0);
  } else {
    console.error(`bench: unknown option '${a}' (try --help)`);
    process.exit(2);
  }
}
const Q = opt.quick;
// On a shared machine other jobs' CPU bursts dominate the noise. As root the
// bench raises its own priority (inherited by everything it measures, cordon
// and peers alike, and by the uid 65534 pass); --no-renice turns this off.
let NICE = os.getPriority(0);
if (!opt.child && !argv.includes('--no-renice') && process.getuid() === 0) {
  try { os.setPriority(0, -10); NICE = -10; } catch {}
}
const IS_ROOT = process.getuid() === 0;
const log = (...a) => console.error('[bench]', ...a);

// ------------------------------------------------------------------ helpers
// Every measured process gets the same small environment: variables such as
// NODE_EXTRA_CA_CERTS (set on this machine) add ~40 ms to every Node start
// and would blur the CLI comparisons.
const CLEAN_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: process.env.HOME ?? os.homedir(), LANG: 'C.UTF-8' };
const now = () => process.hrtime.bigint();
const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns and resolves with { code, signal, ms, stdout, stderr }; ms is from
 *  spawn to the exit of the direct child (what a caller waits for). */
function runTimed(cmd, args, opts = {}) {
  return new Promise((resolveP, reject) => {
    const t0 = now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: CLEAN_ENV, ...opts });
    let stdout = '', stderr = '', ms = 0, exited = null;
    child.stdout?.on('data', (d) => { if (stdout.length < 1e6) stdout += d; });
    child.stderr?.on('data', (d) => { if (stderr.length < 1e5) stderr += d; });
    child.on('error', reject);
    child.on('exit', (code, signal) => { ms = msSince(t0); exited = { code, signal }; });
    child.on('close', () => resolveP({ ...exited, ms, stdout, stderr }));
  });
}

/** Like runTimed but a non-zero exit is an error carrying stderr's first line. */
async function mustRun(cmd, args, opts) {
  const r = await runTimed(cmd, args, opts);
  if (r.code !== 0) {
    // A Node crash ends with its version line; the useful line is the error.
    const lines = (r.stderr.trim() || r.stdout.trim()).split('\n').map((l) => l.trim()).filter(Boolean);
    const why = lines.find((l) => /^(\w*Error\b|cordon|srt|curl|bwrap)/.test(l) || /error:/i.test(l)) ?? lines.at(-1) ?? '';
    throw new Error(`${shortCmd(cmd, args)} exited ${r.code ?? 'by ' + r.signal}${why ? ': ' + why : ''}`);
  }
  return r;
}
const shortCmd = (cmd, args) => {
  const prog = [cmd, ...args].find((a) => !a.startsWith('/usr/') && a !== NODE) ?? cmd;
  return prog.replace(ROOT + '/', '').replace(/.*\/node_modules\/@anthropic-ai\/sandbox-runtime\/dist\/cli\.js$/, 'srt') + ' …';
};

function have(cmd) {
  return spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
function version(cmd, args, re) {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
    const m = re ? re.exec(out) : null;
    return m ? m[1] : out.trim().split('\n')[0];
  } catch { return null; }
}

/** Spawns via a shell string (what srt and SandboxManager callers do). */
function spawnShellTimed(command, opts = {}) {
  return new Promise((resolveP, reject) => {
    const t0 = now();
    const child = spawn(command, { shell: true, stdio: 'ignore', env: CLEAN_ENV, ...opts });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const ms = msSince(t0);
      if (code !== 0) reject(new Error(`shell command exited ${code ?? signal}: ${command.slice(0, 100)}`));
      else resolveP(ms);
    });
  });
}

function spawnArgvTimed(cmd, args, opts = {}) {
  return new Promise((resolveP, reject) => {
    const t0 = now();
    const child = spawn(cmd, args, { stdio: 'ignore', env: CLEAN_ENV, ...opts });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const ms = msSince(t0);
      if (code !== 0) reject(new Error(`${shortCmd(cmd, args)} exited ${code ?? signal}`));
      else resolveP(ms);
    });
  });
}

// ------------------------------------------------------------ environment
const TMP = mkdtempSync(join(os.tmpdir(), 'cordon-bench-'));
chmodSync(TMP, 0o755);
const WORK = join(TMP, 'cwd');          // an empty, neutral cwd for every sandboxed run
mkdirSync(WORK);
// The same empty cwd on a tmpfs, for one row: on a filesystem where creating
// and removing files is slow (this VM's journal-less ext4 skips every inode
// freed in the last minutes when it allocates one), the launcher's
// placeholders cost more. /dev/shm will not do (the sandbox has its own
// /dev), so as root the bench mounts one (and one for the unprivileged
// pass, which gets its path in CORDON_BENCH_TMPFS); else the row is skipped.
function mountTmpfs(dir, mode) {
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `mode=${mode}`, 'cordon-bench', dir], { stdio: 'ignore' }).status === 0 ? dir : null;
}
let SHM_WORK = null;
if (process.getuid?.() === 0) SHM_WORK = mountTmpfs(join(TMP, 'tmpfs'), '0755');
else if (process.env.CORDON_BENCH_TMPFS) SHM_WORK = mkdtempSync(join(process.env.CORDON_BENCH_TMPFS, 'cwd-'));
process.on('exit', () => {
  if (SHM_WORK && process.getuid?.() === 0) spawnSync('umount', ['-l', SHM_WORK], { stdio: 'ignore' });
  rmSync(TMP, { recursive: true, force: true });
});
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

// srt leaves its /tmp/srt-mux-<pid>-0.sock behind when it exits; once a later
// srt process gets the same pid, its listen() fails with EADDRINUSE and the
// srt rows are skipped. Remove ours whose process is gone.
function clearStaleSrtSockets() {
  const uid = process.getuid?.();
  let names = [];
  try {
    names = readdirSync('/tmp');
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^srt-mux-(\d+)-\d+\.sock$/.exec(n);
    if (!m) continue;
    const p = join('/tmp', n);
    try {
      if (statSync(p).uid !== uid) continue;
      try {
        process.kill(Number(m[1]), 0);
        continue; // its process lives (or the pid is someone else's now): leave it
      } catch (e) {
        if (e.code !== 'ESRCH') continue;
      }
      rmSync(p, { force: true });
    } catch {
      /* vanished meanwhile */
    }
  }
}
clearStaleSrtSockets();

function srtSettings(domains) {
  return {
    network: { allowedDomains: domains, deniedDomains: [] },
    filesystem: { denyRead: [], allowRead: [], allowWrite: ['.'], denyWrite: [] },
  };
}
const SRT_SETTINGS = join(TMP, 'srt-settings.json');
writeFileSync(SRT_SETTINGS, JSON.stringify(srtSettings(['example.com'])));

/** Which pieces exist and work here; each entry is true or a reason. */
async function probe() {
  const p = {};
  const tryRun = async (key, cmd, args, opts) => {
    try { await mustRun(cmd, args, { cwd: WORK, ...opts }); p[key] = true; } catch (e) { p[key] = firstLine(e); }
  };
  if (!existsSync(LAUNCHER)) p.launcher = 'dist/cordon-launcher missing (npm run build)';
  else await tryRun('launcher', LAUNCHER, ['run', ...BASE, '--', '/bin/true']);
  if (!existsSync(CLI)) p.cli = 'dist/cli.js missing (npm run build)';
  else await tryRun('cli', NODE, [CLI, '--', '/bin/true']);
  if (!existsSync(LIB)) p.lib = 'dist/index.js missing (npm run build)';
  else {
    try { p.libModule = await import(pathToFileURL(LIB).href); p.lib = true; } catch (e) { p.lib = 'import dist/index.js: ' + firstLine(e); }
  }
  if (!have('bwrap')) p.bwrap = `bwrap not installed (${INSTALL_HINT})`;
  else await tryRun('bwrap', 'bwrap', [...BWRAP, '/bin/true']);
  if (!existsSync(SRT_CLI)) p.srt = `@anthropic-ai/sandbox-runtime not in bench/.peers (${INSTALL_HINT})`;
  else await tryRun('srt', NODE, [SRT_CLI, '--settings', SRT_SETTINGS, '--', '/bin/true']);
  p.curl = have('curl') || `curl not installed (${INSTALL_HINT})`;
  p.openssl = have('openssl') || `openssl not installed (${INSTALL_HINT})`;
  return p;
}

function toolVersions() {
  let cordon = null;
  try { cordon = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version; } catch {}
  let srt = null;
  try { srt = JSON.parse(readFileSync(join(SRT_PKG, 'package.json'), 'utf8')).version; } catch {}
  return {
    cordon,
    cordonLauncher: existsSync(LAUNCHER) ? version(LAUNCHER, ['--version']) : null,
    node: process.version,
    srt,
    bwrap: version('bwrap', ['--version'], /bubblewrap (\S+)/),
    socat: version('socat', ['-V'], /socat version (\S+)/),
    rg: version('rg', ['--version'], /ripgrep (\S+)/),
    curl: version('curl', ['--version'], /curl (\S+)/),
  };
}

// ----------------------------------------------------------- result model
/** A section: rows of summaries; a row with `skipped` has no numbers. */
function section(id, title, unit, better) {
  return { id, title, unit, better, rows: [], notes: [] };
}
function addRows(sec, variants, res, extra = {}) {
  for (const v of variants) {
    const failed = res.failed.get(v.name);
    const s = summarize(res.samples.get(v.name) ?? []);
    if (failed || !s) pushRow(sec, { name: v.name, skipped: failed ?? 'no samples', seq: v.seq, ...extra });
    else pushRow(sec, { name: v.name, ...s, seq: v.seq, ...extra });
  }
}
function skipRow(sec, name, why, extra = {}) {
  pushRow(sec, { name, skipped: why, ...extra });
}
function pushRow(sec, row) {
  sec.rows.push({ ...row, seq: row.seq ?? seqNext() });
}
// Rows keep the order in which variants were declared, whether they were
// measured (added after the run) or skipped (added at once).
let seqCounter = 0;
const seqNext = () => ++seqCounter;
const ordered = (rows) => [...rows].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
const rowOf = (sec, name, pred = () => true) => sec.rows.find((r) => r.name === name && !r.skipped && pred(r));
/** Attaches "peer median / this median" (time: how many times faster). */
function compare(sec, name, peer, key = 'vs', pred) {
  const a = rowOf(sec, name, pred), b = rowOf(sec, peer, pred);
  if (!a || !b) return null;
  const r = sec.better === 'lower' ? ratio(b.median, a.median) : ratio(a.median, b.median);
  (a.ratios ??= []).push({ to: peer, value: r });
  return r;
}

// ---------------------------------------------------------- 1. cold start
async function benchCold(P) {
  const sec = section('cold', 'Cold start: one command, new process each time', 'ms', 'lower');
  const rounds = Q ? 4 : 20;
  const variants = [
    { seq: seqNext(), name: '/bin/true', run: () => spawnArgvTimed('/bin/true', []) },
    { seq: seqNext(), name: 'node -e 0', run: () => spawnArgvTimed(NODE, ['-e', '0']) },
  ];
  let relaySrv = null;
  if (P.bwrap === true) {
    variants.push({ seq: seqNext(), name: 'bwrap --unshare-all (ro /, dev, proc)', run: () => spawnArgvTimed('bwrap', [...BWRAP, '/bin/true']) });
    variants.push({ seq: seqNext(), name: 'bwrap same + --tmpfs /tmp', run: () => spawnArgvTimed('bwrap', [...BWRAP, '--tmpfs', '/tmp', '/bin/true']) });
  } else skipRow(sec, 'bwrap', P.bwrap);
  if (P.launcher === true) {
    variants.push({ seq: seqNext(), name: 'cordon-launcher (net off)', run: () => spawnArgvTimed(LAUNCHER, ['run', ...BASE, '--', '/bin/true']) });
    // Relays need a host Unix socket to point at; nothing connects during
    // /bin/true, so a listener that drops connections is enough.
    const sock = join(TMP, 'relay.sock');
    relaySrv = net.createServer((c) => c.destroy());
    await new Promise((r) => relaySrv.listen(sock, r));
    const relayArgs = ['--relay-socket', sock, '--relay-token', 'bench', '--relay', '3128', '--relay', '1080'];
    const probeNet = await runTimed(LAUNCHER, ['run', ...BASE, ...relayArgs, '--', '/bin/true']);
    if (probeNet.code === 0) {
      variants.push({ seq: seqNext(), name: 'cordon-launcher (net on: 2 relays)', run: () => spawnArgvTimed(LAUNCHER, ['run', ...BASE, ...relayArgs, '--', '/bin/true']) });
    } else skipRow(sec, 'cordon-launcher (net on: 2 relays)', `exit ${probeNet.code}: ${firstLine(probeNet.stderr || 'no output')}`);
  } else skipRow(sec, 'cordon-launcher', P.launcher);
  if (P.cli === true) {
    variants.push({ seq: seqNext(), name: 'cordon CLI (net off)', run: () => spawnArgvTimed(NODE, [CLI, '--', '/bin/true'], { cwd: WORK }) });
    const netArgs = ['--allow-net', 'example.com', '--', '/bin/true'];
    const probeNet = await runTimed(NODE, [CLI, ...netArgs], { cwd: WORK });
    if (probeNet.code === 0) variants.push({ seq: seqNext(), name: 'cordon CLI (net on)', run: () => spawnArgvTimed(NODE, [CLI, ...netArgs], { cwd: WORK }) });
    else skipRow(sec, 'cordon CLI (net on)', `exit ${probeNet.code}: ${firstLine(probeNet.stderr || 'no output')}`);
  } else skipRow(sec, 'cordon CLI', P.cli);
  if (P.srt === true) {
    variants.push({ seq: seqNext(), name: 'srt CLI (proxies always on)', run: () => spawnArgvTimed(NODE, [SRT_CLI, '--settings', SRT_SETTINGS, '--', '/bin/true'], { cwd: WORK }) });
  } else skipRow(sec, 'srt CLI', P.srt);
  const res = await interleave(variants, { rounds, warmup: 2 });
  relaySrv?.close();
  addRows(sec, variants, res);
  compare(sec, 'cordon-launcher (net off)', 'bwrap same + --tmpfs /tmp');
  compare(sec, 'cordon-launcher (net on: 2 relays)', 'bwrap same + --tmpfs /tmp');
  compare(sec, 'cordon CLI (net off)', 'srt CLI (proxies always on)');
  compare(sec, 'cordon CLI (net on)', 'srt CLI (proxies always on)');
  compare(sec, 'cordon CLI (net off)', 'node -e 0');
  sec.notes.push('Wall time from spawn to exit of the direct child, measured from Node (includes fork/exec; see the /bin/true row).');
  sec.notes.push('srt has no network-off mode: it always starts its HTTP and SOCKS proxies and two socat bridges.');
  return sec;
}

// ------------------------------------------------- 2. per command (library)
/** The library pieces: cordon Sandbox + SandboxManager, srt SandboxManager.
 *  Each is { name, setup(domains) -> run(cwd) -> ms, teardown }. */
function srtConfig(domains, cwd = WORK) {
  return {
    network: { allowedDomains: domains, deniedDomains: [] },
    filesystem: { denyRead: [], allowRead: [], allowWrite: [cwd], denyWrite: [] },
  };
}

async function cordonSandbox(P, domains, opts = {}, work = WORK) {
  const Sandbox = P.libModule?.Sandbox;
  if (typeof Sandbox?.create !== 'function') throw new Error('dist/index.js has no Sandbox.create yet');
  const sb = await Sandbox.create(srtConfig(domains, work), opts);
  return {
    run: async (cwd = work) => {
      const t0 = now();
      const r = await sb.run(['true'], { cwd });
      const ms = msSince(t0);
      if (r.code !== 0) throw new Error(`Sandbox.run(['true']) gave code ${r.code} signal ${r.signal}: ${firstLine(r.stderr || '')}`);
      return ms;
    },
    // The compile step alone, to split per-command time into deciding and launching.
    plan: typeof sb.plan === 'function' ? async (cwd = WORK) => { const t0 = now(); sb.plan(['true'], { cwd }); return msSince(t0); } : null,
    close: () => sb.close(),
  };
}

async function managerAdapter(mod, label, domains) {
  const M = mod?.SandboxManager;
  if (typeof M?.initialize !== 'function' || typeof M?.wrapWithSandbox !== 'function') throw new Error(`${label}: no SandboxManager.initialize/wrapWithSandbox`);
  await M.initialize(srtConfig(domains));
  return {
    run: async (cwd = WORK) => {
      // srt derives its mandatory-deny scan from the process cwd, so the
      // wrap happens there (as an agent harness that chdirs would do).
      const prev = process.cwd();
      process.chdir(cwd);
      try {
        const t0 = now();
        const cmd = await M.wrapWithSandbox('true');
        await spawnShellTimed(cmd, { cwd });
        M.cleanupAfterCommand?.();
        return msSince(t0);
      } finally { process.chdir(prev); }
    },
    close: () => M.reset?.(),
  };
}

async function benchPerCommand(P) {
  const sec = section('percmd', 'Per command in one long-lived process (`true`)', 'ms', 'lower');
  // A round is ~0.1 s; with 60 the medians moved by ±1 ms from run to run
  // on this 2-core machine.
  const rounds = Q ? 10 : 200;
  const variants = [{ seq: seqNext(), name: 'spawn /bin/true (no sandbox)', run: () => spawnArgvTimed('/bin/true', []) }];
  const closers = [];
  const lib = async (name, make) => {
    try {
      const a = await make();
      closers.push(a.close);
      await a.run();           // fail here, with the reason, rather than mid-schedule
      variants.push({ seq: seqNext(), name, run: () => a.run() });
    } catch (e) { skipRow(sec, name, firstLine(e)); }
  };
  if (P.lib === true) {
    await lib('cordon Sandbox.run', () => cordonSandbox(P, ['example.com']));
    await lib('cordon Sandbox.run (allowedDomains: [])', () => cordonSandbox(P, []));
    if (SHM_WORK) await lib('cordon Sandbox.run (cwd on tmpfs)', () => cordonSandbox(P, ['example.com'], {}, SHM_WORK));
    else skipRow(sec, 'cordon Sandbox.run (cwd on tmpfs)', 'mounting a tmpfs needs root (the root pass mounts one for this one)');
    // The same, each launcher spawned from Node instead of the spawn server.
    await lib('cordon Sandbox.run (spawnServer: false)', () => cordonSandbox(P, ['example.com'], { spawnServer: false }));
    await lib('  of which: Sandbox.plan (compile only)', async () => {
      const a = await cordonSandbox(P, ['example.com']);
      if (!a.plan) { await a.close(); throw new Error('Sandbox has no plan()'); }
      return { run: a.plan, close: a.close };
    });
    await lib('cordon SandboxManager.wrapWithSandbox + spawn', () => managerAdapter(P.libModule, 'cordon', ['example.com']));
  } else {
    skipRow(sec, 'cordon Sandbox.run', P.lib);
    skipRow(sec, 'cordon SandboxManager.wrapWithSandbox + spawn', P.lib);
  }
  if (P.srt === true) {
    await lib('srt SandboxManager.wrapWithSandbox + spawn', async () => managerAdapter(await import(pathToFileURL(SRT_LIB).href), 'srt', ['example.com']));
  } else skipRow(sec, 'srt SandboxManager.wrapWithSandbox + spawn', P.srt);
  if (P.launcher === true) variants.push({ seq: seqNext(), name: 'raw cordon-launcher spawn (argv)', run: () => spawnArgvTimed(LAUNCHER, ['run', ...BASE, '--', 'true']) });
  // The launcher alone with the library's real plan (masks, Landlock,
  // seccomp): splits Sandbox.run's time into launcher and Node-side glue.
  const fullName = 'raw cordon-launcher spawn (argv of Sandbox.plan, no network)';
  if (P.launcher === true && P.lib === true) {
    let sbx;
    try {
      const { launcherArgs } = await import(pathToFileURL(join(ROOT, 'dist', 'sandbox', 'launcher-args.js')).href);
      sbx = await P.libModule.Sandbox.create(srtConfig([]));
      const args = launcherArgs(sbx.plan(['true'], { cwd: WORK }));
      await mustRun(LAUNCHER, args, { cwd: WORK });
      variants.push({ seq: seqNext(), name: fullName, run: () => spawnArgvTimed(LAUNCHER, args, { cwd: WORK }) });
    } catch (e) { skipRow(sec, fullName, firstLine(e)); }
    try { await sbx?.close(); } catch {}
  }
  if (P.bwrap === true) {
    variants.push({ seq: seqNext(), name: 'raw bwrap spawn (argv)', run: () => spawnArgvTimed('bwrap', [...BWRAP, 'true']) });
    variants.push({ seq: seqNext(), name: 'raw bwrap spawn (shell)', run: () => spawnShellTimed(`bwrap ${BWRAP.join(' ')} true`) });
  } else skipRow(sec, 'raw bwrap spawn', P.bwrap);
  const res = await interleave(variants, { rounds, warmup: 3 });
  for (const c of closers) { try { await c(); } catch {} }
  addRows(sec, variants, res);
  for (const n of ['cordon Sandbox.run', 'cordon SandboxManager.wrapWithSandbox + spawn']) {
    compare(sec, n, 'srt SandboxManager.wrapWithSandbox + spawn');
    compare(sec, n, 'raw bwrap spawn (argv)');
  }
  compare(sec, 'cordon Sandbox.run (cwd on tmpfs)', 'srt SandboxManager.wrapWithSandbox + spawn');
  sec.notes.push('Library objects are created once (proxies started) and reused; each sample is one command from request to exit.');
  return sec;
}

// ---------------------------------------------- network origin (3 and 4)
async function startOrigin(P) {
  let cert = null, key = null;
  if (P.openssl === true) {
    cert = join(TMP, 'origin.crt'); key = join(TMP, 'origin.key');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    if (r.status !== 0) cert = key = null;
  }
  const child = spawn(NODE, [join(ROOT, 'bench', 'origin.mjs'), ...(cert ? [cert, key] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise((resolveP, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolveP(JSON.parse(buf.split('\n')[0]));
    });
    child.on('exit', (c) => reject(new Error(`origin exited ${c}`)));
  });
  return { ...ports, stop: () => { child.stdin.end(); child.kill(); } };
}

// Inside a sandbox, the client takes the proxy URLs from the environment the
// sandbox sets (they carry its auth token). srt puts its SOCKS URL in
// FTP_PROXY and an HTTP one in ALL_PROXY, so look for a socks5 scheme.
const PROXY_SH = `H="\${HTTP_PROXY:-\${http_proxy:-http://127.0.0.1:3128}}"; S=""; ` +
  `for v in "\${ALL_PROXY:-}" "\${all_proxy:-}" "\${FTP_PROXY:-}" "\${ftp_proxy:-}"; do case "$v" in socks*) S="$v"; break;; esac; done; ` +
  `[ -n "$S" ] || S=socks5h://127.0.0.1:1080; `;
const CURL = `curl -sS -o /dev/null --noproxy '' --max-time 120`;
/** A shell prelude that waits until the proxy path answers (one small request
 *  through it) and prints how many attempts failed first: srt starts the
 *  command before its in-sandbox socat bridges listen, so an immediate
 *  connection gets ECONNREFUSED. Measured requests start after this, for
 *  every variant alike; the wait count is reported, not hidden. */
const readySh = (flags, port) =>
  `n=0; until curl -s -o /dev/null --noproxy '' --max-time 5 ${flags} 'http://127.0.0.1:${port}/'; do n=$((n+1)); [ $n -gt 100 ] && break; sleep 0.05; done; echo "WAITED $n"; `;
const waitsSeen = new Map();
function parseWaited(tool, out) {
  const m = /^WAITED (\d+)$/m.exec(out);
  const w = waitsSeen.get(tool) ?? { runs: 0, late: 0 };
  w.runs++;
  if (m && Number(m[1]) > 0) w.late++;
  waitsSeen.set(tool, w);
  return out.split('\n').filter((l) => l && !l.startsWith('WAITED '));
}
function waitNote(sec) {
  for (const [tool, w] of waitsSeen) {
    if (w.late) sec.notes.push(`${tool}: in ${w.late} of ${w.runs} runs the proxy inside the sandbox was not accepting connections yet when the command started (connection refused); the harness waits for it before measuring.`);
  }
  waitsSeen.clear();
}

/** Runs a shell script in cordon's or srt's CLI sandbox allowing 127.0.0.1:PORT. */
function sandboxed(tool, script, allow) {
  if (tool === 'cordon') return mustRun(NODE, [CLI, '--allow-net', allow, '-c', script], { cwd: WORK });
  if (tool === 'srt') {
    const f = join(TMP, `srt-${allow.replace(/\W/g, '_')}.json`);
    if (!existsSync(f)) writeFileSync(f, JSON.stringify(srtSettings([allow.split(':')[0]])));
    return mustRun(NODE, [SRT_CLI, '--settings', f, '-c', script], { cwd: WORK });
  }
  return mustRun('/bin/sh', ['-c', script], { cwd: WORK });
}

// --------------------------------------------------------- 3. throughput
async function benchThroughput(P, origin) {
  const sec = section('throughput', 'Proxy throughput: one large HTTP download from a loopback origin', 'MB/s', 'higher');
  const size = Q ? 20e6 : 200e6;
  const rounds = Q ? 1 : 5;
  const url = `http://127.0.0.1:${origin.http}/bytes/${size}`;
  const fetchOnce = async (tool, flags) => {
    const r = await sandboxed(tool, `${PROXY_SH}${readySh(flags, origin.http)}${CURL} ${flags} -w '%{http_code} %{size_download} %{time_total}\\n' '${url}'`, `127.0.0.1`);
    const [code, bytes, secs] = parseWaited(tool, r.stdout).pop().split(/\s+/).map(Number);
    if (code !== 200) throw new Error(`${tool}: the proxy answered HTTP ${code}`);
    if (bytes !== size) throw new Error(`${tool}: got ${bytes} of ${size} bytes`);
    return bytes / 1e6 / secs;
  };
  const paths = [['HTTP CONNECT', '--proxytunnel -x "$H"'], ['plain HTTP', '-x "$H"'], ['SOCKS5', '-x "$S"']];
  const variants = [];
  if (P.curl !== true) { skipRow(sec, 'all', P.curl); return sec; }
  variants.push({ seq: seqNext(), name: 'direct (no sandbox)', run: () => fetchOnce('direct', '') });
  for (const tool of ['cordon', 'srt']) {
    const ok = tool === 'cordon' ? P.cli : P.srt;
    for (const [label, flags] of paths) {
      const name = `${tool} ${label}`;
      if (ok !== true) { skipRow(sec, name, ok); continue; }
      variants.push({ seq: seqNext(), name, run: () => fetchOnce(tool, flags) });
    }
  }
  const res = await interleave(variants, { rounds, warmup: Q ? 0 : 1 });
  addRows(sec, variants, res);
  for (const v of variants.slice(1)) compare(sec, v.name, 'direct (no sandbox)');
  for (const [label] of paths) compare(sec, `cordon ${label}`, `srt ${label}`);
  waitNote(sec);
  sec.notes.push(`${size / 1e6} MB per transfer with curl inside the sandbox (rate from curl's own timer: the sandbox start is not included); origin is a Node HTTP server in its own process.`);
  return sec;
}

// ----------------------------------------------- 4. new-connection latency
async function benchLatency(P, origin) {
  const sec = section('latency', 'New HTTPS connection: one request per new connection (TCP + proxy + TLS)', 'ms', 'lower');
  if (!origin.https) { skipRow(sec, 'all', P.openssl === true ? 'could not make a certificate' : P.openssl); return sec; }
  if (P.curl !== true) { skipRow(sec, 'all', P.curl); return sec; }
  const per = Q ? 5 : 20;
  const rounds = Q ? 1 : 4;
  const url = `https://127.0.0.1:${origin.https}/`;
  const batch = async (tool, flags) => {
    const r = await sandboxed(tool, `${PROXY_SH}${readySh(flags, origin.http)}i=0; while [ $i -lt ${per} ]; do ${CURL} -k ${flags} -w '%{http_code} %{time_total}\\n' '${url}' || exit 1; i=$((i+1)); done`, `127.0.0.1`);
    const lines = parseWaited(tool, r.stdout).map((l) => l.split(/\s+/));
    if (lines.length !== per || lines.some(([c]) => c !== '200')) throw new Error(`${tool}: unexpected responses: ${r.stdout.slice(0, 80)}`);
    return lines.map(([, s]) => Number(s) * 1000);
  };
  const variants = [{ seq: seqNext(), name: 'direct (no sandbox)', run: () => batch('direct', '') }];
  for (const tool of ['cordon', 'srt']) {
    const ok = tool === 'cordon' ? P.cli : P.srt;
    for (const [label, flags] of [['via HTTPS_PROXY (CONNECT)', '-x "$H"'], ['via SOCKS5', '-x "$S"']]) {
      const name = `${tool} ${label}`;
      if (ok !== true) { skipRow(sec, name, ok); continue; }
      variants.push({ seq: seqNext(), name, run: () => batch(tool, flags) });
    }
  }
  const res = await interleave(variants, { rounds, warmup: Q ? 0 : 1 });
  addRows(sec, variants, res);
  const direct = rowOf(sec, 'direct (no sandbox)');
  for (const r of sec.rows) if (!r.skipped && direct && r !== direct) r.overDirectMs = r.median - direct.median;
  compare(sec, 'cordon via HTTPS_PROXY (CONNECT)', 'srt via HTTPS_PROXY (CONNECT)');
  compare(sec, 'cordon via SOCKS5', 'srt via SOCKS5');
  waitNote(sec);
  sec.notes.push(`curl -k, ${per} sequential requests per sandbox, each a new process and connection; time is curl's time_total (connect + proxy + TLS + response).`);
  return sec;
}

// ----------------------------------------------------------------- 5. memory
function procTable() {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push({ pid: Number(d), comm });
    } catch {}
  }
  return kids;
}
function treeOf(pid) {
  const kids = procTable();
  const out = [];
  const walk = (p, comm) => { out.push({ pid: p, comm }); for (const k of kids.get(p) ?? []) walk(k.pid, k.comm); };
  walk(pid, 'root');
  return out;
}
function statusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}
function pssKb(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

/** Runs `sleep` in a sandbox and snapshots the whole process tree once the
 *  sleep is running: total RSS, total PSS (null if any process hides its
 *  smaps), process count, and the CLI process's own peak RSS (VmHWM). */
async function memSample(cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: WORK, env: CLEAN_ENV });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((r) => child.on('exit', (code, sig) => r({ code, sig })));
  let snap = null;
  const t0 = Date.now();
  while (!snap && Date.now() - t0 < 15000) {
    await sleep(25);
    const tree = treeOf(child.pid);
    if (tree.some((p) => p.comm === 'sleep')) {
      await sleep(100); // let the proxies finish settling after the start
      const t = treeOf(child.pid);
      let rss = 0, pss = 0, pssOk = true;
      for (const p of t) {
        rss += statusKb(p.pid, 'VmRSS');
        const x = pssKb(p.pid);
        if (x == null) pssOk = false; else pss += x;
      }
      snap = { rssMB: rss / 1024, pssMB: pssOk ? pss / 1024 : null, procs: t.length, cliPeakMB: statusKb(child.pid, 'VmHWM') / 1024, comms: t.map((p) => p.comm) };
    }
  }
  const r = await done;
  if (r.code !== 0) throw new Error(`exited ${r.code ?? r.sig}: ${firstLine(stderr || 'no output')}`);
  if (!snap) throw new Error('never saw the sleep process');
  return snap;
}

async function benchMemory(P) {
  const secs = Q ? '0.5' : '1';
  const sec = section('memory', `Memory while \`sleep ${secs}\` runs in the sandbox`, 'MB', 'lower');
  const rounds = Q ? 1 : 3;
  const cands = [];
  if (P.cli === true) {
    cands.push({ name: 'cordon CLI (net off)', cmd: NODE, args: [CLI, '--', 'sleep', secs] });
    cands.push({ name: 'cordon CLI (net on)', cmd: NODE, args: [CLI, '--allow-net', 'example.com', '--', 'sleep', secs] });
  } else skipRow(sec, 'cordon CLI', P.cli, { metric: 'all' });
  if (P.srt === true) cands.push({ name: 'srt CLI', cmd: NODE, args: [SRT_CLI, '--settings', SRT_SETTINGS, '--', 'sleep', secs] });
  else skipRow(sec, 'srt CLI', P.srt, { metric: 'all' });
  const got = new Map(cands.map((c) => [c.name, []]));
  const failed = new Map();
  for (let r = 0; r < rounds; r++) {
    for (const c of cands) {
      if (failed.has(c.name)) continue;
      try { got.get(c.name).push(await memSample(c.cmd, c.args)); } catch (e) { failed.set(c.name, firstLine(e)); }
    }
  }
  for (const c of cands) {
    if (failed.has(c.name)) { skipRow(sec, c.name, failed.get(c.name), { metric: 'all' }); continue; }
    const s = got.get(c.name);
    const pick = (k) => summarize(s.map((x) => x[k]).filter((x) => x != null));
    for (const [metric, k] of [['whole sandbox RSS', 'rssMB'], ['whole sandbox PSS', 'pssMB'], ['CLI process peak RSS (VmHWM)', 'cliPeakMB'], ['processes', 'procs']]) {
      const sm = pick(k);
      if (sm) pushRow(sec, { name: c.name, metric, ...sm });
      else pushRow(sec, { name: c.name, metric, skipped: 'not readable (non-dumpable or foreign process)' });
    }
    sec.notes.push(`${c.name} processes: ${s[0].comms.join(', ')}`);
  }
  for (const n of ['cordon CLI (net off)', 'cordon CLI (net on)']) {
    for (const metric of ['whole sandbox RSS', 'whole sandbox PSS', 'processes']) compare(sec, n, 'srt CLI', 'vs', (r) => r.metric === metric);
  }
  sec.notes.push('RSS counts shared pages once per process (overstates); PSS splits them (fairer) and needs every process\'s smaps to be readable.');
  return sec;
}

// ---------------------------------------------------------------- 6. scaling
function makeTree(dir, n) {
  mkdirSync(dir, { recursive: true });
  const perDir = 500;
  for (let i = 0; i < n; i++) {
    const sub = join(dir, `d${Math.floor(i / perDir)}`);
    if (i % perDir === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.txt`), '');
  }
  // A few things mandatory-deny discovery looks for, deep down.
  mkdirSync(join(dir, 'd0', 'pkg', '.git', 'hooks'), { recursive: true });
  writeFileSync(join(dir, 'd0', 'pkg', '.bashrc'), '');
}

async function benchScaling(P) {
  const sec = section('scaling', 'Per-command cost as the cwd and the domain list grow', 'ms', 'lower');
  const rounds = Q ? 4 : 20;
  const sizes = Q ? [10, 5000] : [10, 10000, 100000];
  const domainsN = [1, 10, 100];
  const domainList = (n) => Array.from({ length: n }, (_, i) => (i === 0 ? 'example.com' : `host${i}.example.org`));
  const srtMod = P.srt === true ? await import(pathToFileURL(SRT_LIB).href) : null;
  const CORDON = 'cordon Sandbox.run', SRT = 'srt SandboxManager.wrapWithSandbox + spawn';
  const trees = [];
  for (const n of sizes) {
    const dir = join(TMP, `tree-${n}`);
    const t0 = Date.now();
    makeTree(dir, n);
    trees.push({ n, dir });
    log(`scaling: made ${n} files in ${Date.now() - t0} ms`);
  }
  // Every (tool, size) pair runs interleaved with every other, so load on
  // the machine hits them alike. cordon gets one Sandbox per domain-list
  // size; srt's manager is a singleton, so it is switched with updateConfig
  // outside the timed part.
  const closers = [];
  const cwdVariants = [], domVariants = [];
  const declare = (list, tool, metric, run) => list.push({ seq: seqNext(), name: `${tool} @ ${metric}`, tool, metric, run });
  if (P.lib === true) {
    try {
      const boxes = new Map();
      for (const n of domainsN) {
        const a = await cordonSandbox(P, domainList(n));
        closers.push(a.close);
        boxes.set(n, a);
      }
      await boxes.get(1).run(trees[0].dir);
      for (const t of trees) declare(cwdVariants, CORDON, `cwd with ${t.n} files`, () => boxes.get(1).run(t.dir));
      for (const n of domainsN) declare(domVariants, CORDON, `${n} allowed domains`, () => boxes.get(n).run());
    } catch (e) { skipRow(sec, CORDON, firstLine(e), { metric: 'all' }); }
  } else skipRow(sec, CORDON, P.lib, { metric: 'all' });
  if (P.srt === true) {
    try {
      const a = await managerAdapter(srtMod, 'srt', domainList(1));
      closers.push(a.close);
      await a.run(trees[0].dir);
      let current = 1;
      const withDomains = (n, fn) => () => {
        if (current !== n) { srtMod.SandboxManager.updateConfig(srtConfig(domainList(n))); current = n; }
        return fn();
      };
      for (const t of trees) declare(cwdVariants, SRT, `cwd with ${t.n} files`, withDomains(1, () => a.run(t.dir)));
      for (const n of domainsN) declare(domVariants, SRT, `${n} allowed domains`, withDomains(n, () => a.run()));
    } catch (e) { skipRow(sec, SRT, firstLine(e), { metric: 'all' }); }
  } else skipRow(sec, SRT, P.srt, { metric: 'all' });
  for (const variants of [cwdVariants, domVariants]) {
    const res = await interleave(variants, { rounds, warmup: 1 });
    for (const v of variants) {
      const sm = summarize(res.samples.get(v.name));
      const failed = res.failed.get(v.name);
      pushRow(sec, failed || !sm ? { name: v.tool, metric: v.metric, skipped: failed ?? 'no samples', seq: v.seq } : { name: v.tool, metric: v.metric, ...sm, seq: v.seq });
    }
  }
  for (const c of closers) { try { await c(); } catch {} }
  for (const tool of [CORDON, SRT]) {
    const small = rowOf(sec, tool, (r) => r.metric === `cwd with ${sizes[0]} files`);
    const big = rowOf(sec, tool, (r) => r.metric === `cwd with ${sizes.at(-1)} files`);
    if (small && big) sec.notes.push(`${tool}: a cwd of ${sizes.at(-1)} files costs ${fmt(big.median / small.median)}x the per-command time of ${sizes[0]} files.`);
    const d1 = rowOf(sec, tool, (r) => r.metric === '1 allowed domains');
    const d100 = rowOf(sec, tool, (r) => r.metric === '100 allowed domains');
    if (d1 && d100) sec.notes.push(`${tool}: 100 allowed domains cost ${fmt(d100.median / d1.median)}x the per-command time of 1.`);
  }
  for (const m of new Set(sec.rows.filter((r) => !r.skipped).map((r) => r.metric))) {
    compare(sec, CORDON, SRT, 'vs', (r) => r.metric === m);
  }
  sec.notes.push('Files in directories of 500, plus a nested .git/hooks and .bashrc for mandatory-deny discovery to find. Each tool wraps with the process cwd set to the tree (srt scans the process cwd).');
  return sec;
}

// ------------------------------------------------------------------- a pass
async function runPass() {
  const load0 = os.loadavg()[0];
  const P = await probe();
  const who = IS_ROOT ? 'root' : `uid ${process.getuid()}`;
  log(`pass as ${who}; available: ${Object.entries(P).filter(([k]) => k !== 'libModule').map(([k, v]) => `${k}=${v === true ? 'yes' : 'no'}`).join(' ')}`);
  const want = (id) => !opt.only || opt.only.has(id);
  const sections = [];
  const timed = async (id, fn) => {
    if (!want(id)) return;
    const t0 = Date.now();
    try { sections.push(await fn()); } catch (e) {
      const s = section(id, id, '', 'lower'); s.error = firstLine(e); sections.push(s);
    }
    log(`${id}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };
  await timed('cold', () => benchCold(P));
  await timed('percmd', () => benchPerCommand(P));
  if (want('throughput') || want('latency')) {
    let origin = null;
    try { origin = await startOrigin(P); } catch (e) { log('origin failed: ' + firstLine(e)); }
    if (origin) {
      await timed('throughput', () => benchThroughput(P, origin));
      await timed('latency', () => benchLatency(P, origin));
      origin.stop();
    }
  }
  await timed('memory', () => benchMemory(P));
  await timed('scaling', () => benchScaling(P));
  const available = Object.fromEntries(Object.entries(P).filter(([k]) => k !== 'libModule'));
  // Other work on a shared machine moves absolute numbers; say how busy it was.
  return { uid: process.getuid(), user: who, available, loadavg1m: { start: load0, end: os.loadavg()[0] }, sections };
}

// ------------------------------------------------------------------- goals
function goals(passes) {
  const get = (pass, id) => pass.sections.find((s) => s.id === id);
  const out = [];
  const add = (goal, target, eval_) => {
    const per = passes.map((p) => {
      try { return { user: p.user, ...eval_(p) }; } catch { return { user: p.user, measured: null }; }
    });
    out.push({ goal, target, passes: per });
  };
  const row = (p, id, name, pred) => { const s = get(p, id); return s && rowOf(s, name, pred); };
  // The goal is judged on the bench's own cwd (the temp dir's filesystem);
  // the tmpfs rows show how much of the rest is that filesystem.
  for (const [label, name] of [['', 'cordon Sandbox.run'], [' (cwd on tmpfs)', 'cordon Sandbox.run (cwd on tmpfs)']]) {
    add(`per command median${label}`, '<= 4 ms', (p) => {
      const r = row(p, 'percmd', name);
      return r ? { measured: `${fmt(r.median)} ms`, met: r.median <= 4 } : { measured: null };
    });
    add(`per command vs srt${label}`, '>= 6x faster', (p) => {
      const a = row(p, 'percmd', name), b = row(p, 'percmd', 'srt SandboxManager.wrapWithSandbox + spawn');
      return a && b ? { measured: `${fmt(b.median / a.median)}x`, met: b.median / a.median >= 6 } : { measured: null };
    });
  }
  // srt always starts its proxies, so "net on" is the like-for-like row;
  // "net off" is what a cordon user without network rules gets.
  for (const mode of ['net on', 'net off']) {
    add(`cold start vs srt (cordon ${mode})`, '>= 5x faster', (p) => {
      const a = row(p, 'cold', `cordon CLI (${mode})`), b = row(p, 'cold', 'srt CLI (proxies always on)');
      return a && b ? { measured: `${fmt(b.median / a.median)}x (${fmt(a.median)} vs ${fmt(b.median)} ms)`, met: b.median / a.median >= 5 } : { measured: null };
    });
  }
  add('launcher vs bwrap (issue 3)', 'median <= bwrap', (p) => {
    const a = row(p, 'cold', 'cordon-launcher (net off)'), b = row(p, 'cold', 'bwrap same + --tmpfs /tmp');
    return a && b ? { measured: `${fmt(a.median)} vs ${fmt(b.median)} ms`, met: a.median <= b.median } : { measured: null };
  });
  for (const path of ['HTTP CONNECT', 'plain HTTP', 'SOCKS5']) {
    add(`throughput ${path}`, '>= 70% of direct', (p) => {
      const a = row(p, 'throughput', `cordon ${path}`), d = row(p, 'throughput', 'direct (no sandbox)');
      return a && d ? { measured: `${fmt(100 * a.median / d.median)}%`, met: a.median / d.median >= 0.7 } : { measured: null };
    });
  }
  add('new HTTPS connection', '<= direct + 2 ms', (p) => {
    const a = row(p, 'latency', 'cordon via HTTPS_PROXY (CONNECT)'), d = row(p, 'latency', 'direct (no sandbox)');
    return a && d ? { measured: `${signed(a.median - d.median)} ms`, met: a.median - d.median <= 2 } : { measured: null };
  });
  add('whole-sandbox memory vs srt', '<= 1/5 of srt', (p) => {
    const metric = row(p, 'memory', 'cordon CLI (net on)', (r) => r.metric === 'whole sandbox PSS') && row(p, 'memory', 'srt CLI', (r) => r.metric === 'whole sandbox PSS') ? 'whole sandbox PSS' : 'whole sandbox RSS';
    const a = row(p, 'memory', 'cordon CLI (net on)', (r) => r.metric === metric), b = row(p, 'memory', 'srt CLI', (r) => r.metric === metric);
    return a && b ? { measured: `${fmt(a.median)} vs ${fmt(b.median)} MB ${metric.split(' ').pop()} (1/${fmt(b.median / a.median)})`, met: a.median * 5 <= b.median } : { measured: null };
  });
  return out;
}

// -------------------------------------------------------------- markdown
const signed = (x) => (x < 0 ? `−${fmt(-x)}` : `+${fmt(x)}`);
/** One line per headline measure and pass: the numbers a README quotes. */
function headline(passes) {
  const out = [];
  const cell = (r, unit) => (r ? `${fmt(r.median)} ${unit}` : '–');
  for (const p of passes) {
    const get = (id, name, pred) => { const s = p.sections?.find((x) => x.id === id); return s && rowOf(s, name, pred); };
    const pss = (n) => get('memory', n, (r) => r.metric === 'whole sandbox PSS');
    const rss = (n) => get('memory', n, (r) => r.metric === 'whole sandbox RSS');
    const usePss = pss('cordon CLI (net on)') && pss('srt CLI');
    const mem = (n) => (usePss ? pss(n) : rss(n));
    const lines = [
      ['cold start, `-- /bin/true`, network on', cell(get('cold', 'cordon CLI (net on)'), 'ms'), cell(get('cold', 'srt CLI (proxies always on)'), 'ms'), `bwrap ${cell(get('cold', 'bwrap --unshare-all (ro /, dev, proc)'), 'ms')}`],
      ['cold start, network off', cell(get('cold', 'cordon CLI (net off)'), 'ms'), '(no such mode)', `node -e 0: ${cell(get('cold', 'node -e 0'), 'ms')}`],
      ['launcher vs bwrap, same mounts', cell(get('cold', 'cordon-launcher (net off)'), 'ms'), '', `bwrap ${cell(get('cold', 'bwrap same + --tmpfs /tmp'), 'ms')}`],
      ['per command, long-lived process', cell(get('percmd', 'cordon Sandbox.run'), 'ms'), cell(get('percmd', 'srt SandboxManager.wrapWithSandbox + spawn'), 'ms'), `raw bwrap ${cell(get('percmd', 'raw bwrap spawn (argv)'), 'ms')}`],
      ['download through HTTP CONNECT', cell(get('throughput', 'cordon HTTP CONNECT'), 'MB/s'), cell(get('throughput', 'srt HTTP CONNECT'), 'MB/s'), `direct ${cell(get('throughput', 'direct (no sandbox)'), 'MB/s')}`],
      ['new HTTPS connection', cell(get('latency', 'cordon via HTTPS_PROXY (CONNECT)'), 'ms'), cell(get('latency', 'srt via HTTPS_PROXY (CONNECT)'), 'ms'), `direct ${cell(get('latency', 'direct (no sandbox)'), 'ms')}`],
      [`whole-sandbox memory (${usePss ? 'PSS' : 'RSS'}), network on`, cell(mem('cordon CLI (net on)'), 'MB'), cell(mem('srt CLI'), 'MB'), ''],
    ];
    for (const [what, cordon, srt, base] of lines) out.push({ what, user: p.user, cordon, srt, base });
  }
  // Group by measure so root and unprivileged sit next to each other.
  return out.sort((a, b) => lineOrder(a.what) - lineOrder(b.what));
}
const HEADLINE_ORDER = ['cold start, `-- /bin/true`', 'cold start, network off', 'launcher vs bwrap', 'per command', 'download', 'new HTTPS', 'whole-sandbox'];
const lineOrder = (what) => HEADLINE_ORDER.findIndex((p) => what.startsWith(p));
function markdown(doc) {
  const L = [];
  L.push(`# cordon benchmark results`);
  L.push('');
  L.push(`${doc.date} · Linux ${doc.kernel} · ${doc.cpus} CPUs · ${doc.mode} run · nice ${doc.nice} · node ${doc.tools.node} · srt ${doc.tools.srt ?? 'missing'} · bwrap ${doc.tools.bwrap ?? 'missing'} · cordon ${doc.tools.cordon}`);
  L.push('');
  L.push('Medians of interleaved runs (A, B, A, B, …) after a warm-up; min–max in brackets. Ratios compare medians measured in the same run. Produced by `npm run bench`; raw data in `bench/results.json`.');
  L.push('');
  L.push('## Goals');
  L.push('');
  L.push(`| goal | target | ${doc.passes.map((p) => p.user).join(' | ')} |`);
  L.push(`|---|---|${doc.passes.map(() => '---').join('|')}|`);
  for (const g of doc.goals) {
    L.push(`| ${g.goal} | ${g.target} | ${g.passes.map((p) => (p.measured == null ? 'not measured' : `${p.measured} ${p.met ? '✅' : '❌ **missed**'}`)).join(' | ')} |`);
  }
  L.push('');
  L.push('## At a glance');
  L.push('');
  L.push('| measure | as | cordon | srt | baseline |');
  L.push('|---|---|---:|---:|---:|');
  for (const h of headline(doc.passes)) L.push(`| ${h.what} | ${h.user} | ${h.cordon} | ${h.srt} | ${h.base} |`);
  for (const pass of doc.passes) {
    L.push('');
    L.push(`## As ${pass.user}`);
    if (pass.error) { L.push(''); L.push(`Pass failed: ${pass.error}`); }
    if (pass.available) {
      L.push('');
      L.push('Pieces found: ' + Object.entries(pass.available).map(([k, v]) => `${k} ${v === true ? 'ok' : `**no** (${v})`}`).join(' · ') +
        (pass.loadavg1m ? ` · load average ${fmt(pass.loadavg1m.start)} → ${fmt(pass.loadavg1m.end)} on ${doc.cpus} CPUs` : ''));
    }
    for (const s of pass.sections) {
      L.push('');
      L.push(`### ${s.title}${s.unit ? ` (${s.unit}, ${s.better} is better)` : ''}`);
      L.push('');
      if (s.error) { L.push(`Section failed: ${s.error}`); continue; }
      const hasMetric = s.rows.some((r) => r.metric);
      L.push(`| variant |${hasMetric ? ' metric |' : ''} median | [min – max] | n | compared |`);
      L.push(`|---|${hasMetric ? '---|' : ''}---:|---|---:|---|`);
      for (const r of ordered(s.rows)) {
        const m = hasMetric ? ` ${r.metric ?? ''} |` : '';
        if (r.skipped) { L.push(`| ${r.name} |${m} skipped: ${r.skipped.replace(/\|/g, '/')} | | | |`); continue; }
        const cmp = [];
        for (const x of r.ratios ?? []) {
          if (x.value == null) continue;
          if (s.better !== 'lower') cmp.push(`${fmt(100 * x.value)}% of ${x.to}`);
          else if (s.unit !== 'ms') cmp.push(`${fmt(100 / x.value)}% of ${x.to}`);
          else if (x.value >= 1) cmp.push(`${fmt(x.value)}x faster than ${x.to}`);
          else cmp.push(`${fmt(1 / x.value)}x slower than ${x.to}`);
        }
        if (r.overDirectMs != null) cmp.push(`${signed(r.overDirectMs)} ms vs direct`);
        L.push(`| ${r.name} |${m} ${fmt(r.median)} | [${fmt(r.min)} – ${fmt(r.max)}] | ${r.n} | ${cmp.join('; ')} |`);
      }
      for (const n of s.notes) L.push(`\n_${n}_`);
    }
  }
  L.push('');
  return L.join('\n');
}

// -------------------------------------------------- unprivileged second pass
/** Re-runs this script as uid 65534 from a world-readable copy (the checkout
 *  may sit under a 0700 home) and returns its pass. */
async function unprivilegedPass() {
  const uid = Number(process.env.CORDON_BENCH_UID ?? 65534);
  if (!have('setpriv')) return { user: `uid ${uid}`, uid, error: 'setpriv not installed', sections: [] };
  const copy = mkdtempSync(join(os.tmpdir(), 'cordon-bench-unpriv-'));
  try {
    for (const p of ['package.json', 'dist', 'bench', 'node_modules']) {
      if (existsSync(join(ROOT, p))) cpSync(join(ROOT, p), join(copy, p), { recursive: true, verbatimSymlinks: true });
    }
    spawnSync('chmod', ['-R', 'a+rX', copy]);
    chmodSync(copy, 0o755);
    const home = join(copy, 'home');
    const out = join(copy, 'out');
    mkdirSync(home); mkdirSync(out);
    chownSync(home, uid, uid); chownSync(out, uid, uid);
    const file = join(out, 'pass.json');
    const tmpfs = mountTmpfs(join(copy, 'tmpfs'), '1777');
    const args = [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', NODE, join(copy, 'bench', 'run.mjs'), '--child', file];
    if (Q) args.push('--quick');
    if (opt.only) args.push(`--only=${[...opt.only].join(',')}`);
    log(`second pass as uid ${uid} from ${copy}`);
    const r = spawnSync('setpriv', args, {
      cwd: copy, stdio: ['ignore', 'inherit', 'inherit'],
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', ...(tmpfs ? { CORDON_BENCH_TMPFS: tmpfs } : {}) },
    });
    if (tmpfs) spawnSync('umount', ['-l', tmpfs], { stdio: 'ignore' });
    if (!existsSync(file)) return { user: `uid ${uid}`, uid, error: `unprivileged pass exited ${r.status}`, sections: [] };
    return JSON.parse(readFileSync(file, 'utf8'));
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

// -------------------------------------------------------------------- main
const t0 = Date.now();
const pass = await runPass();
if (opt.child) {
  writeFileSync(opt.child, JSON.stringify(pass));
  process.exit(0);
}
const passes = [pass];
if (IS_ROOT && !opt.rootOnly) passes.push(await unprivilegedPass());
else if (opt.unpriv && !IS_ROOT) log('--unprivileged: already unprivileged; one pass only');

const doc = {
  date: new Date().toISOString(),
  kernel: os.release(),
  arch: process.arch,
  cpus: os.cpus().length,
  mode: Q ? 'quick' : 'full',
  nice: NICE,
  durationS: Math.round((Date.now() - t0) / 1000),
  tools: toolVersions(),
  passes,
};
doc.goals = goals(passes);
// A partial run (--only) must not replace the committed full results.
const outDir = opt.out ?? (opt.only ? join(os.tmpdir(), 'cordon-bench-results') : join(ROOT, 'bench'));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'results.json'), JSON.stringify(doc, null, 2) + '\n');
writeFileSync(join(outDir, 'results.md'), markdown(doc));
log(`done in ${doc.durationS} s; wrote ${join(outDir, 'results.json')} and results.md`);
