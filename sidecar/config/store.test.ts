import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigStore, concernsConfig } from './store.ts';
import { KeyStore } from './keys.ts';
import { SETTLE_MS } from './stamp.ts';
import { Metrics } from '../telemetry/metrics.ts';

const ROUTE = (model: string) => `apiVersion: ai-envelope.dev/v1alpha1
kind: AIRoute
metadata: { name: chat, namespace: shop }
spec:
  upstream: { baseURL: "http://127.0.0.1:9/v1", secretRef: { name: openai, key: apiKey } }
  model: { default: ${model}, allowed: [${model}] }
`;

describe('concernsConfig', () => {
  it('takes the config file, a ConfigMap symlink swap, and unnamed events', () => {
    expect(concernsConfig('routes.yaml', 'routes.yaml')).toBe(true);
    expect(concernsConfig('..data', 'routes.yaml')).toBe(true);
    expect(concernsConfig('..2026_12_06_23_00_00.123', 'routes.yaml')).toBe(true);
    expect(concernsConfig(null, 'routes.yaml')).toBe(true);
  });

  it('ignores other files beside a config file', () => {
    expect(concernsConfig('sidecar.log', 'routes.yaml')).toBe(false);
    expect(concernsConfig('other.yaml', 'routes.yaml')).toBe(false);
    expect(concernsConfig('.routes.yaml.swp', 'routes.yaml')).toBe(false);
  });

  it('takes every manifest of a config folder and nothing else', () => {
    expect(concernsConfig('budgets.yml', undefined)).toBe(true);
    expect(concernsConfig('routes.JSON', undefined)).toBe(true);
    expect(concernsConfig('notes.txt', undefined)).toBe(false);
    expect(concernsConfig('.hidden.yaml', undefined)).toBe(false);
  });
});

describe('ConfigStore watching', () => {
  let dir: string | undefined;
  let store: ConfigStore | undefined;
  afterEach(async () => {
    store?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function started(): Promise<{ store: ConfigStore; file: string; reloads: () => number }> {
    dir = await mkdtemp(join(tmpdir(), 'ai-envelope-store-'));
    const file = join(dir, 'routes.yaml');
    await writeFile(file, ROUTE('gpt-4.1-mini'));
    const log = pino({ level: 'silent' });
    const metrics = new Metrics();
    store = new ConfigStore({ path: file, secretsDir: join(dir, 'secrets'), keys: new KeyStore(log, metrics, 60_000), log, metrics });
    await store.reload();
    await store.start(60_000); // the poll out of the way: only the watcher reloads
    const spy = vi.spyOn(store, 'reload');
    return { store, file, reloads: () => spy.mock.calls.length };
  }

  it('does not reload for writes to other files in the config folder', async () => {
    const { reloads } = await started();
    for (let i = 0; i < 20; i++) {
      await writeFile(join(dir!, 'sidecar.log'), `line ${i}\n`, { flag: 'a' });
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(reloads()).toBe(0);
  });

  it('reloads when the config file itself changes', async () => {
    const { store, file, reloads } = await started();
    expect(store.current?.routes[0]?.spec.model.default).toBe('gpt-4.1-mini');
    await writeFile(file, ROUTE('gpt-4.1-nano'));
    await vi.waitFor(() => expect(store.current?.routes[0]?.spec.model.default).toBe('gpt-4.1-nano'), { timeout: 3_000 });
    expect(reloads()).toBeGreaterThan(0);
  });
});

describe('the backstop polls', () => {
  let dir: string | undefined;
  const stops: (() => void)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop();
    vi.useRealTimers();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  // Files just written count as fresh and are read whatever their stamp: the clock is moved past
  // that window (timers stay real) so the polls judge by stamps alone.
  const settle = () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + SETTLE_MS + 1_000);
  };
  /** A config store at `path` and its key store, stopped after the test. */
  const stores = (path: string, keyPollMs: number) => {
    const log = pino({ level: 'silent' });
    const metrics = new Metrics();
    const keys = new KeyStore(log, metrics, keyPollMs);
    const store = new ConfigStore({ path, secretsDir: join(dir!, 'secrets'), keys, log, metrics });
    stops.push(() => store.stop(), () => keys.close());
    return { store, keys };
  };

  it('read nothing while the config and key files stay as they are', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ai-envelope-poll-'));
    const file = join(dir, 'routes.yaml');
    await writeFile(file, ROUTE('gpt-4.1-mini'));
    await mkdir(join(dir, 'secrets'));
    const keyFile = join(dir, 'secrets', 'apiKey');
    await writeFile(keyFile, 'sk-test-poll-0001');
    const { store, keys } = stores(file, 20);
    await store.reload();
    await keys.use([keyFile]);
    settle();
    await store.start(20);
    const reloads = vi.spyOn(store, 'reload');
    const keyReads = vi.spyOn(keys, 'refresh');
    await new Promise((r) => setTimeout(r, 300));
    expect(reloads).not.toHaveBeenCalled();
    expect(keyReads).not.toHaveBeenCalled();
    // The same polls still read a file that moved.
    await writeFile(keyFile, 'sk-test-poll-0002');
    settle();
    await vi.waitFor(() => expect(keys.get(keyFile)).toBe('sk-test-poll-0002'), { timeout: 3_000 });
  });

  it('load a config that appears where no watcher could be set up', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ai-envelope-poll-'));
    const folder = join(dir, 'config');
    const { store } = stores(folder, 60_000);
    await store.reload();
    expect(store.current).toBeUndefined();
    await store.start(20); // the folder is missing: watch() fails, only the poll is left
    settle();
    const reloads = vi.spyOn(store, 'reload');
    await new Promise((r) => setTimeout(r, 200));
    expect(reloads).not.toHaveBeenCalled(); // still missing: its stamp has not moved
    await mkdir(folder);
    await writeFile(join(folder, 'routes.yaml'), ROUTE('gpt-4.1-nano'));
    await vi.waitFor(() => expect(store.current?.routes[0]?.spec.model.default).toBe('gpt-4.1-nano'), { timeout: 3_000 });
  });
});
