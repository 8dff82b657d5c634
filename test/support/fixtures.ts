// Route manifests and a running sidecar + simulator pair for end-to-end tests.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { stringify } from 'yaml';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { SecretVolume, startSidecarProcess, tempDir, type SidecarProcess } from './sidecar-process.ts';

export const TEST_KEY = 'sk-test-e2e-0123456789abcdef';

export function routeManifest(name: string, spec: Record<string, unknown>, namespace = 'shop', labels: Record<string, string> = {}): Record<string, unknown> {
  return { apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIRoute', metadata: { name, namespace, labels }, spec };
}

export function writeManifests(path: string, docs: Array<Record<string, unknown>>): void {
  writeFileSync(path, docs.map((d) => stringify(d)).join('---\n'));
}

/** A route spec against the simulator with quick retries, overridable field by field. */
export function simRoute(sim: Simulator, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    upstream: { baseURL: sim.url, secretRef: { name: 'openai', key: 'apiKey' }, project: 'proj_test' },
    endpoints: ['responses', 'chat.completions', 'embeddings', 'moderations', 'files', 'batches'],
    model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini', 'gpt-4.1-nano', 'text-embedding-3-small', 'omni-moderation-latest'], aliases: { fast: 'gpt-4.1-nano' } },
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
    timeouts: { requestSeconds: 10, streamIdleSeconds: 5 },
    // Tests that fire many faults at one upstream are not about the breaker; those that are set their own.
    circuitBreaker: { minimumCalls: 10_000 },
    ...spec,
  };
}

export interface Env {
  sim: Simulator;
  sidecar: SidecarProcess;
  secrets: SecretVolume;
  dir: string;
  configPath: string;
  client: OpenAI;
  close(): Promise<void>;
}

/** Simulator, secret volume, config file and a sidecar process, plus an SDK client aimed at it. */
export async function startEnv(opts: { routes?: (sim: Simulator) => Array<Record<string, unknown>>; key?: string; env?: Record<string, string>; args?: string[]; stateDir?: boolean } = {}): Promise<Env> {
  const sim = await startSimulator();
  const key = opts.key ?? TEST_KEY;
  sim.setApiKeys([key]);
  const dir = tempDir('e2e');
  const secrets = new SecretVolume(join(dir, 'secrets'));
  secrets.write('openai', { apiKey: `${key}\n` });
  const configPath = join(dir, 'routes.yaml');
  writeManifests(configPath, opts.routes ? opts.routes(sim) : [routeManifest('main', simRoute(sim))]);
  const args = [...(opts.args ?? []), ...(opts.stateDir ? ['--state-dir', join(dir, 'state')] : [])];
  const sidecar = await startSidecarProcess({ config: configPath, secretsDir: secrets.root, args, ...(opts.env ? { env: opts.env } : {}) });
  // The app's SDK holds a placeholder: the real key is the sidecar's alone.
  const client = new OpenAI({ apiKey: 'sk-test-placeholder-from-app', baseURL: sidecar.url, maxRetries: 2 });
  const env = {
    sim,
    sidecar,
    secrets,
    dir,
    configPath,
    client,
    // The sidecar in place now: a test may have replaced the first one with another process.
    close: async () => {
      await env.sidecar.stop('SIGKILL');
      await sim.close();
    },
  };
  return env;
}
