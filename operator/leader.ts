// Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it: a replica takes
// the Lease when its holder has not renewed it for leaseDurationSeconds as observed on this
// replica's own clock (so clocks need not agree), every write is an update with the
// resourceVersion it read (two candidates never both win), and the leader stops acting as one
// once it has failed to renew for renewDeadline, before anyone else may take over.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { sleep } from './controller/backoff.ts';
import { isConflict, isNotFound, type KubeClient } from './kube/client.ts';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
}

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity?: string;
  leaseSeconds: number;
  /** Renew (and, when following, retry) this often. */
  retryMs?: number;
  /** A leader that has not renewed for this long stops leading. Below leaseSeconds. */
  renewDeadlineMs?: number;
  onChange?: (leading: boolean) => void;
}

/** MicroTime: RFC 3339 with microseconds. */
const micro = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export function defaultIdentity(): string {
  return `${process.env.POD_NAME ?? hostname()}_${randomBytes(4).toString('hex')}`;
}

export class LeaderElector {
  readonly identity: string;
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly opts: Required<Omit<LeaderOptions, 'onChange' | 'identity'>> & Pick<LeaderOptions, 'onChange'>;
  private readonly path: string;
  private leading = false;
  private lastRenew = 0;
  /** The holder/renewTime last seen and when, on this clock. */
  private observed: { key: string; at: number } | undefined;
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(client: KubeClient, log: Logger, opts: LeaderOptions) {
    this.client = client;
    this.log = log.child({ lease: `${opts.namespace}/${opts.name}` });
    this.identity = opts.identity ?? defaultIdentity();
    const leaseMs = opts.leaseSeconds * 1000;
    this.opts = {
      namespace: opts.namespace,
      name: opts.name,
      leaseSeconds: opts.leaseSeconds,
      retryMs: opts.retryMs ?? Math.max(200, Math.round(leaseMs / 4)),
      renewDeadlineMs: opts.renewDeadlineMs ?? Math.round(leaseMs * 0.75),
      onChange: opts.onChange,
    };
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${opts.namespace}/leases`;
  }

  /** Leading now: holds the Lease and renewed it within the renew deadline. */
  isLeader(): boolean {
    if (this.leading && Date.now() - this.lastRenew > this.opts.renewDeadlineMs) this.setLeading(false, 'renew deadline passed');
    return this.leading;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private setLeading(leading: boolean, why: string): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.log[leading ? 'info' : 'warn']({ event: leading ? 'leader_acquired' : 'leader_lost', identity: this.identity, reason: why }, leading ? 'leading' : 'no longer leading');
    this.opts.onChange?.(leading);
  }

  private async run(): Promise<void> {
    while (!this.stopper.signal.aborted) {
      try {
        const ok = await this.tryAcquireOrRenew();
        if (ok) {
          this.lastRenew = Date.now();
          this.setLeading(true, 'lease acquired');
        } else {
          this.isLeader();
          if (this.leading) this.setLeading(false, 'lease held by another replica');
        }
      } catch (err) {
        if (this.stopper.signal.aborted) break;
        this.log.debug({ event: 'lease_error', error: (err as Error).message }, 'lease update failed');
        this.isLeader();
      }
      await sleep(this.opts.retryMs, this.stopper.signal);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = Date.now();
    const fresh: LeaseSpec = { holderIdentity: this.identity, leaseDurationSeconds: this.opts.leaseSeconds, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 };
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(`${this.path}/${this.opts.name}`, { timeoutMs: this.opts.retryMs * 2 });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.client.call('POST', this.path, { body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.opts.name, namespace: this.opts.namespace }, spec: fresh }, timeoutMs: this.opts.retryMs * 2 });
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const key = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const holder = spec.holderIdentity ?? '';
    const mine = holder === this.identity;
    const expired = this.observed.at + (spec.leaseDurationSeconds ?? this.opts.leaseSeconds) * 1000 <= now;
    if (holder && !mine && !expired) return false;
    const next: LeaseSpec = mine
      ? { ...spec, leaseDurationSeconds: this.opts.leaseSeconds, renewTime: micro(now) }
      : { ...fresh, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    try {
      await this.client.call('PUT', `${this.path}/${this.opts.name}`, { body: { ...lease, spec: next }, timeoutMs: this.opts.retryMs * 2 });
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    return true;
  }

  /** Stops campaigning; a leader hands the Lease back so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
    if (!this.leading) return;
    this.setLeading(false, 'shutting down');
    try {
      const lease = await this.client.get<Lease>(`${this.path}/${this.opts.name}`, { timeoutMs: 3000 });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = Date.now();
      await this.client.call('PUT', `${this.path}/${this.opts.name}`, { body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: micro(now), acquireTime: micro(now) } }, timeoutMs: 3000 });
      this.log.info({ event: 'leader_released' }, 'lease released');
    } catch (err) {
      this.log.warn({ event: 'lease_release_failed', error: (err as Error).message }, 'could not release the lease; another replica takes over when it expires');
    }
  }
}
