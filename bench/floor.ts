// node bench/floor.ts
// The floor of any Node proxy on this machine: a bare node:http server that forwards each call to
// the simulator with undici and sends the answer back, nothing else. Its CPU per call at full
// load is what the sidecar's own work is measured above (README: Performance).
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { runPhase } from './load.ts';
import { CpuMeter } from './measure.ts';
import { startSimulator, stopAll, type Target } from './servers.ts';

const SELF = fileURLToPath(import.meta.url);

function serve(upstream: string): void {
  const pool = new Pool(upstream, { connections: 64 });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void pool
        .request({ path: req.url ?? '/', method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench-upstream-key' }, body: Buffer.concat(chunks) })
        .then(async (r) => {
          const body = Buffer.from(await r.body.arrayBuffer());
          res.writeHead(r.statusCode, { 'content-type': 'application/json', 'content-length': body.length });
          res.end(body);
        })
        .catch(() => res.destroy());
    });
  });
  process.on('SIGTERM', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`));
}

if (process.argv[2] === '--serve') {
  serve(process.argv[3] as string);
} else {
  const sim = await startSimulator();
  const child = spawn(process.execPath, [SELF, '--serve', sim.origin], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve) => child.stdout?.once('data', (d: Buffer) => resolve((JSON.parse(String(d)) as { port: number }).port)));
    // Measured as the bench measures a proxy: its own process's CPU over the phase.
    const target: Target = { name: 'direct', origin: `http://127.0.0.1:${port}`, headers: {}, pids: [child.pid as number], stop: async () => void child.kill('SIGTERM') };
    await runPhase(target, { connections: 64, seconds: 2 });
    const cpu = new CpuMeter(target.pids);
    const r = await runPhase(target, { connections: 64, seconds: 5, probes: [cpu] });
    process.stdout.write(`bare node:http + undici proxy: ${Math.round(r.achievedRps)} req/s, ${Math.round((cpu.seconds * 1e6) / (r.ok + r.non2xx))} µs CPU per call, ${r.non2xx} non-2xx\n`);
  } finally {
    child.kill('SIGTERM');
    await stopAll();
    await sim.stop();
  }
  process.exit(0);
}
