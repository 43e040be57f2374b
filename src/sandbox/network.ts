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

interface SessionModule {
  startNetwork(opts: {
    network: NetworkConfig;
    ask?: AskCallback;
    onViolation?: (v: SandboxViolationEvent) => void;
    debug?: boolean | ((line: string) => void);
    violations?: SandboxViolationStore;
  }): Promise<RawSession> | RawSession;
}

interface RawSession {
  relaySocket: string;
  dir?: string;
  registerCommand(commandId: string, perCommand?: PerCommandLists, meta?: { command?: string }): string;
  unregisterCommand(token: string): void;
  setCommandLists?(token: string, perCommand: PerCommandLists | undefined): void;
  updateCommand?(token: string, perCommand: PerCommandLists | undefined): void;
  updateConfig(network: NetworkConfig): void;
  publish?(port: number): string | { socketPath: string } | Promise<string | { socketPath: string }>;
  close(): Promise<void> | void;
}

// A variable specifier keeps this module compiling before the network layer lands.
const SESSION_MODULE = '../net/session.js';

export async function ensureNetwork(o: NetworkStartOptions): Promise<NetworkSessionLike> {
  let mod: SessionModule;
  try {
    mod = (await import(SESSION_MODULE)) as SessionModule;
  } catch (e) {
    throw new UnsupportedError(`the network layer is not available in this build (${(e as Error).message})`, { cause: e });
  }
  const raw = await mod.startNetwork({
    network: o.network,
    ask: o.ask,
    onViolation: o.onViolation,
    debug: o.debug ?? false,
    violations: o.violations,
  });
  const published = new Map<number, string>();
  const session: NetworkSessionLike = {
    relaySocket: raw.relaySocket,
    ...(raw.dir !== undefined ? { dir: raw.dir } : {}),
    registerCommand: (id, lists, meta) => raw.registerCommand(id, lists, meta),
    unregisterCommand: (t) => raw.unregisterCommand(t),
    updateConfig: (n) => raw.updateConfig(n),
    close: async () => {
      await raw.close();
    },
  };
  const setLists = raw.setCommandLists ?? raw.updateCommand;
  if (setLists) session.setCommandLists = (t, l) => setLists.call(raw, t, l);
  for (const port of o.publish ?? []) {
    if (!raw.publish) {
      await raw.close();
      throw new UnsupportedError('publishing ports is not supported by this network layer');
    }
    const r = await raw.publish(port);
    published.set(port, typeof r === 'string' ? r : r.socketPath);
  }
  if (published.size) {
    session.publishSockets = (ports) => {
      const m = new Map<number, string>();
      for (const p of ports) {
        const s = published.get(p);
        if (s) m.set(p, s);
      }
      return m;
    };
  }
  return session;
}
