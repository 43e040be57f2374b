// Loopback origin for the network benchmarks, in its own process so that the
// proxy under test (in the cordon CLI or the bench process) never shares an
// event loop with the server it is measured against.
//   node bench/origin.mjs [CERT KEY]
// Prints one JSON line {"http":PORT,"https":PORT|null} once both listen.
// GET /bytes/N streams N bytes; any other path answers "ok".
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

const chunk = Buffer.alloc(1 << 20, 0x61);

function handler(req, res) {
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
  if (!m) {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
    res.end('ok\n');
    return;
  }
  let left = Number(m[1]);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
  // Honour backpressure so the origin's memory stays flat at any size.
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

const listen = (srv) =>
  new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv.address().port));
  });

const httpPort = await listen(http.createServer(handler));
let httpsPort = null;
const [cert, key] = process.argv.slice(2);
if (cert && key) {
  httpsPort = await listen(https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, handler));
}
process.stdout.write(JSON.stringify({ http: httpPort, https: httpsPort }) + '\n');
// Exit with the parent: the bench closes our stdin when it is done.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
