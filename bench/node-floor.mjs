// node bench/node-floor.mjs UPSTREAM_ORIGIN
// The floor of any Node proxy on this machine: a bare node:http server that forwards each call to
// the upstream with undici and sends the answer back (streams piped), nothing else: no routing,
// no policy, no log, no metric. The bench runs it beside nginx and the sidecar with the sidecar's
// heap flags, so every figure has the cost of Node itself to be read against. Plain JavaScript:
// run as TypeScript, Node would load its type stripper and count it in the RSS.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = process.argv[2];
if (!upstream) throw new Error('usage: node bench/node-floor.mjs UPSTREAM_ORIGIN');
const pool = new Pool(upstream, { connections: 64 });
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const method = req.method === 'GET' ? 'GET' : 'POST';
    void pool
      .request({ path: req.url ?? '/', method, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench-upstream-key' }, body: method === 'GET' ? null : Buffer.concat(chunks) })
      .then(async (r) => {
        const type = String(r.headers['content-type'] ?? 'application/json');
        if (type.startsWith('text/event-stream')) {
          res.writeHead(r.statusCode, { 'content-type': type });
          for await (const chunk of r.body) res.write(chunk);
          res.end();
          return;
        }
        const body = Buffer.from(await r.body.arrayBuffer());
        res.writeHead(r.statusCode, { 'content-type': type, 'content-length': body.length });
        res.end(body);
      })
      .catch(() => res.destroy());
  });
});
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
