// The webhook's own certificate authority and serving certificate, kept in one Secret of the
// operator's namespace. The first replica to find no Secret creates it; afterwards only the
// leader changes it, one step per check, and every replica reloads it without a restart.
//
// A CA rotation never leaves the API server distrusting a replica's certificate:
//   1. stage: a new CA joins the caBundle beside the current one (serving certs unchanged);
//   2. promote, once the caBundle carrying both is written and `overlap` has passed: serving
//      certificates now come from the new CA; the old CA stays trusted for another `overlap`,
//      while replicas that have not reloaded yet still present a certificate it signed;
//   3. retire: the old CA leaves the caBundle.
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { isConflict, isNotFound, type KubeClient, type KubeObject } from '../kube/client.ts';
import { issue, splitPem, type Issued } from './x509.ts';

export interface TlsPolicy {
  caValiditySeconds: number;
  certValiditySeconds: number;
  /** Renew once less than this share of a certificate's lifetime is left. */
  renewFraction: number;
  /** How long both CAs are trusted side by side, before and after the switch. */
  overlapSeconds: number;
  /** DNS names and IP addresses the serving certificate must cover. */
  hosts: string[];
}

export const DEFAULT_TLS_POLICY: Omit<TlsPolicy, 'hosts'> = {
  caValiditySeconds: 5 * 365 * 86400,
  certValiditySeconds: 90 * 86400,
  renewFraction: 1 / 3,
  overlapSeconds: 3600,
};

export interface TlsState {
  /** Signs the serving certificate. */
  ca: Issued;
  /** Staged: trusted already, signing not yet. */
  next?: Issued;
  nextSince?: number;
  /** Retired from signing, trusted until previousUntil. */
  previous?: string;
  previousUntil?: number;
  serving: Issued;
}

/** What the API server must trust: every CA whose certificates a replica may present. */
export function bundleOf(s: TlsState): string {
  return [s.ca.certPem, s.next?.certPem, s.previous].filter((c): c is string => !!c).join('');
}

const validity = (pem: string) => {
  const x = new X509Certificate(pem);
  return { from: Date.parse(x.validFrom), to: Date.parse(x.validTo), x };
};
const dueForRenewal = (pem: string, now: number, fraction: number) => {
  const v = validity(pem);
  return v.to - now < (v.to - v.from) * fraction;
};
/** Backdated for clocks a little behind ours; a tenth of the lifetime at most, so short test lifetimes keep their meaning. */
const skew = (seconds: number) => Math.min(5 * 60_000, seconds * 100);

function newCA(now: number, p: TlsPolicy): Issued {
  return issue({ commonName: `ai-envelope-webhook-ca-${now}`, isCA: true, notBefore: new Date(now - skew(p.caValiditySeconds)), notAfter: new Date(now + p.caValiditySeconds * 1000) });
}

function newServing(ca: Issued, now: number, p: TlsPolicy): Issued {
  // Never outlive the CA: a chain is only as valid as its shortest link.
  const caEnd = validity(ca.certPem).to;
  const end = Math.min(now + p.certValiditySeconds * 1000, caEnd);
  return issue({ commonName: p.hosts[0] ?? 'ai-envelope-webhook', isCA: false, hosts: p.hosts, notBefore: new Date(now - skew(p.certValiditySeconds)), notAfter: new Date(end), issuer: ca });
}

function servingProblem(s: TlsState, now: number, p: TlsPolicy): string | undefined {
  const { x } = validity(s.serving.certPem);
  const ca = new X509Certificate(s.ca.certPem);
  if (!x.checkIssued(ca) || !x.verify(ca.publicKey)) return 'serving certificate not signed by the current CA';
  if (dueForRenewal(s.serving.certPem, now, p.renewFraction)) return 'serving certificate due for renewal';
  const sans = (x.subjectAltName ?? '').split(', ').map((e) => e.replace(/^(DNS|IP Address):/, ''));
  const missing = p.hosts.filter((h) => !sans.includes(h) && !(h.includes(':') && x.checkIP(h)));
  if (missing.length > 0) return `serving certificate lacks ${missing.join(', ')}`;
  return undefined;
}

/**
 * One step of the lifecycle, or undefined when nothing is due. `trustPublished`: the caBundle the
 * API server uses already holds every CA of this state (promotion waits for it).
 */
export function planStep(s: TlsState | undefined, now: number, p: TlsPolicy, trustPublished: boolean): { state: TlsState; reason: string } | undefined {
  if (!s) {
    const ca = newCA(now, p);
    return { state: { ca, serving: newServing(ca, now, p) }, reason: 'created CA and serving certificate' };
  }
  const overlap = p.overlapSeconds * 1000;
  if (s.previous && (s.previousUntil ?? 0) <= now) {
    const { previous: _p, previousUntil: _u, ...rest } = s;
    return { state: rest, reason: 'retired the previous CA from the caBundle' };
  }
  if (s.next && !s.previous && trustPublished && now - (s.nextSince ?? now) >= overlap) {
    const { next, nextSince: _n, ...rest } = s;
    return { state: { ...rest, ca: next, previous: s.ca.certPem, previousUntil: now + overlap, serving: newServing(next, now, p) }, reason: 'serving certificate now signed by the new CA; the old CA stays trusted for the overlap' };
  }
  if (!s.next && dueForRenewal(s.ca.certPem, now, p.renewFraction)) {
    return { state: { ...s, next: newCA(now, p), nextSince: now }, reason: 'staged a new CA beside the current one in the caBundle' };
  }
  const problem = servingProblem(s, now, p);
  if (problem) return { state: { ...s, serving: newServing(s.ca, now, p) }, reason: `renewed the serving certificate (${problem})` };
  return undefined;
}

const KEYS = { ca: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key', bundle: 'ca-bundle.crt', next: 'next-ca.crt', nextKey: 'next-ca.key', previous: 'previous-ca.crt' };
const NEXT_SINCE = 'ai-envelope.dev/next-ca-since';
const PREVIOUS_UNTIL = 'ai-envelope.dev/previous-ca-until';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : undefined);

export function stateFromSecret(secret: KubeObject): TlsState | undefined {
  const data = (secret.data ?? {}) as Record<string, string>;
  const get = (k: string) => unb64(data[k]);
  const [ca, caKey, cert, key] = [get(KEYS.ca), get(KEYS.caKey), get(KEYS.cert), get(KEYS.key)];
  if (!ca || !caKey || !cert || !key) return undefined;
  const notes = secret.metadata.annotations ?? {};
  const next = get(KEYS.next);
  const nextKey = get(KEYS.nextKey);
  const previous = get(KEYS.previous);
  return {
    ca: { certPem: ca, keyPem: caKey },
    serving: { certPem: cert, keyPem: key },
    ...(next && nextKey ? { next: { certPem: next, keyPem: nextKey }, nextSince: Date.parse(notes[NEXT_SINCE] ?? '') || 0 } : {}),
    ...(previous ? { previous, previousUntil: Date.parse(notes[PREVIOUS_UNTIL] ?? '') || 0 } : {}),
  };
}

export function secretFromState(namespace: string, name: string, s: TlsState, resourceVersion?: string): KubeObject {
  const data: Record<string, string> = {
    [KEYS.ca]: b64(s.ca.certPem),
    [KEYS.caKey]: b64(s.ca.keyPem),
    [KEYS.cert]: b64(s.serving.certPem),
    [KEYS.key]: b64(s.serving.keyPem),
    [KEYS.bundle]: b64(bundleOf(s)),
  };
  const annotations: Record<string, string> = {};
  if (s.next) {
    data[KEYS.next] = b64(s.next.certPem);
    data[KEYS.nextKey] = b64(s.next.keyPem);
    annotations[NEXT_SINCE] = new Date(s.nextSince ?? 0).toISOString();
  }
  if (s.previous) {
    data[KEYS.previous] = b64(s.previous);
    annotations[PREVIOUS_UNTIL] = new Date(s.previousUntil ?? 0).toISOString();
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'ai-envelope', 'ai-envelope.dev/role': 'webhook-tls' }, annotations, ...(resourceVersion ? { resourceVersion } : {}) },
    data,
  };
}

export interface WebhookConfigTarget {
  /** The MutatingWebhookConfiguration whose caBundle this operator keeps. */
  name: string;
  /** For an operator outside the cluster: the full URL the API server calls, instead of the Service. */
  url?: string;
}

export interface WebhookTlsOptions {
  client: KubeClient;
  log: Logger;
  namespace: string;
  secretName: string;
  policy: TlsPolicy;
  isLeader: () => boolean;
  config: WebhookConfigTarget;
  /** Called with every serving certificate this replica should present from now on. */
  onServing: (serving: Issued, state: TlsState) => void;
  now?: () => number;
}

/** Keeps the Secret, the served certificate and the webhook's caBundle in step. */
export class WebhookTls {
  private readonly o: WebhookTlsOptions;
  private resourceVersion: string | undefined;
  private current: TlsState | undefined;
  /** Every step taken by this replica, newest last (for logs and tests). */
  readonly steps: Array<{ at: number; reason: string }> = [];

  constructor(o: WebhookTlsOptions) {
    this.o = o;
  }

  get state(): TlsState | undefined {
    return this.current;
  }

  private get path() {
    return `/api/v1/namespaces/${this.o.namespace}/secrets/${this.o.secretName}`;
  }

  private now() {
    return (this.o.now ?? Date.now)();
  }

  private adopt(secret: KubeObject): void {
    const rv = secret.metadata.resourceVersion;
    if (rv && rv === this.resourceVersion) return;
    const state = stateFromSecret(secret);
    this.resourceVersion = rv;
    if (!state) return;
    const changed = state.serving.certPem !== this.current?.serving.certPem;
    this.current = state;
    if (changed) {
      this.o.onServing(state.serving, state);
      this.o.log.info({ event: 'webhook_certificate_loaded', not_after: new X509Certificate(state.serving.certPem).validTo, cas: splitPem(bundleOf(state)).length }, 'webhook serving certificate loaded');
    }
  }

  /** Reads the Secret, creating it when no replica has yet; resolves once a certificate is loaded. */
  async start(): Promise<void> {
    for (let attempt = 0; attempt < 10 && !this.current; attempt++) {
      let existing: KubeObject | undefined;
      try {
        existing = await this.o.client.get<KubeObject>(this.path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (existing) {
        this.adopt(existing);
        if (this.current) break;
      }
      const step = planStep(undefined, this.now(), this.o.policy, false) as { state: TlsState; reason: string };
      const body = secretFromState(this.o.namespace, this.o.secretName, step.state, existing?.metadata.resourceVersion);
      try {
        const written = existing ? await this.o.client.call<KubeObject>('PUT', this.path, { body }) : await this.o.client.call<KubeObject>('POST', `/api/v1/namespaces/${this.o.namespace}/secrets`, { body });
        this.steps.push({ at: this.now(), reason: step.reason });
        this.adopt(written);
      } catch (err) {
        // Another replica got there first: read its Secret on the next pass.
        if (!isConflict(err)) throw err;
      }
    }
    if (!this.current) throw new Error(`webhook TLS Secret ${this.o.namespace}/${this.o.secretName} could not be read or created`);
    // Whoever made the CA publishes it at once: admission fails closed until the API server trusts it.
    if (this.steps.length > 0 || this.o.isLeader()) await this.publish();
  }

  /**
   * One check: reload what changed, and on the leader publish the caBundle and take the next
   * lifecycle step. Errors are left to the caller's log; the next check tries again.
   */
  async check(): Promise<void> {
    this.adopt(await this.o.client.get<KubeObject>(this.path));
    if (!this.o.isLeader() || !this.current) return;
    const trusted = await this.publish();
    const step = planStep(this.current, this.now(), this.o.policy, trusted);
    if (!step) return;
    const body = secretFromState(this.o.namespace, this.o.secretName, step.state, this.resourceVersion);
    try {
      const written = await this.o.client.call<KubeObject>('PUT', this.path, { body });
      this.steps.push({ at: this.now(), reason: step.reason });
      this.o.log.info({ event: 'webhook_tls_step', reason: step.reason }, `webhook TLS: ${step.reason}`);
      this.adopt(written);
    } catch (err) {
      if (!isConflict(err)) throw err;
      return;
    }
    await this.publish();
  }

  /** Writes the caBundle (and, outside the cluster, the URL) into the webhook configuration. True when it holds every CA of the state. */
  async publish(): Promise<boolean> {
    if (!this.current) return false;
    const bundle = b64(bundleOf(this.current));
    const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${this.o.config.name}`;
    let cfg: KubeObject;
    try {
      cfg = await this.o.client.get<KubeObject>(path);
    } catch (err) {
      if (isNotFound(err)) {
        this.o.log.warn({ event: 'webhook_config_missing', name: this.o.config.name }, 'MutatingWebhookConfiguration not found: no caBundle to keep');
        return false;
      }
      throw err;
    }
    const hooks = (cfg.webhooks ?? []) as Array<{ clientConfig?: Record<string, unknown> }>;
    let changed = false;
    for (const h of hooks) {
      const before = JSON.stringify(h.clientConfig ?? {});
      const cc: Record<string, unknown> = this.o.config.url ? { url: this.o.config.url } : { ...(h.clientConfig ?? {}) };
      cc.caBundle = bundle;
      if (JSON.stringify(cc) !== before) {
        h.clientConfig = cc;
        changed = true;
      }
    }
    if (changed) {
      try {
        await this.o.client.call('PUT', path, { body: cfg });
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
      this.o.log.info({ event: 'webhook_ca_bundle_written', name: this.o.config.name, cas: splitPem(bundleOf(this.current)).length }, 'caBundle of the webhook configuration updated');
    }
    return true;
  }
}
