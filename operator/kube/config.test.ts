import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { kubeconfigFile } from './config.ts';

const write = (doc: unknown, extra: Record<string, string> = {}) => {
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'config'), stringify(doc));
  return join(dir, 'config');
};
const base = (cluster: Record<string, unknown>, user: Record<string, unknown>) => ({
  apiVersion: 'v1',
  kind: 'Config',
  clusters: [{ name: 'other', cluster: { server: 'https://wrong' } }, { name: 'c', cluster }],
  users: [{ name: 'u', user }],
  contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
  'current-context': 'x',
});

describe('kubeconfigFile', () => {
  it('reads the current context: server, CA data, bearer token', async () => {
    const c = kubeconfigFile(write(base({ server: 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from('CA PEM').toString('base64') }, { token: 'tok' })));
    expect(c).toMatchObject({ server: 'https://127.0.0.1:6443', ca: 'CA PEM', insecure: false });
    expect(await c.credentials.token?.()).toBe('tok');
  });

  it('reads files relative to the kubeconfig, client certificates and token files', async () => {
    const c = kubeconfigFile(write(base({ server: 'https://h', 'certificate-authority': 'ca.crt', 'insecure-skip-tls-verify': true }, { 'client-certificate': 'c.crt', 'client-key': 'c.key', tokenFile: 'tok' }), { 'ca.crt': 'CA', 'c.crt': 'CERT', 'c.key': 'KEY', tok: 'from-file\n' }));
    expect(c).toMatchObject({ ca: 'CA', insecure: true, credentials: { cert: 'CERT', key: 'KEY' } });
    expect(await c.credentials.token?.()).toBe('from-file');
  });

  it('says which part is missing', () => {
    expect(() => kubeconfigFile(write({ ...base({ server: 'https://h' }, {}), 'current-context': 'nope' }))).toThrow("context 'nope' not found");
  });
});
