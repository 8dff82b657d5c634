import { setTimeout as wait } from 'node:timers/promises';

/** Waits, or returns false early when the signal aborts (client gone or server closing). */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await wait(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
