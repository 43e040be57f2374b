// Read policy through the cordon CLI: allowRead re-opening a credential store
// and deny-by-default reads. The catalog attacks F7, F8 and E1 live in the
// security catalog suite (catalog.test.mjs, catalog/group-f.mjs, group-he.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { WHO } from '../helpers.mjs';
import { project, assertRan } from './fs-util.mjs';

const canary = () => `CANARY-${randomBytes(8).toString('hex')}`;

test(`F7: allowRead re-opens a credential store on purpose (${WHO})`, () => {
  const p = project();
  const c = canary();
  try {
    mkdirSync(join(p.home, '.aws'));
    writeFileSync(join(p.home, '.aws', 'config'), c);
    const r = p.sh('cat ~/.aws/config; echo; echo CORDON-RAN', ['--allow-read', '~/.aws']);
    assertRan(assert, r);
    assert.ok(r.stdout.includes(c), 'allowRead should re-open ~/.aws');
  } finally {
    p.cleanup();
  }
});

test(`deny-by-default reads: only system dirs, writable and allowRead paths exist (${WHO})`, () => {
  const p = project();
  const c = canary();
  try {
    writeFileSync(join(p.home, 'notes.txt'), c);
    mkdirSync(join(p.home, 'docs'));
    writeFileSync(join(p.home, 'docs', 'ok.txt'), 'shared-doc');
    mkdirSync(join(p.root, 'other'));
    writeFileSync(join(p.root, 'other', 'x.txt'), c);
    const r = p.sh(
      [
        'cat ~/notes.txt 2>&1',
        `cat ${p.root}/other/x.txt 2>&1`,
        'cat ~/docs/ok.txt; echo',
        'echo w > written && cat written',
        'echo x > /new-root-file 2>/dev/null && echo ROOT-WRITABLE',
        'ls / | tr "\\n" " "; echo',
        'echo CORDON-RAN',
      ].join('; '),
      ['--deny-read-by-default', '--allow-read', '~/docs'],
    );
    assertRan(assert, r);
    assert.ok(!r.stdout.includes(c), `canary leaked:\n${r.stdout}`);
    assert.match(r.stdout, /shared-doc/);
    assert.match(r.stdout, /^w$/m);
    assert.doesNotMatch(r.stdout, /ROOT-WRITABLE/);
    assert.doesNotMatch(r.stdout, /\bhome\b.*\bmnt\b|\bsrv\b/);
  } finally {
    p.cleanup();
  }
});
