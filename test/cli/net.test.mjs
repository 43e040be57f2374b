// The CLI's network flags end to end: --allow-net reaches an allowed host
// loopback port and nothing else, --publish makes a server inside reachable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { CLI, cordon, run, tempDir, WHO } from '../helpers.mjs';

function listen(handler) {
  return new Promise((res) => {
    const srv = http.createServer(handler);
    srv.listen(0, '127.0.0.1', () => res(srv));
  });
}

/** Node snippet run inside: GET url (optionally through the in-sandbox proxy), print the status. */
const getScript = (url, viaProxy) =>
  `{const h=require('http');const u=new URL(${JSON.stringify(url)});` +
  `const o=${viaProxy ? "{host:'127.0.0.1',port:3128,path:u.href,headers:{host:u.host}}" : 'u'};` +
  `h.get(o,r=>{console.log('STATUS',r.statusCode);r.resume()}).on('error',e=>console.log('ERR',e.code));}`;

test(`--allow-net HOST:PORT reaches that host loopback port only (${WHO})`, async () => {
  const hits = [];
  const srv = await listen((req, res) => {
    hits.push(req.url);
    res.end('ok');
  });
  const port = srv.address().port;
  const { dir, cleanup } = tempDir();
  try {
    const allowed = await run(process.execPath, [CLI, '--allow-net', `localhost:${port}`, '--', process.execPath, '-e', getScript(`http://127.0.0.1:${port}/allowed`)], { cwd: dir });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /STATUS 200/);
    // Another allowed domain does not open the loopback port, and the proxy
    // refuses hosts that are not listed.
    const other = await run(
      process.execPath,
      [CLI, '--allow-net', 'example.com', '--', process.execPath, '-e', getScript(`http://127.0.0.1:${port}/direct`) + getScript('http://not-allowed.invalid/x', true)],
      { cwd: dir },
    );
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /ERR ECONNREFUSED/);
    assert.match(other.stdout, /STATUS 403/);
    // Without any --allow-net there is no proxy at all.
    const none = cordon(['--', process.execPath, '-e', getScript(`http://127.0.0.1:${port}/none`) + getScript('http://x.invalid/', true)], { cwd: dir });
    assert.equal(none.stdout.match(/ERR ECONNREFUSED/g)?.length, 2, none.stdout + none.stderr);
    assert.deepEqual(hits, ['/allowed']);
  } finally {
    srv.close();
    cleanup();
  }
});

test(`-p PORT publishes a server inside on host 127.0.0.1:PORT (${WHO})`, async () => {
  const { dir, cleanup } = tempDir();
  // A free port: bind 0 on the host, release it, publish that number.
  const probe = await listen(() => {});
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const server = `require('http').createServer((q,s)=>s.end('from-inside')).listen(${port},'127.0.0.1',()=>console.log('READY'))`;
  const child = spawn(process.execPath, [CLI, '-p', String(port), '--', process.execPath, '-e', server], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const closed = new Promise((res) => child.on('close', (code) => res(code)));
  try {
    await new Promise((res, rej) => {
      child.stdout.on('data', (d) => String(d).includes('READY') && res());
      closed.then(() => rej(new Error(`cordon ended early: ${err}`)));
    });
    const body = await new Promise((res, rej) => {
      http.get(`http://127.0.0.1:${port}/`, (r) => {
        let b = '';
        r.on('data', (d) => (b += d));
        r.on('end', () => res(b));
      }).on('error', rej);
    });
    assert.equal(body, 'from-inside');
  } finally {
    child.kill('SIGTERM');
    assert.equal(await closed, 143, err);
    cleanup();
  }
});
