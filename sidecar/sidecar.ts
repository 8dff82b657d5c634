// The state one sidecar process shares between its listeners: config, keys, telemetry, and the
// in-flight count that graceful shutdown waits on.
import type { Logger } from 'pino';
import { ConfigStore } from './config/store.ts';
import { KeyStore } from './config/keys.ts';
import { Metrics } from './telemetry/metrics.ts';
import type { RequestRecord } from './telemetry/log.ts';

export interface SidecarOptions {
  configPath: string;
  secretsDir: string;
  log: Logger;
  /** How often config and key files are re-checked besides the file watchers. */
  pollMs?: number;
}

interface RouteUsage {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
}

export class Sidecar {
  readonly log: Logger;
  readonly metrics = new Metrics();
  readonly keys: KeyStore;
  readonly config: ConfigStore;
  readonly startedAt = new Date();
  inFlight = 0;
  draining = false;
  private readonly usage = new Map<string, RouteUsage>();
  private idleWaiters: Array<() => void> = [];

  constructor(opts: SidecarOptions) {
    this.log = opts.log;
    this.keys = new KeyStore(opts.log, this.metrics, opts.pollMs);
    this.config = new ConfigStore({ path: opts.configPath, secretsDir: opts.secretsDir, keys: this.keys, log: opts.log, metrics: this.metrics });
  }

  /** Ready: a config is in force, every key it needs is readable, and no shutdown has begun. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.draining) reasons.push('shutting down');
    if (!this.config.current) reasons.push(...(this.config.lastError ?? ['no config loaded yet']));
    reasons.push(...this.keys.problems().map((p) => `API key unavailable: ${p}`));
    return { ready: reasons.length === 0, reasons };
  }

  account(r: RequestRecord): void {
    const key = r.route ?? '(none)';
    let u = this.usage.get(key);
    if (!u) {
      u = { requests: 0, errors: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0, reasoning_tokens: 0 };
      this.usage.set(key, u);
    }
    u.requests++;
    if (r.status >= 400) u.errors++;
    u.input_tokens += r.input_tokens ?? 0;
    u.output_tokens += r.output_tokens ?? 0;
    u.cached_tokens += r.cached_tokens ?? 0;
    u.reasoning_tokens += r.reasoning_tokens ?? 0;
  }

  usageReport(): unknown {
    return {
      since: this.startedAt.toISOString(),
      config_version: this.config.current?.version ?? null,
      routes: Object.fromEntries(this.usage),
    };
  }

  onIdle(): void {
    if (this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.config.stop();
    this.keys.close();
  }
}
