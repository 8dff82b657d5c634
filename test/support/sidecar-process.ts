// Runs the real `ai-envelope sidecar` command as a child process, the way a kubelet would run
// the injected container: a config file, a secrets folder laid out like a Secret volume, and
// ephemeral loopback ports learnt from the sidecar's own start-up log line.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { followJsonLog, type LogLine } from './json-log.ts';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export type { LogLine } from './json-log.ts';

export interface SidecarProcess {
  proc: ChildProcess;
  url: string;
  adminUrl: string;
  port: number;
  adminPort: number;
  /** Everything the process printed, raw. */
  output(): string;
  logs(): LogLine[];
  requestLogs(): LogLine[];
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startSidecarProcess(opts: { config: string; secretsDir: string; env?: Record<string, string>; args?: string[] }): Promise<SidecarProcess> {
  const proc = spawn(process.execPath, [CLI, 'sidecar', '-f', opts.config, '--secrets-dir', opts.secretsDir, '--port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1', '--poll-ms', '200', ...(opts.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = followJsonLog(proc, 'sidecar');
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 10_000) => log.waitFor(pred, timeoutMs);

  const started = await waitForLog((l) => l.event === 'started');
  const port = started.port as number;
  const adminPort = started.admin_port as number;
  return {
    proc,
    port,
    adminPort,
    url: `http://127.0.0.1:${port}/v1`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    output: log.output,
    logs: () => log.lines,
    requestLogs: () => log.lines.filter((l) => l.msg === 'request'),
    waitForLog,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      return log.exited;
    },
  };
}

/** A temporary folder laid out like a mounted Secret: files behind a `..data` symlink that is swapped atomically on update. */
export class SecretVolume {
  readonly root: string;
  private generation = 0;

  constructor(root: string) {
    this.root = root;
  }

  /** Writes (or rotates) `<root>/<name>/<key>` the way the kubelet's atomic writer does. */
  write(name: string, data: Record<string, string>): void {
    const dir = join(this.root, name);
    mkdirSync(dir, { recursive: true });
    const gen = `..${Date.now()}_${this.generation++}`;
    mkdirSync(join(dir, gen));
    for (const [k, v] of Object.entries(data)) writeFileSync(join(dir, gen, k), v);
    const tmp = join(dir, '..data_tmp');
    rmSync(tmp, { force: true });
    symlinkSync(gen, tmp);
    renameSync(tmp, join(dir, '..data'));
    for (const k of Object.keys(data)) {
      try {
        symlinkSync(join('..data', k), join(dir, k));
      } catch {
        // Already linked from an earlier generation: the link resolves through ..data.
      }
    }
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `ai-envelope-${prefix}-`));
}
