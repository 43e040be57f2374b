// The Plan: pure data produced by the policy compiler and executed by the
// launcher. It is the only thing that crosses from "deciding" (TypeScript) to
// "doing" (cordon-launcher), so it is printable (`cordon explain`) and every
// field maps onto one launcher flag (see src/sandbox/launcher-args.ts).

export type Mount =
  | { op: 'ro-bind' | 'bind' | 'dev-bind'; src: string; dst: string; try?: boolean }
  | { op: 'tmpfs'; dst: string }
  | { op: 'dev'; dst: string }
  | { op: 'proc'; dst: string }
  /** Hide a path (empty read-only dir or file). Missing paths under a
   *  writable mount get a placeholder that the launcher removes afterwards. */
  | { op: 'mask'; path: string }
  /** Bind a path onto itself so it cannot be renamed or removed inside. */
  | { op: 'pin'; path: string }
  | { op: 'dir'; dst: string }
  | { op: 'symlink'; target: string; dst: string };

export type UnixSocketPolicy =
  | { mode: 'deny' }
  | { mode: 'all' }
  | { mode: 'only'; paths: string[] };

export type LandlockMode = 'required' | 'best-effort' | 'off';

export interface NetworkPlan {
  /** 'none': own netns, only lo, no relays. 'proxy': own netns with relays to
   *  the host proxies. 'host': the host's network (explicit weaker mode). */
  mode: 'none' | 'proxy' | 'host';
  /** Ports on 127.0.0.1 inside the sandbox relayed to the host proxy socket:
   *  the HTTP proxy, the SOCKS5 proxy, and allowed host loopback ports. */
  relayPorts: number[];
  httpProxyPort: number;
  socksProxyPort: number;
  /** Inbound: host 127.0.0.1:port -> sandbox 127.0.0.1:port. */
  publish: number[];
}

export interface Plan {
  argv: string[];
  /** Working directory inside the sandbox (the same path as on the host). */
  cwd: string;
  /** The complete environment of the command (the launcher clears its own). */
  env: Record<string, string>;
  mounts: Mount[];
  hostname: string;
  network: NetworkPlan;
  seccomp: { enabled: boolean; unixSockets: UnixSocketPolicy; allowNestedUserns: boolean };
  landlock: { mode: LandlockMode; writable: string[] };
  /** Kill the sandbox after this many ms (0: no limit). */
  timeoutMs: number;
  /** Things the compiler chose or skipped that a user may want to know
   *  (printed by `cordon explain` and `--debug`). */
  notes: string[];
}
