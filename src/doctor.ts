// `cordon doctor`: which kernel features work here, from the launcher's own
// attempts (`cordon-launcher probe`), rendered as a table or passed through
// as JSON, plus one real sandbox started the way the default policy starts
// it. Exit 0 when that sandbox runs (optional layers such as Landlock or
// user notification may be missing: their rows say so), 1 otherwise.
import { spawnSync } from 'node:child_process';
import { launcherPath, probeLauncher } from './sandbox/launcher.js';

interface Row {
  ok: boolean;
  error: string | null;
  [k: string]: unknown;
}

export async function runDoctor(opts: { json: boolean }): Promise<number> {
  const path = launcherPath();
  let version: string;
  try {
    version = probeLauncher(path);
  } catch (e) {
    process.stderr.write(`cordon: ${(e as Error).message}\n`);
    return 1;
  }
  const r = spawnSync(path, ['probe'], { encoding: 'utf8', timeout: 30_000, env: {} });
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    const why = (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n')[0];
    process.stderr.write(`cordon: cordon-launcher probe failed: ${why}\n`);
    return 1;
  }
  report.sandbox_run = tinySandbox(path);
  const rows = Object.entries(report).filter((e): e is [string, Row] => typeof e[1] === 'object' && e[1] !== null && 'ok' in e[1]);
  const allOk = rows.every(([, row]) => row.ok);
  const usable = report.sandbox_ok === true && (report.sandbox_run as Row).ok;
  if (opts.json) {
    process.stdout.write(JSON.stringify({ launcher: path, launcherVersion: version, ...report }, null, 2) + '\n');
    return usable ? 0 : 1;
  }
  const out = [`launcher: ${path} (${version})`, `kernel:   ${String(report.kernel ?? '?')} ${String(report.arch ?? '')}, uid ${String(report.uid ?? '?')}`, ''];
  const width = Math.max(...rows.map(([n]) => n.length), 4);
  for (const [name, row] of rows) {
    const extra = Object.entries(row)
      .filter(([k, v]) => k !== 'ok' && k !== 'error' && v !== null && !(Array.isArray(v) && v.length === 0))
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('; ') : String(v)}`)
      .join(', ');
    out.push(`  ${row.ok ? 'ok  ' : 'FAIL'}  ${name.padEnd(width)}  ${row.error ?? ''}${extra ? (row.error ? '; ' : '') + extra : ''}`);
  }
  out.push(
    '',
    allOk
      ? 'everything cordon uses works here.'
      : usable
        ? 'the default policy runs here; the FAIL rows are optional layers or policies that would be refused.'
        : 'cordon cannot run a sandbox here; see the FAIL rows.',
  );
  process.stdout.write(out.join('\n') + '\n');
  return usable ? 0 : 1;
}

/** Starts one real sandbox with every default layer, the way `cordon -- cmd`
 *  does, so "works" means works, not "the kernel version looks right". */
function tinySandbox(launcher: string): Row {
  const args = ['run', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--unshare-net',
    '--landlock', 'best-effort', '--landlock-write', '/tmp', '--', '/bin/true'];
  const r = spawnSync(launcher, args, { encoding: 'utf8', timeout: 10_000, env: {} });
  if (r.status === 0) return { ok: true, error: null };
  const why = (r.stderr || `exit ${r.status ?? r.signal}`).trim().split('\n')[0] ?? '';
  return { ok: false, error: why, remedy: 'see the rows above; `cordon-launcher run --ro-bind / / -- /bin/true` reproduces it' };
}
