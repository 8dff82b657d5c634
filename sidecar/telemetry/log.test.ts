import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { requestLineWriter, type RequestRecord } from './log.ts';

function capture(level = 'info') {
  const lines: string[] = [];
  const log = pino(
    { level, base: { component: 'sidecar' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    { write: (s: string) => void lines.push(s) },
  );
  return { log, lines };
}

const record: RequestRecord = { request_id: 'req_1', endpoint: 'chat.completions', method: 'POST', path: '/v1/chat/completions', stream: false, status: 200, attempts: 1, latency_ms: 1.5, redactions: { email: 2 }, model: undefined };

describe('requestLineWriter', () => {
  it('writes the line pino would write, to the same destination, bindings included', () => {
    const { log, lines } = capture();
    log.child({ pod: 'p-1' }).info(record, 'request');
    requestLineWriter(log.child({ pod: 'p-1' }))(record);
    expect(lines).toHaveLength(2);
    const [viaPino, direct] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(direct).toEqual({ ...viaPino, time: direct?.time });
    expect(Object.keys(direct ?? {})).toEqual(Object.keys(viaPino ?? {}));
    expect(direct).not.toHaveProperty('model');
    expect(lines[1]?.endsWith('}\n')).toBe(true);
  });

  it('writes nothing when the logger is quieter than info', () => {
    const { log, lines } = capture('warn');
    requestLineWriter(log)(record);
    expect(lines).toEqual([]);
  });
});

// createLogger writes to the process's stdout, so it is exercised in a child process.
const LOG_MODULE = fileURLToPath(new URL('./log.ts', import.meta.url));

function runLogger(body: string, stopWhen?: (out: string) => boolean): Promise<{ out: string; code: number | null; signal: NodeJS.Signals | null }> {
  const script = `import { createLogger, requestLineWriter } from ${JSON.stringify(LOG_MODULE)};\nconst log = createLogger('info');\nconst line = requestLineWriter(log);\n${body}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  let stopped = false;
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (stopWhen?.(out) && !stopped) {
      stopped = true;
      child.kill('SIGKILL');
    }
  });
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ out, code, signal });
    }),
  );
}

describe('createLogger', () => {
  it('writes a lone line while the process keeps running, without waiting for a batch to fill', async () => {
    // The child idles until it is killed, which skips every exit handler: the line must arrive
    // from the batch timer, and the child is killed as soon as it does (or after 15 s).
    const r = await runLogger(`log.info({ event: 'alone' }, 'one line');\nsetInterval(() => {}, 1_000);`, (out) => out.includes('"alone"'));
    expect(r.signal).toBe('SIGKILL');
    expect(JSON.parse(r.out.trim()).event).toBe('alone');
  });

  it('keeps every line, in order, when the process exits right after writing them', async () => {
    const r = await runLogger(`for (let i = 0; i < 2000; i++) line({ request_id: 'req_' + i, endpoint: 'chat.completions', method: 'POST', path: '/v1/chat/completions', stream: false, status: 200, attempts: 1, latency_ms: i });\nprocess.exit(0);`);
    expect(r.code).toBe(0);
    const ids = r.out.trim().split('\n').map((l) => (JSON.parse(l) as RequestRecord).request_id);
    expect(ids).toEqual(Array.from({ length: 2000 }, (_, i) => `req_${i}`));
  });

  it('keeps the lines written before an uncaught exception takes the process down', async () => {
    const r = await runLogger(`log.info({ event: 'before' }, 'first');\nlog.error({ event: 'last words' }, 'second');\nsetImmediate(() => { throw new Error('boom'); });`);
    expect(r.code).not.toBe(0);
    expect(r.out.trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['before', 'last words']);
  });

  it('exits when its stdout reader is gone instead of retrying the write forever', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(LOG_MODULE)};
const log = createLogger('info');
log.info({ event: 'first' }, 'first');
setTimeout(() => { for (let i = 0; i < 50; i++) log.info({ event: 'late', i }, 'after the reader left'); process.exit(0); }, 1000);`], { stdio: ['ignore', 'pipe', 'ignore'] });
    // The reader goes away after the first line, as a log collector that dies would.
    child.stdout.once('data', () => child.stdout.destroy());
    const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const outcome = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    if (outcome === 'still running') child.kill('SIGKILL');
    expect(outcome).toBe(0);
  });
});
