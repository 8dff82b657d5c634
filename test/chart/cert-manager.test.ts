// The chart's cert-manager mode from the operator's side: the webhook serves the certificate of the
// Secret the chart mounts (laid out the way the kubelet mounts it), picks up a renewal without a
// restart, and never calls the API server for its certificates (cert-manager's CA injector keeps
// the caBundle).
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, expect, it, describe } from 'vitest';
import type { KubeClient } from '../../operator/kube/client.ts';
import { startWebhookFromFiles } from '../../operator/webhook/server.ts';
import { issue, type Issued } from '../../operator/webhook/x509.ts';
import { eventually } from '../operator/support.ts';
import { SecretVolume, tempDir } from '../support/sidecar-process.ts';
import { one, renderChart } from './support.ts';

const hour = 3600_000;
const ca = issue({ commonName: 'test-webhook-ca', isCA: true, notBefore: new Date(Date.now() - hour), notAfter: new Date(Date.now() + 24 * hour) });
const leaf = (cn: string): Issued => issue({ commonName: cn, isCA: false, hosts: ['127.0.0.1'], notBefore: new Date(Date.now() - hour), notAfter: new Date(Date.now() + hour), issuer: ca });

/** The certificate a client that trusts only `ca` is served (the request fails if it does not chain to it). */
function servedCertificate(port: number): Promise<{ status: number; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', ca: ca.certPem, agent: false }, (res) => {
      const cert = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate();
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint: cert?.fingerprint256 ?? '' }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('webhook certificates from a mounted cert-manager Secret', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const s of stops) await s();
  });

  it('serves the mounted certificate, reloads it when the Secret is renewed, and never calls the API server', async () => {
    const objs = await renderChart({ certManager: { enabled: true } });
    const container = one(objs, 'Deployment').spec.template.spec.containers[0] as { args: string[]; volumeMounts: Array<{ name: string; mountPath: string }> };
    const mountPath = container.volumeMounts.find((m) => m.name === 'webhook-tls')?.mountPath as string;
    expect(container.args).toContain(`--webhook-cert-dir=${mountPath}`);

    // The Secret cert-manager writes (tls.crt, tls.key, ca.crt), mounted where the chart mounts it.
    const root = tempDir('cert-manager');
    const volume = new SecretVolume(join(root, mountPath, '..'));
    const dirName = mountPath.split('/').at(-1) as string;
    const first = leaf('first');
    volume.write(dirName, { 'tls.crt': first.certPem, 'tls.key': first.keyPem, 'ca.crt': ca.certPem });

    const calls: string[] = [];
    const client = new Proxy({}, { get: (_, prop) => () => { calls.push(String(prop)); throw new Error('no API calls expected'); } }) as unknown as KubeClient;
    const hook = await startWebhookFromFiles({ client, log: pino({ level: 'silent' }), namespace: 'ai-envelope-system', port: 0, host: '127.0.0.1', isLeader: () => true, certDir: join(root, mountPath), checkSeconds: 1 });
    stops.push(() => hook.stop());

    const before = await servedCertificate(hook.port);
    expect(before.status).toBe(200);
    expect(before.fingerprint).toBe(new X509Certificate(first.certPem).fingerprint256);

    const renewed = leaf('renewed');
    volume.write(dirName, { 'tls.crt': renewed.certPem, 'tls.key': renewed.keyPem, 'ca.crt': ca.certPem });
    const expected = new X509Certificate(renewed.certPem).fingerprint256;
    await eventually('renewed certificate served', async () => (await servedCertificate(hook.port)).fingerprint === expected, 10_000);
    expect(calls).toEqual([]);
  });
});
