// What the reliability checks look at on the host: processes of *our*
// launcher copy, this process's descriptors, RSS and mounts, and directory
// listings. A soak or fault run uses a private copy of cordon-launcher
// (CORDON_LAUNCHER), so "a process whose exe is that copy" names exactly the
// launchers, PID 1s, relays and egress helpers of this run, even while other
// test files run sandboxes in parallel. A command inside a sandbox cannot
// outlive its PID 1 (the kernel kills the pid namespace), so no launcher
// process left means nothing of the sandbox is left.
import { readdirSync, readlinkSync, readFileSync, copyFileSync, chmodSync, mkdtempSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

/** Copies the launcher into a fresh dir so its processes are ours alone. */
export function privateLauncher(src) {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-rel-bin-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'cordon-launcher');
  copyFileSync(src, path);
  chmodSync(path, 0o755);
  return { dir, path };
}

function pids() {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Whether `pid` is a spawn server of this process (`cordon-launcher serve`,
 *  started by a Sandbox's first run() and alive until its close()): the
 *  sandbox's own infrastructure, not a leftover of a command. Launchers it
 *  forks share its exe and command line, but their parent is the server. */
export function isSpawnServer(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return ppid === process.pid && argv[1] === 'serve';
  } catch {
    return false;
  }
}

/** Whether `pid` is a relay that a spawn server of this process keeps for
 *  the network namespaces it lends (launcher/src/netslot.rs): like the
 *  server, it lives until the sandbox's close(). */
export function isKeptRelay(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'cordon-relay' && isSpawnServer(ppid);
  } catch {
    return false;
  }
}

/** Launcher processes of `exe` that belong to commands (not a spawn server
 *  or a relay it keeps). */
export function sandboxProcesses(exe) {
  return launcherProcesses(exe).filter((p) => !isSpawnServer(p.pid) && !isKeptRelay(p.pid));
}

/** Live processes running `exe` (the private launcher copy). */
export function launcherProcesses(exe) {
  const out = [];
  for (const pid of pids()) {
    let target;
    try {
      target = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      continue;
    }
    if (target === exe || target === `${exe} (deleted)`) {
      let state = '?';
      try {
        state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
      } catch {
        continue;
      }
      out.push({ pid, state });
    }
  }
  return out;
}

/** Processes whose parent is `ppid` (unreaped or running children). */
export function childrenOf(ppid) {
  const out = [];
  for (const pid of pids()) {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === ppid) out.push(pid);
    } catch {
      /* gone */
    }
  }
  return out;
}

export function fdCount() {
  return readdirSync('/proc/self/fd').length;
}

export function socketFds() {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      /* the readdir's own fd */
    }
  }
  return n;
}

export function mounts() {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ').slice(3, 5).join(' '))
    .sort();
}

/** Every path under dir (relative), for before/after comparisons. */
export function listing(dir) {
  const out = [];
  const walk = (d, rel) => {
    let names;
    try {
      names = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of names) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(join(d, e.name), r);
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return out.sort();
}

export { until } from '../helpers.mjs';

export function rssMiB() {
  return Math.round((process.memoryUsage().rss / 1048576) * 10) / 10;
}

function stat(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { pid, comm: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), state: rest[0], ppid: Number(rest[1]), start: rest[19] };
  } catch {
    return undefined;
  }
}

/** `pid` and all its descendants, each with its start time (so a reused pid
 *  is not mistaken for a survivor). Uses only /proc/PID/stat, which any user
 *  can read even for the launcher's non-dumpable helpers. */
export function tree(pid) {
  const all = pids().map(stat).filter(Boolean);
  const out = [];
  const want = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) if (!want.has(p.pid) && want.has(p.ppid)) (want.add(p.pid), (grew = true));
  }
  for (const p of all) if (want.has(p.pid)) out.push(p);
  return out;
}

/** Which of `procs` (from tree()) still exist, zombies excluded. */
export function survivors(procs) {
  return procs.filter((p) => {
    const now = stat(p.pid);
    return now && now.start === p.start && now.state !== 'Z';
  });
}

/** Launcher processes (any copy: they all call themselves cordon-launcher)
 *  of this uid that lost their parent: a sandbox that outlived its host. */
export function orphanLaunchers() {
  const uid = process.getuid?.();
  return pids()
    .map(stat)
    .filter((p) => {
      if (!p || p.comm !== 'cordon-launcher' || p.ppid !== 1) return false;
      try {
        return Number(/Uid:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))[1]) === uid;
      } catch {
        return false;
      }
    });
}
