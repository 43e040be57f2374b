// The library's view of the host network session (src/net/session.ts, owned
// by the network layer). Loaded only when a policy has a network, so a
// no-network sandbox never pays for the proxies' modules.
import type { SandboxViolationEvent, SandboxViolationStore } from '../net/violations.js';
import type { AskCallback, NetworkConfig, PerCommandLists } from '../net/policy.js';
import { UnsupportedError } from './errors.js';

export interface NetworkSessionLike {
  /** Host Unix socket the launcher's relays connect to. */
  relaySocket: string;
  /** The session's private directory (removed by close()). */
  dir?: string;
  /** A token for one command: its connections are attributed to commandId
   *  and decided with its per-command lists. */
  registerCommand(commandId: string, perCommand?: PerCommandLists, meta?: { command?: string }): string;
  unregisterCommand(token: string): void;
  /** Replaces a registered command's per-command lists (next connection). */
  setCommandLists?(token: string, perCommand: PerCommandLists | undefined): void;
  updateConfig(network: NetworkConfig): void;
  /** Host socket paths for published ports (inbound). */
  publishSockets?(ports: number[]): Map<number, string>;
  close(): Promise<void>;
}

export interface NetworkStartOptions {
  network: NetworkConfig;
  ask?: AskCallback;
  debug?: (line: string) => void;
  violations: SandboxViolationStore;
  onViolation: (v: SandboxViolationEvent) => void;
  /** Ports to publish for the life of the session (host 127.0.0.1:PORT -> sandbox). */
  publish?: number[];
}

export async function ensureNetwork(o: NetworkStartOptions): Promise<NetworkSessionLike> {
  let mod: typeof import('../net/session.js');
  try {
    mod = await import('../net/session.js');
  } catch (e) {
    throw new UnsupportedError(`the network layer is not available in this build (${(e as Error).message})`, { cause: e });
  }
  const raw = await mod.startNetwork({
    network: o.network,
    ...(o.ask ? { ask: o.ask } : {}),
    onViolation: o.onViolation,
    debug: o.debug ?? false,
    violations: o.violations,
  });
  const published = new Map<number, string>();
  try {
    for (const port of o.publish ?? []) published.set(port, (await raw.publish(port)).socketPath);
  } catch (e) {
    await raw.close();
    throw e;
  }
  return {
    relaySocket: raw.relaySocket,
    dir: raw.dir,
    registerCommand: (id, lists, meta) => raw.registerCommand(id, lists, meta),
    unregisterCommand: (t) => raw.unregisterCommand(t),
    setCommandLists: (t, l) => raw.setCommandLists(t, l),
    updateConfig: (n) => raw.updateConfig(n),
    ...(published.size
      ? {
          publishSockets: (ports: number[]) => {
            const m = new Map<number, string>();
            for (const p of ports) {
              const s = published.get(p);
              if (s) m.set(p, s);
            }
            return m;
          },
        }
      : {}),
    close: () => raw.close(),
  };
}
