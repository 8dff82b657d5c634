import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bundleOf, planStep, secretFromState, stateFromSecret, type TlsPolicy, type TlsState } from './tls.ts';
import { splitPem } from './x509.ts';

const policy: TlsPolicy = { caValiditySeconds: 300, certValiditySeconds: 90, renewFraction: 1 / 3, overlapSeconds: 10, hosts: ['ai-envelope-webhook.sys.svc', '127.0.0.1'] };
const T0 = Date.UTC(2030, 0, 1);

/** True when the serving certificate chains to one of the bundle's CAs, as a TLS client would check. */
function trusted(s: TlsState, bundle: string, at: number): boolean {
  const leaf = new X509Certificate(s.serving.certPem);
  if (Date.parse(leaf.validTo) < at || Date.parse(leaf.validFrom) > at) return false;
  return splitPem(bundle).some((pem) => {
    const ca = new X509Certificate(pem);
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey) && Date.parse(ca.validTo) >= at;
  });
}

describe('planStep', () => {
  it('creates a CA and a serving certificate for the hosts, and then rests', () => {
    const first = planStep(undefined, T0, policy, false);
    expect(first?.reason).toMatch(/created/);
    const s = first?.state as TlsState;
    const leaf = new X509Certificate(s.serving.certPem);
    expect(leaf.checkHost('ai-envelope-webhook.sys.svc')).toBeTruthy();
    expect(leaf.checkIP('127.0.0.1')).toBeTruthy();
    expect(new X509Certificate(s.ca.certPem).ca).toBe(true);
    expect(trusted(s, bundleOf(s), T0)).toBe(true);
    expect(planStep(s, T0 + 1000, policy, true)).toBeUndefined();
  });

  it('renews the serving certificate with a third of its life left, from the same CA', () => {
    const s = planStep(undefined, T0, policy, false)?.state as TlsState;
    const step = planStep(s, T0 + 61_000, policy, true);
    expect(step?.reason).toMatch(/renewed the serving certificate/);
    expect(step?.state.ca.certPem).toBe(s.ca.certPem);
    expect(step?.state.serving.certPem).not.toBe(s.serving.certPem);
  });

  it('renews when the hosts change', () => {
    const s = planStep(undefined, T0, policy, false)?.state as TlsState;
    expect(planStep(s, T0, { ...policy, hosts: [...policy.hosts, 'other.svc'] }, true)?.reason).toMatch(/lacks other\.svc/);
  });

  it('rotates the CA in three steps, each certificate served trusted by the bundle published before it', () => {
    // Walk the lifecycle with a clock: every state's serving certificate must be trusted both by
    // its own bundle and by the bundle of the state before it (replicas and the API server lag one step).
    let s = planStep(undefined, T0, policy, false)?.state as TlsState;
    const firstCA = s.ca.certPem;
    const reasons: string[] = [];
    let published = bundleOf(s);
    for (let t = T0; t < T0 + 400_000; t += 1000) {
      const step = planStep(s, t, policy, true);
      if (!step) continue;
      reasons.push(step.reason.split(' ')[0] as string);
      expect(trusted(step.state, published, t), `${step.reason} at +${(t - T0) / 1000}s`).toBe(true);
      expect(trusted(s, bundleOf(step.state), t), `old certificate after ${step.reason}`).toBe(true);
      s = step.state;
      published = bundleOf(s);
      expect(splitPem(published).length).toBeLessThanOrEqual(2);
    }
    expect(reasons).toContain('staged');
    expect(reasons).toContain('serving');
    expect(reasons).toContain('retired');
    expect(s.ca.certPem).not.toBe(firstCA);
    const rotation = reasons.filter((r) => r !== 'renewed');
    const staged = rotation.indexOf('staged');
    expect(rotation.slice(staged, staged + 3)).toEqual(['staged', 'serving', 'retired']);
  });

  it('does not promote a staged CA before the caBundle carrying it is published', () => {
    const s = planStep(undefined, T0, policy, false)?.state as TlsState;
    const staged = planStep(s, T0 + 201_000, policy, true)?.state as TlsState;
    expect(staged.next).toBeDefined();
    expect(planStep(staged, T0 + 260_000, policy, false)?.reason ?? '').not.toMatch(/new CA/);
    expect(planStep(staged, T0 + 260_000, policy, true)?.reason).toMatch(/signed by the new CA/);
  });

  it('round-trips through a Secret', () => {
    let s = planStep(undefined, T0, policy, false)?.state as TlsState;
    s = planStep(s, T0 + 201_000, policy, true)?.state as TlsState;
    const back = stateFromSecret(secretFromState('sys', 'tls', s));
    expect(back).toEqual(s);
    const secret = secretFromState('sys', 'tls', s);
    expect(Buffer.from((secret.data as Record<string, string>)['ca-bundle.crt'] as string, 'base64').toString()).toBe(bundleOf(s));
  });
});
