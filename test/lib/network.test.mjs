// Both library APIs with a network: real proxies, real relays, a real HTTP
// origin on the host's loopback. Nothing leaves this machine: the allowed
// origin is 127.0.0.1:<port> (relayed by the network layer), denied hosts are
// refused by the proxy before any DNS lookup.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Sandbox, SandboxManager } from '../../dist/index.js';
import { tempDir, WHO } from '../helpers.mjs';

// Runs inside the sandbox with the host's node (read-only root).
// get PORT PATH: plain HTTP to 127.0.0.1:PORT (the relay, no proxy).
// proxy HOST: absolute-form GET through the in-sandbox HTTP proxy port.
const CLIENT = `
const net = require('net'), http = require('http');
const [mode, a, b] = process.argv.slice(1);
if (mode === 'get') {
  http.get({ host: '127.0.0.1', port: +a, path: b, agent: false }, (res) => {
    let d = ''; res.on('data', (c) => (d += c)); res.on('end', () => console.log(res.statusCode + ' ' + d));
  }).on('error', (e) => console.log('ERR ' + e.code));
} else if (mode === 'proxy') {
  const s = net.connect(3128, '127.0.0.1', () => s.write('GET http://' + a + '/ HTTP/1.1\\r\\nHost: ' + a + '\\r\\nConnection: close\\r\\n\\r\\n'));
  let d = ''; s.on('data', (c) => (d += c)); s.on('end', () => console.log('PROXY ' + d.split('\\r\\n')[0]));
  s.on('error', (e) => console.log('ERR ' + e.code));
}`;
const client = (...args) => [process.execPath, '-e', CLIENT, ...args];
const sq = (s) => `'${s.replace(/'/g, `'"'"'`)}'`;
const clientSh = (...args) => client(...args).map(sq).join(' ');

let origin, other, P, Q, work;
function listen(tag) {
  return new Promise((resolve) => {
    const s = createServer((req, res) => res.end(`${tag}${req.url}`));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}
before(async () => {
  work = tempDir('cordon-net-');
  origin = await listen('origin');
  other = await listen('other');
  P = origin.address().port;
  Q = other.address().port;
});
after(async () => {
  await SandboxManager.reset();
  origin?.close();
  other?.close();
  work?.cleanup();
});

function sh(wrapped, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(wrapped, { shell: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test(`Sandbox: allowed loopback origin reached, others refused, denials recorded (${WHO})`, async () => {
  const seen = [];
  const sb = await Sandbox.create({ network: { allowedDomains: [`127.0.0.1:${P}`] } }, { cwd: work.dir, onViolation: (v) => seen.push(v) });
  try {
    const ok = await sb.run(client('get', String(P), '/hello'));
    assert.equal(ok.stdout.trim(), `200 origin/hello`, ok.stderr);
    assert.deepEqual(ok.violations, []);
    // No relay for an unlisted host port: nothing inside listens there.
    const refused = await sb.run(client('get', String(Q), '/x'));
    assert.equal(refused.stdout.trim(), 'ERR ECONNREFUSED');
    // Through the proxy, an unlisted name is refused with 403, before DNS.
    const denied = await sb.run(client('proxy', 'blocked.invalid'));
    assert.match(denied.stdout, /^PROXY HTTP\/1\.[01] 403/);
    assert.equal(denied.violations.length, 1, JSON.stringify(denied.violations));
    assert.match(denied.violations[0].line, /blocked\.invalid/);
    assert.equal(denied.violations[0].commandId, denied.commandId);
    assert.ok(seen.some((v) => /blocked\.invalid/.test(v.line)), 'onViolation streamed it');
    assert.ok(sb.violations.getViolationsForCommand(denied.commandId).length >= 1);
  } finally {
    await sb.close();
  }
});

test('Sandbox: per-command lists widen and narrow for that command only; 20 concurrent', async () => {
  const sb = await Sandbox.create({ network: { allowedDomains: [`127.0.0.1:${P}`] } }, { cwd: work.dir });
  try {
    const wide = await sb.run(client('get', String(Q), '/w'), { policy: { network: { allowedDomains: [`127.0.0.1:${Q}`] } } });
    assert.equal(wide.stdout.trim(), '200 other/w', wide.stderr);
    const plain = await sb.run(client('get', String(Q), '/w'));
    assert.equal(plain.stdout.trim(), 'ERR ECONNREFUSED');
    const narrow = await sb.run(client('proxy', `allowed-by-session.invalid`), { policy: { network: { deniedDomains: ['allowed-by-session.invalid'] } } });
    assert.match(narrow.stdout, / 403/);

    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0
          ? sb.run(client('get', String(Q), `/c${i}`), { policy: { network: { allowedDomains: [`127.0.0.1:${Q}`, `even${i}.invalid`] } } })
          : sb.run(['sh', '-c', `${clientSh('get', String(Q), `/c${i}`)}; ${clientSh('proxy', `even${i - 1}.invalid`)}`]),
      ),
    );
    runs.forEach((r, i) => {
      if (i % 2 === 0) {
        assert.equal(r.stdout.trim(), `200 other/c${i}`, `command ${i}: ${r.stderr}`);
        assert.deepEqual(r.violations, []);
      } else {
        // The odd command asks for its neighbour's per-command host: refused, and
        // the denial is attributed to the odd command only.
        assert.equal(r.stdout.split('\n')[0], 'ERR ECONNREFUSED', `command ${i}`);
        assert.match(r.stdout.split('\n')[1], / 403/, `command ${i}`);
        assert.equal(r.violations.length, 1, `command ${i}`);
        assert.match(r.violations[0].line, new RegExp(`even${i - 1}\\.invalid`));
      }
    });
  } finally {
    await sb.close();
  }
});

test('ignoreViolations (srt): matching denials are still denied but not reported', async () => {
  const seen = [];
  const sb = await Sandbox.create(
    { network: { allowedDomains: [`127.0.0.1:${P}`] }, ignoreViolations: { '*': ['quiet.invalid'], 'loud-tool': ['muted.invalid'] } },
    { cwd: work.dir, onViolation: (v) => seen.push(v) },
  );
  try {
    const q = await sb.run(client('proxy', 'quiet.invalid'));
    assert.match(q.stdout, / 403/);
    assert.deepEqual(q.violations, []);
    const m = await sb.run(client('proxy', 'muted.invalid'), { commandText: 'loud-tool fetch' });
    assert.match(m.stdout, / 403/);
    assert.deepEqual(m.violations, []);
    const other = await sb.run(client('proxy', 'muted.invalid'), { commandText: 'another tool' });
    assert.equal(other.violations.length, 1);
    assert.deepEqual(sb.violations.getViolations().map((v) => v.line.includes('muted.invalid')), [true]);
    assert.equal(seen.filter((v) => /quiet|muted/.test(v.line)).length, 1);
  } finally {
    await sb.close();
  }
});

test('Sandbox publish: a server inside is reachable at host 127.0.0.1:PORT', async () => {
  const free = await listen('probe');
  const port = free.address().port;
  await new Promise((r) => free.close(r));
  const sb = await Sandbox.create({}, { cwd: work.dir, publish: [port] });
  try {
    const server = `require('http').createServer((q, s) => s.end('inside' + q.url)).listen(${port}, '127.0.0.1', () => console.log('ready'))`;
    const child = await sb.spawnAsync([process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise((resolve, reject) => {
      child.stdout.on('data', () => out.includes('ready') && resolve());
      child.once('exit', () => reject(new Error('server exited')));
    });
    const { get } = await import('node:http');
    const body = await new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/pub', agent: false }, (res) => {
        let d = '';
        res.on('data', (c) => (d += c));
        res.on('end', () => resolve(d));
      }).on('error', reject);
    });
    assert.equal(body, 'inside/pub');
    child.kill('SIGTERM');
    await child.result;
  } finally {
    await sb.close();
  }
});

test('Sandbox: close() stops the proxies and removes their socket directory', async () => {
  const sb = await Sandbox.create({ network: { allowedDomains: [`127.0.0.1:${P}`] } }, { cwd: work.dir });
  const sock = sb.networkSession().relaySocket;
  assert.ok(existsSync(sock));
  const child = await sb.spawnAsync(['sleep', '1000']);
  await sb.close();
  await child.result.catch(() => {});
  assert.equal(existsSync(sock), false);
  assert.equal(existsSync(dirname(sock)), false, 'session directory left behind');
  // A host process that exits without close() leaves no directory either.
  const script = `import { Sandbox } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
const sb = await Sandbox.create({ network: { allowedDomains: ['example.com'] } });
console.log(sb.networkSession().dir); process.exit(0);`;
  const r = await new Promise((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(r.code, 0);
  const dir = r.out.trim();
  assert.match(dir, /^\//);
  assert.equal(existsSync(dir), false, `${dir} left behind by a process that did not close()`);
});

test('SandboxManager: violations annotated, customConfig.network enforced per wrap, updateConfig live', async () => {
  await SandboxManager.initialize({ network: { allowedDomains: [`localhost:${P}`], deniedDomains: [] }, filesystem: { denyRead: [], allowWrite: [work.dir], denyWrite: [] } });
  assert.equal(SandboxManager.getProxyPort(), 3128);
  assert.equal(SandboxManager.getSocksProxyPort(), 1080);
  assert.deepEqual(SandboxManager.getNetworkRestrictionConfig(), { allowedHosts: [`localhost:${P}`] });

  const ok = await sh(await SandboxManager.wrapWithSandbox(clientSh('get', String(P), '/m')));
  assert.equal(ok.stdout.trim(), '200 origin/m', ok.stderr);

  const id = 'tool-use-0001-abcdefghijklmnop';
  const d = await sh(await SandboxManager.wrapWithSandbox(clientSh('proxy', 'nope.invalid'), undefined, undefined, undefined, { commandId: id, commandText: 'fetch nope' }));
  assert.match(d.stdout, / 403/);
  const annotated = SandboxManager.annotateStderrWithSandboxFailures(id, 'stderr text');
  assert.match(annotated, /^stderr text\n<sandbox_violations>\n.*nope\.invalid.*\n<\/sandbox_violations>$/);
  const vs = SandboxManager.getSandboxViolationStore().getViolationsForCommand(id);
  assert.ok(vs.length >= 1);
  assert.equal(vs[0].command, 'fetch nope');

  // customConfig.network applies to its own wrap only (srt ignores it).
  const wide = await sh(await SandboxManager.wrapWithSandbox(clientSh('get', String(Q), '/cc'), undefined, { network: { allowedDomains: [`localhost:${Q}`] } }));
  assert.equal(wide.stdout.trim(), '200 other/cc', wide.stderr);
  const plain = await sh(await SandboxManager.wrapWithSandbox(clientSh('proxy', `127.0.0.1:${Q}`)));
  assert.match(plain.stdout, / 403/);

  // updateConfig: the next connection of an already-wrapped command sees it.
  const later = await SandboxManager.wrapWithSandbox(clientSh('proxy', 'opened.invalid'));
  SandboxManager.updateConfig({ network: { allowedDomains: [`localhost:${P}`, 'opened.invalid'], deniedDomains: [] }, filesystem: { allowWrite: [work.dir] } });
  const opened = await sh(later);
  // Allowed now: the proxy tries to resolve it (and fails: 502), no 403.
  assert.doesNotMatch(opened.stdout, / 403/);
});

test('SandboxManager: a session without network gets one for a wrap whose customConfig names hosts', async () => {
  await SandboxManager.reset();
  await SandboxManager.initialize({ filesystem: { allowWrite: [work.dir] } });
  assert.equal(SandboxManager.getProxyPort(), undefined);
  const none = await sh(await SandboxManager.wrapWithSandbox(clientSh('get', String(P), '/n')));
  assert.equal(none.stdout.trim(), 'ERR ECONNREFUSED');
  const some = await sh(await SandboxManager.wrapWithSandbox(clientSh('get', String(P), '/s'), undefined, { network: { allowedDomains: [`127.0.0.1:${P}`] } }));
  assert.equal(some.stdout.trim(), '200 origin/s', some.stderr);
  await SandboxManager.reset();
});

test('SandboxManager: ask callback decides unlisted hosts; only true allows', async () => {
  await SandboxManager.reset();
  const asked = [];
  await SandboxManager.initialize({ network: { allowedDomains: [] }, filesystem: { allowWrite: [work.dir] } }, async (req) => {
    asked.push(req);
    if (req.host === 'yes.invalid') return true;
    if (req.host === 'truthy.invalid') return 1;
    return { allow: false, reason: 'not today' };
  });
  const yes = await sh(await SandboxManager.wrapWithSandbox(clientSh('proxy', 'yes.invalid')));
  assert.doesNotMatch(yes.stdout, / 403/);
  const truthy = await sh(await SandboxManager.wrapWithSandbox(clientSh('proxy', 'truthy.invalid')));
  assert.match(truthy.stdout, / 403/);
  const id = 'ask-denied-command-id-0000';
  const no = await sh(await SandboxManager.wrapWithSandbox(clientSh('proxy', 'no.invalid'), undefined, undefined, undefined, { commandId: id }));
  assert.match(no.stdout, / 403/);
  assert.match(SandboxManager.annotateStderrWithSandboxFailures(id, ''), /not today/);
  assert.deepEqual(asked.map((a) => a.host), ['yes.invalid', 'truthy.invalid', 'no.invalid']);
  assert.equal(asked[0].port, 80);
});

test('SandboxManager: registerCommandNetworkLists after the wrap (also 20 concurrent), reset() removes the sockets', async () => {
  await SandboxManager.reset();
  await SandboxManager.initialize({ network: { allowedDomains: [] }, filesystem: { allowWrite: [work.dir] } });
  const id = 'Zm9vYmFyYmF6cXV4cXV1eA'; // 22 chars, as srt requires
  const wrapped = await SandboxManager.wrapWithSandbox(clientSh('proxy', 'listed.invalid'), undefined, undefined, undefined, { commandId: id });
  SandboxManager.registerCommandNetworkLists(id, { allowedDomains: ['listed.invalid'] });
  const r = await sh(wrapped);
  assert.doesNotMatch(r.stdout, / 403/, 'the list registered after the wrap applies');
  SandboxManager.unregisterCommandNetworkLists(id);
  const r2 = await sh(wrapped);
  assert.match(r2.stdout, / 403/);
  // 20 wraps at once, half with a list of their own: no list leaks to another id.
  const ids = Array.from({ length: 20 }, (_, i) => `concurrent-${String(i).padStart(2, '0')}-abcdefghijklmnop`);
  const wraps = await Promise.all(ids.map((cid, i) => SandboxManager.wrapWithSandbox(clientSh('proxy', `host${i - (i % 2)}.invalid`), undefined, undefined, undefined, { commandId: cid })));
  ids.forEach((cid, i) => i % 2 === 0 && SandboxManager.registerCommandNetworkLists(cid, { allowedDomains: [`host${i}.invalid`] }));
  const outs = await Promise.all(wraps.map((w) => sh(w)));
  outs.forEach((o, i) => {
    const denied = / 403/.test(o.stdout);
    assert.equal(denied, i % 2 === 1, `wrap ${i}: ${o.stdout}`);
    const annotated = SandboxManager.annotateStderrWithSandboxFailures(ids[i], '');
    if (i % 2 === 1) assert.match(annotated, new RegExp(`host${i - 1}\\.invalid`));
    else assert.equal(annotated, '');
  });
  for (const cid of ids) SandboxManager.unregisterCommandNetworkLists(cid);
  const sock = SandboxManager.getSandbox().networkSession().relaySocket;
  await SandboxManager.reset();
  assert.equal(existsSync(sock), false);
  assert.equal(existsSync(dirname(sock)), false);
});
