// The security acceptance suite: every entry of the attack catalog
// (/work/shared/attack-catalog.md, groups T F N P S U X H E) as a real attack
// from inside a real sandbox made by the cordon CLI or library, one test per
// ID, and a table of outcomes at the end (docs/threat-model.md maps them).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { table, cleanupAttacks, registered } from './catalog/harness.mjs';
import './catalog/group-f.mjs';
import './catalog/group-tnps.mjs';
import './catalog/group-u.mjs';
import './catalog/group-x.mjs';
import './catalog/group-he.mjs';

// Registered last, so it runs after every entry: the suite covers the whole
// catalog, no ID missing or doubled.
test('the catalog is complete: one test per ID', () => {
  const want = [['T', 4], ['F', 17], ['N', 6], ['P', 10], ['S', 8], ['U', 6], ['X', 15], ['H', 2], ['E', 1]]
    .flatMap(([g, n]) => Array.from({ length: n }, (_, i) => `${g}${i + 1}`));
  assert.equal(want.length, 69);
  assert.deepEqual([...registered].sort(), want.sort());
});

after(() => {
  process.stdout.write(`\n${table()}\n`);
  cleanupAttacks();
});
