// Runs every test/**/*.test.mjs with node:test. A separate script (not a glob
// on the command line) so the same entry works from the unprivileged copy.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.mjs')) out.push(p);
  }
  return out;
}
const only = process.argv.slice(2);
const files = only.length ? only : collect('test', []);
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
