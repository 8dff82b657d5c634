// Exponential backoff with jitter. Half the delay is fixed and half random ("equal jitter"), so a
// retry never comes back at once (which would hammer an API server that is already struggling)
// and many restarting watches or failing objects spread out instead of retrying in step.
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
