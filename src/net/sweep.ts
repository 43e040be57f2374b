// A host process killed with SIGKILL (the cordon CLI, or a program using the
// library) cannot remove its session directory: the 0700 dir and its
// relay.sock stay in the temp dir. Every sandbox ends with its launcher
// (PDEATHSIG), so such a socket has no listener any more. The next session
// removes those: only directories named like ours, owned by this uid, older
// than a grace period, whose socket refuses connections. The same holds for
// the spawn server's directory (src/sandbox/spawn-server.ts): the server
// dies with its host (PDEATHSIG).
import { connect } from 'node:net';
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Session directory name -> the socket that is listening while it lives. */
const NAME = /^cordon-(net|spawn)-[A-Za-z0-9]{6}$/;
const SOCKET: Record<string, string> = { net: 'relay.sock', spawn: 'spawn.sock' };

function refuses(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (v: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    // A live listener that is slow to accept is alive, not stale.
    const t = setTimeout(() => done(false), 1000);
    t.unref();
    s.once('connect', () => done(false));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED'));
  });
}

/** Removes stale session dirs under `base`; resolves with what it removed. */
export async function sweepStaleSessions(base: string, graceMs = 30_000): Promise<string[]> {
  const uid = process.getuid?.();
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base).filter((n) => NAME.test(n));
  } catch {
    return removed;
  }
  for (const n of names) {
    const dir = join(base, n);
    try {
      const st = lstatSync(dir);
      // The socket is made right after the dir, so a young dir may be a
      // session that is starting (bound, not yet listening).
      if (!st.isDirectory() || st.uid !== uid || Date.now() - st.mtimeMs < graceMs) continue;
      const sockPath = join(dir, SOCKET[NAME.exec(n)![1]!]!);
      const sock = lstatSync(sockPath);
      if (!sock.isSocket() || sock.uid !== uid) continue;
      if (!(await refuses(sockPath))) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      /* vanished or not ours: leave it */
    }
  }
  return removed;
}
