// Starting and stopping the operator: the Kubernetes client, leader election, the controller and
// the admin listener. SIGTERM stops writing, hands the Lease back and exits.
import type { Logger } from 'pino';
import { KubeClient } from './kube/client.ts';
import { Controller } from './controller/controller.ts';
import { LeaderElector, defaultIdentity } from './leader.ts';
import { OperatorMetrics } from './metrics.ts';
import { startAdmin } from './admin.ts';
import { LEASE_NAME } from './rbac.ts';

export interface OperatorOptions {
  kubeconfig?: string;
  /** Where the leader-election Lease lives. */
  namespace: string;
  metricsPort: number;
  metricsHost: string;
  log: Logger;
  leaseSeconds: number;
  /** Server-side timeout asked for each watch; a watch silent for longer (plus a margin) is restarted. */
  watchTimeoutSeconds: number;
  resyncSeconds: number;
  spendIntervalSeconds: number;
  workers: number;
}

export interface RunningOperator {
  controller: Controller;
  leader: LeaderElector;
  metricsPort: number;
  shutdown(): Promise<void>;
}

export async function startOperator(opts: OperatorOptions): Promise<RunningOperator> {
  const { log } = opts;
  const metrics = new OperatorMetrics();
  const client = await KubeClient.create(opts.kubeconfig, { connections: Math.max(16, opts.workers * 2) + 8 });
  const identity = defaultIdentity();
  let controller: Controller | undefined;
  const leader = new LeaderElector(client, log, {
    namespace: opts.namespace,
    name: LEASE_NAME,
    identity,
    leaseSeconds: opts.leaseSeconds,
    onChange: (leading) => {
      metrics.leader.set(leading ? 1 : 0);
      if (leading) controller?.onLeading();
    },
  });
  controller = new Controller({
    client,
    log,
    metrics,
    identity,
    isLeader: () => leader.isLeader(),
    workers: opts.workers,
    watch: { timeoutSeconds: opts.watchTimeoutSeconds, silenceMarginMs: opts.watchTimeoutSeconds > 0 ? Math.max(5000, Math.min(30_000, opts.watchTimeoutSeconds * 500)) : 30_000 },
    resyncMs: opts.resyncSeconds * 1000,
    spendIntervalMs: opts.spendIntervalSeconds * 1000,
    scrapeTimeoutMs: Math.max(500, Math.min(5000, opts.spendIntervalSeconds * 500)),
  });
  const deadline = ((opts.watchTimeoutSeconds > 0 ? opts.watchTimeoutSeconds : 3600) + 30) * 1000;
  const admin = await startAdmin(
    metrics,
    {
      readiness: () => {
        const reasons: string[] = [];
        const silence = (controller as Controller).silence();
        if (!(controller as Controller).synced()) reasons.push('watches have not listed yet');
        for (const [resource, s] of Object.entries(silence)) if (s * 1000 > deadline) reasons.push(`watch of ${resource} silent for ${s} s`);
        return { ready: reasons.length === 0, reasons, detail: { leader: leader.isLeader(), identity, watch_silence_seconds: silence } };
      },
    },
    opts.metricsPort,
    opts.metricsHost,
  );
  controller.start();
  leader.start();
  log.info({ event: 'started', metrics_port: admin.port, identity, lease: `${opts.namespace}/${LEASE_NAME}`, server: client.server }, 'operator started');

  let stopping: Promise<void> | undefined;
  return {
    controller,
    leader,
    metricsPort: admin.port,
    shutdown: () =>
      (stopping ??= (async () => {
        log.info({ event: 'stopping' }, 'stopping: no more writes, releasing the lease');
        await (controller as Controller).stop();
        await leader.stop();
        await new Promise<void>((resolve) => admin.server.close(() => resolve()));
        admin.server.closeAllConnections();
        await client.close();
      })()),
  };
}
