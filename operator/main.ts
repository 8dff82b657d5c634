// Starting and stopping the operator: the Kubernetes client, leader election, the controller and
// the admin listener. SIGTERM stops writing, hands the Lease back and exits.
import type { Logger } from 'pino';
import { KubeClient } from './kube/client.ts';
import { Controller } from './controller/controller.ts';
import { LeaderElector, defaultIdentity } from './leader.ts';
import { OperatorMetrics } from './metrics.ts';
import { startAdmin } from './admin.ts';
import { LEASE_NAME } from './rbac.ts';
import type { BillingOptions } from './billing/reconciler.ts';
import { startWebhook, startWebhookFromFiles, type RunningWebhook, type WebhookOptions } from './webhook/server.ts';

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
  /** Reconciliation of spend with OpenAI billing (operator/billing/); off without an admin key Secret. */
  billing?: BillingOptions;
  /** Serve the injection webhook (every replica serves; only the leader writes its TLS Secret and caBundle). */
  webhook?: Omit<WebhookOptions, 'client' | 'log' | 'namespace' | 'isLeader' | 'registry'> & {
    /** Certificates from files (cert-manager's Secret mounted there) instead of the operator's own CA. */
    certDir?: string;
  };
}

export interface RunningOperator {
  controller: Controller;
  leader: LeaderElector;
  metricsPort: number;
  /** The injection webhook, when it was asked for. */
  webhook?: Omit<RunningWebhook, 'tls'> & { tls?: RunningWebhook['tls'] };
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
    ...(opts.billing ? { billing: opts.billing } : {}),
  });
  let webhook: RunningOperator['webhook'];
  const deadline = ((opts.watchTimeoutSeconds > 0 ? opts.watchTimeoutSeconds : 3600) + 30) * 1000;
  const admin = await startAdmin(
    metrics,
    {
      readiness: () => {
        const reasons: string[] = [];
        const silence = (controller as Controller).silence();
        if (!(controller as Controller).synced()) reasons.push('watches have not listed yet');
        // The webhook Service sends admissions to ready replicas only: one still loading its certificate is not.
        if (opts.webhook && !webhook) reasons.push('webhook not serving yet');
        for (const [resource, s] of Object.entries(silence)) if (s * 1000 > deadline) reasons.push(`watch of ${resource} silent for ${s} s`);
        return { ready: reasons.length === 0, reasons, detail: { leader: leader.isLeader(), identity, watch_silence_seconds: silence } };
      },
    },
    opts.metricsPort,
    opts.metricsHost,
  );
  controller.start();
  leader.start();
  if (opts.webhook) {
    const { certDir, ...w } = opts.webhook;
    const common = { ...w, client, log, namespace: opts.namespace, isLeader: () => leader.isLeader(), registry: metrics.registry };
    try {
      webhook = certDir ? await startWebhookFromFiles({ ...common, certDir }) : await startWebhook(common);
    } catch (err) {
      await controller.stop();
      await leader.stop();
      await new Promise<void>((resolve) => admin.server.close(() => resolve()));
      await client.close();
      throw err;
    }
  }
  log.info({ event: 'started', metrics_port: admin.port, webhook_port: webhook?.port ?? null, identity, lease: `${opts.namespace}/${LEASE_NAME}`, server: client.server }, 'operator started');

  let stopping: Promise<void> | undefined;
  return {
    controller,
    leader,
    metricsPort: admin.port,
    ...(webhook ? { webhook } : {}),
    shutdown: () =>
      (stopping ??= (async () => {
        log.info({ event: 'stopping' }, 'stopping: no more writes, releasing the lease');
        await webhook?.stop();
        await (controller as Controller).stop();
        await leader.stop();
        await new Promise<void>((resolve) => admin.server.close(() => resolve()));
        admin.server.closeAllConnections();
        await client.close();
      })()),
  };
}
