import type { ServerResponse } from 'node:http';
import type { SseEvent } from './reply.ts';
import { sleep } from './sleep.ts';
import type { Fault } from './types.ts';

export function encodeEvent(e: SseEvent): string {
  return e.event === undefined ? `data: ${e.data}\n\n` : `event: ${e.event}\ndata: ${e.data}\n\n`;
}

/**
 * Writes a stream event by event. A mid-stream fault fires after
 * `afterEvents` events: a reset destroys the socket (no terminating chunk, so
 * the client sees a broken transfer), a stall goes quiet and then carries on.
 */
export async function writeSse(
  res: ServerResponse,
  events: SseEvent[],
  opts: { delayMs: number; fault: Fault | undefined; signal: AbortSignal },
): Promise<void> {
  const { fault, signal } = opts;
  // Headers go out at once so a client sees the stream open even when a fault fires before any event.
  res.flushHeaders();
  let flushed = Promise.resolve();
  for (let i = 0; i <= events.length; i++) {
    if (fault?.type === 'reset_mid_stream' && i === fault.afterEvents) {
      // Let the events already written reach the wire before the connection dies.
      await flushed;
      res.socket?.destroy();
      return;
    }
    if (fault?.type === 'stall_mid_stream' && i === fault.afterEvents) {
      if (!(await sleep(fault.ms, signal))) return;
    }
    if (i === events.length) break;
    if (i > 0 && opts.delayMs > 0 && !(await sleep(opts.delayMs, signal))) return;
    if (res.destroyed) return;
    flushed = new Promise((resolve) => res.write(encodeEvent(events[i]!), () => resolve()));
  }
  res.end();
}
