// Short fuzz run (the long one is `npm run fuzz`): the HTTP proxy and the
// SOCKS5 server through the session's relay socket (coverage-guided
// mutations), properties of the pattern parser / host canonicalization /
// address guard, and random argv for cordon-launcher. Runs fuzz.mjs in its
// own process (its oracles watch that process's exceptions and descriptors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ROOT, WHO, run, tempDir } from '../helpers.mjs';

test(`fuzz (20 s): no crash, hang, forbidden dial, DNS leak, property failure or launcher panic (${WHO})`, async () => {
  const tmp = tempDir('cordon-fuzz-out-');
  try {
    const out = join(tmp.dir, 'fuzz.json');
    const r = await run(process.execPath, [join(ROOT, 'test', 'reliability', 'fuzz.mjs'), '--seconds', '20', '--json', out]);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(f.findings, [], r.stdout.slice(-3000));
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    // It really ran: every target executed and the proxies were exercised.
    assert.ok(f.stats.http.execs > 200 && f.stats.socks.execs > 200, JSON.stringify(f.stats));
    assert.ok(f.stats.props.cases > 1000 && f.stats.launcher.execs > 20, JSON.stringify(f.stats));
    assert.ok(f.stats.net.originConnections > 0 && f.stats.net.blocksHit > 100, JSON.stringify(f.stats.net));
  } finally {
    tmp.cleanup();
  }
});
