// `cordon explain`: the Plan in words, and the equivalent cordon-launcher
// command line, so a user can see (and re-run by hand) exactly what a
// command would get.
import type { Mount, Plan } from './policy/plan.js';
import { launcherArgs } from './sandbox/launcher-args.js';
import { quote } from './sandbox/shell-quote.js';

type Source = { kind: 'flag' | 'xdg' | 'srt'; path: string } | { kind: 'default' };

function mountLine(m: Mount): string {
  switch (m.op) {
    case 'ro-bind':
      return m.src === m.dst ? `read-only   ${m.dst}` : `read-only   ${m.dst}  (from ${m.src})`;
    case 'bind':
      return m.src === m.dst ? `writable    ${m.dst}` : `writable    ${m.dst}  (from ${m.src})`;
    case 'dev-bind':
      return `devices     ${m.dst}  (from ${m.src})`;
    case 'tmpfs':
      return `empty tmpfs ${m.dst}  (private, writable)`;
    case 'dev':
      return `minimal dev ${m.dst}`;
    case 'proc':
      return `proc        ${m.dst}`;
    case 'mask':
      return `hidden      ${m.path}`;
    case 'pin':
      return `pinned      ${m.path}  (cannot be moved or removed)`;
    case 'dir':
      return `directory   ${m.dst}`;
    case 'symlink':
      return `symlink     ${m.dst} -> ${m.target}`;
  }
}

export function renderExplain(plan: Plan, source: Source, launcher: string): string {
  const out: string[] = [];
  out.push(`command:  ${quote(plan.argv)}`);
  out.push(`cwd:      ${plan.cwd}`);
  out.push(`settings: ${source.kind === 'default' ? 'built-in default (no settings file found)' : source.path}`);
  out.push('', 'filesystem, in order (later entries cover earlier ones):');
  plan.mounts.forEach((m, i) => out.push(`  ${String(i + 1).padStart(3)}. ${mountLine(m)}`));
  out.push('', 'environment:');
  for (const k of Object.keys(plan.env).sort()) out.push(`  ${k}=${plan.env[k]}`);
  const n = plan.network;
  out.push('', 'network:');
  if (n.mode === 'none') out.push('  none (own network namespace with only loopback)');
  else if (n.mode === 'host') out.push("  host (the host's network, unfiltered)");
  else out.push(`  through the host proxies only: HTTP on 127.0.0.1:${n.httpProxyPort}, SOCKS5 on 127.0.0.1:${n.socksProxyPort}; relayed ports ${n.relayPorts.join(', ')}`);
  if (n.publish.length) out.push(`  published to host 127.0.0.1: ${n.publish.join(', ')}`);
  out.push('', 'layers:');
  const us = plan.seccomp.unixSockets;
  out.push(
    `  seccomp:  ${plan.seccomp.enabled ? 'on' : 'off'}; Unix sockets: ${us.mode === 'only' ? `only ${us.paths.join(', ')}` : us.mode === 'all' ? 'all' : 'denied'}; nested user namespaces: ${plan.seccomp.allowNestedUserns ? 'allowed' : 'denied'}`,
  );
  out.push(`  landlock: ${plan.landlock.mode}; writable beneath: ${plan.landlock.writable.join(', ') || '(nothing)'}`);
  out.push('  always:   user/mount/pid/ipc/uts namespaces, new session, no_new_privs, all capabilities dropped, fds above 2 closed');
  if (plan.timeoutMs) out.push(`  timeout:  ${plan.timeoutMs} ms`);
  if (plan.notes.length) {
    out.push('', 'notes:');
    for (const note of plan.notes) out.push(`  - ${note}`);
  }
  const rt = {
    relaySocket: n.mode === 'proxy' ? '$RELAY_SOCKET' : undefined,
    publishSockets: new Map(n.publish.map((p) => [p, `$PUBLISH_SOCKET_${p}`])),
  };
  out.push('', 'equivalent launcher command line (proxy sockets are made per run):');
  out.push(`  ${quote([launcher, ...launcherArgs(plan, rt)])}`);
  return out.join('\n') + '\n';
}
