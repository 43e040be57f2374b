// Plan -> cordon-launcher argv. Mechanical on purpose: every decision was made
// by the compiler, so `cordon explain` can print exactly what will run.
import type { Mount, Plan } from '../policy/plan.js';

/** Per-run facts that are not policy: where the host proxy listens and the
 *  token that ties this command's connections to it. */
export interface LaunchRuntime {
  relaySocket?: string;
  relayToken?: string;
  /** host Unix socket path per published port */
  publishSockets?: Map<number, string>;
  infoFd?: number;
  /** The environment the launcher itself will be started with, when the
   *  caller spawns it (SandboxManager.wrapWithSandbox): instead of
   *  --clearenv + the whole Plan env, only the differences are passed
   *  (--unsetenv for what the policy removes, --setenv for what it adds), so
   *  the wrapped string does not carry a copy of every variable's value. */
  envBase?: Record<string, string | undefined>;
  /** Leave out --chdir: the command starts in whatever directory the caller
   *  spawns the launcher in (srt's wrapWithSandbox strings behave so). */
  inheritCwd?: boolean;
}

function envArgs(env: Record<string, string>, base: Record<string, string | undefined> | undefined): string[] {
  const a: string[] = [];
  if (!base) {
    a.push('--clearenv');
    for (const [k, v] of Object.entries(env)) a.push('--setenv', k, v);
    return a;
  }
  for (const k of Object.keys(base)) if (base[k] !== undefined && !(k in env)) a.push('--unsetenv', k);
  for (const [k, v] of Object.entries(env)) if (base[k] !== v) a.push('--setenv', k, v);
  return a;
}

function mountArgs(m: Mount): string[] {
  switch (m.op) {
    case 'ro-bind':
    case 'bind':
    case 'dev-bind':
      return [`--${m.op}${m.try ? '-try' : ''}`, m.src, m.dst];
    case 'tmpfs':
    case 'dev':
    case 'proc':
    case 'dir':
      return [`--${m.op}`, m.dst];
    case 'mask':
    case 'pin':
      return [`--${m.op}`, m.path];
    case 'symlink':
      return ['--symlink', m.target, m.dst];
  }
}

export function launcherArgs(plan: Plan, rt: LaunchRuntime = {}): string[] {
  const a: string[] = ['run'];
  for (const m of plan.mounts) a.push(...mountArgs(m));
  if (!rt.inheritCwd) a.push('--chdir', plan.cwd);
  a.push('--hostname', plan.hostname);
  a.push(...envArgs(plan.env, rt.envBase));

  if (plan.network.mode === 'host') a.push('--share-net');
  else a.push('--unshare-net');
  if (plan.network.mode === 'proxy') {
    if (!rt.relaySocket) throw new Error('launcherArgs: proxy network needs a relay socket');
    a.push('--relay-socket', rt.relaySocket);
    if (rt.relayToken) a.push('--relay-token', rt.relayToken);
    for (const p of plan.network.relayPorts) a.push('--relay', String(p));
  }
  for (const port of plan.network.publish) {
    const sock = rt.publishSockets?.get(port);
    if (!sock) throw new Error(`launcherArgs: no host socket for published port ${port}`);
    a.push('--publish', sock, String(port));
  }

  if (!plan.seccomp.enabled) a.push('--no-seccomp');
  const us = plan.seccomp.unixSockets;
  if (us.mode === 'all') a.push('--allow-unix-sockets');
  else if (us.mode === 'only') for (const p of us.paths) a.push('--allow-unix-socket', p);
  if (plan.seccomp.allowNestedUserns) a.push('--allow-userns');

  a.push('--landlock', plan.landlock.mode);
  for (const p of plan.landlock.writable) a.push('--landlock-write', p);
  if (plan.timeoutMs > 0) a.push('--timeout-ms', String(plan.timeoutMs));
  if (rt.infoFd !== undefined) a.push('--info-fd', String(rt.infoFd));

  a.push('--', ...plan.argv);
  return a;
}
