// One network session per sandbox session: a single Unix socket in a fresh
// 0700 directory, to which the launcher's relays connect. Each connection
// starts with `CORDON1 <token> <port>\n` (docs/relay-protocol.md); the token
// names a registered command (unknown -> closed), the port chooses the HTTP
// proxy, the SOCKS5 proxy or a host loopback port the policy opens.
import { LAUNCHER_IN_SANDBOX, proxyEnv } from '../policy/proxy-env.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gate, splice, type ConnContext } from './gate.js';
import { HttpProxy } from './http-proxy.js';
import { SocksProxy } from './socks-proxy.js';
import {
  allowsHostLoopbackPort,
  compilePerCommand,
  compilePolicy,
  validPort,
  type AskCallback,
  type CompiledPolicy,
  type NetworkConfig,
  type PerCommandLists,
} from './policy.js';
import { AddressGuard, type Resolver } from './resolve.js';
import { dialViaRelay, handOver, RelayControl, type FastLink } from './fast.js';
import { SandboxViolationStore, type SandboxViolationEvent } from './violations.js';
import { sweepStaleSessions } from './sweep.js';

export interface NetworkSessionOptions {
  network: NetworkConfig;
  ask?: AskCallback;
  onViolation?: (v: SandboxViolationEvent) => void;
  /** A line sink, or true for stderr. */
  debug?: boolean | ((line: string) => void);
  violations?: SandboxViolationStore;
  /** Sandbox-side proxy ports (the relay tells us which one was used). */
  httpProxyPort?: number;
  socksProxyPort?: number;
  /** Where the session directory is made (default: os.tmpdir()). */
  tmpDir?: string;
  /** Path of cordon-launcher inside the sandbox, for GIT_SSH_COMMAND (default:
   *  the compiler's LAUNCHER_IN_SANDBOX). */
  launcherPathInSandbox?: string;
  connectTimeoutMs?: number;
  /** Refuse relay protocol v2 (every byte then passes through Node). */
  disableFastPath?: boolean;
  /** Test seams: a fake DNS table, and letting names resolve to loopback so
   *  fake-DNS origins can live on 127.0.0.1. Never set by the CLI/library. */
  resolver?: Resolver;
  allowLoopbackResolution?: boolean;
  localAddresses?: string[];
}

export interface PublishedPort {
  hostSocket: string;
  /** Same as hostSocket (the name the library adapter reads). */
  socketPath: string;
  port: number;
  close(): Promise<void>;
}

export interface NetworkSession {
  readonly relaySocket: string;
  readonly dir: string;
  readonly violations: SandboxViolationStore;
  registerCommand(commandId: string, perCommand?: PerCommandLists, meta?: { command?: string }): string;
  unregisterCommand(token: string): void;
  /** Replaces a registered command's per-command lists (next connection). */
  setCommandLists(token: string, perCommand: PerCommandLists | undefined): void;
  updateConfig(network: NetworkConfig): void;
  publish(port: number): Promise<PublishedPort>;
  proxyEnv(): Record<string, string>;
  close(): Promise<void>;
}

const PREAMBLE = /^CORDON1 ([A-Za-z0-9_-]{1,128}|-) ([0-9]{1,5})$/;
const PREAMBLE2 = /^CORDON2 ([A-Za-z0-9_-]{1,128}|-) (ctrl|[0-9]{1,5}) ([0-9a-f]{1,64})(?: ([0-9]{1,20}))?$/;

type Preamble =
  | { kind: 'v1'; token: string; port: number }
  | { kind: 'ctrl'; token: string; relay: string }
  | { kind: 'v2'; token: string; port: number; relay: string; connid: string };

function parsePreamble(line: string): Preamble | undefined {
  const m1 = PREAMBLE.exec(line);
  if (m1) return validPort(Number(m1[2])) ? { kind: 'v1', token: m1[1]!, port: Number(m1[2]) } : undefined;
  const m2 = PREAMBLE2.exec(line);
  if (!m2) return undefined;
  if (m2[2] === 'ctrl') return m2[4] === undefined ? { kind: 'ctrl', token: m2[1]!, relay: m2[3]! } : undefined;
  if (m2[4] === undefined || !validPort(Number(m2[2]))) return undefined;
  return { kind: 'v2', token: m2[1]!, port: Number(m2[2]), relay: m2[3]!, connid: m2[4] };
}
const PREAMBLE_MAX = 200;
const PREAMBLE_TIMEOUT_MS = 10_000;

/** Reads the relay preamble; leftover bytes are put back on the socket. */
function readPreamble(s: Socket): Promise<Preamble | undefined> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (v: Preamble | undefined) => {
      clearTimeout(timer);
      s.removeListener('data', onData);
      s.removeListener('end', onEnd);
      s.removeListener('close', onEnd);
      s.pause();
      resolve(v);
    };
    const onEnd = () => done(undefined);
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      const nl = buf.indexOf(10);
      if (nl === -1) {
        if (buf.length > PREAMBLE_MAX) done(undefined);
        return;
      }
      const p = parsePreamble(buf.subarray(0, nl).toString('latin1'));
      const rest = buf.subarray(nl + 1);
      if (!p) return done(undefined);
      s.removeListener('data', onData);
      s.pause();
      if (rest.length) s.unshift(rest);
      done(p);
    };
    const timer = setTimeout(() => done(undefined), PREAMBLE_TIMEOUT_MS);
    timer.unref();
    s.on('data', onData);
    s.on('end', onEnd);
    s.on('close', onEnd);
    s.resume();
  });
}

function listenUnix(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}

/** Environment for the sandboxed command, as srt sets it, pointing at the
 *  in-sandbox relay ports. No credentials: the relay adds the token. */
export function proxyEnvFor(httpPort: number, socksPort: number, launcherPath = LAUNCHER_IN_SANDBOX): Record<string, string> {
  return proxyEnv(httpPort, socksPort, launcherPath);
}

export async function startNetwork(opts: NetworkSessionOptions): Promise<NetworkSession> {
  let policy: CompiledPolicy = compilePolicy(opts.network);
  const httpPort = opts.httpProxyPort ?? 3128;
  const socksPort = opts.socksProxyPort ?? 1080;
  const violations = opts.violations ?? new SandboxViolationStore();
  const guard = new AddressGuard({
    resolver: opts.resolver,
    localAddresses: opts.localAddresses,
    allowLoopbackResolution: opts.allowLoopbackResolution,
  });
  const gate = new Gate({
    getPolicy: () => policy,
    ask: opts.ask,
    guard,
    violations,
    onViolation: opts.onViolation,
    debug: typeof opts.debug === 'function' ? opts.debug : opts.debug === true ? (l) => process.stderr.write(l + '\n') : undefined,
    connectTimeoutMs: opts.connectTimeoutMs,
  });
  const httpProxy = new HttpProxy(gate);
  const socksProxy = new SocksProxy(gate);
  const commands = new Map<string, ConnContext>();
  const live = new Set<Socket>();

  // Session dirs of SIGKILLed hosts (stale sockets) go; never delays us.
  void sweepStaleSessions(opts.tmpDir ?? tmpdir()).catch(() => {});
  const dir = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'cordon-net-'));
  chmodSync(dir, 0o700);
  const relaySocket = join(dir, 'relay.sock');

  const controls = new Map<string, RelayControl>();

  const forwardLoopback = async (s: Socket, port: number, ctx: ConnContext, link?: FastLink) => {
    if (!allowsHostLoopbackPort(port, { policy, perCommand: ctx.perCommand })) {
      gate.record('127.0.0.1', port, 'host loopback port is not on the allow list', ctx);
      return void s.destroy();
    }
    if (link) {
      const errno = await dialViaRelay(link, ['127.0.0.1'], port);
      if (errno !== undefined) return void s.destroy();
      gate.debug(`forward host 127.0.0.1:${port} via relay [command ${ctx.commandId}]`);
      return handOver(link, s, 0);
    }
    const up = connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
    up.once('connect', () => {
      gate.debug(`forward host 127.0.0.1:${port} [command ${ctx.commandId}]`);
      splice(s, up);
      s.resume();
    });
    up.once('error', () => {
      s.destroy();
      up.destroy();
    });
  };

  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    live.add(s);
    s.on('close', () => live.delete(s));
    s.on('error', () => s.destroy());
    void readPreamble(s).then((p) => {
      if (!p) {
        gate.debug('relay connection without a valid preamble: closed');
        return void s.destroy();
      }
      const ctx = commands.get(p.token);
      if (!ctx) {
        gate.debug('relay connection with an unknown token: closed');
        return void s.destroy();
      }
      if (p.kind === 'ctrl') {
        // Closing it makes the relay fall back to v1 for every connection.
        if (opts.disableFastPath) return void s.destroy();
        const key = `${p.token} ${p.relay}`;
        controls.get(key)?.close();
        const ctrl = new RelayControl(key, s, () => {
          if (controls.get(key) === ctrl) controls.delete(key);
        });
        controls.set(key, ctrl);
        return;
      }
      // A data connection whose relay has no live control connection (or
      // names another token's relay) is simply served as v1.
      const c = p.kind === 'v2' ? controls.get(`${p.token} ${p.relay}`) : undefined;
      const link: FastLink | undefined = c?.up && p.kind === 'v2' ? { ctrl: c, connid: p.connid } : undefined;
      if (p.port === httpPort) {
        if (link) void httpProxy.handleFast(s, ctx, link);
        else httpProxy.handle(s, ctx);
      } else if (p.port === socksPort) socksProxy.handle(s, ctx, link);
      else void forwardLoopback(s, p.port, ctx, link);
    });
  });
  try {
    await listenUnix(server, relaySocket);
    chmodSync(relaySocket, 0o600);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const published = new Set<PublishedPort>();
  let closed = false;

  const session: NetworkSession = {
    relaySocket,
    dir,
    violations,
    registerCommand(commandId, perCommand, meta) {
      const compiled = compilePerCommand(perCommand);
      const token = randomBytes(24).toString('base64url');
      commands.set(token, { commandId: String(commandId), perCommand: compiled, ...(meta?.command !== undefined ? { command: meta.command } : {}) });
      return token;
    },
    unregisterCommand(token) {
      commands.delete(token);
    },
    setCommandLists(token, perCommand) {
      const ctx = commands.get(token);
      if (ctx) ctx.perCommand = compilePerCommand(perCommand);
    },
    updateConfig(network) {
      policy = compilePolicy(network);
    },
    async publish(port) {
      if (!validPort(port)) throw new Error(`publish: invalid port ${port}`);
      const hostSocket = join(dir, `publish-${port}-${randomBytes(6).toString('hex')}.sock`);
      const conns = new Set<Socket>();
      const srv = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => {
        conns.add(c);
        c.on('close', () => conns.delete(c));
        c.on('error', () => c.destroy());
        const inner = connect({ path: hostSocket, allowHalfOpen: true });
        inner.once('connect', () => {
          splice(c, inner);
          c.resume();
        });
        inner.once('error', () => {
          c.destroy();
          inner.destroy();
        });
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', (e: NodeJS.ErrnoException) =>
          reject(new Error(`cannot publish port ${port}: 127.0.0.1:${port} ${e.code === 'EADDRINUSE' ? 'is already in use' : e.message}`)),
        );
        srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve());
      });
      const p: PublishedPort = {
        hostSocket,
        socketPath: hostSocket,
        port,
        close: () =>
          new Promise<void>((resolve) => {
            published.delete(p);
            for (const c of conns) c.destroy();
            srv.close(() => resolve());
          }),
      };
      published.add(p);
      return p;
    },
    proxyEnv() {
      return proxyEnvFor(httpPort, socksPort, opts.launcherPathInSandbox);
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...published].map((p) => p.close()));
      for (const s of live) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      httpProxy.close();
      commands.clear();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return session;
}
