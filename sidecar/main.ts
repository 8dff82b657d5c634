// Starting and stopping a sidecar: load config, open both listeners, drain on SIGTERM.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Sidecar } from './sidecar.ts';
import { adminApp, proxyListener } from './server.ts';
import { loadConfig } from '../crds/render.ts';
import { join } from 'node:path';
import { LocalStore } from './state/local.ts';
import { ReviewStore, type Reviews } from './review/store.ts';
import type { StateStore } from './state/types.ts';
import { BatchService } from './batch/service.ts';

export interface StartOptions {
  configPath: string;
  secretsDir: string;
  port: number;
  adminPort: number;
  /** The proxy is for the pod's own containers: loopback only, unless a test says otherwise. */
  host?: string;
  adminHost?: string;
  graceSeconds: number;
  log: Logger;
  /** Spend persists here across restarts; without it, only in memory. */
  stateDir?: string;
  /** Shares limits and budgets with every replica; else the config's state.redisURL, if any. */
  redisURL?: string;
  /**
   * Counts limits and budgets in this process alone, whatever the config says: an eval run of a
   * production route must not spend production's shared budget.
   */
  isolated?: boolean;
  pollMs?: number;
}

export interface RunningSidecar {
  sidecar: Sidecar;
  port: number;
  adminPort: number;
  /** Stops accepting, lets in-flight calls finish within the grace period, then closes. */
  shutdown(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startSidecar(opts: StartOptions): Promise<RunningSidecar> {
  let sidecar: Sidecar | undefined;
  // Limits, budgets and the review queue share one Redis, when there is one: read the config once.
  const redisURL = await sharedStateURL(opts);
  const state = await openState(opts, redisURL, (backend, reason) => {
    sidecar?.metrics.stateBackend.reset();
    sidecar?.metrics.stateBackend.set({ backend }, 1);
    const line = { event: 'state_backend', backend, ...(reason ? { reason } : {}) };
    if (backend === 'local') opts.log.error(line, 'Redis is unreachable: limits and budgets are enforced by this sidecar alone until it returns');
    else opts.log.info(line, 'Redis is back: limits and budgets are shared again');
  });
  const reviews = await openReviews(opts, redisURL);
  // Expired items go within the hour, whether or not anyone looks at the queue.
  const sweeping = setInterval(() => void reviews.sweep().catch(() => {}), 3_600_000);
  sweeping.unref();
  sidecar = new Sidecar({ configPath: opts.configPath, secretsDir: opts.secretsDir, log: opts.log, state, reviews, ...(opts.pollMs ? { pollMs: opts.pollMs } : {}) });
  sidecar.metrics.stateBackend.set({ backend: state.kind }, 1);
  await sidecar.config.reload();
  await sidecar.config.start(opts.pollMs);
  // Governed batches and deferred calls persist beside the spend they reserve.
  sidecar.batches = await BatchService.open(sidecar, opts.stateDir ? join(opts.stateDir, 'batches') : undefined);
  sidecar.batches.start();

  const proxy = createServer({ keepAliveTimeout: 65_000 }, proxyListener(sidecar));
  // Streams may be long; the route's own timeouts bound them, not Node's defaults.
  proxy.requestTimeout = 0;
  proxy.headersTimeout = 30_000;
  const admin = createServer(adminApp(sidecar));
  const port = await listen(proxy, opts.port, opts.host ?? '127.0.0.1');
  const adminPort = await listen(admin, opts.adminPort, opts.adminHost ?? '0.0.0.0');
  opts.log.info({ event: 'started', port, admin_port: adminPort, config_version: sidecar.config.current?.version ?? null }, 'sidecar listening');

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    clearInterval(sweeping);
    stopping ??= (async () => {
      sidecar.draining = true;
      opts.log.info({ event: 'draining', in_flight: sidecar.inFlight, grace_seconds: opts.graceSeconds }, 'shutting down: finishing in-flight requests');
      proxy.close();
      proxy.closeIdleConnections();
      const grace = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), opts.graceSeconds * 1000).unref());
      const outcome = await Promise.race([sidecar.idle().then(() => 'idle' as const), grace]);
      if (outcome === 'timeout') opts.log.warn({ event: 'grace_expired', in_flight: sidecar.inFlight }, 'grace period over: closing remaining connections');
      proxy.closeAllConnections();
      admin.close();
      admin.closeAllConnections();
      await sidecar.close();
      opts.log.info({ event: 'stopped' }, 'sidecar stopped');
    })();
    return stopping;
  };
  return { sidecar, port, adminPort, shutdown };
}

/** The Redis every replica shares: the flag, else the rendered config's; none when isolated. */
async function sharedStateURL(opts: StartOptions): Promise<string | undefined> {
  if (opts.isolated) return undefined;
  if (opts.redisURL) return opts.redisURL;
  // The operator may put the shared store in the rendered config.
  const peek = await loadConfig(opts.configPath);
  return peek.ok ? peek.config.state?.redisURL : undefined;
}

async function openState(opts: StartOptions, redisURL: string | undefined, onChange: (backend: 'local' | 'redis', reason?: string) => void): Promise<StateStore> {
  const onError = (err: Error) => opts.log.error({ event: 'state_error', err: err.message }, 'state store problem');
  // ioredis is loaded only by sidecars that share a Redis: it adds ~6 MB to every other pod.
  if (redisURL) {
    const { ResilientStore } = await import('./state/resilient.ts');
    return ResilientStore.open({ redisUrl: redisURL, onChange, onError, ...(opts.stateDir ? { stateDir: opts.stateDir } : {}) });
  }
  return LocalStore.open({ onError, ...(opts.stateDir ? { stateDir: opts.stateDir } : {}) });
}

/** With a shared Redis, one review queue for every replica; else files in the state dir (or memory). */
async function openReviews(opts: StartOptions, redisURL: string | undefined): Promise<Reviews> {
  if (!redisURL) return ReviewStore.open(opts.stateDir ? join(opts.stateDir, 'reviews') : undefined);
  const { RedisReviewStore } = await import('./review/redis.ts');
  return new RedisReviewStore(redisURL);
}
