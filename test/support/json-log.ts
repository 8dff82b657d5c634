// The JSON log lines of a child process (the sidecar, the operator), as they arrive: what tests
// assert on and wait for. Lines that are not JSON are kept as `raw`.
import type { ChildProcess } from 'node:child_process';

export interface LogLine {
  level: string;
  msg: string;
  event?: string;
  [key: string]: unknown;
}

export interface JsonLog {
  lines: LogLine[];
  /** Everything the process printed, stdout and stderr, raw. */
  output(): string;
  /** The exit code, once the process has exited. */
  exited: Promise<number | null>;
  /** The first line (seen or to come) that matches; fails after `timeoutMs` or when the process exits. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
}

export function followJsonLog(proc: ChildProcess, name: string): JsonLog {
  let out = '';
  let partial = '';
  const lines: LogLine[] = [];
  const waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  proc.stdout?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    out += text;
    partial += text;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) {
      if (!part.trim()) continue;
      let line: LogLine;
      try {
        line = JSON.parse(part) as LogLine;
      } catch {
        line = { level: 'raw', msg: part };
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (!w.pred(line)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  proc.stderr?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const tail = () => out.slice(-4000);
  const waitFor = (pred: (l: LogLine) => boolean, timeoutMs: number) =>
    new Promise<LogLine>((resolve, reject) => {
      const found = lines.find(pred);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`${name} log line not seen within ${timeoutMs} ms; output tail:\n${tail()}`)), timeoutMs);
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${name} exited; output tail:\n${tail()}`));
      });
    });
  return { lines, output: () => out, exited, waitFor };
}
