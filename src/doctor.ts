// `cordon doctor`: which kernel features work here, from the launcher's own
// attempts (`cordon-launcher probe`), rendered as a table or passed through
// as JSON. Exit 0 when everything cordon needs works, 1 otherwise.
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
  const rows = Object.entries(report).filter((e): e is [string, Row] => typeof e[1] === 'object' && e[1] !== null && 'ok' in e[1]);
  const allOk = rows.every(([, row]) => row.ok);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ launcher: path, launcherVersion: version, ...report }, null, 2) + '\n');
    return allOk ? 0 : 1;
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
  out.push('', allOk ? 'everything cordon uses works here.' : 'some features do not work here; see the FAIL rows.');
  process.stdout.write(out.join('\n') + '\n');
  return allOk ? 0 : 1;
}
