// The catalog suite's frame: one node:test test per attack-catalog ID, named
// "ID · name", each recording its outcome for the table printed at the end.
// Outcomes: blocked (the attack ran inside a real sandbox and the safe
// outcome was asserted), residual (a documented limit: the test asserts
// exactly what cordon does and docs/threat-model.md says why that is all),
// skipped (this kernel or machine lacks what the attack needs), FAILED.
import { test } from 'node:test';
import { spawnSync, spawn } from 'node:child_process';
import { copyFileSync, chmodSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cordon, WHO, CLI } from '../../helpers.mjs';
import { project as fsProject } from '../fs-util.mjs';
import { buildAttack, parseResults } from '../attacks/build.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const PY = '/usr/bin/python3';
export const results = [];
export const registered = [];

class Skip extends Error {}
class Residual extends Error {}

/** Registers catalog entry ID. fn(ctx) asserts the safe outcome; it may call
 *  ctx.skip(reason) (kernel lacks the feature) or ctx.residual(reason). */
export function entry(id, name, fn) {
  registered.push(id);
  test(`${id} · ${name} (${WHO})`, async (t) => {
    let residual;
    const ctx = {
      skip: (reason) => { throw new Skip(reason); },
      residual: (reason) => { residual = reason; },
    };
    try {
      await fn(ctx);
    } catch (e) {
      if (e instanceof Skip) {
        results.push({ id, name, outcome: `skipped: ${e.message}` });
        t.skip(e.message);
        return;
      }
      results.push({ id, name, outcome: `FAILED: ${String(e.message).split('\n')[0]}` });
      throw e;
    }
    results.push({ id, name, outcome: residual ? `residual: ${residual}` : 'blocked' });
  });
}

const ORDER = 'TFNPSUXHE';
function key(id) {
  return [ORDER.indexOf(id[0]), Number(id.slice(1))];
}

/** The table, printed once at the end of the file. */
export function table() {
  const rows = [...results].sort((a, b) => {
    const [x1, y1] = key(a.id), [x2, y2] = key(b.id);
    return x1 - x2 || y1 - y2;
  });
  const w = Math.max(...rows.map((r) => r.name.length), 4);
  const lines = [`attack catalog as ${WHO}: ${rows.length} entries`, `${'ID'.padEnd(4)} ${'name'.padEnd(w)} outcome`];
  for (const r of rows) lines.push(`${r.id.padEnd(4)} ${r.name.padEnd(w)} ${r.outcome}`);
  const count = (p) => rows.filter((r) => r.outcome.startsWith(p)).length;
  lines.push(`blocked ${count('blocked')}, residual ${count('residual')}, skipped ${count('skipped')}, FAILED ${count('FAILED')}`);
  return lines.join('\n');
}

/** fs-util's scratch project (W the writable cwd, a private HOME, sh()
 *  through the real CLI) plus cmd(argv) without a shell. */
export function project(prefix = 'cordon-cat-') {
  const p = fsProject(prefix);
  const cmd = (argv, flags = [], opts = {}) => cordon([...flags, '--', ...argv], { cwd: p.W, env: p.env, ...opts });
  return { ...p, cmd };
}

/** Async CLI run (when the harness serves something from this process). */
export function cordonAsync(args, opts = {}) {
  return new Promise((resolveP, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolveP({ code, signal, stdout, stderr }));
  });
}

/** A marker at the end of every in-sandbox script: without it a sandbox
 *  that never started would look like a blocked attack. */
export function ran(assert, r, marker = 'CORDON-RAN') {
  assert.ok(r.stdout.includes(marker), `the sandboxed command did not run to the end (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Python run inside the sandbox: prints what it printed. */
export function pyScript(code) {
  return `${PY} -c ${shq(code)}`;
}
export function shq(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

let attackBox;
/** The layer suite's attack.c plus catalog/extra.c, compiled once into a
 *  project dir, so the CLI's default policy (cwd writable, /tmp private)
 *  sees them. Returns { p, run(mode, args, flags) -> Map }. */
export function attacks() {
  if (attackBox) return attackBox;
  const a = buildAttack();
  const p = project('cordon-cat-bin-');
  copyFileSync(a.bin, join(p.W, 'attack'));
  chmodSync(join(p.W, 'attack'), 0o755);
  a.cleanup();
  const extra = join(p.W, 'extra');
  const g = spawnSync('gcc', ['-O1', '-o', extra, join(HERE, 'extra.c')], { encoding: 'utf8' });
  if (g.status !== 0) throw new Error(`gcc extra.c: ${g.stderr}`);
  const cache = new Map();
  const run = (bin, args = [], flags = []) => {
    const k = JSON.stringify([bin, args, flags]);
    if (!cache.has(k)) {
      const r = p.cmd([join(p.W, bin), ...args], flags);
      if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')} in the sandbox failed (exit ${r.code}): ${r.stderr}`);
      cache.set(k, parseResults(r.stdout));
    }
    return cache.get(k);
  };
  attackBox = {
    p,
    bin: (name) => join(p.W, name),
    attack: (args, flags = []) => run('attack', [].concat(args), flags),
    extra: (args, flags = []) => run('extra', [].concat(args), flags),
    outside: (bin, args) => parseResults(spawnSync(join(p.W, bin), args, { encoding: 'utf8' }).stdout),
    cleanup: () => p.cleanup(),
  };
  return attackBox;
}

/** Removes the compiled attack programs, if any were built. */
export function cleanupAttacks() {
  attackBox?.cleanup();
  attackBox = undefined;
}
