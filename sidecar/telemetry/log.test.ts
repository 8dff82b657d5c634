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
