// The load: autocannon for fixed-rate and closed-loop phases, and a small streaming client for
// time to first token. Latencies are taken from autocannon's per-response events (high-resolution
// milliseconds), not from its histogram, which records whole milliseconds only.
import { request, Agent } from 'node:http';
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { latencyStats, type LatencyStats } from './measure.ts';
import type { Target } from './servers.ts';

export const CHAT_BODY = JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Where is order 1234?' }] });
const STREAM_BODY = JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Where is order 1234?' }], stream: true });
const CHAT_PATH = '/v1/chat/completions';

// The parts of autocannon (v9, CommonJS, no types) the bench uses.
interface CannonClient extends EventEmitter {
  rate?: number;
  rateInterval?: NodeJS.Timeout;
  reqsMadeThisSecond: number;
  paused?: boolean;
  cer?: unknown;
  destroyed?: boolean;
  _doRequest(cer?: unknown): void;
}
interface CannonOptions {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  duration: number;
  overallRate?: number;
  ignoreCoordinatedOmission?: boolean;
  timeout: number;
  setupClient: (client: CannonClient) => void;
}
interface CannonInstance extends EventEmitter {
  stop(): void;
}
type Autocannon = (opts: CannonOptions, done: (err: Error | null) => void) => CannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** Something measured over the measuring window of a phase (after its ramp-up second). */
export interface Probe {
  start(): void;
  stop(): void;
}

export interface PhaseOptions {
  connections: number;
  /** Measured seconds; one more ramp-up second runs first and is not counted. */
  seconds: number;
  /** Requests per second over all connections; absent: closed loop, as fast as the target goes. */
  rate?: number;
  probes?: Probe[];
}

export interface PhaseResult {
  target: string;
  rate: number | null;
  connections: number;
  seconds: number;
  /** Requests written during the whole phase, ramp-up included (for the log-line check). */
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** 2xx answers per second in the measuring window. */
  achievedRps: number;
  latencyMs: LatencyStats;
  statusCodes: Record<string, number>;
}

const RAMP_MS = 1_000;

/**
 * autocannon's rate limit lets each connection send its share back to back at the start of every
 * second, so a "500 req/s" phase is really a burst of `connections` concurrent calls each second.
 * An app's calls arrive spread out, and a latency target is about that. So every connection's own
 * one-second timer is stopped and its budget set to one request, and a single 1 ms ticker hands
 * out requests to idle connections, round robin, as the clock says they are due: an even stream
 * at the rate autocannon was given, through a pool of `connections` kept-alive connections. When
 * every connection is busy, what is due waits for the next one free (the target is saturating).
 */
function evenPacer(rate: number): (client: CannonClient) => void {
  const clients: CannonClient[] = [];
  let timer: NodeJS.Timeout | undefined;
  let started = 0;
  let released = 0;
  let next = 0;
  const tick = () => {
    if (clients.every((c) => c.destroyed)) return clearInterval(timer);
    const due = Math.floor(((performance.now() - started) * rate) / 1000);
    for (let tries = 0; released < due && tries < clients.length; tries++) {
      const c = clients[next]!;
      next = (next + 1) % clients.length;
      if (!c.paused || c.destroyed) continue;
      released++;
      tries = -1;
      c.reqsMadeThisSecond = 0;
      c.paused = false;
      c._doRequest(c.cer);
    }
  };
  return (client) => {
    clients.push(client);
    // setupClient runs inside the constructor, before autocannon starts its own timer.
    setImmediate(() => {
      clearInterval(client.rateInterval);
      client.rate = 1;
      if (timer) return;
      started = performance.now();
      timer = setInterval(tick, 1);
    });
  };
}

export function runPhase(target: Target, opts: PhaseOptions): Promise<PhaseResult> {
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let sent = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let measuring = false;
  let windowStart = 0;
  let windowEnd = 0;
  const pace = opts.rate ? evenPacer(opts.rate) : undefined;

  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${target.origin}${CHAT_PATH}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...target.headers },
        body: CHAT_BODY,
        connections: opts.connections,
        duration: opts.seconds + RAMP_MS / 1_000,
        // Its coordinated-omission correction assumes one request per millisecond per
        // connection; latencies are recorded here, from the paced sends, instead.
        ...(opts.rate ? { overallRate: opts.rate, ignoreCoordinatedOmission: true } : {}),
        timeout: 10,
        setupClient: (client) => {
          client.on('request', () => sent++);
          pace?.(client);
        },
      },
      (err) => {
        if (measuring) stopWindow();
        if (err) return reject(err);
        const seconds = (windowEnd - windowStart) / 1_000;
        resolve({
          target: target.name,
          rate: opts.rate ?? null,
          connections: opts.connections,
          seconds,
          sent,
          ok,
          non2xx,
          errors,
          achievedRps: ok / seconds,
          latencyMs: latencyStats(latencies),
          statusCodes,
        });
      },
    );
    const stopWindow = () => {
      measuring = false;
      windowEnd = performance.now();
      for (const p of opts.probes ?? []) p.stop();
    };
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
      if (!measuring) return;
      if (status >= 200 && status < 300) {
        ok++;
        latencies.push(ms);
      } else {
        non2xx++;
      }
    });
    instance.on('reqError', () => {
      if (measuring) errors++;
    });
    setTimeout(() => {
      measuring = true;
      windowStart = performance.now();
      for (const p of opts.probes ?? []) p.start();
      // autocannon stops on its own timer; the window closes a little before, so the requests
      // it abandons at the end are not counted as slow ones.
      setTimeout(stopWindow, opts.seconds * 1_000 - 50);
    }, RAMP_MS);
  });
}

export interface StreamResult {
  target: string;
  requests: number;
  ok: number;
  failed: number;
  ttftMs: LatencyStats;
  totalMs: LatencyStats;
}

/** One streamed chat call: time to the first content delta and to the end of the stream. */
function streamOnce(target: Target, agent: Agent): Promise<{ ttft: number; total: number } | undefined> {
  const url = new URL(`${target.origin}${CHAT_PATH}`);
  return new Promise((resolve) => {
    const t0 = performance.now();
    let ttft: number | undefined;
    let pending = '';
    const req = request(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', ...target.headers } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          res.on('end', () => resolve(undefined));
          return;
        }
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (ttft !== undefined) return;
          pending += chunk;
          let cut: number;
          while (ttft === undefined && (cut = pending.indexOf('\n\n')) >= 0) {
            const event = pending.slice(0, cut);
            pending = pending.slice(cut + 2);
            if (hasContent(event)) ttft = performance.now() - t0;
          }
        });
        res.on('end', () => resolve(ttft === undefined ? undefined : { ttft, total: performance.now() - t0 }));
        res.on('error', () => resolve(undefined));
      },
    );
    req.setTimeout(30_000, () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end(STREAM_BODY);
  });
}

function hasContent(event: string): boolean {
  for (const line of event.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    try {
      const chunk = JSON.parse(line.slice(6)) as { choices?: { delta?: { content?: unknown } }[] };
      const content = chunk.choices?.[0]?.delta?.content;
      if (typeof content === 'string' && content.length > 0) return true;
    } catch {
      // Not JSON: not a content delta.
    }
  }
  return false;
}

/** `requests` streamed calls, `concurrency` at a time, each on a kept-alive connection. */
export async function runStreams(target: Target, requests: number, concurrency: number): Promise<StreamResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const ttfts: number[] = [];
  const totals: number[] = [];
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next++ < requests) {
      const r = await streamOnce(target, agent);
      if (!r) {
        failed++;
        continue;
      }
      ttfts.push(r.ttft);
      totals.push(r.total);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return { target: target.name, requests, ok: ttfts.length, failed, ttftMs: latencyStats(ttfts), totalMs: latencyStats(totals) };
}
