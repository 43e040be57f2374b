// The client of `cordon-launcher serve`: a small static process, started once
// per Sandbox, that forks launchers for it. child_process.spawn forks the
// whole Node process (page tables and all), milliseconds per command and
// more the bigger the host; asking the server is a few socket writes. The
// protocol is described in launcher/src/serve.rs.
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CordonError } from './errors.js';
import { sweepStaleSessions } from '../net/sweep.js';
import { infoReader, signalName, type LaunchInfo, type LaunchResult } from './launcher.js';

const MAGIC = Buffer.from('CDS1');

export interface ServedStdio {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** One launcher started through the server: streams of the command, the
 *  launcher's --info-fd records, and its exit status. */
export interface ServedLaunch {
  stdin: Socket | null;
  stdout: Socket | null;
  stderr: Socket | null;
  info: LaunchInfo;
  /** Sends a signal to the launcher (as ChildProcess.kill would). */
  kill(signal: NodeJS.Signals): boolean;
  /** The launcher's exit status once reaped and its info drained. */
  done: Promise<LaunchResult>;
}

function hello(kind: 'I' | 'O' | 'E' | 'R', id: number): Buffer {
  const b = Buffer.alloc(9);
  MAGIC.copy(b);
  b[4] = kind.charCodeAt(0);
  b.writeUInt32LE(id, 5);
  return b;
}

/** The request after its hello: u32 length, then mask, argc and each
 *  argument as u32 length + bytes. One buffer, written in place (a launcher
 *  argv has a hundred or more entries: the environment). */
function requestBody(args: string[], mask: number): Buffer {
  let size = 4 + 1 + 4;
  for (const a of args) size += 4 + Buffer.byteLength(a, 'utf8');
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32LE(size - 4, 0);
  b[4] = mask;
  b.writeUInt32LE(args.length, 5);
  let at = 9;
  for (const a of args) {
    const n = b.write(a, at + 4, 'utf8');
    b.writeUInt32LE(n, at);
    at += 4 + n;
  }
  return b;
}

/** n as the four latin1 characters of its little-endian bytes. */
function u32(n: number): string {
  return String.fromCharCode(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24);
}

/** requestBody(), after refusing a NUL byte. An all-ASCII argv (the usual
 *  case) is one string of length prefixes and arguments encoded by one
 *  native call: a write and a byteLength per argument cost ~20 us more. */
function request(args: string[], mask: number): Buffer {
  const all = args.join('');
  // The server would drop such a request unanswered; child_process.spawn
  // refuses it up front too.
  if (all.includes('\0')) throw new CordonError('EINVAL', 'the launcher arguments contain a NUL byte');
  if (Buffer.byteLength(all, 'utf8') !== all.length) return requestBody(args, mask);
  let s = u32(5 + 4 * args.length + all.length) + String.fromCharCode(mask) + u32(args.length);
  for (const a of args) s += u32(a.length) + a;
  return Buffer.from(s, 'latin1');
}

/** Connections opened ahead of a run: its stdout, stderr and request, each
 *  hello already sent (and, for the request, read by the server, which then
 *  waits for the body). */
interface Spare {
  id: number;
  stdout: Socket;
  stderr: Socket;
  req: Socket;
  /** One of them closed or failed before use (a dead server). */
  broken: boolean;
  /** Closes the set (unused). */
  onGone: () => void;
  /** One of its connections ended or failed: the server's doing. */
  ended: () => void;
}

export class SpawnServer {
  private nextId = 1;
  private dead = false;
  /** At most one set, handed to exactly one launch() and never reused. */
  private spare: Spare | undefined;
  private spareQueued = false;

  private constructor(
    private readonly proc: ChildProcess,
    private readonly control: Socket,
    private readonly dir: string,
    private readonly socket: string,
  ) {
    proc.once('exit', () => {
      this.dead = true;
      this.spare?.onGone();
    });
  }

  /** Starts the server and waits until it listens. */
  static start(launcher: string): Promise<SpawnServer> {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-spawn-'));
    const socket = join(dir, 'spawn.sock');
    // Directories of hosts that were SIGKILLed (their server died with them).
    void sweepStaleSessions(tmpdir()).catch(() => {});
    const proc = spawn(launcher, ['serve', socket], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'], env: {} });
    const control = proc.stdio[3] as Socket;
    return new Promise((resolve, reject) => {
      let got = '';
      const fail = (why: string) => {
        cleanup();
        proc.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
        reject(new Error(`the spawn server did not start: ${why}`));
      };
      const onData = (d: Buffer) => {
        got += d.toString('utf8');
        if (!got.includes('ready\n')) return;
        cleanup();
        // Neither keeps the host alive: running commands do (their sockets).
        proc.unref();
        control.unref();
        const srv = new SpawnServer(proc, control, dir, socket);
        srv.refillSpare();
        resolve(srv);
      };
      const onExit = (code: number | null, sig: NodeJS.Signals | null) => fail(sig ? `killed by ${sig}` : `exit ${code}`);
      const onError = (e: Error) => fail(e.message);
      const cleanup = () => {
        control.off('data', onData);
        proc.off('exit', onExit);
        proc.off('error', onError);
      };
      control.on('data', onData);
      proc.once('exit', onExit);
      proc.once('error', onError);
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** A connection the server ended on its own: it does so only when it
   *  exits (an idle spare, a request without a status line). The 'exit'
   *  event comes later (SIGCHLD follows the closing of its descriptors), so
   *  the process is looked at now: exiting (PF_EXITING), a zombie, or gone
   *  means the next run must get a new server, not this one's failure again.
   *  Not yet reaped, the pid is still our child's. */
  private checkGone(): void {
    if (this.dead || this.proc.pid === undefined) return;
    try {
      const st = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' || f[0] === 'X' || (Number(f[6]) & 0x4) !== 0) this.dead = true;
    } catch {
      this.dead = true;
    }
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return id;
  }

  private open(kind: 'I' | 'O' | 'E' | 'R', id: number): Socket {
    const s = createConnection(this.socket);
    s.write(hello(kind, id));
    return s;
  }

  /** Opens the next run's connections now, so that run() only writes its
   *  request: connecting, and the server's accept and hello reads, cost
   *  ~0.3 ms that would otherwise sit between run() and the fork. */
  private refillSpare(): void {
    if (this.dead || this.spare) return;
    const id = this.takeId();
    const set: Spare = { id, stdout: this.open('O', id), stderr: this.open('E', id), req: this.open('R', id), broken: false, onGone: () => {}, ended: () => {} };
    // A server that dies takes these with it: a broken set is never handed
    // out (its 'close' may already have fired, unseen by the run's listeners).
    set.onGone = () => {
      set.broken = true;
      if (this.spare === set) this.spare = undefined;
      for (const s of [set.stdout, set.stderr, set.req]) s.destroy();
    };
    set.ended = () => {
      set.onGone();
      this.checkGone();
    };
    for (const s of [set.stdout, set.stderr, set.req]) {
      s.once('close', set.ended);
      s.on('error', set.ended);
      // Unused, they must not keep the host alive; a run refs them again.
      s.unref();
    }
    this.spare = set;
  }

  /** The spare set if it is whole (now no longer spare). */
  private takeSpare(): Spare | undefined {
    const set = this.spare;
    this.spare = undefined;
    if (!set) return undefined;
    for (const s of [set.stdout, set.stderr, set.req]) {
      s.off('close', set.ended);
      s.off('error', set.ended);
    }
    if (set.broken || set.stdout.destroyed || set.stderr.destroyed || set.req.destroyed) {
      for (const s of [set.stdout, set.stderr, set.req]) s.destroy();
      return undefined;
    }
    for (const s of [set.stdout, set.stderr, set.req]) s.ref();
    return set;
  }

  /** Starts `cordon-launcher ARGS` (ARGS carry `--info-fd 3`). */
  launch(args: string[], stdio: ServedStdio): ServedLaunch {
    const body = request(args, (stdio.stdin ? 1 : 0) | (stdio.stdout ? 2 : 0) | (stdio.stderr ? 4 : 0));
    // The spare set has both output streams: a launch without them opens
    // its own (an unused stream would wait in the server forever).
    const set = stdio.stdout && stdio.stderr ? this.takeSpare() : undefined;
    const id = set ? set.id : this.takeId();
    const stdin = stdio.stdin ? this.open('I', id) : null;
    const stdout = set ? set.stdout : stdio.stdout ? this.open('O', id) : null;
    const stderr = set ? set.stderr : stdio.stderr ? this.open('E', id) : null;
    const req = set ? set.req : this.open('R', id);
    req.write(body);
    // After this run's request is on its way, not before it.
    if (!this.spareQueued) {
      this.spareQueued = true;
      setImmediate(() => {
        this.spareQueued = false;
        this.refillSpare();
      }).unref();
    }

    const info: LaunchInfo = { records: [] };
    let status: LaunchResult | undefined;
    let ended = false;
    // The launcher's own records, then the server's line with its status.
    const reader = infoReader(info, (rec) => {
      if (typeof rec['launcher-status'] === 'number') status = { code: rec['launcher-status'] as number, signal: null, info };
      else if (typeof rec['launcher-signal'] === 'number') status = { code: null, signal: signalName(rec['launcher-signal'] as number) ?? 'SIGKILL', info };
    });
    const done = new Promise<LaunchResult>((resolve, reject) => {
      req.setEncoding('utf8');
      req.on('data', (d: string) => reader.push(d));
      const finish = () => {
        if (ended) return;
        ended = true;
        reader.end();
        if (status) resolve(status);
        else {
          this.checkGone();
          reject(new CordonError('ESPAWNSERVER', 'the spawn server ended before the command did (was it killed?)'));
        }
      };
      req.on('end', finish);
      req.on('close', finish);
      req.on('error', () => {});
    });
    done.catch(() => {});
    // A command that exits without reading its input (EPIPE) or a server
    // that dies: the result says so, the streams just end.
    for (const s of [stdin, stdout, stderr]) s?.on('error', () => {});
    return {
      stdin,
      stdout,
      stderr,
      info,
      kill: (signal) => {
        const n = osConstants.signals[signal];
        if (ended || n === undefined || req.destroyed) return false;
        req.write(Buffer.from([n]));
        return true;
      },
      done,
    };
  }

  /** Stops the server; launchers still running die with it (PDEATHSIG). */
  close(): void {
    this.dead = true;
    this.spare?.onGone();
    this.control.destroy();
    this.proc.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The socket directory (removed at close; the host's exit hook removes it too). */
  get directory(): string {
    return this.dir;
  }
}
