// The command line as a platform team uses it: validate, render, and a sidecar started from the
// rendered config (what the operator writes into a ConfigMap) or from a key in the environment.
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { parse } from 'yaml';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { routeManifest, simRoute, writeManifests } from '../support/fixtures.ts';
import { startSidecarProcess, tempDir, type SidecarProcess } from '../support/sidecar-process.ts';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const run = (...args: string[]) =>
  promisify(execFile)(process.execPath, [CLI, ...args]).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

let sim: Simulator | undefined;
let sidecar: SidecarProcess | undefined;
afterEach(async () => {
  await sidecar?.stop('SIGKILL');
  await sim?.close();
  sidecar = undefined;
  sim = undefined;
});

describe('ai-envelope validate', () => {
  it('accepts the examples', async () => {
    const r = await run('validate', '-f', fileURLToPath(new URL('../../examples', import.meta.url)));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: \d+ AIRoute/);
  });
  it('exits 1 with one line per problem', async () => {
    const dir = tempDir('cli');
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'apiVersion: ai-envelope.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: r}\nspec:\n  retry: {maxAttempts: 0}\n  model: {colour: red}\n');
    const r = await run('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `${file}: document 1 (AIRoute default/r): spec.model.colour: unknown field "spec.model.colour"`,
      `${file}: document 1 (AIRoute default/r): spec.retry.maxAttempts: Invalid value: 0: spec.retry.maxAttempts in body should be greater than or equal to 1`,
    ]);
  });
  it('says what is wrong with its own arguments', async () => {
    expect((await run('validate')).stderr).toContain('-f PATH is required');
    expect((await run('frobnicate')).code).toBe(2);
    expect((await run('validate', '-f', '/nonexistent.yaml')).code).toBe(1);
  });
});

describe('ai-envelope render', () => {
  it('prints a config with defaults that a sidecar runs with as it is', async () => {
    sim = await startSimulator({ apiKeys: ['sk-test-render'] });
    const dir = tempDir('cli');
    const manifests = join(dir, 'routes.yaml');
    writeManifests(manifests, [routeManifest('main', simRoute(sim, { upstream: { baseURL: sim.url, secretRef: { name: 'k' }, organization: 'org_test' } }))]);
    const r = await run('render', '-f', manifests);
    expect(r.code).toBe(0);
    const rendered = parse(r.stdout) as { kind: string; version: string; routes: Array<{ timeouts: unknown; upstream: { secretRef: { key: string } } }> };
    expect(rendered.kind).toBe('SidecarConfig');
    expect(rendered.version).toMatch(/^[0-9a-f]{16}$/);
    expect(rendered.routes[0]?.upstream.secretRef.key).toBe('apiKey');
    const configFile = join(dir, 'rendered.yaml');
    writeFileSync(configFile, r.stdout);
    const secrets = join(dir, 'secrets');
    const { SecretVolume } = await import('../support/sidecar-process.ts');
    new SecretVolume(secrets).write('k', { apiKey: 'sk-test-render' });
    sidecar = await startSidecarProcess({ config: configFile, secretsDir: secrets });
    const loaded = await sidecar.waitForLog((l) => l.event === 'config_loaded');
    expect(loaded.version).toBe(rendered.version);
    const client = new OpenAI({ apiKey: 'sk-test-app', baseURL: sidecar.url });
    expect((await client.responses.create({ model: 'gpt-4.1-mini', input: 'x' })).output_text).toBeTruthy();
    expect(sim.requests[0]?.headers['openai-organization']).toBe('org_test');
  });
});

describe('a route without a secretRef', () => {
  it("uses the sidecar's OPENAI_API_KEY", async () => {
    sim = await startSimulator({ apiKeys: ['sk-test-from-env'] });
    const dir = tempDir('cli');
    const config = join(dir, 'routes.yaml');
    writeManifests(config, [routeManifest('main', { upstream: { baseURL: sim.url }, model: { allowed: ['gpt-4.1-mini'] } })]);
    sidecar = await startSidecarProcess({ config, secretsDir: join(dir, 'none'), env: { OPENAI_API_KEY: 'sk-test-from-env' } });
    const client = new OpenAI({ apiKey: 'sk-test-app', baseURL: sidecar.url });
    await client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'x' }] });
    expect(sim.requests[0]?.headers.authorization).toBe('Bearer sk-test-from-env');
  });
});

describe('--admin-host', () => {
  const reachable = async (url: string) => fetch(url).then((r) => r.status, (e: Error) => (e.cause as NodeJS.ErrnoException | undefined)?.code ?? e.message);

  it('binds the admin listener where it is told (the tests use loopback, the default is every interface)', async () => {
    sim = await startSimulator({ apiKeys: ['sk-test-admin-host'] });
    const dir = tempDir('cli');
    const config = join(dir, 'routes.yaml');
    writeManifests(config, [routeManifest('main', { upstream: { baseURL: sim.url }, model: { allowed: ['gpt-4.1-mini'] } })]);
    const env = { OPENAI_API_KEY: 'sk-test-admin-host' };
    // Every 127/8 address reaches the loopback interface, but a socket bound to one answers only there.
    for (const [bound, other] of [['127.0.0.2', '127.0.0.1'], ['127.0.0.1', '127.0.0.2']] as const) {
      sidecar = await startSidecarProcess({ config, secretsDir: join(dir, 'none'), env, args: ['--admin-host', bound] });
      expect(await reachable(`http://${bound}:${sidecar.adminPort}/healthz`)).toBe(200);
      expect(await reachable(`http://${other}:${sidecar.adminPort}/healthz`)).toBe('ECONNREFUSED');
      await sidecar.stop('SIGKILL');
      sidecar = undefined;
    }
  });
});
