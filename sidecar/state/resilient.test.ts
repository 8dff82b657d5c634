import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startRedis, type RedisServer } from '../../test/support/redis.ts';
import { LocalStore } from './local.ts';
import { RedisStore } from './redis.ts';
import { ResilientStore } from './resilient.ts';
import type { BudgetSpec, StateStore } from './types.ts';

const DAY = 86_400_000;
const T0 = 1_800_000_000_000;
const budget = (key: string, limit: number): BudgetSpec => ({ key, limit, enforce: true, expiresAt: T0 + 30 * DAY });

const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ai-envelope-resilient-'));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}
async function redis(opts: { port?: number; dir?: string } = {}): Promise<RedisServer> {
  const server = await startRedis({ ...opts, persist: true });
  cleanup.push(() => server.stop());
  return server;
}
/** A second view on the same Redis, as another replica would have. */
function observer(url: string, keyPrefix: string): RedisStore {
  const s = new RedisStore(url, { keyPrefix });
  cleanup.push(() => s.close());
  return s;
}
async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
async function reserveOk(s: StateStore, budgets: BudgetSpec[], amount: number, now: number) {
  const r = await s.reserve(budgets, amount, 60_000, now);
  if (!r.ok) throw new Error(`refused by ${r.key}`);
  return r.ticket;
}

describe('ResilientStore', () => {
  it('falls back to local when Redis dies and hands the outage spend to Redis exactly once when it returns', async () => {
    const dataDir = tempDir();
    let server = await redis({ dir: dataDir });
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const changes: Array<[string, string | undefined]> = [];
    let now = T0;
    const store = await ResilientStore.open({ redisUrl: server.url, stateDir: tempDir(), keyPrefix: prefix, probeMs: 50, onChange: (k, r) => changes.push([k, r]), clock: () => now });
    cleanup.push(() => store.close());
    const view = observer(server.url, prefix);
    const b = budget('b:shop', 10_000);
    expect(store.kind).toBe('redis');

    await store.settle(await reserveOk(store, [b], 300, now), 100, now);
    const acrossOutage = await reserveOk(store, [b], 200, now); // Redis' ticket, settled while Redis is away
    expect((await view.levels(['b:shop'], now)).get('b:shop')).toEqual({ spent: 100, reserved: 200 });

    await server.stop();
    now += 1000;
    const during = await reserveOk(store, [b], 300, now);
    expect(store.kind).toBe('local');
    expect(changes).toHaveLength(1);
    expect(changes[0]?.[0]).toBe('local');
    expect(changes[0]?.[1]).toBeTruthy();
    const w = { key: 'rl:shop:rpm', windowMs: 60_000, bucketMs: 1000, limit: 1, cost: 1 };
    expect((await store.admit([w], now)).admitted).toBe(true);
    expect((await store.admit([w], now)).admitted).toBe(false);
    await store.settle(during, 250, now);
    await store.settle(acrossOutage, 50, now);
    const settledLate = await reserveOk(store, [b], 500, now); // reserved locally, settled after the return
    // Locally the budget starts from the level Redis last reported, so the outage cannot reset it.
    expect((await store.levels(['b:shop'], now)).get('b:shop')).toEqual({ spent: 400, reserved: 500 });
    expect(await store.reserve([b], 9_200, 60_000, now)).toMatchObject({ ok: false, key: 'b:shop' });

    server = await redis({ port: server.port, dir: dataDir });
    await until('the switch back to redis', () => store.kind === 'redis');
    expect(changes).toEqual([changes[0], ['redis', undefined]]);
    // 100 before + 250 (local ticket) + 50 (Redis ticket settled during the outage), once each.
    expect((await view.levels(['b:shop'], now)).get('b:shop')).toEqual({ spent: 400, reserved: 0 });

    await store.settle(settledLate, 120, now);
    expect((await view.levels(['b:shop'], now)).get('b:shop')).toEqual({ spent: 520, reserved: 0 });
    // Another outage with no spend, and another return: nothing is delivered twice.
    await server.stop();
    expect((await store.levels(['b:shop'], now)).get('b:shop')?.spent).toBe(520);
    expect(store.kind).toBe('local');
    server = await redis({ port: server.port, dir: dataDir });
    await until('the second switch back', () => store.kind === 'redis');
    expect((await store.levels(['b:shop'], now)).get('b:shop')).toEqual({ spent: 520, reserved: 0 });
    expect(changes.map((c) => c[0])).toEqual(['local', 'redis', 'local', 'redis']);
  });

  it('starts on local when Redis is away, and a later process delivers the journal it left', async () => {
    const stateDir = tempDir();
    const port = await freePort();
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const changes: string[] = [];
    const first = await ResilientStore.open({ redisUrl: `redis://127.0.0.1:${port}`, stateDir, keyPrefix: prefix, probeMs: 50, readyTimeoutMs: 300, onChange: (k) => changes.push(k), clock: () => T0 });
    expect(first.kind).toBe('local');
    expect(changes).toEqual(['local']);
    const b = budget('b:boot', 1000);
    await first.settle(await reserveOk(first, [b], 100, T0), 70, T0);
    await first.close(); // the process stops before Redis comes back

    const server = await redis({ port });
    const second = await ResilientStore.open({ redisUrl: server.url, stateDir, keyPrefix: prefix, probeMs: 50, clock: () => T0 });
    cleanup.push(() => second.close());
    expect(second.kind).toBe('redis');
    const view = observer(server.url, prefix);
    expect((await view.levels(['b:boot'], T0)).get('b:boot')).toEqual({ spent: 70, reserved: 0 });
    // Delivered means confirmed: a third start has nothing left to add.
    await second.close();
    const third = await ResilientStore.open({ redisUrl: server.url, stateDir, keyPrefix: prefix, clock: () => T0 });
    cleanup.push(() => third.close());
    expect((await view.levels(['b:boot'], T0)).get('b:boot')).toEqual({ spent: 70, reserved: 0 });
  });

  it('does not fail over on a call that is wrong rather than a Redis that is away', async () => {
    const server = await redis();
    const changes: string[] = [];
    const store = await ResilientStore.open({ redisUrl: server.url, keyPrefix: `t${randomUUID().slice(0, 8)}:`, onChange: (k) => changes.push(k) });
    cleanup.push(() => store.close());
    await expect(store.reserve([budget('b:x', 100)], 0.5, 1000, T0)).rejects.toThrow(RangeError);
    await expect(store.admit([{ key: 'rl:x', windowMs: 1000, bucketMs: 5000, limit: 1, cost: 1 }], T0)).rejects.toThrow(RangeError);
    expect(store.kind).toBe('redis');
    expect(changes).toEqual([]);
  });

  it('refuses a local store that keeps no journal', () => {
    const redisStore = new RedisStore('redis://127.0.0.1:1', { connectTimeoutMs: 50 });
    cleanup.push(() => redisStore.close());
    expect(() => new ResilientStore({ redis: redisStore, local: new LocalStore() })).toThrow(/journal/);
  });
});
