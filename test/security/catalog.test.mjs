// The security acceptance suite: every entry of the attack catalog
// (/work/shared/attack-catalog.md, groups T F N P S U X H E) as a real attack
// from inside a real sandbox made by the cordon CLI or library, one test per
// ID, and a table of outcomes at the end (docs/threat-model.md maps them).
import { after } from 'node:test';
import { results, table, attacks } from './catalog/harness.mjs';
import './catalog/group-f.mjs';
import './catalog/group-tnps.mjs';
import './catalog/group-u.mjs';
import './catalog/group-x.mjs';
import './catalog/group-he.mjs';

after(() => {
  process.stdout.write(`\n${table()}\n`);
  if (results.length) attacks().cleanup();
});
