import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis, type RedisServer } from '../../test/support/redis.ts';
import { RedisStore } from './redis.ts';
import { WindowBook } from './windows.ts';
import type { BudgetSpec, WindowSpec, WindowTicket } from './types.ts';

const DAY = 86_400_000;
const T0 = 1_800_000_000_000; // a realistic epoch, so bucket indices and scores have their real size
const budget = (key: string, limit: number, over: Partial<BudgetSpec> = {}): BudgetSpec => ({ key, limit, enforce: true, expiresAt: T0 + 30 * DAY, ...over });

let server: RedisServer;
const stores: RedisStore[] = [];
function store(prefix = `t${randomUUID().slice(0, 8)}:`): RedisStore {
  const s = new RedisStore(server.url, { keyPrefix: prefix });
  stores.push(s);
  return s;
}

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await server?.stop();
});

async function reserveOk(s: RedisStore, budgets: BudgetSpec[], amount: number, hold: number, now: number) {
  const r = await s.reserve(budgets, amount, hold, now);
  if (!r.ok) throw new Error(`refused by ${r.key}`);
  return r.ticket;
}

describe('RedisStore windows', () => {
  it('decides exactly as the local window rule, step by step', async () => {
    for (let seed = 1; seed <= 8; seed++) {
      const s = store();
      const book = new WindowBook();
      let state = seed;
      const rand = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      let now = T0;
      const tickets: WindowTicket[] = [];
      for (let i = 0; i < 300; i++) {
        // Steps that often land on either side of a bucket edge; sometimes the clock steps back,
        // or jumps far ahead.
        now += Math.floor(rand() * 6) * 250 + (rand() < 0.4 ? -1 : 0) - (rand() < 0.05 ? 3000 : 0) + (rand() < 0.03 ? 40_000 : 0);
        const specs: WindowSpec[] = [
          // Now and then the bucket size of a key changes (a config reload).
          { key: 'rl:r:rpm', windowMs: 10_000, bucketMs: rand() < 0.05 ? 500 : 1000, limit: 6, cost: 1 },
          { key: 'rl:r:tpm', windowMs: 20_000, bucketMs: 2000, limit: 60, cost: Math.floor(rand() * 25) },
        ].filter(() => rand() < 0.85);
        const fromRedis = await s.admit(specs, now);
        expect(fromRedis, `seed ${seed} step ${i}`).toEqual(book.admit(specs, now));
        if (fromRedis.admitted && rand() < 0.3) tickets.push(fromRedis.ticket);
        const adj = tickets.shift();
        if (adj && rand() < 0.5) {
          const delta = Math.floor(rand() * 30) - 20;
          await s.adjust(adj, 'rl:r:tpm', delta, now);
          book.adjust(adj, 'rl:r:tpm', delta, now);
        }
      }
    }
  });

  it('two stores on two connections admit exactly the limit between them', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const [a, b] = [store(prefix), store(prefix)];
    const w: WindowSpec = { key: 'rl:shared:rpm', windowMs: 60_000, bucketMs: 1000, limit: 100, cost: 1 };
    const calls = Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).admit([w], T0 + (i % 7)));
    const results = await Promise.all(calls);
    expect(results.filter((r) => r.admitted)).toHaveLength(100);
    const refused = results.find((r) => !r.admitted);
    expect(refused).toMatchObject({ admitted: false, key: 'rl:shared:rpm' });
  });

  it('lets a window key expire shortly after its newest bucket has left', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const s = store(prefix);
    await s.admit([{ key: 'rl:ttl:rpm', windowMs: 60_000, bucketMs: 1000, limit: 5, cost: 1 }], T0);
    const ttl = await s.client.pttl(`${prefix}rl:ttl:rpm`);
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(62_000);
  });
});

describe('RedisStore budgets', () => {
  it('reserves on every budget or on none, and settles lower, higher, at zero, once', async () => {
    const s = store();
    const team = budget('b:team', 1000);
    const user = budget('b:team:u:x', 150);
    const t1 = await reserveOk(s, [team, user], 100, 60_000, T0);
    expect(await s.reserve([team, user], 100, 60_000, T0)).toEqual({ ok: false, key: 'b:team:u:x', spent: 0, reserved: 100, limit: 150 });
    expect((await s.levels(['b:team'], T0)).get('b:team')).toEqual({ spent: 0, reserved: 100 });
    expect((await s.settle(t1, 40, T0 + 1)).get('b:team:u:x')).toEqual({ spent: 40, reserved: 0 });
    const t2 = await reserveOk(s, [team, user], 100, 60_000, T0 + 2);
    expect((await s.settle(t2, 110, T0 + 3)).get('b:team:u:x')).toEqual({ spent: 150, reserved: 0 });
    expect((await s.settle(t2, 110, T0 + 4)).get('b:team')).toEqual({ spent: 150, reserved: 0 });
    const loose = budget('b:team:u:x', 150, { enforce: false });
    const t3 = await reserveOk(s, [team, loose], 100, 60_000, T0 + 5);
    expect((await s.settle(t3, 0, T0 + 6)).get('b:team')).toEqual({ spent: 150, reserved: 0 });
  });

  it('sweeps an expired reservation into spent, and corrects it once when it settles late', async () => {
    const s = store();
    const b = budget('b:e', 250);
    const late = await reserveOk(s, [b], 100, 1000, T0);
    expect((await s.levels(['b:e'], T0 + 999)).get('b:e')).toEqual({ spent: 0, reserved: 100 });
    await reserveOk(s, [b], 150, 1000, T0 + 1000); // the sweep made room only for what was not spent
    expect((await s.reserve([b], 1, 1000, T0 + 1000)).ok).toBe(false);
    expect((await s.settle(late, 30, T0 + 1500)).get('b:e')).toEqual({ spent: 30, reserved: 150 });
    expect((await s.settle(late, 30, T0 + 1600)).get('b:e')).toEqual({ spent: 30, reserved: 150 });
  });

  it('never passes a limit with 200 concurrent reservations from two replicas', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const [a, b] = [store(prefix), store(prefix)];
    const spec = budget('b:hot', 1000);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).reserve([spec], 13, 60_000, T0)));
    expect(results.filter((r) => r.ok)).toHaveLength(76);
    expect((await a.levels(['b:hot'], T0)).get('b:hot')).toEqual({ spent: 0, reserved: 76 * 13 });
  });

  it('keeps sums exact at large amounts', async () => {
    const s = store();
    const big = 2 ** 50 + 3;
    const b = budget('b:big', 2 ** 52);
    const t = await reserveOk(s, [b], big, 60_000, T0);
    expect((await s.settle(t, big - 1, T0)).get('b:big')).toEqual({ spent: big - 1, reserved: 0 });
  });

  it('lays budgets out as documented, expiring a day after their period', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const s = store(prefix);
    const b = budget('b:layout', 1000);
    const t = await reserveOk(s, [b], 10, 60_000, T0);
    expect(await s.client.hgetall(`${prefix}b:layout`)).toMatchObject({ spent: '0', reserved: '10', until: String(b.expiresAt) });
    expect(await s.client.hget(`${prefix}b:layout#amt`, t.id)).toBe('10');
    expect(Number(await s.client.zscore(`${prefix}b:layout#held`, t.id))).toBe(T0 + 60_000);
    expect(await s.client.pexpiretime(`${prefix}b:layout`)).toBe(b.expiresAt + DAY);
  });

  it('snapshots the budgets whose period has not ended', async () => {
    const s = store();
    await reserveOk(s, [budget('b:old', 100, { expiresAt: T0 + 1000 }), budget('b:new', 100)], 10, 60_000, T0);
    expect([...(await s.snapshot(T0 + 999)).keys()].sort()).toEqual(['b:new', 'b:old']);
    expect(await s.snapshot(T0 + 1000)).toEqual(new Map([['b:new', { spent: 0, reserved: 10 }]]));
  });

  it('applies a spend batch once, whatever the number of deliveries', async () => {
    const s = store();
    const batch = { id: randomUUID(), entries: [{ key: 'b:rec', delta: 500, expiresAt: T0 + DAY }] };
    expect(await s.applySpend(batch)).toBe(true);
    expect(await s.applySpend(batch)).toBe(false);
    expect((await s.levels(['b:rec'], T0)).get('b:rec')).toEqual({ spent: 500, reserved: 0 });
    expect([...(await s.snapshot(T0)).keys()]).toEqual(['b:rec']);
  });
});

describe('RedisStore without a Redis', () => {
  it('fails fast instead of queueing', async () => {
    const port = await freePort();
    const s = new RedisStore(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 200 });
    stores.push(s);
    const started = Date.now();
    await expect(s.admit([{ key: 'rl:x', windowMs: 1000, bucketMs: 100, limit: 1, cost: 1 }], T0)).rejects.toThrow();
    await expect(s.reserve([budget('b:x', 100)], 1, 1000, T0)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
