// A real redis-server for tests: loopback, an ephemeral port, no persistence, a temp folder.
// It runs under a small shell watchdog that holds the read end of a pipe from this process:
// when this process ends in any way (even SIGKILL), the pipe closes and the watchdog stops the
// server, so a test run never leaves a redis-server behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const WATCHDOG = `
exec 3<&0
redis-server "$@" &
pid=$!
( read -r _ <&3; kill "$pid" 2>/dev/null ) &
watcher=$!
wait "$pid"; code=$?
kill "$watcher" 2>/dev/null
exit $code
`;

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.stdin?.destroy();
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => finish(false));
    sock.once('error', () => finish(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}

/**
 * Starts a redis-server. Options, to bring a stopped server back as it was: `port` reuses a port,
 * `dir` a data folder (the caller's: kept after stop), `persist` writes every command to an
 * append-only file in it (fsync always) so the data survives the stop.
 */
export async function startRedis(opts: { port?: number; dir?: string; persist?: boolean } = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'ai-envelope-redis-'));
  const persistence = opts.persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'];
  const child = spawn('sh', ['-c', WATCHDOG, 'redis-watchdog', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
    running.delete(child);
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  });

  const stop = async () => {
    if (!gone) child.stdin?.end();
    await exited;
  };

  const deadline = Date.now() + 10_000;
  while (!(await pingOnce(port))) {
    if (gone || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not start: ${output.trim() || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}
