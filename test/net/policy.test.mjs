// Host canonicalization, the pattern grammar, the decision order and the
// resolved-address guard (with a fake DNS table), without any sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalizeHost, classifyAddress, embeddedIPv4 } from '../../dist/net/host.js';
import { parsePattern, patternError, matches } from '../../dist/net/patterns.js';
import { compilePolicy, compilePerCommand, decide, allowsHostLoopbackPort } from '../../dist/net/policy.js';
import { AddressGuard, ResolvedAddressDenied } from '../../dist/net/resolve.js';

test('canonicalizeHost: alternate encodings collapse to one spelling', () => {
  const loop = ['127.0.0.1', '127.1', '2130706433', '0x7f000001', '0x7f.0.0.1', '0177.0.0.1', '0177.1', '127.0.1', '[::ffff:127.0.0.1]', '::ffff:7f00:1', '127.0.0.1.'];
  for (const h of loop) assert.equal(canonicalizeHost(h), '127.0.0.1', h);
  assert.equal(canonicalizeHost('0'), '0.0.0.0');
  assert.equal(canonicalizeHost('[0:0:0:0:0:0:0:1]'), '::1');
  assert.equal(canonicalizeHost('::1'), '::1');
  assert.equal(canonicalizeHost('2852039166'), '169.254.169.254');
  assert.equal(canonicalizeHost('ALLOWED.Test.'), 'allowed.test');
  assert.equal(canonicalizeHost('LOCALHOST.'), 'localhost');
  assert.equal(canonicalizeHost('bücher.example'), 'xn--bcher-kva.example');
  assert.equal(canonicalizeHost('127.0.0.1.nip.io'), '127.0.0.1.nip.io');
  for (const bad of ['', 'a b', 'allowed.test\0.evil', 'user@evil.test', 'ex%41mple.com', '[fe80::1%25lo]', 'fe80::1%lo', 'a..b', '*.x.com', 'a/b', '1.2.3.256', 'x'.repeat(300), '[::1', 'evil.test:443', 'a\r\nb', '[1.2.3.4]', '[example.com]']) {
    const r = canonicalizeHost(bad);
    assert.equal(r, undefined, `${JSON.stringify(bad)} -> ${r}`);
  }
});

test('classifyAddress and embedded IPv4', () => {
  const cases = {
    '127.0.0.1': 'loopback', '::1': 'loopback', '::ffff:127.0.0.2': 'loopback', '64:ff9b::7f00:1': 'loopback', '2002:7f00:1::': 'loopback',
    '0.0.0.0': 'unspecified', '::': 'unspecified', '169.254.169.254': 'metadata', 'fd00:ec2::254': 'metadata', '100.100.100.200': 'metadata',
    '169.254.1.1': 'link-local', 'fe80::1': 'link-local', '224.0.0.1': 'multicast', 'ff02::1': 'multicast', '255.255.255.255': 'broadcast',
    '10.1.2.3': 'private', '192.168.0.1': 'private', 'fd12::1': 'private', '93.184.216.34': 'public', '2606:2800::1': 'public',
  };
  for (const [a, c] of Object.entries(cases)) assert.equal(classifyAddress(a), c, a);
  assert.equal(embeddedIPv4('64:ff9b::a9fe:a9fe'), '169.254.169.254');
  assert.equal(embeddedIPv4('2001:db8::1'), undefined);
});

test('parsePattern: srt grammar', () => {
  const ok = ['example.com', '*.example.com', 'localhost', 'localhost:5432', '127.0.0.1', '127.0.0.1:8080', '[::1]', '[2001:db8::1]:443', 'api.example.com:443', '*.example.com:8443', 'a_b.example.com'];
  for (const e of ok) assert.equal(patternError(e), undefined, e);
  const bad = ['*', '*.com', '*.', 'https://example.com', 'example.com/x', 'ex*ample.com', 'example', '::1', '2001:db8::1:443', '[::1]:0', 'example.com:0', 'example.com:65536', 'example.com:08', '[fe80::1%lo]', '', ' example.com', '127.1', 'a.*.example.com', '*.*.example.com', 'user@example.com', '.example.com', 'example.com.'];
  for (const e of bad) assert.notEqual(patternError(e), undefined, e);
  assert.equal(patternError('*', 'denied'), undefined);
  assert.equal(patternError('*:22', 'denied'), undefined);
  assert.match(patternError('*.com'), /\*\.com/);
  const p = parsePattern('[::ffff:10.0.0.1]:80');
  assert.ok(p.ok);
  assert.deepEqual({ kind: p.pattern.kind, ip: p.pattern.ip, port: p.pattern.port }, { kind: 'ip', ip: '10.0.0.1', port: 80 });
});

test('matches: exact, wildcard strict subdomains, ports, never IPs by wildcard', () => {
  const w = parsePattern('*.allowed.test').pattern;
  assert.ok(matches(w, 'a.allowed.test', 443));
  assert.ok(matches(w, 'a.b.allowed.test', 1));
  assert.ok(!matches(w, 'allowed.test', 443));
  assert.ok(!matches(w, 'evilallowed.test', 443));
  assert.ok(!matches(w, 'allowed.test.evil.test', 443));
  const e = parsePattern('allowed.test:443').pattern;
  assert.ok(matches(e, 'allowed.test', 443));
  assert.ok(!matches(e, 'allowed.test', 22));
  assert.ok(!matches(e, 'a.allowed.test', 443));
});

const reqs = (policy, list, extra = {}) => Promise.all(list.map((h) => decide({ host: h[0], port: h[1] }, { policy, ...extra })));

test('decide: X5/X11/X12 literal tricks and name confusions are denied', async () => {
  const policy = compilePolicy({ allowedDomains: ['allowed.test:443', '*.wild.test'], deniedDomains: [] });
  const denied = [
    ['93.184.216.34', 443], ['127.1', 80], ['2130706433', 443], ['0x7f000001', 443], ['0', 443], ['[::1]', 443], ['::1', 443], ['[::ffff:127.0.0.1]', 443],
    ['[fe80::1%25lo]', 443], ['localhost.', 443], ['127.0.0.1.nip.io', 443], ['allowed.test.evil.test', 443], ['evilallowed.test', 443],
    ['allowed.test\0.evil', 443], ['user@allowed.test', 443], ['allowed.test', 22], ['allowed.test', 25], ['allowed.test', 6379], ['allowed.test', 0], ['allowed.test', 65536],
    ['wild.test', 443], ['xn--allwed-9ta.test', 443], ['allowed.test%00.evil', 443], ['169.254.169.254', 80], ['2852039166', 80],
  ];
  for (const d of await reqs(policy, denied)) assert.equal(d.allow, false, `${d.host}:${d.port}`);
  const allowed = [['allowed.test', 443], ['ALLOWED.TEST', 443], ['allowed.test.', 443], ['a.wild.test', 1], ['A.B.WILD.TEST.', 8080]];
  for (const d of await reqs(policy, allowed)) assert.equal(d.allow, true, `${d.host}:${d.port}`);
  const inv = await decide({ host: 'allowed.test', port: 70000 }, { policy });
  assert.equal(inv.invalid, true);
});

test('decide: order denied -> allowed -> strict -> per-command -> ask', async () => {
  const policy = compilePolicy({
    allowedDomains: ['*.example.com', '10.0.0.1'],
    deniedDomains: ['bad.example.com', '*:22', '[::ffff:10.0.0.2]'],
    deniedDomainReasons: { 'bad.example.com': 'use good.example.com <instead>' },
  });
  let d = await decide({ host: 'bad.example.com', port: 443 }, { policy });
  assert.deepEqual([d.allow, d.reason], [false, 'use good.example.com instead']);
  d = await decide({ host: 'a.example.com', port: 22 }, { policy });
  assert.equal(d.allow, false);
  d = await decide({ host: '10.2', port: 80 }, { policy });
  assert.equal(d.allow, false, 'deny entry written as mapped v6 denies the v4 spelling');
  d = await decide({ host: '167772161', port: 80 }, { policy });
  assert.equal(d.allow, true, 'allowed literal in another spelling');

  const perCommand = compilePerCommand({ allowedDomains: ['extra.test'], deniedDomains: ['x.example.com'] });
  assert.equal((await decide({ host: 'extra.test', port: 443 }, { policy, perCommand })).allow, true);
  assert.equal((await decide({ host: 'extra.test', port: 443 }, { policy })).allow, false);
  assert.equal((await decide({ host: 'x.example.com', port: 443 }, { policy, perCommand })).allow, false);
  const strict = compilePolicy({ allowedDomains: ['a.test'], strictAllowlist: true });
  assert.equal((await decide({ host: 'extra.test', port: 443 }, { policy: strict, perCommand, ask: () => true })).allow, false);

  const asked = [];
  const ask = async (r) => (asked.push(`${r.host}:${r.port}`), r.host === 'yes.test' ? true : r.host === 'why.test' ? { allow: false, reason: 'nope\nreally' } : 'maybe');
  assert.equal((await decide({ host: 'YES.test', port: 443 }, { policy, ask })).allow, true);
  d = await decide({ host: 'why.test', port: 443 }, { policy, ask });
  assert.deepEqual([d.allow, d.reason], [false, 'nope really']);
  d = await decide({ host: 'other.test', port: 443 }, { policy, ask });
  assert.deepEqual([d.allow, d.reason], [false, 'user denied']);
  d = await decide({ host: 'bad.example.com', port: 443 }, { policy, ask });
  assert.equal(d.allow, false);
  assert.deepEqual(asked, ['yes.test:443', 'why.test:443', 'other.test:443'], 'never asked for denied or malformed hosts');
  d = await decide({ host: 'boom.test', port: 443 }, { policy, ask: () => { throw new Error('x'); } });
  assert.deepEqual([d.allow, d.reason], [false, 'permission prompt failed']);
});

test('property: no spelling of a denied address is ever allowed', async () => {
  // Every IPv4 spelling WHATWG accepts for a set of sensitive addresses,
  // against a policy that allows only names and one public literal.
  const policy = compilePolicy({ allowedDomains: ['*.allowed.test', 'allowed.test', '93.184.216.34'], deniedDomains: [] });
  const addrs = [[127, 0, 0, 1], [169, 254, 169, 254], [10, 0, 0, 1], [0, 0, 0, 0], [192, 168, 1, 1], [100, 100, 100, 200]];
  const fmt = [(n) => String(n), (n) => '0x' + n.toString(16), (n) => '0' + n.toString(8), (n) => '0X' + n.toString(16).toUpperCase()];
  let count = 0;
  for (const [a, b, c, d] of addrs) {
    const n32 = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
    const spellings = new Set([String(n32), '0x' + n32.toString(16), '0' + n32.toString(8)]);
    for (const f of fmt) for (const g of fmt) {
      spellings.add(`${f(a)}.${g(b)}.${f(c)}.${g(d)}`);
      spellings.add(`${f(a)}.${g((b << 16) + (c << 8) + d)}`);
      spellings.add(`${f(a)}.${g(b)}.${f((c << 8) + d)}`);
    }
    const hex = (x) => x.toString(16);
    for (const s of [...spellings]) spellings.add(s + '.');
    spellings.add(`[::ffff:${a}.${b}.${c}.${d}]`);
    spellings.add(`[::ffff:${hex((a << 8) + b)}:${hex((c << 8) + d)}]`);
    spellings.add(`[0:0:0:0:0:ffff:${a}.${b}.${c}.${d}]`);
    for (const s of spellings) {
      for (const port of [80, 443]) {
        const r = await decide({ host: s, port }, { policy });
        assert.equal(r.allow, false, `${s}:${port}`);
        count++;
      }
      assert.equal(canonicalizeHost(s), `${a}.${b}.${c}.${d}`, s);
    }
  }
  assert.ok(count > 500, `checked ${count}`);
  // And every spelling of the allowed literal is allowed, so the check above is not vacuous.
  for (const s of ['93.184.216.34', '1572395042', '0x5db8d822', '[::ffff:93.184.216.34]', '93.184.55330']) {
    assert.equal((await decide({ host: s, port: 443 }, { policy })).allow, true, s);
  }
});

test('host loopback ports open only with an explicit localhost/127.0.0.1 entry', () => {
  const policy = compilePolicy({ allowedDomains: ['localhost:5432', '127.0.0.1:8080', '*.example.com'], deniedDomains: [] });
  assert.ok(allowsHostLoopbackPort(5432, { policy }));
  assert.ok(allowsHostLoopbackPort(8080, { policy }));
  assert.ok(!allowsHostLoopbackPort(22, { policy }));
  const p2 = compilePolicy({ allowedDomains: ['localhost:5432'], deniedDomains: ['localhost'] });
  assert.ok(!allowsHostLoopbackPort(5432, { policy: p2 }));
  const p3 = compilePolicy({ allowedDomains: [], deniedDomains: [] });
  assert.ok(allowsHostLoopbackPort(9000, { policy: p3, perCommand: compilePerCommand({ allowedDomains: ['127.0.0.1:9000'] }) }));
  assert.ok(!allowsHostLoopbackPort(9001, { policy: p3, perCommand: compilePerCommand({ allowedDomains: ['127.0.0.1:9000'] }) }));
});

test('X6 guard: every answer checked, denied classes dropped, resolved once', async () => {
  const table = {
    'rebind.allowed.test': [['127.0.0.1'], ['169.254.169.254'], ['10.0.0.1'], ['fd00:ec2::254']],
    'mixed.allowed.test': [['127.0.0.1', '93.184.216.34', '::ffff:169.254.169.254']],
    'v6.allowed.test': [['64:ff9b::7f00:1', '::1', 'fe80::1', 'ff02::1', '::']],
    'self.allowed.test': [['203.0.113.7']],
    'intranet.allowed.test': [['10.0.0.5']],
    'localhost': [['127.0.0.1', '192.0.2.1']],
    'lit.allowed.test': [['127.0.0.1']],
  };
  const queries = [];
  const counters = {};
  const resolver = async (h) => {
    queries.push(h);
    const answers = table[h];
    if (!answers) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    const i = (counters[h] = (counters[h] ?? -1) + 1) % answers.length;
    return answers[i].map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const guard = new AddressGuard({ resolver, localAddresses: ['203.0.113.7'] });
  const policy = compilePolicy({ allowedDomains: ['*.allowed.test', 'localhost'], deniedDomains: [], deniedResolvedAddresses: ['10.0.0.0/8'] });
  for (let i = 0; i < 4; i++) {
    await assert.rejects(guard.addressesFor('rebind.allowed.test', 443, { policy }), ResolvedAddressDenied);
  }
  assert.deepEqual(await guard.addressesFor('mixed.allowed.test', 443, { policy }), ['93.184.216.34']);
  await assert.rejects(guard.addressesFor('v6.allowed.test', 443, { policy }), (e) => e instanceof ResolvedAddressDenied && /loopback/.test(e.reason));
  await assert.rejects(guard.addressesFor('self.allowed.test', 443, { policy }), /this host/);
  await assert.rejects(guard.addressesFor('intranet.allowed.test', 443, { policy }), /listed address/);
  assert.deepEqual(await guard.addressesFor('localhost', 5432, { policy }), ['127.0.0.1'], 'localhost only to loopback');
  assert.deepEqual(await guard.addressesFor('127.0.0.1', 443, { policy }), ['127.0.0.1'], 'literals are not resolved');
  assert.equal(queries.filter((q) => q === 'rebind.allowed.test').length, 4, 'one query per connection');
  assert.ok(!queries.includes('127.0.0.1'));
  const withLit = compilePolicy({ allowedDomains: ['*.allowed.test', '127.0.0.1:8080'], deniedDomains: [] });
  assert.deepEqual(await guard.addressesFor('lit.allowed.test', 8080, { policy: withLit }), ['127.0.0.1']);
  await assert.rejects(guard.addressesFor('lit.allowed.test', 8081, { policy: withLit }), ResolvedAddressDenied);
  const testGuard = new AddressGuard({ resolver, localAddresses: [], allowLoopbackResolution: true });
  assert.deepEqual(await testGuard.addressesFor('lit.allowed.test', 1, { policy }), ['127.0.0.1']);
});
