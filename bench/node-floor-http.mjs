// node bench/node-floor-http.mjs UPSTREAM_ORIGIN
// node-floor.mjs with Node's own HTTP client (a keep-alive Agent) instead of undici: the least a
// Node proxy can hold in memory, since node:http is loaded for the server anyway. `node
// bench/floor.ts floor-http` measures it; ADR 0023 reads the sidecar's memory against it.
import { Agent, createServer, request } from 'node:http';

const origin = process.argv[2];
if (!origin) throw new Error('usage: node bench/node-floor-http.mjs UPSTREAM_ORIGIN');
const upstream = new URL(origin);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const method = req.method === 'GET' ? 'GET' : 'POST';
    const body = method === 'GET' ? null : Buffer.concat(chunks);
    const headers = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-upstream-key', ...(body ? { 'content-length': body.length } : {}) };
    const up = request({ agent, host: upstream.hostname, port: upstream.port, path: req.url ?? '/', method, headers }, (r) => {
      const type = String(r.headers['content-type'] ?? 'application/json');
      if (type.startsWith('text/event-stream')) {
        res.writeHead(r.statusCode ?? 502, { 'content-type': type });
        r.on('data', (c) => res.write(c));
        r.on('end', () => res.end());
        return;
      }
      const parts = [];
      r.on('data', (c) => parts.push(c));
      r.on('end', () => {
        const answer = parts.length === 1 ? parts[0] : Buffer.concat(parts);
        res.writeHead(r.statusCode ?? 502, { 'content-type': type, 'content-length': answer.length });
        res.end(answer);
      });
    });
    up.on('error', () => res.destroy());
    up.end(body);
  });
});
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
