// Short soak (the long one is `npm run soak`): a few hundred commands through
// one Sandbox, sequential and concurrent, and CLI runs, a fifth of them with
// traffic through the proxies; after each phase nothing is left (processes,
// descriptors, sockets, mounts, temp and working-dir files). Runs soak.mjs in
// its own node process so the descriptor and RSS figures are its alone.
// Regression: before the fix in src/net/fast.ts every command left its
// relay's v2 control connection half-open in the host (one socket each).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ROOT, WHO, run, tempDir, have } from '../helpers.mjs';

test(`soak --short: no leftovers, no descriptor or RSS growth (${WHO})`, async (t) => {
  if (!have('curl')) return t.skip('curl is not installed');
  const tmp = tempDir('cordon-soak-out-');
  try {
    const out = join(tmp.dir, 'figures.json');
    const r = await run(process.execPath, ['--expose-gc', join(ROOT, 'test', 'reliability', 'soak.mjs'), '--short', '--json', out]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(f.failures, []);
    assert.deepEqual(f.phases.map((p) => p.errors), [0, 0, 0]);
    for (const p of f.phases) assert.ok(p.end.sockets <= p.start.sockets + 1, `${p.name}: sockets ${p.start.sockets} -> ${p.end.sockets}`);
  } finally {
    tmp.cleanup();
  }
});
